"""Tolerant and throttled fan-out on the local and threads backends: ``task.map(min_success=)``,
``@fk.task(concurrency=, pool=)`` with ``fk.run(limits=)``, and ``Resources.cpus`` on threads.

Outcomes are drawn by hypothesis and checked against a plain-Python oracle; overlap is measured
by files the calls keep while they run (:func:`flowkit.testing.fanout.probe`), never by time.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowkit as fk
from flowkit.backends.local import LocalBackend
from flowkit.backends.threads import ThreadsBackend
from flowkit.cli import main
from flowkit.limits import Gate, gate_for
from flowkit.testing.fanout import probe, seen_counts, seen_cpus
from flowkit.testing.observe import attempt_times, record_attempt
from flowkit.tolerance import needed

BACKENDS = ["local", "threads"]
FEW = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def fresh(tmp_path: Path, name: str) -> str:
    """A new empty folder under ``tmp_path`` (hypothesis reuses the test's tmp_path)."""
    for i in itertools.count():
        d = tmp_path / f"{name}{i}"
        if not d.exists():
            d.mkdir()
            return str(d)
    raise AssertionError("unreachable")


def backend_of(name: str, workers: int = 4) -> fk.Backend:
    return ThreadsBackend(max_workers=workers) if name == "threads" else LocalBackend()


# -- min_success ---------------------------------------------------------------------------------


@fk.task
def item(x: int, bad: bool) -> int:
    if bad:
        raise ValueError(f"item {x} is bad")
    return x


@fk.task
def present(xs: list[int | None]) -> list[int]:
    return [x for x in xs if x is not None]


def tolerant_workflow(ratio: float) -> fk.WorkflowDef[..., Any]:
    @fk.workflow
    def tolerant(xs: list[int], bad: list[bool]) -> list[int | None]:
        return item.map(x=xs, bad=bad, min_success=ratio)

    return tolerant


@pytest.mark.parametrize("backend", BACKENDS)
@settings(FEW, max_examples=12)
@given(outcomes=st.lists(st.booleans(), max_size=6), percent=st.integers(1, 100))
def test_min_success_passes_exactly_when_the_ratio_is_met(
    tmp_path: Path, backend: str, outcomes: list[bool], percent: int
) -> None:
    ratio = percent / 100
    n, ok = len(outcomes), sum(outcomes)
    oracle_passes = ok * 100 >= percent * n  # 0 items: passes
    wf = tolerant_workflow(ratio)
    bad = [not good for good in outcomes]
    store = fresh(tmp_path, "s")
    if oracle_passes:
        run = fk.run(wf, xs=list(range(n)), bad=bad, store=store, backend=backend_of(backend))
        assert run.output == [i if good else None for i, good in enumerate(outcomes)]
        failed = [i for i, good in enumerate(outcomes) if not good]
        if failed:
            assert run.tolerated == {"item": {"items": n, "min_success": ratio, "failed": failed}}
        else:
            assert run.tolerated == {}
        assert {t.node for t in run.tasks if t.status == "failed"} == {f"item[{i}]" for i in failed}
    else:
        with pytest.raises(fk.TaskFailedError, match="min_success") as info:
            fk.run(wf, xs=list(range(n)), bad=bad, store=store, backend=backend_of(backend))
        header, _ = fk.Store(store).read_run(info.value.run_id)
        listed = header["tolerated"]["item"]["failed"]
        # the run fails once the ratio is out of reach (items in flight then still end)
        assert len(listed) >= n - needed(ratio, n) + 1
        assert all(not outcomes[i] for i in listed)


@pytest.mark.parametrize(
    ("ratio", "n", "need"), [(0.7, 10, 7), (0.9, 10, 9), (0.1, 3, 1), (1.0, 5, 5), (0.01, 1, 1)]
)
def test_needed_is_exact_for_the_decimal_written(ratio: float, n: int, need: int) -> None:
    assert needed(ratio, n) == need


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tolerant_map_feeds_a_consumer_of_optional_items(tmp_path: Path, backend: str) -> None:
    @fk.workflow
    def wf(xs: list[int], bad: list[bool]) -> list[int]:
        return present(item.map(x=xs, bad=bad, min_success=0.5))

    run = fk.run(
        wf,
        xs=[1, 2, 3, 4],
        bad=[False, True, False, False],
        backend=backend_of(backend),
        store=str(tmp_path / "s"),
    )
    assert run.output == [1, 3, 4]


def test_a_tolerant_map_inside_a_sub_workflow_keeps_its_tolerance(tmp_path: Path) -> None:
    @fk.workflow
    def inner(xs: list[int], bad: list[bool]) -> list[int]:
        return present(item.map(x=xs, bad=bad, min_success=0.5))

    @fk.workflow
    def outer(xs: list[int], bad: list[bool]) -> list[int]:
        return inner(xs, bad)

    run = fk.run(outer, xs=[1, 2, 3], bad=[True, False, False], store=str(tmp_path / "s"))
    assert run.output == [2, 3]


def test_a_consumer_typed_without_none_is_a_type_error_naming_min_success() -> None:
    @fk.task
    def total(xs: list[int]) -> int:
        return sum(xs)

    with pytest.raises(fk.TypeMismatchError, match=r"min_success=0\.9.*list\[T \| None\]"):

        @fk.workflow
        def wf(xs: list[int], bad: list[bool]) -> int:
            return total(item.map(x=xs, bad=bad, min_success=0.9))


def test_the_output_is_typed_optional_at_decoration() -> None:
    wf = tolerant_workflow(0.5)
    (node,) = wf.graph.nodes.values()
    assert node.output_type == list[int | None]
    assert node.min_success == 0.5


@pytest.mark.parametrize("bad_ratio", [0, 0.0, -0.1, 1.5, True, "0.9", float("nan")])
def test_min_success_is_checked(bad_ratio: Any) -> None:
    with pytest.raises(fk.GraphError, match=r"min_success=.*\(0, 1\]"):

        @fk.workflow
        def wf(xs: list[int], bad: list[bool]) -> list[int | None]:
            return item.map(x=xs, bad=bad, min_success=bad_ratio)


def test_a_task_with_a_min_success_parameter_cannot_be_mapped_with_it() -> None:
    @fk.task
    def odd(x: int, min_success: float) -> float:
        return x * min_success

    with pytest.raises(fk.GraphError, match="rename the parameter"):

        @fk.workflow
        def wf(xs: list[int]) -> list[float | None]:
            return odd.map(x=xs, min_success=0.5)


def test_a_tolerant_map_outside_a_workflow_is_plain_python() -> None:
    assert item.map(x=[1, 2, 3], bad=[False, True, False], min_success=0.6) == [1, None, 3]
    with pytest.raises(fk.TaskFailedError, match=r"min_success=0\.7") as info:
        item.map(x=[1, 2, 3], bad=[False, True, False], min_success=0.7)
    assert isinstance(info.value.__cause__, ValueError)


@fk.task(cache=True, cache_ignore=("folder",))
def cached_item(folder: str, x: int) -> int:
    record_attempt(folder, f"cached_item_{x}")
    if os.path.exists(os.path.join(folder, f"bad_{x}")):
        raise ValueError(f"item {x} is bad")
    return x


@fk.task(cache=True)
def cached_count(xs: list[int | None]) -> int:
    return sum(1 for x in xs if x is not None)


@fk.workflow
def cached_tolerant(folder: str, xs: list[int]) -> int:
    return cached_count(cached_item.map(folder=folder, x=xs, min_success=0.5))


@pytest.mark.parametrize("backend", BACKENDS)
def test_failed_items_are_not_cached_and_a_rerun_retries_them(tmp_path: Path, backend: str) -> None:
    folder, store = str(tmp_path), str(tmp_path / "s")
    (tmp_path / "bad_2").write_text("")
    first = fk.run(
        cached_tolerant, folder=folder, xs=[1, 2, 3], backend=backend_of(backend), store=store
    )
    assert first.output == 2
    # the same failure again: the items that succeeded are hits, the failed one runs again,
    # and the consumer is a hit on the very list a fresh run gives
    again = fk.run(
        cached_tolerant, folder=folder, xs=[1, 2, 3], backend=backend_of(backend), store=store
    )
    assert again.output == 2
    assert {t.node: t.cached for t in again.tasks if t.name == "cached_item"} == {
        "cached_item[0]": True,
        "cached_item[1]": False,
        "cached_item[2]": True,
    }
    assert [t.cached for t in again.tasks if t.name == "cached_count"] == [True]
    # fixed: the item succeeds, and the consumer sees a new list
    (tmp_path / "bad_2").unlink()
    fixed = fk.run(
        cached_tolerant, folder=folder, xs=[1, 2, 3], backend=backend_of(backend), store=store
    )
    assert fixed.output == 3
    assert [t.cached for t in fixed.tasks if t.name == "cached_count"] == [False]
    assert len(attempt_times(folder, "cached_item_2")) == 3
    assert len(attempt_times(folder, "cached_item_1")) == 1


def test_runs_show_lists_the_tolerated_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "s")
    run = fk.run(
        tolerant_workflow(0.5), xs=[0, 1, 2, 3], bad=[True, False, False, True], store=store
    )
    capsys.readouterr()
    assert main(["runs", "show", run.id, "--store", store]) == 0
    out = capsys.readouterr().out
    assert "tolerated" in out
    assert "item: 2 of 4 items failed (min_success=0.5): item[0], item[3]" in out
    assert "item[0]: ValueError: item 0 is bad" in out


