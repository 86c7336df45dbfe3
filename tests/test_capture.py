"""flowkit.capture: what one attempt prints and logs, per thread, live, bounded.

The routing is attacked with real threads made to interleave (a barrier, or a schedule that
hypothesis draws and a condition variable enforces), real ``logging`` configurations, a
``sys.stdout`` replaced under the proxy, and exceptions pickled as Ray pickles them. Behaviour
that depends on a process without pytest's own handlers and streams (logging's last resort,
``basicConfig`` in a task) runs in fresh interpreters.
"""

from __future__ import annotations

import contextlib
import io
import logging
import pickle
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowkit import capture
from flowkit.capture import attempts, streams
from flowkit.capture.boundedlog import BoundedLog, split_at_byte, utf8_size

SETTINGS = settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow],
)


class Live:
    """A live sink that keeps the lines it is given."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        with self._lock:
            self.lines.extend(text.splitlines())


@pytest.fixture(autouse=True)
def _live_setting() -> Iterator[None]:
    """Each test starts with live output on and no sink, and leaves it so."""
    saved_live = capture.set_live(True)
    saved_sink = capture.set_live_sink(None)
    yield
    capture.set_live(saved_live)
    capture.set_live_sink(saved_sink)


@pytest.fixture
def live() -> Live:
    sink = Live()
    capture.set_live_sink(sink)
    return sink


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- per thread ----------------------------------------------------------------------------


def test_two_threads_printing_at_once_never_cross(live: Live) -> None:
    rounds = 200
    barrier = threading.Barrier(2)
    caps: dict[str, capture.Attempt] = {}

    def chatty(name: str) -> None:
        with capture.attempt(name) as cap:
            for i in range(rounds):
                barrier.wait()  # both threads are inside their attempts, writing now
                print(f"{name} out {i}")
                print(f"{name} err {i}", file=sys.stderr)
        caps[name] = cap

    threads = [threading.Thread(target=chatty, args=(n,)) for n in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("left", "right"):
        expected = "".join(f"{name} out {i}\n{name} err {i}\n" for i in range(rounds))
        assert caps[name].logs == expected
    for line in live.lines:
        label, _, text = line.partition("] ")
        assert text.split(" ", 1)[0] == label.lstrip("[")
    assert len(live.lines) == 4 * rounds


def test_a_thread_without_an_attempt_passes_through(capsys: pytest.CaptureFixture[str]) -> None:
    inside = threading.Event()
    release = threading.Event()

    def task() -> None:
        with capture.attempt("task") as cap:
            print("from the task")
            inside.set()
            release.wait()
        assert cap.logs == "from the task\n"

    worker = threading.Thread(target=task)
    worker.start()
    inside.wait()
    print("from the driver")  # while the other thread is mid-attempt
    print("driver error", file=sys.stderr)
    release.set()
    worker.join()
    out, err = capsys.readouterr()
    assert out == "from the driver\n"
    assert "driver error\n" in err
    assert "[task] from the task\n" in err  # live, on stderr: never on stdout


def test_nested_attempts_keep_their_own_lines(live: Live) -> None:
    with capture.attempt("outer") as outer:
        print("outer 1")
        with capture.attempt("inner") as inner:
            print("inner")
        print("outer 2")
    assert outer.logs == "outer 1\nouter 2\n"
    assert inner.logs == "inner\n"
    assert live.lines == ["[outer] outer 1", "[inner] inner", "[outer] outer 2"]
    assert capture.current() is None


def test_the_attempt_is_current_only_inside_the_block() -> None:
    with capture.attempt("x") as cap:
        assert capture.current() is cap
    assert capture.current() is None


# -- hypothesis: arbitrary interleavings ----------------------------------------------------

WRITE = st.tuples(
    st.integers(0, 1),  # which thread
    st.sampled_from(["stdout", "stderr", "print"]),
    st.text(alphabet=st.sampled_from("ab\n é€\t"), max_size=12),
)


def _write(how: str, text: str) -> None:
    if how == "stdout":
        sys.stdout.write(text)
    elif how == "stderr":
        sys.stderr.write(text)
    else:
        print(text, end="")


def run_schedule(schedule: list[tuple[int, str, str]], live: Live) -> list[capture.Attempt]:
    """Two threads, each in its own attempt, making the writes of ``schedule`` in its order."""
    turn = threading.Condition()
    position = [0]
    caps: list[capture.Attempt] = [capture.Attempt("t0"), capture.Attempt("t1")]
    both_in = threading.Barrier(2)

    def worker(me: int) -> None:
        with caps[me]:
            both_in.wait()
            for who, how, text in schedule:
                if who != me:
                    continue
                with turn:
                    turn.wait_for(lambda: schedule[position[0]][0] == me)
                    _write(how, text)
                    position[0] += 1
                    turn.notify_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return caps


@SETTINGS
@given(st.lists(WRITE, max_size=40))
def test_any_interleaving_gives_each_attempt_exactly_its_writes(
    schedule: list[tuple[int, str, str]],
) -> None:
    sink = Live()
    capture.set_live_sink(sink)
    try:
        caps = run_schedule(schedule, sink)
    finally:
        capture.set_live_sink(None)
    for me in (0, 1):
        mine = "".join(text for who, _, text in schedule if who == me)
        assert caps[me].logs == mine
        shown = [line[len(f"[t{me}] ") :] for line in sink.lines if line.startswith(f"[t{me}] ")]
        assert shown == mine.splitlines()  # live: the same lines, each whole, prefixed
    assert all(line.startswith(("[t0] ", "[t1] ")) for line in sink.lines)


# -- logging --------------------------------------------------------------------------------


def test_log_records_are_captured_without_changing_levels(live: Live) -> None:
    log = logging.getLogger("tests.capture.levels")
    log.setLevel(logging.INFO)
    try:
        with capture.attempt("job") as cap:
            print("before")
            log.info("loaded %d rows", 3)
            log.debug("not enabled: not captured")
            print("after")
        assert cap.logs == "before\nINFO tests.capture.levels: loaded 3 rows\nafter\n"
        assert log.level == logging.INFO and logging.getLogger().level == logging.WARNING
        assert "[job] INFO tests.capture.levels: loaded 3 rows" in live.lines
    finally:
        log.setLevel(logging.NOTSET)


def test_a_logged_exception_keeps_its_traceback() -> None:
    log = logging.getLogger("tests.capture.exc")
    with capture.attempt("job") as cap:
        try:
            raise KeyError("missing")
        except KeyError:
            log.exception("lookup failed")
    assert cap.logs.startswith("ERROR tests.capture.exc: lookup failed\nTraceback")
    assert "KeyError: 'missing'" in cap.logs


def test_an_unformattable_record_does_not_fail_the_task() -> None:
    log = logging.getLogger("tests.capture.bad")
    log.propagate = False  # away from pytest's handlers, which raise on a bad record
    try:
        with capture.attempt("job") as cap:
            log.error("%d items", "many")
    finally:
        log.propagate = True
    assert cap.logs.startswith("ERROR tests.capture.bad: '%d items' % ('many',)")


def test_records_from_other_threads_are_not_captured() -> None:
    log = logging.getLogger("tests.capture.other")
    with capture.attempt("job") as cap:
        t = threading.Thread(target=log.error, args=("from another thread",))
        t.start()
        t.join()
    assert cap.logs == ""


def test_a_handler_on_the_proxied_stderr_gives_each_line_once(live: Live) -> None:
    log = logging.getLogger("tests.capture.handler")
    with capture.attempt("warmup"):
        pass  # the proxies are in place now: a handler made on sys.stderr writes to one
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mine| %(message)s"))
    log.addHandler(handler)
    try:
        with capture.attempt("job") as cap:
            log.warning("once")
    finally:
        log.removeHandler(handler)
    assert cap.logs == "mine| once\n"
    assert live.lines == ["[job] mine| once"]


def test_a_handler_on_the_terminal_is_logged_but_not_echoed(live: Live) -> None:
    log = logging.getLogger("tests.capture.terminal")
    with capture.attempt("warmup"):
        pass
    terminal = streams.terminal_stderr()
    handler = logging.StreamHandler(terminal)
    log.addHandler(handler)
    try:
        with capture.attempt("job") as cap:
            log.warning("shown by the handler")
    finally:
        log.removeHandler(handler)
    assert cap.logs == "WARNING tests.capture.terminal: shown by the handler\n"
    assert live.lines == []  # the user's handler showed it already


LAST_RESORT = """
    import logging, sys
    from flowkit import capture
    log = logging.getLogger("lib")
    with capture.attempt("task") as cap:
        log.warning("from the task")
    log.warning("from the driver")
    sys.stdout.write(repr(cap.logs))
