"""What started a run, as values a workflow can take: ``fk.FireTime`` and ``fk.Event``.

A workflow parameter annotated ``fk.FireTime`` receives the *logical* time of the schedule
fire that started the run (the cron time it stands for, not the wall time it began: a fire
caught up after downtime, or backfilled, still sees its own slot). One annotated
``fk.Event`` receives the trigger that started it (a run that ended, an alias that moved,
objects that appeared under a prefix). Both are plain values: they are hashed into cache
keys like any input, and given on the command line as text (``--when 2026-03-29T02:00Z``,
``--event '{"kind": "alias", ...}'``).

Bottom layer: imports nothing from flowkit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any, Literal

EventKind = Literal["success", "failure", "alias", "new_objects", "manual"]
EVENT_KINDS: tuple[EventKind, ...] = ("success", "failure", "alias", "new_objects", "manual")


class FireTime(dt.datetime):
    """The logical time of a schedule fire: a time-zone-aware ``datetime`` (in the
    schedule's zone). ``FireTime.parse("2026-03-29T02:00:00+01:00")`` reads ISO 8601."""

    @classmethod
    def of(cls, when: dt.datetime) -> FireTime:
        """``when`` as a FireTime; ValueError if it has no time zone (a fire is an instant)."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(
                f"fire time {when.isoformat()} has no time zone: give an aware datetime "
                "(a cron time names one instant only within its zone)"
            )
        return cls(
            when.year,
            when.month,
            when.day,
            when.hour,
            when.minute,
            when.second,
            when.microsecond,
            tzinfo=when.tzinfo,
            fold=when.fold,
        )

    @classmethod
    def parse(cls, text: str) -> FireTime:
        """An ISO 8601 time with an offset (``Z`` allowed); ValueError naming the text."""
        try:
            when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(
                f"{text!r} is not an ISO 8601 time (write 2026-03-29T02:00:00+01:00)"
            ) from exc
        return cls.of(when)

    def __reduce__(self) -> tuple[Any, ...]:
        # datetime's own reduce rebuilds a plain datetime for subclasses' extra state only;
        # an ISO text round-trips the zone offset and stays readable in a pickle.
        return (FireTime.parse, (self.isoformat(),))


@dataclasses.dataclass(frozen=True)
class Event:
    """The trigger that started a run.

    ``kind``: ``success`` / ``failure`` (``workflow`` and ``run_id`` name the run that
    ended), ``alias`` (``model``, ``alias``, ``version``: the version the alias now names,
    ``previous``: the one it named), ``new_objects`` (``urls``: the objects that appeared
    under ``prefix``), ``manual`` (started by hand). ``time``: when it was seen (UTC epoch
    seconds); ``trigger``: the name of the trigger that fired.
    """

    kind: EventKind
    trigger: str = ""
    time: float = 0.0
    workflow: str | None = None
    run_id: str | None = None
    model: str | None = None
    alias: str | None = None
    version: str | None = None
    previous: str | None = None
    prefix: str | None = None
    urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"event kind {self.kind!r}: use one of {', '.join(EVENT_KINDS)}")
        object.__setattr__(self, "urls", tuple(self.urls))

    def to_json(self) -> str:
        """The event as one JSON object (what ``--event`` takes)."""
        return json.dumps(
            {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, (), [])},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Event:
        """Read :meth:`to_json`'s text; ValueError naming what is wrong."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"event {text[:80]!r} is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("an event is a JSON object with a 'kind'")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"event has unknown fields {unknown}; known: {sorted(known)}")
        if "urls" in data:
            data["urls"] = tuple(data["urls"])
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"event: {exc}") from exc


__all__ = ["EVENT_KINDS", "Event", "EventKind", "FireTime"]
