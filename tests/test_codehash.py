"""Code fingerprints: the cache-invalidation table, on real modules imported fresh.

Each version of a user project is written to its own directory as a package with a per-test
unique name, imported, fingerprinted, and unloaded again; two versions of one test share the
package name, so component names line up and only real edits show.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import textwrap
import types
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy
import pytest

import flowkit
from flowkit.codehash import Fingerprint, components_digest, describe_changes, fingerprint


class Project:
    """Writes versions of a small user package and fingerprints a task in each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.package = f"fkch_{uuid.uuid4().hex[:10]}"
        self.versions = 0

    def load(self, files: dict[str, str], module: str = "main") -> object:
        """Import ``package.module`` from a fresh directory holding ``files``."""
        self.unload()
        self.versions += 1
        pkg_dir = self.root / f"v{self.versions}" / self.package
        pkg_dir.mkdir(parents=True)
        (pkg_dir / "__init__.py").write_text("")
        for name, source in files.items():
            (pkg_dir / f"{name}.py").write_text(textwrap.dedent(source))
        sys.path.insert(0, str(pkg_dir.parent))
        importlib.invalidate_caches()
        return importlib.import_module(f"{self.package}.{module}")

    def fingerprint(self, files: dict[str, str], task: str = "train") -> Fingerprint:
        return fingerprint(getattr(self.load(files), task))

    def unload(self) -> None:
        for name in [m for m in sys.modules if m.split(".")[0] == self.package]:
            del sys.modules[name]
        sys.path[:] = [p for p in sys.path if not p.startswith(str(self.root))]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    proj = Project(tmp_path)
    yield proj
    proj.unload()


def changes(a: Fingerprint, b: Fingerprint) -> list[str]:
    return describe_changes(a.components, b.components)


def edit(source: str, old: str, new: str) -> str:
    """``source`` with ``old`` replaced, failing loudly if the edit would be a no-op."""
    assert old in source, f"{old!r} is not in the source"
    return source.replace(old, new)


MAIN = """
import flowkit as fk

FACTOR = 3

def clean(xs):
    return [x for x in xs if x is not None]

@fk.task(cache=True, retries=3)
def train(xs: list) -> int:
    # the total
    total = 0
    for x in clean(xs):
        total += x * FACTOR
    return total
"""


# ---------------------------------------------------------------------------- the table


def test_body_edit_changes_the_function_component(project: Project) -> None:
    before = project.fingerprint({"main": MAIN})
    after = project.fingerprint({"main": edit(MAIN, "total += x", "total -= x")})
    assert before.digest != after.digest
    assert changes(before, after) == ["function `train` changed"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(("# the total", "# a different comment, longer"), id="comment"),
        pytest.param(("    # the total\n", ""), id="comment-removed"),
        pytest.param(("-> int:\n", '-> int:\n    """Sum the clean values."""\n'), id="docstring"),
        pytest.param(("    total = 0\n", "    total = 0\n\n\n"), id="blank-lines"),
        pytest.param(
            ("total += x * FACTOR", "total += (x *\n                  FACTOR)"), id="formatting"
        ),
        pytest.param(("for x in clean(xs):", "for x in clean( xs ) :"), id="spacing"),
        pytest.param(("retries=3", "retries=1, timeout=5.0"), id="decorator-options"),
        pytest.param(("\nFACTOR = 3", "\n# moved down\n\n\nFACTOR = 3"), id="lines-shifted"),
    ],
)
def test_edits_that_do_not_change_behaviour_keep_the_digest(
    project: Project, change: tuple[str, str]
) -> None:
    old, new = change
    before = project.fingerprint({"main": MAIN})
    after = project.fingerprint({"main": edit(MAIN, old, new)})
    assert after.digest == before.digest


def test_docstring_on_a_helper_and_a_class_does_not_count(project: Project) -> None:
    src = """
    class Scaler:
        def scale(self, x):
            return x * 2

    def clean(xs):
        return [Scaler().scale(x) for x in xs]

    def train(xs):
        return clean(xs)
    """
    documented = edit(src, "class Scaler:\n", 'class Scaler:\n        """Scales."""\n').replace(
        "def clean(xs):\n", 'def clean(xs):\n        """Cleans."""\n'
    )
    assert (
        project.fingerprint({"main": src}).digest
        == project.fingerprint({"main": documented}).digest
    )


