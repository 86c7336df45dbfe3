"""Triggers: run a workflow when another one ends, when a registry alias moves, or when new
objects appear under a prefix. The scheduler loop calls :func:`due` on every tick.

For each trigger that is not paused, :func:`due` asks its sensor what happened since its
cursor (:mod:`flowkit.automation.sensing`), claims each event in the store
(``triggers/<name>/fired/<key>.json``, created only if absent: :mod:`flowkit.automation.claims`)
and returns a :class:`~flowkit.automation.launch.Launch` for each claim it won, with the run
id chosen now, tags ``trigger=<name>`` and ``event=<kind>``, and the event's JSON as the
target's ``fk.Event`` input. Only then is the cursor moved on. So:

* two schedulers (or a restarted one) evaluating the same trigger fire each event once:
  the event keys come from what was seen, and only one of them creates the claim;
* a sensor that fails (a bucket unreachable, MLflow down, the store not answering) logs a
  warning, fires nothing and keeps its cursor: what happened meanwhile fires on a later tick;
* a trigger whose definition is damaged is skipped with a warning naming it; a damaged cursor
  is replaced by the present state (with a warning: events between the last good state and
  now are not fired). The cursor is written by compare-and-swap: a caller that looked
  before another one moved it on cannot move it back (which could lose an alias move).

A trigger's first look records the present state without firing (see its sensor). A claim
is made before the run starts: a scheduler that dies between the two leaves a claimed event
with no run (at most once, never twice).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flowkit.automation.launch import Launch
from flowkit.automation.sensing import CursorError, Found, Look, Sensor
from flowkit.automation.sensor_alias import AliasSensor, parse_source
from flowkit.automation.sensor_objects import ObjectsSensor
from flowkit.automation.sensor_runs import RunsSensor
from flowkit.automation.trigger_defs import TriggerDef, TriggerDefError, fired_folder, state_path
from flowkit.automation.trigger_store import UnknownTriggerError, load, names
from flowkit.errors import StoreError
from flowkit.events import Event
from flowkit.fsio import ObjectMissing, ObjectUnavailable
from flowkit.records import new_run_id
from flowkit.store import Store

log = logging.getLogger(__name__)

# New objects per run: the event is one command-line argument, and Linux caps one at 128 KiB.
MAX_URLS = 500
MAX_URL_CHARS = 64 * 1024

# The last warning given per trigger: a sensor down for an hour warns once, not every tick.
_warned: dict[str, str] = {}


def due(store: Store, now: float) -> list[Launch]:
    """The runs triggers want started now, each already claimed (start every one)."""
    launches: list[Launch] = []
    try:
        found = names(store)
    except StoreError as exc:
        _warn("", f"triggers not evaluated: cannot list them in store {store.url}: {exc}")
        return []
    for name in found:
        try:
            definition = load(store, name)
        except TriggerDefError as exc:
            _warn(name, f"{exc}; skipped (fix it or `flowkit trigger remove {name}`)")
            continue
        except UnknownTriggerError:
            continue  # removed since the listing
        except StoreError as exc:
            _warn(name, f"trigger {name} skipped: its definition cannot be read: {exc}")
            continue
        if definition.paused:
            continue
        try:
            launches.extend(evaluate(store, definition, now))
        except Exception as exc:  # never lose the launches other triggers claimed
            _warn(name, f"trigger {name} not evaluated: {type(exc).__name__}: {exc}")
    return launches


def sensor_for(store: Store, definition: TriggerDef) -> Sensor:
    """The sensor that watches what ``definition`` is triggered by."""
    if definition.on == "success" or definition.on == "failure":
        return RunsSensor(store, definition.name, definition.source, definition.on)
    if definition.on == "alias":
        model, alias = parse_source(definition.source)
        return AliasSensor(definition.name, model, alias, definition.tracking_uri)
    return ObjectsSensor(definition.name, definition.source)


def evaluate(store: Store, definition: TriggerDef, now: float) -> list[Launch]:
    """One look of one trigger: the launches of the events it claimed (see the module)."""
    name = definition.name
    try:
        cursor, version = read_cursor(store, definition)
    except StoreError as exc:
        _warn(name, f"trigger {name} not evaluated: its state cannot be read: {exc}")
        return []
    sensor = sensor_for(store, definition)
    try:
        look = _look(sensor, definition, cursor, now)
    except Exception as exc:  # whatever the source raises: the loop must go on
        what = f"{type(exc).__name__}: {exc}"
        _warn(name, f"trigger {name}: {_what(definition)} could not be read ({what}); nothing "
              "fired, its state is kept, it looks again at the next tick")  # fmt: skip
        return []
    launches, complete = _fire(store, definition, look.found, now)
    if complete:
        try:
            write_cursor(store, definition, look.cursor, now, version)
        except StoreError as exc:  # the claims keep the next look from firing twice
            _warn(name, f"trigger {name}: its state could not be written: {exc}")
            return launches
    if cursor is None:
        log.info(
            "trigger %s: first look at %s recorded (fires from now on)", name, _what(definition)
        )
    _recovered(name)
    return launches


def _look(
    sensor: Sensor, definition: TriggerDef, cursor: dict[str, Any] | None, now: float
) -> Look:
    try:
        return sensor.look(cursor, now)
    except CursorError as exc:
        rel = state_path(definition.name)
        _warn(definition.name, f"trigger {definition.name}: its state {rel} is damaged ({exc}); "
              "starting over from what is there now (events since its last good state are not "
              "fired)")  # fmt: skip
        return sensor.look(None, now)


def _fire(
    store: Store, definition: TriggerDef, found: list[Found], now: float
) -> tuple[list[Launch], bool]:
    """Claim each event; (the launches of the claims won, whether every claim was tried)."""
    from flowkit.automation.claims import claim

    batch = definition.on == "new"  # one run for the new objects claimed in one look
    won: dict[str, list[Event]] = {}  # run id -> its events, in order
    complete = True
    run_id, size = new_run_id(), 0  # size: of the URLs in run_id's event
    for item in found:
        grows = sum(len(u) + 4 for u in item.event.urls)
        full = len(won.get(run_id, ())) >= MAX_URLS or size + grows > MAX_URL_CHARS
        if not batch or (full and run_id in won):
            run_id, size = new_run_id(), 0
        size += grows
        body = {"trigger": definition.name, "run_id": run_id, "claimed": now,
                "event": json.loads(item.event.to_json())}  # fmt: skip
        try:
            mine = claim(store, f"{fired_folder(definition.name)}/{item.key}.json", body)
        except Exception as exc:  # the store's fault: the event is tried again next tick
            what = f"{type(exc).__name__}: {exc}"
            _warn(definition.name, f"trigger {definition.name}: could not claim an event: {what}")
            complete = False
            break
        if mine:  # else another scheduler fired it
            won.setdefault(run_id, []).append(item.event)
    launches = []
    for rid, events in won.items():
        if batch:
            urls = tuple(u for e in events for u in e.urls)
            merged = Event(kind="new_objects", trigger=definition.name, time=now,
                           prefix=definition.source, urls=urls)  # fmt: skip
            events = [merged]
        launches += [launch_for(store, definition, event, rid) for event in events]
    return launches, complete


def launch_for(store: Store, definition: TriggerDef, event: Event, run_id: str) -> Launch:
    """The run ``definition`` starts for ``event``."""
    params = dict(definition.params)
    if definition.event_param is not None:
        params[definition.event_param] = event.to_json()
    return Launch(
        target=definition.target,
        run_id=run_id,
        store=store.url,
        params=params,
        tags={"trigger": definition.name, "event": event.kind},
        backend=definition.backend,
        notify=definition.notify,
    )


def read_cursor(store: Store, definition: TriggerDef) -> tuple[dict[str, Any] | None, str | None]:
    """(what the trigger had seen, the version of its state file for :func:`write_cursor`).
    The cursor is None before the first look, or when the state is damaged, unsigned in a
    signed store or written for another source (a warning says so); the version is None when
    there is no state file. StoreError if the store cannot be read."""
    rel = state_path(definition.name)
    try:
        doc, version = store.read_doc_versioned(rel)
    except ObjectUnavailable as exc:
        if type(exc) is ObjectMissing:
            return None, None
        _warn(definition.name, f"trigger {definition.name}: its state {rel} cannot be used "
              f"({exc}); starting over from what is there now")  # fmt: skip
        return None, getattr(exc, "version", None)
    ok = (
        isinstance(doc, dict)
        and doc.get("on") == definition.on
        and doc.get("source") == definition.source
        and isinstance(doc.get("cursor"), dict)
    )
    if not ok:
        _warn(definition.name, f"trigger {definition.name}: its state {rel} is not one written "
              f"for {_what(definition)}; starting over from what is there now")  # fmt: skip
        return None, version
    cursor: dict[str, Any] = doc["cursor"]
    return cursor, version


def write_cursor(
    store: Store, definition: TriggerDef, cursor: dict[str, Any], now: float, version: str | None
) -> bool:
    """Keep ``cursor`` if the state file is still the one read (``version``; None: there was
    none): a compare-and-swap, so a caller that looked before another one moved the cursor on
    cannot move it back. False if another caller wrote first (its state is as new: the claims
    keep this look's events from firing twice)."""
    rel = state_path(definition.name)
    doc = _state_doc(definition, cursor, now)
    if version is None:
        return store.create_doc(rel, doc)
    return store.replace_doc(rel, doc, version)


def record_first_look(
    store: Store, definition: TriggerDef, cursor: dict[str, Any], now: float
) -> None:
    """Keep the state a new trigger starts from (``flowkit trigger add``), over any left."""
    store.write_doc(state_path(definition.name), _state_doc(definition, cursor, now))


def _state_doc(definition: TriggerDef, cursor: dict[str, Any], now: float) -> dict[str, Any]:
    return {"on": definition.on, "source": definition.source, "cursor": cursor, "looked": now}


def _what(definition: TriggerDef) -> str:
    if definition.on == "alias":
        return f"alias {definition.source} (MLflow at {definition.tracking_uri or 'the default'})"
    if definition.on == "new":
        return f"prefix {definition.source}"
    return f"the runs of workflow {definition.source}"


def _warn(name: str, message: str) -> None:
    if _warned.get(name) != message:
        _warned[name] = message
        log.warning("%s", message)


def _recovered(name: str) -> None:
    if _warned.pop(name, None) is not None:
        log.info("trigger %s: evaluated again without trouble", name)


__all__ = [
    "due",
    "evaluate",
    "launch_for",
    "read_cursor",
    "record_first_look",
    "sensor_for",
    "write_cursor",
]
