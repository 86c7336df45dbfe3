"""Serialisers: type round-trips, canonical bytes, lazy registration, files, pickle headers."""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import math
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, NamedTuple, Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from flowkit import serialize
from flowkit.errors import SerializationError
from flowkit.files import Directory, File


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class Config:
    name: str
    points: list[Point]
    extra: dict[Any, Any] = dataclasses.field(default_factory=dict)
    derived: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        self.derived = len(self.points)


class Pair(NamedTuple):
    left: int
    right: str


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def roundtrip(value: Any) -> tuple[str, bytes, Any]:
    sink = io.BytesIO()
    fmt = serialize.dump(value, sink)
    data = sink.getvalue()
    return fmt, data, serialize.load(fmt, data)


JSON_VALUES = [
    None,
    True,
    0,
    -(2**70),
    1.5,
    -0.0,
    float("inf"),
    "héllo",
    b"\x00\xff",
    [],
    [1, [2, (3, 4)]],
    (),
    (1, "a", None),
    {},
    {"b": 1, "a": {"c": [1, 2]}},
    {1: "int key", (1, 2): "tuple key", "s": "str key"},
    {"$looks_like_a_tag": 1},
    {1, 2, 3},
    frozenset({"a", "b"}),
    Point(1, 2.0, ("t",)),
    Config("c", [Point(1, 2.0)], {3: Pair(1, "x")}),
    Pair(1, "one"),
    Color.BLUE,
    [Color.RED, {"nested": (Point(0, 0.5),)}],
]


@pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
def test_json_round_trips_value_and_type(value: Any) -> None:
    fmt, data, back = roundtrip(value)
    assert fmt == "json"
    assert back == value
    assert type(back) is type(value)
    json.loads(data)  # plain JSON on disk


def test_json_nan_round_trips() -> None:
    fmt, _, back = roundtrip(float("nan"))
    assert fmt == "json" and back != back


def test_json_nested_types_survive() -> None:
    _, _, back = roundtrip({"k": [(1, 2), {3}, Point(1, 1.0)]})
    assert type(back["k"][0]) is tuple
    assert type(back["k"][1]) is set
    assert type(back["k"][2]) is Point


def test_dataclass_loads_without_calling_init() -> None:
    cfg = Config("c", [Point(1, 2.0), Point(2, 3.0)])
    cfg.derived = 99  # state that __post_init__ would overwrite
    _, _, back = roundtrip(cfg)
    assert back.derived == 99


def test_dict_order_is_kept_in_bytes_and_in_the_loaded_value() -> None:
    # issue 9 item 1: insertion order is part of a dict's value
    for a, b in [
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ({"x": 1, 3: "z", 1: "w"}, {1: "w", 3: "z", "x": 1}),  # $dict pairs
        ({"$k": 1, "j": 2}, {"j": 2, "$k": 1}),
        ([{"n": {"a": 1, "b": 2}}], [{"n": {"b": 2, "a": 1}}]),
    ]:
        assert a == b
        _, bytes_a, back_a = roundtrip(a)
        _, bytes_b, back_b = roundtrip(b)
        assert bytes_a != bytes_b
        assert list(back_a) == list(a) and list(back_b) == list(b)
    _, _, back = roundtrip([{"n": {"b": 2, "a": 1}}])
    assert list(back[0]["n"]) == ["b", "a"]


def test_set_order_does_not_change_bytes() -> None:
    assert roundtrip({"b", "a", "c"})[1] == roundtrip({"c", "a", "b"})[1]
    assert (
        roundtrip(frozenset({(1, "x"), (0, "y")}))[1]
        == roundtrip(frozenset({(0, "y"), (1, "x")}))[1]
    )


def test_values_equal_in_python_but_different_give_different_bytes() -> None:
    groups = [[1, True, 1.0], [0, False, 0.0, -0.0], [(1,), [1]], [{1}, frozenset({1})]]
    for group in groups:
        datas = {roundtrip(v)[1] for v in group}
        assert len(datas) == len(group)


@dataclasses.dataclass
class Rect:
    w: int
    h: int

    def __post_init__(self) -> None:
        self.area = self.w * self.h


