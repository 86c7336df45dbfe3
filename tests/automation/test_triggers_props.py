"""Properties of triggers over random histories: wherever the looks fall among the changes,
each event fires exactly once, and only events fire (concurrent looks: test_triggers.py and
test_triggers_cli.py race threads and processes)."""

from __future__ import annotations

import time
import uuid

import fsspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowkit.automation import trigger_store
from flowkit.automation.trigger_defs import TriggerDef
from flowkit.automation.triggers import due
from flowkit.events import Event
from flowkit.store import Store

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def new_store() -> Store:
    store = Store(f"memory://fk-props-{uuid.uuid4().hex[:12]}")
    store.check()
    return store


def add(store: Store, on: str, source: str) -> None:
    definition = TriggerDef(
        name="t", target="/nowhere/flows.py:react", workflow="react", on=on,  # type: ignore[arg-type]
        source=source, event_param="event",
    )  # fmt: skip
    trigger_store.add(store, definition)
    assert due(store, time.time()) == []  # the first look records the present


def fired(store: Store) -> list[Event]:
    return [Event.from_json(la.params["event"]) for la in due(store, time.time())]


# a step: (what, which object or run)
OBJECT_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 4)),
        st.tuples(st.just("delete"), st.integers(0, 4)),
        st.tuples(st.just("look"), st.just(0)),
    ),
    max_size=25,
)


@SETTINGS
@given(steps=OBJECT_STEPS, before=st.sets(st.integers(0, 4)))
def test_objects_fire_once_per_write_since_the_last_look(
    steps: list[tuple[str, int]], before: set[int]
) -> None:
    store = new_store()
    fs = fsspec.filesystem("memory")
    prefix = f"memory://fk-inbox-{uuid.uuid4().hex[:12]}"
    size = 0

    def put(i: int) -> None:
        nonlocal size
        size += 1  # every write has a size never seen before: its signature is new
        fs.pipe(f"{prefix}/o{i}.bin", b"x" * size)

    for i in before:
        put(i)
    fs.mkdir(prefix)
    add(store, "new", prefix)
    written: set[str] = set()  # written since the last look
    for what, n in [*steps, ("look", 0)]:
        url = "memory:///" + prefix.removeprefix("memory://") + f"/o{n}.bin"  # fsspec's spelling
        if what == "put":
            put(n)
            written.add(url)
        elif what == "delete" and fs.exists(url):
            fs.rm(url)
            written.discard(url)
        elif what == "look":
            events = fired(store)
            got = [u for e in events for u in e.urls]
            assert sorted(got) == sorted(written)  # each new write once, nothing else
            assert len(events) == (1 if written else 0)  # one run per look
            written = set()


RUN_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.integers(0, 5)),
        st.tuples(
            st.sampled_from(["succeeded", "failed", "lost", "interrupted"]), st.integers(0, 5)
        ),
        st.tuples(st.just("look"), st.just(0)),
    ),
    max_size=30,
)


@SETTINGS
@given(steps=RUN_STEPS, on=st.sampled_from(["success", "failure"]))
def test_each_ended_run_fires_once_wherever_the_looks_fall(
    steps: list[tuple[str, int]], on: str
) -> None:
    store = new_store()
    add(store, on, "train")
    wanted = {"success": {"succeeded"}, "failure": {"failed", "lost"}}[on]
    status: dict[str, str] = {}
    ended: set[str] = set()  # runs whose end is final (a header is written once it ends)
    fired_ids: list[str] = []
    for what, n in [*steps, ("look", 0)]:
        run_id = f"run-{n}"
        if what == "start" and run_id not in status:
            status[run_id] = "running"
            write(store, run_id, "running")
        elif what not in ("start", "look") and run_id in status and run_id not in ended:
            status[run_id] = what
            ended.add(run_id)
            write(store, run_id, what)
        elif what == "look":
            fired_ids += [e.run_id or "" for e in fired(store)]
    fired_ids += [e.run_id or "" for e in fired(store)]
    assert sorted(fired_ids) == sorted(r for r in ended if status[r] in wanted)


def write(store: Store, run_id: str, status: str) -> None:
    now = time.time()
    header = {"id": run_id, "workflow": "train", "started": now, "host": "elsewhere",
              "pid": 1, "heartbeat": now, "status": status}  # fmt: skip
    if status == "lost":  # what a reader sees once the machine running it went silent
        header.update(status="running", heartbeat=now - 3600)
    store.write_run(run_id, header)
