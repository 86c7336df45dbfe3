"""The flowkit error tree.

Every error a user can see derives from :class:`FlowkitError`. Messages name the
thing that is wrong, what was expected, and the fix.
"""

from __future__ import annotations


class FlowkitError(Exception):
    """Base class of every error flowkit raises on purpose."""


class GraphError(FlowkitError):
    """A workflow could not be traced into a valid graph (or a promise was used as a value)."""


class TypeMismatchError(GraphError):
    """An edge of the graph (or a workflow input) does not type-check."""


class BackendNotFoundError(FlowkitError):
    """No backend is registered under the requested name."""


class SerializationError(FlowkitError):
    """A value could not be stored or loaded."""


class StoreError(FlowkitError):
    """A store is unreachable, missing, or written in a format this flowkit cannot read."""


class TaskFailedError(FlowkitError):
    """A task still failed after its retries.

    The original exception is the ``__cause__``; when it was raised on a remote worker,
    its traceback text is kept in :attr:`remote_traceback`.
    """

    def __init__(
        self,
        message: str,
        *,
        task: str = "",
        node: str = "",
        attempts: int = 0,
        run_id: str = "",
        remote_traceback: str | None = None,
    ) -> None:
        super().__init__(message)
        self.task = task
        self.node = node
        self.attempts = attempts
        self.run_id = run_id
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the keyword-only fields when the error crosses a process boundary.
        return (_rebuild_task_failed, (type(self), self.args, self.__dict__))


class TaskTimeoutError(TaskFailedError):
    """A task attempt ran past its ``timeout`` and no retries were left."""


class TaskSerializationError(TaskFailedError, SerializationError):
    """A task's output (or input) could not be stored: both a :class:`TaskFailedError` (it
    names the task, node, attempts and run) and a :class:`SerializationError`."""


def _rebuild_task_failed(
    cls: type[TaskFailedError], args: tuple[object, ...], state: dict[str, object]
) -> TaskFailedError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


__all__ = [
    "BackendNotFoundError",
    "FlowkitError",
    "GraphError",
    "SerializationError",
    "StoreError",
    "TaskFailedError",
    "TaskSerializationError",
    "TaskTimeoutError",
    "TypeMismatchError",
]
