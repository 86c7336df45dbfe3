"""A trigger's definition and what it has seen, as documents in the store.

Layout (every path below ``triggers/``)::

    triggers/<name>.json                 the definition (:class:`TriggerDef`)
    triggers/<name>/state.json           what its sensor has seen (the cursor)
    triggers/<name>/fired/<event>.json   one claim per event it fired (exactly once)

The definition is data anyone with write access to the store can plant or damage, so
:meth:`TriggerDef.from_dict` checks every field's type and value; a bad one raises
:class:`TriggerDefError` naming the field, and the scheduler skips that trigger with a
warning instead of failing its tick.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

from flowkit.errors import FlowkitError
from flowkit.events import EventKind

On = Literal["success", "failure", "alias", "new"]
ONS: Final[tuple[On, ...]] = ("success", "failure", "alias", "new")
#: The :class:`flowkit.events.Event` kind each sensor reports.
EVENT_KIND: Final[Mapping[On, EventKind]] = {
    "success": "success",
    "failure": "failure",
    "alias": "alias",
    "new": "new_objects",
}
ROOT: Final = "triggers"
FORMAT: Final = 1
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class TriggerDefError(FlowkitError, ValueError):
    """A trigger definition (given, or read from the store) that is not valid."""


def check_name(name: str) -> str:
    """``name`` if it can name a trigger (it becomes a file name in the store)."""
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None or name.endswith(".json"):
        raise TriggerDefError(
            f"trigger name {name!r} is not valid: use up to 100 letters, digits, '_', '.' and "
            "'-', starting with a letter or digit (e.g. retrain-on-promote)"
        )
    return name


def definition_path(name: str) -> str:
    return f"{ROOT}/{check_name(name)}.json"


def folder(name: str) -> str:
    """``triggers/<name>``: the trigger's state and its claims."""
    return f"{ROOT}/{check_name(name)}"


def state_path(name: str) -> str:
    return f"{folder(name)}/state.json"


def fired_folder(name: str) -> str:
    return f"{folder(name)}/fired"


@dataclasses.dataclass(frozen=True)
class TriggerDef:
    """What to run (``target``: ``/abs/FILE.py:WORKFLOW``) when what happens.

    ``on`` and ``source``: ``success`` / ``failure`` and a workflow name, ``alias`` and
    ``MODEL@ALIAS`` (looked up in the MLflow registry at ``tracking_uri``), ``new`` and an
    fsspec URL prefix. ``params``: the target's inputs as command-line texts.
    ``event_param``: the target's input annotated ``fk.Event`` (None: the workflow does not
    take the event). ``paused``: evaluated by nobody until resumed.
    """

    name: str
    target: str
    workflow: str
    on: On
    source: str
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)
    event_param: str | None = None
    backend: str | None = None
    notify: tuple[str, ...] = ()
    tracking_uri: str | None = None
    paused: bool = False
    created: float = 0.0

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.on not in ONS:
            raise TriggerDefError(f"trigger {self.name}: on={self.on!r}: use one of {ONS}")
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "notify", tuple(self.notify))

    @property
    def event_kind(self) -> EventKind:
        return EVENT_KIND[self.on]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["notify"] = list(self.notify)
        d["format"] = FORMAT
        return d

    @classmethod
    def from_dict(cls, d: Any, name: str) -> TriggerDef:
        """The definition in document ``d`` stored as ``name``; TriggerDefError naming the
        field that is missing or of the wrong type."""
        if not isinstance(d, dict):
            raise TriggerDefError(f"trigger {name}: the definition is not a JSON object")
        if d.get("format") != FORMAT:
            raise TriggerDefError(
                f"trigger {name}: format {d.get('format')!r}, this flowkit reads format {FORMAT}"
            )
        if d.get("name") != name:
            raise TriggerDefError(f"trigger {name}: its file names trigger {d.get('name')!r}")
        text = _fields(d, name)
        return cls(
            name=name,
            target=text("target"),
            workflow=text("workflow"),
            on=_on(d.get("on"), name),
            source=text("source"),
            params=_str_map(d.get("params"), name),
            event_param=text("event_param", optional=True) or None,
            backend=text("backend", optional=True) or None,
            notify=tuple(_str_list(d.get("notify"), name)),
            tracking_uri=text("tracking_uri", optional=True) or None,
            paused=_bool(d.get("paused"), name),
            created=_number(d.get("created"), name),
        )


def _fields(d: dict[str, Any], name: str) -> Any:
    def text(key: str, *, optional: bool = False) -> str:
        value = d.get(key)
        if value is None and optional:
            return ""
        if not isinstance(value, str) or not value:
            raise TriggerDefError(f"trigger {name}: field {key!r} must be a non-empty string")
        return value

    return text


def _on(value: Any, name: str) -> On:
    for on in ONS:
        if value == on:
            return on
    raise TriggerDefError(f"trigger {name}: field 'on' is {value!r}, not one of {ONS}")


def _str_map(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TriggerDefError(f"trigger {name}: field 'params' must map names to strings")
    return dict(value)


def _str_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TriggerDefError(f"trigger {name}: field 'notify' must be a list of URLs")
    return list(value)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TriggerDefError(f"trigger {name}: field 'paused' must be true or false")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TriggerDefError(f"trigger {name}: field 'created' must be a number")
    return float(value)


__all__ = [
    "EVENT_KIND",
    "ONS",
    "ROOT",
    "On",
    "TriggerDef",
    "TriggerDefError",
    "check_name",
    "definition_path",
    "fired_folder",
    "folder",
    "state_path",
]
