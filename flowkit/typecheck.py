"""Type hints of tasks: resolution, PEP 484 assignability, and cheap runtime checks.

Policy
------
* **Resolution.** :func:`resolve_signature` reads a function's parameters and return type with
  :func:`typing.get_type_hints` (``include_extras=True``), so string annotations and
  ``from __future__ import annotations`` work. Every parameter and the return must be annotated;
  ``*args``/``**kwargs`` are rejected (the graph binds inputs by name). An unresolvable name is a
  :class:`~flowkit.errors.GraphError` naming the function, the parameter and the name. A function
  defined inside another function may annotate with that function's local classes: when a name is
  missing we look for the enclosing functions' frames on the call stack (they are running while
  a decorator applies) and use their locals.
* **Assignability** (:func:`is_assignable`) follows PEP 484 where that is unambiguous: subclasses,
  the numeric tower (``bool`` -> ``int`` -> ``float`` -> ``complex``), ``Any`` on either side,
  ``object`` as target, unions on both sides, ``None``, ``Literal``, ``Annotated`` (metadata
  ignored), ``NewType`` and ``TypeVar`` (as their supertype / bound), ``NamedTuple`` (as its class,
  and as a tuple of its field types), generics of the builtin and ``collections.abc`` containers.
  Three deliberate choices:

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
* **Runtime checks** (:func:`check_value`) are cheap by design: the container type and at most the
  *first* element of a list/set/dict (never a scan), the exact arity of fixed tuples, unions,
  ``Literal`` values, ``isinstance`` for classes. Numeric tower at run time: an ``int`` annotation
  accepts any :class:`numbers.Integral` (so ``numpy.int64`` passes), ``float`` any
  :class:`numbers.Real`, ``complex`` any :class:`numbers.Complex`. A ``NamedTuple`` annotation
  accepts a plain tuple of the right arity. Parametrised generics and protocols it cannot check
  pass, and a check never raises: it is a safety net for return values, not a validator.
"""

from __future__ import annotations

import collections
import collections.abc as cabc
import dataclasses
import inspect
import logging
import numbers
import sys
import types
import typing
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from flowkit.errors import GraphError

logger = logging.getLogger(__name__)

NoneType: type[None] = type(None)

#: Sentinel for "this parameter has no default" (the same object inspect uses).
NO_DEFAULT: Any = inspect.Parameter.empty

_NEVER: tuple[Any, ...] = tuple(
    x for x in (getattr(typing, "NoReturn", None), getattr(typing, "Never", None)) if x is not None
)
# Qualifiers that wrap a type without changing what values it admits.
_WRAPPERS: tuple[Any, ...] = tuple(
    x
    for x in (
        getattr(typing, "Final", None),
        getattr(typing, "ClassVar", None),
        getattr(typing, "Required", None),
        getattr(typing, "NotRequired", None),
        getattr(typing, "ReadOnly", None),
    )
    if x is not None
)
_LITERAL_STRING: Any = getattr(typing, "LiteralString", None)


# --------------------------------------------------------------------------------------------
# Signatures


class Param(NamedTuple):
    """One parameter of a task or workflow."""

    name: str
    type: Any
    """The type to check against (``Annotated`` stripped at the top level)."""
    annotation: Any
    """The resolved annotation as written, ``Annotated`` metadata included."""
    kind: inspect._ParameterKind
    default: Any = NO_DEFAULT
    """The default value, or :data:`NO_DEFAULT`."""

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    @property
    def metadata(self) -> tuple[Any, ...]:
        """The ``Annotated[...]`` metadata of the annotation (empty when not annotated)."""
        return annotated_metadata(self.annotation)


