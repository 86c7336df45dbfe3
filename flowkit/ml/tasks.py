"""The ML steps as flowkit tasks: the objects ``flowkit.ml`` exports.

Each is an ``fk.task`` around the plain function of its module (``ml.split.fn`` is that
function). Called outside a workflow a task just calls the function, so ``ml.split(table)``
works anywhere; inside a workflow it becomes a typed graph node that caches and runs on any
backend.

Policy:

* Pure data steps (``validate``, ``split``, ``as_of_join``, ``drift``) are cached. Their code
  version is pinned to :data:`VERSION` (flowkit counts as installed code, so its helpers are
  not fingerprinted): bump it whenever a change alters what one of them returns.
* Steps with effects (``annotation_queue``, the registry operations, ``load``) and ``gate``
  (cheap, and its job is to raise) are never cached.
* Task names carry an ``ml.`` prefix (``ml.split``) so nodes and cache entries never collide
  with a user's own ``split`` task.
"""

from __future__ import annotations

from flowkit.ml import annotation, asof, drift, gate, registry, split, validate
from flowkit.task import task

#: Code version of the cached ML tasks (part of their cache keys).
VERSION = "flowkit.ml/1"

validate_task = task(cache=True, version=VERSION, name="ml.validate")(validate.validate)
split_task = task(cache=True, version=VERSION, name="ml.split")(split.split)
as_of_join_task = task(cache=True, version=VERSION, name="ml.as_of_join")(asof.as_of_join)
drift_task = task(cache=True, version=VERSION, name="ml.drift")(drift.drift)
gate_task = task(name="ml.gate")(gate.gate)
annotation_queue_task = task(name="ml.annotation_queue")(annotation.annotation_queue)
register_task = task(name="ml.register")(registry.register)
promote_task = task(name="ml.promote")(registry.promote)
rollback_task = task(name="ml.rollback")(registry.rollback)
load_task = task(name="ml.load")(registry.load)

__all__ = [
    "VERSION",
    "annotation_queue_task",
    "as_of_join_task",
    "drift_task",
    "gate_task",
    "load_task",
    "promote_task",
    "register_task",
    "rollback_task",
    "split_task",
    "validate_task",
]
