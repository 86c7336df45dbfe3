"""Field access on promises (issue 15): ``cfg.lr``, ``split.train``, ``report.per_class["a"]``.

A field is a path in the graph (no task): checked at decoration (unknown fields list the
fields, methods and Optional values are refused with the fix), read where the value is at run
time, and never given the whole value's cache token. Runs on the local and threads backends;
``backends/ray/tests/test_ray_cond.py`` runs the same on Ray.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowkit as fk
from flowkit import typecheck
from flowkit.fieldpath import FieldPathError
from flowkit.graph import FieldOf

BACKENDS = ["local", "threads"]


class Pair(NamedTuple):
    left: int
    right: list[int]


@dataclass(frozen=True)
class Leaf:
    n: int
    pair: Pair
    tags: dict[str, int]

    def doubled(self) -> int:
        return 2 * self.n


class Doc(TypedDict):
    leaf: Leaf
    score: int


@dataclass(frozen=True)
class Root:
    doc: Doc
    leaves: dict[str, Leaf]
    pair: Pair
    maybe: Leaf | None = None


class Split(NamedTuple):
    train: list[int]
    test: list[int]


@fk.task
def make_root(root: Root) -> Root:
    return root


@fk.task
def echo(x: Any) -> Any:
    return x


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.task
def inc(x: int) -> int:
    return x + 1


@fk.task
def split(n: int) -> Split:
    return Split(list(range(n)), [n, n])


@fk.task
def leaf(n: int) -> Leaf:
    return Leaf(n, Pair(n, [n, n + 1]), {"a": n, "b": -n})


def a_leaf(n: int) -> Leaf:
    return leaf.fn(n)


ROOT = Root(
    doc={"leaf": a_leaf(1), "score": 7},
    leaves={"x": a_leaf(2), "y": a_leaf(3)},
    pair=Pair(4, [5, 6]),
)


# -- the graph ---------------------------------------------------------------------------------


def test_a_field_is_a_typed_path_not_a_node() -> None:
    seen: dict[str, Any] = {}

    @fk.workflow
    def wf(root: Root) -> int:
        r = make_root(root)
        p = r.leaves["x"].pair.right
        seen["p"] = p
        return total(p)

    assert list(wf.graph.nodes) == ["make_root", "total"]  # no node for the field
    p = seen["p"]
    assert p.type == list[int]
    assert isinstance(p._binding, FieldOf) and p.node == "make_root"
    assert "make_root['x'].pair.right" not in wf.graph.to_text()
    assert "make_root.leaves['x'].pair.right" in wf.graph.to_text()


@pytest.mark.parametrize(
    ("expr", "type_"),
    [
        ("r.doc", Doc),
        ("r.doc['leaf'].tags", dict[str, int]),
        ("r.doc['score']", int),
        ("r.leaves['any key']", Leaf),
        ("r.pair.left", int),
        ("r.pair[1]", list[int]),
        ("r.pair.right[0]", int),
        ("e.whatever['k'][3]", Any),
    ],
)
def test_field_types(expr: str, type_: Any) -> None:
    seen: dict[str, Any] = {}

    @fk.workflow
    def wf(root: Root) -> Any:
        r, e = make_root(root), echo(1)  # noqa: F841 (read by eval)
        seen["p"] = eval(expr)
        return seen["p"]

    assert seen["p"].type == type_


def bad_workflow(body: str) -> fk.GraphError:
    with pytest.raises(fk.GraphError) as info:
        exec(
            "@fk.workflow\ndef wf(root: Root) -> Any:\n"
            f"    r = make_root(root)\n    return {body}\n",
            globals(),
        )
    return info.value


def test_an_unknown_field_lists_the_fields() -> None:
    msg = str(bad_workflow("r.pairr"))
    assert "no field `pairr`" in msg
    assert "doc: " in msg and "leaves: dict[str, " in msg and "pair: " in msg
    assert "workflow `wf`" in msg and "`make_root`" in msg


def test_an_unknown_typeddict_key_lists_the_keys() -> None:
    msg = str(bad_workflow("r.doc['leef']"))
    assert "no key 'leef'" in msg and "'leaf'" in msg and "'score'" in msg


def test_a_method_says_to_call_it_in_a_task() -> None:
    msg = str(bad_workflow("r.doc['leaf'].doubled()"))
    assert "`.doubled` is a method" in msg and "@fk.task" in msg


def test_optional_values_are_refused_with_the_fix() -> None:
    msg = str(bad_workflow("r.maybe.n"))
    assert "may be None" in msg and "Optional" in msg


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("r.leaves.x", "a dict has keys, not attributes: write p['x']"),
        ("r.leaves[1]", "key 1 is not a str"),
        ("r.pair[2]", "position 2 is out of range"),
        ("r.pair[0:1]", "index with a key written in the workflow body"),
        ("r.doc['leaf'].n.real", "`.real` is a property"),
        ("r.doc['leaf'].n.nope", "cannot read `.nope`"),
        ("r.leaves[r.doc['leaf'].pair.left]", "a key that is itself a promise needs a task"),
    ],
)
def test_other_misuses_say_what_to_do(body: str, expected: str) -> None:
    assert expected in str(bad_workflow(body))


def test_a_field_type_mismatch_names_the_field() -> None:
    with pytest.raises(fk.TypeMismatchError, match=r"field `\.pair\.right` \(list\[int\]\)"):

        @fk.workflow
        def wf(root: Root) -> int:
            return inc(make_root(root).pair.right)


def test_a_dataclass_built_from_promises_is_refused_at_decoration() -> None:
    with pytest.raises(fk.GraphError) as info:

        @fk.workflow
        def wf(n: int) -> Any:
            return echo(Pair(left=inc(n), right=[1]))

    msg = str(info.value)
    assert "`Pair(...)` is built at" in msg and "field `left`" in msg
    assert "test_fields.py:" in msg and "@fk.task def make_pair" in msg
    with pytest.raises(fk.GraphError, match="field `n`"):  # nested inside another value

        @fk.workflow
        def wf2(n: int) -> Any:
            return echo([{"k": Leaf(inc(n), Pair(1, []), {})}])


def test_graph_names_namedtuple_outputs_by_field() -> None:
    @fk.workflow
    def wf(n: int) -> int:
        s = split(n)
        return total(s.train) + 0 if False else total(s.test)

    text = wf.graph.to_text()
    assert "total(xs <- split.test)" in text
    assert "split[1]" not in text


def test_a_field_of_an_input_is_drawn_from_the_input() -> None:
    @fk.workflow
    def wf(root: Root) -> int:
        return inc(root.pair.left)

    assert "in_root -->|x| n_inc" in wf.graph.to_mermaid()
    assert "inc(x <- input root.pair.left)" in wf.graph.to_text()


# -- running -----------------------------------------------------------------------------------


@fk.workflow
def sub_fields(r: Root) -> list[int]:
    return r.pair.right


@fk.workflow
def everything(root: Root, n: int) -> tuple[int, int, list[int], int, int, Any, int]:
    r = make_root(root)
    s = split(n)
    leaves = leaf.map(n=s.train)
    return (
        inc(r.doc["leaf"].pair.left),
        total(r.leaves["y"].pair.right),
        inc.map(x=s.test),
        inc(root.doc["score"]),  # a field of a workflow input: read in the driver
        inc(leaves[1].tags["b"]),  # a field of one item of a map's output
        r.leaves["x"].tags,  # a field as the workflow's output
        total(sub_fields(r)),
    )


@fk.dynamic
def dyn_field(n: int) -> int:
    return leaf(n).pair.left


@fk.workflow
def through_dynamic(n: int) -> int:
    return inc(dyn_field(n))


@pytest.mark.parametrize("backend", BACKENDS)
def test_fields_resolve_at_run_time(backend: str, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    out = fk.run(everything, root=ROOT, n=3, backend=backend, store=store).output
    assert out == (2, 7, [4, 4], 8, 0, {"a": 2, "b": -2}, 11)
    assert fk.run(through_dynamic, n=5, backend=backend, store=store).output == 6


@fk.task
def maybe_keys(n: int) -> dict[str, int]:
    return {"a": n}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_missing_dict_key_fails_naming_the_keys(backend: str, tmp_path: Path) -> None:
    @fk.workflow
    def wf(n: int) -> int:
        return inc(maybe_keys(n)["b"])

    with pytest.raises(fk.FlowkitError) as info:
        fk.run(wf, n=1, backend=backend, store=str(tmp_path / "s"))
    assert "key 'b' is not in the dict (keys: 'a')" in str(info.value)

    @fk.workflow
    def out(n: int) -> int:
        return maybe_keys(n)["b"]  # read in the driver, as the output

    with pytest.raises(FieldPathError, match="key 'b'"):
        fk.run(out, n=1, backend=backend, store=str(tmp_path / "s"))


# -- caching: a field never gets its whole value's key ------------------------------------------


@dataclass(frozen=True)
class Two:
    a: int
    b: int


def calls() -> list[int]:
    """The arguments `tenfold` ran with (its body appends to $FK_MARKS: a module-level list
    would be part of its code fingerprint)."""
    marks = Path(os.environ["FK_MARKS"])
    return sorted(int(x) for x in marks.read_text().split()) if marks.exists() else []


@fk.task(cache=True)
def make_two(a: int, b: int) -> Two:
    return Two(a, b)


@fk.task(cache=True)
def tenfold(x: int) -> int:
    with open(os.environ["FK_MARKS"], "a") as marks:
        marks.write(f"{x}\n")
    return 10 * x


@fk.task(cache=True)
def whole(t: Two) -> int:
    return t.a * 1000 + t.b


@fk.workflow
def two_fields(a: int, b: int) -> tuple[int, int, int]:
    t = make_two(a, b)
    return tenfold(t.a), tenfold(t.b), whole(t)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_fields_of_one_cached_output_do_not_share_a_key(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FK_MARKS", str(tmp_path / "marks"))
    store = str(tmp_path / "store")
    first = fk.run(two_fields, a=1, b=2, backend=backend, store=store)
    assert first.output == (10, 20, 1002)
    assert calls() == [1, 2]
    again = fk.run(two_fields, a=1, b=2, backend=backend, store=store)
    assert again.output == (10, 20, 1002)
    assert all(t.cached for t in again.tasks)
    # b changes, a does not: the call reading `a` hits, the one reading `b` runs
    third = fk.run(two_fields, a=1, b=3, backend=backend, store=store)
    assert third.output == (10, 30, 1003)
    by_node = {t.node: t.cached for t in third.tasks}
    assert by_node == {"make_two": False, "tenfold": True, "tenfold_2": False, "whole": False}
    assert calls() == [1, 2, 3]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(pairs=st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=1, max_size=4))
def test_cached_field_reads_match_a_fresh_uncached_run(
    pairs: list[tuple[int, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FK_MARKS", str(tmp_path / "marks"))
    store = str(tmp_path / "shared-store")  # shared by the examples: entries pile up
    for a, b in pairs:
        cached = fk.run(two_fields, a=a, b=b, store=store).output
        fresh = fk.run(two_fields, a=a, b=b, store=store, cache=False).output
        assert cached == fresh == (10 * a, 10 * b, 1000 * a + b)


# -- random paths against a plain-Python oracle --------------------------------------------------

leaves_st = st.builds(
    Leaf,
    n=st.integers(-5, 5),
    pair=st.builds(Pair, left=st.integers(), right=st.lists(st.integers(), max_size=3)),
    tags=st.dictionaries(st.text("abc", min_size=1, max_size=2), st.integers(), max_size=3),
)
roots_st = st.builds(
    Root,
    doc=st.fixed_dictionaries({"leaf": leaves_st, "score": st.integers()}),
    leaves=st.dictionaries(st.sampled_from("xyz"), leaves_st, max_size=3),
    pair=st.builds(Pair, left=st.integers(), right=st.lists(st.integers(), max_size=3)),
)


def random_path(data: st.DataObject, value: Any) -> list[tuple[str, Any]]:
    """A valid path into ``value``, walked by its type: attributes of dataclasses and
    NamedTuples (or their positions), keys of dicts and TypedDicts, list positions."""
    path: list[tuple[str, Any]] = []
    while data.draw(st.booleans(), label="go deeper"):
        if dataclasses.is_dataclass(value):
            names = [
                f.name for f in dataclasses.fields(value) if getattr(value, f.name) is not None
            ]
            step = ("attr", data.draw(st.sampled_from(names)))
        elif isinstance(value, tuple):
            if data.draw(st.booleans(), label="by position"):
                step = ("key", data.draw(st.integers(0, len(value) - 1)))
            else:
                step = ("attr", data.draw(st.sampled_from(value._fields)))  # type: ignore[attr-defined]
        elif isinstance(value, (dict, list)) and value:
            keys = list(value) if isinstance(value, dict) else list(range(len(value)))
            step = ("key", data.draw(st.sampled_from(keys)))
        else:
            break
        path.append(step)
        value = getattr(value, step[1]) if step[0] == "attr" else value[step[1]]
    return path


def follow(obj: Any, path: list[tuple[str, Any]]) -> Any:
    for kind, name in path:
        obj = getattr(obj, name) if kind == "attr" else obj[name]
    return obj


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(root=roots_st, data=st.data(), backend=st.sampled_from(BACKENDS))
def test_random_paths_match_python(root: Root, data: st.DataObject, backend: str) -> None:
    path = random_path(data, root)
    seen: dict[str, Any] = {}

    @fk.workflow
    def wf(root: Root) -> tuple[Any, Any, Any]:
        from_task = follow(make_root(root), path)  # a node's output: read on the worker
        from_input = follow(root, path)  # a workflow input: read in the driver
        seen["type"] = typing.cast(Any, from_task).type
        return echo(from_task), echo(from_input), from_task

    expected = follow(root, path)
    assert typecheck.check_value(expected, seen["type"])  # the static type admits the value
    out = fk.run(wf, root=root, backend=backend, keep=False).output
    assert out == (expected, expected, expected)


def test_probing_a_promise_for_an_attribute_answers() -> None:
    """Libraries (and runtime-checkable protocols) probe with hasattr/getattr(default)."""
    seen: dict[str, Any] = {}

    @fk.workflow
    def wf(root: Root) -> int:
        r = make_root(root)
        seen["has"] = (hasattr(r, "pair"), hasattr(r, "nope"), hasattr(r, "_repr_html_"))
        seen["default"] = getattr(r, "nope", "fallback")
        return inc(r.pair.left)

    assert seen == {"has": (True, False, False), "default": "fallback"}
    err = bad_workflow("r.nope")
    assert isinstance(err, fk.GraphError) and isinstance(err, AttributeError)


def test_an_unknown_output_of_a_namedtuple_task_lists_the_outputs() -> None:
    with pytest.raises(fk.GraphError) as info:

        @fk.workflow
        def wf(n: int) -> int:
            return total(split(n).tset)

    msg = str(info.value)
    assert "no output named 'tset'" in msg and "Split at " in msg
    assert "(train: list[int], test: list[int])" in msg and "test_fields.py:" in msg
