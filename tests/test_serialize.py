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
from typing import Any, NamedTuple

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


def test_dict_order_and_set_order_do_not_change_bytes() -> None:
    a = {"x": 1, "y": 2, 3: "z", 1: "w"}
    b = {1: "w", "y": 2, 3: "z", "x": 1}
    assert roundtrip(a)[1] == roundtrip(b)[1]
    assert roundtrip({"b", "a", "c"})[1] == roundtrip({"c", "a", "b"})[1]


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