"""


def test_logging_without_handlers_is_captured_once_and_the_driver_keeps_its_last_resort() -> None:
    proc = run_python(LAST_RESORT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == repr("WARNING lib: from the task\n")
    assert proc.stderr.splitlines() == ["[task] WARNING lib: from the task", "from the driver"]


BASIC_CONFIG = """
    import logging, sys
    from flowkit import capture
    with capture.attempt("task") as cap:
        logging.basicConfig(level=logging.INFO, format="user %(levelname)s %(message)s")
        logging.getLogger("mine").info("configured in the task")
    sys.stdout.write(repr(cap.logs))
"""


def test_basic_config_inside_a_task_still_works() -> None:
    proc = run_python(BASIC_CONFIG)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == repr("user INFO configured in the task\n")
    assert proc.stderr == "[task] user INFO configured in the task\n"


# -- failures -------------------------------------------------------------------------------


class Slotted(Exception):
    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")


def chatty_failure(error: BaseException, *lines: str) -> None:
    with capture.attempt("job"):
        for line in lines:
            print(line)
        logging.getLogger("tests.capture.fail").error("about to fail")
        raise error


def test_an_exception_propagates_unchanged_carrying_the_attempt() -> None:
    raised = ValueError("bad value 42")
    with pytest.raises(ValueError, match="bad value 42") as info:
        chatty_failure(raised, "working")
    assert info.value is raised
    attempt = raised.flowkit_attempt  # type: ignore[attr-defined]
    assert attempt["logs"] == "working\nERROR tests.capture.fail: about to fail\n"
    assert attempt["cpu"] >= 0 and attempt["wall"] >= 0
    assert attempt["peak_rss"] is None or attempt["peak_rss"] > 0
    again = pickle.loads(pickle.dumps(raised))  # as a Ray worker sends it back
    assert again.flowkit_attempt == attempt and again.args == raised.args


def test_an_exception_refusing_attributes_still_propagates() -> None:
    with pytest.raises(Slotted), capture.attempt("job"):
        raise Slotted("frozen")


def test_a_reused_exception_object_gets_the_latest_attempt() -> None:
    error = RuntimeError("same object")
    for i in range(2):
        with pytest.raises(RuntimeError):
            chatty_failure(error, f"attempt {i}")
        assert error.flowkit_attempt["logs"].startswith(f"attempt {i}\nERROR")  # type: ignore[attr-defined]


# -- replaced streams -----------------------------------------------------------------------


def test_a_redirect_inside_the_task_wins() -> None:
    with capture.attempt("job") as cap:
        print("captured")
        with contextlib.redirect_stdout(io.StringIO()) as private:
            print("the task's own")
        print("captured again")
    assert cap.logs == "captured\ncaptured again\n"
    assert private.getvalue() == "the task's own\n"


def test_a_stdout_replaced_after_install_is_wrapped_at_the_next_attempt(
    monkeypatch: pytest.MonkeyPatch, live: Live
) -> None:
    with capture.attempt("first"):
        pass
    replacement = io.StringIO()
    monkeypatch.setattr(sys, "stdout", replacement)
    assert not streams.installed()
    with capture.attempt("second") as cap:
        print("task line")
    assert streams.installed() and sys.stdout is not replacement
    print("driver line")  # no attempt: reaches the stream it replaced
    assert cap.logs == "task line\n"
    assert replacement.getvalue() == "driver line\n"


def test_our_own_proxy_put_back_is_not_wrapped_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    with capture.attempt("first"):
        pass
    proxy = sys.stdout
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    with capture.attempt("second"):
        pass
    monkeypatch.setattr(sys, "stdout", proxy)  # as capsys restores what it found
    with capture.attempt("third") as cap:
        print("x")
    assert sys.stdout is proxy and isinstance(proxy, streams.StreamProxy)
    assert not isinstance(proxy.wrapped, streams.StreamProxy)
    assert cap.logs == "x\n"


def test_writing_bytes_fails_as_on_a_real_stream() -> None:
    with pytest.raises(TypeError, match="must be str, not bytes"), capture.attempt("job"):
        sys.stdout.write(b"raw")  # type: ignore[arg-type]


def test_the_proxy_answers_like_the_stream_it_wraps() -> None:
    with capture.attempt("job") as cap:
        out = sys.stdout
        assert isinstance(out, streams.StreamProxy) and out.wrapped is not None
        assert out.encoding == out.wrapped.encoding
        assert out.isatty() is out.wrapped.isatty()
        out.writelines(["a\n", "b\n"])
        out.flush()
    assert cap.logs == "a\nb\n"


# -- live -----------------------------------------------------------------------------------


def test_live_lines_go_to_the_real_stderr_prefixed(capsys: pytest.CaptureFixture[str]) -> None:
    with capture.attempt("square[3]") as cap:
        print("half", end="")
        print(" a line")
        print("no newline at the end", end="")
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "[square[3]] half a line\n[square[3]] no newline at the end\n"
    assert cap.logs == "half a line\nno newline at the end"


@pytest.mark.parametrize("how", ["set_live", "env", "argument"])
def test_live_off(how: str, capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    live_arg: bool | None = None
    if how == "set_live":
        capture.set_live(False)
    elif how == "env":
        capture.set_live(None)
        monkeypatch.setenv("FLOWKIT_QUIET", "1")
    else:
        live_arg = False
    with capture.attempt("job", live=live_arg) as cap:
        print("kept, not shown")
    assert capsys.readouterr() == ("", "")
    assert cap.logs == "kept, not shown\n"


def test_a_long_line_without_newline_is_shown_before_the_attempt_ends(live: Live) -> None:
    with capture.attempt("bar") as cap:
        sys.stdout.write("=" * (70 * 1024))
        shown_during = list(live.lines)
    assert shown_during == ["[bar] " + "=" * (70 * 1024)]
    assert len(cap.logs) == 70 * 1024


def test_a_broken_terminal_does_not_fail_the_task() -> None:
    def broken(text: str) -> None:
        raise OSError("terminal gone")

    capture.set_live_sink(broken)
    with capture.attempt("job") as cap:
        print("still kept")
    assert cap.logs == "still kept\n"


# -- the size bound -------------------------------------------------------------------------


def test_a_huge_log_keeps_eight_mib_head_and_tail() -> None:
    chunk = "x" * 1023 + "\n"
    with capture.attempt("flood", live=False) as cap:
        print("FIRST LINE")
        for _ in range(20 * 1024):  # 20 MiB
            sys.stdout.write(chunk)
        print("LAST LINE")
    logs = cap.logs
    total = len("FIRST LINE\n") + 20 * 2**20 + len("LAST LINE\n")
    cut = total - capture.MAX_LOG_BYTES
    marker = f"\n[... {cut} bytes cut ...]\n"
    assert logs.startswith("FIRST LINE\n") and logs.endswith("LAST LINE\n")
    assert marker in logs
    assert len(logs) == capture.MAX_LOG_BYTES + len(marker)


def test_the_bound_applies_per_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attempts, "MAX_LOG_BYTES", 100)
    with capture.attempt("a", live=False) as a:
        sys.stdout.write("a" * 60)
    with capture.attempt("b", live=False) as b:
        sys.stdout.write("b" * 250)
    assert a.logs == "a" * 60
    assert b.logs == "b" * 50 + "\n[... 150 bytes cut ...]\n" + "b" * 50


TEXTS = st.lists(st.text(alphabet=st.sampled_from("ab\né€😀\udc80"), max_size=30), max_size=30)


@SETTINGS
@given(TEXTS, st.integers(2, 80))
def test_a_bounded_log_keeps_head_and_tail_and_counts_what_it_cut(
    writes: list[str], limit: int
) -> None:
    log = BoundedLog(limit)
    for text in writes:
        log.append(text)
    whole = "".join(writes)
    text = log.text()
    if utf8_size(whole) <= limit:
        assert text == whole and log.cut == 0
        return
    head, marker, tail = text.partition(f"\n[... {log.cut} bytes cut ...]\n")
    assert marker and log.cut > 0
    assert whole.startswith(head) and whole.endswith(tail)
    assert limit // 2 - 4 < utf8_size(head) <= limit // 2  # full, up to one character
    assert limit - 4 < utf8_size(head) + utf8_size(tail) <= limit
    assert utf8_size(head) + log.cut + utf8_size(tail) == utf8_size(whole)


@SETTINGS
@given(st.text(alphabet=st.sampled_from("aé€😀\udc80"), max_size=20), st.integers(0, 90))
def test_split_at_byte_cuts_at_a_character_boundary(text: str, n: int) -> None:
    for round_up in (False, True):
        head, rest = split_at_byte(text, n, round_up=round_up)
        assert head + rest == text
        size = utf8_size(head)
        if round_up:
            assert size >= min(n, utf8_size(text)) and size < n + 4
        else:
            assert size <= n and size > min(n, utf8_size(text)) - 4


# -- what an attempt measures ---------------------------------------------------------------


def burn_cpu(seconds: float, clock: Callable[[], float] = time.thread_time) -> None:
    start = clock()
    while clock() - start < seconds:
        pass


def test_cpu_is_the_calling_threads_own() -> None:
    busy_done = threading.Event()
    results: dict[str, capture.Attempt] = {}

    def idle() -> None:
        with capture.attempt("idle") as cap:
            busy_done.wait()  # blocked: no CPU of its own while the other thread burns
        results["idle"] = cap

    waiter = threading.Thread(target=idle)
    waiter.start()
    with capture.attempt("busy") as busy:
        burn_cpu(0.05)
    busy_done.set()
    waiter.join()
    assert busy.cpu is not None and busy.cpu >= 0.05
    idle_cpu = results["idle"].cpu
    assert idle_cpu is not None and idle_cpu < 0.05


def resident_bytes() -> int:
    with open("/proc/self/status") as f:
        [kib] = [line.split()[1] for line in f if line.startswith("VmRSS:")]
    return int(kib) * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_peak_rss_is_the_processes_high_water_mark_in_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attempts, "_RSS_FRESH", 0.0)  # no reuse of an earlier reading
    with capture.attempt("job") as cap:
        block = bytearray(64 * 2**20)
        block[::4096] = b"x" * len(block[::4096])  # touched: resident now
        resident = resident_bytes()
    # (the kernel folds each thread's page counts into the high-water mark in batches)
    assert resident > 64 * 2**20
    assert cap.peak_rss is not None and cap.peak_rss >= resident - 4 * 2**20
    assert cap.logs == ""
    del block


def test_a_recent_peak_rss_reading_is_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attempts, "_RSS_FRESH", 3600.0)
    reads: list[int] = []
    monkeypatch.setattr(attempts, "_rss_read", (float("-inf"), None))
    resource = pytest.importorskip("resource")
    real_getrusage = resource.getrusage

    def counting(who: int) -> Any:
        reads.append(who)
        return real_getrusage(who)

    monkeypatch.setattr(resource, "getrusage", counting)
    peaks = []
    for _ in range(3):
        with capture.attempt("job") as cap:
            pass
        peaks.append(cap.peak_rss)
    assert len(reads) == 1 and peaks[0] == peaks[1] == peaks[2]


# -- secrets --------------------------------------------------------------------------------


@pytest.fixture
def masked_secret() -> Iterator[str]:
    secret = f"tok-{uuid.uuid4().hex}"
    previous = capture.set_masker(lambda text: text.replace(secret, "***"))
    yield secret
    capture.set_masker(previous)


def test_the_masker_sees_logs_live_lines_and_failures(live: Live, masked_secret: str) -> None:
    secret = masked_secret
    with capture.attempt("job") as cap:
        print(f"token={secret}; abc")
        sys.stdout.write(secret[:6])  # split across writes: masked in the joined log
        sys.stdout.write(secret[6:] + "\n")
        logging.getLogger("tests.capture.secret").warning("using %s", secret)
    assert secret not in cap.logs
    assert cap.logs == "token=***; abc\n***\nWARNING tests.capture.secret: using ***\n"
    assert live.lines == [
        "[job] token=***; abc",
        "[job] ***",
        "[job] WARNING tests.capture.secret: using ***",
    ]
    error = ValueError("secret printed")
    with pytest.raises(ValueError, match="secret printed"):
        chatty_failure(error, secret)
    assert secret not in error.flowkit_attempt["logs"]  # type: ignore[attr-defined]


def test_a_failing_masker_hides_the_text_and_never_fails_the_task(live: Live) -> None:
    def broken(text: str) -> str:
        raise RuntimeError("no masking today")

    previous = capture.set_masker(broken)
    try:
        with capture.attempt("job") as cap:
            print("maybe secret")
        logs = cap.logs  # (masked when read)
    finally:
        capture.set_masker(previous)
    assert "maybe secret" not in logs and "the masker failed" in logs
    assert not any("maybe secret" in line for line in live.lines)
