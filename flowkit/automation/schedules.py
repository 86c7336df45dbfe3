"""Schedules in the store, and ``fk.schedule``: the Python twin of ``flowkit schedule add``.

::

    fk.schedule(train, cron="0 3 * * *", tz="Europe/Paris", params={"epochs": 5})

Every change to a schedule's document is a conditional write (create if absent, or
compare-and-swap on the version read, retried on a race), so ``flowkit schedule pause`` and
a scheduler recording a fire at the same moment never undo each other. The scheduler
(:mod:`flowkit.automation.scheduler`) fires what is stored here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import logging
import os
import sys
import time
import types
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any

from flowkit import typecheck
from flowkit.automation.crontimes import UTC
from flowkit.automation.schedule_defs import (
    ROOT,
    Catchup,
    Overlap,
    ScheduleDef,
    ScheduleDefError,
    check_name,
    definition_path,
    iso,
)
from flowkit.errors import StoreError
from flowkit.events import FireTime
from flowkit.fsio import ObjectMissing, ObjectUnavailable
from flowkit.store import Store
from flowkit.workflow import WorkflowDef

log = logging.getLogger("flowkit.automation")
CAS_TRIES = 20


class UnknownScheduleError(ScheduleDefError, LookupError):
    """A schedule name that is not in the store."""


def names(store: Store) -> list[str]:
    """The names of the store's schedules, sorted (files that cannot name one are ignored)."""
    found = []
    for entry in store.list_dir(ROOT):
        stem = entry[: -len(".json")]
        if entry.endswith(".json") and _valid_name(stem):
            found.append(stem)
    return sorted(found)


def read(store: Store, name: str) -> ScheduleDef:
    """The schedule ``name``; UnknownScheduleError naming the store's schedules if there is
    none, ScheduleDefError if its document is damaged."""
    check_name(name)
    try:
        doc = store.read_doc(definition_path(name))
    except ObjectMissing as exc:
        if type(exc) is ObjectMissing:
            raise _unknown(store, name) from exc
        raise ScheduleDefError(f"schedule {name}: {exc}") from exc
    except ObjectUnavailable as exc:
        raise ScheduleDefError(f"schedule {name}: {exc}") from exc
    return ScheduleDef.from_dict(doc, name)


def _unknown(store: Store, name: str) -> UnknownScheduleError:
    known = names(store)
    listed = ", ".join(known) if known else "none"
    return UnknownScheduleError(
        f"no schedule {name!r} in store {store.url} (schedules: {listed}); "
        "`flowkit schedule list` shows them, `flowkit schedule add` makes one"
    )


def add(store: Store, definition: ScheduleDef) -> ScheduleDef:
    """Store a new schedule; ScheduleDefError if one of that name exists already."""
    if not store.create_doc(definition_path(definition.name), definition.to_dict()):
        raise ScheduleDefError(
            f"schedule {definition.name!r} already exists in store {store.url}: choose another "
            f"--name, or `flowkit schedule remove {definition.name}` first"
        )
    return definition


def upsert(store: Store, definition: ScheduleDef) -> tuple[ScheduleDef, str]:
    """Store ``definition``, keeping the state (last fire, pause...) of a schedule of that
    name already there; (what is stored, ``added`` / ``updated`` / ``unchanged``)."""
    for _ in range(CAS_TRIES):
        if store.create_doc(definition_path(definition.name), definition.to_dict()):
            return definition, "added"
        try:
            old, version = read_versioned(store, definition.name)
        except UnknownScheduleError:
            continue  # removed meanwhile: create it again
        if old.definition() == definition.definition():
            return old, "unchanged"
        new = dataclasses.replace(
            definition,
            created=old.created,
            paused=old.paused,
            last_fire=old.last_fire,
            resumed=old.resumed,
            pending=old.pending,
            last_run=old.last_run,
        )
        if store.replace_doc(definition_path(definition.name), new.to_dict(), version):
            return new, "updated"
    raise StoreError(f"schedule {definition.name}: the document kept changing; try again")


def update(
    store: Store, name: str, change: Callable[[ScheduleDef], ScheduleDef]
) -> ScheduleDef | None:
    """Apply ``change`` to the stored schedule by compare-and-swap (retried on a race); the
    schedule as stored, or None if it is gone (removed meanwhile: not made again)."""
    for _ in range(CAS_TRIES):
        try:
            old, version = read_versioned(store, name)
        except UnknownScheduleError:
            return None
        new = change(old)
        if new == old or store.replace_doc(definition_path(name), new.to_dict(), version):
            return new
    raise StoreError(f"schedule {name}: the document kept changing; try again")


