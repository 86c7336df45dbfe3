"""``@fk.task`` and ``@fk.dynamic``: plain functions with metadata attached.

A :class:`TaskDef` keeps the undecorated function (``task.fn``) and the options. Called
outside a workflow it simply calls the function (no cache, no store), so tasks stay
unit-testable. Called while a workflow is being traced it adds a node to the graph,
checks the types of its arguments against its annotations, and returns promises.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, Union, overload

from flowkit import serialize, tolerance, typecheck
from flowkit.errors import GraphError, TypeMismatchError
from flowkit.fieldpath import describe
from flowkit.graph import Binding, FieldOf, InputRef, Literal, Node, OutputRef, Select
from flowkit.promise import Builder, NamedPromises, Promise, caller_location, current_builder
from flowkit.reprs import short_repr
from flowkit.resources import Resources
from flowkit.secret import Secret
from flowkit.taskspec import (
    DYNAMIC_OPTIONS,
    TASK_OPTIONS,
    TaskOptions,
    TaskSpec,
    map_length,
)

P = ParamSpec("P")
R = TypeVar("R")


class unmapped:
    """Pass ``value`` whole to every call of a ``task.map``, even when its type would map."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class TaskDef(Generic[P, R]):
    """A decorated task. See :func:`task` for the options (:class:`TaskOptions` lists them).

    ``spec`` is what a graph node holds (:class:`TaskSpec`); the attributes below it are the
    same facts, kept on the task for users and tests (``task.retries``, ``task.fn``...).
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        dynamic: bool = False,
        **options: Any,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@fk.task decorates a function, got {fn!r}")
        self.fn = fn
        self.name = name or fn.__name__
        self.dynamic = dynamic
        self.signature = typecheck.resolve_signature(fn)
        # binding call arguments, per call
        self._inspect_signature = self.signature.inspect_signature or inspect.signature(fn)
        self.spec = TaskSpec(self.name, fn, self.signature, TaskOptions(**options), dynamic)
        self.param_types = {p.name: p.type for p in self.signature.params}
        self.return_type = self.signature.return_type
        self.outputs, self.multi_output = list(self.spec.outputs), self.spec.multi_output
        # classes the task names may be rebuilt from stored JSON (never names from the store)
        for hint in (*self.param_types.values(), self.return_type):
            serialize.allow_annotation(hint)
        functools.update_wrapper(self, fn)

    # The options, read from the spec (one list: TaskOptions).
    @property
    def options(self) -> TaskOptions:
        return self.spec.options

    @property
    def cache(self) -> bool:
        return self.spec.options.cache

    @property
    def version(self) -> str | None:
        return self.spec.options.version

    @property
    def cache_ignore(self) -> frozenset[str]:
        return self.spec.options.cache_ignore

    @property
    def retries(self) -> int:
        return self.spec.options.retries

    @property
    def retry_delay(self) -> float:
        return self.spec.options.retry_delay

    @property
    def timeout(self) -> float | None:
        return self.spec.options.timeout

    @property
    def resources(self) -> Resources:
        return self.spec.options.resources

    def __repr__(self) -> str:
        kind = "dynamic" if self.dynamic else "task"
        return f"<{kind} {self.name}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        builder = current_builder()
        if builder is None:
            return self.fn(*args, **kwargs)
        result: R = self._trace(builder, args, kwargs, caller_location())
        return result

    def map(self, **kwargs: Any) -> Any:
        """Fan out: call the task once per item of the ``list[P]`` arguments.

        An argument of type ``list[P]`` bound to a parameter of type ``P`` is mapped over
        (several mapped arguments are zipped and must have equal lengths); every other
        argument, and any wrapped in :class:`unmapped`, is passed whole to each call. The
        result is a list, in input order.

        ``min_success=0.9``: tolerate failed items (:mod:`flowkit.tolerance`): an item that
        still fails after its retries gives None (the result is ``list[R | None]``), and the
        run fails only when fewer than that share of the items can succeed.
        """
        builder = current_builder()
        location = caller_location()
        min_success = self._min_success(kwargs, location)
        if builder is None:
            return self._map_now(kwargs, location, min_success)
        return self._trace_map(builder, kwargs, location, min_success)

    def _min_success(self, kwargs: dict[str, Any], where: str) -> float | None:
        """Take ``min_success`` out of a map's arguments (checked), or None."""
        if tolerance.KEYWORD not in kwargs:
            return None
        if tolerance.KEYWORD in self.param_types:
            raise GraphError(
                f"task `{self.name}`.map at {where}: the task has a parameter named "
                f"`{tolerance.KEYWORD}`, which .map(...) keeps for the share of items that must "
                "succeed; rename the parameter"
            )
        value = kwargs.pop(tolerance.KEYWORD)
        return None if value is None else tolerance.check_min_success(self.name, where, value)

    # -- tracing --------------------------------------------------------------------------

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any], where: str) -> dict[str, Any]:
        try:
            bound = self._inspect_signature.bind(*args, **kwargs)
        except TypeError as e:
            raise GraphError(f"task `{self.name}` called at {where}: {e}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def _trace(
        self, builder: Builder, args: tuple[Any, ...], kwargs: dict[str, Any], where: str
    ) -> Any:
        values = self._bind(args, kwargs, where)
        bindings = []
        for pname, value in values.items():
            if isinstance(value, unmapped):
                raise GraphError(
                    f"task `{self.name}` called at {where}: fk.unmapped(...) for parameter "
                    f"`{pname}` only has a meaning inside `{self.name}.map(...)`; pass the value "
                    "directly"
                )
            binding = builder.binding_of(value)
            check_binding(
                builder,
                f"task `{self.name}`",
                pname,
                self.param_types[pname],
                binding,
                value,
                where,
            )
            bindings.append((pname, binding))
        node = Node(
            id=builder.new_id(self.name),
            task=self.spec,
            bindings=tuple(bindings),
            output_type=self.return_type,
            location=where,
        )
        builder.add(node)
        return self._promises(builder, node.id)

    def _promises(self, builder: Builder, node_id: str) -> Any:
        if not self.multi_output:
            return Promise(builder, OutputRef(node_id), self.return_type, f"output of `{node_id}`")
        if hasattr(self.return_type, "_fields"):
            return NamedPromises(builder, OutputRef(node_id), self.return_type, f"`{node_id}`")
        return tuple(
            Promise(builder, OutputRef(node_id, i), tp, f"output `{oname}` of `{node_id}`")
            for i, (oname, tp) in enumerate(self.outputs)
        )

    def _split_map_args(
        self, kwargs: dict[str, Any], where: str
    ) -> tuple[dict[str, Any], set[str]]:
        """Bind ``map`` arguments and decide which ones are mapped (the type-driven rule)."""
        whole = {k for k, v in kwargs.items() if isinstance(v, unmapped)}
        plain = {k: (v.value if isinstance(v, unmapped) else v) for k, v in kwargs.items()}
        values = self._bind((), plain, where)
        mapped: set[str] = set()
        for pname, value in values.items():
            if pname in whole or pname not in kwargs:
                continue
            ptype = self.param_types[pname]
            if isinstance(value, Promise):
                if typecheck.map_binding(value.type, ptype) == "mapped":
                    mapped.add(pname)
            elif isinstance(value, (list, tuple)) and not hasattr(type(value), "_fields"):
                if all(_item_fits(v, ptype) for v in value):
                    mapped.add(pname)
        if not mapped:
            raise GraphError(
                f"task `{self.name}`.map at {where}: no argument is mapped. Pass a list[P] for a "
                f"parameter of type P (parameters: "
                + ", ".join(f"{p}: {typecheck.type_repr(t)}" for p, t in self.param_types.items())
                + ")"
            )
        return values, mapped

    def _trace_map(
        self,
        builder: Builder,
        kwargs: dict[str, Any],
        where: str,
        min_success: float | None = None,
    ) -> Promise:
        if self.dynamic:
            # The engine runs a dynamic body once per node, with whole values.
            raise GraphError(
                f"@fk.dynamic task `{self.name}`.map at {where}: a dynamic task cannot be mapped; "
                "call it in a loop inside another @fk.dynamic task instead"
            )
        values, mapped = self._split_map_args(kwargs, where)
        lengths = {p: len(values[p]) for p in mapped if isinstance(values[p], (list, tuple))}
        map_length(self.name, where, lengths)
        bindings = []
        for pname, value in values.items():
            binding = builder.binding_of(value)
            ptype = self.param_types[pname]
            if pname not in mapped:
                check_binding(builder, f"task `{self.name}`", pname, ptype, binding, value, where)
            bindings.append((pname, binding))
        node = Node(
            id=builder.new_id(self.name),
            task=self.spec,
            bindings=tuple(bindings),
            output_type=typecheck.list_of(self.return_type)
            if min_success is None
            else tolerance.output_type(self.return_type),
            location=where,
            mapped=tuple(p for p in values if p in mapped),
            min_success=min_success,
        )
        builder.add(node)
        return Promise(
            builder, OutputRef(node.id), node.output_type, f"mapped output of `{node.id}`"
        )

    def _map_now(
        self, kwargs: dict[str, Any], where: str, min_success: float | None = None
    ) -> list[Any]:
        values, mapped = self._split_map_args(kwargs, where)
        n = map_length(self.name, where, {p: len(values[p]) for p in mapped})
        fn: Callable[..., Any] = self.fn
        if min_success is None:
            return [
                fn(**{p: (v[i] if p in mapped else v) for p, v in values.items()}) for i in range(n)
            ]
        return tolerance.map_now(
            self.name,
            min_success,
            [
                functools.partial(
                    fn, **{p: (v[i] if p in mapped else v) for p, v in values.items()}
                )
                for i in range(n)
            ],
        )