def test_helper_edit_names_the_helper(project: Project) -> None:
    before = project.fingerprint({"main": MAIN})
    after = project.fingerprint({"main": edit(MAIN, "x is not None", "x")})
    assert before.digest != after.digest
    assert changes(before, after) == ["helper `clean` changed"]


def test_module_constant_edit_names_the_constant(project: Project) -> None:
    before = project.fingerprint({"main": MAIN})
    after = project.fingerprint({"main": edit(MAIN, "FACTOR = 3", "FACTOR = 4")})
    assert changes(before, after) == ["constant `FACTOR` changed"]


def test_constants_count_by_value_not_by_spelling(project: Project) -> None:
    src = "SETTINGS = {'lr': 0.1, 'tags': {'a', 'b'}}\ndef train():\n    return SETTINGS\n"
    same = (
        "SETTINGS = dict(tags={'b', 'a'},\n                lr=1e-1)\n"
        "def train():\n    return SETTINGS\n"
    )
    assert project.fingerprint({"main": src}).digest == project.fingerprint({"main": same}).digest
    other = edit(src, "0.1", "0.2")
    assert changes(project.fingerprint({"main": src}), project.fingerprint({"main": other})) == [
        "constant `SETTINGS` changed"
    ]


SCALER = """
class Base:
    def check(self, x):
        return x >= 0

class Scaler(Base):
    scale = 2

    def __init__(self, offset=0):
        self.offset = offset

    def apply(self, x):
        return x * self.scale + self.offset

    @staticmethod
    def name():
        return "scaler"

    @property
    def double(self):
        return self.scale * 2

def train(xs):
    s = Scaler()
    return [s.apply(x) for x in xs if s.check(x)]
"""


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("return x * self.scale + self.offset", "return x * self.scale - self.offset"),
        ("scale = 2", "scale = 3"),
        ("offset=0", "offset=1"),
        ('return "scaler"', 'return "Scaler"'),
        ("return self.scale * 2", "return self.scale * 3"),
    ],
    ids=["method", "class-attribute", "method-default", "staticmethod", "property"],
)
def test_user_class_edit_names_the_class(project: Project, old: str, new: str) -> None:
    before = project.fingerprint({"main": SCALER})
    after = project.fingerprint({"main": edit(SCALER, old, new)})
    assert changes(before, after) == ["class `Scaler` changed"]


def test_user_base_class_edit_names_the_base(project: Project) -> None:
    before = project.fingerprint({"main": SCALER})
    after = project.fingerprint({"main": edit(SCALER, "x >= 0", "x > 0")})
    assert changes(before, after) == ["class `Base` changed"]


def test_closure_value_change_names_the_closure(project: Project) -> None:
    src = """
    def make(threshold):
        def train(xs):
            return [x for x in xs if x > threshold]
        return train

    train = make(0.5)
    """
    before = project.fingerprint({"main": src})
    after = project.fingerprint({"main": edit(src, "make(0.5)", "make(0.75)")})
    assert "closure `threshold`" in before.components
    assert changes(before, after) == ["closure `threshold` changed"]


def test_closure_holding_a_function_follows_it(project: Project) -> None:
    src = """
    def double(x):
        return x * 2

    def make(fn):
        def train(xs):
            return [fn(x) for x in xs]
        return train

    train = make(double)
    """
    before = project.fingerprint({"main": src})
    after = project.fingerprint({"main": edit(src, "x * 2", "x * 3")})
    assert changes(before, after) == ["helper `double` changed"]


def test_default_argument_change_names_the_default(project: Project) -> None:
    src = "def train(xs, alpha=0.5, *, beta=1):\n    return [x * alpha * beta for x in xs]\n"
    before = project.fingerprint({"main": src})
    assert changes(before, project.fingerprint({"main": edit(src, "0.5", "0.6")})) == [
        "default `alpha` changed"
    ]
    assert changes(before, project.fingerprint({"main": edit(src, "beta=1", "beta=2")})) == [
        "default `beta` changed"
    ]


