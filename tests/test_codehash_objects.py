"""``codehash.object_digest``: the code digest of a class or function found inside a value.

Every version of a user module is written to a fresh directory and digested in a fresh
interpreter (another hash seed each time), as a later run of the user's workflow would see it:
an edit that changes what the code does must change the digest, one that does not must keep it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import types
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

import flowkit as fk
from flowkit import codehash
from flowkit.codehash import forget_objects, is_user_object, object_digest
from flowkit.codehash.origins import PYTHON_VERSION

SHAPES = """
import dataclasses
import enum
import math
import typing

SCALE = 1.0

def _square(x):
    return x * x

@dataclasses.dataclass(frozen=True)
class Rect:
    w: float
    h: float
    label: str | None = None

    def area(self):
        # width times height
        return self.w * self.h * SCALE

    def diagonal(self):
        return math.sqrt(_square(self.w) + _square(self.h))

def double(x):
    return 2 * x

class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"

    def warm(self):
        return self is Colour.RED

class Point(typing.NamedTuple):
    x: int
    y: "int | None" = None

    def norm(self):
        return abs(self.x)

class Row(typing.TypedDict):
    size: int | None
"""

KINDS = ("Rect", "double", "Colour", "Point", "Row")

_PRINT = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
from flowkit.codehash import object_digest
module = importlib.import_module(sys.argv[2])
print(json.dumps({name: object_digest(getattr(module, name)) for name in sys.argv[3:]}))
"""


def digests(source: str, *names: str, root: Path, seed: str = "0") -> dict[str, str]:
    """``object_digest`` of ``names`` in a fresh interpreter importing ``source`` afresh."""
    folder = root / uuid.uuid4().hex[:8]
    folder.mkdir()
    (folder / "shapes_mod.py").write_text(textwrap.dedent(source))
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", _PRINT, str(folder), "shapes_mod", *names],
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "cannot be hashed" not in out.stderr, out.stderr  # every value encodes stably
    result: dict[str, str] = json.loads(out.stdout)
    return result


