"""Faults are named for what they are: disk full, file too large, permission denied, a silent
endpoint. Each is a ``StoreFault`` (a ``StoreError``) naming the store and the operation, with
``transient`` set when a retry may help — never a ``SerializationError`` blaming the value.

Disk full uses a real 256 KiB tmpfs (skipped where mounting is not allowed), file too large a
real ``RLIMIT_FSIZE`` in a child process, the silent endpoint a real socket that accepts and
never answers.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowkit.errors import SerializationError, StoreError
from flowkit.fsio import LocalIO, StoreFault, describe_fault
from flowkit.store import Artifact, Store

BIG = os.urandom(1 << 20)  # 1 MiB: more than the small disk and the file-size limit
# Over INLINE_MAX once serialized (smaller values are inline: no write, so no fault)
LIST = list(range(400))
GUARD = 60.0  # seconds: only a guard against hanging forever, never an assertion on speed


# -- disk full (ENOSPC) on a real tiny filesystem -----------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_is_a_store_fault_naming_the_store_and_the_output(small_disk: Path) -> None:
    store = Store(small_disk / "store")
    store.check()
    with pytest.raises(StoreFault) as info:
        store.put(BIG, what="task `t` output")
    err = info.value
    assert not isinstance(err, SerializationError)
    assert str(err) == f"cannot write task `t` output to store {store.root}: disk full (ENOSPC)"
    assert err.errno == errno.ENOSPC and not err.transient
    assert os.listdir(small_disk / "store" / "tmp") == []  # the partial object is gone
    assert store.get(store.put(42)) == 42  # small values still fit


def test_disk_full_while_writing_a_document(small_disk: Path) -> None:
    store = Store(small_disk / "store")
    store.check()
    (small_disk / "filler").write_bytes(b"x" * (240 << 10))
    records = [{"name": os.urandom(100).hex()} for _ in range(2000)]  # ~400 KB compressed
    with pytest.raises(StoreFault, match=r"cannot write runs/r/tasks-000000\.json\.gz to store"):
        store.write_task_records("r", 0, records)


# -- file too large (EFBIG) with a real file-size limit ------------------------------------------

_CHILD = """
import json, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))
from flowkit.store import Store
store = Store(sys.argv[1])
try:
    store.put(bytes(1 << 20), what="task `big` output")
except Exception as exc:
    print(json.dumps({"type": type(exc).__name__, "message": str(exc),
                      "transient": getattr(exc, "transient", None)}))
"""


def test_file_too_large_is_named(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.check()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, store.root],
        capture_output=True,
        text=True,
        check=True,
        timeout=GUARD,
    )
    result = json.loads(done.stdout)
    assert result["type"] == "StoreFault"
    assert result["message"] == (
        f"cannot write task `big` output to store {store.root}: file too large (EFBIG)"
    )
    assert result["transient"] is False


# -- permission denied, read-only filesystems: sinks that raise ---------------------------------


class FailingFile:
    """A writable file that fails like a disk would."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def write(self, data: Any) -> int:
        raise self.error

    def __enter__(self) -> FailingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (errno.EACCES, "permission denied (EACCES)"),
        (errno.EPERM, "permission denied (EPERM)"),
        (errno.EROFS, "read-only file system (EROFS)"),
        (errno.ENOSPC, "disk full (ENOSPC)"),
        (errno.EIO, "input/output error (EIO)"),
    ],
)
def test_a_sink_error_is_named_not_blamed_on_the_value(
    local_store: Store, monkeypatch: pytest.MonkeyPatch, number: int, text: str
) -> None:
    real_temp = LocalIO.temp

    def open_temp(self: LocalIO) -> tuple[str, Any]:
        return real_temp(self), FailingFile(OSError(number, os.strerror(number)))

    monkeypatch.setattr(LocalIO, "open_temp", open_temp)
    for value in (LIST, {"a": LIST}, BIG, [object(), "x" * 2000]):  # json, bytes, pickle
        with pytest.raises(StoreFault) as info:
            local_store.put(value, what="task `t` output")
        assert (
            str(info.value) == f"cannot write task `t` output to store {local_store.root}: {text}"
        )
    for small in (42, {"a": [1, 2]}, [object()]):  # inline: nothing is written
        assert local_store.put(small).inline is not None


