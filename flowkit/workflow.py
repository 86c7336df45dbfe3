"""``@fk.workflow``: trace a function body once, at decoration time, into a typed graph.

The body runs with a :class:`~flowkit.promise.Promise` for each input; every task call
adds a node and every edge is type-checked as it is made, so a mismatch is reported at
import time with the file:line of the call. Calling another workflow inside the body
inlines its nodes (ids prefixed with the sub-workflow's name).

Called outside a workflow, a workflow runs with the configured defaults and returns its
output value: ``pipeline(n=10) == fk.run(pipeline, n=10).output``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, overload

from flowkit import typecheck
from flowkit.errors import GraphError, TypeMismatchError
from flowkit.graph import (
    Binding,
    DictOf,
    FieldOf,
    Graph,
    Guard,
    InputRef,
    ListOf,
    Literal,
    OutputRef,
    Select,
    WorkflowInput,
)
from flowkit.promise import Builder, NamedPromises, Promise, caller_location, current_builder
from flowkit.reprs import short_repr
from flowkit.task import check_binding, describe_source

P = ParamSpec("P")
R = TypeVar("R")

# Set by flowkit.api: how a workflow called outside a workflow runs (fk.run(...).output).
_default_runner: Callable[..., Any] | None = None


def set_default_runner(runner: Callable[..., Any]) -> None:
    """Install the function that runs a workflow called as a plain function."""
    global _default_runner
    _default_runner = runner


class WorkflowDef(Generic[P, R]):
    """A traced workflow: ``.graph`` is its typed graph, ``.fn`` the undecorated body."""

    def __init__(
        self, fn: Callable[P, R], name: str | None = None, schedule: str | None = None
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        if schedule is not None and not isinstance(schedule, str):
            raise TypeError(f"@fk.workflow(schedule=...) takes a cron text, got {schedule!r}")
        #: a cron expression (``"0 * * * *"``): ``flowkit scheduler FILE`` keeps a schedule
        #: of this name firing the workflow (checked there; None: not scheduled)
        self.schedule = schedule
        self.signature = typecheck.resolve_signature(fn, kind="workflow", name=name)
        self.inputs = tuple(
            WorkflowInput(
                name=p.name,
                type=p.type,
                default=p.default if p.has_default else None,
                has_default=p.has_default,
            )
            for p in self.signature.params
        )
        self.graph = trace(self)

    def __repr__(self) -> str:
        return f"<workflow {self.name}: {len(self.graph)} nodes>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        builder = current_builder()
        if builder is not None:
            result: R = inline(builder, self, args, kwargs, caller_location())
            return result
        if _default_runner is None:
            raise GraphError("flowkit.api is not loaded; import flowkit to run workflows")
        values = bind_inputs(self, args, kwargs)
        return _default_runner(self, **values).output  # type: ignore[no-any-return]


def trace(wf: WorkflowDef[Any, Any], prefix: str = "") -> Graph:
    """Run the workflow body with placeholders and return the checked graph."""
    builder = Builder(wf.name, prefix)
    placeholders = {
        i.name: Promise(builder, InputRef(i.name), i.type, f"workflow input `{i.name}`")
        for i in wf.inputs
    }
    with builder:
        returned = wf.fn(**placeholders)
    output = builder.binding_of(returned)
    check_output(builder, wf.name, wf.signature.return_type, output, returned)
    return Graph(
        name=wf.name,
        inputs=wf.inputs,
        nodes=builder.nodes,
        output=output,
        output_type=wf.signature.return_type,
    )


def check_output(builder: Builder, owner: str, rtype: Any, output: Binding, value: Any) -> None:
    """The value a workflow (or dynamic body) returns must match its return annotation."""
    if isinstance(output, Literal):
        ok = typecheck.check_value(output.value, rtype)
        src: Any = type(output.value)
    elif isinstance(value, Promise):
        ok = typecheck.is_assignable(value.type, rtype)
        src = value.type
    else:
        return  # lists/tuples of promises: checked element-wise by the runtime check
    if not ok:
        raise TypeMismatchError(
            f"workflow `{owner}`: returns {describe_source(builder, output, value)} "
            f"({typecheck.type_repr(src)}) but is annotated -> {typecheck.type_repr(rtype)}; "
            "fix the return annotation or what the body returns"
        )


def bind_inputs(
    wf: WorkflowDef[Any, Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """Bind call arguments to workflow inputs (defaults applied), checking their types."""
    try:
        bound = inspect.signature(wf.fn).bind(*args, **kwargs)
    except TypeError as e:
        raise GraphError(
            f"workflow `{wf.name}`: {e}; inputs are "
            + ", ".join(f"{i.name}: {typecheck.type_repr(i.type)}" for i in wf.inputs)
        ) from None
    bound.apply_defaults()
    values = dict(bound.arguments)
    for inp in wf.inputs:
        if not typecheck.check_value(values[inp.name], inp.type):
            raise TypeMismatchError(
                f"workflow `{wf.name}`: input `{inp.name}` expects "
                f"{typecheck.type_repr(inp.type)}, got {type(values[inp.name]).__name__} "
                f"{short_repr(values[inp.name])}; pass a value of the annotated type"
            )
    return values


def inline(
    builder: Builder,
    wf: WorkflowDef[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    where: str,
) -> Any:
    """Copy a sub-workflow's nodes into ``builder``, wired to the caller's arguments."""
    try:
        bound = inspect.signature(wf.fn).bind(*args, **kwargs)
    except TypeError as e:
        raise GraphError(f"sub-workflow `{wf.name}` called at {where}: {e}") from None
    bound.apply_defaults()
    inputs: dict[str, Binding] = {}
    for inp in wf.inputs:
        value = bound.arguments[inp.name]
        binding = builder.binding_of(value)
        check_binding(
            builder, f"sub-workflow `{wf.name}`", inp.name, inp.type, binding, value, where
        )
        inputs[inp.name] = binding
    ids: dict[str, str] = {}
    for cond in _conds_in(wf.graph):  # fk.cond ids are renamed like node ids
        ids[cond] = builder.new_id(f"{wf.name}.{cond}")
    for node in wf.graph.nodes.values():
        new_id = builder.new_id(f"{wf.name}.{node.id}")
        ids[node.id] = new_id
        builder.add(  # replace(): every other field of the node (min_success...) is kept
            dataclasses.replace(
                node,
                id=new_id,
                bindings=tuple((p, _rebind(b, ids, inputs)) for p, b in node.bindings),
                guards=tuple(
                    Guard(ids[g.cond], _rebind(g.pred, ids, inputs), g.when, g.per_item)
                    for g in node.guards
                ),
            )
        )
    if wf.graph.output is None:
        return None
    return _promises_for(builder, _rebind(wf.graph.output, ids, inputs), wf.graph.output_type)


def _rebind(b: Binding, ids: dict[str, str], inputs: dict[str, Binding]) -> Binding:
    if isinstance(b, OutputRef):
        return OutputRef(ids[b.node], b.index)
    if isinstance(b, InputRef):
        return inputs[b.name]
    if isinstance(b, ListOf):
        return ListOf(tuple(_rebind(x, ids, inputs) for x in b.items), b.as_tuple)
    if isinstance(b, DictOf):
        return DictOf(tuple((k, _rebind(x, ids, inputs)) for k, x in b.items))
    if isinstance(b, FieldOf):
        return FieldOf(_rebind(b.base, ids, inputs), b.path)
    if isinstance(b, Select):
        pred, then, other = (_rebind(x, ids, inputs) for x in (b.pred, b.then, b.otherwise))
        return Select(ids[b.cond], pred, then, other, per_item=b.per_item)
    return b


def _conds_in(graph: Graph) -> list[str]:
    """The ids of the ``fk.cond`` decisions in a graph, in order."""
    found: dict[str, None] = {}
    for node in graph.nodes.values():
        for g in node.guards:
            found.setdefault(g.cond)
            _selects_in(g.pred, found)
        for _, b in node.bindings:
            _selects_in(b, found)
    if graph.output is not None:
        _selects_in(graph.output, found)
    return list(found)


def _selects_in(b: Binding, found: dict[str, None]) -> None:
    if isinstance(b, Select):
        found.setdefault(b.cond)
        for part in (b.pred, b.then, b.otherwise):
            _selects_in(part, found)
    elif isinstance(b, ListOf):
        for item in b.items:
            _selects_in(item, found)
    elif isinstance(b, DictOf):
        for _, item in b.items:
            _selects_in(item, found)
    elif isinstance(b, FieldOf):
        _selects_in(b.base, found)


def _promises_for(builder: Builder, binding: Binding, type_: Any) -> Any:
    """What the caller of a sub-workflow sees for its output binding."""
    if isinstance(binding, OutputRef) and binding.index is None:
        if hasattr(typecheck.strip_annotated(type_), "_fields"):  # a NamedTuple: unpackable
            return NamedPromises(builder, binding, typecheck.strip_annotated(type_), "sub-workflow")
    if isinstance(binding, (OutputRef, InputRef, FieldOf, Select)):
        return Promise(builder, binding, type_, "sub-workflow output")
    if isinstance(binding, Literal):
        return binding.value
    if isinstance(binding, ListOf):
        outs, _ = typecheck.output_types(type_)
        items = [
            _promises_for(builder, b, outs[i][1] if i < len(outs) else Any)
            for i, b in enumerate(binding.items)
        ]
        return tuple(items) if binding.as_tuple else items
    return {k: _promises_for(builder, b, Any) for k, b in binding.items}


@overload
def workflow(fn: Callable[P, R], /) -> WorkflowDef[P, R]: ...


@overload
def workflow(
    *, name: str | None = None, schedule: str | None = None
) -> Callable[[Callable[P, R]], WorkflowDef[P, R]]: ...


def workflow(fn: Any = None, /, *, name: str | None = None, schedule: str | None = None) -> Any:
    """Declare a workflow; its body is traced once, now, into ``.graph``::

    @fk.workflow
    def pipeline(n: int = 1000) -> float:
        data = load(n)
        return score(train(data), data)

    ``schedule="0 * * * *"``: a cron expression; ``flowkit scheduler FILE.py`` keeps a
    schedule named after the workflow firing it (see docs/automation.md).
    """
    if fn is not None:
        return WorkflowDef(fn, name, schedule)
    return lambda f: WorkflowDef(f, name, schedule)
