"""``@fk.task`` and ``@fk.dynamic``: decorator forms, options, plain calls, declaration errors."""

from __future__ import annotations

import dataclasses
import inspect
import os
import typing
from pathlib import Path

import pytest

import flowkit as fk
from flowkit.promise import Promise
from flowkit.taskspec import TASK_OPTIONS, TaskOptions


def test_bare_form_defaults() -> None:
    @fk.task
    def square(x: int) -> int:
        """Square a number."""
        return x * x

    assert isinstance(square, fk.TaskDef)
    assert square.name == "square"
    assert (square.cache, square.version, square.cache_ignore) == (False, None, frozenset())
    assert (square.retries, square.retry_delay, square.timeout) == (0, 0.0, None)
    assert square.resources == fk.Resources()
    assert square.dynamic is False
    assert square.param_types == {"x": int}
    assert square.return_type is int
    assert square.outputs == [("0", int)] and square.multi_output is False
    assert repr(square) == "<task square>"


def test_called_form_with_every_option() -> None:
    res = fk.Resources(cpus=2, gpus=0, memory="4Gi")

    @fk.task(
        cache=True,
        retries=2,
        retry_delay=0.5,
        timeout=600,
        resources=res,
        version="v3",
        cache_ignore=("verbose",),
        name="trainer",
    )
    def train(depth: int, verbose: bool = False) -> float:
        return depth / 10

    assert train.name == "trainer"
    assert train.cache is True
    assert (train.retries, train.retry_delay, train.timeout) == (2, 0.5, 600)
    assert train.resources is res
    assert train.resources.memory_bytes == 4 * 2**30
    assert train.version == "v3"
    assert train.cache_ignore == frozenset({"verbose"})
    assert train.param_types == {"depth": int, "verbose": bool}


def test_called_form_without_options() -> None:
    @fk.task()
    def one() -> int:
        return 1

    assert isinstance(one, fk.TaskDef) and one.name == "one" and one() == 1


def test_fn_is_the_undecorated_function() -> None:
    def add(a: int, b: int = 1) -> int:
        """Add."""
        return a + b

    t = fk.task(add)
    assert t.fn is add
    assert t.__wrapped__ is add  # type: ignore[attr-defined]
    assert t.__name__ == "add" and t.__doc__ == "Add."  # type: ignore[attr-defined]


def test_plain_call_outside_a_workflow_calls_the_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWKIT_STORE", raising=False)
    calls = []

    @fk.task(cache=True)
    def add(a: int, b: int = 1) -> int:
        calls.append((a, b))
        return a + b

    assert add(1) == 2
    assert add(1, b=5) == 6
    assert add(1) == 2  # no cache outside a workflow: the function runs every time
    assert calls == [(1, 1), (1, 5), (1, 1)]
    assert os.listdir(tmp_path) == []  # no store was created
    with pytest.raises(TypeError):
        add(1, 2, 3)  # type: ignore[call-arg]


def test_plain_call_does_not_check_types() -> None:
    # outside a workflow a task is just its function (tests may pass fakes)
    @fk.task
    def shout(s: str) -> str:
        return s.upper()

    assert shout("a") == "A"


def test_map_outside_a_workflow() -> None:
    @fk.task
    def add(a: int, b: int) -> int:
        return a + b

    @fk.task
    def pick(items: object, i: int) -> int:
        assert isinstance(items, list)
        return int(items[i])

    assert add.map(a=[1, 2, 3], b=10) == [11, 12, 13]
    assert add.map(a=[1, 2], b=[10, 20]) == [11, 22]
    assert add.map(a=[], b=1) == []
    assert pick.map(items=fk.unmapped([5, 6, 7]), i=[2, 0]) == [7, 5]
    with pytest.raises(fk.GraphError, match="unequal lengths"):
        add.map(a=[1, 2], b=[1, 2, 3])


@pytest.mark.parametrize("decorator", [fk.task, fk.dynamic])
def test_missing_parameter_annotation_names_function_and_parameter(decorator: object) -> None:
    def load(path, n: int) -> int:  # type: ignore[no-untyped-def]
        return n

    with pytest.raises(fk.GraphError) as info:
        decorator(load)  # type: ignore[operator]
    msg = str(info.value)
    assert "`load`" in msg and "`path`" in msg and "annotation" in msg


def test_missing_return_annotation() -> None:
    def load(n: int):  # type: ignore[no-untyped-def]
        return n

    with pytest.raises(fk.GraphError, match=r"`load`.*return value has no type annotation"):
        fk.task(load)


def test_star_args_are_rejected() -> None:
    def f(*xs: int) -> int:
        return sum(xs)

    with pytest.raises(fk.GraphError, match=r"`f`.*\*xs"):
        fk.task(f)


def test_unresolvable_annotation_names_the_type() -> None:
    def f(x: NoSuchType) -> int:  # type: ignore[name-defined]  # noqa: F821
        return 1

    with pytest.raises(fk.GraphError, match=r"`f`.*NoSuchType.*parameter `x`"):
        fk.task(f)


