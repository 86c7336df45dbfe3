"""The backends that ship with flowkit: the conformance suite, the registry, local, threads
and processes specifics. (The registry's own mechanics: tests/test_backend_registry.py.)"""

from __future__ import annotations

import os
import threading
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from core_fixtures.backends import BoxedBackend

import flowkit as fk
from flowkit.backend import (
    ENTRY_POINT_GROUP,
    AttemptTimeout,
    Submission,
    backend_class,
    get_backend,
)
from flowkit.backends import LocalBackend, ProcessesBackend, ThreadsBackend
from flowkit.errors import StoreError
from flowkit.testing import BackendContract


class TestLocalContract(BackendContract):
    def make_backend(self) -> fk.Backend:
        return LocalBackend()


class TestThreadsContract(BackendContract):
    def make_backend(self) -> fk.Backend:
        return ThreadsBackend(max_workers=4)


class TestProcessesContract(BackendContract):
    """The example backend (the template for plugin authors) keeps the whole contract."""

    def make_backend(self) -> fk.Backend:
        # the fork server imports the contract's tasks once, not every worker of every run
        return ProcessesBackend(max_workers=2, preload=("flowkit.testing",))


# -- registry ---------------------------------------------------------------------------------


def test_builtin_names() -> None:
    names = fk.available_backends()
    assert {"local", "threads", "processes"} <= set(names)
    assert names == sorted(names)
    assert isinstance(get_backend("local"), LocalBackend)
    assert isinstance(get_backend("threads"), ThreadsBackend)
    assert isinstance(get_backend("processes"), ProcessesBackend)


def test_builtins_are_registered_as_entry_points() -> None:
    # pyproject declares them, so an installed flowkit lists them like any plugin
    registered = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert registered["local"] == "flowkit.backends.local:LocalBackend"
    assert registered["threads"] == "flowkit.backends.threads:ThreadsBackend"


def test_instance_is_returned_as_is() -> None:
    backend = ThreadsBackend(max_workers=2)
    assert get_backend(backend) is backend
    assert backend.capacity == 4


def test_unknown_name_lists_available_and_how_to_install() -> None:
    with pytest.raises(fk.BackendNotFoundError) as info:
        backend_class("nope")
    msg = str(info.value)
    assert "'nope'" in msg
    for name in fk.available_backends():
        assert name in msg
    assert ENTRY_POINT_GROUP in msg
    assert "backend instance" in msg


def test_known_plugin_name_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # As on a machine without the plugin: no entry points registered.
    import flowkit.backend

    monkeypatch.setattr(flowkit.backend, "_entry_points", lambda: [])
    monkeypatch.setattr(flowkit.backend, "_scanned", None)  # scan the patched entry points
    monkeypatch.setattr(flowkit.backend, "_loaded", {})
    with pytest.raises(fk.BackendNotFoundError, match=r"pip install 'flowkit\[ray\]'"):
        get_backend("ray")


def test_unknown_name_through_run(tmp_path: Path) -> None:
    from flowkit.testing import chain

    with pytest.raises(fk.BackendNotFoundError, match=r"available: .*local"):
        fk.run(chain, x=1, backend="nope", store=str(tmp_path / "s"))


def test_object_that_is_not_a_backend(tmp_path: Path) -> None:
    from flowkit.testing import chain

    with pytest.raises(fk.BackendNotFoundError, match=r"is not a backend.*submit\(\)"):
        get_backend(object())  # type: ignore[arg-type]
    with pytest.raises(fk.BackendNotFoundError, match="is not a backend"):
        fk.run(chain, x=1, backend=42, store=str(tmp_path / "s"))  # type: ignore[arg-type]


def test_threads_rejects_bad_max_workers() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        ThreadsBackend(max_workers=0)


def test_threads_submit_outside_with_block() -> None:
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        ThreadsBackend().submit(lambda: (None, 1), (), Submission("t"))


# -- local specifics ---------------------------------------------------------------------------


def _sleep_then(seconds: float, value: int) -> tuple[None, int]:
    time.sleep(seconds)
    return None, value


def test_local_timeout_with_alarm_in_main_thread() -> None:
    assert threading.current_thread() is threading.main_thread()
    backend = LocalBackend()
    before = set(threading.enumerate())
    fut = backend.submit(_sleep_then, (5.0, 1), Submission("nap", timeout=0.2))
    # the alarm interrupted the sleep in place: no helper thread was left sleeping
    assert isinstance(fut.exception(), AttemptTimeout)
    assert set(threading.enumerate()) <= before
    assert "nap" in str(fut.exception())
    # the alarm is disarmed and the previous handler restored
    import signal

    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
    ok = backend.submit(_sleep_then, (0.0, 7), Submission("quick", timeout=0.2))
    assert ok.result() == (None, 7)


def test_local_timeout_off_the_main_thread() -> None:
    box: dict[str, Any] = {}
    before = set(threading.enumerate())

    def target() -> None:
        backend = LocalBackend()
        box["late"] = backend.submit(_sleep_then, (2.0, 1), Submission("nap", timeout=0.2))
        box["ok"] = backend.submit(_sleep_then, (0.0, 3), Submission("quick", timeout=1.0))

    t = threading.Thread(target=target)
    t.start()
    t.join(10)
    assert isinstance(box["late"].exception(), AttemptTimeout)
    assert box["ok"].result() == (None, 3)
    # off the main thread the late call was abandoned on a helper thread (SIGALRM is main-only)
    assert [t.name for t in set(threading.enumerate()) - before] == ["flowkit-local-nap"]


