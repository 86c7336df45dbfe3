"""Cron times in a zone (flowkit.automation.crontimes): DST changes, windows, bad input."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from flowkit.automation.crontimes import UTC, Cron, CronError, check_expression, check_zone

PARIS = "Europe/Paris"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[arg-type,misc]


def local_texts(cron: Cron, times: list[dt.datetime]) -> list[str]:
    return [cron.local(t).isoformat() for t in times]


def test_a_daily_time_missing_in_spring_fires_once_shifted_past_the_change() -> None:
    cron = Cron("30 2 * * *", PARIS)
    times = cron.between(utc(2026, 3, 27), utc(2026, 3, 31))
    assert local_texts(cron, times) == [
        "2026-03-27T02:30:00+01:00",
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:30:00+02:00",  # 02:30 does not exist that night
        "2026-03-30T02:30:00+02:00",
    ]


def test_a_daily_time_repeated_in_autumn_fires_once_at_its_first_occurrence() -> None:
    cron = Cron("30 2 * * *", PARIS)
    times = cron.between(utc(2026, 10, 24), utc(2026, 10, 27))
    assert local_texts(cron, times) == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",  # not again at 02:30+01:00
        "2026-10-26T02:30:00+01:00",
    ]


def test_hourly_fires_every_real_hour_through_both_changes() -> None:
    cron = Cron("0 * * * *", PARIS)
    spring = cron.between(utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))  # the 23-hour day
    autumn = cron.between(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))  # the 25-hour day
    assert len(spring) == 23
    assert len(autumn) == 25
    for times in (spring, autumn):
        gaps = {b - a for a, b in itertools.pairwise(times)}
        assert gaps == {dt.timedelta(hours=1)}
    assert "2026-10-25T02:00:00+01:00" in local_texts(cron, autumn)
    assert "2026-10-25T02:00:00+02:00" in local_texts(cron, autumn)


def test_every_quarter_hour_keeps_its_pace_through_the_repeated_hour() -> None:
    cron = Cron("*/15 * * * *", PARIS)
    times = cron.between(utc(2026, 10, 24, 23), utc(2026, 10, 25, 3))
    assert len(times) == 16
    assert {b - a for a, b in itertools.pairwise(times)} == {dt.timedelta(minutes=15)}


def test_latest_and_next_around_the_spring_change() -> None:
    cron = Cron("30 2 * * *", PARIS)
    shifted = utc(2026, 3, 29, 1, 30)  # 03:30 CEST
    assert cron.latest(shifted) == shifted
    assert cron.latest(shifted - dt.timedelta(seconds=1)) == utc(2026, 3, 28, 1, 30)
    assert cron.next_after(utc(2026, 3, 28, 1, 30)) == shifted
    assert cron.next_after(shifted) == utc(2026, 3, 30, 0, 30)


def test_a_limit_keeps_the_oldest_times_of_a_long_window() -> None:
    cron = Cron("* * * * *")
    times = cron.between(utc(2025, 1, 1), utc(2026, 1, 1), limit=101)
    assert len(times) == 101
    assert times[0] == utc(2025, 1, 1, 0, 1)
    assert times[-1] == utc(2025, 1, 1, 1, 41)


ZONES = ["UTC", PARIS, "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
EXPRS = ["0 * * * *", "*/20 * * * *", "30 2 * * *", "15 1,2,3 * * *", "0 0 * * 0", "45 23 L * *"]


@settings(max_examples=40, deadline=None)
@given(
    expr=st.sampled_from(EXPRS),
    tz=st.sampled_from(ZONES),
    start=st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2027, 12, 1)),
    hours=st.integers(min_value=1, max_value=24 * 8),
    cut=st.floats(min_value=0.0, max_value=1.0),
)
def test_windows_split_anywhere_give_the_same_times(
    expr: str, tz: str, start: dt.datetime, hours: int, cut: float
) -> None:
    """A window's times are the union of its two halves' times, sorted, unique, each after
    the previous; latest() and next_after() agree with them."""
    cron = Cron(expr, tz)
    a = start.replace(tzinfo=UTC)
    b = a + dt.timedelta(hours=hours)
    m = a + (b - a) * cut
    whole = cron.between(a, b)
    assert whole == cron.between(a, m) + cron.between(m, b)
    assert all(x < y for x, y in itertools.pairwise(whole))
    assert all(a < t <= b for t in whole)
    if whole:
        assert cron.latest(b) == whole[-1]
        assert cron.next_after(a) == whole[0]
    zone = zoneinfo.ZoneInfo(tz)
    for t in whole:  # each time is its wall time, or a missing wall time moved past the gap
        wall = t.astimezone(zone).replace(tzinfo=None)
        assert any(
            croniter.match(expr, wall - dt.timedelta(minutes=shift)) for shift in (0, 30, 60)
        )


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("", "five fields"),
        ("x", "has 1 fields"),
        ("0 * * * * 5", "has 6 fields"),  # croniter would read a sixth field as seconds
        ("61 * * * *", "not valid"),
        ("0 0 30 2 *", "names no date"),
        ("MON * * * *", "not valid"),
    ],
)
def test_bad_expressions_are_refused_naming_them_and_the_fix(expr: str, says: str) -> None:
    with pytest.raises(CronError, match=says) as info:
        check_expression(expr)
    assert "'0 * * * *'" in str(info.value)


def test_expressions_are_normalised_and_names_accepted() -> None:
    assert check_expression("0   *  * * *") == "0 * * * *"
    assert check_expression("@daily") == "@daily"


@pytest.mark.parametrize("zone", ["Mars/Base", "", "../etc/passwd", "UTC+1"])
def test_unknown_zones_are_refused_naming_them(zone: str) -> None:
    with pytest.raises(CronError, match="Europe/Paris"):
        check_zone(zone)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        Cron("0 * * * *").between(dt.datetime(2026, 1, 1), utc(2026, 1, 2))