def test_third_party_and_stdlib_modules_count_by_version(project: Project) -> None:
    src = """
    import json
    import numpy as np
    import flowkit as fk
    from numpy.linalg import norm

    def train(xs):
        return json.dumps(float(np.mean(xs) + norm(xs))), fk.File
    """
    fp = project.fingerprint({"main": src})
    assert fp.components["module `numpy`"] == f"numpy=={numpy.__version__}"
    assert fp.components["module `json`"] == f"python=={sys.version_info[0]}.{sys.version_info[1]}"
    assert fp.components["module `flowkit`"] == f"flowkit=={flowkit.__version__}"
    # Installed code counts by version only: nothing of numpy's or flowkit's source is walked.
    assert not [c for c in fp.components if "numpy." in c or "flowkit." in c]


def test_distribution_name_differs_from_import_name(project: Project) -> None:
    sklearn = pytest.importorskip("sklearn")
    src = "from sklearn.linear_model import Ridge\ndef train():\n    return Ridge()\n"
    fp = project.fingerprint({"main": src})
    assert fp.components["module `sklearn`"] == f"scikit-learn=={sklearn.__version__}"


# ---------------------------------------------------------------------------- reaching user code


UTILS = """
SCALE = 10

def clean(xs):
    return [x for x in xs if x]

def unused(xs):
    return xs
"""


def test_attribute_chain_on_a_user_module_fingerprints_only_what_is_used(
    project: Project,
) -> None:
    main = "from {pkg} import utils\ndef train(xs):\n    return utils.clean(xs), utils.SCALE\n"
    files = {"utils": UTILS, "main": main.format(pkg=project.package)}
    before = project.fingerprint(files)
    assert f"helper `{project.package}.utils.clean`" in before.components
    assert f"constant `{project.package}.utils.SCALE`" in before.components
    unused_edit = {**files, "utils": edit(UTILS, "return xs", "return xs[::-1]")}
    assert project.fingerprint(unused_edit).digest == before.digest
    used_edit = {**files, "utils": edit(UTILS, "if x]", "if x > 0]")}
    assert changes(before, project.fingerprint(used_edit)) == [
        f"helper `{project.package}.utils.clean` changed"
    ]


def test_imports_inside_the_task_are_followed(project: Project) -> None:
    main = """
    def train(xs):
        from .utils import clean
        import json
        return json.dumps(clean(xs))
    """
    files = {"utils": UTILS, "main": main}
    before = project.fingerprint(files)
    assert before.components["module `json`"].startswith("python==")
    after = project.fingerprint({**files, "utils": edit(UTILS, "if x]", "if x > 0]")})
    assert changes(before, after) == [f"helper `{project.package}.utils.clean` changed"]


def test_helpers_are_followed_transitively_and_through_nested_code(project: Project) -> None:
    src = """
    LIMIT = 5

    def inner(x):
        return min(x, LIMIT)

    def outer(xs):
        return sorted(xs, key=lambda x: inner(x))

    def train(xs):
        return {k: v for k, v in enumerate(outer(xs))}
    """
    before = project.fingerprint({"main": src})
    assert changes(before, project.fingerprint({"main": edit(src, "LIMIT = 5", "LIMIT = 6")})) == [
        "constant `LIMIT` changed"
    ]
    assert changes(before, project.fingerprint({"main": edit(src, "min(", "max(")})) == [
        "helper `inner` changed"
    ]


def test_wrapped_helpers_are_followed(project: Project) -> None:
    src = """
    import functools

    def logged(fn):
        @functools.wraps(fn)
        def wrapper(*args):
            return fn(*args)
        return wrapper

    @logged
    def clean(xs):
        return [x for x in xs if x]

    @functools.lru_cache(maxsize=None)
    def lookup(key):
        return key * 2

    def train(xs):
        return clean(xs), lookup(3)
    """
    before = project.fingerprint({"main": src})
    assert changes(before, project.fingerprint({"main": edit(src, "if x]", "if x > 1]")})) == [
        "helper `clean` changed"
    ]
    assert changes(before, project.fingerprint({"main": edit(src, "key * 2", "key * 4")})) == [
        "helper `lookup` changed"
    ]
    # The user's own decorator is user code too.
    edited_wrapper = edit(src, "return fn(*args)", "return fn(*args[::-1])")
    assert project.fingerprint({"main": edited_wrapper}).digest != before.digest


