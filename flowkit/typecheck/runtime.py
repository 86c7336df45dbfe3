"""Runtime side of type hints: cheap checks of values, and the static type of a constant.

Policy
------
Runtime checks (:func:`check_value`) are cheap by design: the container type and at most the
*first* element of a list/set/dict (never a scan), the exact arity of fixed tuples, unions,
``Literal`` values, ``isinstance`` for classes. Numeric tower at run time: an ``int`` annotation
accepts any :class:`numbers.Integral` (so ``numpy.int64`` passes), ``float`` any
:class:`numbers.Real`, ``complex`` any :class:`numbers.Complex`. A ``NamedTuple`` annotation
accepts a plain tuple of the right arity. Parametrised generics and protocols it cannot check
pass, and a check never raises: it is a safety net for return values, not a validator.

:func:`infer_type` gives the static type of a constant (a workflow default or a literal argument)
from its value, sampling container elements.
"""

from __future__ import annotations

import collections.abc as cabc
import logging
import numbers
import typing
from collections.abc import Callable
from typing import Any, Literal

from flowkit.typecheck.normalize import (
    NEVER,
    NoneType,
    is_namedtuple,
    is_typeddict,
    is_union,
    norm,
    tuple_shape,
)

logger = logging.getLogger(__name__)


def infer_type(value: Any, *, sample: int = 1000) -> Any:
    """The static type of a constant (a workflow default or a literal argument).

    Containers get element types from up to *sample* elements: ``[2, 4]`` -> ``list[int]``,
    ``[1, "a"]`` -> ``list[int | str]``, ``[]`` -> ``list[Any]``, ``{"a": 1.0}`` ->
    ``dict[str, float]``, ``(1, "a")`` -> ``tuple[int, str]``, ``None`` -> ``NoneType``.
    """
    if value is None:
        return NoneType
    cls = type(value)
    if cls is list or cls is set or cls is frozenset:
        return cls[_join(value, sample)]
    if cls is tuple:
        if len(value) > sample:
            return tuple[_join(value, sample), ...]  # type: ignore[misc]
        return tuple[tuple(infer_type(v, sample=sample) for v in value)]  # type: ignore[misc]
    if cls is dict:
        return dict[_join(value.keys(), sample), _join(value.values(), sample)]  # type: ignore[misc]
    return cls


def _join(values: cabc.Iterable[Any], sample: int) -> Any:
    seen: list[Any] = []
    for i, v in enumerate(values):
        if i >= sample:
            break
        t = infer_type(v, sample=sample)
        if t not in seen:
            seen.append(t)
            if len(seen) > 8:
                return Any
    if not seen:
        return Any
    if len(seen) == 1:
        return seen[0]
    return typing.Union[tuple(seen)]  # noqa: UP007 - runtime construction


_Checker = Callable[[Any], bool]
# Keyed by id(): hashing a typing object (a Union builds a frozenset) costs more than the check
# itself, and some annotations are unhashable. The entry keeps the annotation alive, so its id
# cannot be reused while cached.
_CHECKERS: dict[int, tuple[Any, _Checker]] = {}
_CHECKER_CACHE_MAX = 4096
_PROMOTE: dict[type, type] = {
    int: numbers.Integral,
    float: numbers.Real,
    complex: numbers.Complex,
}


def check_value(value: Any, tp: Any) -> bool:
    """Cheap check that *value* matches annotation *tp* (see the module docstring).

    Looks at the container and at most one element per container level; never scans.
    """
    if type(tp) is type:  # fast path: a plain class
        return isinstance(value, tp) or _class_fallback(value, tp)
    try:
        return checker_for(tp)(value)
    except Exception:
        # A value whose container misbehaves when indexed, or an exotic annotation: the check
        # is a safety net, not a validator, so it must never be the thing that fails a task.
        logger.debug("runtime check of %r against %r failed; accepting", value, tp, exc_info=True)
        return True


def checker_for(tp: Any) -> Callable[[Any], bool]:
    """A compiled, cached ``value -> bool`` check for annotation *tp* (see :func:`check_value`)."""
    entry = _CHECKERS.get(id(tp))
    if entry is not None and entry[0] is tp:
        return entry[1]
    checker = _compile(tp)
    if len(_CHECKERS) >= _CHECKER_CACHE_MAX:
        _CHECKERS.clear()  # annotations are few; a full cache means transient ones, drop them
    _CHECKERS[id(tp)] = (tp, checker)
    return checker


def _class_fallback(value: Any, cls: type) -> bool:
    promoted = _PROMOTE.get(cls)
    if promoted is not None:
        return isinstance(value, promoted)
    if is_namedtuple(cls):
        return type(value) is tuple and len(value) == len(cls._fields)  # type: ignore[attr-defined]
    return False


def _true(value: Any) -> bool:
    return True


def _false(value: Any) -> bool:
    return False


