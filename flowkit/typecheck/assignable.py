"""Static assignability of type hints (PEP 484), for checking workflow edges as they are traced.

Policy
------
:func:`is_assignable` follows PEP 484 where that is unambiguous: subclasses, the numeric tower
(``bool`` -> ``int`` -> ``float`` -> ``complex``), ``Any`` on either side, ``object`` as target,
unions on both sides, ``None``, ``Literal``, ``Annotated`` (metadata ignored), ``NewType`` and
``TypeVar`` (as their supertype / bound), ``NamedTuple`` (as its class, and as a tuple of its field
types), generics of the builtin and ``collections.abc`` containers. Three deliberate choices:

- **Containers are covariant**: ``list[bool]`` is accepted for ``list[int]`` and
  ``dict[str, int]`` for ``dict[str, float]``. mypy rejects these for mutable containers, but a
  workflow edge hands over a value (it is serialised between tasks), so no aliasing bug can
  follow; Flyte and pydantic users expect this.
- **Unknown constructs are accepted.** A construct this module does not understand (a
  ``Protocol`` that is not runtime-checkable, ``ParamSpec``, ``Callable`` signatures, a
  user generic whose parameters we cannot map) is treated as assignable: a false "mismatch"
  would block a valid program, and the runtime return check still runs. Clear mismatches
  (``str`` -> ``int``, ``list[str]`` -> ``list[int]``, ``int | None`` -> ``int``) are rejected.
- ``NewType`` is treated as its supertype on both sides, so ``int`` is accepted for ``UserId``
  (at run time they are the same objects; a NewType marks intent, it does not convert).
"""

from __future__ import annotations

import collections
import collections.abc as cabc
import logging
import typing
from typing import Any, Literal

from flowkit.errors import GraphError
from flowkit.typecheck.normalize import (
    _NEVER,
    NoneType,
    _is_namedtuple,
    _is_typeddict,
    _is_union,
    _norm,
    _tuple_shape,
)

logger = logging.getLogger(__name__)

_MAPPING_ORIGINS = (cabc.Mapping,)
_SEQ_LIKE_DEFAULTS: dict[type, Any] = {str: str, bytes: int, bytearray: int, range: int}
_GENERATORS = (cabc.Generator, cabc.AsyncGenerator)


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
    src = _norm(src)
    dst = _norm(dst)
    if src is dst or src is Any or dst is Any or dst is object:
        return True
    if src in _NEVER:
        return True
    if dst in _NEVER:
        return False

    if _is_union(src):
        return all(_assignable(m, dst) for m in typing.get_args(src))
    if _is_union(dst):
        return any(_assignable(src, m) for m in typing.get_args(dst))

    src_origin = typing.get_origin(src)
    dst_origin = typing.get_origin(dst)

    if dst_origin is Literal:
        if src_origin is Literal:
            allowed = {(type(v), v) for v in typing.get_args(dst)}
            return all((type(v), v) in allowed for v in typing.get_args(src))
        return False
    if src_origin is Literal:
        return all(_assignable(type(v), dst) for v in typing.get_args(src))

    if dst is NoneType or src is NoneType:
        return dst is NoneType and src is NoneType

    if _is_typeddict(dst):
        if _is_typeddict(src):
            return True  # structural comparison of keys is out of scope: permissive
        return _assignable(src, cabc.Mapping)
    if _is_typeddict(src):
        src, src_origin = dict[str, Any], dict

    # Numeric tower (PEP 484): int is acceptable for float, int/float for complex.
    if isinstance(src, type) and dst in (float, complex):
        if issubclass(src, int) or (dst is complex and issubclass(src, float)):
            return True

    s_cls = src_origin if src_origin is not None else src
    d_cls = dst_origin if dst_origin is not None else dst
    if not isinstance(s_cls, type) or not isinstance(d_cls, type):
        return True  # a special form we do not model (ParamSpec, Self, Unpack, ...)
    if not issubclass(s_cls, d_cls):
        return False

    if not typing.get_args(dst):
        return True  # bare target: its parameters are Any
    return _args_assignable(src, dst, s_cls, d_cls)


def _args_assignable(src: Any, dst: Any, s_cls: type, d_cls: type) -> bool:
    d_args = typing.get_args(dst)
    if d_cls is tuple:
        return _tuple_assignable(src, dst)
    if issubclass(d_cls, cabc.Callable) and not issubclass(d_cls, type):  # type: ignore[arg-type]
        return True  # callable signatures are not compared (permissive)

    s_args = typing.get_args(src)
    if issubclass(d_cls, _MAPPING_ORIGINS) and len(d_args) == 2:
        kv = _mapping_args(src, s_cls, s_args)
        if kv is None:
            return True
        return _assignable(kv[0], d_args[0]) and _assignable(kv[1], d_args[1])

    if len(d_args) == 1:
        elem = _element_of(src, s_cls, s_args)
        if elem is None:
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


def _element_of(src: Any, s_cls: type, s_args: tuple[Any, ...]) -> Any | None:
    """The element type a single-parameter container target should compare against."""
    if s_cls is tuple or _is_namedtuple(src):
        shape = _tuple_shape(src)
        if shape is None:
            return None
        kind, items = shape
        if kind == "var":
            return items[0]
        if not items:
            return typing.Never if hasattr(typing, "Never") else Any
        return typing.Union[tuple(items)]  # noqa: UP007 - runtime construction
    if issubclass(s_cls, cabc.Mapping):
        return s_args[0] if s_args else None
    if issubclass(s_cls, _GENERATORS):
        return s_args[0] if s_args else None
    for base, elem in _SEQ_LIKE_DEFAULTS.items():
        if issubclass(s_cls, base):
            return elem
    if len(s_args) == 1:
        return s_args[0]
    return None


def _tuple_assignable(src: Any, dst: Any) -> bool:
    dshape = _tuple_shape(dst)
    sshape = _tuple_shape(src)
    if dshape is None or sshape is None:
        return True
    dkind, ditems = dshape
    skind, sitems = sshape
    if dkind == "var":
        return all(_assignable(s, ditems[0]) for s in sitems)
    if skind == "var":
        return False  # tuple[T, ...] has unknown length; tuple[A, B] needs exactly two
    return len(sitems) == len(ditems) and all(
        _assignable(s, d) for s, d in zip(sitems, ditems, strict=True)
    )
