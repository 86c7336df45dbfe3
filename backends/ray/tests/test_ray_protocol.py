"""RayBackend driven directly through flowkit's backend protocol, on the two-node cluster.

The functions below are what the engine would submit: ``fn(*args) -> (meta, value)``.
They live in this test module, which is not installed, so they also travel to the
workers by value (the ``user_modules="auto"`` policy).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import ray
from flowkit_ray import RayBackend, RayBackendError, StoreReachabilityWarning, storecheck
from raycluster import RayCluster

import flowkit.backend as fkb
from flowkit.backend import AttemptTimeout, Submission
from flowkit.errors import StoreError
from flowkit.resources import Resources


def spec(
    name: str = "t", static: int = 0, timeout: float | None = None, **resources: Any
) -> Submission:
    return Submission(name, Resources(**resources), timeout=timeout, static_args=static)


@pytest.fixture
def backend(ray_cluster: RayCluster) -> Any:
    with RayBackend(address=ray_cluster.address) as b:
        yield b


# -- functions run on the workers -------------------------------------------------------


def square(x: int) -> tuple[dict[str, Any], int]:
    return {"pid": os.getpid()}, x * x


def add(a: int, b: int) -> tuple[None, int]:
    return None, a + b


def with_static(rt: Any, x: int) -> tuple[str, int]:
    return rt.name, x + rt.offset


def node_after(seconds: float) -> tuple[str, None]:
    time.sleep(seconds)
    return ray.get_runtime_context().get_node_id(), None


def assigned() -> tuple[tuple[dict[str, float], str], None]:
    ctx = ray.get_runtime_context()
    return (ctx.get_assigned_resources(), ctx.get_node_id()), None


class Custom(ValueError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (Custom, (self.args[0], self.code))


def fail_custom(message: str) -> tuple[None, None]:
    raise Custom(message, 7)


def attempt(folder: str, fail_first: bool) -> tuple[int, int]:
    path = os.path.join(folder, "attempts")
    with open(path, "a") as f:
        f.write("x")
    n = os.path.getsize(path)
    if fail_first and n == 1:
        raise RuntimeError("first attempt fails")
    return n, n


def die(folder: str) -> tuple[None, None]:
    with open(os.path.join(folder, "died"), "a") as f:
        f.write("x")
    os.kill(os.getpid(), 9)
    return None, None  # pragma: no cover


def sleep_forever(folder: str) -> tuple[None, None]:
    with open(os.path.join(folder, "pid.tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.replace(os.path.join(folder, "pid.tmp"), os.path.join(folder, "pid"))
    time.sleep(600)
    return None, None  # pragma: no cover


def mark_and_sleep(folder: str, name: str, seconds: float) -> tuple[None, None]:
    open(os.path.join(folder, name), "w").close()
    time.sleep(seconds)
    return None, None


def sleep_with_alarm_blocked(seconds: float) -> tuple[None, None]:
    # Stands in for C code that never gives control back to Python.
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
    time.sleep(seconds)
    return None, None  # pragma: no cover


class Counted:
    """Counts how often the driver pickles it (Ray pickles in the driver process)."""

    pickles = 0

    def __init__(self, name: str, offset: int) -> None:
        self.name = name
        self.offset = offset

    def __reduce__(self) -> tuple[Any, ...]:
        type(self).pickles += 1
        return (Counted, (self.name, self.offset))


def _wait_for(predicate: Any, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.split()[1:2] == ["Z"] for line in f if line.startswith("State:"))
    except FileNotFoundError:
        return True


# -- registration and lifecycle ---------------------------------------------------------


def test_registered_under_its_name() -> None:
    assert "ray" in fkb.available_backends()
    assert isinstance(fkb.get_backend("ray"), RayBackend)
    assert isinstance(RayBackend(), fkb.Backend)


def test_capabilities_are_declared(backend: RayBackend) -> None:
    caps = fkb.capabilities_of(backend)
    assert caps.enforces_timeout
    assert caps.splits_values
    assert not caps.values_in_driver
    assert caps.parallelism == int(ray.cluster_resources()["CPU"])  # known once entered
    assert caps.parallelism <= backend.capacity


def test_reuses_an_initialised_session_and_leaves_it(ray_cluster: RayCluster) -> None:
    with RayBackend(address=ray_cluster.address) as b, b:  # nested entries are fine
        assert b.submit(square, (3,), spec()).result(60)[0]["pid"] > 0
    assert ray.is_initialized()


def test_submit_outside_the_context_is_an_error() -> None:
    with pytest.raises(RayBackendError, match="with RayBackend"):
        RayBackend().submit(square, (1,), spec())


def test_capacity(backend: RayBackend, ray_cluster: RayCluster) -> None:
    assert backend.capacity >= 64
    with RayBackend(address=ray_cluster.address, max_in_flight=5) as small:
        assert small.capacity == 5


# -- results, handles, static args ------------------------------------------------------


def test_meta_comes_back_and_the_value_stays_in_the_store(backend: RayBackend) -> None:
    meta, handle = backend.submit(square, (7,), spec("square")).result(60)
    assert meta["pid"] != os.getpid()
    assert isinstance(handle, ray.ObjectRef)
    assert backend.fetch(handle) == 49


def test_handles_chain_between_calls(backend: RayBackend) -> None:
    _, a = backend.submit(square, (3,), spec()).result(60)
    _, b = backend.submit(square, (4,), spec()).result(60)
    _, c = backend.submit(add, (a, b), spec("add")).result(60)
    _, d = backend.submit(add, (c, 100), spec("add")).result(60)
    assert backend.fetch(d) == 125


def test_fetch_many_is_one_round_trip_in_order(backend: RayBackend) -> None:
    handles = [backend.submit(square, (i,), spec()).result(60)[1] for i in range(5)]
    assert backend.fetch_many([*handles, "plain"]) == [0, 1, 4, 9, 16, "plain"]
    assert backend.fetch_many([]) == []


def batch_of_squares(xs: list[int]) -> tuple[list[str], list[int]]:
    return [f"ok {x}" for x in xs], [x * x for x in xs]


def test_split_values_give_one_handle_per_item(backend: RayBackend) -> None:
    # A batch of map items: fn returns (meta, [v1..vn]) and each value stays its own object.
    fut = backend.submit(batch_of_squares, ([1, 2, 3],), Submission("batch", split_values=3))
    meta, handles = fut.result(60)
    assert meta == ["ok 1", "ok 2", "ok 3"]
    assert len(handles) == 3
    assert all(isinstance(h, ray.ObjectRef) for h in handles)
    assert backend.fetch_many(handles) == [1, 4, 9]
    _, total = backend.submit(add, (handles[1], handles[2]), spec()).result(60)
    assert backend.fetch(total) == 13


def test_static_args_are_shipped_once(backend: RayBackend) -> None:
    rt = Counted("runtime", 1000)
    futures = [backend.submit(with_static, (rt, i), spec(static=1)) for i in range(5)]
    assert [f.result(60)[0] for f in futures] == ["runtime"] * 5
    after_five = Counted.pickles
    futures = [backend.submit(with_static, (rt, i), spec(static=1)) for i in range(25)]
    results = [backend.fetch(f.result(60)[1]) for f in futures]
    assert results == [1000 + i for i in range(25)]
    assert Counted.pickles == after_five  # 25 more calls did not pickle it again


def test_large_static_args_go_through_the_object_store(backend: RayBackend) -> None:
    big = Counted("x" * (2 << 20), 5)  # pickles to more than the inline limit
    futures = [backend.submit(with_static, (big, i), spec(static=1)) for i in range(3)]
    assert [backend.fetch(f.result(60)[1]) for f in futures] == [5, 6, 7]


# -- resources and placement ------------------------------------------------------------


def test_resources_become_ray_task_options(backend: RayBackend, ray_cluster: RayCluster) -> None:
    (got, _), _ = backend.submit(assigned, (), spec(cpus=0.5, memory="100Mi")).result(60)
    assert got["CPU"] == 0.5
    assert got["memory"] == 100 * 2**20
    (got, node), _ = backend.submit(assigned, (), spec(cpus=0, gpus=1)).result(60)
    assert got.get("GPU") == 1
    assert node == ray_cluster.worker_node_id  # only the worker node has a GPU


def test_task_options_apply_to_every_call(ray_cluster: RayCluster) -> None:
    opts = {"resources": {"head": 0.01}, "enable_task_events": False}
    with RayBackend(address=ray_cluster.address, task_options=opts) as b:
        nodes = {b.submit(assigned, (), spec()).result(60)[0][1] for _ in range(4)}
    assert nodes == {ray_cluster.head_node_id}  # only the head has the custom resource
    with pytest.raises(RayBackendError, match="max_retries"):
        RayBackend(task_options={"max_retries": 3})


def test_calls_run_on_both_nodes(ray_cluster: RayCluster) -> None:
    # Ray's default policy keeps short calls on the driver's node while its worker is warm
    # (a fresh worker elsewhere takes a second to start), so ask it to spread.
    # SPREAD is best effort: on a loaded machine a round may still land on one node, so up to
    # five rounds, until both nodes have answered.
    opts = {"scheduling_strategy": "SPREAD"}
    both = {ray_cluster.head_node_id, ray_cluster.worker_node_id}
    nodes: set[str] = set()
    with RayBackend(address=ray_cluster.address, task_options=opts) as backend:
        for _ in range(5):
            futures = [backend.submit(node_after, (0.3,), spec()) for _ in range(8)]
            nodes |= {f.result(120)[0] for f in futures}
            if nodes == both:
                break
    assert nodes == both


def test_a_request_no_node_can_meet_is_reported(
    backend: RayBackend, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="flowkit_ray"):
        fut = backend.submit(square, (1,), spec("huge", cpus=64))
    fut.cancel()
    assert "asks for {'CPU': 64}" in caplog.text
    assert "largest Ray node offers {'CPU': 1.0}" in caplog.text


# -- failures -----------------------------------------------------------------------------


def test_user_exception_keeps_its_type_and_remote_traceback(backend: RayBackend) -> None:
    fut = backend.submit(fail_custom, ("kaput",), spec("fail_custom"))
    err = fut.exception(60)
    assert type(err) is Custom
    assert (str(err), err.code) == ("kaput", 7)
    tb = err.remote_traceback  # type: ignore[attr-defined]
    assert "in fail_custom" in tb
    assert "Custom: kaput" in tb
    assert "pid=" in tb  # where it ran
    assert "\x1b[" not in tb  # no terminal colours


def test_retry_is_a_resubmit_and_ray_does_not_retry_itself(
    backend: RayBackend, tmp_path: Path
) -> None:
    folder = str(tmp_path)
    err = backend.submit(attempt, (folder, True), spec()).exception(60)
    assert isinstance(err, RuntimeError)
    assert (tmp_path / "attempts").read_text() == "x"
    meta, handle = backend.submit(attempt, (folder, True), spec()).result(60)
    assert meta == 2
    assert backend.fetch(handle) == 2


def test_a_killed_worker_surfaces_as_an_error(backend: RayBackend, tmp_path: Path) -> None:
    err = backend.submit(die, (str(tmp_path),), spec("die")).exception(120)
    assert isinstance(err, ray.exceptions.WorkerCrashedError)
    assert (tmp_path / "died").read_text() == "x"  # one attempt: Ray's retries are off
    assert backend.fetch(backend.submit(square, (5,), spec()).result(60)[1]) == 25


def test_cancel_kills_the_running_call(backend: RayBackend, tmp_path: Path) -> None:
    fut = backend.submit(sleep_forever, (str(tmp_path),), spec("sleep_forever"))
    assert _wait_for((tmp_path / "pid").exists)
    pid = int((tmp_path / "pid").read_text())
    assert fut.cancel()
    assert fut.cancelled()
    assert _wait_for(lambda: _process_gone(pid))
    assert backend.fetch(backend.submit(square, (6,), spec()).result(60)[1]) == 36


def test_timeout_stops_the_call_on_the_worker(backend: RayBackend, tmp_path: Path) -> None:
    fut = backend.submit(mark_and_sleep, (str(tmp_path), "a", 60), spec(timeout=0.5))
    err = fut.exception(60)
    assert isinstance(err, AttemptTimeout)
    assert "0.5 s" in str(err)
    assert "mark_and_sleep" in err.remote_traceback  # type: ignore[attr-defined]


def test_timeout_counts_running_time_not_queueing(backend: RayBackend, tmp_path: Path) -> None:
    folder = str(tmp_path)
    blockers = [backend.submit(mark_and_sleep, (folder, f"b{i}", 3), spec()) for i in range(2)]
    # both CPUs of the cluster are busy once both marks exist
    assert _wait_for(lambda: all((tmp_path / f"b{i}").exists() for i in range(2)))
    timed = backend.submit(mark_and_sleep, (folder, "timed", 0.1), spec(timeout=1.0))
    meta, _ = timed.result(120)  # waited ~3 s for a CPU, ran 0.1 s: within its timeout
    assert meta is None
    for b in blockers:
        b.result(120)


def test_code_deaf_to_the_alarm_is_killed_after_a_grace(backend: RayBackend) -> None:
    fut = backend.submit(sleep_with_alarm_blocked, (60,), spec(timeout=0.2))
    assert isinstance(fut.exception(120), ray.exceptions.WorkerCrashedError)


def test_closing_cancels_calls_still_running(ray_cluster: RayCluster, tmp_path: Path) -> None:
    with RayBackend(address=ray_cluster.address) as b:
        fut = b.submit(sleep_forever, (str(tmp_path),), spec())
        assert _wait_for((tmp_path / "pid").exists)
    assert fut.cancelled()
    assert _wait_for(lambda: _process_gone(int((tmp_path / "pid").read_text())))


# -- the store ---------------------------------------------------------------------------


def test_store_reachability(backend: RayBackend, tmp_path: Path) -> None:
    backend.check_store(str(tmp_path))  # every node is this machine: fine
    backend.check_store(f"file://{tmp_path}")
    backend.check_store("s3://bucket/prefix")
    with pytest.raises(StoreError, match="in-memory"):
        backend.check_store("memory://flowkit")


def test_a_local_path_on_a_multi_host_cluster_warns() -> None:
    local = {"127.0.0.1", "10.0.0.5"}
    storecheck.check("/data/fk", ["127.0.0.1", "10.0.0.5"], local)  # all this machine
    storecheck.check("s3://bucket/fk", ["10.0.0.7"], local)  # object storage: fine
    with pytest.warns(StoreReachabilityWarning, match=r"10\.0\.0\.7.*s3://"):
        storecheck.check("file:///data/fk", ["127.0.0.1", "10.0.0.7"], local)
    with pytest.warns(StoreReachabilityWarning):
        storecheck.check("simplecache::/data/fk", ["10.0.0.7"], local)


def env_var(name: str) -> tuple[None, str | None]:
    return None, os.environ.get(name)


def test_runtime_env_reaches_the_tasks(ray_cluster: RayCluster) -> None:
    env = {"env_vars": {"FLOWKIT_RAY_TEST": "from-runtime-env"}}
    # Ray is already initialised here, so the backend applies it per task.
    with RayBackend(address=ray_cluster.address, runtime_env=env) as b:
        _, handle = b.submit(env_var, ("FLOWKIT_RAY_TEST",), spec()).result(120)
        assert b.fetch(handle) == "from-runtime-env"


def test_future_results_pickle(backend: RayBackend) -> None:
    # meta objects are plain data the engine may keep in records
    meta, _ = backend.submit(square, (2,), spec()).result(60)
    assert pickle.loads(pickle.dumps(meta)) == meta
