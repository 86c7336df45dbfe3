"""Tracing: the placeholders a workflow body sees and the builder that records calls.

While ``@fk.workflow`` (or an ``@fk.dynamic`` body at run time) runs, a :class:`Builder` is
active in a context variable. Calling a task then adds a node to the builder and returns
a :class:`Promise` (or a tuple of them for multi-output tasks) instead of running
anything. A promise knows only its static type; using it as a value (``if p:``,
``p + 1``, ``len(p)``, iterating it) raises :class:`~flowkit.errors.GraphError`, because
its value does not exist yet. Reading a field (``cfg.lr``, ``report.per_class["a"]``) gives
a promise of the field (:mod:`flowkit.fields`): a path in the graph, no task.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, NoReturn

from flowkit import fields, typecheck
from flowkit.errors import GraphError
from flowkit.fieldpath import Step, describe
from flowkit.graph import (
    Binding,
    DictOf,
    FieldOf,
    Guard,
    ListOf,
    Literal,
    Node,
    OutputRef,
    refs_in,
)

_FLOWKIT_DIR = os.path.dirname(os.path.abspath(__file__))
_current: ContextVar[Builder | None] = ContextVar("flowkit_builder", default=None)


def current_builder() -> Builder | None:
    """The builder of the workflow being traced, or None outside tracing."""
    return _current.get()


_INSIDE_FLOWKIT = (_FLOWKIT_DIR, os.path.join(_FLOWKIT_DIR, "ml"))


@functools.lru_cache(maxsize=1024)
def _file_info(filename: str) -> tuple[bool, str]:
    """(is it flowkit's own code, the name to show) — cached: a workflow calls tasks from a
    handful of files, and the path functions cost (benchmarks/RESULTS.md, Design measurements)."""
    inside = os.path.dirname(os.path.abspath(filename)) in _INSIDE_FLOWKIT
    try:
        shown = os.path.relpath(filename)
    except ValueError:  # another drive (Windows)
        shown = filename
    return inside, shown


def caller_location() -> str:
    """``file:line`` of the innermost frame outside flowkit (the user's call site)."""
    frame = sys._getframe(1)
    while frame is not None and _file_info(frame.f_code.co_filename)[0]:
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "<unknown>"
    return f"{_file_info(frame.f_code.co_filename)[1]}:{frame.f_lineno}"


class Builder:
    """Collects the nodes of one graph while a workflow body is traced."""

    def __init__(self, workflow: str, prefix: str = "") -> None:
        self.workflow = workflow
        self.prefix = prefix
        self.nodes: dict[str, Node] = {}
        self._taken: set[str] = set()
        self._next_suffix: dict[str, int] = {}  # base id -> the suffix to try next
        self.guards: list[Guard] = []  # the fk.cond branches being traced, outermost first

    def __enter__(self) -> Builder:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)

    def new_id(self, name: str) -> str:
        """A readable unique node id: ``train``, then ``train_2``, ``train_3``…"""
        base = self.prefix + name
        node_id, n = base, self._next_suffix.get(base, 1)
        if n > 1:
            node_id = f"{base}_{n}"
        while node_id in self._taken:  # (only when a user's name looks like `train_2`)
            n += 1
            node_id = f"{base}_{n}"
        self._next_suffix[base] = n + 1
        self._taken.add(node_id)
        return node_id

    def add(self, node: Node) -> None:
        if self.guards:  # traced inside a branch of fk.cond: runs only when it is taken
            node = dataclasses.replace(node, guards=(*self.guards, *node.guards))
        self.nodes[node.id] = node
        self._taken.add(node.id)

    def binding_of(self, value: Any) -> Binding:
        """Turn what the workflow body passed as an argument into a binding."""
        if type(value) in _PLAIN:  # the common literal (a 100k-item list of them): no checks
            return Literal(value)
        if isinstance(value, NamedPromises) and value:
            self.binding_of(value[0])  # refuses promises of another workflow
            return value._whole
        if isinstance(value, Promise):
            if value._builder is not self:
                raise GraphError(
                    f"workflow `{self.workflow}`: a promise from another workflow "
                    f"({value._builder.workflow!r}) was used here; pass it as an input instead"
                )
            return value._binding
        if isinstance(value, (list, tuple)) and not _is_namedtuple(value):
            items = tuple(self.binding_of(v) for v in value)
            if any(not isinstance(b, Literal) for b in items):
                return ListOf(items, as_tuple=isinstance(value, tuple))
            return Literal(value)
        if isinstance(value, dict):
            pairs = tuple((k, self.binding_of(v)) for k, v in value.items())
            if any(not isinstance(b, Literal) for _, b in pairs):
                if not all(isinstance(k, str) for k, _ in pairs):
                    raise GraphError("a dict holding promises must have string keys")
                return DictOf(pairs)
            return Literal(value)
        _refuse_promises_inside(self, value)
        return Literal(value)


_PLAIN = frozenset({int, float, str, bool, bytes, type(None)})


def _refuse_promises_inside(builder: Builder, value: Any) -> None:
    """A dataclass or NamedTuple built from promises in a workflow body would carry
    placeholders to run time (and fail there, inside the user's class): refuse it now."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [(f.name, getattr(value, f.name, None)) for f in dataclasses.fields(value)]
    elif _is_namedtuple(value):
        items = list(zip(value._fields, value, strict=False))
    else:
        return
    for name, item in items:
        if isinstance(item, (Promise, NamedPromises)):
            cls = type(value).__qualname__
            raise GraphError(
                f"workflow `{builder.workflow}`: `{cls}(...)` is built at {caller_location()} "
                f"with a promise for field `{name}`. Inside @fk.workflow a promise is a "
                f"placeholder, so the {cls} would hold placeholders, not values. Build it in "
                f"a task: `@fk.task def make_{cls.lower()}({name}: ...) -> {cls}: "
                f"return {cls}({name}={name}, ...)`, and call that task here"
            )
        _refuse_promises_inside(builder, item)


def _has_field(tp: Any, name: str) -> bool:
    found = fields.attribute_fields(typecheck.strip_annotated(tp))
    return found is not None and name in found


def _base_what(what: str) -> str:
    return what.split(", field `")[0]


def _is_namedtuple(value: object) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


class Promise:
    """A placeholder for a value that a task will produce when the workflow runs."""

    __slots__ = ("_binding", "_builder", "_type", "_what")

    def __init__(self, builder: Builder, binding: Binding, type_: Any, what: str):
        self._builder = builder
        self._binding: Binding = binding
        self._type = type_
        self._what = what

    @property
    def type(self) -> Any:
        """The static type of the value this promise stands for."""
        return self._type

    @property
    def node(self) -> str | None:
        """Id of the producing node (None for a workflow input or an fk.cond result)."""
        refs = list(refs_in(self._binding))
        return refs[0].node if len(refs) == 1 else None

    def __getattr__(self, name: str) -> Promise:
        """``p.field``: a promise of a field of a dataclass or NamedTuple (no task)."""
        try:
            tp = object.__getattribute__(self, "_type")
        except AttributeError:
            raise AttributeError(name) from None  # not initialised (copying, unpickling)
        if name.startswith("__") or (name.startswith("_") and not _has_field(tp, name)):
            raise AttributeError(name)  # protocols probed by Python and tools, not fields
        step, field_type = fields.attr_step(tp, name, self._described())
        return self._field(step, field_type)

    def __getitem__(self, item: object) -> Any:
        """``p["key"]`` / ``p[0]``: a promise of a dict key or tuple/list item (no task)."""
        step, field_type = fields.item_step(self._type, item, self._described())
        return self._field(step, field_type)

    def _described(self) -> str:
        where = caller_location()
        return f"workflow `{self._builder.workflow}`: the promise for the {self._what} at {where}"

    def _field(self, step: Step, field_type: Any) -> Promise:
        b = self._binding
        binding = (
            FieldOf(b.base, (*b.path, step)) if isinstance(b, FieldOf) else FieldOf(b, (step,))
        )
        what = f"{_base_what(self._what)}, field `{describe(binding.path)}`"
        return Promise(self._builder, binding, field_type, what)

    def __repr__(self) -> str:
        return f"<Promise {self._what}: {getattr(self._type, '__name__', self._type)}>"

    def _misuse(self, action: str) -> NoReturn:
        raise GraphError(
            f"workflow `{self._builder.workflow}`: cannot "
            f"{action.format(p=f'the promise for the {self._what}')} at {caller_location()}. "
            "Inside @fk.workflow a task call returns a placeholder, not a value, so it cannot "
            "drive Python control flow or arithmetic. Move this logic into a "
            "task, or into an @fk.dynamic task whose body runs with real values."
        )

    def __bool__(self) -> bool:
        self._misuse("use {p} as a bool (if/while/and/or)")

    def __len__(self) -> int:
        self._misuse("take len() of {p}")

    def __iter__(self) -> Iterator[Any]:
        self._misuse("iterate over {p}")

    def __contains__(self, item: object) -> bool:
        self._misuse("test membership in {p}")

    def __index__(self) -> int:
        self._misuse("use {p} as an integer")

    def __int__(self) -> int:
        self._misuse("convert {p} to int")

    def __float__(self) -> float:
        self._misuse("convert {p} to float")

    def __format__(self, spec: str) -> str:
        self._misuse("format {p} as text")

    def __str__(self) -> str:  # repr() stays available for debugging
        self._misuse("convert {p} to str")

    def __call__(self, *a: object, **k: object) -> Any:
        self._misuse("call {p}")

    def __lt__(self, other: object) -> bool:
        self._misuse("compare {p}")

    __le__ = __gt__ = __ge__ = __lt__

    # `p == 3` would otherwise be a silent False (and `if p == 3:` a silently wrong branch).
    def __eq__(self, other: object) -> bool:
        self._misuse("compare {p} with ==")

    def __ne__(self, other: object) -> bool:
        self._misuse("compare {p} with !=")

    __hash__ = object.__hash__  # promises stay usable as dict keys and in sets (by identity)


def _binary(name: str) -> Any:
    def op(self: Promise, *other: object) -> Any:
        self._misuse(f"apply `{name}` to {{p}}")

    op.__name__ = name
    return op


for _op in (
    "add sub mul truediv floordiv mod pow matmul and or xor lshift rshift "
    "radd rsub rmul rtruediv rfloordiv rmod rpow rmatmul rand ror rxor neg pos abs invert"
).split():
    setattr(Promise, f"__{_op}__", _binary(_op))


class NamedPromises(tuple):  # type: ignore[type-arg]
    """The promises of a NamedTuple-returning task: unpack them, use ``.field``, or pass the
    whole value on (it then stays the NamedTuple the task returned, not a rebuilt tuple)."""

    _fields: tuple[str, ...] = ()
    _type: Any = None
    _whole: OutputRef

    def __new__(cls, builder: Builder, whole: OutputRef, type_: Any, what: str) -> NamedPromises:
        outputs = typecheck.namedtuple_fields(type_)
        obj = super().__new__(
            cls,
            tuple(
                Promise(builder, OutputRef(whole.node, i), tp, f"output `{name}` of {what}")
                for i, (name, tp) in enumerate(outputs)
            ),
        )
        obj._fields, obj._type, obj._whole = tuple(n for n, _ in outputs), type_, whole
        return obj

    def __getattr__(self, name: str) -> Promise:
        try:
            result: Promise = self[self._fields.index(name)]
            return result
        except ValueError:
            if name.startswith("__"):
                raise AttributeError(name) from None
            shown = ", ".join(f"{f}: {typecheck.type_repr(t)}" for f, t in self._outputs())
            raise fields.FieldError(
                f"{typecheck.type_repr(self._type)} at {caller_location()}: no output named "
                f"{name!r}; outputs: {self._fields} ({shown})"
            ) from None

    def _outputs(self) -> tuple[tuple[str, Any], ...]:
        return tuple(typecheck.namedtuple_fields(self._type))