@dataclasses.dataclass(frozen=True)
class FrozenRect:
    w: int
    h: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "area", self.w * self.h)


@dataclasses.dataclass(slots=True)
class SlotRect:
    w: int
    h: int
    area: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.area = self.w * self.h


@dataclasses.dataclass
class Cube(Rect):
    d: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        self.volume = self.area * self.d


@pytest.mark.parametrize(
    "value", [Rect(2, 3), FrozenRect(2, 3), SlotRect(2, 3), Cube(2, 3, 4)], ids=repr
)
def test_post_init_attributes_survive(value: Any) -> None:
    # issue 9 item 8: attributes set in __post_init__ must survive a hit
    fmt, _, back = roundtrip(value)
    assert fmt == "json"
    assert type(back) is type(value)
    assert back.area == 6
    if isinstance(value, Cube):
        assert back.volume == 24
    if hasattr(value, "__dict__"):
        assert list(vars(back).items()) == list(vars(value).items())


def test_dataclass_attribute_that_is_unset_or_dunder_goes_to_pickle() -> None:
    unset = SlotRect.__new__(SlotRect)
    unset.w, unset.h = 1, 2  # no area: JSON would invent nothing, pickle keeps it exact
    fmt, _, back = roundtrip(unset)
    assert fmt == "pickle" and not hasattr(back, "area")
    odd = Rect(1, 1)
    odd.__dict__["__weird__"] = 1
    assert roundtrip(odd)[0] == "pickle"


# Importable classes from the standard library and flowkit, so a bare subprocess can build it.
CROSS_PROCESS_VALUE = """
import http, urllib.parse
from flowkit.store import Artifact
value = {
    "set": {"alpha", "beta", "gamma", "delta"},
    "frozen": frozenset({"x", "y", "z"}),
    "dict": {"k%d" % i: i for i in range(20)},
    "mixed_keys": {1: "a", (2, 3): "b", "c": None},
    "enum": http.HTTPStatus.OK,
    "named": urllib.parse.urlparse("https://example.com/a?b=c"),
    "dataclass": Artifact("d" * 64, "json", 3),
}
"""


def test_json_bytes_are_stable_across_processes() -> None:
    code = (
        CROSS_PROCESS_VALUE
        + "import io, sys\nfrom flowkit import serialize\n"
        + "s = io.BytesIO(); assert serialize.dump(value, s) == 'json'\n"
        + "sys.stdout.write(s.getvalue().hex())\n"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(out.stdout)
    assert len(outputs) == 1
    scope: dict[str, Any] = {}
    exec(CROSS_PROCESS_VALUE, scope)
    fmt, data, back = roundtrip(scope["value"])
    assert fmt == "json"
    assert outputs == {data.hex()}
    assert back == scope["value"]


def test_subclasses_and_local_classes_go_to_pickle_and_keep_their_type() -> None:
    class Local:
        def __init__(self) -> None:
            self.v = 1

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Local) and other.v == self.v

    @dataclasses.dataclass
    class LocalDC:
        a: int

    class MyInt(int):
        pass

    for value in (Local(), LocalDC(1), MyInt(3), [1, Local()]):
        fmt, _, back = roundtrip(value)
        assert fmt == "pickle"
        assert back == value
        assert type(back) is type(value)


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.int32).reshape(3, 4),
        np.arange(12.0).reshape(3, 4).T,  # Fortran order
        np.arange(24.0).reshape(4, 6)[::2, ::3],  # not contiguous
        np.array(3.5),
        np.zeros((0, 5)),
        np.array(["a", "bcd"]),
        np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        np.array([True, False]),
    ],
    ids=lambda a: f"{a.dtype}{a.shape}",
)
def test_numpy_arrays_round_trip_as_writable_copies(array: np.ndarray) -> None:
    fmt, _, back = roundtrip(array)
    assert fmt == "npy"
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_numpy_object_arrays_use_pickle() -> None:
    fmt, _, back = roundtrip(np.array([1, "a", None], dtype=object))
    assert fmt == "pickle"
    assert list(back) == [1, "a", None]