def test_runs_show_survives_a_planted_tolerated_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = fk.Store(str(tmp_path / "s"))
    run = fk.run(tolerant_workflow(0.5), xs=[0], bad=[False], store=store)
    header, _ = store.read_run(run.id)
    for planted in ({"item": "junk"}, ["x"], {"item": {"failed": "nope", "items": None}}):
        store.write_run(run.id, {**header, "tolerated": planted})
        capsys.readouterr()
        assert main(["runs", "show", run.id, "--store", store.url]) == 0


# -- concurrency and pools -----------------------------------------------------------------------


@FEW
@given(limit=st.integers(1, 3), n=st.integers(0, 7), workers=st.integers(1, 4))
def test_a_task_concurrency_is_never_exceeded_and_is_reached(
    tmp_path: Path, limit: int, n: int, workers: int
) -> None:
    @fk.task(concurrency=limit)
    def probed(folder: str, x: int, n: int, cap: int) -> int:
        probe(folder, n, cap)
        return x

    @fk.workflow
    def wf(folder: str, xs: list[int], n: int, cap: int) -> list[int]:
        return probed.map(folder=folder, x=xs, n=n, cap=cap)

    folder = fresh(tmp_path, "f")
    cap = min(limit, workers)
    run = fk.run(
        wf,
        folder=folder,
        xs=list(range(n)),
        n=n,
        cap=cap,
        backend=ThreadsBackend(max_workers=workers),
        store=fresh(tmp_path, "s"),
    )
    assert run.output == list(range(n))
    seen = seen_counts(folder)
    assert len(seen) == n
    assert max(seen, default=0) == min(cap, n)


