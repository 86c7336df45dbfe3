"""``local``: runs each call inline, in the caller's thread, one at a time.

Deterministic and debugger-friendly (``breakpoint()`` in a task just works). A timeout is
enforced with ``SIGALRM`` when running in the main thread, so the task is interrupted in
place; elsewhere the call runs on a helper thread that is abandoned when it times out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from flowkit.backend import AttemptTimeout, BackendBase, Capabilities, Submission
from flowkit.backends.alarm import call_with_alarm, on_main_thread


class LocalBackend(BackendBase):
    """Inline, serial execution in the calling thread."""

    name = "local"
    # Handles are the values: cache hits are served in the driver, small map items batched.
    capabilities = Capabilities(values_in_driver=True)

    @property
    def capacity(self) -> int:
        return 1

    def __enter__(self) -> LocalBackend:
        return self

    def submit(
        self, fn: Callable[..., tuple[Any, Any]], args: Sequence[Any], spec: Submission
    ) -> Future[tuple[Any, Any]]:
        fut: Future[tuple[Any, Any]] = Future()
        try:
            if spec.timeout is None:
                result = fn(*args)
            elif on_main_thread():
                result = call_with_alarm(fn, args, spec.timeout, _late(spec))
            else:
                result = _on_helper_thread(fn, args, spec)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            fut.set_exception(e)
        else:
            fut.set_result(result)
        return fut

    def fetch(self, handle: Any) -> Any:
        return handle


def _late(spec: Submission) -> str:
    return f"task `{spec.name}` ran past its timeout of {spec.timeout} s"


def _on_helper_thread(fn: Callable[..., Any], args: Sequence[Any], spec: Submission) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn(*args)
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=target, name=f"flowkit-local-{spec.name}", daemon=True)
    t.start()
    t.join(spec.timeout)
    if t.is_alive():
        raise AttemptTimeout(_late(spec))
    if "error" in box:
        raise box["error"]
    return box["result"]
