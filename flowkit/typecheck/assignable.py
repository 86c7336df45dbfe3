"""Static assignability of type hints (PEP 484), for checking workflow edges as they are traced.

Policy
------
:func:`is_assignable` agrees with mypy (default settings) wherever mypy has a verdict, except for
one deliberate rule below; ``tests/test_typecheck_mypy.py`` asks mypy about thousands of
generated pairs and holds flowkit to it. Covered: subclasses, the numeric tower (``bool`` ->
``int`` -> ``float`` -> ``complex``), ``Any`` on either side, ``object`` as target, unions on
both sides, ``None``, ``Literal`` (``bool`` and an Enum class count as the union of their values,
so ``bool`` fits ``Literal[True, False]``), ``Annotated`` (metadata ignored), ``NewType``,
``TypeVar`` (as its bound), ``NamedTuple`` (as its class, and as a tuple of its field types),
``tuple[Any, ...]`` (fits a tuple of any length), and the builtin and ``collections.abc``
containers. The choices:

- **Mutable containers are covariant**, as their read-only twins are: ``list[bool]`` is accepted
  for ``list[int]``, ``set[A]`` for ``set[B]``, ``dict[str, int]`` for ``dict[str, float]``,
  exactly as mypy accepts ``Sequence[bool]`` for ``Sequence[int]``. mypy rejects these for
  ``list``/``set``/``dict`` because the receiver could write a ``float`` into the producer's list;
  a workflow edge hands over a value (serialised between tasks) and nothing writes it back.
  Mapping keys stay invariant, as in ``typing.Mapping``: ``dict[bool, int]`` does not fit
  ``dict[int, int]``. The class still matters: ``Sequence[int]`` does not fit ``list[int]``.
- **A NewType accepts only itself** (and NewTypes derived from it), as in mypy: ``UserId`` fits
  ``int``, but an ``int`` output does not fit a ``UserId`` parameter; wrap it in a task
  (``UserId(x)``). A scalar constant is checked by value, so ``f(user=5)`` still traces.
- **Unknown constructs are accepted.** A construct this module does not understand (a
  ``Protocol`` that is not runtime-checkable, ``ParamSpec``, ``Callable`` signatures, a
  ``TypedDict``'s keys, a user generic whose parameters we cannot map) is treated as assignable: a
  false "mismatch" would block a valid program, and the runtime return check still runs.
"""

from __future__ import annotations

import collections
import collections.abc as cabc
import enum
import logging
import typing
from typing import Any, Literal

from flowkit.errors import GraphError
from flowkit.typecheck.normalize import (
    NEVER,
    NoneType,
    is_namedtuple,
    is_newtype,
    is_typeddict,
    is_union,
    norm,
    tuple_shape,
)

logger = logging.getLogger(__name__)

_MAPPING_ORIGINS = (cabc.Mapping,)
_SEQ_LIKE_DEFAULTS: dict[type, Any] = {str: str, bytes: int, bytearray: int, range: int}
_GENERATORS = (cabc.Generator, cabc.AsyncGenerator)
_UNKNOWN: Any = object()  # "element type unknown", distinct from None (NoneType)


def is_assignable(src: Any, dst: Any) -> bool:
    """Whether a value of static type *src* may be passed where *dst* is expected.

    See the module docstring for the rules; unknown constructs are accepted.
    """
    try:
        return _assignable(src, dst)
    except GraphError:
        raise
    except Exception:
        # A construct issubclass()/get_args() cannot handle: stay permissive.
        logger.debug("cannot compare %r with %r; accepting", src, dst, exc_info=True)
        return True


def _assignable(src: Any, dst: Any) -> bool:
    if src is dst:
        return True
    src = norm(src, keep_newtype=True)
    dst = norm(dst, keep_newtype=True)
    verdict = _by_form(src, dst)
    if verdict is None:
        verdict = _by_special_type(src, dst)
    if verdict is None:
        verdict = _by_class(src, dst)
    return verdict


def _by_form(src: Any, dst: Any) -> bool | None:
    """The verdict of the gradual and set-like forms (Any, object, Never, unions, multi-value
    literals); None when neither side is one of them."""
    if src is dst or src is Any or dst is Any or dst is object or src in NEVER:
        return True
    if dst in NEVER:
        return False
    if is_union(src):
        return all(_assignable(m, dst) for m in typing.get_args(src))
    if typing.get_origin(src) is Literal and len(src.__args__) > 1:
        # Literal[1, 2] is Literal[1] | Literal[2]
        return all(_assignable(Literal[v], dst) for v in src.__args__)
    if is_union(dst):
        if any(_assignable(src, m) for m in typing.get_args(dst)):
            return True
        return _as_literals_assignable(src, dst)
    return None


def _by_special_type(src: Any, dst: Any) -> bool | None:
    """The verdict of NewType, Literal and None on either side; None when neither side is
    one of them."""
    if is_newtype(dst):  # a NewType accepts only itself and the NewTypes derived from it
        return _derives_from(src, dst)
    if is_newtype(src):
        return _assignable(src.__supertype__, dst)
    src_literal = typing.get_origin(src) is Literal
    if typing.get_origin(dst) is Literal:
        return _to_literal(src, dst, src_literal)
    if src_literal:
        return _assignable(type(src.__args__[0]), dst)
    if dst is NoneType or src is NoneType:
        return dst is NoneType and src is NoneType
    return None


def _to_literal(src: Any, dst: Any, src_literal: bool) -> bool:
    if src_literal:
        allowed = {(type(v), v) for v in dst.__args__}
        return (type(src.__args__[0]), src.__args__[0]) in allowed
    if src is NoneType:
        return None in dst.__args__
    return _as_literals_assignable(src, dst)