def test_arrow_tables_round_trip() -> None:
    table = pa.table({"a": [1, 2, None], "b": ["x", "y", "z"], "c": [[1], [], [2, 3]]})
    table = table.replace_schema_metadata({"source": "test"})
    fmt, data, back = roundtrip(table)
    assert fmt == "arrow"
    assert back.equals(table, check_metadata=True)
    assert roundtrip(table)[1] == data


def test_pandas_frames_round_trip() -> None:
    df = pd.DataFrame(
        {"a": [1, 2, 3], "b": ["x", "y", None], "t": pd.date_range("2024-01-01", periods=3)},
        index=pd.Index([10, 20, 30], name="id"),
    )
    fmt, data, back = roundtrip(df)
    assert fmt == "pandas"
    pd.testing.assert_frame_equal(back, df)
    assert roundtrip(df)[1] == data
    assert roundtrip(back)[1] == data  # a loaded frame serialises to the same bytes


@pytest.mark.parametrize(
    "df",
    [
        pd.DataFrame({0: [1, 2], 1: [3, 4]}),
        pd.DataFrame({"mixed": [1, "a"]}),
        pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "b"), ("a", "c")])),
    ],
    ids=["int-columns", "mixed-object", "multiindex"],
)
def test_pandas_frames_arrow_cannot_hold_use_pickle(df: pd.DataFrame) -> None:
    fmt, _, back = roundtrip(df)
    assert fmt == "pickle"
    pd.testing.assert_frame_equal(back, df)


