"""Resolving the typed interface (parameters and return type) of a task or workflow function.

Policy
------
:func:`resolve_signature` reads a function's parameters and return type with
:func:`typing.get_type_hints` (``include_extras=True``), so string annotations and
``from __future__ import annotations`` work. Every parameter and the return must be annotated;
``*args``/``**kwargs`` are rejected (the graph binds inputs by name). An unresolvable name is a
:class:`~flowkit.errors.GraphError` naming the function, the parameter and the name. A function
defined inside another function may annotate with that function's local classes: when a name is
missing we look for the enclosing functions' frames on the call stack (they are running while
a decorator applies) and use their locals.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, NamedTuple

from flowkit.errors import GraphError
from flowkit.typecheck.names import type_repr
from flowkit.typecheck.normalize import annotated_metadata, strip_annotated
from flowkit.typecheck.shapes import output_types

#: Sentinel for "this parameter has no default" (the same object inspect uses).
NO_DEFAULT: Any = inspect.Parameter.empty


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
    _check_annotated(sig, what, getattr(fn, "__name__", label))
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


def _check_annotated(sig: inspect.Signature, what: str, fn_name: str) -> None:
    """GraphError unless every parameter is named and annotated, and the return too."""
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
            f"`def {fn_name}(...) -> int:` "
            f"(use `-> None` when it returns nothing)"
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
    resolver = _OneByOne(target, globalns, base_locals, kind_word, what)
    return {pname: resolver.resolve(pname, ann) for pname, ann in raw.items()}


class _OneByOne:
    """The slow path: resolve one annotation at a time so the error names the parameter; fall
    back to the enclosing functions' locals for names defined inside a function."""

    def __init__(
        self,
        target: Any,
        globalns: dict[str, Any],
        base_locals: dict[str, Any],
        kind_word: str,
        what: str,
    ) -> None:
        self.target = target
        self.globalns = globalns
        self.base_locals = base_locals
        self.kind_word = kind_word
        self.what = what
        self._enclosing: dict[str, Any] | None = None  # found on the stack when first needed

    def resolve(self, pname: str, ann: Any) -> Any:
        where = "the return annotation" if pname == "return" else f"parameter `{pname}`"
        try:
            return _resolve_one(ann, self.globalns, self.base_locals)
        except NameError as exc:
            found = self._in_enclosing_scopes(ann)
            if found is not _MISSING:
                return found
            raise self._unresolved(exc, where, ann) from exc
        except Exception as exc:
            raise GraphError(
                f"{self.what}: the annotation of {where} ({_ann_text(ann)}) is not a valid "
                f"type: {exc}"
            ) from exc

    def _in_enclosing_scopes(self, ann: Any) -> Any:
        if self._enclosing is None:
            self._enclosing = _enclosing_locals(self.target)
        if not self._enclosing:
            return _MISSING
        try:
            return _resolve_one(ann, self.globalns, {**self._enclosing, **self.base_locals})
        except Exception:  # report the first error
            return _MISSING

    def _unresolved(self, exc: NameError, where: str, ann: Any) -> GraphError:
        missing = getattr(exc, "name", None) or str(exc)
        module = getattr(self.target, "__module__", "?")
        return GraphError(
            f"{self.what}: cannot resolve the type `{missing}` used in {where} "
            f"(annotation {_ann_text(ann)!s}); it is not defined in module `{module}` "
            f"when the decorator runs. Import or define it at module level, above the "
            f"{self.kind_word} (names imported only under `if TYPE_CHECKING:` are not available)"
        )


_MISSING: Any = object()  # "not resolved" (None is a valid annotation)


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