def test_permission_denied_opening_the_temporary_file(
    local_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def open_temp(self: LocalIO) -> tuple[str, Any]:
        raise PermissionError(errno.EACCES, "Permission denied", self.path("tmp/x"))

    monkeypatch.setattr(LocalIO, "open_temp", open_temp)
    with pytest.raises(StoreFault, match=r"permission denied \(EACCES\)"):
        local_store.put(LIST, what="task `t` output")
    with pytest.raises(StoreFault, match=r"cannot write runs/r/run\.json to store .*EACCES"):
        local_store.write_run("r", {})


def memory_store() -> Store:
    store = Store(f"memory://fk-{uuid.uuid4().hex[:12]}")
    store.check()
    return store


def test_remote_permission_denied_and_server_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    store = memory_store()
    fs = store._io.fs  # type: ignore[union-attr]
    art = store.put(LIST)

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError("Access Denied")  # what s3fs raises for a 403

    monkeypatch.setattr(fs, "pipe_file", denied)
    monkeypatch.setattr(fs, "cat_file", denied)
    with pytest.raises(StoreFault, match="cannot write task `t` output to store memory://") as w:
        store.put([*LIST, 1], what="task `t` output")
    assert "permission denied" in str(w.value) and not w.value.transient
    with pytest.raises(StoreFault, match="cannot read task `t` output from") as r:
        store.get(art, what="task `t` output")
    assert "permission denied" in str(r.value)

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EBUSY, "SlowDown")  # what s3fs raises for a 503

    monkeypatch.setattr(fs, "cat_file", busy)
    with pytest.raises(StoreFault) as info:
        store.read_doc("cache/t-1/cd.json")
    assert info.value.transient
    assert "cache/t-1/cd.json" in str(info.value) and "memory://" in str(info.value)


# -- a silent endpoint: deadlines --------------------------------------------------------------


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>``: a server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for c in held:
            c.close()


def outcome(fn: Callable[[], Any]) -> BaseException:
    """The exception ``fn`` raises, run in a thread with a guard against hanging forever."""
    box: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            box.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(GUARD)
    assert not t.is_alive(), "the store operation hung (no deadline)"
    assert box, "the store operation succeeded against a silent endpoint"
    return box[0]


def test_a_silent_s3_endpoint_fails_with_a_named_transient_fault(silent_endpoint: str) -> None:
    url = "s3://bucket/prefix"
    store = Store(url, username="k", secret="s", endpoint_url=silent_endpoint, timeout=2)
    cases: list[tuple[Callable[[], Any], str]] = [
        (store.check, "read flowkit-store.json from"),
        (
            lambda: store.get(Artifact("a" * 64, "json", 2), what="task `t` output"),
            "read task `t` output from",
        ),
        (lambda: store.put(LIST, what="task `t` output"), "write task `t` output to"),
        (lambda: store.read_doc("cache/t-1/k.json"), "read cache/t-1/k.json from"),
        (lambda: store.write_run("r", {}), "write runs/r/run.json to"),
    ]
    for fn, op in cases:
        err = outcome(fn)
        assert isinstance(err, StoreFault), err
        assert str(err).startswith(f"cannot {op} store {url}: no answer within 2 s (timeout)")
        assert err.transient


def test_timeouts_come_from_the_argument_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FLOWKIT_STORE_TIMEOUT", raising=False)
    assert Store("memory://t").timeout == 60.0
    monkeypatch.setenv("FLOWKIT_STORE_TIMEOUT", "2.5")
    assert Store("memory://t").timeout == 2.5
    assert Store("memory://t", timeout=7).timeout == 7.0
    assert pickle.loads(pickle.dumps(Store("memory://t", timeout=7))).timeout == 7.0
    monkeypatch.setenv("FLOWKIT_STORE_TIMEOUT", "soon")
    with pytest.raises(StoreError, match="FLOWKIT_STORE_TIMEOUT='soon'"):
        Store("memory://t")
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(StoreError, match="above 0"):
            Store("memory://t", timeout=bad)


def test_s3_client_timeouts_are_set_unless_the_user_set_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    import fsspec

    def fake_url_to_fs(url: str, **options: Any) -> Any:
        seen.update(options)
        return fsspec.filesystem("memory"), "bucket/p"

    monkeypatch.setattr(fsspec.core, "url_to_fs", fake_url_to_fs)
    Store("s3://bucket/p", timeout=5)._io  # noqa: B018 - connects
    assert seen["config_kwargs"] == {
        "connect_timeout": 5.0,
        "read_timeout": 5.0,
        "retries": {"max_attempts": 2},
    }
    Store("s3://bucket/p", timeout=5, config_kwargs={"read_timeout": 300})._io  # noqa: B018
    assert seen["config_kwargs"]["read_timeout"] == 300
    assert seen["config_kwargs"]["connect_timeout"] == 5.0