@FEW
@given(pool=st.integers(1, 3), n=st.integers(1, 4))
def test_a_pool_limit_holds_across_its_tasks_and_is_reached(
    tmp_path: Path, pool: int, n: int
) -> None:
    @fk.task(pool="api")
    def a(folder: str, x: int, n: int, cap: int) -> int:
        probe(folder, n, cap)
        return x

    @fk.task(pool="api")
    def b(folder: str, x: int, n: int, cap: int) -> int:
        probe(folder, n, cap)
        return -x

    @fk.workflow
    def wf(folder: str, xs: list[int], n: int, cap: int) -> tuple[list[int], list[int]]:
        return a.map(folder=folder, x=xs, n=n, cap=cap), b.map(folder=folder, x=xs, n=n, cap=cap)

    folder = fresh(tmp_path, "f")
    run = fk.run(
        wf,
        folder=folder,
        xs=list(range(n)),
        n=2 * n,
        cap=pool,
        limits={"api": pool},
        backend=ThreadsBackend(max_workers=4),
        store=fresh(tmp_path, "s"),
    )
    assert run.output == (list(range(n)), [-x for x in range(n)])
    seen = seen_counts(folder)
    assert len(seen) == 2 * n
    assert max(seen) == min(pool, 2 * n)


@fk.task(concurrency=1, retries=2)
def flaky_one(folder: str, x: int, n: int) -> int:
    seen = probe(folder, n, 1)
    if record_attempt(folder, f"flaky_one_{x}") == 1:
        raise RuntimeError(f"first attempt of {x} fails ({seen} running)")
    return x