@dataclasses.dataclass(frozen=True)
class Signature:
    """The typed interface of a task or workflow function."""

    name: str
    params: tuple[Param, ...]
    return_type: Any
    """The return type (``Annotated`` stripped at the top level); ``NoneType`` for ``-> None``."""
    return_annotation: Any
    """The resolved return annotation as written, ``Annotated`` metadata included."""
    kind: str = "task"
    """What the function is ("task", "workflow", ...), for messages."""
    inspect_signature: inspect.Signature | None = dataclasses.field(
        default=None, compare=False, repr=False
    )

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Map a call's arguments to parameter names, defaults applied, in parameter order.

        Raises :class:`GraphError` naming the function for a missing, unexpected or doubled
        argument.
        """
        sig = self.inspect_signature
        if sig is None:
            sig = inspect.Signature(
                [
                    inspect.Parameter(p.name, p.kind, default=p.default, annotation=p.annotation)
                    for p in self.params
                ]
            )
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise GraphError(
                f"{self.kind} `{self.name}`: {exc}; its parameters are ({self.describe_params()})"
            ) from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def describe_params(self) -> str:
        """``x: int, depth: int = 3`` for messages."""
        parts = []
        for p in self.params:
            text = f"{p.name}: {type_repr(p.type)}"
            if p.has_default:
                text += f" = {p.default!r}"
            parts.append(text)
        return ", ".join(parts)

    def param(self, name: str) -> Param:
        """The parameter called *name* (``KeyError`` if there is none)."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def outputs(self) -> tuple[list[tuple[str, Any]], bool]:
        """:func:`output_types` of the return type."""
        return output_types(self.return_type)


class _Shim:
    """Stands in for a function so ``get_type_hints`` resolves one annotation at a time."""

    def __init__(self, annotation: Any, globalns: dict[str, Any]) -> None:
        self.__annotations__ = {"x": annotation}
        self.__globals__ = globalns


def resolve_signature(
    fn: Callable[..., Any],
    *,
    kind: str = "task",
    name: str | None = None,
    localns: dict[str, Any] | None = None,
) -> Signature:
    """Resolve the typed interface of *fn*.

    *kind* ("task", "workflow", ...) and *name* (default ``fn.__name__``) only shape error
    messages. *localns* adds names for resolving string annotations (the enclosing function's
    locals are found automatically when the decorator runs inside it).

    Raises :class:`GraphError` for a missing annotation, ``*args``/``**kwargs``, or an
    annotation that cannot be resolved.
    """
    label = name or getattr(fn, "__name__", None) or repr(fn)
    what = f"{kind} `{label}`"
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise GraphError(
            f"{what}: cannot read its signature ({exc}); use a plain function"
        ) from exc

    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            star = "*" if p.kind is p.VAR_POSITIONAL else "**"
            raise GraphError(
                f"{what}: `{star}{p.name}` is not supported; declare each input as a named, "
                f"annotated parameter (the graph binds inputs by name)"
            )
        if p.annotation is inspect.Parameter.empty:
            raise GraphError(
                f"{what}: parameter `{p.name}` has no type annotation; "
                f"add one, e.g. `{p.name}: int`"
            )
    if sig.return_annotation is inspect.Signature.empty:
        raise GraphError(
            f"{what}: the return value has no type annotation; add one, e.g. "
            f"`def {getattr(fn, '__name__', label)}(...) -> int:` "
            f"(use `-> None` when it returns nothing)"
        )

    hints = _resolve_hints(fn, sig, kind, what, localns)
    params = tuple(
        Param(
            name=p.name,
            type=strip_annotated(hints[p.name]),
            annotation=hints[p.name],
            kind=p.kind,
            default=p.default,
        )
        for p in sig.parameters.values()
    )
    ret = hints["return"]
    return Signature(
        name=label,
        params=params,
        return_type=strip_annotated(ret),
        return_annotation=ret,
        kind=kind,
        inspect_signature=sig,
    )