def test_an_unreachable_endpoint_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = Store(
        "s3://bucket/p", username="k", secret="s", endpoint_url=f"http://127.0.0.1:{port}"
    )
    err = outcome(store.check)
    assert isinstance(err, StoreFault) and err.transient
    assert "s3://bucket/p" in str(err) and "unreachable" in str(err)


# -- the fault values themselves ------------------------------------------------------------------


def test_store_faults_cross_process_boundaries_whole() -> None:
    err = StoreFault("cannot write x to store /s: disk full (ENOSPC)", transient=False, errno=28)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is StoreFault and str(back) == str(err)
    assert back.errno == 28 and back.transient is False
    again = pickle.loads(pickle.dumps(StoreFault("t", transient=True)))
    assert again.transient is True


class _ClientError(Exception):
    """Shaped like botocore's ClientError."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.response = {"ResponseMetadata": {"HTTPStatusCode": status}}


class ReadTimeoutError(Exception):
    """Named like botocore's (faults are recognised by class name, without importing it)."""


class EndpointConnectionError(Exception):
    pass


@pytest.mark.parametrize(
    ("exc", "text", "transient"),
    [
        (OSError(errno.ENOSPC, "x"), "disk full (ENOSPC)", False),
        (OSError(errno.EFBIG, "x"), "file too large (EFBIG)", False),
        (OSError(errno.EDQUOT, "x"), "disk quota exceeded (EDQUOT)", False),
        (PermissionError(errno.EACCES, "x"), "permission denied (EACCES)", False),
        (OSError(errno.EROFS, "x"), "read-only file system (EROFS)", False),
        (TimeoutError(), "no answer within 5 s (timeout)", True),
        (ReadTimeoutError(), "no answer within 5 s (timeout)", True),
        (OSError(errno.ECONNREFUSED, "x"), "connection refused (ECONNREFUSED)", True),
        (EndpointConnectionError("http://x"), "endpoint unreachable", True),
        (ConnectionResetError(errno.ECONNRESET, "x"), "connection reset (ECONNRESET)", True),
        (_ClientError(503), "server error (HTTP 503)", True),
        (_ClientError(404), "_ClientError: HTTP 404", False),
        (ValueError("odd"), "ValueError: odd", False),
    ],
)
def test_describe_fault(exc: BaseException, text: str, transient: bool) -> None:
    got_text, got_transient = describe_fault(exc, 5)
    assert got_text.startswith(text) and got_transient is transient
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = exc
    assert describe_fault(wrapped, 5)[1] is transient  # found through the cause chain


# -- the engine retries a transient store fault, never a lasting one -----------------------------


def _failing_writes(
    monkeypatch: pytest.MonkeyPatch, store: Store, exc: OSError, times: int
) -> list[int]:
    """Make the store's next ``times`` cache-entry writes raise ``exc``; returns the count of
    failed writes (the output itself is inline: it is written with the entry)."""
    fs = store._io.fs  # type: ignore[union-attr]
    real = fs.pipe_file
    failed: list[int] = []

    def flaky(path: str, *args: Any, **kwargs: Any) -> Any:
        if "/cache/" in f"/{path}" and len(failed) < times:  # the cache entry
            failed.append(1)
            raise exc
        return real(path, *args, **kwargs)

    monkeypatch.setattr(fs, "pipe_file", flaky)
    return failed


def _cached_double(retries: int) -> Any:
    import flowkit as fk

    @fk.task(cache=True, retries=retries, retry_delay=0.0)
    def double(n: int) -> int:
        return 2 * n

    @fk.workflow
    def flow(n: int) -> int:
        return double(n)

    return flow


@pytest.mark.parametrize("backend", ["local", "threads"])
def test_a_transient_store_fault_is_retried(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    import flowkit as fk

    store = memory_store()
    failed = _failing_writes(monkeypatch, store, OSError(errno.EBUSY, "SlowDown"), times=1)
    run = fk.run(_cached_double(retries=1), n=21, store=store, backend=backend)
    assert run.output == 42 and failed == [1]
    assert run.tasks[0].attempts == 2


@pytest.mark.parametrize("backend", ["local", "threads"])
def test_a_lasting_store_fault_is_not_retried(
    monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    import flowkit as fk

    store = memory_store()
    failed = _failing_writes(monkeypatch, store, PermissionError("Access Denied"), times=99)
    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(_cached_double(retries=3), n=21, store=store, backend=backend)
    assert failed == [1], "a denied write was tried again"
    assert "permission denied" in str(info.value)
