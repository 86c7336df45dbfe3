"""The backend seam's mechanics: register() and the entry-point scan, capabilities_of() over
declared and loose capabilities, BackendBase's defaults, the shared SIGALRM helper."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import pytest

import flowkit as fk
import flowkit.backend as fkb
from flowkit.backend import (
    AttemptTimeout,
    BackendBase,
    Capabilities,
    Submission,
    capabilities_of,
    check_store,
    fetch_many,
    register,
)
from flowkit.backends import LocalBackend, ThreadsBackend
from flowkit.backends.alarm import call_with_alarm


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from the built-ins, unscanned, with nothing loaded (undone after)."""
    monkeypatch.setattr(fkb, "_registry", dict(fkb._BUILTIN))
    monkeypatch.setattr(fkb, "_loaded", {})
    monkeypatch.setattr(fkb, "_scanned", None)


class Plugin(LocalBackend):
    name = "plugin"


class OtherPlugin(LocalBackend):
    name = "other"


class FakeEntryPoint:
    def __init__(self, name: str, cls: type[Any], loads: list[str]) -> None:
        self.name, self._cls, self._loads = name, cls, loads

    def load(self) -> type[Any]:
        self._loads.append(self.name)
        return self._cls


# -- register() --------------------------------------------------------------------------------


def test_register_a_class() -> None:
    register("plugin", Plugin)
    assert "plugin" in fk.available_backends()
    assert isinstance(fkb.get_backend("plugin"), Plugin)


def test_register_a_path_imported_on_first_use() -> None:
    register("plugin", f"{__name__}:Plugin")
    assert fkb.backend_class("plugin") is Plugin


def test_a_taken_name_needs_clobber() -> None:
    register("plugin", Plugin)
    register("plugin", Plugin)  # the same target again: a no-op
    with pytest.raises(ValueError, match=r"'plugin' is already registered.*clobber=True"):
        register("plugin", OtherPlugin)
    with pytest.raises(ValueError, match="'local' is already registered"):
        register("local", OtherPlugin)
    assert fkb.backend_class("plugin") is Plugin
    register("plugin", OtherPlugin, clobber=True)
    assert fkb.backend_class("plugin") is OtherPlugin  # the cached class was dropped


def test_registered_names_win_over_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    monkeypatch.setattr(fkb, "_entry_points", lambda: [FakeEntryPoint("plugin", Plugin, loads)])
    register("plugin", OtherPlugin)
    assert fkb.backend_class("plugin") is OtherPlugin
    assert loads == []


# -- entry points: scanned once, classes cached ------------------------------------------------


@pytest.fixture
def counted_scans(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[str]]:
    scans: list[int] = []
    loads: list[str] = []

    def entry_points() -> list[FakeEntryPoint]:
        scans.append(1)
        return [
            FakeEntryPoint("plugin", Plugin, loads),
            FakeEntryPoint("other", OtherPlugin, loads),
        ]

    monkeypatch.setattr(fkb, "_entry_points", entry_points)
    return scans, loads


def test_entry_points_are_scanned_once(counted_scans: tuple[list[int], list[str]]) -> None:
    scans, loads = counted_scans
    assert {"plugin", "other", "local"} <= set(fk.available_backends())
    for _ in range(3):
        assert isinstance(fkb.get_backend("plugin"), Plugin)
        assert isinstance(fkb.get_backend("other"), OtherPlugin)
        with pytest.raises(fk.BackendNotFoundError):
            fkb.get_backend("missing")
    assert fk.available_backends() == sorted(fk.available_backends())
    assert len(scans) == 1
    assert loads == ["plugin", "other"]  # each class loaded once, then cached


def test_builtins_need_no_scan(counted_scans: tuple[list[int], list[str]]) -> None:
    scans, _ = counted_scans
    assert isinstance(fkb.get_backend("local"), LocalBackend)
    assert isinstance(fkb.get_backend("threads"), ThreadsBackend)
    assert scans == []


# -- capabilities_of ---------------------------------------------------------------------------


