"""One call of a past run as :mod:`flowkit.runs` shows it: :class:`TaskView` and its
:class:`AttemptView` s, and how their stored values are loaded.

A view wraps the task record (the dict read from the run's task-record batch) and the store,
nothing more: outputs and large logs are loaded when asked for, never before, so a 100k-item
run costs 100k small views and no object read. Views are read-only: properties without
setters, and mappings returned as read-only proxies.

The record is data someone else wrote (:mod:`flowkit.store`): every field is checked for its
type as it is read, and a malformed one reads as absent, or, where a value was asked for, as
:class:`~flowkit.store.ObjectCorrupt` naming the call, never as a crash.
"""

from __future__ import annotations

import collections
import logging
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from flowkit.cardview import CardView, read_cards
from flowkit.classes import UntrustedClassError
from flowkit.errors import FlowkitError
from flowkit.records import attempt_dicts
from flowkit.store import Artifact, ObjectCorrupt, ObjectMissing, Store

log = logging.getLogger(__name__)

_OUTPUT_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_POSITION_RE = re.compile(r"[0-9]+")


class NoOutputError(FlowkitError, LookupError):
    """A past call (or run) has no output to load: it failed, was skipped or never ended."""


class OutputNotKeptError(NoOutputError):
    """The call produced an output, but the store does not keep it: the run said
    ``fk.run(..., keep=False)``, the task ``@fk.task(keep=False)``, the value could not be
    stored, or the run was made before flowkit kept every output."""


def load_stored(store: Store, artifact: Any, *, what: str, expected: Any = Any) -> Any:
    """Load the value an artifact dict (from a record) names, with errors that say what the
    value was and why it cannot be loaded."""
    try:
        art = Artifact.from_dict(artifact)
    except ValueError as exc:
        raise ObjectCorrupt(
            f"cannot load {what}: its record names a malformed artifact ({exc}); the run "
            "record is damaged, run the workflow again to get the value"
        ) from exc
    try:
        return store.get(art, what=what, expected=expected)
    except ObjectMissing as exc:  # ObjectUnsigned too: absent to this reader
        raise type(exc)(
            f"cannot load {what}: {exc}. `flowkit cache gc` removes the objects of runs older "
            "than --older-than, and a partial copy of a store lacks some; run the workflow "
            "again to get the value"
        ) from exc
    except ObjectCorrupt as exc:
        raise ObjectCorrupt(
            f"cannot load {what}: {exc}; the next run that computes it writes it again"
        ) from exc
    except UntrustedClassError as exc:
        raise UntrustedClassError(
            f"{exc}. Import the module that defines the class first (its @fk.task "
            "annotations trust it), or trust it with fk.allow_class; a call's output also "
            "takes its type: task.load(expected=TheClass)"
        ) from exc


def _text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    return value if type(value) is str else None


def _number(record: Mapping[str, Any], name: str) -> float | None:
    value = record.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _duration(started: float | None, ended: float | None) -> float | None:
    return None if started is None or ended is None else ended - started


class AttemptView:
    """One attempt of a past call: its status, times, error, full traceback, captured logs
    (stdout, stderr and ``logging`` records, in order), CPU seconds and peak RSS."""

    __slots__ = ("_logs", "_record", "_store", "_what")

    def __init__(self, record: Mapping[str, Any], store: Store, what: str) -> None:
        self._record = record
        self._store = store
        self._what = what
        self._logs: str | None = None

    @property
    def n(self) -> int:
        """1 for the first attempt, 2 for the first retry..."""
        n = self._record.get("n")
        return n if type(n) is int else 0

    @property
    def status(self) -> str:
        """``succeeded`` or ``failed``."""
        return _text(self._record, "status") or "succeeded"

    @property
    def started(self) -> float | None:
        return _number(self._record, "started")

    @property
    def ended(self) -> float | None:
        return _number(self._record, "ended")

    @property
    def duration(self) -> float | None:
        """Wall seconds of the attempt."""
        return _duration(self.started, self.ended)

    @property
    def error(self) -> str | None:
        return _text(self._record, "error")

    @property
    def traceback(self) -> str | None:
        """The full traceback of a failed attempt (a remote worker's included)."""
        return _text(self._record, "traceback")

    @property
    def cpu(self) -> float | None:
        """CPU seconds of the attempt's thread (its process on Ray), where measured."""
        return _number(self._record, "cpu")

    @property
    def peak_rss(self) -> int | None:
        """The worker's peak resident set in bytes, where measured."""
        value = self._record.get("peak_rss")
        return value if type(value) is int else None

    @property
    def worker(self) -> str | None:
        """Which worker ran the attempt (``host:pid:thread``), where recorded."""
        return _text(self._record, "worker")

    @property
    def cards(self) -> list[CardView]:
        """The panels the attempt made with :mod:`flowkit.card`."""
        return read_cards(self._record.get("cards"))

    @property
    def logs(self) -> str:
        """What the attempt printed and logged. A large log is loaded whole from the store;
        if that object is gone, its first and last lines are returned with a note saying so."""
        if self._logs is None:
            self._logs = self._load_logs()
        return self._logs

    @property
    def has_logs(self) -> bool:
        """True if the attempt printed or logged anything (nothing is loaded to say so)."""
        return bool(self._record.get("logs")) or self._record.get("logs_ref") is not None

    @property
    def logs_cut(self) -> bool:
        """True when the record keeps only the head and tail of the log (the whole log is an
        object in the store, which :attr:`logs` loads)."""
        return self._record.get("logs_ref") is not None

    def _load_logs(self) -> str:
        kept = _text(self._record, "logs") or ""
        ref = self._record.get("logs_ref")
        if ref is None:
            return kept
        what = f"the logs of {self._what}, attempt {self.n}"
        try:
            whole = load_stored(self._store, ref, what=what, expected=str)
        except (ObjectMissing, ObjectCorrupt) as exc:
            log.warning("%s", exc)
            note = f"[flowkit: the whole log is not readable ({exc}); shown: its head and tail]"
            return f"{kept}\n{note}\n"
        return whole if type(whole) is str else kept

    def __repr__(self) -> str:
        return f"<AttemptView {self._what} #{self.n} {self.status}>"


