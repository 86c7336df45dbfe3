"""Cached dynamic tasks: ``@fk.dynamic(cache=True)`` is keyed like a task.

A dynamic body runs in the driver and builds a sub-graph; with ``cache=True`` the node is
looked up *before* its body runs, under the key a task with the same function, interface and
inputs would have (:mod:`flowkit.keys`: the body's code fingerprint follows the tasks it calls,
so editing one of them misses). A hit serves the stored output: neither the body nor any call
of its sub-graph runs. A miss runs the body and the sub-graph as usual; when the sub-graph's
output is done, it is stored under the key (in the driver: the output is fetched there).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flowkit.arguments import Constant
from flowkit.runner import Meta, Prepared, TaskRuntime, lookup_call, store_outputs

log = logging.getLogger(__name__)


def lookup(
    rt: TaskRuntime, kwargs: Mapping[str, Any], known: Mapping[str, str]
) -> tuple[Meta, Any] | Prepared | None:
    """A hit ``(meta, value)``, the key of a miss, or None (an input with no stable token)."""
    templates = tuple((name, Constant(value)) for name, value in kwargs.items())
    return lookup_call(rt, templates, known, [])


def record(rt: TaskRuntime, prepared: Prepared, value: Any) -> dict[str, Any] | None:
    """Store a dynamic node's output under its key; the outputs' artifacts, or None (with a
    warning) when it cannot be stored: the run still has its value, only the cache misses."""
    try:
        _, outputs = store_outputs(rt, prepared.key, prepared.tokens, value)
    except Exception as e:
        log.warning("dynamic task `%s`: its output is not cached (%s)", rt.name, e)
        return None
    return outputs


__all__ = ["lookup", "record"]