def test_local_timeout_in_a_run_off_the_main_thread(tmp_path: Path) -> None:
    from flowkit.testing import timing_out

    folder = tmp_path / "marks"
    folder.mkdir()
    box: dict[str, BaseException] = {}

    def target() -> None:
        try:
            fk.run(
                timing_out,
                folder=str(folder),
                seconds=2.0,
                backend="local",
                store=str(tmp_path / "s"),
            )
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join(10)
    assert isinstance(box.get("error"), fk.TaskTimeoutError)


def test_local_errors_go_to_the_future() -> None:
    def fail() -> tuple[None, int]:
        raise KeyError("x")

    fut = LocalBackend().submit(fail, (), Submission("f"))
    assert isinstance(fut.exception(), KeyError)


@fk.task
def log_call(folder: str, name: str) -> str:
    with open(os.path.join(folder, "order.log"), "a", encoding="utf-8") as f:
        f.write(name + "\n")
    return name


@fk.workflow
def independent(folder: str) -> list[str]:
    return [log_call(folder, n) for n in ("e", "b", "d", "a", "c")]


def test_local_is_serial_in_graph_order(tmp_path: Path) -> None:
    orders = []
    for i in range(2):
        folder = tmp_path / f"marks{i}"
        folder.mkdir()
        run = fk.run(independent, folder=str(folder), backend="local", store=str(tmp_path / "s"))
        assert run.output == ["e", "b", "d", "a", "c"]
        orders.append((folder / "order.log").read_text().split())
        assert [t.node for t in run.tasks] == list(independent.graph.nodes)
        # each call ended before the next one started
        for a, b in zip(run.tasks, run.tasks[1:], strict=False):
            assert a.ended is not None
            assert b.started is not None
            assert a.ended <= b.started
    assert orders[0] == orders[1] == ["e", "b", "d", "a", "c"]


class TestBoxedHandlesContract(BackendContract):
    """A backend whose handles are not values (like Ray's ObjectRefs) keeps the contract."""

    def make_backend(self) -> fk.Backend:
        return BoxedBackend()


def test_known_plugin_hint_mechanism(monkeypatch: pytest.MonkeyPatch) -> None:
    import flowkit.backend

    monkeypatch.setitem(flowkit.backend._KNOWN_PLUGINS, "dask", "pip install flowkit-dask")
    with pytest.raises(fk.BackendNotFoundError, match="install it with: pip install flowkit-dask"):
        get_backend("dask")


PLUGIN_MODULE = """
from flowkit.backends import LocalBackend


class FakeBackend(LocalBackend):
    name = "fake"
"""


def test_entry_point_plugin_is_found_and_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an installed distribution registering a backend, as a third party would ship it
    (tmp_path / "fake_flowkit_backend.py").write_text(PLUGIN_MODULE)
    dist = tmp_path / "fake_flowkit_backend-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-flowkit-backend\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nfake = fake_flowkit_backend:FakeBackend\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import flowkit.backend

    monkeypatch.setattr(flowkit.backend, "_scanned", None)  # as in a fresh process
    assert "fake" in fk.available_backends()
    from flowkit.testing import chain

    run = fk.run(chain, x=1, backend="fake", store=str(tmp_path / "s"))
    assert run.output == 6
    assert run.backend == "fake"


def test_threads_limit_blas_pools_while_running() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy  # noqa: F401  (loads the BLAS pool the limit applies to)

    def blas_threads() -> list[int]:
        return [
            p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"
        ]

    with threadpoolctl.threadpool_limits(limits=2):
        before = blas_threads()
        if not before or max(before) < 2:
            pytest.skip("this BLAS runs one thread anyway")
        with ThreadsBackend(max_workers=2):
            assert all(n == 1 for n in blas_threads())
        assert blas_threads() == before
        with ThreadsBackend(max_workers=2, blas_threads=None):
            assert blas_threads() == before


# -- threads and processes specifics -----------------------------------------------------------


def test_threads_nested_entries_share_one_pool() -> None:
    backend = ThreadsBackend(max_workers=2)
    with backend:
        with backend:
            pass
        # the inner exit left the outer block's pool running
        assert backend.submit(lambda: (None, 1), (), Submission("t")).result(10) == (None, 1)
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        backend.submit(lambda: (None, 1), (), Submission("t"))


def test_processes_rejects_bad_max_workers() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        ProcessesBackend(max_workers=0)


def test_processes_submit_outside_with_block() -> None:
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        ProcessesBackend().submit(_sleep_then, (0.0, 1), Submission("t"))


def test_processes_refuse_an_in_memory_store(tmp_path: Path) -> None:
    backend = ProcessesBackend(max_workers=1)
    backend.check_store(str(tmp_path))
    backend.check_store(f"file://{tmp_path}")
    with pytest.raises(StoreError, match="memory"):
        backend.check_store("memory://flowkit")
    with pytest.raises(StoreError, match="memory"):
        backend.check_store("simplecache::memory://flowkit")


def _pid() -> tuple[None, int]:
    return None, os.getpid()


def test_processes_run_calls_in_other_processes() -> None:
    with ProcessesBackend(max_workers=2) as backend:
        _, pid = backend.submit(_pid, (), Submission("pid")).result(60)
    assert pid != os.getpid()