def _item_fits(value: Any, ptype: Any) -> bool:
    if isinstance(value, Promise):
        return typecheck.is_assignable(value.type, ptype)
    return typecheck.check_value(value, ptype)


def static_type(value: Any) -> Any:
    """The static type of what a workflow body passes: a promise's type, or the inferred
    type of a plain value (lists/tuples/dicts holding promises included)."""
    if isinstance(value, Promise):
        return value.type
    if isinstance(value, NamedPromises):
        return value._type
    if isinstance(value, (list, tuple)) and not hasattr(type(value), "_fields"):
        if any(isinstance(v, Promise) for v in value) or any(
            isinstance(v, (list, tuple, dict)) for v in value
        ):
            items = [static_type(v) for v in value]
            if isinstance(value, tuple):
                return tuple[tuple(items)] if items else tuple[()]  # type: ignore[misc]
            return list[Union[tuple(items)]] if items else list[Any]  # type: ignore[misc]  # noqa: UP007
    if isinstance(value, dict) and any(isinstance(v, Promise) for v in value.values()):
        vals = [static_type(v) for v in value.values()]
        return dict[str, Union[tuple(vals)]]  # type: ignore[misc]  # noqa: UP007
    return typecheck.infer_type(value)


def describe_source(builder: Builder, binding: Binding, value: Any) -> str:
    """How an error message names where a value comes from."""
    if isinstance(binding, OutputRef):
        node = builder.nodes.get(binding.node)
        task = node.name if node else binding.node
        out = "" if binding.index is None else f" output `{_output_name(node, binding.index)}`"
        return f"task `{task}`{out or ' output'}"
    if isinstance(binding, InputRef):
        return f"workflow input `{binding.name}`"
    if isinstance(binding, Literal):
        return f"the value {short_repr(binding.value)}"
    if isinstance(binding, FieldOf):
        return f"{describe_source(builder, binding.base, None)} field `{describe(binding.path)}`"
    if isinstance(binding, Select):
        return f"the result of fk.cond `{binding.cond}`"
    return "a literal list or dict"