def _resolve_hints(
    fn: Callable[..., Any],
    sig: inspect.Signature,
    kind_word: str,
    what: str,
    localns: dict[str, Any] | None,
) -> dict[str, Any]:
    target = inspect.unwrap(fn)
    globalns: dict[str, Any] = getattr(target, "__globals__", None) or {}
    raw: dict[str, Any] = {p.name: p.annotation for p in sig.parameters.values()}
    raw["return"] = sig.return_annotation

    base_locals = _closure_vars(target)
    if localns:
        base_locals.update(localns)

    if isinstance(getattr(target, "__annotations__", None), dict):
        try:
            hints = typing.get_type_hints(
                target, globalns=globalns, localns=base_locals or None, include_extras=True
            )
            if all(k in hints for k in raw):
                return {k: hints[k] for k in raw}
        except Exception:  # resolved again one by one below, for a precise error
            pass

    # Slow path: resolve one annotation at a time so the error names the parameter; fall back to
    # the enclosing function's locals for names defined inside a function.
    enclosing: dict[str, Any] | None = None
    out: dict[str, Any] = {}
    for pname, ann in raw.items():
        try:
            out[pname] = _resolve_one(ann, globalns, base_locals)
            continue
        except NameError as exc:
            if enclosing is None:
                enclosing = _enclosing_locals(target)
            if enclosing:
                try:
                    out[pname] = _resolve_one(ann, globalns, {**enclosing, **base_locals})
                    continue
                except Exception:  # report the first error
                    pass
            missing = getattr(exc, "name", None) or str(exc)
            where = "the return annotation" if pname == "return" else f"parameter `{pname}`"
            module = getattr(target, "__module__", "?")
            raise GraphError(
                f"{what}: cannot resolve the type `{missing}` used in {where} "
                f"(annotation {_ann_text(ann)!s}); it is not defined in module `{module}` "
                f"when the decorator runs. Import or define it at module level, above the "
                f"{kind_word} (names imported only under `if TYPE_CHECKING:` are not available)"
            ) from exc
        except Exception as exc:
            where = "the return annotation" if pname == "return" else f"parameter `{pname}`"
            raise GraphError(
                f"{what}: the annotation of {where} ({_ann_text(ann)}) is not a valid type: {exc}"
            ) from exc
    return out


