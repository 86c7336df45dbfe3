"""Runs started with ``tags=`` and a chosen ``run_id`` (what schedules, triggers and
``flowkit submit`` rely on): kept in the header, filtered on, refused when they collide."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flowkit as fk
from flowkit.cli import main
from flowkit.records import new_run_id


@fk.task
def double(x: int) -> int:
    return 2 * x


@fk.workflow
def flow(x: int = 2) -> int:
    return double(x)


def test_tags_and_a_chosen_id_are_kept_and_filtered(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    chosen = new_run_id()
    run = fk.run(flow, store=store, run_id=chosen, tags={"schedule": "nightly"})
    other = fk.run(flow, store=store, tags={"schedule": "hourly"})
    assert run.id == chosen
    assert fk.runs.get(chosen, store=store).tags == {"schedule": "nightly"}
    found = fk.runs.list(store=store, tags={"schedule": "nightly"})
    assert [v.id for v in found] == [chosen]
    assert {v.id for v in fk.runs.list(store=store)} == {chosen, other.id}
    assert fk.runs.list(store=store, tags={"schedule": "nightly", "x": "y"}) == []


def test_a_run_id_already_in_the_store_is_refused_and_loses_nothing(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    first = fk.run(flow, store=store, tags={"n": "1"})
    with pytest.raises(fk.FlowkitError, match="already in the store"):
        fk.run(flow, store=store, run_id=first.id, x=5)
    kept = fk.runs.get(first.id, store=store)
    assert (kept.status, kept.output, kept.tags) == ("succeeded", 4, {"n": "1"})


@pytest.mark.parametrize("bad", ["", "../x", ".hidden", "a/b", "a b", 5])
def test_a_run_id_that_cannot_name_a_folder_is_refused(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(fk.FlowkitError, match="run_id="):
        fk.run(flow, store=str(tmp_path / "s"), run_id=bad)
    assert not (tmp_path / "s" / "runs").exists() or not list((tmp_path / "s" / "runs").iterdir())


@pytest.mark.parametrize("bad", [{"a": 1}, {1: "a"}, ["a"], "a=b"])
def test_tags_must_map_str_to_str(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(fk.FlowkitError, match="tags="):
        fk.run(flow, store=str(tmp_path / "s"), tags=bad)


def test_cli_tags_run_id_and_list_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    (tmp_path / "wf.py").write_text(
        "import flowkit as fk\n\n@fk.task\ndef one(x: int) -> int:\n    return x\n\n"
        "@fk.workflow\ndef w(x: int = 1) -> int:\n    return one(x)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWKIT_QUIET", "1")
    args = ["run", "wf.py:w", "--store", "s", "--tag", "team=ml", "--tag", "why=a=b"]
    assert main([*args, "--run-id", "chosen-1"]) == 0
    assert main(["run", "wf.py:w", "--store", "s"]) == 0
    capsys.readouterr()
    assert main(["runs", "list", "--store", "s", "--tag", "why=a=b"]) == 0
    out = capsys.readouterr().out
    assert "chosen-1" in out and len(out.strip().splitlines()) == 2  # header + one run
    assert main(["runs", "show", "chosen-1", "--store", "s"]) == 0
    assert "team=ml why=a=b" in capsys.readouterr().out
    assert main([*args, "--run-id", "chosen-1"]) == 2
    assert "already in the store" in capsys.readouterr().err
    assert main(["run", "wf.py:w", "--store", "s", "--tag", "novalue"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


zones = st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=-5, minutes=-30))])


@given(st.datetimes(timezones=zones))
def test_fire_time_round_trips_through_text_and_pickle(when: dt.datetime) -> None:
    fire = fk.FireTime.of(when)
    assert fire == when and fire.utcoffset() == when.utcoffset()
    for back in (fk.FireTime.parse(fire.isoformat()), pickle.loads(pickle.dumps(fire))):
        assert type(back) is fk.FireTime
        assert back == fire and back.utcoffset() == fire.utcoffset()


def test_fire_time_refuses_a_naive_time_and_bad_text() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        fk.FireTime.parse("2026-03-29T02:00:00")
    with pytest.raises(ValueError, match="not an ISO 8601"):
        fk.FireTime.parse("tomorrow")


@given(
    st.builds(
        fk.Event,
        kind=st.sampled_from(["success", "failure", "alias", "new_objects", "manual"]),
        trigger=st.text(),
        run_id=st.none() | st.text(),
        urls=st.lists(st.text(), max_size=3).map(tuple),
    )
)
def test_event_round_trips_through_json(event: fk.Event) -> None:
    assert fk.Event.from_json(event.to_json()) == event


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("nope", "not JSON"),
        ("[1]", "JSON object"),
        ('{"kind": "x"}', "kind"),
        ('{"k": 1}', "unknown"),
    ],
)
def test_event_refuses_bad_json(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fk.Event.from_json(text)