def test_task_calling_another_task_follows_its_function(project: Project) -> None:
    src = """
    import flowkit as fk

    @fk.task
    def prep(xs: list) -> list:
        return sorted(xs)

    @fk.task(cache=True)
    def train(xs: list) -> list:
        return prep.fn(xs)
    """
    before = project.fingerprint({"main": src})
    after = project.fingerprint({"main": edit(src, "sorted(xs)", "sorted(xs)[::-1]")})
    assert changes(before, after) == ["helper `prep` changed"]


def test_rebinding_a_global_is_seen_without_recompiling(project: Project) -> None:
    src = """
    def a():
        return 1

    def b():
        return 2

    def train():
        return a() - b()
    """
    module = project.load({"main": src})
    before = fingerprint(module.train)  # type: ignore[attr-defined]
    module.a, module.b = module.b, module.a  # type: ignore[attr-defined]
    after = fingerprint(module.train)  # type: ignore[attr-defined]
    assert after.digest != before.digest
    assert changes(before, after) == ["function `train` changed"]


def test_mutual_recursion_and_self_reference_terminate(project: Project) -> None:
    src = """
    def even(n):
        return True if n == 0 else odd(n - 1)

    def odd(n):
        return False if n == 0 else even(n - 1)

    class Node:
        def __init__(self, child=None):
            self.child = child

        def clone(self):
            return Node(self.child.clone() if self.child else None)

    REGISTRY = {"even": even}

    def train(n):
        return even(n), Node().clone(), REGISTRY, train
    """
    fp = project.fingerprint({"main": src})
    assert {"helper `even`", "helper `odd`", "class `Node`", "constant `REGISTRY`"} <= set(
        fp.components
    )
    assert all(fp.components.values())
    after = project.fingerprint({"main": edit(src, "n - 1)\n\n    class", "n - 2)\n\n    class")})
    assert changes(fp, after) == ["helper `odd` changed"]


def test_builtins_and_unbound_names_are_ignored(project: Project) -> None:
    src = """
    def train(xs):
        print(len(xs))
        return LATER(xs)
    """
    fp = project.fingerprint({"main": src})
    assert set(fp.components) == {"function `train`", "bytecode"}


