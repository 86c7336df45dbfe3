"""Field access on promises agrees with mypy (issue 15): which paths exist, and their types.

A differential test in the manner of ``test_typecheck_mypy.py``: a seeded generator writes
hundreds of ``v.x[0]['k']``-style paths over a small universe of dataclasses, NamedTuples,
TypedDicts, dicts, mappings, tuples, lists and Optionals into ONE file, checked by one
in-process mypy run. For each path flowkit either refuses it (``fk.GraphError`` at decoration)
and mypy must report an error on that line, or gives a field type, and mypy must accept
``assert_type(v<path>, <that type>)`` -- the same type, exactly.

Deliberate differences (left out of the grammar, documented in docs/api-notes.md): methods and
properties (mypy allows ``v.mean()``; a promise has no value to call it on) and indexing a
``str`` (flowkit reads fields of containers, not characters).
"""

from __future__ import annotations

import random
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from flowkit import fields, typecheck
from flowkit.errors import GraphError

PRELUDE = """\
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, TypedDict, assert_type


class NT(NamedTuple):
    x: int
    y: list[float]


@dataclass
class DC:
    x: float
    y: dict[str, NT]
    z: Optional[NT]

    def mean(self) -> float:
        return self.x


class TD(TypedDict):
    x: DC
    k: tuple[int, bool]
"""

BASES = [
    "DC",
    "NT",
    "TD",
    "dict[str, DC]",
    "Mapping[str, int]",
    "dict[int, bool]",
    "tuple[int, bool, DC]",
    "tuple[NT, ...]",
    "list[DC]",
    "Sequence[NT]",
    "Optional[DC]",
    "DC | None",
    "int",
    "Any",
]
STEPS: list[tuple[str, str | int]] = [
    ("attr", "x"),
    ("attr", "y"),
    ("attr", "z"),
    ("attr", "nope"),
    ("key", "x"),
    ("key", "k"),
    ("key", "nope"),
    ("key", 0),
    ("key", 1),
    ("key", 2),
    ("key", 5),
    ("key", -1),
]
_ERROR = re.compile(r"^[^:]+:(\d+): error: (.*)$")


def _universe() -> dict[str, Any]:
    module = types.ModuleType("flowkit_fields_universe")
    sys.modules[module.__name__] = module  # get_type_hints resolves the classes' module
    exec(PRELUDE, module.__dict__)
    return module.__dict__


def _text(step: tuple[str, str | int]) -> str:
    kind, name = step
    return f".{name}" if kind == "attr" else f"[{name!r}]"


def _flowkit_type(base: Any, path: list[tuple[str, str | int]]) -> Any | None:
    """The field type flowkit gives the path, or None when it refuses it."""
    tp = base
    try:
        for kind, name in path:
            if kind == "attr":
                _, tp = fields.attr_step(tp, str(name), "v")
            else:
                _, tp = fields.item_step(tp, name, "v")
    except GraphError:
        return None
    return tp


def _cases(seed: int = 15, count: int = 400) -> list[tuple[str, list[tuple[str, str | int]]]]:
    rnd = random.Random(seed)
    cases = [(b, [s]) for b in BASES for s in STEPS]  # every single step on every base
    while len(cases) < count:
        cases.append((rnd.choice(BASES), [rnd.choice(STEPS) for _ in range(rnd.randint(2, 3))]))
    return cases


def _type_text(tp: Any) -> str:
    return typecheck.type_repr(tp).replace("NoneType", "None")


def test_field_paths_agree_with_mypy(tmp_path: Path) -> None:
    from mypy import api

    ns = _universe()
    lines = PRELUDE.splitlines()
    expect: dict[int, tuple[str, str, str | None]] = {}  # line -> (base, path, flowkit type)
    for i, (base, path) in enumerate(_cases()):
        expr = "v" + "".join(_text(s) for s in path)
        found = _flowkit_type(eval(base, ns), path)
        shown = None if found is None else _type_text(found)
        lines += ["", f"def f{i}(v: {base}) -> None:"]
        lines.append(f"    assert_type({expr}, {shown})" if shown is not None else f"    {expr}")
        expect[len(lines)] = (base, expr, shown)
    source = tmp_path / "paths.py"
    source.write_text("\n".join(lines) + "\n")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")
    stdout, stderr, _ = api.run(
        [
            "--config-file",
            str(config),
            "--python-version",
            "3.11",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--no-error-summary",
            "--no-pretty",
            str(source),
        ]
    )
    assert not stderr, stderr
    errors: dict[int, str] = {}
    for line in stdout.splitlines():
        m = _ERROR.match(line)
        if m is not None:
            errors.setdefault(int(m.group(1)), m.group(2))
    assert set(errors) <= set(expect), f"errors outside the cases:\n{stdout[:2000]}"
    disagreements = [
        f"{base}: {expr}: flowkit "
        + (f"gives {shown}" if shown is not None else "refuses it")
        + f", mypy {'says ' + errors[line] if line in errors else 'accepts it'}"
        for line, (base, expr, shown) in expect.items()
        if (shown is None) != (line in errors)
    ]
    assert not disagreements, "\n".join(disagreements[:30])
    refused = sum(shown is None for _, _, shown in expect.values())
    assert 50 < refused < len(expect) - 50  # both verdicts are well represented


@pytest.mark.parametrize(("base", "step"), [("DC", "mean"), ("int", "real"), ("list[DC]", "copy")])
def test_methods_and_properties_are_the_documented_difference(base: str, step: str) -> None:
    with pytest.raises(GraphError, match=r"is a (method|property)"):
        fields.attr_step(eval(base, _universe()), step, "v")
