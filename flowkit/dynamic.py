"""Dynamic tasks at run time: an ``@fk.dynamic`` body runs in the driver with real values and
traces the tasks it calls into a sub-graph, which the engine splices into the running graph.

:func:`trace_body` runs one attempt; :class:`DynamicRun` is a dynamic node between attempts
(the engine keeps it on its retry clock while it waits out a back-off, like a task call).

``@fk.dynamic(resources=...)``: the body itself runs in the driver, so its resources are the
default of the calls it makes: a task of the sub-graph that declares no resources of its own
gets the dynamic task's (:func:`with_resources`); one that declares some keeps them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowkit.calls import retryable
from flowkit.errors import FlowkitError, StoreError
from flowkit.graph import Binding, Node
from flowkit.isolation import private
from flowkit.promise import Builder
from flowkit.records import TaskRecord
from flowkit.resources import Resources
from flowkit.taskspec import TaskSpec
from flowkit.workflow import check_output


@dataclass(slots=True, eq=False)
class DynamicRun:
    """A dynamic node being run: its record, its inputs (fetched once, for every attempt) and
    the attempts made so far."""

    node: Node
    record: TaskRecord
    kwargs: dict[str, Any]
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class Traced:
    """What one successful attempt built: the sub-graph's nodes (ids prefixed with the dynamic
    node's id), the binding of its output in it, and the value the body returned."""

    nodes: Mapping[str, Node]
    output: Binding
    returned: Any


def trace_body(workflow: str, run: DynamicRun) -> Traced:
    """Run the body once (its inputs private copies) and check what it returns."""
    spec = run.node.task
    builder = Builder(workflow, prefix=f"{run.node.id}/")
    with builder:
        returned = spec.fn(**{k: private(v) for k, v in run.kwargs.items()})
    output = builder.binding_of(returned)
    check_output(
        builder, f"{workflow}` dynamic task `{spec.name}", spec.return_type, output, returned
    )
    return Traced(with_resources(builder.nodes, spec.options.resources), output, returned)


def with_resources(nodes: Mapping[str, Node], resources: Resources) -> Mapping[str, Node]:
    """The sub-graph's nodes, those whose task declares no resources given ``resources``."""
    if resources == Resources():
        return nodes
    specs: dict[int, TaskSpec] = {}  # one copy per task: the engine keeps a runtime per spec

    def given(task: TaskSpec) -> TaskSpec:
        if task.options.resources != Resources() or task.dynamic:
            return task
        if id(task) not in specs:
            options = dataclasses.replace(task.options, resources=resources)
            specs[id(task)] = TaskSpec(task.name, task.fn, task.signature, options, task.dynamic)
        return specs[id(task)]

    return {nid: dataclasses.replace(n, task=given(n.task)) for nid, n in nodes.items()}


def may_retry(run: DynamicRun, exc: BaseException) -> bool:
    """Whether a failed attempt is tried again: retries left, and not a flowkit error (a graph
    or type error in the body's calls repeats itself), except a transient store fault."""
    flowkit_error = isinstance(exc, FlowkitError) and not isinstance(exc, StoreError)
    return run.attempt <= run.node.task.options.retries and not flowkit_error and retryable(exc)


__all__ = ["DynamicRun", "Traced", "may_retry", "trace_body"]
