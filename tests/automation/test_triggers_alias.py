"""``--on-alias MODEL@ALIAS`` on a real MLflow registry (sqlite in a temp folder): a promotion
and a rollback are two events; a registry that cannot be reached fires nothing and keeps the
cursor."""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from pathlib import Path

import pytest

from flowkit import ml
from flowkit.automation import trigger_store
from flowkit.automation.trigger_defs import state_path
from flowkit.automation.triggers import due, read_cursor, write_cursor
from flowkit.cli import main
from flowkit.events import Event
from flowkit.store import Store

WORKFLOW = """
import flowkit as fk

@fk.task
def refresh(event: fk.Event) -> str:
    return f"{event.model}@{event.alias}: v{event.previous} -> v{event.version}"

@fk.workflow
def serve_refresh(event: fk.Event) -> str:
    return refresh(event)
"""


@pytest.fixture(scope="module")
def blank_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow sqlite registry with its migrations applied (made once)."""
    from flowkit.ml import uris

    uris.import_mlflow()
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("registry") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def registry(tmp_path: Path, blank_db: Path) -> str:
    """A registry with model ``clf`` and its versions 1 and 2 (no artifacts: the trigger only
    reads where the alias points)."""
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    db.write_bytes(blank_db.read_bytes())
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("clf")
    for _ in range(2):
        client.create_model_version("clf", source=(tmp_path / "model").as_uri())
    return uri


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Store]:
    wf = tmp_path / "refresh.py"
    wf.write_text(WORKFLOW)
    store = Store(tmp_path / "store")
    store.check()
    return wf, store


def alias_events(store: Store) -> list[Event]:
    return [Event.from_json(la.params["event"]) for la in due(store, time.time())]


def test_promote_then_rollback_fire_two_events(registry: str, setup: tuple[Path, Store]) -> None:
    wf, store = setup
    ml.promote("clf", 1, tracking_uri=registry)  # before the trigger: not an event
    assert main(["trigger", "add", f"{wf}:serve_refresh", "--on-alias", "clf@production",
                 "--tracking-uri", registry, "--store", store.url]) == 0  # fmt: skip
    assert alias_events(store) == []

    ml.promote("clf", 2, tracking_uri=registry)
    [promoted] = alias_events(store)
    assert (promoted.kind, promoted.model, promoted.alias) == ("alias", "clf", "production")
    assert (promoted.previous, promoted.version) == ("1", "2")
    assert alias_events(store) == []  # fired once

    ml.rollback("clf", tracking_uri=registry)
    [rolled_back] = alias_events(store)
    assert (rolled_back.previous, rolled_back.version) == ("2", "1")

    ml.promote("clf", 2, tracking_uri=registry)  # back to a version it held before: an event
    [again] = alias_events(store)
    assert (again.previous, again.version) == ("1", "2")
    assert alias_events(store) == []


def test_an_alias_set_after_the_trigger_fires_and_an_unset_one_does_not(
    registry: str, setup: tuple[Path, Store]
) -> None:
    wf, store = setup
    assert main(["trigger", "add", f"{wf}:serve_refresh", "--on-alias", "clf@staging",
                 "--tracking-uri", registry, "--store", store.url]) == 0  # fmt: skip
    assert alias_events(store) == []  # no such alias yet: nothing to fire
    ml.promote("clf", 2, alias="staging", tracking_uri=registry)
    [first] = alias_events(store)
    assert (first.previous, first.version) == (None, "2")


def test_a_registry_that_cannot_be_reached_keeps_the_cursor(
    registry: str,
    setup: tuple[Path, Store],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wf, store = setup
    ml.promote("clf", 1, tracking_uri=registry)
    assert main(["trigger", "add", f"{wf}:serve_refresh", "--on-alias", "clf@production",
                 "--tracking-uri", registry, "--store", store.url, "--name", "t"]) == 0  # fmt: skip
    before = store.read_doc(state_path("t"))["cursor"]
    ml.promote("clf", 2, tracking_uri=registry)
    # the registry's server is down: a port nothing listens on (MLflow told not to retry)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    definition = trigger_store.load(store, "t")
    down = dataclasses.replace(definition, tracking_uri=f"http://127.0.0.1:{closed_port()}")
    trigger_store.save(store, down)
    with caplog.at_level(logging.WARNING, logger="flowkit"):
        assert alias_events(store) == []
        assert alias_events(store) == []
    assert caplog.text.count("trigger t: alias clf@production") == 1  # once, not every tick
    assert store.read_doc(state_path("t"))["cursor"] == before
    trigger_store.save(store, definition)  # it answers again
    [moved] = alias_events(store)  # the move made while it was down fires now
    assert (moved.previous, moved.version) == ("1", "2")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: connections are refused


def test_bad_alias_input_is_refused(setup: tuple[Path, Store], registry: str) -> None:
    wf, store = setup
    for source in ("clf", "clf@", "@production", "clf@latest"):
        assert main(["trigger", "add", f"{wf}:serve_refresh", "--on-alias", source,
                     "--tracking-uri", registry, "--store", store.url]) == 2  # fmt: skip
    assert main(["trigger", "add", f"{wf}:serve_refresh", "--on-success", "train",
                 "--tracking-uri", registry, "--store", store.url]) == 2  # fmt: skip


def test_a_slow_caller_cannot_move_the_cursor_back(
    registry: str, setup: tuple[Path, Store]
) -> None:
    """Caller B looked before caller A fired a promotion; B's late write would make the
    rollback after it look like no change at all. The compare-and-swap refuses it."""
    wf, store = setup
    ml.promote("clf", 1, tracking_uri=registry)
    assert main(["trigger", "add", f"{wf}:serve_refresh", "--on-alias", "clf@production",
                 "--tracking-uri", registry, "--store", store.url, "--name", "t"]) == 0  # fmt: skip
    definition = trigger_store.load(store, "t")
    stale, version = read_cursor(store, definition)  # B reads...
    ml.promote("clf", 2, tracking_uri=registry)
    assert [(e.previous, e.version) for e in alias_events(store)] == [("1", "2")]  # A fires
    ml.rollback("clf", tracking_uri=registry)
    assert stale is not None
    assert not write_cursor(store, definition, stale, time.time(), version)  # B is too late
    assert [(e.previous, e.version) for e in alias_events(store)] == [("2", "1")]