def _by_class(src: Any, dst: Any) -> bool:
    """The verdict of classes and their parameters (TypedDicts as mappings)."""
    if is_typeddict(dst):
        # structural comparison of keys is out of scope: permissive
        return is_typeddict(src) or _assignable(src, cabc.Mapping)
    src_origin = typing.get_origin(src)
    if is_typeddict(src):
        src, src_origin = dict[str, Any], dict
    if _numeric_promotion(src, dst):
        return True
    dst_origin = typing.get_origin(dst)
    s_cls = src_origin if src_origin is not None else src
    d_cls = dst_origin if dst_origin is not None else dst
    if not isinstance(s_cls, type) or not isinstance(d_cls, type):
        return True  # a special form we do not model (ParamSpec, Self, Unpack, ...)
    if not issubclass(s_cls, d_cls):
        return False
    if d_cls is tuple:
        return _tuple_assignable(src, dst)  # before the bare-target rule: `tuple[()]` has no args
    if not typing.get_args(dst):
        return True  # bare target: its parameters are Any
    return _args_assignable(src, dst, s_cls, d_cls)


def _numeric_promotion(src: Any, dst: Any) -> bool:
    """The numeric tower (PEP 484): int is acceptable for float, int/float for complex."""
    if not isinstance(src, type) or dst not in (float, complex):
        return False
    return issubclass(src, int) or (dst is complex and issubclass(src, float))


def _equivalent(a: Any, b: Any) -> bool:
    """Each assignable to the other: what an invariant parameter (a mapping's key) requires."""
    return _assignable(a, b) and _assignable(b, a)


def _derives_from(src: Any, newtype: Any) -> bool:
    while is_newtype(src):
        if src is newtype:
            return True
        src = norm(src.__supertype__, keep_newtype=True)
    return False


def _literal_values(tp: Any) -> tuple[Any, ...] | None:
    """The values of ``bool`` and of an Enum class, which mypy expands to compare with literals."""
    if tp is bool:
        return (True, False)
    if isinstance(tp, type) and issubclass(tp, enum.Enum) and not issubclass(tp, enum.Flag):
        return tuple(tp) or None  # a Flag's members combine: its values are not a finite list
    return None


def _as_literals_assignable(src: Any, dst: Any) -> bool:
    """``bool`` -> ``Literal[True, False]``, ``Color`` -> ``Literal[Color.RED, Color.BLUE]``."""
    values = _literal_values(src)
    return values is not None and all(_assignable(Literal[v], dst) for v in values)


def _args_assignable(src: Any, dst: Any, s_cls: type, d_cls: type) -> bool:
    d_args = typing.get_args(dst)
    if issubclass(d_cls, cabc.Callable) and not issubclass(d_cls, type):  # type: ignore[arg-type]
        return True  # callable signatures are not compared (permissive)

    s_args = typing.get_args(src)
    if issubclass(d_cls, _MAPPING_ORIGINS) and len(d_args) == 2:
        kv = _mapping_args(src, s_cls, s_args)
        if kv is None:
            return True
        # Keys are invariant (as in typing.Mapping), values covariant.
        return _equivalent(kv[0], d_args[0]) and _assignable(kv[1], d_args[1])

    if len(d_args) == 1:
        elem = _element_of(src, s_cls, s_args)
        if elem is _UNKNOWN:
            return True
        return _assignable(elem, d_args[0])

    if s_cls is d_cls and len(s_args) == len(d_args):
        # A user generic (or any multi-parameter class) with matching parameters: covariant.
        return all(_assignable(s, d) for s, d in zip(s_args, d_args, strict=True))
    return True  # parameters we cannot map through the class hierarchy


def _mapping_args(src: Any, s_cls: type, s_args: tuple[Any, ...]) -> tuple[Any, Any] | None:
    if issubclass(s_cls, collections.Counter):
        return (s_args[0] if s_args else Any, int)
    if issubclass(s_cls, cabc.Mapping) and len(s_args) == 2:
        return (s_args[0], s_args[1])
    return None  # bare mapping or unknown parameters: Any


def _element_of(src: Any, s_cls: type, s_args: tuple[Any, ...]) -> Any:
    """The element type a single-parameter container target should compare against.

    :data:`_UNKNOWN` when it cannot be told (``None`` is a real element type: ``list[None]``).
    """
    if s_cls is tuple or is_namedtuple(src):
        shape = tuple_shape(src)
        if shape is None:
            return _UNKNOWN
        kind, items = shape
        if kind == "var":
            return items[0]
        if not items:
            return typing.Never if hasattr(typing, "Never") else Any
        return typing.Union[tuple(items)]  # noqa: UP007 - runtime construction
    if issubclass(s_cls, cabc.Mapping) or issubclass(s_cls, _GENERATORS):
        return s_args[0] if s_args else _UNKNOWN
    for base, elem in _SEQ_LIKE_DEFAULTS.items():
        if issubclass(s_cls, base):
            return elem
    if len(s_args) == 1:
        return s_args[0]
    return _UNKNOWN


def _tuple_assignable(src: Any, dst: Any) -> bool:
    dshape = tuple_shape(dst)
    sshape = tuple_shape(src)
    if dshape is None or sshape is None:
        return True
    dkind, ditems = dshape
    skind, sitems = sshape
    if dkind == "var":
        return all(_assignable(s, ditems[0]) for s in sitems)
    if skind == "var":
        # tuple[T, ...] has unknown length, tuple[A, B] needs exactly two; but tuple[Any, ...]
        # is the gradual tuple and fits any length (PEP 484; mypy agrees).
        return norm(sitems[0]) is Any
    return len(sitems) == len(ditems) and all(
        _assignable(s, d) for s, d in zip(sitems, ditems, strict=True)
    )
