"""Which instants a cron expression names in a time zone, daylight-saving changes included.

``croniter`` walks *wall-clock* times (naive datetimes); each wall time is then placed in the
zone with :mod:`zoneinfo`, and every instant is handled in UTC from there on (two aware
datetimes of one zone compare by wall time and ignore ``fold``, so an ambiguous hour's two
instants would look equal).

DST policy, as in Vixie cron:

* a wall time that does not exist (spring forward: 02:30 in Paris on the last Sunday of
  March) fires once, at the same distance past the change (03:30 CEST); a fire that lands on
  an instant another wall time already names fires once (``0 * * * *`` fires 23 times that
  day);
* a wall time that occurs twice (fall back: 02:30 on the last Sunday of October) fires once,
  at its first occurrence -- unless the expression fires every hour (its hour field is
  ``*``): then it fires at both, so ``*/15 * * * *`` keeps its pace through the repeated
  hour.

Only five-field expressions (``MIN HOUR DAY MONTH WEEKDAY``) and croniter's ``@hourly``-style
names are taken: croniter's sixth field (seconds) would make a typo fire every second.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import zoneinfo
from typing import Any

from flowkit.errors import FlowkitError

UTC = dt.timezone.utc
# Wider than any zone's change of offset (Antarctica/Troll: 2 h), so the wall times around
# a window's ends that land inside it after a change are walked too.
_SLACK = dt.timedelta(hours=3)
_EXAMPLE = "write five fields MIN HOUR DAY MONTH WEEKDAY, e.g. '0 * * * *' (hourly)"


class CronError(FlowkitError, ValueError):
    """A cron expression or a time zone that cannot be used; the message says how to fix it."""


def check_expression(expr: Any) -> str:
    """``expr`` with its spaces normalised; CronError naming it and the fix if croniter
    refuses it, it has other than five fields, or it can never fire (``0 0 30 2 *``)."""
    from croniter import croniter

    if not isinstance(expr, str) or not expr.strip():
        raise CronError(f"cron expression {expr!r}: {_EXAMPLE}")
    text = " ".join(expr.split())
    if not text.startswith("@") and len(text.split(" ")) != 5:
        raise CronError(f"cron expression {text!r} has {len(text.split(' '))} fields; {_EXAMPLE}")
    try:
        croniter(text)
    except (
        ValueError,
        KeyError,
    ) as exc:  # croniter's errors are ValueErrors (KeyError: a bad name)
        raise CronError(f"cron expression {text!r} is not valid ({exc}); {_EXAMPLE}") from exc
    if Cron(text, "UTC").next_after(dt.datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise CronError(f"cron expression {text!r} names no date that exists; {_EXAMPLE}")
    return text


def check_zone(name: Any) -> str:
    """``name`` if it is an IANA time zone this machine knows; CronError otherwise."""
    if not isinstance(name, str) or not name:
        raise CronError(f"time zone {name!r}: give an IANA name such as UTC or Europe/Paris")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(
            f"unknown time zone {name!r}: give an IANA name such as UTC or Europe/Paris "
            "(`python -c 'import zoneinfo; print(sorted(zoneinfo.available_timezones()))'` "
            "lists them; install the tzdata package if that list is empty)"
        ) from exc
    return name


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def to_utc(when: dt.datetime) -> dt.datetime:
    """An aware datetime as UTC; ValueError for a naive one (it names no instant)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{when.isoformat()} has no time zone; give an aware datetime")
    return when.astimezone(UTC)


def stamp(when: dt.datetime) -> str:
    """A fire's instant as a sortable UTC name: ``20260329T013000Z``."""
    return to_utc(when).strftime("%Y%m%dT%H%M%SZ")


@dataclasses.dataclass(frozen=True)
class Cron:
    """A checked expression in a zone; every method takes and returns UTC-comparable aware
    datetimes (results are in UTC: :meth:`local` shows one in the zone)."""

    expr: str
    tz: str = "UTC"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return _zone(self.tz)

    @functools.cached_property
    def _every_hour(self) -> bool:
        from croniter import croniter

        return bool(croniter(self.expr).expanded[1] == ["*"])

    def local(self, when: dt.datetime) -> dt.datetime:
        """``when`` in the schedule's zone (the offset in force then)."""
        return to_utc(when).astimezone(self.zone)

    def between(
        self, after: dt.datetime, upto: dt.datetime, limit: int | None = None
    ) -> list[dt.datetime]:
        """Fire instants ``t`` with ``after < t <= upto``, oldest first, in UTC; with
        ``limit``, only the oldest ``limit`` (walked lazily: a year of minutes costs
        ``limit`` steps, not 500,000)."""
        from croniter import croniter

        lo, hi = to_utc(after), to_utc(upto)
        if hi <= lo:
            return []
        start = self._wall(lo) - _SLACK
        end = self._wall(hi) + _SLACK
        found: set[dt.datetime] = set()
        walk = croniter(self.expr, start)
        while True:
            wall = self._next(walk)
            if wall is None or wall > end:
                break
            found.update(t for t in self._instants(wall) if lo < t <= hi)
            if limit is not None and len(found) > limit:
                # wall times more than a shift later name later instants only
                end = min(end, wall + _SLACK)
        return sorted(found)[:limit]

    def latest(self, upto: dt.datetime) -> dt.datetime | None:
        """The last fire instant at or before ``upto`` (UTC), None if it never fired."""
        from croniter import croniter

        hi = to_utc(upto)
        floor = self._wall(hi) - _SLACK
        walk = croniter(self.expr, self._wall(hi) + _SLACK)
        best: dt.datetime | None = None
        while True:
            wall = self._prev(walk)
            if wall is None:
                return best
            for t in self._instants(wall):
                if t <= hi and (best is None or t > best):
                    best = t
            if wall < floor and best is not None:
                return best

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        """The first fire instant after ``after`` (UTC), None if there is none."""
        from croniter import croniter

        lo = to_utc(after)
        walk = croniter(self.expr, self._wall(lo) - _SLACK)
        best: dt.datetime | None = None
        while True:
            wall = self._next(walk)
            if wall is None:
                return best
            for t in self._instants(wall):
                if t > lo and (best is None or t < best):
                    best = t
            if best is not None and wall > self._wall(lo) + _SLACK:
                return best

    def _wall(self, instant: dt.datetime) -> dt.datetime:
        return instant.astimezone(self.zone).replace(tzinfo=None, fold=0)

    def _instants(self, wall: dt.datetime) -> list[dt.datetime]:
        """The UTC instants a wall time names under the DST policy (module docstring)."""
        first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        if first.astimezone(self.zone).replace(tzinfo=None) != wall:
            return [first]  # does not exist: fold=0 read it with the old offset, i.e. later
        second = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if second != first and self._every_hour:
            return [first, second]
        return [first]

    @staticmethod
    def _next(walk: Any) -> dt.datetime | None:
        from croniter import CroniterBadDateError

        try:
            found: dt.datetime = walk.get_next(dt.datetime)
        except CroniterBadDateError:  # no date matches (30 February)
            return None
        return found

    @staticmethod
    def _prev(walk: Any) -> dt.datetime | None:
        from croniter import CroniterBadDateError

        try:
            found: dt.datetime = walk.get_prev(dt.datetime)
        except CroniterBadDateError:
            return None
        return found


__all__ = ["UTC", "Cron", "CronError", "check_expression", "check_zone", "stamp", "to_utc"]