def test_cache_ignore_must_name_parameters() -> None:
    with pytest.raises(fk.GraphError) as info:

        @fk.task(cache=True, cache_ignore=("verbos",))
        def train(depth: int, verbose: bool = False) -> int:
            return depth

    msg = str(info.value)
    assert "train" in msg and "verbos" in msg and "verbose" in msg


@pytest.mark.parametrize(
    "options",
    [{"retries": -1}, {"retry_delay": -0.5}, {"timeout": 0}, {"timeout": -2}],
)
def test_bad_option_values(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="task `f`"):

        @fk.task(**options)  # type: ignore[call-overload]
        def f(x: int) -> int:
            return x


def test_unknown_option_names_the_task_and_the_options() -> None:
    with pytest.raises(TypeError) as info:

        @fk.task(retry=3)  # type: ignore[call-overload]
        def f(x: int) -> int:
            return x

    msg = str(info.value)
    assert "retry" in msg and "`f`" in msg and "retries" in msg


def test_not_a_function() -> None:
    with pytest.raises(TypeError, match="decorates a function"):
        fk.task(42)  # type: ignore[call-overload]


def test_bad_resources() -> None:
    with pytest.raises(ValueError, match="cpus"):
        fk.Resources(cpus=-1)
    with pytest.raises(ValueError, match="memory"):
        fk.Resources(memory="lots")
    assert fk.Resources(memory="512Mi").memory_bytes == 512 * 2**20
    assert fk.Resources(memory=1000).memory_bytes == 1000
    assert fk.Resources().memory_bytes is None


def test_dynamic_forms() -> None:
    @fk.dynamic
    def fan(n: int) -> list[int]:
        return list(range(n))

    @fk.dynamic(retries=1, retry_delay=0.1, name="fanout")
    def fan2(n: int) -> list[int]:
        return list(range(n))

    assert fan.dynamic and fan2.dynamic
    assert repr(fan) == "<dynamic fan>"
    assert (fan2.name, fan2.retries, fan2.retry_delay) == ("fanout", 1, 0.1)
    assert fan(3) == [0, 1, 2]  # outside a workflow: the plain function


@pytest.mark.parametrize("option", ["timeout", "keep"])
def test_dynamic_refuses_options_it_does_not_honour(option: str) -> None:
    # a dynamic body runs in the driver: a timeout would be silently ignored (cache, version,
    # cache_ignore and resources it takes: tests/test_dynamic_cache.py)
    value = {"timeout": 1.0, "keep": False}[option]
    with pytest.raises(TypeError, match=option):

        @fk.dynamic(**{option: value})  # type: ignore[call-overload]
        def fan(n: int) -> list[int]:
            return list(range(n))


def test_call_inside_a_workflow_returns_a_promise() -> None:
    seen: list[object] = []

    @fk.task
    def inc(x: int) -> int:
        return x + 1

    @fk.workflow
    def wf(x: int) -> int:
        p = inc(x)
        seen.append(p)
        return p

    (p,) = seen
    assert isinstance(p, Promise)
    assert p.type is int and p.node == "inc"


def test_bad_call_inside_a_workflow_names_task_and_location() -> None:
    @fk.task
    def inc(x: int) -> int:
        return x + 1

    with pytest.raises(fk.GraphError) as info:

        @fk.workflow
        def wf(x: int) -> int:
            return inc(x, 2)  # type: ignore[call-arg]

    msg = str(info.value)
    assert "task `inc`" in msg
    assert f"{os.path.basename(__file__)}:" in msg
    assert "too many positional arguments" in msg


# -- the one list of options (flowkit.taskspec) ----------------------------------------------------


def test_the_decorator_signature_lists_exactly_the_task_options() -> None:
    keywords = [
        name
        for name, p in inspect.signature(typing.get_overloads(fk.task)[1]).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert sorted(keywords) == sorted(TASK_OPTIONS)
    assert set(TASK_OPTIONS) == {f.name for f in dataclasses.fields(TaskOptions)} | {"name"}


def test_the_spec_holds_the_normalised_options() -> None:
    @fk.task(cache=1, cache_ignore=["v"], retries=2.0, retry_delay=1)  # type: ignore[call-overload]
    def f(x: int, v: bool = False) -> tuple[int, str]:
        return x, "x"

    spec = f.spec
    assert spec.options == TaskOptions(True, None, frozenset({"v"}), 2, 1.0, None)
    assert (f.cache, f.cache_ignore, f.retries, f.retry_delay) == (True, frozenset({"v"}), 2, 1.0)
    assert spec.name == "f" and spec.fn is f.fn and spec.signature is f.signature
    assert spec.outputs == (("0", int), ("1", str)) and spec.multi_output
    assert spec.param_types == {"x": int, "v": bool} and spec.return_type == tuple[int, str]
    assert [spec.retry_delay(a) for a in (1, 2, 3)] == [1.0, 2.0, 4.0]


def test_a_dynamic_spec_says_so() -> None:
    @fk.dynamic(retries=1)
    def body(n: int) -> int:
        return n

    assert body.spec.dynamic and body.spec.options.retries == 1
    assert repr(body.spec) == "<dynamic spec body>"
