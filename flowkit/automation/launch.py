"""How the scheduler starts a run: a :class:`Launch` says what to run and how.

Schedules and triggers decide *that* a run is due and describe it as a ``Launch``; the
scheduler loop starts it (``start``: a ``flowkit run`` process of its own, or a Ray Job
when ``address`` is set), so a long run never holds up the next tick.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class Launch:
    """One run to start.

    ``target``: ``FILE.py:WORKFLOW`` (a path the scheduler's machine can read).
    ``params``: workflow inputs as command-line texts (``{"n": "5"}`` is ``--n 5``; a
    ``fk.FireTime`` / ``fk.Event`` parameter gets its ISO time / event JSON).
    ``tags``: kept in the run's header (``schedule``, ``fire_time``, ``trigger``...).
    ``run_id``: chosen up front, so the fire's record names the run before it starts.
    ``store``: the store URL the run uses (the scheduler's own store).
    ``backend``: the run's backend name (None: the default).
    ``address``: a Ray dashboard address (``http://HEAD:8265``): submit as a Ray Job.
    ``notify``: webhook URLs told when the run ends (``flowkit run --notify``).
    """

    target: str
    run_id: str
    store: str
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    backend: str | None = None
    address: str | None = None
    notify: tuple[str, ...] = ()


__all__ = ["Launch"]
