"""Schedules in the store and fk.schedule (flowkit.automation.schedules, schedule_defs)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowkit as fk
from flowkit.automation import schedules
from flowkit.automation.crontimes import UTC
from flowkit.automation.schedule_defs import ScheduleDef, ScheduleDefError, definition_path
from flowkit.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store")
    s.check()
    return s


@fk.task
def echo(n: int, label: str) -> str:
    return f"{label}{n}"


@fk.workflow
def needs_label(label: str, n: int = 1, when: fk.FireTime | None = None) -> str:
    return echo(n, label)


def test_fk_schedule_stores_a_schedule_and_an_update_keeps_its_state(store: Store) -> None:
    sd = fk.schedule(
        needs_label, cron="0 3 * * *", tz="Europe/Paris", params={"label": "x"}, store=store
    )
    assert sd.target == f"{os.path.abspath(__file__)}:needs_label"
    assert sd.params == {"label": "x"}
    assert sd.fire_param == "when"  # FireTime | None counts
    assert schedules.read(store, "needs_label") == sd
    schedules.update(
        store, "needs_label", lambda s: _with(s, last_fire="2026-01-01T02:00:00+00:00")
    )
    again = fk.schedule(needs_label, cron="0 4 * * *", params={"label": "y", "n": 2}, store=store)
    assert again.cron == "0 4 * * *"
    assert again.params == {"label": "y", "n": "2"}
    assert again.last_fire == "2026-01-01T02:00:00+00:00"
    assert again.created == sd.created
    same, what = schedules.upsert(
        store, schedules.make(needs_label, cron="0 4 * * *", params={"label": "y", "n": 2})
    )
    assert what == "unchanged" and same == again


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"params": {"label": "x", "nope": 1}}, "has no input 'nope'; its inputs: label, n, when"),
        ({"params": {}}, "needs input(s) label with no default"),
        ({"params": {"label": "x", "when": "2026-01-01T00:00Z"}}, "is an fk.FireTime"),
        ({"params": {"label": object()}}, "cannot be given on the command line"),
        ({"params": {"label": "x"}, "name": "../up"}, "schedule name '../up' is not valid"),
        ({"params": {"label": "x"}, "cron": "* * *"}, "has 3 fields"),
        ({"params": {"label": "x"}, "tz": "Nowhere/City"}, "unknown time zone 'Nowhere/City'"),
        ({"params": {"label": "x"}, "catchup": "some"}, "catchup 'some': use one of"),
        ({"params": {"label": "x"}, "overlap": "never"}, "overlap 'never': use one of"),
        ({"params": {"label": "x"}, "notify": ["ftp://x"]}, "give an http:// or https:// URL"),
        ({"params": {"label": "x"}, "address": "ray://h:10001"}, "http://HEAD:8265"),
    ],
)
def test_fk_schedule_refuses_bad_input_naming_it(
    store: Store, kwargs: dict[str, Any], says: str
) -> None:
    options: dict[str, Any] = {"cron": "0 * * * *", **kwargs}
    with pytest.raises(ScheduleDefError, match=_escape(says)):
        fk.schedule(needs_label, store=store, **options)
    assert schedules.names(store) == []


def _escape(text: str) -> str:
    return re.escape(text)


def test_values_become_the_texts_flowkit_run_reads() -> None:
    texts = schedules.param_texts(needs_label, {"label": "a b", "n": 3})
    assert texts == {"label": "a b", "n": "3"}
    assert schedules.value_text(True, "x") == "true"
    assert schedules.value_text([1, 2], "x") == "[1, 2]"
    assert schedules.value_text(Path("/a/b"), "x") == "/a/b"
    assert schedules.value_text(dt.datetime(2026, 1, 1, tzinfo=UTC), "x") == (
        "2026-01-01T00:00:00+00:00"
    )


def test_the_decorator_declares_a_schedule() -> None:
    @fk.workflow(schedule="*/5 * * * *")
    def every_five(n: int = 1) -> str:
        return echo(n, "x")

    assert every_five.schedule == "*/5 * * * *"
    assert needs_label.schedule is None
    with pytest.raises(TypeError, match="cron text"):
        fk.workflow(schedule=5)(lambda: None)  # type: ignore[call-overload]


def test_unknown_names_are_named_with_the_known_ones(store: Store) -> None:
    fk.schedule(needs_label, cron="0 * * * *", params={"label": "x"}, store=store, name="a")
    for call in (
        lambda: schedules.read(store, "b"),
        lambda: schedules.set_paused(store, "b", True),
        lambda: schedules.remove(store, "b"),
    ):
        with pytest.raises(schedules.UnknownScheduleError, match=r"no schedule 'b' .*schedules: a"):
            call()


def test_pausing_while_a_scheduler_records_fires_loses_neither(store: Store) -> None:
    """Both sides change the document by compare-and-swap: 50 recorded fires and the last
    pause all survive."""
    fk.schedule(needs_label, cron="0 * * * *", params={"label": "x"}, store=store)
    stop = threading.Event()
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)

    errors: list[BaseException] = []

    def record() -> None:
        try:
            for i in range(1, 51):
                when = (start + dt.timedelta(hours=i)).isoformat()
                schedules.update(store, "needs_label", functools.partial(_with, last_fire=when))
        except BaseException as exc:  # reported below; the pauser must stop either way
            errors.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=record)
    thread.start()
    paused = False
    # a pause every 10 ms: a pauser spinning without a break could win every swap and
    # starve the recorder (which then gives up: "the document kept changing")
    while not stop.wait(0.01):
        paused = not paused
        schedules.set_paused(store, "needs_label", paused)
    thread.join()
    assert errors == []
    final = schedules.read(store, "needs_label")
    assert final.last_fire == (start + dt.timedelta(hours=50)).isoformat()
    assert final.paused is paused


def _with(sd: ScheduleDef, **changes: Any) -> ScheduleDef:
    return dataclasses.replace(sd, **changes)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.dictionaries(
        st.sampled_from([*ScheduleDef.__dataclass_fields__, "format", "x"]), JSON, max_size=4
    )
)
def test_a_planted_document_is_read_or_refused_with_a_named_field(changes: dict[str, Any]) -> None:
    good = schedules.make(
        "/a/flows.py:wf", cron="0 * * * *", name="s", now=dt.datetime(2026, 1, 1, tzinfo=UTC)
    ).to_dict()
    doc = {**good, **changes}
    problem = None
    try:
        sd = ScheduleDef.from_dict(doc, "s")
    except ScheduleDefError as exc:
        problem = str(exc)
    if problem is not None:
        assert problem.startswith("schedule s")
    else:
        assert sd.name == "s"
        assert isinstance(sd.anchor(), dt.datetime)


def test_a_schedules_file_is_where_the_docs_say(store: Store) -> None:
    fk.schedule(needs_label, cron="0 * * * *", params={"label": "x"}, store=store)
    assert definition_path("needs_label") == "schedules/needs_label.json"
    assert store.read_doc("schedules/needs_label.json")["cron"] == "0 * * * *"


def test_a_damaged_schedule_can_be_removed(store: Store) -> None:
    store.write_doc("schedules/broken.json", {"format": 1, "name": "broken", "cron": []})
    with pytest.raises(ScheduleDefError, match="schedule broken: field 'target'"):
        schedules.read(store, "broken")
    schedules.remove(store, "broken")
    assert schedules.names(store) == []


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("target", "--help", "is not FILE.py:WORKFLOW"),
        ("target", "/a/flows.py", "is not FILE.py:WORKFLOW"),
        ("params", {"x --store=/elsewhere": "1"}, "is not a Python name"),
        ("fire_param", "when=1", "is not a Python name"),
        ("notify", ["--store=/elsewhere"], "is not an http:// or https:// URL"),
        ("address", "file:///etc", "is not an http:// or https:// URL"),
        ("backend", "--store=/x", "is not a backend name"),
    ],
)
def test_a_planted_document_cannot_slip_options_into_the_run_command(
    field: str, value: Any, says: str
) -> None:
    good = schedules.make(
        "/a/flows.py:wf", cron="0 * * * *", name="s", now=dt.datetime(2026, 1, 1, tzinfo=UTC)
    ).to_dict()
    with pytest.raises(ScheduleDefError, match=re.escape(says)):
        ScheduleDef.from_dict({**good, field: value}, "s")