def test_unstable_value_counts_by_type_with_a_warning(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    src = """
    import threading

    class Handle:
        def __init__(self):
            self.view = memoryview(b"abc")  # cannot be pickled

    LOCK = threading.Lock()  # runtime machinery: counts by type, no warning
    HANDLE = Handle()

    def train():
        with LOCK:
            return HANDLE
    """
    with caplog.at_level(logging.WARNING, logger="flowkit.codehash"):
        fp = project.fingerprint({"main": src})
    assert {"constant `LOCK`", "constant `HANDLE`"} <= set(fp.components)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "constant `HANDLE`" in messages[0] and "memoryview" in messages[0]


def test_numpy_constant_counts_by_content(project: Project) -> None:
    src = """
    import numpy as np
    W = np.arange(6, dtype='float64').reshape(2, 3)
    def train():
        return W
    """
    before = project.fingerprint({"main": src})
    assert project.fingerprint({"main": src}).digest == before.digest
    assert changes(before, project.fingerprint({"main": edit(src, "(2, 3)", "(3, 2)")})) == [
        "constant `W` changed"
    ]
    assert changes(before, project.fingerprint({"main": edit(src, "arange(6", "ones(6")})) == [
        "constant `W` changed"
    ]


def test_not_a_function_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="cannot fingerprint"):
        fingerprint(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- the digest


def test_digest_is_a_pure_function_of_the_components(project: Project) -> None:
    fp = project.fingerprint({"main": MAIN})
    assert components_digest(fp.components) == fp.digest
    assert fp.components["bytecode"] == sys.implementation.cache_tag


def test_describe_changes() -> None:
    old = {"helper `a`": "1", "constant `B`": "2", "module `numpy`": "numpy==1.0"}
    new = {"helper `a`": "9", "closure `c`": "3", "module `numpy`": "numpy==2.0"}
    assert describe_changes(old, new) == [
        "closure `c` added",
        "constant `B` removed",
        "helper `a` changed",
        "module `numpy` changed (numpy==1.0 -> numpy==2.0)",
    ]


STABLE = """
import dataclasses
import enum
import typing
import numpy as np
import pandas as pd

class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"

@dataclasses.dataclass(frozen=True)
class Config:
    lr: float = 0.1
    tags: frozenset = frozenset({"alpha", "beta", "gamma"})

CONFIG = Config()
NAMES = {"x", "y", "z", "w"}
TABLE = {("a", 1): [1.5, None, True], "nested": {"k": b"bytes"}}
WEIGHTS = np.linspace(0, 1, 5)
FRAME = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=["r1", "r2"])

class Point(typing.NamedTuple):
    x: int
    nxt: "Point | None" = None

class Sized(typing.Protocol):
    def size(self) -> int: ...

T = typing.TypeVar("T")

class Box(typing.Generic[T]):
    def get(self) -> T: ...

def helper(x):
    return x in {"p", "q", "r"}

def train(xs):
    values = CONFIG, NAMES, TABLE, WEIGHTS, Mode.FAST, FRAME, Point(1), Sized, Box
    return [helper(x) for x in xs], values
"""

_PRINT_DIGEST = (
    "import importlib, sys; sys.path.insert(0, sys.argv[1]); "
    "from flowkit.codehash import fingerprint; "
    "print(fingerprint(importlib.import_module(sys.argv[2]).train).digest)"
)


def _digest_in_fresh_interpreter(path: Path, module: str, hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run(
        [sys.executable, "-c", _PRINT_DIGEST, str(path), module],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.strip()


def test_same_digest_in_fresh_interpreters(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="flowkit.codehash"):
        here = project.fingerprint({"main": STABLE})
    assert not caplog.records  # every value above has a stable encoding
    directory = project.root / f"v{project.versions}"
    module = f"{project.package}.main"
    first = _digest_in_fresh_interpreter(directory, module, "1")
    second = _digest_in_fresh_interpreter(directory, module, "12345")
    assert first == second == here.digest


def test_same_digest_run_as_script_or_imported(tmp_path: Path) -> None:
    script = tmp_path / "pipeline.py"
    script.write_text(
        textwrap.dedent(STABLE)
        + "\nif __name__ == '__main__':\n"
        + "    from flowkit.codehash import fingerprint\n"
        + "    print(fingerprint(train).digest)\n"
    )
    as_script = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    as_module = _digest_in_fresh_interpreter(tmp_path, "pipeline", "7")
    assert as_script == as_module


def test_notebook_cells_are_user_code_and_re_execution_is_seen() -> None:
    """Code exec'd into a module that has no file (a notebook's __main__) is user code."""
    namespace = types.ModuleType("notebook_session")
    cell_1 = "SCALE = 2\ndef clean(xs):\n    return [x * SCALE for x in xs]\n"
    cell_2 = "def train(xs):\n    return sum(clean(xs))\n"
    exec(compile(cell_1, "<cell 1>", "exec"), namespace.__dict__)
    exec(compile(cell_2, "<cell 2>", "exec"), namespace.__dict__)
    before = fingerprint(namespace.train)
    assert {"helper `clean`", "constant `SCALE`"} <= set(before.components)
    # The user edits and re-runs the first cell only: the task object is the same.
    exec(compile(edit(cell_1, "x * SCALE", "x + SCALE"), "<cell 1>", "exec"), namespace.__dict__)
    assert changes(before, fingerprint(namespace.train)) == ["helper `clean` changed"]


def test_class_defined_inside_the_task_resolves_its_globals(project: Project) -> None:
    src = """
    OFFSET = 1

    def train(xs):
        class Local:
            shift = OFFSET

            def apply(self, x):
                return x + self.shift

        return [Local().apply(x) for x in xs]
    """
    before = project.fingerprint({"main": src})
    after = project.fingerprint({"main": edit(src, "OFFSET = 1", "OFFSET = 2")})
    assert changes(before, after) == ["constant `OFFSET` changed"]


def test_import_as_binds_the_submodule(project: Project) -> None:
    src = (
        "def train(xs):\n    import json.decoder as dec\n    return dec.JSONDecoder().decode(xs)\n"
    )
    fp = project.fingerprint({"main": src})
    assert fp.components["module `json`"].startswith("python==")


def test_dataclass_fields_and_defaults_count(project: Project) -> None:
    src = """
    import dataclasses

    @dataclasses.dataclass
    class Params:
        lr: float = 0.1
        layers: list = dataclasses.field(default_factory=lambda: [64, 32])

    def train():
        return Params()
    """
    before = project.fingerprint({"main": src})
    assert set(before.components) == {
        "function `train`",
        "class `Params`",
        "helper `Params.<lambda>`",  # the default_factory
        "module `dataclasses`",
        "bytecode",
    }
    for old, new, changed in [
        ("0.1", "0.2", "class `Params`"),
        ("lr: float", "lr: int", "class `Params`"),
        ("[64, 32]", "[64, 16]", "helper `Params.<lambda>`"),
    ]:
        after = project.fingerprint({"main": edit(src, old, new)})
        assert changes(before, after) == [f"{changed} changed"], (old, new)


def test_partial_and_super_are_followed(project: Project) -> None:
    src = """
    import functools

    class Base:
        def __init__(self):
            self.scale = 2

    class Model(Base):
        def __init__(self):
            super().__init__()
            self.bias = 1

    def combine(x, y, *, weight):
        return x * weight + y

    weighted = functools.partial(combine, weight=0.5)

    def train(x):
        return weighted(x, Model().bias)
    """
    before = project.fingerprint({"main": src})
    after = project.fingerprint({"main": edit(src, "x * weight + y", "x * weight - y")})
    assert changes(before, after) == ["helper `combine` changed"]
    after = project.fingerprint({"main": edit(src, "weight=0.5", "weight=0.25")})
    assert changes(before, after) == ["constant `weighted` changed"]
    after = project.fingerprint({"main": edit(src, "self.scale = 2", "self.scale = 3")})
    assert changes(before, after) == ["class `Base` changed"]


def test_user_module_used_as_a_value_counts_whole(project: Project) -> None:
    main = """
    from . import utils

    def train(name, xs):
        return getattr(utils, name)(xs)
    """
    files = {"utils": UTILS, "main": main}
    before = project.fingerprint(files)
    assert f"module `{project.package}.utils`" in before.components
    after = project.fingerprint({**files, "utils": edit(UTILS, "return xs", "return xs[::-1]")})
    assert changes(before, after) == [f"helper `{project.package}.utils.unused` changed"]


def test_lazy_module_attribute_errors_are_ignored(project: Project) -> None:
    lazy = "def __getattr__(name):\n    raise ImportError(f'optional dependency for {name}')\n"
    main = """
    from . import lazy

    def train():
        return lazy.missing_feature()
    """
    fp = project.fingerprint({"lazy": lazy, "main": main})
    assert set(fp.components) == {"function `train`", "bytecode"}


def test_annotation_metadata_counts_and_odd_strings_do_not_crash(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    src = """
    import dataclasses
    from typing import Annotated, Optional

    @dataclasses.dataclass
    class Row:
        size: Annotated[int, "min=0"] = 0
        parent: Optional["Row"] = None

    ODD = "lone \\ud800 surrogate"

    def train():
        return Row(), ODD
    """
    with caplog.at_level(logging.WARNING, logger="flowkit.codehash"):
        before = project.fingerprint({"main": src})
    assert not caplog.records
    after = project.fingerprint({"main": edit(src, '"min=0"', '"min=1"')})
    assert changes(before, after) == ["class `Row` changed"]


def test_same_named_helpers_get_distinct_components(project: Project) -> None:
    src = """
    def make(k):
        return lambda x: x * k

    DOUBLE = make(2)
    TRIPLE = make(3)

    def train(x):
        return DOUBLE(x) + TRIPLE(x)
    """
    before = project.fingerprint({"main": src})
    assert {"helper `make.<locals>.<lambda>`", "helper `make.<locals>.<lambda>` #2"} <= set(
        before.components
    )
    after = project.fingerprint({"main": edit(src, "make(2)", "make(5)")})
    assert changes(before, after) == ["closure `make.<locals>.<lambda>.k` changed"]
    after = project.fingerprint({"main": edit(src, "make(3)", "make(4)")})
    assert changes(before, after) == ["closure `make.<locals>.<lambda>#2.k` changed"]


def test_long_helper_chains_do_not_hit_the_recursion_limit(project: Project) -> None:
    depth = sys.getrecursionlimit()  # a recursive walk would need several frames per helper
    helpers = "".join(f"def f{i}(x):\n    return f{i + 1}(x) + 1\n\n" for i in range(depth))
    src = helpers + f"def f{depth}(x):\n    return x\n\ndef train(x):\n    return f0(x)\n"
    before = project.fingerprint({"main": src})
    assert len(before.components) == depth + 3  # train, f0..f{depth}, bytecode
    after = project.fingerprint(
        {"main": edit(src, f"def f{depth}(x):\n    return x", f"def f{depth}(x):\n    return -x")}
    )
    assert changes(before, after) == [f"helper `f{depth}` changed"]


# ---------------------------------------------------------------------------- annotations

ANNOTATED = """
import dataclasses
import typing
from typing import Annotated, Callable, ClassVar, Literal, Optional, Union

T = typing.TypeVar("T", bound=float)

class Inner:
    def size(self):
        return 1

@dataclasses.dataclass
class Row(typing.Generic[T]):
    count: int | None = None
    ratio: Optional[float] = None
    either: Union[int, str] = 0
    items: list[int] = dataclasses.field(default_factory=list)
    lookup: dict[str, Inner] = dataclasses.field(default_factory=dict)
    tagged: Annotated[int, "min=0"] = 0
    mode: Literal["fast", "slow"] = "fast"
    parent: "Row | None" = None
    hook: Callable[[int], str] | None = None
    value: T | None = None
    limit: ClassVar[int] = 3

def train():
    return Row()
"""


def test_type_annotations_encode_without_a_warning(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    """PEP 604 unions and typing constructs have a stable encoding: no "cannot be hashed"."""
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING, logger="flowkit.codehash"):
        warnings.simplefilter("error")
        fp = project.fingerprint({"main": ANNOTATED})
    assert not caplog.records
    assert "class `Row`" in fp.components


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("count: int | None", "count: int", id="drop-none-from-pep604"),
        pytest.param("count: int | None", "count: float | None", id="pep604-member"),
        pytest.param("ratio: Optional[float]", "ratio: Optional[int]", id="optional"),
        pytest.param("Union[int, str]", "Union[int, bytes]", id="union"),
        pytest.param("items: list[int]", "items: list[float]", id="generic"),
        pytest.param("dict[str, Inner]", "dict[int, Inner]", id="generic-with-a-user-class"),
        pytest.param('"min=0"', '"min=1"', id="annotated-metadata"),
        pytest.param('Literal["fast", "slow"]', 'Literal["fast"]', id="literal"),
        pytest.param('"Row | None"', '"Row"', id="forward-reference-string"),
        pytest.param("Callable[[int], str]", "Callable[[int], bytes]", id="callable"),
        pytest.param("bound=float", "bound=int", id="type-variable-bound"),
        pytest.param("ClassVar[int]", "ClassVar[float]", id="classvar"),
    ],
)
def test_annotation_edits_change_the_class(project: Project, old: str, new: str) -> None:
    before = project.fingerprint({"main": ANNOTATED})
    after = project.fingerprint({"main": edit(ANNOTATED, old, new)})
    assert changes(before, after) == ["class `Row` changed"]


def test_a_user_class_inside_an_annotation_counts_by_reference(project: Project) -> None:
    before = project.fingerprint({"main": ANNOTATED})
    assert "class `Inner`" in before.components
    after = project.fingerprint({"main": edit(ANNOTATED, "return 1", "return 2")})
    assert changes(before, after) == ["class `Inner` changed"]


@pytest.mark.parametrize("spelling", ["Optional[int]", "Union[int, None]", "int | None"])
def test_spellings_of_one_union_are_one_annotation(project: Project, spelling: str) -> None:
    base = project.fingerprint({"main": ANNOTATED})
    other = project.fingerprint(
        {"main": edit(ANNOTATED, "count: int | None", f"count: {spelling}")}
    )
    assert other.digest == base.digest


def test_annotated_class_digest_is_stable_across_processes(project: Project) -> None:
    here = project.fingerprint({"main": ANNOTATED})
    directory = project.root / f"v{project.versions}"
    module = f"{project.package}.main"
    assert _digest_in_fresh_interpreter(directory, module, "3") == here.digest
    assert _digest_in_fresh_interpreter(directory, module, "4242") == here.digest