class TaskView:
    """One call of a past run (``run["train"]``, ``run["train[3]"]``, ``run.tasks[i]``).

    ``output`` loads the call's output from the store (for a task with several outputs, a
    tuple, or a named tuple for a NamedTuple's fields); ``load(name)`` loads one output.
    ``inputs`` and ``outputs`` map names to digests (the lineage: which runs made and used a
    value). ``logs`` and ``traceback`` are text; ``attempts[i]`` is one attempt.
    """

    __slots__ = ("_header_keep", "_record", "_run_id", "_store")

    def __init__(
        self, record: Mapping[str, Any], store: Store, run_id: str, header_keep: Any
    ) -> None:
        self._record = record
        self._store = store
        self._run_id = run_id
        self._header_keep = header_keep  # the run's keep flag; absent: an older flowkit

    # -- what the record says ----------------------------------------------------------

    @property
    def record(self) -> Mapping[str, Any]:
        """The task record as stored (``flowkit.records.TaskRecord.to_dict``), read-only."""
        return MappingProxyType(self._record)

    @property
    def name(self) -> str:
        """The task's name."""
        return _text(self._record, "name") or "?"

    @property
    def identity(self) -> str | None:
        """The task's identity (its cache folder's name, :func:`flowkit.keys.identity`) for
        a call of a cached task; None otherwise, or in a run made before it was recorded."""
        return _text(self._record, "identity")

    @property
    def node(self) -> str:
        """The graph node id: ``train``, or ``train[3]`` for an item of a map."""
        return _text(self._record, "node") or "?"

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def key(self) -> str | None:
        """The call's key, when it has one: whole for a cached task (its cache entry's name),
        its first 160 bits for a call only kept (what ``fk.run(resume=...)`` matches)."""
        return _text(self._record, "key")

    @property
    def status(self) -> str:
        """``succeeded``, ``failed``, ``skipped``, ``running`` or ``pending``."""
        return _text(self._record, "status") or "unknown"

    @property
    def cached(self) -> bool:
        """True if the call was served from the cache."""
        return self._record.get("cached") is True

    @property
    def reused_from(self) -> str | None:
        """The run whose call this one reused (``fk.run(resume=...)``), or None."""
        return _text(self._record, "reused_from")

    @property
    def started(self) -> float | None:
        return _number(self._record, "started")

    @property
    def ended(self) -> float | None:
        return _number(self._record, "ended")

    @property
    def duration(self) -> float | None:
        """Wall seconds from the first attempt's start to the end."""
        return _duration(self.started, self.ended)

    @property
    def error(self) -> str | None:
        """The error of a failed call (one line); :attr:`traceback` has the whole of it."""
        return _text(self._record, "error")

    @property
    def attempts(self) -> tuple[AttemptView, ...]:
        """Every attempt, in order (none for a call served from the cache or reused)."""
        what = self._what()
        return tuple(AttemptView(t, self._store, what) for t in attempt_dicts(self._record))

    @property
    def logs(self) -> str:
        """What every attempt printed and logged, in order."""
        return "".join(a.logs for a in self.attempts)

    @property
    def cards(self) -> list[CardView]:
        """The panels (:mod:`flowkit.card`) of the last attempt (``attempts[i].cards`` for
        another one)."""
        attempts = self.attempts
        return attempts[-1].cards if attempts else []

    @property
    def traceback(self) -> str | None:
        """The full traceback of the last failed attempt, or None."""
        for attempt in reversed(self.attempts):
            if attempt.traceback:
                return attempt.traceback
        return None

    @property
    def inputs(self) -> Mapping[str, str]:
        """Parameter -> token (the digest the call's key used) of each input that came from
        the store: an upstream output or a stored workflow input."""
        found = self._record.get("inputs")
        if not isinstance(found, dict):
            return MappingProxyType({})
        return MappingProxyType({k: v for k, v in found.items() if type(v) is str})

    @property
    def outputs(self) -> Mapping[str, str | None]:
        """Output name (``"0"`` for a single output) -> digest, or None for an output that
        was not kept. Empty when the call kept no outputs (or produced none)."""
        found = self._output_artifacts()
        digests: dict[str, str | None] = {}
        for name, art in found.items():
            if art is None:
                digests[name] = None
                continue
            try:
                digests[name] = Artifact.from_dict(art).digest
            except ValueError as exc:
                raise ObjectCorrupt(
                    f"{self._what()}: the record of output `{name}` is malformed ({exc}); "
                    "the run record is damaged"
                ) from exc
        return MappingProxyType(digests)

    # -- loading outputs ---------------------------------------------------------------

    @property
    def output(self) -> Any:
        """The call's output, loaded from the store: the value for one output; for several,
        a tuple (positional outputs) or a named tuple of the NamedTuple's fields."""
        found = self._output_artifacts()
        if list(found) == ["0"]:
            return self.load("0")
        names = sorted(found, key=_output_order)
        values = [self.load(n) for n in names]
        if all(_POSITION_RE.fullmatch(n) for n in names):
            return tuple(values)
        if all(_OUTPUT_NAME_RE.fullmatch(n) for n in names):
            return collections.namedtuple(f"{_type_name(self.name)}_outputs", names)(*values)
        return dict(zip(names, values, strict=True))

    def load(self, name: str | None = None, *, expected: Any = Any) -> Any:
        """Load one output by name (``None``: the only one). ``expected`` is the type you
        want back: its dataclasses, NamedTuples and Enums are then trusted when decoding."""
        found = self._output_artifacts()
        if name is None:
            if len(found) != 1:
                raise NoOutputError(
                    f"{self._what()} has {len(found)} outputs ({', '.join(found)}): name one, "
                    "task.load('name'), or use task.output for all of them"
                )
            (name,) = found
        if name not in found:
            raise NoOutputError(
                f"{self._what()} has no output `{name}`; its outputs: {', '.join(found) or '-'}"
            )
        artifact = found[name]
        if artifact is None:
            raise OutputNotKeptError(
                f"output `{name}` of {self._what()} was not kept: it could not be stored (the "
                "run logged a warning saying why), or its task said @fk.task(keep=False)"
            )
        which = "" if list(found) == ["0"] else f" `{name}`"
        what = f"the output{which} of {self._what()}"
        return load_stored(self._store, artifact, what=what, expected=expected)

    def _output_artifacts(self) -> dict[str, Any]:
        """Output name -> artifact dict (None: not kept); NoOutputError if there are none."""
        if self.status != "succeeded":
            raise NoOutputError(self._why_no_output())
        found = self._record.get("outputs")
        if found is None:
            raise OutputNotKeptError(self._why_not_kept())
        if not isinstance(found, dict) or not found:
            raise ObjectCorrupt(
                f"{self._what()}: its record of outputs is malformed: {found!r:.80}"
            )
        return {str(k): v if isinstance(v, dict) else None for k, v in found.items()}

    def _why_no_output(self) -> str:
        status = self.status
        if status == "failed":
            return (
                f"{self._what()} failed, so it has no output: {self.error or 'no error recorded'} "
                "(task.traceback and task.logs say more; `flowkit runs logs RUN NODE`)"
            )
        return f"{self._what()} has no output: its status is {status}"

    def _why_not_kept(self) -> str:
        head = f"the output of {self._what()} was not kept: "
        if self._header_keep == "unknown":
            return head + "the run header is damaged, so why is unknown"
        if self._header_keep is False:
            return head + (
                "the run was started with fk.run(..., keep=False), which keeps only cached "
                "outputs and the workflow's output; run it again without keep=False"
            )
        if self._header_keep is None:
            return head + "the run was made by a flowkit that kept only cached outputs"
        return head + (
            "its task says @fk.task(keep=False) (drop that to keep it, or make it "
            "cache=True: a cached task's outputs are always stored)"
        )

    def _what(self) -> str:
        return f"task `{self.name}` (node `{self.node}`) of run {self._run_id}"

    def __repr__(self) -> str:
        how = " cached" if self.cached else " reused" if self.reused_from else ""
        return f"<TaskView {self.node} ({self.name}) {self.status}{how}>"


def _output_order(name: str) -> tuple[int, str]:
    """Positional outputs in number order ("10" after "9"), named ones as recorded."""
    return (int(name), "") if _POSITION_RE.fullmatch(name) else (0, name)


def _type_name(name: str) -> str:
    cleaned = re.sub(r"\W", "_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"task_{cleaned}"


__all__ = [
    "AttemptView",
    "NoOutputError",
    "OutputNotKeptError",
    "TaskView",
    "load_stored",
]