@fk.workflow
def flaky_limited(folder: str, xs: list[int], n: int) -> list[int]:
    return flaky_one.map(folder=folder, x=xs, n=n)


@pytest.mark.parametrize("backend", BACKENDS)
def test_retries_wait_for_a_slot_like_first_attempts(tmp_path: Path, backend: str) -> None:
    run = fk.run(
        flaky_limited,
        folder=str(tmp_path),
        xs=[1, 2, 3],
        n=6,
        backend=backend_of(backend),
        store=str(tmp_path / "s"),
    )
    assert run.output == [1, 2, 3]
    assert all(t.attempts == 2 for t in run.tasks)
    assert seen_counts(str(tmp_path)) == [1] * 6


@fk.task(concurrency=2)
def dyn_probed(folder: str, x: int, n: int, cap: int) -> int:
    probe(folder, n, cap)
    return x


@fk.dynamic
def fan_inside(folder: str, n: int) -> list[int]:
    return dyn_probed.map(folder=folder, x=list(range(n)), n=n, cap=2)


@fk.task
def free_probe(folder: str, x: int) -> int:
    return x


@fk.dynamic
def fan_after(folder: str, n: int, first: int) -> list[int]:
    return fan_inside(folder, n + first)


@fk.workflow
def dynamic_limited(folder: str, n: int) -> tuple[list[int], list[int]]:
    # unlimited calls may still be in flight when the dynamic body brings the first limited
    # task (the gate then appears in the middle of the run, charged for them)
    first = free_probe(folder, 0)
    return free_probe.map(folder=folder, x=list(range(6))), fan_after(folder, n, first)


def test_a_limited_task_inside_a_dynamic_body_is_limited(tmp_path: Path) -> None:
    run = fk.run(
        dynamic_limited,
        folder=str(tmp_path),
        n=5,
        backend=ThreadsBackend(max_workers=4),
        store=str(tmp_path / "s"),
    )
    assert run.output == (list(range(6)), list(range(5)))
    seen = seen_counts(str(tmp_path))
    assert len(seen) == 5
    assert max(seen) == 2


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"concurrency": 0}, "concurrency=0"),
        ({"concurrency": True}, "concurrency=True"),
        ({"concurrency": "2"}, "concurrency='2'"),
        ({"pool": ""}, "pool=''"),
        ({"pool": 3}, "pool=3"),
    ],
)
def test_task_limits_are_checked(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):

        @fk.task(**options)
        def f(x: int) -> int:
            return x


@pytest.mark.parametrize(
    "limits", [{"api": 0}, {"api": True}, {"api": 1.5}, {"": 2}, {3: 2}, ["api"], "api=2"]
)
def test_run_limits_are_checked(tmp_path: Path, limits: Any) -> None:
    with pytest.raises(fk.FlowkitError, match="limits"):
        fk.run(tolerant_workflow(1.0), xs=[1], bad=[False], store=str(tmp_path), limits=limits)


def test_nothing_to_limit_means_no_gate() -> None:
    # the hot path: a run without limits holds no gate, so a call pays nothing for the feature
    wf = tolerant_workflow(1.0)
    assert gate_for(wf.graph.nodes.values(), {}, None, None) is None
    assert gate_for(wf.graph.nodes.values(), {}, 4.0, None) is None  # every call at 1 cpu


# -- the gate against a model --------------------------------------------------------------------


class _Call:
    def __init__(self, spec: Any, n: int) -> None:
        self.spec = spec
        self.n = n


