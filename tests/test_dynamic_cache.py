"""``@fk.dynamic(cache=True)`` (issue 15): a dynamic node keyed like a task.

A hit serves the output with neither the body nor its sub-graph running (each body and task
call leaves a line in ``$FK_MARKS``); other inputs, ``version=``, ``cache=False`` and
``"refresh"`` miss; cached answers equal fresh uncached ones. Local, threads and a backend whose
handles are not values (the contract's boxed backend).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from core_fixtures.backends import BoxedBackend

import flowkit as fk


def marks() -> list[str]:
    path = Path(os.environ["FK_MARKS"])
    return path.read_text().splitlines() if path.exists() else []


def note(text: str) -> None:
    with open(os.environ["FK_MARKS"], "a") as f:
        f.write(text + "\n")


@fk.task
def double(x: int) -> int:
    note(f"double {x}")
    return 2 * x


@fk.dynamic(cache=True)
def doubles(n: int) -> list[int]:
    note(f"body {n}")
    return [double(i) for i in range(n)]


@fk.dynamic(cache=True, version="2")
def split_sum(n: int) -> tuple[int, int]:
    note(f"split {n}")
    return double(n), n


@fk.task
def total(xs: list[int]) -> int:
    return sum(xs)


@fk.task
def add(a: int, b: int) -> int:
    return a + b


@fk.workflow
def uses_doubles(n: int) -> int:
    return total(doubles(n))


@fk.workflow
def uses_split(n: int) -> int:
    a, b = split_sum(n)
    return add(a, b)


@pytest.fixture(autouse=True)
def _marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FK_MARKS", str(tmp_path / "marks"))


BACKENDS = ["local", "threads", "boxed"]


def backend_of(name: str) -> str | fk.Backend:
    return BoxedBackend() if name == "boxed" else name


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hit_runs_neither_the_body_nor_its_sub_graph(backend: str, tmp_path: Path) -> None:
    store = str(tmp_path / "store")

    def run(wf: fk.WorkflowDef[..., int], **kw: object) -> fk.Run:
        return fk.run(wf, backend=backend_of(backend), store=store, **kw)

    first = run(uses_doubles, n=3)
    assert first.output == 6
    assert sorted(marks()) == ["body 3", "double 0", "double 1", "double 2"]  # (threads: any order)
    again = run(uses_doubles, n=3)
    assert again.output == 6
    assert [(t.node, t.cached) for t in again.tasks] == [("doubles", True), ("total", False)]
    assert len(marks()) == 4  # nothing ran
    assert run(uses_doubles, n=2).output == 2  # other inputs: a miss
    assert marks()[4] == "body 2"
    assert run(uses_doubles, n=3, cache=False).output == 6  # the cache off: the body runs
    assert run(uses_doubles, n=3, cache="refresh").output == 6
    assert marks().count("body 3") == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_multi_output_dynamic_hit(backend: str, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    for _ in range(2):
        run = fk.run(uses_split, n=5, backend=backend_of(backend), store=store)
        assert run.output == 15
    assert marks() == ["split 5", "double 5"]
    assert run.tasks[0].cached


def test_the_options_a_dynamic_task_takes() -> None:
    def body(x: int) -> int:
        return x

    with pytest.raises(TypeError, match=r"unknown option\(s\) timeout.*set a timeout on the tasks"):
        fk.dynamic(timeout=3)(body)  # type: ignore[call-overload]

    spec = fk.dynamic(cache=True, version="7", cache_ignore=["x"])(body).spec
    assert (spec.options.cache, spec.options.version, spec.options.cache_ignore) == (
        True,
        "7",
        frozenset({"x"}),
    )


@fk.task(resources=fk.Resources(cpus=1, memory="100MiB"))
def own_resources(x: int) -> int:
    return x


@fk.dynamic(resources=fk.Resources(cpus=2, memory="1GiB"))
def heavy(n: int) -> list[int]:
    return [double(n), own_resources(n)]


@fk.workflow
def uses_heavy(n: int) -> list[int]:
    return heavy(n)


def test_dynamic_resources_are_the_default_of_its_calls() -> None:
    seen: dict[str, fk.Resources] = {}

    class Spy(fk.backends.LocalBackend):  # what each submission asks for
        def submit(self, fn: object, args: tuple[object, ...], spec: object) -> object:
            seen[spec.name] = spec.resources  # type: ignore[attr-defined]
            return super().submit(fn, args, spec)  # type: ignore[arg-type]

    assert fk.run(uses_heavy, n=4, backend=Spy()).output == [8, 4]
    assert seen["double"] == fk.Resources(cpus=2, memory="1GiB")  # declares none: the default
    assert seen["own_resources"] == fk.Resources(cpus=1, memory="100MiB")  # its own: kept
    assert double.resources == fk.Resources()  # the task itself is unchanged