def test_scikit_learn_model_round_trips_through_pickle_with_versions() -> None:
    import sklearn
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    model = LogisticRegression().fit(X, y)
    fmt, data, back = roundtrip(model)
    assert fmt == "pickle"
    header = json.loads(data.split(b"\n", 1)[0])
    assert header["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert header["libs"] == {"sklearn": sklearn.__version__}
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_lambdas_pickle_by_value() -> None:
    fmt, _, back = roundtrip(lambda x: x + 1)
    assert fmt == "pickle" and back(1) == 2


def test_pickle_from_another_python_minor_version_is_refused() -> None:
    sink = io.BytesIO()
    serialize.dump(threading.Event, sink)  # a class: pickled by reference
    header, body = sink.getvalue().split(b"\n", 1)
    fields = json.loads(header)
    fields["python"] = "3.99"
    forged = json.dumps(fields).encode() + b"\n" + body
    with pytest.raises(serialize.PickleVersionError) as info:
        serialize.load("pickle", forged, what="task `train` output 0")
    message = str(info.value)
    assert "task `train` output 0" in message
    assert "Python 3.99" in message
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in message
    assert isinstance(info.value, SerializationError)


def test_unstorable_value_names_what_failed() -> None:
    with pytest.raises(SerializationError) as info:
        serialize.dump({"lock": threading.Lock()}, io.BytesIO(), what="task `train` output 0")
    assert "task `train` output 0" in str(info.value)
    assert "lock" in str(info.value)


def test_unknown_format_is_refused() -> None:
    with pytest.raises(SerializationError, match="unknown format 'zarr'"):
        serialize.load("zarr", b"")


def test_importing_flowkit_does_not_import_optional_libraries() -> None:
    code = (
        "import sys, flowkit, flowkit.cache, flowkit.store, flowkit.serialize;"
        "print([m for m in ('numpy', 'pandas', 'pyarrow', 'fsspec') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registering_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        serialize.register(serialize.Serializer("json", serialize.JSON.dump, serialize.JSON.load))


class Level(enum.IntEnum):
    LOW = 1


class Name(str):
    pass


SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    -7,
    2**64 + 1,
    10**5000,  # too long for repr under the default int-digits limit: pickle, as before
    0.1,
    -0.0,
    1e300,
    float("nan"),
    float("inf"),
    "",
    "plain",
    'quote " and \\ back\nslash\x00',
    "é 中文 🙂 \u2028",
    "lone \ud800 surrogate",
    Level.LOW,
    Name("sub"),
    b"bytes",
    (1,),
]


@pytest.mark.parametrize(
    "value", SCALARS, ids=[f"{type(v).__name__}-{i}" for i, v in enumerate(SCALARS)]
)
def test_scalar_fast_path_writes_exactly_what_dump_writes(value: Any) -> None:
    sink = io.BytesIO()
    fmt = serialize.dump(value, sink)
    fast = serialize.scalar_json_bytes(value)
    if fast is not None:
        assert (fmt, fast) == ("json", sink.getvalue())
    exact = type(value) in (type(None), bool, int, float, str)
    finite = type(value) is not float or math.isfinite(value)
    easy = exact and fmt == "json" and finite
    assert (fast is not None) == easy


def test_scalar_fast_path_defers_to_a_serializer_registered_for_the_type() -> None:
    old = serialize._by_type.get(int)
    serialize.register(serialize.PICKLE, int)
    try:
        assert serialize.scalar_json_bytes(3) is None
    finally:
        if old is None:
            del serialize._by_type[int]
        else:
            serialize._by_type[int] = old
    assert serialize.scalar_json_bytes(3) == b"3"


# -- files -----------------------------------------------------------------------------------


def make_tree(root: Path) -> Path:
    d = root / "data"
    (d / "sub" / "empty").mkdir(parents=True)
    (d / "a.txt").write_text("alpha")
    (d / "sub" / "b.bin").write_bytes(b"\x00\x01")
    run = d / "run.sh"
    run.write_text("#!/bin/sh\n")
    run.chmod(0o755)
    return d


def test_file_round_trips_to_a_local_path(tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights")
    fmt, data, _ = roundtrip(File(src))
    assert fmt == "file"
    back = serialize.load(fmt, data, scratch=str(tmp_path / "unpacked"))
    assert isinstance(back, File)
    assert back.name == "model.bin"
    assert back.read_bytes() == b"weights"
    assert back.path != str(src)


def test_file_bytes_depend_on_name_and_content_only(tmp_path: Path) -> None:
    a = tmp_path / "a" / "x.txt"
    b = tmp_path / "b" / "x.txt"
    for p in (a, b):
        p.parent.mkdir()
        p.write_text("same")
    os.utime(a, (1, 1))
    assert roundtrip(File(a))[1] == roundtrip(File(b))[1]
    c = tmp_path / "b" / "y.txt"
    c.write_text("same")
    assert roundtrip(File(c))[1] != roundtrip(File(b))[1]
    b.write_text("different")
    assert roundtrip(File(a))[1] != roundtrip(File(b))[1]


def test_directory_round_trips_tree_and_exec_bits(tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    fmt, data, _ = roundtrip(Directory(d))
    assert fmt == "dir"
    back = serialize.load(fmt, data, scratch=str(tmp_path / "unpacked"))
    assert isinstance(back, Directory) and back.name == "data"
    got = Path(back.path)
    assert (got / "a.txt").read_text() == "alpha"
    assert (got / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    assert (got / "sub" / "empty").is_dir()
    assert os.stat(got / "run.sh").st_mode & stat.S_IXUSR
    assert [f.name for f in back.files()] == ["a.txt", "run.sh", "b.bin"]
    os.utime(d / "a.txt", (5, 5))
    assert roundtrip(Directory(d))[1] == data  # times do not count


def test_file_loaded_twice_reuses_the_unpacked_copy(tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    fmt, data, _ = roundtrip(File(src))
    one = serialize.load(fmt, data, scratch=str(tmp_path / "u"))
    two = serialize.load(fmt, data, scratch=str(tmp_path / "u"))
    assert one == two


def test_missing_file_is_unstorable(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="not an existing regular file"):
        serialize.dump(File(tmp_path / "nope"), io.BytesIO(), what="task `t` output 0")


def test_file_inside_a_container_is_refused_not_stored_as_a_path(tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    with pytest.raises(SerializationError, match="own output"):
        serialize.dump([File(src)], io.BytesIO())


def test_file_pickles_normally_outside_the_store(tmp_path: Path) -> None:
    import pickle

    f = File(tmp_path / "f.txt")
    assert pickle.loads(pickle.dumps(f)) == f


def test_directory_with_a_link_to_a_directory_is_refused(tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    (d / "link").symlink_to(d / "sub")
    with pytest.raises(SerializationError, match="link to a directory"):
        serialize.dump(Directory(d), io.BytesIO())


# -- class identity across processes (issue 9 item 7) ------------------------------------------

FLOW_SCRIPT = """
import dataclasses, sys
from flowkit import serialize


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    lr: float
    layers: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "depth", len(self.layers))


@serialize.allow_class
@dataclasses.dataclass
class Registered:
    name: str


@dataclasses.dataclass
class Unregistered:
    name: str


class Model:  # not JSON: pickled (by reference when the script is imported as a module)
    def __init__(self, w):
        self.w = w


VALUES = {
    "json": lambda: {"hp": [Hyperparameters(0.1, (3, 4))]},
    "registered": lambda: Registered("r"),
    "unregistered": lambda: Unregistered("u"),
    "pickle": lambda: [Model(3)],
}


def main(argv):
    mode, kind, path = argv[1:4]
    if mode == "store":
        with open(path, "wb") as f:
            fmt = serialize.dump(VALUES[kind](), f)
        with open(path + ".fmt", "w") as f:
            f.write(fmt)
        return
    with open(path + ".fmt") as f:
        fmt = f.read()
    with open(path, "rb") as f:
        data = f.read()
    expected = dict[str, list[Hyperparameters]] if kind == "json" else object
    try:
        v = serialize.load(fmt, data, expected=expected)
    except serialize.UntrustedClassError as exc:
        print("untrusted:", exc)
        return
    if kind == "json":
        hp = v["hp"][0]
        assert type(hp) is Hyperparameters and isinstance(hp, Hyperparameters), type(hp)
        assert hp == Hyperparameters(0.1, (3, 4)) and hp.depth == 2
    elif kind == "registered":
        assert type(v) is Registered
    elif kind == "pickle":
        assert type(v[0]) is Model and v[0].w == 3, (type(v[0]), Model)
    print("ok", fmt, __name__)


if __name__ == "__main__":
    main(sys.argv)
"""

IMPORTER_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("flow", sys.argv[1])
flow = importlib.util.module_from_spec(spec)
sys.modules["flow"] = flow
spec.loader.exec_module(flow)  # what `flowkit run flow.py` does
flow.main(sys.argv[1:])
"""


def _run_script(tmp_path: Path, as_main: bool, *args: str) -> str:
    flow = tmp_path / "flow.py"
    if as_main:
        cmd = [sys.executable, str(flow), *args]
    else:
        cmd = [sys.executable, str(tmp_path / "importer.py"), str(flow), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("writer_as_main", [True, False], ids=["main-to-flow", "flow-to-main"])
@pytest.mark.parametrize("kind", ["json", "registered"])
def test_script_classes_load_as_the_reading_process_class(
    tmp_path: Path, writer_as_main: bool, kind: str
) -> None:
    (tmp_path / "flow.py").write_text(FLOW_SCRIPT)
    (tmp_path / "importer.py").write_text(IMPORTER_SCRIPT)
    data = str(tmp_path / "value.bin")
    _run_script(tmp_path, writer_as_main, "store", kind, data)
    out = _run_script(tmp_path, not writer_as_main, "load", kind, data)
    assert out == f"ok json {'flow' if writer_as_main else '__main__'}"


def test_script_classes_not_expected_nor_allowed_are_refused(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW_SCRIPT)
    (tmp_path / "importer.py").write_text(IMPORTER_SCRIPT)
    data = str(tmp_path / "value.bin")
    _run_script(tmp_path, True, "store", "unregistered", data)
    out = _run_script(tmp_path, False, "load", "unregistered", data)
    assert out.startswith("untrusted:")
    assert "'flow:Unregistered'" in out and "fk.allow_class" in out


def test_pickle_naming_the_script_module_loads_the_running_main_class(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW_SCRIPT)
    (tmp_path / "importer.py").write_text(IMPORTER_SCRIPT)
    data = str(tmp_path / "value.bin")
    _run_script(tmp_path, False, "store", "pickle", data)  # names flow:Model
    assert b"flow" in Path(data).read_bytes()
    assert _run_script(tmp_path, True, "load", "pickle", data) == "ok pickle __main__"


# -- refs: the code a value's bytes name -------------------------------------------------------


class Weights:
    def __init__(self) -> None:
        self.fn = helper_function
        self.cfg = Point(1, 2.0)


def helper_function(x: int) -> int:
    return x + 1


def test_json_refs_are_the_classes_met_on_dump_and_built_on_load() -> None:
    value = {"c": Config("c", [Point(1, 2.0)], {1: Pair(1, "x")}), "k": [Color.RED]}
    refs: set[Any] = set()
    sink = io.BytesIO()
    assert serialize.dump(value, sink, refs=refs) == "json"
    assert refs == {Config, Point, Pair, Color}
    loaded: set[Any] = set()
    serialize.load("json", sink.getvalue(), refs=loaded)
    assert loaded == refs


def test_pickle_refs_name_instance_classes_and_functions() -> None:
    refs: set[Any] = set()
    sink = io.BytesIO()
    value = [Weights(), threading.Event, json.dumps]
    assert serialize.dump(value, sink, refs=refs) == "pickle"
    assert {Weights, helper_function, Point, threading.Event, json.dumps} <= refs
    assert not any(getattr(r, "__module__", None) == "builtins" for r in refs)
    loaded: set[Any] = set()
    back = serialize.load("pickle", sink.getvalue(), refs=loaded)
    assert type(back[0]) is Weights and back[0].fn is helper_function
    assert {Weights, helper_function, threading.Event, json.dumps} <= loaded


def test_refs_do_not_change_the_bytes() -> None:
    for value in ([Weights()], {"p": Point(1, 2.0)}):
        plain, with_refs = io.BytesIO(), io.BytesIO()
        serialize.dump(value, plain)
        serialize.dump(value, with_refs, refs=set())
        assert plain.getvalue() == with_refs.getvalue()


# -- unstable pickles (issue 9 item 8) -----------------------------------------------------------

SEEDED_VALUE = (
    "import types\nvalue = types.SimpleNamespace(tags={'tag%d' % i for i in range(30)}, n=[1, 2])\n"
)


def test_a_pickled_set_of_strings_is_reported_unstable_in_this_process() -> None:
    scope: dict[str, Any] = {}
    exec(SEEDED_VALUE, scope)
    fmt, unstable = serialize.dump_checked(scope["value"], io.BytesIO())
    assert fmt == "pickle" and unstable is not None and "set of str" in unstable
    assert not serialize.pickle_is_portable(scope["value"])
    # and it is right: another hash seed gives other bytes
    code = (
        SEEDED_VALUE + "import io, sys\nfrom flowkit import serialize\n"
        "s = io.BytesIO(); serialize.dump(value, s); sys.stdout.write(s.getvalue().hex())\n"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 2


class Tags(set):  # type: ignore[type-arg]
    pass


class Box:  # a plain class: what it holds is pickled
    def __init__(self, held: Any) -> None:
        self.held = held


@pytest.mark.parametrize(
    "held",
    [
        {"a", "b"},
        frozenset({b"x", b"y"}),
        Tags({"a", "b"}),  # a set subclass pickles as a list in the set's order
        [{(1, 2), (3, 4)}],
        {float("nan"), 1.0},  # nan hashes by identity
        {Weights(), Weights()},
        {1, "a"},
    ],
    ids=["str", "bytes", "subclass", "tuples", "nan", "objects", "mixed"],
)
def test_unstable_set_orders_are_caught(held: Any) -> None:
    for value in (Box(held), Tags(held) if isinstance(held, Tags) else [Box(held)]):
        fmt, unstable = serialize.dump_checked(value, io.BytesIO())
        assert fmt == "pickle" and unstable is not None


@pytest.mark.parametrize(
    "value",
    [
        Box(1),
        Box({1, 2, 3}),
        Box(frozenset({None, True, 2.5})),
        Tags({1, 2}),
        {"a": {"b", "c"}},  # JSON sorts sets
        {"a": frozenset({"b", "c"})},
    ],
    ids=["int", "int-set", "scalar-frozenset", "int-subclass", "json-set", "json-frozenset"],
)
def test_stable_values_are_not_reported(value: Any) -> None:
    sink = io.BytesIO()
    fmt, unstable = serialize.dump_checked(value, sink)
    assert unstable is None
    assert serialize.pickle_is_portable(value)
    again = io.BytesIO()
    assert serialize.dump(value, again) == fmt and again.getvalue() == sink.getvalue()


# -- trust: expected types and the registry ------------------------------------------------------


class Expected(NamedTuple):  # never dumped in this file: trusted only when expected
    a: int
    b: str


@dataclasses.dataclass
class ExpectedDC:
    xs: list[Expected]
    level: Level | None = None


def _planted(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _ref(cls: type) -> str:
    from flowkit import naming

    return naming.class_ref(cls)


def test_a_class_named_by_the_expected_type_is_built() -> None:
    nt = {"$nt": _ref(Expected), "items": [1, "x"]}
    dc = {
        "$dc": _ref(ExpectedDC),
        "fields": {"xs": [nt], "level": {"$enum": _ref(Level), "name": "LOW"}},
    }
    data = _planted({"$tuple": [dc, None]})
    with pytest.raises(serialize.UntrustedClassError, match=r"fk\.allow_class"):
        serialize.load("json", data, what="task `t` output 0")
    for hint in (
        tuple[ExpectedDC, None],
        tuple[ExpectedDC | None, Any],
        Annotated[tuple[Optional[ExpectedDC], int], ["unhashable", "metadata"]],  # noqa: UP045
    ):
        back = serialize.load("json", data, expected=hint)
        assert type(back[0]) is ExpectedDC
        assert type(back[0].xs[0]) is Expected  # found through the dataclass's field types
        assert back[0].level is Level.LOW


def test_expected_class_matches_by_qualname_from_another_module() -> None:
    # stored by `python -m pkg.flow` (module pkg.flow), read where the module is called flow
    data = _planted({"$nt": "pkg.flow:Expected", "items": [1, "x"]})
    assert type(serialize.load("json", data, expected=list[Expected] | Expected)) is Expected


def test_allow_class_and_allow_annotation_register() -> None:
    class_ref = _ref(AllowedLater)
    data = _planted([{"$nt": class_ref, "items": [1]}])
    with pytest.raises(serialize.UntrustedClassError):
        serialize.load("json", data)
    serialize.allow_annotation(list[AllowedLater] | None)
    assert type(serialize.load("json", data)[0]) is AllowedLater
    assert serialize.allow_class(AllowedByDecorator) is AllowedByDecorator
    with pytest.raises(TypeError, match="only dataclass, NamedTuple and Enum"):
        serialize.allow_class(Weights)


class AllowedLater(NamedTuple):
    a: int


class AllowedByDecorator(NamedTuple):
    a: int


def test_untrusted_class_error_names_the_value_the_class_and_the_fix() -> None:
    data = _planted({"$dc": "somewhere:Secret", "fields": {}})
    with pytest.raises(serialize.UntrustedClassError) as info:
        serialize.load("json", data, what="task `train` output 0")
    message = str(info.value)
    assert message.startswith("cannot load task `train` output 0")
    assert "'somewhere:Secret'" in message and "annotate" in message
    assert isinstance(info.value, SerializationError)


def test_a_stored_value_must_fit_the_class() -> None:
    cases = [
        {"$nt": _ref(Expected), "items": [1]},  # too few items
        {"$nt": _ref(Expected), "items": [1, "x", 3]},
        {"$dc": _ref(ExpectedDC), "fields": {"level": None}},  # missing field
        {"$dc": _ref(Expected), "fields": {"a": 1, "b": "x"}},  # a NamedTuple is no dataclass
        {"$nt": _ref(ExpectedDC), "items": [[]]},
        {"$enum": _ref(Level), "name": "HIGH"},
        {"$enum": _ref(ExpectedDC), "name": "LOW"},
    ]
    hint = tuple[ExpectedDC, Expected, Level]
    for case in cases:
        with pytest.raises(SerializationError):
            serialize.load("json", _planted(case), expected=hint)


class ViaCallable(NamedTuple):
    a: int


class ViaNewType(NamedTuple):
    a: int


class ViaLiteral(enum.Enum):
    ONE = 1


@dataclasses.dataclass
class Tree:  # recursive: the walk must end
    children: list[Tree]
    leaf: ViaField | None = None


class ViaField(NamedTuple):
    a: int


def test_allow_annotation_walks_any_hint_and_never_raises() -> None:
    import typing
    from collections.abc import Callable

    weird: list[Any] = [
        "NotAType",
        typing.ForwardRef("Missing"),
        typing.TypeVar("T"),
        Callable[[ViaCallable], int],
        typing.NewType("Id", ViaNewType),
        typing.Literal[ViaLiteral.ONE, 3],
        Annotated[Tree, object()],
        typing.Union[int, "str"],
        None,
        3,
    ]
    for hint in weird:
        serialize.allow_annotation(hint)
    for cls in (ViaCallable, ViaNewType, ViaField):
        data = _planted({"$nt": _ref(cls), "items": [1]})
        assert type(serialize.load("json", data)) is cls
    assert serialize.load("json", _planted({"$enum": _ref(ViaLiteral), "name": "ONE"})) is (
        ViaLiteral.ONE
    )
    tree = {"$dc": _ref(Tree), "fields": {"children": [], "leaf": None}}
    assert type(serialize.load("json", _planted(tree))) is Tree


def test_a_cyclic_value_goes_to_pickle() -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    fmt, _, back = roundtrip(cyclic)
    assert fmt == "pickle" and back[1] is back


def _shipped_class(module: str) -> type:
    """A dataclass as a Ray worker gets it: built by value, named after a module that this
    process has not imported (or after the driver's ``__main__``)."""
    cls = dataclasses.make_dataclass("Shipped", [("w", float), ("h", float)])
    cls.__module__ = module
    cls.__qualname__ = "Shipped"
    return cls


def test_a_class_that_came_by_value_is_stored_by_its_name() -> None:
    """A worker stores an instance of a class shipped by value as JSON under the class's
    name, the same bytes as the driver (so keys agree), and a reader with the annotation
    gets its own class back."""
    cls = _shipped_class("shapes_never_imported")
    assert "shapes_never_imported" not in sys.modules
    fmt, data, _ = roundtrip_expected(cls(2.0, 3.0), cls)
    assert fmt == "json" and b'"shapes_never_imported:Shipped"' in data
    other = _shipped_class("shapes_never_imported")  # the reader's own copy of the class
    back = serialize.load(fmt, data, expected=other)
    assert type(back) is other and (back.w, back.h) == (2.0, 3.0)


def test_a_driver_main_class_in_a_worker_is_named_after_the_driver_script() -> None:
    from flowkit import jsonformat, naming

    cls = _shipped_class("__main__")
    fmt, _, _ = roundtrip_expected(cls(1.0, 2.0), cls)
    assert fmt == "pickle"  # in a driver: a generated class its name does not reach
    jsonformat._encodable.pop(cls), jsonformat._shapes.pop(cls)  # a worker adopts first
    naming.adopt_main("flow")
    try:
        fmt, data, back = roundtrip_expected(cls(1.0, 2.0), cls)
        assert fmt == "json" and b'"flow:Shipped"' in data
        assert type(back) is cls
    finally:
        naming._adopted_main = None
        jsonformat._encodable.pop(cls, None), jsonformat._shapes.pop(cls, None)


def roundtrip_expected(value: Any, expected: Any) -> tuple[str, bytes, Any]:
    sink = io.BytesIO()
    fmt = serialize.dump(value, sink)
    data = sink.getvalue()
    return fmt, data, serialize.load(fmt, data, expected=expected)
