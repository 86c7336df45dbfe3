"""Attack the JSON decoder: planted bytes never import a module, call a name or run user code.

Issue 9, "the store is data, never code": ``{"$nt": "os:system", "items": [CMD]}`` used to run
CMD. Every planted document here must raise SerializationError, create no marker file and add
nothing to ``sys.modules`` — at the top level and nested anywhere, with or without an expected
type, even when the expected type names classes whose own code has side effects.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from flowkit import naming, serialize
from flowkit.errors import SerializationError

MARKERS: list[Path] = []  # where the classes below leave a trace if any of their code runs


def touch(what: str) -> None:
    MARKERS[0].joinpath(what).write_text("ran")


class EvilNT(collections.namedtuple("EvilBase", "a b")):
    __slots__ = ()

    def __new__(cls, *args: Any) -> EvilNT:
        touch("nt-new")
        return super().__new__(cls, *args)

    def __init__(self, *args: Any) -> None:
        touch("nt-init")


@dataclasses.dataclass
class EvilDC:
    a: int

    def __new__(cls, *args: Any, **kwargs: Any) -> EvilDC:
        touch("dc-new")
        return super().__new__(cls)

    def __post_init__(self) -> None:
        touch("dc-post-init")

    def __setattr__(self, name: str, value: Any) -> None:
        touch("dc-setattr")
        super().__setattr__(name, value)

    @property
    def b(self) -> int:
        return 0

    @b.setter
    def b(self, value: int) -> None:
        touch("dc-property")


@dataclasses.dataclass(slots=True, frozen=True)
class EvilSlots:
    a: int

    def __init__(self, a: int) -> None:
        touch("slots-init")


class EvilEnum(enum.Enum):
    A = 1

    @classmethod
    def _missing_(cls, value: object) -> Any:
        touch("enum-missing")
        return None


class Untrusted(NamedTuple):  # never dumped nor allowed here: no reader trusts it
    a: int


SIDE_EFFECT_CLASSES = (EvilNT, EvilDC, EvilSlots, EvilEnum)
EXPECTED = [Any, object, list[Any], tuple[EvilNT, EvilDC, EvilSlots, EvilEnum] | None]


@pytest.fixture
def marker_dir(tmp_path: Path) -> Any:
    MARKERS[:] = [tmp_path / "markers"]
    MARKERS[0].mkdir()
    yield MARKERS[0]
    MARKERS.clear()


@pytest.fixture
def planted_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An importable module that leaves a marker when imported."""
    name = "flowkit_planted_module_h1"
    code = f"open({str(tmp_path / 'markers' / 'imported')!r}, 'w').write('ran')\nclass C: pass\n"
    (tmp_path / f"{name}.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert name not in sys.modules
    return name


def _ref(cls: type) -> str:
    return naming.class_ref(cls)


def payloads(marker: Path, module: str) -> dict[str, Any]:
    cmd = f"touch {marker / 'shell'}"
    return {
        "os.system": {"$nt": "os:system", "items": [cmd]},
        "posix.system": {"$nt": "posix:system", "items": [cmd]},
        "os.system-dc": {"$dc": "os:system", "fields": {"command": cmd}},
        "subprocess.Popen": {"$nt": "subprocess:Popen", "items": [["touch", str(marker / "p")]]},
        "subprocess.Popen-dc": {"$dc": "subprocess:Popen", "fields": {"args": ["true"]}},
        "eval": {"$nt": "builtins:eval", "items": [f"open({str(marker / 'e')!r}, 'w')"]},
        "exec-enum": {"$enum": "builtins:exec", "name": "x"},
        "import_module": {"$nt": "importlib:import_module", "items": [module]},
        "import_module-enum": {"$enum": "importlib:import_module", "name": module},
        "planted-module": {"$dc": f"{module}:C", "fields": {}},
        "planted-module-nt": {"$nt": f"{module}:C", "items": []},
        "this": {"$dc": "this:s", "fields": {}},
        "antigravity": {"$enum": "antigravity:Fake", "name": "A"},
        "nested-attr": {"$nt": "os.path:os.system", "items": [cmd]},
        "untrusted-user-class": {"$nt": _ref(Untrusted), "items": [1]},
    }


def wrappers() -> dict[str, Callable[[Any], Any]]:
    return {
        "top": lambda p: p,
        "list": lambda p: [1, [p]],
        "dict-value": lambda p: {"k": p},
        "dict-key": lambda p: {"$dict": [[p, 1]]},
        "tuple": lambda p: {"$tuple": [p]},
        "set": lambda p: {"$set": [p]},
        "frozenset": lambda p: {"$frozenset": [p]},
        "nt-item": lambda p: {"$nt": _ref(EvilNT), "items": [p, 2]},
        "dc-field": lambda p: {"$dc": _ref(EvilDC), "fields": {"a": p}},
    }


def _load(doc: Any, expected: Any) -> Any:
    data = json.dumps(doc, separators=(",", ":")).encode()
    return serialize.load("json", data, what="planted", expected=expected, refs=set())


PAYLOAD_NAMES = list(payloads(Path("."), "m"))


@pytest.mark.parametrize("wrap", list(wrappers()))
@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_planted_class_references_run_and_import_nothing(
    marker_dir: Path, planted_module: str, name: str, wrap: str
) -> None:
    doc = wrappers()[wrap](payloads(marker_dir, planted_module)[name])
    for expected in EXPECTED:
        before = set(sys.modules)
        with pytest.raises(SerializationError):
            _load(doc, expected)
        assert set(sys.modules) - before == set()
        assert list(marker_dir.iterdir()) == []
    assert planted_module not in sys.modules


def test_planted_stdlib_modules_are_not_imported(marker_dir: Path) -> None:
    for module in ("this", "antigravity", "tkinter", "turtle"):
        if module in sys.modules:
            continue
        with pytest.raises(SerializationError, match="not trust"):
            _load({"$dc": f"{module}:X", "fields": {}}, Any)
        assert module not in sys.modules


def test_the_refusal_says_which_class_and_the_fix(marker_dir: Path) -> None:
    with pytest.raises(serialize.UntrustedClassError) as info:
        _load([{"$nt": "os:system", "items": ["true"]}], list[Any])
    message = str(info.value)
    assert "'os:system'" in message and "not trust" in message
    assert "fk.allow_class(Cls)" in message and "annotate" in message


def test_trusted_classes_are_built_without_running_their_code(marker_dir: Path) -> None:
    doc = {
        "$tuple": [
            {"$nt": _ref(EvilNT), "items": [1, 2]},
            {"$dc": _ref(EvilDC), "fields": {"a": 1, "b": 5}},
            {"$dc": _ref(EvilSlots), "fields": {"a": 3}},
            {"$enum": _ref(EvilEnum), "name": "A"},
        ]
    }
    refs: set[Any] = set()
    hint = tuple[EvilNT, EvilDC, EvilSlots, EvilEnum]
    data = json.dumps(doc).encode()
    nt, dc, slots, member = serialize.load("json", data, expected=hint, refs=refs)
    assert list(marker_dir.iterdir()) == []
    assert type(nt) is EvilNT and tuple(nt) == (1, 2)
    assert type(dc) is EvilDC and dc.a == 1 and vars(dc) == {"a": 1, "b": 5}
    assert type(slots) is EvilSlots and slots.a == 3
    assert member is EvilEnum.A
    assert refs == set(SIDE_EFFECT_CLASSES)


def test_unknown_enum_member_does_not_call_missing(marker_dir: Path) -> None:
    with pytest.raises(SerializationError):
        _load({"$enum": _ref(EvilEnum), "name": "B"}, EvilEnum)
    with pytest.raises(SerializationError):
        _load({"$enum": _ref(EvilEnum), "name": 1}, EvilEnum)
    assert list(marker_dir.iterdir()) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"a": 1, "__class__": 1},
        {"a": 1, "__reduce_ex__": [1]},
        {"a": 1, "__dict__": {}},
        {"a": 1, "__setstate__": 1},
    ],
    ids=repr,
)
def test_dunder_attributes_are_refused(marker_dir: Path, fields: dict[str, Any]) -> None:
    with pytest.raises(SerializationError, match="cannot hold"):
        _load({"$dc": _ref(EvilDC), "fields": fields}, EvilDC)


