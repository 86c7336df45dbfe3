"""flowkit: typed, cached, backend-agnostic workflows for machine learning.

import flowkit as fk

@fk.task
def numbers(n: int) -> list[int]:
    return list(range(n))

@fk.task
def square(x: int) -> int:
    return x * x

@fk.task
def add(xs: list[int]) -> int:
    return sum(xs)

@fk.workflow
def total(n: int = 10) -> int:
    return add(square.map(x=numbers(n)))

fk.run(total, n=5, backend="threads").output  # 30
"""

from typing import TYPE_CHECKING, Any

from flowkit import (
    backends,
    card,
    notify,
    runs,
)
from flowkit.api import run
from flowkit.backend import Backend, available_backends
from flowkit.callbacks import Callback, Output
from flowkit.capture import current_run_id
from flowkit.conditional import cond
from flowkit.errors import (
    BackendNotFoundError,
    FlowkitError,
    GraphError,
    SerializationError,
    StoreError,
    TaskFailedError,
    TaskSerializationError,
    TaskTimeoutError,
    TypeMismatchError,
)
from flowkit.events import Event, FireTime
from flowkit.files import Directory, File
from flowkit.records import Run, TaskRecord
from flowkit.resources import Resources
from flowkit.runs import UnknownRunError
from flowkit.secret import Secret
from flowkit.serialize import allow_annotation, allow_class
from flowkit.store import Store
from flowkit.task import TaskDef, dynamic, task, unmapped
from flowkit.taskview import NoOutputError, OutputNotKeptError
from flowkit.workflow import WorkflowDef, workflow

if TYPE_CHECKING:  # fk.schedule: imported on first use (below), not by `import flowkit`
    from flowkit.automation.schedules import schedule


def __getattr__(name: str) -> Any:
    # cron and time-zone libraries load only for programs that schedule: `import flowkit`
    # stays lean, and a user's file named like one of their modules is not imported first
    if name == "schedule":
        from flowkit.automation.schedules import schedule

        return schedule
    raise AttributeError(f"module 'flowkit' has no attribute {name!r}")


# The one place the version is written: pyproject.toml reads it (setuptools dynamic version).
__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendNotFoundError",
    "Callback",
    "Directory",
    "Event",
    "File",
    "FireTime",
    "FlowkitError",
    "GraphError",
    "NoOutputError",
    "Output",
    "OutputNotKeptError",
    "Resources",
    "Run",
    "Secret",
    "SerializationError",
    "Store",
    "StoreError",
    "TaskDef",
    "TaskFailedError",
    "TaskRecord",
    "TaskSerializationError",
    "TaskTimeoutError",
    "TypeMismatchError",
    "UnknownRunError",
    "WorkflowDef",
    "allow_annotation",
    "allow_class",
    "available_backends",
    "backends",
    "card",
    "cond",
    "current_run_id",
    "dynamic",
    "notify",
    "run",
    "runs",
    "schedule",
    "task",
    "unmapped",
    "workflow",
]
