"""The cache never serves a wrong value: issue 9's cases, each run as users run them.

Every case writes small workflow files into a temporary folder and runs them with
``python FILE.py`` (through ``caching_fixtures/_drive.py``, one JSON line per run) in fresh
interpreters, on the ``local`` and ``threads`` backends and on a local and an S3 (moto) store.
The oracle is a fresh uncached run: after an edit, the cached answer must equal what the code
computes now. (The same cases on Ray live in ``backends/ray/tests/test_ray_trust.py``.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.conftest import S3Stores

FIXTURES = Path(__file__).parent / "caching_fixtures"
BACKENDS = ["local", "threads"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without flowkit, AWS or fixture switches, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWKIT_", "AWS_", "FK_"))}
    return {**env, **extra}


class Runner:
    """Writes workflow files into ``work`` and runs them against one store and backend."""

    def __init__(self, work: Path, store: str, env: dict[str, str], backend: str) -> None:
        self.work, self.store, self.env, self.backend = work, store, env, backend
        shutil.copy(FIXTURES / "_drive.py", work / "_drive.py")

    def write(self, name: str, text: str) -> Path:
        path = self.work / name
        body, marker, tail = text.partition('\nif __name__ == "__main__":')
        path.write_text(textwrap.dedent(body) + marker + tail)
        return path

    def run(self, script: str, *args: str, ok: bool = True) -> dict[str, Any]:
        """Run ``script`` once; the run's JSON line (``output``, ``cached`` by node)."""
        cmd = [sys.executable, str(self.work / script), "--store", self.store]
        cmd += ["--backend", self.backend, *args]
        proc = subprocess.run(
            cmd, cwd=self.work, env=self.env, capture_output=True, text=True, timeout=120
        )
        lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
        assert lines, f"no run printed\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
        if ok:
            assert proc.returncode == 0 and "error" not in lines[-1], proc.stderr
        lines[-1]["stderr"] = proc.stderr
        return lines[-1]