def _spec(concurrency: int | None, pool: str | None, cpus: float) -> Any:
    @fk.task(concurrency=concurrency, pool=pool, resources=fk.Resources(cpus=cpus))
    def t(x: int) -> int:
        return x

    return t.spec


@settings(max_examples=200, deadline=None)
@given(
    kinds=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(1, 3)),
            st.sampled_from([None, "p", "q"]),
            st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]),
        ),
        min_size=1,
        max_size=4,
    ),
    steps=st.lists(st.tuples(st.booleans(), st.integers(0, 3)), max_size=60),
    budget=st.sampled_from([None, 3.0, 4.0]),
)
def test_the_gate_never_overfills_and_never_strands_a_call(
    kinds: list[tuple[int | None, str | None, float]],
    steps: list[tuple[bool, int]],
    budget: float | None,
) -> None:
    specs = [_spec(*k) for k in kinds]
    gate: Gate[Any] = Gate({"p": 2, "q": 1}, budget)
    for s in specs:
        gate.add_task(s)
    ready: deque[_Call] = deque()
    flying: list[_Call] = []
    counter = itertools.count()

    def send_ready() -> None:  # the engine's loop: send what is ready, front first
        while ready:
            call = ready.popleft()
            if gate.admit(call):
                flying.append(call)

    def check() -> None:
        _check_flying(specs, flying, budget)

    for arrive, i in steps:
        if arrive:
            ready.append(_Call(specs[i % len(specs)], next(counter)))
        elif flying:
            done = flying.pop(i % len(flying))
            ready.extendleft(reversed(gate.release(done.spec)))
        send_ready()
        check()
    while flying:  # landing everything in flight lets every held call through
        done = flying.pop(0)
        ready.extendleft(reversed(gate.release(done.spec)))
        send_ready()
        check()
    assert gate.held == 0


def _check_flying(specs: list[Any], flying: list[_Call], budget: float | None) -> None:
    """No slot key holds more calls than its size, and the cpus fit in the budget."""
    for key in {k for s in specs for k in _keys(s)}:
        size = key.options.concurrency if hasattr(key, "options") else {"p": 2, "q": 1}[key]
        assert sum(1 for c in flying if key in _keys(c.spec)) <= size
    if budget is not None:
        assert sum(c.spec.options.resources.cpus for c in flying) <= budget + 1e-9


def _keys(spec: Any) -> set[Any]:
    keys: set[Any] = set()
    if spec.options.concurrency is not None:
        keys.add(spec)
    if spec.options.pool is not None:
        keys.add(spec.options.pool)
    return keys


# -- resources on threads ------------------------------------------------------------------------


@fk.task(resources=fk.Resources(cpus=3))
def three_cpus(folder: str, x: int) -> int:
    probe(folder, 1, 1, cpus=3.0)
    return x


@fk.task(resources=fk.Resources(cpus=2))
def two_cpus(folder: str, x: int) -> int:
    probe(folder, 1, 1, cpus=2.0)
    return x


@fk.task(resources=fk.Resources(cpus=0.5))
def half_cpu(folder: str, x: int) -> int:
    probe(folder, 1, 1, cpus=0.5)
    return x


@fk.task
def one_cpu(folder: str, x: int) -> int:
    probe(folder, 1, 1, cpus=1.0)
    return x


@fk.workflow
def mixed_cpus(folder: str, xs: list[int]) -> list[list[int]]:
    return [
        three_cpus.map(folder=folder, x=xs),
        two_cpus.map(folder=folder, x=xs),
        half_cpu.map(folder=folder, x=xs),
        one_cpu.map(folder=folder, x=xs),
    ]


def test_threads_admit_a_call_only_when_its_cpus_fit(tmp_path: Path) -> None:
    run = fk.run(
        mixed_cpus,
        folder=str(tmp_path),
        xs=list(range(4)),
        backend=ThreadsBackend(max_workers=4),
        store=str(tmp_path / "s"),
    )
    assert run.output == [list(range(4))] * 4
    cpus = seen_cpus(str(tmp_path))
    assert len(cpus) == 16
    assert max(cpus) <= 4.0


