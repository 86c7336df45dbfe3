"""The ``--on-alias MODEL@ALIAS`` sensor: the version a registry alias names changed.

Each look asks the MLflow registry which version the alias names now and compares it with
the version it named at the last look: a different one is an event (``version``: now,
``previous``: before), whichever way it moved (a promotion, a rollback, a move by another
tool). Moves that cancel out between two looks (promote, then roll back before the next
tick) are not seen: the sensor reports where the alias *is*, not every step it took.

An alias that is unset (or a model not registered yet) names no version: that is not an
event, and the next version it names is one. A registry that cannot be reached raises, so the
trigger keeps its cursor and tries again.

The cursor is ``{"version": int | None, "moves": int}``; ``moves`` counts the moves seen, so
the event key ``<moves>-v<previous>-v<version>`` differs when an alias comes back to a
version it held before, yet two schedulers looking at the same cursor compute the same key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowkit.automation.sensing import CursorError, Found, Look
from flowkit.events import Event


class AliasSensor:
    """The alias ``alias`` of registered model ``model`` at ``tracking_uri``."""

    def __init__(self, trigger: str, model: str, alias: str, tracking_uri: str | None) -> None:
        self.trigger = trigger
        self.model = model
        self.alias = alias
        self.tracking_uri = tracking_uri

    def current(self) -> int | None:
        """The version the alias names now (None: unset, or no such model yet)."""
        from flowkit.ml import registry
        from flowkit.ml.errors import ModelNotFoundError

        try:
            return registry.get_version(self.model, self.alias, self.tracking_uri).version
        except ModelNotFoundError:
            return None

    def look(self, cursor: Mapping[str, Any] | None, now: float) -> Look:
        before, moves = _parse(cursor)
        now_version = self.current()
        if cursor is None or now_version is None or now_version == before:
            # first look, unset (not an event), or unchanged; unset forgets the old version
            # so that the next version it names is an event
            keep = moves if now_version == before else moves + 1
            return Look([], {"version": now_version, "moves": 0 if cursor is None else keep})
        moves += 1
        event = Event(
            kind="alias", trigger=self.trigger, time=now, model=self.model, alias=self.alias,
            version=str(now_version), previous=None if before is None else str(before),
        )  # fmt: skip
        key = f"{moves}-v{before if before is not None else 'none'}-v{now_version}"
        return Look([Found(key, event)], {"version": now_version, "moves": moves})


def _parse(cursor: Mapping[str, Any] | None) -> tuple[int | None, int]:
    if cursor is None:
        return None, 0
    version, moves = cursor.get("version"), cursor.get("moves")
    if version is not None and (type(version) is not int or version < 1):
        raise CursorError("'version' must be a version number or null")
    if type(moves) is not int or moves < 0:
        raise CursorError("'moves' must be a count")
    return version, moves


def parse_source(text: str) -> tuple[str, str]:
    """``MODEL@ALIAS`` as (model, alias); ValueError saying how to write it."""
    from flowkit.ml import registry
    from flowkit.ml.errors import RegistryError

    model, sep, alias = text.rpartition("@")
    if not sep or not model.strip() or not alias.strip():
        raise ValueError(f"{text!r}: write MODEL@ALIAS (e.g. digits@production)")
    try:
        registry._check_alias(alias)  # the registry's own rule for alias names
    except RegistryError as exc:
        raise ValueError(str(exc)) from None
    return model, alias


__all__ = ["AliasSensor", "parse_source"]