@pytest.fixture(params=["local-store", "s3-store"])
def store_env(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    if request.param == "local-store":
        yield str(tmp_path / "store"), clean_env()
    else:
        s3: S3Stores = request.getfixturevalue("s3_stores")
        url = f"s3://{s3.bucket()}/prefix"
        yield url, clean_env(FK_STORE_OPTIONS=json.dumps(s3.options))


@pytest.fixture(params=BACKENDS)
def runner(
    request: pytest.FixtureRequest, tmp_path: Path, store_env: tuple[str, dict[str, str]]
) -> Runner:
    work = tmp_path / "work"
    work.mkdir()
    return Runner(work, *store_env, backend=request.param)


DRIVE = """
if __name__ == "__main__":
    from _drive import main
    main({wfs})
"""


# -- 1. dict order ------------------------------------------------------------------------------


def test_dict_order_is_part_of_the_key_and_of_the_stored_value(runner: Runner) -> None:
    runner.write(
        "order.py",
        """
        import flowkit as fk

        @fk.task(cache=True)
        def first_key(d: dict[str, int]) -> str:
            return next(iter(d))

        @fk.task(cache=True)
        def make(flip: bool) -> dict[str, int]:
            return {"b": 1, "a": 2} if flip else {"a": 2, "b": 1}

        @fk.task
        def keys_of(d: dict[str, int]) -> list[str]:
            return list(d)

        @fk.workflow
        def first(d: dict[str, int]) -> str:
            return first_key(d)

        @fk.workflow
        def made(flip: bool) -> list[str]:
            return keys_of(make(flip))
        """
        + DRIVE.format(wfs="first, made"),
    )
    assert runner.run("order.py", "--workflow", "first", 'd={"a": 1, "b": 2}')["output"] == "a"
    assert runner.run("order.py", "--workflow", "first", 'd={"b": 2, "a": 1}')["output"] == "b"
    for _ in range(2):  # computed, then served from the cache: same order both times
        res = runner.run("order.py", "--workflow", "made", "flip=true")
        assert res["output"] == ["b", "a"]
    assert res["cached"]["make"] is True


# -- 2. an input's class ------------------------------------------------------------------------

SHAPES = """
from dataclasses import dataclass

@dataclass(frozen=True)
class Rect:
    w: float
    h: float

    def area(self) -> float:
        return {body}
"""


def test_editing_an_input_values_class_misses(runner: Runner) -> None:
    runner.write("shapes.py", SHAPES.format(body="self.w * self.h"))
    runner.write(
        "area.py",
        """
        import flowkit as fk
        from shapes import Rect

        @fk.task(cache=True)
        def area(r: Rect) -> float:
            return r.area()

        @fk.task(cache=True)
        def make(w: float) -> Rect:
            return Rect(w, 3.0)

        @fk.workflow
        def given() -> float:
            return area(Rect(2.0, 3.0))

        @fk.workflow
        def built(w: float) -> float:
            return area(make(w))
        """
        + DRIVE.format(wfs="given, built"),
    )
    assert runner.run("area.py", "--workflow", "given")["output"] == 6.0
    assert runner.run("area.py", "--workflow", "built", "w=2")["output"] == 6.0
    hit = runner.run("area.py", "--workflow", "given")
    assert hit["output"] == 6.0 and hit["cached"]["area"] is True
    runner.write("shapes.py", SHAPES.format(body="self.w * self.h * 10  # edited"))
    res = runner.run("area.py", "--workflow", "given")
    assert res["output"] == 60.0 and res["cached"]["area"] is False
    res = runner.run("area.py", "--workflow", "built", "w=2")
    assert res["output"] == 60.0 and res["cached"]["area"] is False


# -- 3. a function passed as an input -----------------------------------------------------------


def test_editing_a_function_passed_as_an_input_misses(runner: Runner) -> None:
    runner.write("helpers.py", "def double(x: int) -> int:\n    return x * 2\n")
    runner.write(
        "apply.py",
        """
        from collections.abc import Callable

        import flowkit as fk
        import helpers

        @fk.task(cache=True)
        def apply(fn: Callable[[int], int], x: int) -> int:
            return fn(x)

        @fk.workflow
        def wf(x: int) -> int:
            return apply(helpers.double, x)
        """
        + DRIVE.format(wfs="wf"),
    )
    assert runner.run("apply.py", "x=5")["output"] == 10
    assert runner.run("apply.py", "x=5")["cached"]["apply"] is True
    runner.write("helpers.py", "def double(x: int) -> int:\n    return x * 3  # edited\n")
    res = runner.run("apply.py", "x=5")
    assert res["output"] == 15 and res["cached"]["apply"] is False


# -- 4. same name and version in two modules ----------------------------------------------------


def test_same_name_and_version_in_two_modules_never_share_entries(runner: Runner) -> None:
    for team, add in (("team_a", 1), ("team_b", 2)):
        runner.write(
            f"{team}.py",
            f"""
            import flowkit as fk

            @fk.task(cache=True, version="1")
            def score(x: int) -> int:
                return x + {add}

            @fk.workflow
            def wf(x: int) -> int:
                return score(x)
            """
            + DRIVE.format(wfs="wf"),
        )
    assert runner.run("team_a.py", "x=10")["output"] == 11
    res = runner.run("team_b.py", "x=10")
    assert res["output"] == 12 and res["cached"]["score"] is False
    assert runner.run("team_a.py", "x=10")["cached"]["score"] is True


# -- 7. class identity across processes ---------------------------------------------------------

FLOW = """
from dataclasses import dataclass, field

import flowkit as fk

@dataclass(frozen=True)
class Hyperparameters:
    lr: float
    depth: int

@dataclass
class Box:
    w: float
    h: float
    area: float = field(init=False)

    def __post_init__(self) -> None:
        self.area = self.w * self.h
        self.note = "set in __post_init__"

@fk.task(cache=True)
def make(lr: float) -> Hyperparameters:
    return Hyperparameters(lr, 3)

@fk.task(cache=True)
def box() -> Box:
    return Box(2.0, 4.0)

@fk.task
def use(h: Hyperparameters, b: Box) -> str:
    assert isinstance(h, Hyperparameters), type(h)
    assert isinstance(b, Box), type(b)
    return f"{h.lr} {h.depth} {b.area} {b.note}"

@fk.workflow
def wf(lr: float) -> str:
    return use(make(lr), box())
"""


def test_values_from_the_cache_are_instances_of_the_running_code_classes(runner: Runner) -> None:
    runner.write("flow.py", FLOW + DRIVE.format(wfs="wf"))
    runner.write(
        "other.py",
        """
        import sys
        import flow
        from _drive import main

        main(flow.wf)
        """,
    )
    expected = "0.5 3 8.0 set in __post_init__"
    first = runner.run("flow.py", "lr=0.5")  # as __main__
    assert first["output"] == expected
    second = runner.run("other.py", "lr=0.5")  # the same file imported as module `flow`
    assert second["output"] == expected
    assert second["cached"]["make"] is True and second["cached"]["box"] is True
    third = runner.run("flow.py", "lr=0.5")
    assert third["output"] == expected and third["cached"]["make"] is True


def test_python_script_then_flowkit_run_share_the_cache(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    r = Runner(work, str(tmp_path / "store"), clean_env(), "local")
    r.write("flow.py", FLOW + DRIVE.format(wfs="wf"))
    store = str(tmp_path / "store")
    assert r.run("flow.py", "lr=0.25")["output"] == "0.25 3 8.0 set in __post_init__"
    proc = subprocess.run(
        [sys.executable, "-m", "flowkit", "run", "flow.py", "--lr", "0.25", "--store", store],
        cwd=work,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "0.25 3 8.0 set in __post_init__" in proc.stdout
    assert "cached 2" in proc.stderr or "'cached': 2" in proc.stderr or "2 cached" in proc.stderr


# -- 8. unstable inputs say so once ---------------------------------------------------------------


def test_an_input_that_pickles_unstably_warns_once_and_stores_nothing(runner: Runner) -> None:
    runner.write(
        "unstable_set.py",
        """
        import flowkit as fk

        class Tags:
            def __init__(self, names: list[str]) -> None:
                self.names = set(names)

        @fk.task(cache=True)
        def count(tags: Tags, i: int) -> int:
            return len(tags.names) + i

        @fk.task
        def tags() -> Tags:
            return Tags(["alpha", "beta", "gamma", "delta"])

        @fk.workflow
        def wf() -> list[int]:
            return count.map(tags=fk.unmapped(tags()), i=[1, 2, 3])
        """
        + DRIVE.format(wfs="wf"),
    )
    res = runner.run("unstable_set.py")
    assert res["output"] == [5, 6, 7]
    assert res["stderr"].count("hash seed") == 1, res["stderr"]
    res = runner.run("unstable_set.py")
    assert not any(res["cached"].values())


# -- NaN and inf inputs -------------------------------------------------------------------------


def test_nan_and_inf_inputs_run_and_are_recorded(runner: Runner) -> None:
    runner.write(
        "nan.py",
        """
        import math
        import flowkit as fk

        @fk.task(cache=True)
        def describe(x: float, xs: list[float]) -> str:
            return f"{math.isnan(x)} {xs}"

        @fk.workflow
        def wf(x: float, xs: list[float]) -> str:
            return describe(x, xs)

        if __name__ == "__main__":
            from _drive import main
            main(wf, x=float("nan"), xs=[float("inf"), -float("inf"), 1.0])
        """,
    )
    res = runner.run("nan.py")
    assert res["output"] == "True [inf, -inf, 1.0]"
    assert runner.run("nan.py")["cached"]["describe"] is True