def _output_name(node: Node | None, index: int) -> str:
    if node is None:
        return str(index)
    return str(node.task.outputs[index][0])


def check_binding(
    builder: Builder,
    consumer: str,
    pname: str,
    ptype: Any,
    binding: Binding,
    value: Any,
    where: str,
) -> None:
    """Raise :class:`TypeMismatchError` when ``binding`` cannot feed parameter ``pname``."""
    if isinstance(binding, Literal):
        src_type = typecheck.infer_type(binding.value)
        ok = typecheck.is_assignable(src_type, ptype)
        if not ok and not isinstance(binding.value, (list, tuple, set, frozenset, dict)):
            # A scalar is checked by value: "ks" fits Literal["psi", "ks"] though str does not.
            ok = typecheck.check_value(binding.value, ptype)
    else:
        src_type = static_type(value)
        ok = typecheck.is_assignable(src_type, ptype)
    if not ok and src_type is Secret and typecheck.strip_annotated(ptype) is str:
        ok = True  # the task gets the secret's text (flowkit.secret.SecretText)
    if not ok:
        _mismatch(
            builder,
            consumer,
            pname,
            ptype,
            describe_source(builder, binding, value),
            src_type,
            where,
            _tolerant_hint(builder, binding),
        )


def _tolerant_hint(builder: Builder, binding: Binding) -> str:
    """Where the Nones of a tolerant map's output come from, when the edge reads one."""
    node = builder.nodes.get(binding.node) if isinstance(binding, OutputRef) else None
    if node is None or node.min_success is None:
        return ""
    return tolerance.mismatch_hint(node.name, node.min_success)


