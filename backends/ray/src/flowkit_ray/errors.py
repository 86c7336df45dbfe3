"""Turning Ray's exceptions back into the ones the user's code raised.

Policy: a task that raised is reported as the *original* exception type (so ``except
ValueError`` and the engine's retry filters keep working), with the remote traceback text
attached as ``remote_traceback`` (the engine copies it into ``TaskFailedError``). Ray's
own failures (a worker that died, a cancelled task, a lost object, an out-of-memory kill)
are passed through unchanged: they are real, descriptive exceptions and the engine
counts them as a failed attempt.
"""

from __future__ import annotations

import logging
import re

from ray.exceptions import RayTaskError

from flowkit.errors import FlowkitError

logger = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class RayBackendError(FlowkitError):
    """The Ray backend was used wrongly (not entered, closed, bad settings)."""


class RayConnectionError(RayBackendError):
    """No Ray cluster answers at the address given (``address=`` or ``RAY_ADDRESS``)."""


def remote_traceback_text(err: RayTaskError) -> str:
    """The remote traceback as Ray prints it (process, pid, ip, user frames), no colours."""
    try:
        return _ANSI.sub("", str(err))
    except Exception:  # a broken __str__ on the cause must not hide the failure
        return str(err.traceback_str)


def user_exception(err: BaseException) -> BaseException:
    """The exception to surface for ``err``, which Ray produced for a failed call."""
    if not isinstance(err, RayTaskError):
        return err
    cause = err.cause
    if not isinstance(cause, BaseException) or isinstance(cause, RayTaskError):
        return err
    text = remote_traceback_text(err)
    if getattr(cause, "remote_traceback", None) is None:
        try:
            cause.remote_traceback = text  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            # Slotted or frozen exception types: Ray's dual-class wrapper is still an
            # instance of the user's type and carries the traceback in its message.
            logger.debug("cannot attach remote_traceback to %r", type(cause))
            dual: BaseException = err.as_instanceof_cause()  # type: ignore[no-untyped-call]
            return dual
    return cause
