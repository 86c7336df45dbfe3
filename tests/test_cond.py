"""``fk.cond`` (issue 15): typed branches in the static graph.

Both branches are traced at decoration (their inputs type-checked, their return types
unified); at run time only the branch taken runs and the other's calls are recorded as
skipped (read back from the store, as ``flowkit runs show`` and the UI read them). Random
nested conds are checked against plain Python, cached runs against fresh uncached ones. The
backend contract (``flowkit.testing.conditional``) runs the same semantics on every backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowkit as fk
from flowkit.graph import Select

BACKENDS = ["local", "threads"]


@fk.task
def big(x: int) -> bool:
    return x > 5


@fk.task
def above(x: int, t: int) -> bool:
    return x > t


@fk.task
def double(x: int) -> int:
    return 2 * x


@fk.task
def negate(x: int) -> int:
    return -x


@fk.task
def add(x: int, k: int) -> int:
    return x + k


@fk.task
def as_text(x: int) -> str:
    return str(x)


@fk.task
def span(n: int) -> list[int]:
    return list(range(n))


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.task
def marked(x: int) -> int:
    with open(os.environ["FK_MARKS"], "a") as f:
        f.write(f"{x}\n")
    return x


@fk.workflow
def neg_double(x: int) -> int:
    return double(negate(x))


@fk.workflow
def simple(x: int) -> int:
    return fk.cond(big(x), then=double, otherwise=neg_double, x=x)


# -- decoration -------------------------------------------------------------------------------


def test_both_branches_are_in_the_graph_with_their_guards() -> None:
    nodes = simple.graph.nodes
    assert list(nodes) == ["big", "double", "neg_double.negate", "neg_double.double"]
    assert [(g.cond, g.when) for g in nodes["double"].guards] == [("cond", True)]
    assert [(g.cond, g.when) for g in nodes["neg_double.negate"].guards] == [("cond", False)]
    assert nodes["big"].guards == ()
    out = simple.graph.output
    assert isinstance(out, Select) and out.cond == "cond"
    text = simple.graph.to_text()
    assert "double: double(x <- input x) -> int if cond" in text
    assert "neg_double.double: double(x <- neg_double.negate) -> int if not cond" in text


def test_mermaid_and_dot_draw_the_decision() -> None:
    mermaid = simple.graph.to_mermaid()
    assert 'n_cond_cond{"cond: big?"}' in mermaid
    assert "n_big -.-> n_cond_cond" in mermaid
    assert "n_cond_cond -->|true| n_double" in mermaid
    assert "n_cond_cond -->|false| n_neg_double_negate" in mermaid
    dot = simple.graph.to_dot()
    assert '"cond:cond" [shape=diamond, label="cond: big?"];' in dot
    assert '"cond:cond" -> "double" [label="true"];' in dot


def test_the_result_is_a_typed_promise() -> None:
    seen: dict[str, Any] = {}

    @fk.workflow
    def wf(x: int) -> str:
        r = fk.cond(big(x), then=double, otherwise=negate, x=x)
        seen["type"] = r.type
        return as_text(r)

    assert seen["type"] is int


def test_mismatched_branch_types_name_both_branches() -> None:
    with pytest.raises(fk.TypeMismatchError) as info:

        @fk.workflow
        def wf(x: int) -> Any:
            return fk.cond(big(x), then=double, otherwise=as_text, x=x)

    msg = str(info.value)
    assert "then=task `double` returns int" in msg
    assert "otherwise=task `as_text` returns str" in msg
    assert "test_cond.py:" in msg


def test_branch_inputs_are_type_checked_like_any_edge() -> None:
    with pytest.raises(fk.TypeMismatchError, match=r"parameter `x` \(int\)"):

        @fk.workflow
        def wf(x: int, s: str) -> int:
            return fk.cond(big(x), then=double, otherwise=negate, x=s)


@pytest.mark.parametrize(
    ("pred", "expected"),
    [
        ("as_text(x)", "the predicate is the output of `as_text` (str), not a bool"),
        ("1", "must be a promise of bool (a task returning bool) or a bool, not int"),
    ],
)
def test_the_predicate_must_be_a_bool(pred: str, expected: str) -> None:
    with pytest.raises(fk.TypeMismatchError) as info:
        exec(
            "@fk.workflow\ndef wf(x: int) -> int:\n"
            f"    return fk.cond({pred}, then=double, otherwise=negate, x=x)\n",
            globals(),
        )
    assert expected in str(info.value)


def test_a_branch_must_be_callable() -> None:
    with pytest.raises(fk.GraphError, match="`otherwise=` must be a task, a workflow"):

        @fk.workflow
        def wf(x: int) -> int:
            return fk.cond(big(x), then=double, otherwise=3, x=x)  # type: ignore[arg-type]


def test_outside_a_workflow_cond_calls_the_branch() -> None:
    assert fk.cond(True, then=double, otherwise=negate, x=4) == 8
    assert fk.cond(False, then=double, otherwise=negate, x=4) == -4


# -- running -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("x", "expected"), [(7, 14), (2, -4)])
def test_only_the_branch_taken_runs(backend: str, x: int, expected: int, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    run = fk.run(simple, x=x, backend=backend, store=store)
    assert run.output == expected
    status = {t.node: t.status for t in run.tasks}
    then, otherwise = ("succeeded", "skipped") if x > 5 else ("skipped", "succeeded")
    assert status == {
        "big": "succeeded",
        "double": then,
        "neg_double.negate": otherwise,
        "neg_double.double": otherwise,
    }
    assert run.status == "succeeded"
    # as `flowkit runs show` and the UI read it: from the store
    stored = fk.runs.get(run.id, store=store)
    assert {t.node: t.status for t in stored.tasks} == status


@fk.workflow
def literal_pred(x: int) -> int:
    return fk.cond(False, then=double, otherwise=negate, x=x)


@fk.workflow
def map_in_branch(n: int) -> int:
    return fk.cond(
        big(n),
        then=lambda n: total(double.map(x=span(n))),
        otherwise=lambda n: negate(n),
        n=n,
    )


@fk.workflow
def result_into_map(n: int) -> list[int]:
    xs = fk.cond(big(n), then=span, otherwise=lambda n: span(double(n)), n=n)
    return double.map(x=xs)


@fk.dynamic
def cond_at_run_time(x: int) -> int:
    return fk.cond(big(x), then=double, otherwise=negate, x=x) if x % 2 else x  # type: ignore[no-any-return]


@fk.workflow
def dynamic_cond(x: int) -> int:
    return add(cond_at_run_time(x), 1)


@fk.workflow
def sub_twice(x: int) -> int:
    return add(simple(x), simple(add(x, 5)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_conds_in_all_positions(backend: str, tmp_path: Path) -> None:
    store = str(tmp_path / "store")

    def run(wf: Any, **kw: Any) -> Any:
        return fk.run(wf, backend=backend, store=store, **kw)

    assert run(literal_pred, x=3).output == -3
    r = run(map_in_branch, n=3)  # the map is skipped whole: one record
    assert r.output == -3
    assert {t.node: t.status for t in r.tasks if t.node.startswith("double")} == {
        "double": "skipped"
    }
    r = run(map_in_branch, n=7)
    assert r.output == 42
    assert sum(t.node.startswith("double[") for t in r.tasks) == 7
    assert run(result_into_map, n=2).output == [0, 2, 4, 6]
    assert run(result_into_map, n=6).output == [0, 2, 4, 6, 8, 10]
    assert [run(dynamic_cond, x=x).output for x in (7, 3, 4)] == [15, -2, 5]
    r = run(sub_twice, x=2)  # simple(2) = -4, simple(7) = 14
    assert r.output == 10
    assert list(sub_twice.graph.nodes)[:2] == ["simple.big", "simple.double"]
    assert {g.cond for n in sub_twice.graph for g in n.guards} == {"simple.cond", "simple.cond_2"}


@fk.workflow
def guarded_marks(x: int) -> int:
    return fk.cond(
        big(x),
        then=lambda x: marked(add(x, 1000)),
        otherwise=lambda x: marked(add(x, 2000)),
        x=x,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_skipped_call_never_starts(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = tmp_path / "marks"
    monkeypatch.setenv("FK_MARKS", str(marks))
    assert fk.run(guarded_marks, x=9, backend=backend, store=str(tmp_path / "s")).output == 1009
    assert fk.run(guarded_marks, x=1, backend=backend, store=str(tmp_path / "s")).output == 2001
    assert marks.read_text().split() == ["1009", "2001"]


# -- random nested conds against plain Python --------------------------------------------------

# A tree is ("leaf", k): x + k, or ("cond", t, then, otherwise): then if x > t else otherwise,
# where a branch's x is the value computed so far (each level adds its leaf on top).
trees = st.recursive(
    st.tuples(st.just("leaf"), st.integers(-3, 3)),
    lambda sub: st.tuples(st.just("cond"), st.integers(-4, 4), sub, sub),
    max_leaves=6,
)


def oracle(tree: Any, x: int) -> int:
    if tree[0] == "leaf":
        return x + tree[1]
    _, t, then, otherwise = tree
    return oracle(then if x > t else otherwise, x)


def build(tree: Any, x: Any) -> Any:
    if tree[0] == "leaf":
        return add(x, tree[1])
    _, t, then, otherwise = tree
    return fk.cond(
        above(x, t),
        then=lambda x: build(then, x),
        otherwise=lambda x: build(otherwise, x),
        x=x,
    )


def leaves(tree: Any) -> int:
    return 1 if tree[0] == "leaf" else leaves(tree[2]) + leaves(tree[3])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=trees, x=st.integers(-5, 5), backend=st.sampled_from(BACKENDS))
def test_random_nested_conds_match_python(tree: Any, x: int, backend: str) -> None:
    @fk.workflow
    def wf(x: int) -> int:
        return build(tree, x)  # type: ignore[no-any-return]

    run = fk.run(wf, x=x, backend=backend, keep=False)
    assert run.output == oracle(tree, x)
    # exactly one leaf ran; every other leaf was skipped, or its cond was never decided
    adds = [t for t in run.tasks if t.name == "add"]
    assert len(adds) == leaves(tree)
    assert sum(t.status == "succeeded" for t in adds) == 1
    assert all(t.status in ("succeeded", "skipped") for t in run.tasks)


# -- caching under cond: a cached run answers like a fresh uncached one ------------------------


@dataclass(frozen=True)
class Scores:
    good: int
    bad: int


@fk.task(cache=True)
def scores(x: int) -> Scores:
    return Scores(x, -x)


@fk.task(cache=True)
def positive(x: int) -> bool:
    return x > 0


@fk.task(cache=True)
def cached_double(x: int) -> int:
    return 2 * x


@fk.task(cache=True)
def cached_negate(x: int) -> int:
    return -x


@fk.workflow
def cached_cond(x: int) -> int:
    s = scores(x)
    return fk.cond(positive(s.good), then=cached_double, otherwise=cached_negate, x=s.bad)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(xs=st.lists(st.integers(-3, 3), min_size=1, max_size=4))
def test_cached_conds_match_fresh_uncached_runs(xs: list[int], tmp_path: Path) -> None:
    store = str(tmp_path / "shared")  # shared by the examples: hits from earlier ones
    for x in xs:
        cached = fk.run(cached_cond, x=x, store=store).output
        fresh = fk.run(cached_cond, x=x, store=store, cache=False).output
        assert cached == fresh == (-2 * x if x > 0 else x)


# -- the example: a Flyte conditional pipeline, ported ------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flyte_conditional.py"


def test_the_flyte_conditional_example_runs_as_a_script(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWKIT_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path / "store")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1] for line in done.stdout.splitlines()
    }
    assert lines["report_fields"].split()[0] == "25.12"  # area 50.24, halved
    assert (
        "failed as the original does: the input must be within 0 to 10 (radius=11.0)"
        in (lines["radius=11.0"])
    )
    assert "calculate_circle_area=skipped" in done.stdout
    assert "inner_nested.out_of_range=skipped" in done.stdout


# -- fk.cond.map: a cond per item of a map -----------------------------------------------------


@fk.task
def positives(xs: list[int]) -> list[bool]:
    return [x > 0 for x in xs]


@fk.workflow
def per_item(xs: list[int]) -> tuple[list[int], int]:
    r = fk.cond.map(big.map(x=xs), then=double, otherwise=negate, x=xs)
    return r, total(r)


@fk.workflow
def per_item_in_a_branch(xs: list[int], on: bool) -> list[int]:
    return fk.cond(  # type: ignore[no-any-return]
        on,
        then=lambda xs: per_item(xs)[0],
        otherwise=lambda xs: xs,
        xs=xs,
    )


def test_cond_map_graph_and_plain_call() -> None:
    text = per_item.graph.to_text()
    assert "double: map double(x <- input xs) -> list[int] if cond[i]" in text
    assert "negate: map negate(x <- input xs) -> list[int] if not cond[i]" in text
    assert fk.cond.map([True, False, True], then=double, otherwise=negate, x=[1, 2, 3]) == [
        2,
        -2,
        6,
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cond_map_runs_each_item_in_its_branch(backend: str, tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    run = fk.run(per_item, xs=[9, 1, 7], backend=backend, store=store)
    assert run.output == ([18, -1, 14], 31)
    status = {t.node: t.status for t in run.tasks}
    assert [status[f"double[{i}]"] for i in range(3)] == ["succeeded", "skipped", "succeeded"]
    assert [status[f"negate[{i}]"] for i in range(3)] == ["skipped", "succeeded", "skipped"]
    off = fk.run(per_item_in_a_branch, xs=[9, 1], on=False, backend=backend, store=store)
    assert off.output == [9, 1]
    assert {t.status for t in off.tasks} == {"skipped"}  # big, double and negate: whole nodes
    on = fk.run(per_item_in_a_branch, xs=[9, 1], on=True, backend=backend, store=store)
    assert on.output == [18, -1]


@fk.workflow
def wrong_length(xs: list[int]) -> list[int]:
    return fk.cond.map(positives(xs[:1] if False else [1]), then=double, otherwise=negate, x=xs)  # type: ignore[no-any-return]


def test_cond_map_misuse() -> None:
    with pytest.raises(fk.GraphError, match="2 items"):
        fk.run(wrong_length, xs=[1, 2])
    with pytest.raises(fk.TypeMismatchError, match=r"promise of list\[bool\].*not list\[int\]"):

        @fk.workflow
        def wf(xs: list[int]) -> list[int]:
            return fk.cond.map(span(3), then=double, otherwise=negate, x=xs)  # type: ignore[no-any-return]

    with pytest.raises(fk.GraphError, match="`otherwise=` must be a task"):

        @fk.workflow
        def wf2(xs: list[int]) -> list[int]:
            return fk.cond.map(  # type: ignore[no-any-return]
                big.map(x=xs), then=double, otherwise=neg_double, x=xs
            )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    xs=st.lists(st.integers(-9, 9), max_size=6),
    backend=st.sampled_from(BACKENDS),
)
def test_cond_map_matches_python(xs: list[int], backend: str) -> None:
    run = fk.run(per_item, xs=xs, backend=backend, keep=False)
    expected = [2 * x if x > 5 else -x for x in xs]
    assert run.output == (expected, sum(expected))
    ran = sorted(t.node for t in run.tasks if t.status == "succeeded" and t.name != "big")
    assert len(ran) == len(xs) + 1  # one branch call per item, and the total


@fk.workflow
def after_empty_map(xs: list[int]) -> int:
    return total(double.map(x=xs))


@fk.workflow
def after_literal_skip(x: int) -> int:
    return double(fk.cond(False, then=double, otherwise=negate, x=x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_node_done_at_once_schedules_its_dependents_once(backend: str, tmp_path: Path) -> None:
    """An empty map, or a branch skipped as the graph starts, completes while the first
    nodes are being scheduled: its dependents must run once, not twice."""
    store = str(tmp_path / "s")
    run = fk.run(after_empty_map, xs=[], backend=backend, store=store)
    assert run.output == 0
    assert [t.node for t in run.tasks] == ["total"]
    run = fk.run(after_literal_skip, x=3, backend=backend, store=store)
    assert run.output == -6
    assert sorted(t.node for t in run.tasks) == ["double", "double_2", "negate"]


def test_the_ui_graph_shows_the_branch_not_taken_as_skipped(tmp_path: Path) -> None:
    from flowkit.ui.graphsvg import graph_svg

    store = str(tmp_path / "s")
    run = fk.run(simple, x=7, store=store)
    svg = str(graph_svg(fk.runs.get(run.id, store=store)))
    assert 'data-node="double" data-status="succeeded"' in svg
    assert 'data-node="neg_double.negate" data-status="skipped"' in svg
    assert 'data-node="neg_double.double" data-status="skipped"' in svg