def read_versioned(store: Store, name: str) -> tuple[ScheduleDef, str]:
    """(the schedule ``name``, the version read) for a compare-and-swap; the errors of
    :func:`read`."""
    try:
        doc, version = store.read_doc_versioned(definition_path(name))
    except ObjectMissing as exc:
        if type(exc) is ObjectMissing:
            raise _unknown(store, name) from exc
        raise ScheduleDefError(f"schedule {name}: {exc}") from exc
    except ObjectUnavailable as exc:
        raise ScheduleDefError(f"schedule {name}: {exc}") from exc
    return ScheduleDef.from_dict(doc, name), version


def set_paused(
    store: Store, name: str, paused: bool, now: dt.datetime | None = None
) -> ScheduleDef:
    """Pause or resume ``name``. A resumed schedule does not run the fires that fell while it
    was paused (``flowkit schedule backfill`` does)."""
    when = iso(now or dt.datetime.now(UTC))

    def change(sd: ScheduleDef) -> ScheduleDef:
        if sd.paused == paused:
            return sd
        return dataclasses.replace(sd, paused=paused, resumed=None if paused else when)

    done = update(store, check_name(name), change)
    if done is None:
        raise _unknown(store, name)
    return done


def remove(store: Store, name: str) -> None:
    """Delete the schedule ``name`` (its fire claims stay: a schedule added again under the
    name never re-runs a time already fired). UnknownScheduleError if there is none; a
    damaged document is removed all the same."""
    if f"{check_name(name)}.json" not in store.list_dir(ROOT):
        raise _unknown(store, name)
    store.delete(definition_path(name))


# -- fk.schedule ----------------------------------------------------------------------------


def fire_param(wf: WorkflowDef[..., Any]) -> str | None:
    """The input of ``wf`` annotated ``fk.FireTime`` (``FireTime | None`` too), or None."""
    for inp in wf.inputs:
        tp = typecheck.strip_annotated(inp.type)
        union = typing.get_origin(tp) in (typing.Union, types.UnionType)
        if FireTime in (typing.get_args(tp) if union else (tp,)):
            return inp.name
    return None


def target_of(wf: WorkflowDef[..., Any]) -> str:
    """``/abs/FILE.py:NAME`` for a workflow defined in a file (what ``flowkit run`` loads)."""
    try:
        path = inspect.getsourcefile(wf.fn)
    except TypeError:
        path = None
    if path is None or not os.path.isfile(path):
        raise ScheduleDefError(
            f"workflow `{wf.name}` is not defined in a Python file the scheduler can load "
            "(a notebook or an interactive session): move it into a .py file"
        )
    module = sys.modules.get(getattr(wf.fn, "__module__", ""), None)
    found = vars(module).items() if module is not None else ()
    attr = next((k for k, v in found if v is wf and k.isidentifier()), None)
    name = attr or wf.name
    if not name.isidentifier():
        raise ScheduleDefError(
            f"workflow `{wf.name}`: assign it to a module-level name so the scheduler can "
            "find it (FILE.py:NAME)"
        )
    return f"{os.path.abspath(path)}:{name}"


def param_texts(wf: WorkflowDef[..., Any], params: Mapping[str, Any]) -> dict[str, str]:
    """``params`` as the command-line texts a fire passes; ScheduleDefError naming an
    unknown input, the FireTime input (the scheduler fills it), or a missing required one."""
    inputs = {inp.name: inp for inp in wf.inputs}
    timed = fire_param(wf)
    texts: dict[str, str] = {}
    for key, value in params.items():
        if key not in inputs:
            raise ScheduleDefError(
                f"workflow `{wf.name}` has no input {key!r}; its inputs: "
                f"{', '.join(inputs) or '(none)'}"
            )
        if key == timed:
            raise ScheduleDefError(
                f"input {key!r} of workflow `{wf.name}` is an fk.FireTime: each fire gives it "
                "its own time; do not set it"
            )
        texts[key] = value_text(value, f"input {key!r}")
    missing = [
        n for n, inp in inputs.items() if not inp.has_default and n not in texts and n != timed
    ]
    if missing:
        raise ScheduleDefError(
            f"workflow `{wf.name}` needs input(s) {', '.join(missing)} with no default: give "
            "them in params (--param NAME=VALUE)"
        )
    return texts