def _resolve_one(ann: Any, globalns: dict[str, Any], localns: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(
        _Shim(ann, globalns), globalns=globalns, localns=localns or None, include_extras=True
    )
    return hints["x"]


def _ann_text(ann: Any) -> str:
    return f"`{ann}`" if isinstance(ann, str) else f"`{type_repr(ann)}`"


def _closure_vars(fn: Any) -> dict[str, Any]:
    code = getattr(fn, "__code__", None)
    closure = getattr(fn, "__closure__", None)
    if code is None or not closure:
        return {}
    out: dict[str, Any] = {}
    for var, cell in zip(code.co_freevars, closure, strict=False):
        try:
            out[var] = cell.cell_contents
        except ValueError:  # empty cell: the variable is not assigned yet
            continue
    return out


def _enclosing_locals(fn: Any) -> dict[str, Any]:
    """Locals of the running scopes that define *fn*, found on the stack by qualified name.

    For ``test.<locals>.helper.<locals>.f`` these are the frames of ``helper`` and ``test``
    (inner scopes win). They exist while a decorator applied inside them runs.
    """
    qualname: str = getattr(fn, "__qualname__", "")
    if "<locals>" not in qualname:
        return {}
    tokens = qualname.split(".")
    scopes = {".".join(tokens[:k]): k for k in range(1, len(tokens)) if tokens[k - 1] != "<locals>"}
    fn_globals = getattr(fn, "__globals__", None)
    found: list[tuple[int, dict[str, Any]]] = []
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        # co_qualname is 3.11+; on 3.10 match the bare name of a scope.
        name = getattr(code, "co_qualname", None)
        depth = (
            scopes.get(name)
            if name is not None
            else next((d for q, d in scopes.items() if q.rsplit(".", 1)[-1] == code.co_name), None)
        )
        if depth is not None and frame.f_globals is fn_globals:
            found.append((depth, dict(frame.f_locals)))
        frame = frame.f_back
    merged: dict[str, Any] = {}
    for _, names in sorted(found, key=lambda item: item[0]):
        merged.update(names)  # deeper (inner) scopes last, so they win
    return merged


# --------------------------------------------------------------------------------------------
# Normalisation helpers


def strip_annotated(tp: Any) -> Any:
    """``Annotated[T, ...]`` -> ``T`` (repeatedly); other types unchanged."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = tp.__origin__
    return tp


def annotated_metadata(tp: Any) -> tuple[Any, ...]:
    """The metadata of ``Annotated[T, *metadata]``; ``()`` for any other type."""
    if typing.get_origin(tp) is typing.Annotated:
        return tuple(tp.__metadata__)
    return ()


def _is_newtype(tp: Any) -> bool:
    return hasattr(tp, "__supertype__") and callable(tp)


def _norm(tp: Any) -> Any:
    """Remove wrappers that do not change the set of admitted values."""
    while True:
        if tp is None:
            return NoneType
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = tp.__origin__
        elif origin is not None and origin in _WRAPPERS:
            args = typing.get_args(tp)
            tp = args[0] if args else Any
        elif tp in _WRAPPERS:
            return Any
        elif _is_newtype(tp):
            tp = tp.__supertype__
        elif isinstance(tp, typing.TypeVar):
            if tp.__bound__ is not None:
                tp = tp.__bound__
            elif tp.__constraints__:
                return typing.Union[tp.__constraints__]  # noqa: UP007 - runtime construction
            else:
                return Any
        elif _LITERAL_STRING is not None and tp is _LITERAL_STRING:
            return str
        elif type(tp).__name__ == "TypeAliasType" and hasattr(tp, "__value__"):
            tp = tp.__value__  # `type X = ...` (Python 3.12+)
        else:
            return tp


def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is typing.Union or origin is types.UnionType


def _is_namedtuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def _is_typeddict(tp: Any) -> bool:
    # typing.is_typeddict misses typing_extensions.TypedDict on some versions; look at the shape.
    return typing.is_typeddict(tp) or (
        isinstance(tp, type)
        and issubclass(tp, dict)
        and hasattr(tp, "__required_keys__")
        and hasattr(tp, "__total__")
    )


@lru_cache(maxsize=512)
def namedtuple_fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """The ``(name, type)`` fields of a NamedTuple class (``Any`` for untyped namedtuples)."""
    fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except NameError as exc:
        raise GraphError(
            f"NamedTuple `{cls.__qualname__}`: cannot resolve the type "
            f"`{getattr(exc, 'name', exc)}` of one of its fields; import or define it at "
            f"module level"
        ) from exc
    except Exception:
        hints = {}
    return tuple((f, hints.get(f, Any)) for f in fields)


# --------------------------------------------------------------------------------------------
# Assignability

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


def _tuple_shape(tp: Any) -> tuple[str, list[Any]] | None:
    """("fixed", [A, B]) for ``tuple[A, B]``, ("var", [T]) for ``tuple[T, ...]``, or None."""
    if _is_namedtuple(tp):
        return ("fixed", [t for _, t in namedtuple_fields(tp)])
    if typing.get_origin(tp) is not tuple:
        return None
    args = typing.get_args(tp)
    if args == () or args == ((),):
        return ("fixed", [])
    if len(args) == 2 and args[1] is Ellipsis:
        return ("var", [args[0]])
    return ("fixed", list(args))


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


# --------------------------------------------------------------------------------------------
# Shapes used by the tracer

_LIST_ORIGINS: tuple[Any, ...] = (list, cabc.Sequence, cabc.MutableSequence)


def element_type(tp: Any) -> Any | None:
    """``T`` for ``list[T]``, ``List[T]``, ``Sequence[T]`` (``Any`` when bare); else ``None``.

    ``Annotated`` is looked through. Used by ``task.map``: an argument of type ``list[P]``
    bound to a parameter of type ``P`` is mapped over.
    """
    tp = strip_annotated(tp)
    if tp in _LIST_ORIGINS:
        return Any
    origin = typing.get_origin(tp)
    if origin in _LIST_ORIGINS:
        args = typing.get_args(tp)
        return args[0] if args else Any
    return None


def is_list_type(tp: Any) -> bool:
    """Whether *tp* is ``list[T]`` / ``List[T]`` / ``Sequence[T]`` (or bare), i.e. mappable."""
    return element_type(tp) is not None


def list_of(tp: Any) -> Any:
    """``list[tp]``: the type of a ``task.map`` result whose task returns *tp*."""
    return list[tp]


MapBinding = Literal["mapped", "whole", "mismatch"]


def map_binding(arg_type: Any, param_type: Any) -> MapBinding:
    """How ``task.map`` binds an argument of static type *arg_type* to a parameter.

    ``"mapped"`` when *arg_type* is a list whose element type is assignable to the parameter
    (this wins when both readings type-check, e.g. a parameter typed ``Any``; ``fk.unmapped``
    forces whole-passing), ``"whole"`` when the argument itself is assignable, else
    ``"mismatch"``.
    """
    elem = element_type(arg_type)
    if elem is not None and is_assignable(elem, param_type):
        return "mapped"
    if is_assignable(arg_type, param_type):
        return "whole"
    return "mismatch"


def output_types(tp: Any) -> tuple[list[tuple[str, Any]], bool]:
    """Split a return type into named outputs; the flag says whether it is a multi-output.

    ``tuple[A, B]`` -> ``[("0", A), ("1", B)], True``; a NamedTuple class -> its field names and
    types, ``True``; anything else (``tuple[T, ...]``, bare ``tuple``, ``tuple[()]``, unions,
    ``None``) -> ``[("0", tp)], False``. ``Annotated`` around the whole type is looked through.
    """
    inner = strip_annotated(tp)
    if _is_namedtuple(inner):
        return [(name, t) for name, t in namedtuple_fields(inner)], True
    if typing.get_origin(inner) is tuple:
        shape = _tuple_shape(inner)
        if shape is not None and shape[0] == "fixed" and shape[1]:
            return [(str(i), t) for i, t in enumerate(shape[1])], True
    return [("0", tp)], False


def explain_mismatch(src: Any, dst: Any) -> str:
    """Why *src* is not assignable to *dst*, with the likely fix; ``""`` when it is assignable.

    One sentence for a :class:`~flowkit.errors.TypeMismatchError` message, e.g. "the value may
    be None, which `int` does not accept; declare the parameter as `int | None` ...".
    """
    if is_assignable(src, dst):
        return ""
    s, d = _norm(src), _norm(dst)
    s_txt, d_txt = type_repr(src), type_repr(dst)

    if _is_union(s):
        bad = [m for m in typing.get_args(s) if not is_assignable(m, d)]
        good = [m for m in typing.get_args(s) if is_assignable(m, d)]
        if bad == [NoneType] and good:
            return (
                f"the value may be None, which `{d_txt}` does not accept; declare the parameter "
                f"as `{d_txt} | None`, or make the producer return `{type_repr(_union(good))}`"
            )
        return f"the value may be `{type_repr(bad[0])}`, which `{d_txt}` does not accept"

    elem = element_type(s)
    if elem is not None and is_assignable(elem, d):
        return (
            f"the value is a list of `{type_repr(elem)}` but the parameter takes one "
            f"`{d_txt}`; use `.map(...)` to call the task once per element"
        )
    d_elem = element_type(d)
    if d_elem is not None and is_assignable(s, d_elem):
        return f"the parameter takes a `{d_txt}`, not a single `{s_txt}`"

    s_shape = _tuple_shape(s)
    d_shape = _tuple_shape(d)
    if s_shape is not None and s_shape[0] == "fixed" and len(s_shape[1]) > 1 and d_shape is None:
        n = len(s_shape[1])
        names = ", ".join(f"out{i}" for i in range(n))
        return (
            f"the value is a tuple of {n} outputs (`{s_txt}`); unpack it first, "
            f"e.g. `{names} = producer(...)`, and pass one of them"
        )
    if s_shape is not None and d_shape is not None and d_shape[0] == "fixed":
        if s_shape[0] == "var":
            return f"`{s_txt}` has no fixed length but the parameter takes exactly `{d_txt}`"
        if len(s_shape[1]) != len(d_shape[1]):
            return (
                f"the value has {len(s_shape[1])} elements but the parameter takes "
                f"{len(d_shape[1])} (`{s_txt}` vs `{d_txt}`)"
            )

    # Same kind of container: point at the first parameter that differs.
    s_args, d_args = typing.get_args(s), typing.get_args(d)
    s_origin, d_origin = typing.get_origin(s), typing.get_origin(d)
    if (
        s_origin is not None
        and s_origin is d_origin
        and s_origin is not Literal
        and len(s_args) == len(d_args)
    ):
        for a, b in zip(s_args, d_args, strict=True):
            if a is not Ellipsis and not is_assignable(a, b):
                return (
                    f"`{s_txt}` is not assignable to `{d_txt}`: `{type_repr(a)}` is not "
                    f"assignable to `{type_repr(b)}`"
                )
    if d is NoneType:
        return f"the parameter only accepts None, not `{s_txt}`"
    return f"`{s_txt}` is not assignable to `{d_txt}`"


def _union(members: list[Any]) -> Any:
    return members[0] if len(members) == 1 else typing.Union[tuple(members)]  # noqa: UP007


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


# --------------------------------------------------------------------------------------------
# Readable names


def type_repr(tp: Any) -> str:
    """A short, readable name for messages: ``list[int]``, ``int | None``, ``Table``."""
    if tp is None or tp is NoneType:
        return "None"
    if tp is Any:
        return "Any"
    if tp is Ellipsis:
        return "..."
    if isinstance(tp, str):
        return tp
    if isinstance(tp, typing.ForwardRef):
        return tp.__forward_arg__
    if isinstance(tp, typing.TypeVar):
        return tp.__name__
    if _is_newtype(tp):
        return str(getattr(tp, "__name__", tp))
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return type_repr(tp.__origin__)
    if _is_union(tp):
        args = typing.get_args(tp)
        # None goes last, as people write it: `int | None`.
        ordered = [a for a in args if a is not NoneType] + [a for a in args if a is NoneType]
        return " | ".join(type_repr(a) for a in ordered)
    if origin is Literal:
        return "Literal[" + ", ".join(repr(a) for a in typing.get_args(tp)) + "]"
    if origin is not None:
        args = typing.get_args(tp)
        head = _class_name(origin) if isinstance(origin, type) else _typing_name(origin)
        if origin is tuple and (args == () or args == ((),)):
            return "tuple[()]"
        if isinstance(origin, type) and issubclass(origin, cabc.Callable) and len(args) == 2:  # type: ignore[arg-type]
            params, ret = args
            if isinstance(params, (list, tuple)):
                p = "[" + ", ".join(type_repr(a) for a in params) + "]"
            else:
                p = type_repr(params)  # `...` or a ParamSpec
            return f"Callable[{p}, {type_repr(ret)}]"
        if not args:
            return head
        return head + "[" + ", ".join(_arg_repr(a) for a in args) + "]"
    if isinstance(tp, type):
        return _class_name(tp)
    return _typing_name(tp)


def _arg_repr(a: Any) -> str:
    if isinstance(a, list):  # Callable parameter lists, ParamSpec-style
        return "[" + ", ".join(type_repr(x) for x in a) + "]"
    return type_repr(a)


def _class_name(cls: type) -> str:
    if cls.__module__ == "builtins":
        return cls.__name__
    qual = cls.__qualname__
    return cls.__name__ if "<locals>" in qual else qual


def _typing_name(obj: Any) -> str:
    text = repr(obj)
    for prefix in ("typing_extensions.", "typing.", "collections.abc."):
        text = text.replace(prefix, "")
    return text


# --------------------------------------------------------------------------------------------
# Runtime checks

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
    if _is_namedtuple(cls):
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
    tp = _norm(tp)
    if tp is Any or tp is object:
        return _true
    if tp in _NEVER:
        return _false
    if type(tp) is type:
        return _class_checker(tp)
    if _is_union(tp):
        return _union_checker(typing.get_args(tp))
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        return lambda v: any(v == a and type(v) is type(a) for a in allowed)
    if _is_typeddict(tp):
        return lambda v: isinstance(v, dict)
    if origin is None:
        if isinstance(tp, type):  # a class with a metaclass (ABC, Protocol, ...)
            return _isinstance_checker(tp)
        return _true  # a special form we do not check
    if not isinstance(origin, type):
        return _true
    args = typing.get_args(tp)
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
        k_ok, v_ok = checker_for(args[0]), checker_for(args[1])

        def check_mapping(v: Any) -> bool:
            if not base(v):
                return False
            for k in v:  # the first item only
                return k_ok(k) and v_ok(v[k])
            return True

        return check_mapping
    if len(args) == 1 and issubclass(origin, cabc.Collection):
        e_ok = checker_for(args[0])
        if issubclass(origin, cabc.Sequence):
            return lambda v: base(v) and (len(v) == 0 or e_ok(v[0]))
        return lambda v: base(v) and _first_elem_ok(v, e_ok)
    return base  # iterators, generators, user generics: container only (never consume)


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
    shape = _tuple_shape(tp)
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
    target = _norm(target)
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


__all__ = [
    "NO_DEFAULT",
    "MapBinding",
    "NoneType",
    "Param",
    "Signature",
    "annotated_metadata",
    "check_value",
    "checker_for",
    "element_type",
    "explain_mismatch",
    "infer_type",
    "is_assignable",
    "is_list_type",
    "list_of",
    "map_binding",
    "namedtuple_fields",
    "output_types",
    "resolve_signature",
    "strip_annotated",
    "type_repr",
]
