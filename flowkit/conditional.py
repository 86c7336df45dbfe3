"""``fk.cond``: a typed branch in the static graph.

``fk.cond(pred, then=A, otherwise=B, **inputs)`` traces *both* branches at decoration (each
branch is called with ``inputs``, so its inputs are type-checked like any edge) and returns a
promise of their unified return type. Each node a branch adds carries a
:class:`~flowkit.graph.Guard` (``cond``, ``pred``, ``when``); the result is a
:class:`~flowkit.graph.Select` binding. At run time the engine reads the predicate when a
guarded node is ready (its predicate is upstream of it): the branch taken runs, the other's
nodes are recorded as ``skipped`` and never run, and readers of the result get the taken
branch's value (:mod:`flowkit.values`).

Why guards rather than a "cond node" holding two sub-graphs: the branches stay ordinary nodes,
so caching, retries, maps, records, the UI and ``to_mermaid()`` (a rhombus per decision) treat
them like any other node; nested conds are guards of guards (outermost read first).

``fk.cond.map(preds, then=A, otherwise=B, **inputs)`` is the cond *per item* of a map: ``A``
and ``B`` are tasks mapped over ``inputs`` (as ``task.map`` maps them) under a per-item guard,
and item ``i`` of the result comes from ``A`` when ``preds[i]`` is true, else from ``B``; the
other branch's item ``i`` is recorded as skipped.

Outside a workflow, ``fk.cond`` simply calls the branch the (plain) predicate picks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowkit import typecheck
from flowkit.errors import GraphError, TypeMismatchError
from flowkit.graph import Binding, Guard, Literal, Select
from flowkit.promise import Builder, NamedPromises, Promise, caller_location, current_builder
from flowkit.task import TaskDef, static_type
from flowkit.workflow import WorkflowDef


class Cond:
    """``fk.cond`` (call it) and ``fk.cond.map`` (see the module docstring)."""

    def __call__(
        self,
        pred: Any,
        *,
        then: Callable[..., Any],
        otherwise: Callable[..., Any],
        **inputs: Any,
    ) -> Any:
        return _cond(pred, then=then, otherwise=otherwise, **inputs)

    def map(
        self, preds: Any, *, then: TaskDef[..., Any], otherwise: TaskDef[..., Any], **inputs: Any
    ) -> Any:
        """Item ``i``: ``then(item i of inputs)`` when ``preds[i]``, else ``otherwise(...)``::

            kinds = is_image.map(f=files)
            scores = fk.cond.map(kinds, then=score_image, otherwise=score_text, f=files)

        ``preds``: a promise of ``list[bool]`` as long as the mapped lists. ``then`` and
        ``otherwise``: tasks, mapped over ``inputs`` as ``task.map`` maps them (``fk.unmapped``
        passes a value whole). The result is ``list[R]``, R their unified return type.
        """
        return _cond_map(preds, then, otherwise, inputs)

    def __repr__(self) -> str:
        return "fk.cond"


def _cond(
    pred: Any,
    *,
    then: Callable[..., Any],
    otherwise: Callable[..., Any],
    **inputs: Any,
) -> Any:
    """``then(**inputs)`` when ``pred`` is true, else ``otherwise(**inputs)``, in the graph::

        @fk.workflow
        def pipeline(data: Table) -> Model:
            return fk.cond(is_small(data), then=train_fast, otherwise=train_full, data=data)

    ``pred``: a promise of ``bool`` (or a plain bool). ``then`` / ``otherwise``: tasks or
    workflows (or any function that calls them, such as a lambda taking ``inputs``); both are
    traced now, and their return types must agree. The result is a promise of that type;
    at run time only the branch taken runs, the other's calls are recorded as skipped.
    """
    builder = current_builder()
    if builder is None:  # a plain call: run the branch picked
        if isinstance(pred, Promise):
            raise GraphError("fk.cond got a promise outside a workflow")  # (cannot happen)
        return (then if pred else otherwise)(**inputs)
    where = caller_location()
    pred_binding = _predicate(builder, pred, where)
    for name, branch in (("then", then), ("otherwise", otherwise)):
        if not callable(branch) or isinstance(branch, Promise):
            raise GraphError(
                f"workflow `{builder.workflow}`: fk.cond at {where}: `{name}=` must be a task, a "
                f"workflow or a function calling them, not {type(branch).__name__}"
            )
    cond_id = builder.new_id("cond")
    results = []
    for branch, when in ((then, True), (otherwise, False)):
        builder.guards.append(Guard(cond_id, pred_binding, when))
        try:
            results.append(branch(**inputs))
        finally:
            builder.guards.pop()
    type_ = _unify(builder, cond_id, where, (then, otherwise), results)
    binding = Select(
        cond_id, pred_binding, builder.binding_of(results[0]), builder.binding_of(results[1])
    )
    return Promise(builder, binding, type_, f"result of fk.cond `{cond_id}`")


def _cond_map(
    preds: Any, then: TaskDef[..., Any], otherwise: TaskDef[..., Any], inputs: dict[str, Any]
) -> Any:
    builder = current_builder()
    where = caller_location()
    if builder is None:  # a plain call: item by item, only the branch picked
        out = []
        for i, p in enumerate(preds):
            branch = then if p else otherwise
            values, mapped = branch._split_map_args(dict(inputs), where)
            out.append(branch.fn(**{k: (v[i] if k in mapped else v) for k, v in values.items()}))
        return out
    for name, branch in (("then", then), ("otherwise", otherwise)):
        if not isinstance(branch, TaskDef) or branch.dynamic:
            raise GraphError(
                f"workflow `{builder.workflow}`: fk.cond.map at {where}: `{name}=` must be a task "
                f"(it is mapped over the inputs), not {branch!r}"
            )
    if not isinstance(preds, Promise) or not typecheck.is_assignable(preds.type, list[bool]):
        shown = (
            typecheck.type_repr(preds.type) if isinstance(preds, Promise) else type(preds).__name__
        )
        raise TypeMismatchError(
            f"workflow `{builder.workflow}`: fk.cond.map at {where}: the predicates must be a "
            f"promise of list[bool] (a task returning them, or `is_x.map(...)`), not {shown}"
        )
    pred_binding = builder.binding_of(preds)
    cond_id = builder.new_id("cond")
    results = []
    for branch, when in ((then, True), (otherwise, False)):
        builder.guards.append(Guard(cond_id, pred_binding, when, per_item=True))
        try:
            results.append(branch.map(**inputs))
        finally:
            builder.guards.pop()
    type_ = _unify(builder, cond_id, where, (then, otherwise), results)
    binding = Select(
        cond_id,
        pred_binding,
        builder.binding_of(results[0]),
        builder.binding_of(results[1]),
        per_item=True,
    )
    return Promise(builder, binding, type_, f"result of fk.cond.map `{cond_id}`")


def _predicate(builder: Builder, pred: Any, where: str) -> Binding:
    if isinstance(pred, bool):
        return Literal(pred)
    if not isinstance(pred, Promise):
        raise TypeMismatchError(
            f"workflow `{builder.workflow}`: fk.cond at {where}: the predicate must be a promise "
            f"of bool (a task returning bool) or a bool, not {type(pred).__name__}"
        )
    if not typecheck.is_assignable(pred.type, bool):
        raise TypeMismatchError(
            f"workflow `{builder.workflow}`: fk.cond at {where}: the predicate is the "
            f"{pred._what} ({typecheck.type_repr(pred.type)}), not a bool; compute the bool in "
            "a task (`@fk.task def is_big(x: ...) -> bool`) and pass its promise"
        )
    return builder.binding_of(pred)


def branch_name(branch: Any) -> str:
    if isinstance(branch, (TaskDef, WorkflowDef)):
        return f"{'task' if isinstance(branch, TaskDef) else 'workflow'} `{branch.name}`"
    return f"`{getattr(branch, '__qualname__', type(branch).__name__)}`"


def _unify(
    builder: Builder, cond_id: str, where: str, branches: tuple[Any, Any], results: list[Any]
) -> Any:
    """The type of the result: the branches' common type (one assignable to the other: the
    wider), else a :class:`TypeMismatchError` naming both branches."""
    a, b = (_result_type(r) for r in results)
    if typecheck.is_assignable(a, b):
        return b
    if typecheck.is_assignable(b, a):
        return a
    then, otherwise = (branch_name(x) for x in branches)
    raise TypeMismatchError(
        f"workflow `{builder.workflow}`: fk.cond `{cond_id}` at {where}: the branches return "
        f"different types: then={then} returns {typecheck.type_repr(a)}, otherwise={otherwise} "
        f"returns {typecheck.type_repr(b)}. Make them return one type (annotate both "
        f"`-> {typecheck.type_repr(a)} | {typecheck.type_repr(b)}` if either may come out)"
    )


def _result_type(result: Any) -> Any:
    if isinstance(result, NamedPromises):
        return result._type
    if result is None:
        return type(None)
    return static_type(result)


#: ``fk.cond``: a typed branch in the graph; ``fk.cond.map``: one per item of a map.
cond = Cond()


__all__ = ["Cond", "cond"]
