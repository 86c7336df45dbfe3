"""A schedule's definition and state, as one document in the store.

Layout (every path below ``schedules/``)::

    schedules/<name>.json                 the schedule (:class:`ScheduleDef`)
    schedules/<name>/fires/<UTC stamp>.json
                                          one claim per fire time decided (started or
                                          skipped): the claim is what makes a fire happen once

The document holds what the user said (target, cron, zone, inputs, policies, paused) and
what the scheduler keeps (``last_fire``: the logical time of the last fire decided;
``pending``: fires queued behind a running one; ``last_run``: the run of the last fire
started). Times are ISO 8601 texts in UTC.

The document is data anyone with write access to the store can plant or damage, so
:meth:`ScheduleDef.from_dict` checks every field; a bad one raises :class:`ScheduleDefError`
naming the schedule and the field, and the scheduler skips that schedule with a warning
instead of failing its tick.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

from flowkit.automation.crontimes import UTC, CronError, check_expression, check_zone, stamp
from flowkit.errors import FlowkitError

Catchup = Literal["none", "latest", "all"]
Overlap = Literal["skip", "queue", "allow"]
CATCHUPS: Final[tuple[Catchup, ...]] = ("none", "latest", "all")
OVERLAPS: Final[tuple[Overlap, ...]] = ("skip", "queue", "allow")
ROOT: Final = "schedules"
FORMAT: Final = 1
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class ScheduleDefError(FlowkitError, ValueError):
    """A schedule definition (given, or read from the store) that is not valid."""


def check_name(name: Any) -> str:
    """``name`` if it can name a schedule (it becomes a file name in the store)."""
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None or name.endswith(".json"):
        raise ScheduleDefError(
            f"schedule name {name!r} is not valid: use up to 100 letters, digits, '_', '.' "
            "and '-', starting with a letter or digit (e.g. nightly-retrain)"
        )
    return name


def definition_path(name: str) -> str:
    return f"{ROOT}/{check_name(name)}.json"


def fires_folder(name: str) -> str:
    return f"{ROOT}/{check_name(name)}/fires"


def fire_path(name: str, when: dt.datetime) -> str:
    """``schedules/<name>/fires/20260329T013000Z.json``: the claim of one fire time."""
    return f"{fires_folder(name)}/{stamp(when)}.json"


def iso(when: dt.datetime) -> str:
    """An instant as the ISO text the document keeps (UTC)."""
    return when.astimezone(UTC).isoformat()


def parse_time(text: Any, what: str) -> dt.datetime:
    """An ISO text with an offset as an aware UTC datetime; ScheduleDefError naming ``what``."""
    try:
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        when = None
    if not isinstance(text, str) or when is None or when.utcoffset() is None:
        raise ScheduleDefError(f"{what}: {text!r} is not an ISO 8601 time with an offset")
    return when.astimezone(UTC)


@dataclasses.dataclass(frozen=True)
class LastRun:
    """The run of the last fire started: what ``--overlap`` looks at."""

    run_id: str
    fire_time: str  # ISO, UTC
    started: float  # the scheduler's clock when it was started (a run not yet seen is young)


@dataclasses.dataclass(frozen=True)
class ScheduleDef:
    """Fire ``target`` (``/abs/FILE.py:WORKFLOW``) at the times ``cron`` names in zone ``tz``.

    ``params``: the target's inputs as command-line texts. ``fire_param``: the input
    annotated ``fk.FireTime`` (given each fire's logical time), or None. ``catchup``: which
    fires missed while no scheduler ran are run (``none``, ``latest``, ``all``). ``overlap``:
    what a fire does while the previous one still runs (``skip``, ``queue``, ``allow``).
    ``start``: the first fire is the first cron time after it (default: ``created``).
    """

    name: str
    target: str
    workflow: str
    cron: str
    tz: str = "UTC"
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)
    fire_param: str | None = None
    catchup: Catchup = "latest"
    overlap: Overlap = "skip"
    backend: str | None = None
    address: str | None = None
    notify: tuple[str, ...] = ()
    paused: bool = False
    created: str = ""
    start: str | None = None
    # kept by the scheduler
    last_fire: str | None = None
    resumed: str | None = None
    pending: tuple[str, ...] = ()
    last_run: LastRun | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        try:
            object.__setattr__(self, "cron", check_expression(self.cron))
            check_zone(self.tz)
        except CronError as exc:
            raise ScheduleDefError(f"schedule {self.name}: {exc}") from exc
        if self.catchup not in CATCHUPS:
            raise ScheduleDefError(
                f"schedule {self.name}: catchup {self.catchup!r}: use one of {', '.join(CATCHUPS)}"
            )
        if self.overlap not in OVERLAPS:
            raise ScheduleDefError(
                f"schedule {self.name}: overlap {self.overlap!r}: use one of {', '.join(OVERLAPS)}"
            )
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "notify", tuple(self.notify))
        object.__setattr__(self, "pending", tuple(self.pending))
        self._check_command_line()

    def _check_command_line(self) -> None:
        """What becomes a ``flowkit run`` command line is what it says it is: a target
        ``FILE.py:NAME``, inputs named like Python names, URLs (a document planted in the
        store cannot slip an option in)."""
        where = f"schedule {self.name}"
        path, sep, attr = self.target.rpartition(":")
        if not sep or not path or not attr.isidentifier() or self.target.startswith("-"):
            raise ScheduleDefError(f"{where}: target {self.target!r} is not FILE.py:WORKFLOW")
        for key in (*self.params, *([self.fire_param] if self.fire_param else [])):
            if not key.isidentifier():
                raise ScheduleDefError(f"{where}: input name {key!r} is not a Python name")
        for url in (*self.notify, *([self.address] if self.address else [])):
            if not url.startswith(("http://", "https://")):
                raise ScheduleDefError(f"{where}: {url!r} is not an http:// or https:// URL")
        if (
            self.backend is not None
            and not self.backend.replace("_", "").replace("-", "").replace(".", "").isalnum()
        ):
            raise ScheduleDefError(f"{where}: backend {self.backend!r} is not a backend name")

    def anchor(self) -> dt.datetime:
        """Fires after this instant are due: the last fire decided, else the start (or the
        creation); never before a resume (fires that fell while paused are not run)."""
        base = self.last_fire or self.start or self.created
        when = parse_time(base, f"schedule {self.name}: anchor")
        if self.resumed:
            when = max(when, parse_time(self.resumed, f"schedule {self.name}: resumed"))
        return when

    def definition(self) -> dict[str, Any]:
        """The fields the user gives (what an upsert compares)."""
        d = self.to_dict()
        for kept in ("last_fire", "resumed", "pending", "last_run", "created", "paused"):
            d.pop(kept, None)
        return d

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["notify"] = list(self.notify)
        d["pending"] = list(self.pending)
        d["format"] = FORMAT
        return d

    @classmethod
    def from_dict(cls, d: Any, name: str) -> ScheduleDef:
        """The schedule in document ``d`` stored as ``name``; ScheduleDefError naming the
        field that is missing or of the wrong type."""
        where = f"schedule {name}"
        if not isinstance(d, dict):
            raise ScheduleDefError(f"{where}: the document is not a JSON object")
        if d.get("format") != FORMAT:
            raise ScheduleDefError(
                f"{where}: format {d.get('format')!r}, this flowkit reads format {FORMAT}"
            )
        if d.get("name") != name:
            raise ScheduleDefError(f"{where}: its file names schedule {d.get('name')!r}")
        text = _Fields(d, where)
        for field in ("created", "start", "last_fire", "resumed"):
            if d.get(field):
                parse_time(d[field], f"{where}: {field}")
        for i, item in enumerate(_str_list(d.get("pending"), f"{where}: pending")):
            parse_time(item, f"{where}: pending[{i}]")
        return cls(
            name=name,
            target=text.text("target"),
            workflow=text.text("workflow"),
            cron=text.text("cron"),
            tz=text.text("tz"),
            params=_str_map(d.get("params"), f"{where}: params"),
            fire_param=text.optional("fire_param"),
            catchup=text.text("catchup"),  # type: ignore[arg-type]  # checked by __post_init__
            overlap=text.text("overlap"),  # type: ignore[arg-type]
            backend=text.optional("backend"),
            address=text.optional("address"),
            notify=tuple(_str_list(d.get("notify"), f"{where}: notify")),
            paused=_bool(d.get("paused"), f"{where}: paused"),
            created=text.text("created"),
            start=text.optional("start"),
            last_fire=text.optional("last_fire"),
            resumed=text.optional("resumed"),
            pending=tuple(_str_list(d.get("pending"), f"{where}: pending")),
            last_run=_last_run(d.get("last_run"), f"{where}: last_run"),
        )


class _Fields:
    def __init__(self, d: dict[str, Any], where: str) -> None:
        self.d = d
        self.where = where

    def text(self, key: str) -> str:
        value = self.d.get(key)
        if not isinstance(value, str) or not value:
            raise ScheduleDefError(f"{self.where}: field {key!r} is missing or not a text")
        return value

    def optional(self, key: str) -> str | None:
        value = self.d.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ScheduleDefError(f"{self.where}: field {key!r} is not a text")
        return value


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ScheduleDefError(f"{where}: not an object of texts")
    return dict(value)


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScheduleDefError(f"{where}: not a list of texts")
    return list(value)


def _bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ScheduleDefError(f"{where}: not true or false")
    return value


def _last_run(value: Any, where: str) -> LastRun | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("run_id"), str)
        or not isinstance(value.get("fire_time"), str)
        or not isinstance(value.get("started"), (int, float))
        or isinstance(value.get("started"), bool)
    ):
        raise ScheduleDefError(f"{where}: not an object with run_id, fire_time and started")
    return LastRun(value["run_id"], value["fire_time"], float(value["started"]))


__all__ = [
    "CATCHUPS",
    "OVERLAPS",
    "Catchup",
    "LastRun",
    "Overlap",
    "ScheduleDef",
    "ScheduleDefError",
    "check_name",
    "definition_path",
    "fire_path",
    "fires_folder",
    "iso",
    "parse_time",
]