class Bare:
    """Only the required members, as a third party could write without flowkit's base."""

    name = "bare"

    @property
    def capacity(self) -> int:
        return 3

    def submit(
        self, fn: Callable[..., tuple[Any, Any]], args: Sequence[Any], spec: Submission
    ) -> Future[tuple[Any, Any]]:
        return LocalBackend().submit(fn, args, spec)

    def fetch(self, handle: Any) -> Any:
        return handle

    def __enter__(self) -> Bare:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class LooseAttributes(Bare):
    """The older way: capabilities as loose attributes."""

    values_in_driver = True
    enforces_timeout = True
    parallelism = 2


class Declared(BackendBase):
    name = "declared"
    capabilities = Capabilities(splits_values=True, enforces_timeout=True)

    @property
    def capacity(self) -> int:
        return 8


class DeclaredAndLoose(Declared):
    enforces_timeout = False  # a loose attribute wins over the declared value


def test_nothing_declared_is_the_cautious_default() -> None:
    assert isinstance(Bare(), fk.Backend)
    assert capabilities_of(Bare()) == Capabilities(parallelism=3)  # parallelism = capacity


def test_loose_attributes_are_still_read() -> None:
    caps = capabilities_of(LooseAttributes())
    assert caps == Capabilities(values_in_driver=True, enforces_timeout=True, parallelism=2)


def test_declared_capabilities() -> None:
    caps = capabilities_of(Declared())
    assert caps == Capabilities(splits_values=True, enforces_timeout=True, parallelism=8)
    assert capabilities_of(DeclaredAndLoose()).enforces_timeout is False


def test_builtin_backends_declare_theirs() -> None:
    assert capabilities_of(LocalBackend()) == Capabilities(values_in_driver=True, parallelism=1)
    threads = capabilities_of(ThreadsBackend(max_workers=3))
    assert threads == Capabilities(values_in_driver=True, parallelism=3, cpu_budget=3.0)


# -- BackendBase's defaults and the helpers that read optional members -------------------------


def test_backend_base_defaults() -> None:
    backend = Declared()
    assert isinstance(backend, fk.Backend)
    assert backend.parallelism == backend.capacity == 8
    with backend as entered, backend:
        assert entered is backend
    backend.check_store("memory://anything")  # no check by default
    with pytest.raises(NotImplementedError, match="Declared must implement submit"):
        backend.submit(lambda: (None, None), (), Submission("t"))
    with pytest.raises(NotImplementedError, match="Declared must implement fetch"):
        backend.fetch(1)


def test_fetch_many_defaults_to_one_fetch_each() -> None:
    class Doubling(Declared):
        def fetch(self, handle: Any) -> Any:
            return handle * 2

    assert Doubling().fetch_many([1, 2, 3]) == [2, 4, 6]
    assert fetch_many(Doubling(), [1, 2]) == [2, 4]
    assert fetch_many(Bare(), [1, 2]) == [1, 2]  # no fetch_many member: fetch each


def test_check_store_reaches_the_hook_when_there_is_one() -> None:
    seen: list[str] = []

    class Checking(Declared):
        def check_store(self, url: str) -> None:
            seen.append(url)

    check_store(Checking(), "s3://bucket/fk")
    check_store(Bare(), "s3://bucket/fk")  # no hook: nothing to call
    assert seen == ["s3://bucket/fk"]


# -- the SIGALRM helper ------------------------------------------------------------------------


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_alarm_interrupts_in_place_and_restores_the_handler() -> None:
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(AttemptTimeout, match="too slow"):
        call_with_alarm(_sleep, (5.0,), 0.1, "too slow")
    assert call_with_alarm(_sleep, (0.0,), 1.0, "too slow") == 0.0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


def test_alarm_refuses_other_threads() -> None:
    box: dict[str, BaseException] = {}

    def target() -> None:
        try:
            call_with_alarm(_sleep, (0.0,), 1.0, "late")
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join(10)
    assert isinstance(box.get("error"), RuntimeError)