@pytest.mark.parametrize(
    "doc",
    [
        {"$dc": _ref(EvilSlots), "fields": {"a": 1, "extra": 2}},  # no __dict__ to hold it
        {"$dc": _ref(EvilDC), "fields": {}},  # a field missing
        {"$nt": _ref(EvilNT), "items": [1]},
        {"$nt": _ref(EvilNT), "items": {"a": 1}},
        {"$dc": _ref(EvilDC), "fields": [1]},
        {"$dc": _ref(EvilDC), "fields": {"a": 1}, "more": 1},
        {"$dc": 5, "fields": {}},
        {"$nt": _ref(EvilDC), "items": [1]},  # kind mismatch
        {"$enum": _ref(EvilNT), "name": "a"},
        {"$tuple": 5},
        {"$dict": [[1]]},
        {"$float": "1.5"},
        {"$bytes": "not base64!"},
        {"$what": 1},
        {"$tuple": [], "x": 1},
    ],
    ids=repr,
)
def test_malformed_documents_are_refused(marker_dir: Path, doc: Any) -> None:
    with pytest.raises(SerializationError):
        _load(doc, tuple[EvilNT, EvilDC, EvilSlots, EvilEnum])
    assert list(marker_dir.iterdir()) == []


@pytest.mark.parametrize("text", [b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"\xff", b"[1"])
def test_non_canonical_json_is_refused(text: bytes) -> None:
    with pytest.raises(SerializationError):
        serialize.load("json", text)