def _compile(tp: Any) -> _Checker:
    try:
        return _compile_inner(tp)
    except TypeError:
        logger.debug("no runtime check for %r", tp, exc_info=True)
        return _true


def _compile_inner(tp: Any) -> _Checker:
    tp = norm(tp)
    origin = typing.get_origin(tp)
    checker = _form_checker(tp, origin)
    if checker is not None:
        return checker
    if origin is None:
        if isinstance(tp, type):  # a class with a metaclass (ABC, Protocol, ...)
            return _isinstance_checker(tp)
        return _true  # a special form we do not check
    if not isinstance(origin, type):
        return _true
    return _generic_checker(tp, origin, typing.get_args(tp))


def _form_checker(tp: Any, origin: Any) -> _Checker | None:
    """The check of Any, Never, a plain class, a union, a Literal or a TypedDict; else None."""
    if tp is Any or tp is object:
        return _true
    if tp in NEVER:
        return _false
    if type(tp) is type:
        return _class_checker(tp)
    if is_union(tp):
        return _union_checker(typing.get_args(tp))
    if origin is Literal:
        allowed = typing.get_args(tp)
        return lambda v: any(v == a and type(v) is type(a) for a in allowed)
    if is_typeddict(tp):
        return lambda v: isinstance(v, dict)
    return None


def _generic_checker(tp: Any, origin: type, args: tuple[Any, ...]) -> _Checker:
    """The check of a subscripted class: the container, and its first element."""
    if origin is tuple:
        return _tuple_checker(tp)
    if origin is type:
        return _type_checker(args[0] if args else Any)
    if issubclass(origin, cabc.Callable):  # type: ignore[arg-type]
        return callable
    base = _isinstance_checker(origin)
    if not args:
        return base
    if issubclass(origin, cabc.Mapping) and len(args) == 2:
        return _mapping_checker(base, checker_for(args[0]), checker_for(args[1]))
    if len(args) == 1 and issubclass(origin, cabc.Collection):
        e_ok = checker_for(args[0])
        if issubclass(origin, cabc.Sequence):
            return lambda v: base(v) and (len(v) == 0 or e_ok(v[0]))
        return lambda v: base(v) and _first_elem_ok(v, e_ok)
    return base  # iterators, generators, user generics: container only (never consume)


def _mapping_checker(base: _Checker, k_ok: _Checker, v_ok: _Checker) -> _Checker:
    def check_mapping(v: Any) -> bool:
        if not base(v):
            return False
        for k in v:  # the first item only
            return k_ok(k) and v_ok(v[k])
        return True

    return check_mapping


def _class_checker(cls: type) -> _Checker:
    return lambda v: isinstance(v, cls) or _class_fallback(v, cls)


def _union_checker(members: tuple[Any, ...]) -> _Checker:
    checkers = tuple(checker_for(m) for m in members)
    plain = tuple(m for m in members if type(m) is type)
    if plain:
        # One isinstance over the plain classes answers most values; the members' own
        # checks (numeric tower, generics) run only when it fails.
        return lambda v: isinstance(v, plain) or any(c(v) for c in checkers)
    return lambda v: any(c(v) for c in checkers)


def _isinstance_checker(cls: type) -> _Checker:
    try:
        isinstance(None, cls)
    except TypeError:
        return _true  # a non-runtime-checkable protocol or similar
    return _class_checker(cls)


def _first_elem_ok(v: Any, e_ok: _Checker) -> bool:
    # Sets and other sized collections: one step of iteration, never a scan.
    if isinstance(v, cabc.Sequence):
        return len(v) == 0 or e_ok(v[0])
    if not isinstance(v, (cabc.Set, cabc.Mapping, cabc.KeysView, cabc.ValuesView)):
        return True  # an arbitrary collection might be costly or one-shot to iterate
    for x in v:
        return e_ok(x)
    return True


def _tuple_checker(tp: Any) -> _Checker:
    shape = tuple_shape(tp)
    if shape is None:
        return lambda v: isinstance(v, tuple)
    kind, items = shape
    if kind == "var":
        e_ok = checker_for(items[0])
        return lambda v: isinstance(v, tuple) and (len(v) == 0 or e_ok(v[0]))
    checkers = tuple(checker_for(t) for t in items)
    n = len(checkers)

    def check_tuple(v: Any) -> bool:
        if not isinstance(v, tuple) or len(v) != n:
            return False
        for ok, x in zip(checkers, v, strict=True):
            if not ok(x):
                return False
        return True

    return check_tuple


def _type_checker(target: Any) -> _Checker:
    target = norm(target)
    if target is Any or not isinstance(target, type):
        return lambda v: isinstance(v, type)

    def check(v: Any) -> bool:
        if not isinstance(v, type):
            return False
        try:
            return issubclass(v, target)
        except TypeError:
            return True

    return check
