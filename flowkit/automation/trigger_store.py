"""Triggers kept in the store: add, read, list, pause, resume and remove their definitions.

See :mod:`flowkit.automation.trigger_defs` for the layout. Removing a trigger removes its
state and its claims too, so a trigger added again under that name starts afresh (its first
look records what is there, as any new trigger's does).
"""

from __future__ import annotations

from flowkit.automation.trigger_defs import (
    ROOT,
    TriggerDef,
    TriggerDefError,
    check_name,
    definition_path,
    folder,
    state_path,
)
from flowkit.errors import FlowkitError
from flowkit.fsio import ObjectMissing, ObjectUnsigned
from flowkit.store import Store


class UnknownTriggerError(FlowkitError, LookupError):
    """No trigger of that name in the store."""


class TriggerExistsError(FlowkitError):
    """A trigger of that name is in the store already."""


def names(store: Store) -> list[str]:
    """The names of the store's triggers (files ``triggers/<name>.json``), sorted."""
    found = []
    for entry in store.list_dir(ROOT):
        stem = entry.removesuffix(".json")
        if entry.endswith(".json"):
            try:
                found.append(check_name(stem))
            except TriggerDefError:
                continue  # a planted file whose name no trigger can have
    return sorted(found)


def load(store: Store, name: str) -> TriggerDef:
    """The definition of trigger ``name``: UnknownTriggerError naming the store's triggers;
    TriggerDefError if it is damaged; StoreError if the store cannot be read."""
    check_name(name)
    try:
        doc = store.read_doc(definition_path(name))
    except ObjectUnsigned as exc:  # planted in a signed store: there, but not ours
        raise TriggerDefError(f"trigger {name}: {exc}") from exc
    except ObjectMissing:
        known = names(store)
        have = ", ".join(known) if known else "none"
        raise UnknownTriggerError(
            f"no trigger {name!r} in store {store.url} (its triggers: {have}); "
            "`flowkit trigger list` shows them"
        ) from None
    except FlowkitError as exc:  # ObjectCorrupt: a damaged document
        raise TriggerDefError(f"trigger {name}: {exc}") from exc
    return TriggerDef.from_dict(doc, name)


def add(store: Store, definition: TriggerDef) -> None:
    """Keep a new trigger; TriggerExistsError if its name is taken."""
    if definition.name in names(store):
        raise TriggerExistsError(
            f"a trigger named {definition.name!r} is already in store {store.url}: give "
            f"another --name, or remove it first (flowkit trigger remove {definition.name})"
        )
    store.write_doc(definition_path(definition.name), definition.to_dict())


def save(store: Store, definition: TriggerDef) -> None:
    """Write ``definition`` over the stored one (pause, resume)."""
    store.write_doc(definition_path(definition.name), definition.to_dict())


def set_paused(store: Store, name: str, paused: bool) -> TriggerDef:
    """Pause or resume trigger ``name``; resuming forgets what it had seen, so the events
    of the paused time do not fire (its next look records the present state)."""
    import dataclasses

    definition = load(store, name)
    if not paused:
        store.delete(state_path(name))
    updated = dataclasses.replace(definition, paused=paused)
    save(store, updated)
    return updated


def remove(store: Store, name: str) -> None:
    """Delete trigger ``name``: its definition, its state and its claims."""
    if name not in names(store):
        load(store, name)  # raises UnknownTriggerError naming the triggers
    store.delete(definition_path(name))
    for rel, _size, _mtime in list(store.walk(folder(name))):
        store.delete(rel)


__all__ = [
    "TriggerExistsError",
    "UnknownTriggerError",
    "add",
    "load",
    "names",
    "remove",
    "save",
    "set_paused",
]