class Loader:
    """Imports sources as uniquely named modules in this process; unloads them afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: list[str] = []

    def __call__(self, source: str) -> types.ModuleType:
        name = f"fkobj_{uuid.uuid4().hex[:10]}"
        path = self.root / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        self.names.append(name)
        spec.loader.exec_module(module)
        return module

    def unload(self) -> None:
        for name in self.names:
            sys.modules.pop(name, None)


@pytest.fixture
def load(tmp_path: Path) -> Iterator[Loader]:
    loader = Loader(tmp_path)
    yield loader
    loader.unload()
    forget_objects()


def edit(source: str, old: str, new: str) -> str:
    assert old in source, f"{old!r} is not in the source"
    return source.replace(old, new)


# ------------------------------------------------------------------- edits, fresh processes


@pytest.mark.parametrize(
    ("old", "new", "changes"),
    [
        pytest.param("self.w * self.h * SCALE", "self.w + self.h", True, id="method-body"),
        pytest.param("return x * x", "return x ** 3", True, id="helper-of-a-method"),
        pytest.param("SCALE = 1.0", "SCALE = 2.0", True, id="constant-of-a-method"),
        pytest.param("w: float\n", "w: int\n", True, id="annotation"),
        pytest.param("label: str | None = None", "label: str = ''", True, id="pep604-annotation"),
        pytest.param("# width times height", "# the area, longer comment", False, id="comment"),
        pytest.param(
            "    def area(self):\n",
            '    def area(self):\n        """The area."""\n',
            False,
            id="docstring",
        ),
        pytest.param(
            "def double(x):\n    return 2 * x",
            "def double(x):\n    return x",
            False,
            id="unrelated-function",
        ),
    ],
)
def test_class_digest_follows_what_its_methods_do(
    tmp_path: Path, old: str, new: str, changes: bool
) -> None:
    before = digests(SHAPES, "Rect", root=tmp_path, seed="1")["Rect"]
    after = digests(edit(SHAPES, old, new), "Rect", root=tmp_path, seed="2")["Rect"]
    assert (before != after) is changes


def test_function_digest_follows_its_body_and_not_its_comments(tmp_path: Path) -> None:
    before = digests(SHAPES, "double", root=tmp_path, seed="3")["double"]
    body = digests(edit(SHAPES, "return 2 * x", "return 3 * x"), "double", root=tmp_path)
    comment = digests(
        edit(SHAPES, "return 2 * x", "return 2 * x  # twice"), "double", root=tmp_path
    )
    assert body["double"] != before
    assert comment["double"] == before


def test_digest_is_the_same_in_every_process_and_in_this_one(tmp_path: Path, load: Loader) -> None:
    first = digests(SHAPES, *KINDS, root=tmp_path, seed="1")
    second = digests(SHAPES, *KINDS, root=tmp_path, seed="98765")
    assert first == second
    module = load(SHAPES)
    assert {name: object_digest(getattr(module, name)) for name in KINDS} == first


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        pytest.param("Colour", 'BLUE = "blue"', 'BLUE = "navy"', id="enum-value"),
        pytest.param("Colour", "self is Colour.RED", "self is Colour.BLUE", id="enum-method"),
        pytest.param("Point", "abs(self.x)", "-self.x", id="namedtuple-method"),
        pytest.param("Point", '"int | None" = None', '"int | None" = 0', id="namedtuple-default"),
        pytest.param("Row", "size: int | None", "size: int", id="typeddict-annotation"),
    ],
)
def test_enum_namedtuple_and_typeddict_edits_change_the_digest(
    tmp_path: Path, name: str, old: str, new: str
) -> None:
    before = digests(SHAPES, name, root=tmp_path, seed="5")
    after = digests(edit(SHAPES, old, new), name, root=tmp_path, seed="6")
    assert before[name] != after[name]


def test_script_run_as_main_and_imported_give_the_same_digest(tmp_path: Path) -> None:
    script = tmp_path / "flow.py"
    script.write_text(
        textwrap.dedent(SHAPES)
        + textwrap.dedent(
            """
            @dataclasses.dataclass
            class Params:
                shape: Rect
                size: int | None = None

                def scaled(self):
                    return double(self.shape.area())

            if __name__ == "__main__":
                import json
                from flowkit.codehash import object_digest
                names = ["Rect", "Params", "double", "Colour", "Point", "Row"]
                print(json.dumps({n: object_digest(globals()[n]) for n in names}))
            """
        )
    )
    as_main = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=120
    )
    imported = subprocess.run(
        [sys.executable, "-c", _PRINT, str(tmp_path), "flow", "Rect", "Params", *KINDS[1:]],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(as_main.stdout) == json.loads(imported.stdout)


# ------------------------------------------------------------------- installed code, kinds


@pytest.mark.parametrize("obj", [OrderedDict, Fraction, json.dumps, len, int, functools.reduce])
def test_standard_library_code_counts_by_python_version(obj: object) -> None:
    assert object_digest(obj) == PYTHON_VERSION  # type: ignore[arg-type]
    assert not is_user_object(obj)


def test_installed_and_flowkit_code_counts_by_distribution_version() -> None:
    assert object_digest(pytest.fixture) == f"pytest=={pytest.__version__}"
    assert object_digest(fk.File) == f"flowkit=={fk.__version__}"
    assert not is_user_object(fk.File)


def test_user_objects_are_told_from_installed_ones(tmp_path: Path, load: Loader) -> None:
    module = load(SHAPES)
    for obj in (module.Rect, module.double, module.Rect(1.0, 2.0), module.Rect.area, module):
        assert is_user_object(obj), obj
    assert len(object_digest(module.Rect)) == 64


def test_wrappers_and_bound_methods_count_as_what_they_wrap(tmp_path: Path, load: Loader) -> None:
    module = load(SHAPES)
    rect = module.Rect(1.0, 2.0)
    assert object_digest(rect.area) == object_digest(module.Rect.area)
    cached = functools.lru_cache(module.double)
    assert object_digest(cached) == object_digest(module.double)
    # A partial counts by its value: the function it holds and its bound arguments.
    assert object_digest(functools.partial(module.double, 1)) != object_digest(
        functools.partial(module.double, 2)
    )


def test_not_a_class_or_function_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="cannot fingerprint"):
        object_digest(42)  # type: ignore[arg-type]


# ------------------------------------------------------------------- memo


def test_repeated_calls_are_memoised_until_forget_objects(tmp_path: Path, load: Loader) -> None:
    module = load(SHAPES)
    first = object_digest(module.Rect)
    module.SCALE = 3.0  # a rebound global read by a method: seen at the next run
    assert object_digest(module.Rect) == first
    forget_objects()
    assert object_digest(module.Rect) != first


def test_a_redefined_class_is_a_new_object_and_is_seen_at_once() -> None:
    namespace = types.ModuleType("notebook_objects")
    cell = "class Model:\n    def predict(self, x):\n        return x + 1\n"
    exec(compile(cell, "<cell 1>", "exec"), namespace.__dict__)
    before = object_digest(namespace.Model)
    exec(compile(edit(cell, "x + 1", "x + 2"), "<cell 1>", "exec"), namespace.__dict__)
    assert object_digest(namespace.Model) != before


def test_object_digest_is_exported_from_codehash() -> None:
    assert codehash.object_digest is object_digest
    assert {"object_digest", "is_user_object", "forget_objects"} <= set(codehash.__all__)