@fk.task(resources=fk.Resources(cpus=5))
def five_cpus(folder: str, x: int) -> int:
    record_attempt(folder, "five_cpus")
    return x


@fk.workflow
def too_big(folder: str, xs: list[int]) -> tuple[int, list[int]]:
    return one_cpu(folder, 0), five_cpus.map(folder=folder, x=xs)


def test_a_call_larger_than_the_budget_fails_at_run_start(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    with pytest.raises(fk.GraphError, match=r"five_cpus.*cpus=5.*budget is 4.*max_workers=5"):
        fk.run(
            too_big,
            folder=str(tmp_path),
            xs=[1],
            backend=ThreadsBackend(max_workers=4),
            store=store,
        )
    assert attempt_times(str(tmp_path), "five_cpus") == []
    assert seen_counts(str(tmp_path)) == []  # nothing ran: not even the small task


def test_local_runs_a_call_whatever_cpus_it_asks_for(tmp_path: Path) -> None:
    run = fk.run(too_big, folder=str(tmp_path), xs=[1], backend="local", store=str(tmp_path / "s"))
    assert run.output == (0, [1])


@fk.task(concurrency=1, timeout=0.3, retries=1)
def stuck_once(folder: str, x: int) -> int:
    import time

    if record_attempt(folder, f"stuck_once_{x}") == 1 and x == 0:
        time.sleep(1.5)  # abandoned by the engine at its timeout (a thread cannot be stopped)
    return x


@fk.workflow
def stuck_limited(folder: str, xs: list[int]) -> list[int]:
    return stuck_once.map(folder=folder, x=xs)


def test_an_abandoned_attempt_frees_its_slot(tmp_path: Path) -> None:
    run = fk.run(
        stuck_limited,
        folder=str(tmp_path),
        xs=[0, 1, 2],
        backend=ThreadsBackend(max_workers=2),
        store=str(tmp_path / "s"),
    )
    assert run.output == [0, 1, 2]
    assert [t.attempts for t in run.tasks] == [2, 1, 1]


def test_fk_runs_reads_the_tolerated_items_back(tmp_path: Path) -> None:
    store = fk.Store(str(tmp_path / "s"))
    run = fk.run(tolerant_workflow(0.5), xs=[0, 1, 2], bad=[False, True, False], store=store)
    view = fk.runs.get(run.id, store=store)
    assert dict(view.tolerated) == {"item": [1]}
    assert view["item[1]"].status == "failed"
    header, _ = store.read_run(run.id)
    for planted, expected in (
        ({"item": {"failed": [1, -2]}}, {}),
        ({"item": {"failed": "1"}}, {}),
        ("junk", {}),
        ({"item": {"failed": [0, 2]}, "other": None}, {"item": [0, 2]}),
    ):
        store.write_run(run.id, {**header, "tolerated": planted})
        assert dict(fk.runs.get(run.id, store=store).tolerated) == expected


POOLED_FLOW = """
import flowkit as fk

@fk.task(pool="api")
def call(x: int) -> int:
    return x + 1

@fk.task
def numbers(n: int, limit: int) -> list[int]:
    return list(range(n + limit))

@fk.workflow
def w(n: int = 3, limit: int = 0) -> list[int]:
    return call.map(x=numbers(n, limit))
"""


def test_flowkit_run_pool_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pooled.py").write_text(POOLED_FLOW)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWKIT_QUIET", "1")
    args = ["run", "pooled.py:w", "--store", "s", "--backend", "threads"]
    assert main([*args, "--pool-limit", "api=1", "--limit", "1"]) == 0  # `limit`: an input
    assert capsys.readouterr().out.strip() == "[1, 2, 3, 4]"
    assert main(args) == 2
    assert "api" in capsys.readouterr().err  # the pool without a limit is named
    for bad in ("api", "api=0", "api=x", "=2", "api=٣"):
        assert main([*args, "--pool-limit", bad]) == 2
        assert "--pool-limit" in capsys.readouterr().err
