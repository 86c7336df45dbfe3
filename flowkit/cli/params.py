"""Workflow parameters as typed command-line options.

Each workflow input ``name: T`` becomes ``--name VALUE`` (``--long-name`` works too for
``long_name``). The text is converted by the annotation:

=====================  ==================================================================
annotation             accepted text
=====================  ==================================================================
``int`` / ``float``    ``5``, ``-2``, ``0.5``, ``1e-3``
``bool``               ``true/false``, ``yes/no``, ``1/0``, ``on/off`` (any case)
``str``                the text as is
``pathlib.Path``       a path (``fk.File`` / ``fk.Directory`` likewise)
``Optional[X]``        ``none`` or ``null`` for None, else as ``X``
``Union[A, B]``        the first member that accepts the text
``list[T]``, ``tuple``  ``1,2,3`` (each item converted as ``T``) or JSON ``[1, 2, 3]``
``dict[K, V]``         JSON ``{"a": 1}`` (keys converted as ``K``)
``Literal[...]``       one of the values
an ``Enum``            a member name or value
``Any``                JSON if it parses, else the text
``fk.FireTime``        an ISO 8601 time with its offset: ``2026-03-29T02:00:00+01:00``
``fk.Event``           the event as JSON: ``{"kind": "manual"}`` (see ``fk.Event``)
``fk.Secret``          ``env:NAME`` (read from the environment) or ``file:PATH`` (the
                       file's first line); never the secret itself
=====================  ==================================================================

A secret written on the command line would sit in the shell's history and in ``ps`` for every
user of the machine, so a ``fk.Secret`` parameter refuses a literal value, and no error
message about one quotes the text given.

Other types (a ``pyarrow.Table``, a model) cannot be written on a command line: such a
parameter must have a default, and giving it is an error that says so. Inputs with a
default are optional; the others are required. Defaults are applied by the workflow (the
option only carries what was given), so the values are exactly what ``fk.run`` would get.
"""

from __future__ import annotations

import argparse
import enum
import json
import types
import typing
from collections import abc
from collections.abc import Callable
from pathlib import PurePath
from typing import Any, Union

from flowkit import typecheck
from flowkit.events import Event, FireTime
from flowkit.files import Directory, File
from flowkit.reprs import short_repr
from flowkit.secret import Secret, SecretError
from flowkit.workflow import WorkflowDef

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})
_NONE = frozenset({"none", "null"})
_NoneType = type(None)
_SEQUENCES = (
    list,
    tuple,
    set,
    frozenset,
    abc.Sequence,
    abc.MutableSequence,
    abc.Set,
    abc.MutableSet,
    abc.Collection,
    abc.Iterable,
)
_MAPPINGS = (dict, abc.Mapping, abc.MutableMapping)

# Names the `run` / `cache explain` commands use themselves; a workflow input with one of
# these names is given as --input-NAME instead.
RESERVED = frozenset(
    {
        "help",
        "h",
        "backend",
        "store",
        "no_cache",
        "refresh",
        "traceback",
        "quiet",
        "q",
        "resume",
        "read_only",
        "tag",
        "run_id",
        "secret",
        "notify",
        "notify_on",
        "pool_limit",
        "callback",
    }
)


class ParamError(ValueError):
    """Text that does not convert to the parameter's type."""


def describe(tp: Any) -> str:
    """The type and what text it takes, for help and error messages."""
    tp = typecheck.strip_annotated(tp)
    name = typecheck.type_repr(tp)
    hint = _hint(tp)
    return f"{name} ({hint})" if hint else name


SECRET_FORMS = "env:NAME (an environment variable) or file:PATH (a file's first line)"


_SCALAR_HINTS: dict[Any, str] = {
    bool: "true/false",
    int: "an integer",
    float: "a number",
    Secret: SECRET_FORMS,
}


def _hint(tp: Any) -> str:
    origin = typing.get_origin(tp)
    scalar = _SCALAR_HINTS.get(tp) if isinstance(tp, type) else None
    if scalar is not None:
        return scalar
    if _is_union(tp):
        args = typing.get_args(tp)
        inner = [a for a in args if a is not _NoneType]
        more = " or none" if _NoneType in args else ""
        if len(inner) == 1:
            h = _hint(inner[0])
            return f"{h}{more}" if h else more.removeprefix(" or ")
        return more.removeprefix(" or ")
    if tp in _SEQUENCES or origin in _SEQUENCES:
        return "comma-separated or a JSON list"
    if tp in _MAPPINGS or origin in _MAPPINGS:
        return "a JSON object"
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(m.name for m in tp)
    return ""


def supported(tp: Any) -> bool:
    """True if a value of type ``tp`` can be written on a command line."""
    tp = typecheck.strip_annotated(tp)
    if (
        tp is Any
        or tp is object
        or tp in (bool, int, float, str, _NoneType, Secret, FireTime, Event)
    ):
        return True
    if _is_union(tp):
        return all(supported(a) for a in typing.get_args(tp))
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return True
    if isinstance(tp, type) and issubclass(tp, (PurePath, File, Directory, enum.Enum)):
        return True
    if tp in _SEQUENCES or tp in _MAPPINGS:
        return True
    if origin in _SEQUENCES or origin in _MAPPINGS:
        return all(a is Ellipsis or supported(a) for a in typing.get_args(tp))
    return False