_GENERIC_FIX = "Fix: make the annotations agree, or convert the value in a task in between."


def _mismatch(
    builder: Builder,
    consumer: str,
    pname: str,
    ptype: Any,
    source: str,
    src_type: Any,
    where: str,
    hint: str = "",
) -> None:
    raise TypeMismatchError(
        f"workflow `{builder.workflow}`: {source} ({typecheck.type_repr(src_type)}) cannot be "
        f"passed to {consumer} parameter `{pname}` ({typecheck.type_repr(ptype)}) at "
        f"{where}{hint}. {typecheck.explain_mismatch(src_type, ptype) or _GENERIC_FIX}"
    )


@overload
def task(fn: Callable[P, R], /) -> TaskDef[P, R]: ...


@overload
def task(
    *,
    cache: bool = False,
    version: str | None = None,
    cache_ignore: Sequence[str] = (),
    retries: int = 0,
    retry_delay: float = 0.0,
    timeout: float | None = None,
    resources: Resources | None = None,
    keep: bool = True,
    concurrency: int | None = None,
    pool: str | None = None,
    name: str | None = None,
) -> Callable[[Callable[P, R]], TaskDef[P, R]]: ...


def task(fn: Any = None, /, **options: Any) -> Any:
    """Declare a task. Bare (``@fk.task``) or with options::

        @fk.task(cache=True, retries=2, retry_delay=0.5, timeout=600,
                 resources=fk.Resources(cpus=2), version=None, cache_ignore=("verbose",))
        def train(data: pa.Table, depth: int, verbose: bool = False) -> Model: ...

    ``concurrency=4``: at most 4 calls of this task in flight at once in a run, on every
    backend; ``pool="api"``: share the limit ``fk.run(..., limits={"api": 2})`` gives with the
    other tasks of that pool (:mod:`flowkit.limits`).

    ``retry_delay`` is the first back-off; it doubles after each failed attempt. Every
    call's outputs are kept in the store (``fk.runs`` reads them back); ``keep=False`` opts a
    huge intermediate out (a cached task's outputs are stored all the same).
    """
    if fn is not None:
        return _make(fn, options, TASK_OPTIONS, "task")
    return lambda f: _make(f, options, TASK_OPTIONS, "task")


@overload
def dynamic(fn: Callable[P, R], /) -> TaskDef[P, R]: ...


@overload
def dynamic(
    *,
    cache: bool = False,
    version: str | None = None,
    cache_ignore: Sequence[str] = (),
    resources: Resources | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    name: str | None = None,
) -> Callable[[Callable[P, R]], TaskDef[P, R]]: ...


def dynamic(fn: Any = None, /, **options: Any) -> Any:
    """A task whose body runs at run time with real values and may call tasks.

    The calls build a sub-graph that the engine then runs (data-dependent fan-out,
    branches, loops). The body returns promises, lists of promises, or plain values::

        @fk.dynamic
        def retrain_if_drifted(report: DriftReport, data: pa.Table) -> str:
            if report.drifted:
                return promote(train(data))
            return "kept"

    ``cache=True`` keys the node like a task (its body's code, which follows the tasks it calls,
    and its inputs): a hit serves the output without running the body or its sub-graph.
    ``resources=`` is the default of the tasks the body calls (one that declares its own keeps
    them): the body itself runs in the driver.
    """
    if fn is not None:
        return _make(fn, options, DYNAMIC_OPTIONS, "dynamic")
    return lambda f: _make(f, options, DYNAMIC_OPTIONS, "dynamic")


def _make(
    fn: Any, options: dict[str, Any], allowed: tuple[str, ...], kind: str
) -> TaskDef[Any, Any]:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        note = (
            " (its body runs in the driver; set a timeout on the tasks it calls)"
            if kind == "dynamic"
            else ""
        )
        raise TypeError(
            f"@fk.{kind} on `{getattr(fn, '__name__', fn)}`: unknown option(s) "
            f"{', '.join(unknown)}; the options are {', '.join(allowed)}{note}"
        )
    return TaskDef(fn, dynamic=kind == "dynamic", **options)
