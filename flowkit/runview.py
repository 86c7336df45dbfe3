"""A past run as :mod:`flowkit.runs` shows it: :class:`RunView`, read from the run's header
and, when first asked for, its task records.

Lazy and read-only: ``fk.runs.get`` reads the header only; ``run.tasks`` (or ``run[node]``)
reads the task-record batches once and wraps each record in a
:class:`~flowkit.taskview.TaskView`; no output is loaded until ``.output`` (or a parameter
stored as an object until ``run.params[name]``) is asked for.

A header that cannot be read (damaged, unsigned, not an object) gives a view whose status is
``unknown``: its task records may still be readable, and what needs the header (the output,
the parameters) says the header is damaged.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from flowkit.errors import FlowkitError
from flowkit.graphshape import read_shape
from flowkit.header_inputs import input_value
from flowkit.store import Store
from flowkit.taskview import NoOutputError, OutputNotKeptError, TaskView, load_stored

_NUMBERS_RE = re.compile(r"([0-9]+)")
_INDEX_RE = re.compile(r"([0-9]+)\]")


class UnknownNodeError(FlowkitError, KeyError):
    """``run[node]`` names no call of the run (a map node's name says to index its items)."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""


class RunView:
    """A past run: its header (``id``, ``workflow``, ``status``, ``started``, ``ended``,
    ``duration``, ``error``, ``params``...), its ``output``, and its calls (``tasks``, in
    order of their start; ``run["train"]``, ``run["train[3]"]``).

    ``status`` is what a reader should believe: a run whose header still says ``running``
    but whose process is gone is ``lost`` (see :mod:`flowkit.lifecycle`).
    """

    __slots__ = ("_by_node", "_damage", "_header", "_id", "_store", "_tasks")

    def __init__(
        self, store: Store, run_id: str, header: Mapping[str, Any], damage: str | None = None
    ) -> None:
        self._store = store
        self._id = run_id
        self._header = header
        self._damage = damage  # why the header could not be read, if it could not
        self._tasks: tuple[TaskView, ...] | None = None
        self._by_node: dict[str, TaskView] | None = None

    # -- the header ----------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def store(self) -> Store:
        """The store the run was read from."""
        return self._store

    @property
    def header(self) -> Mapping[str, Any]:
        """The run header as stored (``status`` as a reader sees it), read-only."""
        return MappingProxyType({**self._header, "id": self._id, "status": self.status})

    @property
    def damage(self) -> str | None:
        """Why the header could not be read, or None when it was."""
        return self._damage

    @property
    def workflow(self) -> str:
        return self._str("workflow") or "?"

    @property
    def status(self) -> str:
        """``running``, ``succeeded``, ``failed``, ``interrupted``, ``lost``, or ``unknown``
        for a header that could not be read."""
        return self._str("status") or "unknown"

    @property
    def started(self) -> float | None:
        """Unix time the run started."""
        return self._number("started")

    @property
    def ended(self) -> float | None:
        return self._number("ended")

    @property
    def duration(self) -> float | None:
        """Wall seconds of the run, None while it runs (or when it was lost)."""
        started, ended = self.started, self.ended
        return None if started is None or ended is None else ended - started

    @property
    def error(self) -> str | None:
        """What failed the run (one line), or None."""
        return self._str("error")

    @property
    def backend(self) -> str | None:
        return self._str("backend")

    @property
    def host(self) -> str | None:
        """The machine that ran it."""
        return self._str("host")

    @property
    def pid(self) -> int | None:
        pid = self._header.get("pid")
        return pid if type(pid) is int else None

    @property
    def resumed_from(self) -> str | None:
        """The run this one resumed (``fk.run(resume=...)``): its reused calls name it too."""
        return self._str("resumed_from")

    @property
    def tags(self) -> Mapping[str, str]:
        """What started the run (``fk.run(tags=...)``, a schedule, a trigger); {} if none."""
        tags = self.header.get("tags")
        if not isinstance(tags, dict):
            return {}
        return {str(k): str(v) for k, v in tags.items()}

    @property
    def tolerated(self) -> Mapping[str, list[int]]:
        """The maps with ``min_success`` that had failed items: node id -> the failed items'
        indices (each has its own task record, ``run[f"{node}[{i}]"]``); {} if none. An
        entry that does not read as a list of indices is left out."""
        found = self._header.get("tolerated")
        if not isinstance(found, dict):
            return MappingProxyType({})
        out: dict[str, list[int]] = {}
        for node, entry in found.items():
            failed = entry.get("failed") if isinstance(entry, dict) else None
            if isinstance(failed, list) and all(type(i) is int and i >= 0 for i in failed):
                out[str(node)] = list(failed)
        return MappingProxyType(out)

    @property
    def keep(self) -> bool | None:
        """Whether the run kept every output (False: ``fk.run(..., keep=False)``; None: the
        run was made before flowkit kept them)."""
        keep = self._header.get("keep")
        return keep if type(keep) is bool else None

    @property
    def graph(self) -> dict[str, Any] | None:
        """The run's graph as plain data: ``nodes`` (``id``, ``task``, ``kind``: task, map or
        dynamic; ``cache``), ``edges`` (``source``, ``target``, ``param``), ``inputs`` and
        ``output`` (the nodes the output reads). None for a run recorded before flowkit kept
        it. A dynamic node's calls are not in it (they exist only at run time): see ``tasks``."""
        return read_shape(self._header.get("graph"))

    @property
    def summary(self) -> Mapping[str, int]:
        """Counts of calls ``run``, ``cached`` and ``failed`` (written when the run ended)."""
        found = self._header.get("summary")
        if not isinstance(found, dict):
            return MappingProxyType({})
        return MappingProxyType({k: v for k, v in found.items() if type(v) is int})

    @property
    def params(self) -> Mapping[str, Any]:
        """The workflow's inputs. A large one stored as an object is loaded when it is
        looked up; an ``fk.Secret`` reads as ``REDACTED`` (it was never written)."""
        inputs = self._header.get("inputs")
        if self._damage is not None:
            raise FlowkitError(f"the inputs of run {self._id} are unknown: {self._damage}")
        return _Params(self._store, inputs if isinstance(inputs, dict) else {}, self._id)

    @property
    def output(self) -> Any:
        """The workflow's output, loaded from the store."""
        if self._damage is not None:
            raise NoOutputError(f"the output of run {self._id} is unknown: {self._damage}")
        status = self.status
        if status != "succeeded":
            why = f": {self.error}" if self.error else ""
            raise NoOutputError(
                f"run {self._id} has no output: its status is {status}{why}. Its calls that "
                "finished have theirs: run.tasks, run['node'].output"
            )
        artifact = self._header.get("output")
        if artifact is None:
            raise OutputNotKeptError(
                f"the output of run {self._id} was not kept: the run was made by a flowkit "
                "that did not store it, or it could not be stored (the run logged a warning); "
                "the call that returned it may still have it: run.tasks[-1].output"
            )
        return load_stored(self._store, artifact, what=f"the output of run {self._id}")

    # -- the calls -----------------------------------------------------------------------

    @property
    def tasks(self) -> tuple[TaskView, ...]:
        """Every call, in order of start (the node id breaks ties, ``train[2]`` before
        ``train[10]``). Reads the task records the first time; loads no output."""
        if self._tasks is None:
            _, records = self._store.read_run(self._id)
            keep = self._header.get("keep") if self._damage is None else "unknown"
            store, run_id = self._store, self._id
            self._tasks = tuple(TaskView(r, store, run_id, keep) for r in _in_order(records))
        return self._tasks

    def __getitem__(self, node: str) -> TaskView:
        """The call of node ``node`` (``"train"``, or ``"train[3]"`` for a map item)."""
        found = self._nodes().get(node)
        if found is not None:
            return found
        items = self.map_items(node) if isinstance(node, str) else []
        if items:
            raise UnknownNodeError(
                f"`{node}` is a map node of run {self._id} with {len(items)} items: use "
                f"run['{items[0].node}'] (through run['{items[-1].node}']), or "
                f"run.map_items('{node}') for all of them"
            )
        known = ", ".join(list(self._nodes())[:10]) or "none"
        raise UnknownNodeError(f"run {self._id} has no call `{node}`; its nodes: {known}")

    def __contains__(self, node: object) -> bool:
        return node in self._nodes()

    def map_items(self, node: str) -> list[TaskView]:
        """The calls of map node ``node`` (``node[0]``, ``node[1]``...), in index order."""
        prefix = f"{node}["
        found = [
            (index, view)
            for name, view in self._nodes().items()
            if name.startswith(prefix) and (index := _item_index(name[len(prefix) :])) is not None
        ]
        return [view for _, view in sorted(found, key=lambda pair: pair[0])]

    def _nodes(self) -> dict[str, TaskView]:
        if self._by_node is None:
            self._by_node = {view.node: view for view in self.tasks}
        return self._by_node

    # -- helpers ---------------------------------------------------------------------------

    def _str(self, name: str) -> str | None:
        value = self._header.get(name)
        return value if type(value) is str else None

    def _number(self, name: str) -> float | None:
        value = self._header.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None

    def __repr__(self) -> str:
        return f"<RunView {self._id} {self.workflow} {self.status}>"


class _Params(Mapping[str, Any]):
    """The recorded inputs; an input stored as an object is loaded on first lookup."""

    def __init__(self, store: Store, recorded: dict[str, Any], run_id: str) -> None:
        self._store = store
        self._recorded = recorded
        self._run_id = run_id
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            entry = self._recorded[name]
            what = f"input `{name}` of run {self._run_id}"
            self._loaded[name] = input_value(entry, self._store, what=what)
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._recorded)

    def __len__(self) -> int:
        return len(self._recorded)

    def __repr__(self) -> str:
        return f"<params of run {self._run_id}: {', '.join(self._recorded)}>"


def _in_order(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records by start time; calls that started at the same time (or never) by node id.
    Only ties pay for the node-id key: a 100k-item map sorts on floats alone."""
    by_start = sorted(records, key=_started)
    ordered: list[dict[str, Any]] = []
    for _, same in itertools.groupby(by_start, key=_started):
        tied = list(same)
        if len(tied) > 1:
            tied.sort(key=lambda r: _natural(r.get("node")))
        ordered.extend(tied)
    return ordered


def _started(record: dict[str, Any]) -> float:
    value = record.get("started")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.inf  # not started (or not said): last


def _natural(node: Any) -> list[Any]:
    """``train[10]`` after ``train[2]``: digit runs compare as numbers (the split puts text at
    even positions and digits at odd ones, so two keys never compare a str with an int)."""
    parts: list[Any] = _NUMBERS_RE.split(node if type(node) is str else "?")
    parts[1::2] = [int(p) for p in parts[1::2]]
    return parts


def _item_index(rest: str) -> int | None:
    """3 for ``3]``; None for anything else (``3][1]``: an item of a nested node)."""
    found = _INDEX_RE.fullmatch(rest)
    return None if found is None else int(found.group(1))


__all__ = ["RunView", "UnknownNodeError"]