def parse_value(text: str, tp: Any) -> Any:
    """Convert command-line ``text`` to a value of type ``tp`` (see the module table).

    >>> parse_value("2,4,8", list[int])
    [2, 4, 8]
    """
    tp = typecheck.strip_annotated(tp)
    if tp is Any or tp is object:
        try:
            return json.loads(text)
        except ValueError:
            return text
    if tp is _NoneType:
        if text.strip().lower() in _NONE:
            return None
        raise ParamError(text)
    if _is_union(tp):
        if _NoneType in typing.get_args(tp) and text.strip().lower() in _NONE:
            return None
        return _first_member_that_accepts(parse_value, text, tp)
    parse = _PARSE_BUILTIN.get(tp) if isinstance(tp, type) else None
    if parse is not None:
        return parse(text)
    if _is_sequence(tp):
        return _parse_sequence(text, tp)
    if _is_mapping(tp):
        return coerce(_json(text), tp)
    return _scalar(text, tp)


def _parse_sequence(text: str, tp: Any) -> Any:
    """``1,2,3`` or a JSON list."""
    stripped = text.strip()
    if stripped.startswith("["):
        return coerce(_json(stripped), tp)
    items = [] if not stripped else stripped.split(",")
    return _collect([("text", item.strip()) for item in items], tp)


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ParamError(text)


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ParamError(text) from None


def _parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ParamError(text) from None


def _parse_str(text: str) -> str:
    return text


def _parse_secret(text: str) -> Secret:
    """``env:NAME`` or ``file:PATH``; a literal is refused (see the module docstring)."""
    kind, sep, rest = text.partition(":")
    if sep and rest and kind == "env":
        return Secret.from_env(rest)
    if sep and rest and kind == "file":
        return Secret.from_file(rest)
    raise ParamError("<secret>")  # never the text itself


def _parse_fire_time(text: str) -> FireTime:
    try:
        return FireTime.parse(text)
    except ValueError:
        raise ParamError(text) from None


def _parse_event(text: str) -> Event:
    try:
        return Event.from_json(text)
    except ValueError:
        raise ParamError(text) from None


_PARSE_BUILTIN: dict[type, Callable[[str], Any]] = {
    bool: _parse_bool,
    int: _parse_int,
    float: _parse_float,
    str: _parse_str,
    Secret: _parse_secret,
    FireTime: _parse_fire_time,
    Event: _parse_event,
}


def _first_member_that_accepts(convert: Callable[[Any, Any], Any], raw: Any, tp: Any) -> Any:
    """``convert(raw, member)`` for the first member of the union ``tp`` (None aside) that
    accepts ``raw``."""
    for member in typing.get_args(tp):
        if member is _NoneType:
            continue
        try:
            return convert(raw, member)
        except ParamError:
            continue
    raise ParamError(raw)


def _scalar(text: str, tp: Any) -> Any:
    """Literal, enum and path-like types (the ones that are not containers or builtins)."""
    if typing.get_origin(tp) is typing.Literal:
        for choice in typing.get_args(tp):
            if str(choice) == text or repr(choice) == text:
                return choice
        raise ParamError(text)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if member.name == text or str(member.value) == text:
                return member
        raise ParamError(text)
    if isinstance(tp, type) and issubclass(tp, (PurePath, File, Directory)):
        if not text:
            raise ParamError(text)
        return tp(text)
    raise ParamError(text)


def coerce(value: Any, tp: Any) -> Any:
    """Convert a JSON-decoded ``value`` to type ``tp`` (ints to floats, strings to paths...)."""
    tp = typecheck.strip_annotated(tp)
    if tp is Any or tp is object:
        return value
    if value is None:
        if tp is _NoneType or (_is_union(tp) and _NoneType in typing.get_args(tp)):
            return None
        raise ParamError(value)
    if _is_union(tp):
        return _first_member_that_accepts(coerce, value, tp)
    if isinstance(value, str) and tp is not str:
        return parse_value(value, tp)
    check = _COERCE_BUILTIN.get(tp) if isinstance(tp, type) else None
    if check is not None:
        return check(value)
    if _is_sequence(tp):
        if not isinstance(value, list):
            raise ParamError(value)
        return _collect([("json", v) for v in value], tp)
    if _is_mapping(tp):
        return _coerce_mapping(value, tp)
    return _coerce_choice(value, tp)


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ParamError(value)


def _coerce_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ParamError(value)


def _coerce_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ParamError(value)


def _coerce_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ParamError(value)


_COERCE_BUILTIN: dict[type, Callable[[Any], Any]] = {
    bool: _coerce_bool,
    int: _coerce_int,
    float: _coerce_float,
    str: _coerce_str,
}