def value_text(value: Any, what: str) -> str:
    """A Python value as the text ``flowkit run`` converts back (JSON for containers)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, (PurePath, os.PathLike)):
        return os.fspath(value)
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ScheduleDefError(
            f"{what}: {type(value).__name__} cannot be given on the command line; give a "
            "str, number, bool, path or JSON-able list/dict"
        ) from exc


def make(
    wf: WorkflowDef[..., Any] | str,
    *,
    cron: str,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tz: str = "UTC",
    catchup: Catchup = "latest",
    overlap: Overlap = "skip",
    backend: str | None = None,
    address: str | None = None,
    notify: tuple[str, ...] | list[str] = (),
    start: dt.datetime | None = None,
    now: dt.datetime | None = None,
    fire_time_param: str | None = None,
) -> ScheduleDef:
    """A checked :class:`ScheduleDef` (not stored). ``wf`` is a workflow, or a
    ``/path/FILE.py:NAME`` text whose inputs were checked by the caller (the CLI)."""
    if isinstance(wf, WorkflowDef):
        target, workflow = target_of(wf), wf.name
        texts = param_texts(wf, params or {})
        timed = fire_param(wf)
    elif isinstance(wf, str):
        target, workflow = wf, wf.rpartition(":")[2] or wf
        texts = {k: value_text(v, f"input {k!r}") for k, v in (params or {}).items()}
        timed = fire_time_param
    else:
        raise ScheduleDefError(
            f"fk.schedule: give a workflow (@fk.workflow) or FILE.py:NAME, not {wf!r}"
        )
    for url in notify:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ScheduleDefError(f"notify URL {url!r}: give an http:// or https:// URL")
    if address is not None and not address.startswith(("http://", "https://")):
        raise ScheduleDefError(
            f"address {address!r}: give the Ray dashboard's URL, http://HEAD:8265"
        )
    if start is not None and (start.tzinfo is None or start.utcoffset() is None):
        raise ScheduleDefError(f"start {start.isoformat()} has no time zone: give an aware time")
    return ScheduleDef(
        name=check_name(name or workflow),
        target=target,
        workflow=workflow,
        cron=cron,
        tz=tz,
        params=texts,
        fire_param=timed,
        catchup=catchup,
        overlap=overlap,
        backend=backend,
        address=address,
        notify=tuple(notify),
        created=iso(now or dt.datetime.fromtimestamp(time.time(), UTC)),
        start=None if start is None else iso(start),
    )


def schedule(
    wf: WorkflowDef[..., Any],
    *,
    cron: str,
    params: Mapping[str, Any] | None = None,
    name: str | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    tz: str = "UTC",
    catchup: Catchup = "latest",
    overlap: Overlap = "skip",
    backend: str | None = None,
    address: str | None = None,
    notify: tuple[str, ...] | list[str] = (),
    start: dt.datetime | None = None,
) -> ScheduleDef:
    """Keep ``wf`` firing at the times ``cron`` names in zone ``tz`` (run by
    ``flowkit scheduler`` on the same store): ``flowkit schedule add`` from Python.

    Calling it again with the same name updates the schedule and keeps its last fire time
    (so a script may call it at every start). ``params``: the workflow's inputs (Python
    values, given to each fire as command-line texts); an input annotated ``fk.FireTime``
    receives each fire's logical time. ``catchup``: ``none`` / ``latest`` (default) / ``all``
    fires missed while no scheduler ran; ``overlap``: ``skip`` (default) / ``queue`` /
    ``allow`` a fire while the previous one still runs. ``address``: submit fires to this
    Ray cluster as jobs. ``notify``: webhook URLs told when each fire ends. Returns the
    stored schedule. ScheduleDefError (a FlowkitError) names anything wrong.
    """
    the_store = Store.open(store)
    the_store.check()
    definition = make(
        wf,
        cron=cron,
        name=name,
        params=params,
        tz=tz,
        catchup=catchup,
        overlap=overlap,
        backend=backend,
        address=address,
        notify=notify,
        start=start,
    )
    stored, _ = upsert(the_store, definition)
    return stored


def _valid_name(name: str) -> bool:
    try:
        check_name(name)
    except ScheduleDefError:
        return False
    return True


__all__ = [
    "UnknownScheduleError",
    "add",
    "fire_param",
    "make",
    "names",
    "param_texts",
    "read",
    "read_versioned",
    "remove",
    "schedule",
    "set_paused",
    "target_of",
    "update",
    "upsert",
    "value_text",
]
