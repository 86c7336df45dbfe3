"""``--on-new s3://...`` against a real S3 server (moto on 127.0.0.1), credentials and endpoint
from the environment as a user's scheduler would have them."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from flowkit.automation.trigger_defs import state_path
from flowkit.automation.triggers import due
from flowkit.cli import main
from flowkit.events import Event
from flowkit.store import Store

WORKFLOW = """
import flowkit as fk

@fk.task
def count(event: fk.Event) -> int:
    return len(event.urls)

@fk.workflow
def ingest(event: fk.Event) -> int:
    return count(event)
"""


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An s3fs filesystem on the test server, and the same settings in the environment."""
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "flowkit-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "flowkit-test")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    return s3fs.S3FileSystem(
        key="flowkit-test",
        secret="flowkit-test",
        client_kwargs={"endpoint_url": s3_endpoint},
        skip_instance_cache=True,
    )


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Store]:
    wf = tmp_path / "ingest.py"
    wf.write_text(WORKFLOW)
    store = Store(tmp_path / "store")
    store.check()
    return wf, store


def urls(store: Store) -> list[tuple[str, ...]]:
    return [Event.from_json(la.params["event"]).urls for la in due(store, time.time())]


def test_new_objects_in_a_bucket_fire_once(s3: Any, setup: tuple[Path, Store]) -> None:
    wf, store = setup
    bucket = f"fk-{uuid.uuid4().hex[:10]}"
    s3.mkdir(bucket)
    s3.pipe(f"{bucket}/incoming/old.csv", b"there before")
    prefix = f"s3://{bucket}/incoming/"
    assert main(["trigger", "add", f"{wf}:ingest", "--on-new", prefix, "--store", store.url]) == 0
    assert urls(store) == []

    s3.pipe(f"{bucket}/incoming/a.csv", b"1")
    s3.pipe(f"{bucket}/incoming/day=2/b.csv", b"2")
    s3.pipe(f"{bucket}/incoming2/not-below.csv", b"3")  # shares the text, not the folder
    s3.pipe(f"{bucket}/elsewhere.csv", b"4")
    [got] = urls(store)
    assert sorted(got) == [f"s3://{bucket}/incoming/a.csv", f"s3://{bucket}/incoming/day=2/b.csv"]
    assert urls(store) == []

    s3.pipe(f"{bucket}/incoming/old.csv", b"rewritten")  # a new ETag: new again
    assert urls(store) == [(f"s3://{bucket}/incoming/old.csv",)]
    assert urls(store) == []


def test_a_bucket_that_is_gone_fires_nothing_and_keeps_the_cursor(
    s3: Any, setup: tuple[Path, Store], caplog: pytest.LogCaptureFixture
) -> None:
    wf, store = setup
    bucket = f"fk-{uuid.uuid4().hex[:10]}"
    s3.mkdir(bucket)
    s3.pipe(f"{bucket}/in/kept.csv", b"x")
    assert main(["trigger", "add", f"{wf}:ingest", "--on-new", f"s3://{bucket}/in/", "--name",
                 "t", "--store", store.url]) == 0  # fmt: skip
    before = store.read_doc(state_path("t"))["cursor"]
    s3.rm(bucket, recursive=True)
    with caplog.at_level(logging.WARNING, logger="flowkit"):
        assert urls(store) == []
    assert f"trigger t: prefix s3://{bucket}/in/ could not be read" in caplog.text
    assert store.read_doc(state_path("t"))["cursor"] == before
    s3.mkdir(bucket)
    s3.pipe(f"{bucket}/in/new.csv", b"y")
    assert urls(store) == [(f"s3://{bucket}/in/new.csv",)]


def test_add_refuses_a_bucket_it_cannot_list(s3: Any, setup: tuple[Path, Store]) -> None:
    wf, store = setup
    missing = f"s3://fk-missing-{uuid.uuid4().hex[:8]}/in/"
    assert main(["trigger", "add", f"{wf}:ingest", "--on-new", missing, "--store", store.url]) == 2
    assert main(["trigger", "list", "--store", store.url]) == 0