def _coerce_mapping(value: Any, tp: Any) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ParamError(value)
    args = typing.get_args(tp)
    ktype, vtype = args if len(args) == 2 else (Any, Any)
    return {
        (k if ktype in (Any, str) else parse_value(k, ktype)): coerce(v, vtype)
        for k, v in value.items()
    }


def _coerce_choice(value: Any, tp: Any) -> Any:
    """A JSON value as a Literal's value or an Enum member (by value)."""
    if typing.get_origin(tp) is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise ParamError(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if member.value == value:
                return member
    raise ParamError(value)


def _collect(items: list[tuple[str, Any]], tp: Any) -> Any:
    """Build the container ``tp`` from raw items (``("text", s)`` or ``("json", v)``)."""
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if args == ((),):
            args = ()
        if len(items) != len(args):
            raise ParamError(items)
        types_ = list(args)
    else:
        types_ = [args[0] if args else Any] * len(items)
    out = [
        parse_value(raw, t) if kind == "text" else coerce(raw, t)
        for (kind, raw), t in zip(items, types_, strict=True)
    ]
    if origin is tuple:
        return tuple(out)
    if origin in (set, abc.Set, abc.MutableSet):
        return set(out)
    if origin is frozenset:
        return frozenset(out)
    return out


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ParamError(text) from None


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _is_sequence(tp: Any) -> bool:
    return tp in _SEQUENCES or typing.get_origin(tp) in _SEQUENCES


def _is_mapping(tp: Any) -> bool:
    return tp in _MAPPINGS or typing.get_origin(tp) in _MAPPINGS


class Converter:
    """The ``type=`` of an option: converts text, or raises argparse's error naming the type."""

    def __init__(self, name: str, tp: Any) -> None:
        self.name = name
        self.tp = tp
        self.__name__ = typecheck.type_repr(tp)

    def __call__(self, text: str) -> Any:
        if not supported(self.tp):
            raise argparse.ArgumentTypeError(
                f"input `{self.name}` has type {typecheck.type_repr(self.tp)}, which cannot be "
                "given on the command line; use its default or call fk.run from Python"
            )
        try:
            return parse_value(text, self.tp)
        except SecretError as exc:
            raise argparse.ArgumentTypeError(f"input `{self.name}`: {exc}") from None
        except ParamError:
            if mentions_secret(self.tp):  # the text may be the secret: never quote it
                raise argparse.ArgumentTypeError(
                    f"input `{self.name}` is a fk.Secret: give {SECRET_FORMS}, not the "
                    "secret itself (a command line is kept in the shell history and shown "
                    "by ps)"
                ) from None
            raise argparse.ArgumentTypeError(
                f"expected {describe(self.tp)}, got {text!r}"
            ) from None


def mentions_secret(tp: Any) -> bool:
    """True if ``tp`` is ``fk.Secret`` or has it among its arguments (``list[Secret]``...)."""
    tp = typecheck.strip_annotated(tp)
    if tp is Secret:
        return True
    return any(mentions_secret(a) for a in typing.get_args(tp) if a is not Ellipsis)


def option_names(name: str) -> list[str]:
    """``--name`` (and ``--long-name`` for ``long_name``); ``--input-NAME`` for reserved names."""
    if name in RESERVED:
        return [f"--input-{name}".replace("_", "-")]
    names = [f"--{name}"]
    dashed = f"--{name.replace('_', '-')}"
    if dashed != names[0]:
        names.append(dashed)
    return names


def add_workflow_options(parser: argparse.ArgumentParser, wf: WorkflowDef[..., Any]) -> None:
    """One option per workflow input; values land in the namespace under ``input:NAME``."""
    group = parser.add_argument_group(
        f"inputs of workflow `{wf.name}`",
        "values are converted by the annotations; inputs without a default are required",
    )
    for inp in wf.inputs:
        if inp.has_default:
            note = f"default: {short_repr(inp.default)}"
        else:
            note = "required"
        group.add_argument(
            *option_names(inp.name),
            dest=f"input:{inp.name}",
            metavar=inp.name.upper(),  # the type goes in the help: brackets upset argparse
            type=Converter(inp.name, inp.type),
            # a required input of an unwritable type is reported by check_runnable instead
            required=not inp.has_default and supported(inp.type),
            default=argparse.SUPPRESS,
            help=f"{describe(inp.type)}; {note}".replace("%", "%%"),
        )


def workflow_inputs(ns: argparse.Namespace) -> dict[str, Any]:
    """The inputs given on the command line (defaults are left to the workflow)."""
    return {k.split(":", 1)[1]: v for k, v in vars(ns).items() if k.startswith("input:")}


def check_runnable(wf: WorkflowDef[..., Any]) -> str | None:
    """Why ``wf`` cannot be run from the command line (a required input of a type that
    cannot be written as text), or None."""
    for inp in wf.inputs:
        if not inp.has_default and not supported(inp.type):
            return (
                f"workflow `{wf.name}` input `{inp.name}` has type "
                f"{typecheck.type_repr(inp.type)} and no default, so it cannot be given on "
                "the command line; give it a default or call fk.run from Python"
            )
    return None
