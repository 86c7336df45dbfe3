"""Admission: how many calls may be in flight at once, per task, per pool, per CPU budget.

Three limits hold back a ready call in the driver, before it reaches the backend, so they
hold on every backend alike (local, threads, processes, Ray, third-party ones):

* ``@fk.task(concurrency=4)``: at most 4 calls of that task in flight at once in the run
  (every node that calls the task, sub-workflows and dynamic sub-graphs included);
* ``@fk.task(pool="api")`` with ``fk.run(..., limits={"api": 2})``: at most 2 calls of all the
  tasks of pool ``api`` together; a pool a task names but ``limits`` leaves out is an error
  when the run starts (a typo must not silently lift a limit);
* a backend's CPU budget (``Capabilities.cpu_budget``; threads: ``max_workers``): a call is
  admitted only while the ``Resources.cpus`` of the calls in flight plus its own fit in it.
  The budget matters only once some task asks for ``cpus`` other than 1 (with every call at
  1 CPU the pool itself runs at most ``max_workers`` at once), so a run has a gate for it
  only then; a run that has a gate for another limit counts CPUs in it too.

A :class:`Gate` exists only when a run has something to limit (:func:`gate_for`), so a run
without limits pays nothing per call. A batch of map items (:mod:`flowkit.submitter`) holds
one slot: its items run one after another. A held call waits in a queue of its task, in
order; when a call in flight lands, the gate hands back the held calls that now fit, which the
engine puts at the front of its ready queue. A timed-out attempt that the backend could not
stop (threads) frees its slot when the engine gives up on it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from flowkit.errors import FlowkitError, GraphError
from flowkit.taskspec import TaskSpec

# A little slack for fractional cpus (0.1 + 0.2 must fit in 0.3).
_EPSILON = 1e-9


class _HasSpec(Protocol):
    @property
    def spec(self) -> TaskSpec: ...


class _HasTask(Protocol):
    @property
    def task(self) -> TaskSpec: ...


C = TypeVar("C", bound=_HasSpec)


def check_limits(limits: Any) -> dict[str, int]:
    """``fk.run(limits=...)`` as a plain dict, or a :class:`FlowkitError` saying what is wrong."""
    if limits is None:
        return {}
    if not isinstance(limits, Mapping):
        raise FlowkitError(f"limits={limits!r}: pass a mapping of pool name to an int >= 1")
    checked: dict[str, int] = {}
    for name, n in limits.items():
        if not isinstance(name, str) or not name:
            raise FlowkitError(f"limits: pool name {name!r} must be a non-empty str")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise FlowkitError(
                f"limits[{name!r}] = {n!r}: a pool's limit is an int >= 1 (calls in flight)"
            )
        checked[name] = n
    return checked


@dataclass(frozen=True, slots=True)
class _Cost:
    """What one call of a task takes while in flight: a slot of each key, and CPUs."""

    keys: tuple[Any, ...]
    cpus: float


class Gate(Generic[C]):
    """The slots of one run. Only the engine's loop calls it (no locking)."""

    def __init__(self, limits: Mapping[str, int], cpu_budget: float | None) -> None:
        self.limits = dict(limits)
        self.cpu_budget = cpu_budget
        self._size: dict[Any, int] = {}  # slot key -> how many
        self._used: dict[Any, int] = {}
        self._cpus_used = 0.0
        self._costs: dict[TaskSpec, _Cost] = {}
        self._held: dict[TaskSpec, deque[C]] = {}
        # held calls handed back, not yet admitted again (the objects, not ids: an id may be
        # reused once a call that rode along in a batch is gone)
        self._freed: set[C] = set()

    # -- registering tasks ----------------------------------------------------------------

    def add_task(self, spec: TaskSpec) -> None:
        """Learn what a call of ``spec`` costs; an error naming the task when it never fits."""
        if spec in self._costs:
            return
        opts = spec.options
        keys: list[Any] = []
        if opts.concurrency is not None:
            keys.append(spec)
            self._size[spec] = opts.concurrency
        if opts.pool is not None:
            check_pools([spec], self.limits)
            keys.append(("pool", opts.pool))
            self._size[("pool", opts.pool)] = self.limits[opts.pool]
        cpus = 0.0
        if self.cpu_budget is not None:
            cpus = float(opts.resources.cpus)
            if cpus > self.cpu_budget + _EPSILON:
                raise GraphError(
                    f"task `{spec.name}` asks for Resources(cpus={opts.resources.cpus:g}) but "
                    f"the backend's CPU budget is {self.cpu_budget:g}: no call of it could ever "
                    "start; ask for fewer cpus, or give the backend more workers (threads: "
                    f"ThreadsBackend(max_workers={int(cpus + 0.999)}))"
                )
        self._costs[spec] = _Cost(tuple(keys), cpus)

    def count_in_flight(self, specs: Iterable[TaskSpec]) -> None:
        """Charge calls already in flight when the gate appears in the middle of a run."""
        for spec in specs:
            self.add_task(spec)
            self._take(self._costs[spec])

    # -- admitting and releasing ----------------------------------------------------------

    def admit(self, call: C) -> bool:
        """Take the call's slots and say True, or hold it (False) until :meth:`release` hands
        it back. A call handed back goes before the calls held after it."""
        spec = call.spec
        cost = self._costs.get(spec)
        if cost is None:
            self.add_task(spec)
            cost = self._costs[spec]
        freed = bool(self._freed) and call in self._freed
        if freed:
            self._freed.discard(call)
        queue = self._held.get(spec)
        if (queue and not freed) or not self._fits(cost):
            if queue is None:
                queue = self._held[spec] = deque()
            if freed:
                queue.appendleft(call)
            else:
                queue.append(call)
            return False
        self._take(cost)
        return True

    def release(self, spec: TaskSpec) -> list[C]:
        """A call (or a batch) of ``spec`` landed: free its slots; the held calls that now fit,
        in order (they are admitted again when the engine sends them)."""
        cost = self._costs[spec]
        for key in cost.keys:
            self._used[key] -= 1
        self._cpus_used -= cost.cpus
        if not self._held:
            return []
        return self._hand_back()

    def _hand_back(self) -> list[C]:
        used, cpus = dict(self._used), self._cpus_used  # simulate the takes, not do them
        back: list[C] = []
        for spec, queue in list(self._held.items()):
            cost = self._costs[spec]
            while queue and self._fits(cost, used, cpus):
                for key in cost.keys:
                    used[key] = used.get(key, 0) + 1
                cpus += cost.cpus
                call = queue.popleft()
                self._freed.add(call)
                back.append(call)
            if not queue:
                del self._held[spec]
        return back

    @property
    def held(self) -> int:
        """How many calls wait for a slot."""
        return sum(len(q) for q in self._held.values())

    def _fits(
        self, cost: _Cost, used: Mapping[Any, int] | None = None, cpus: float | None = None
    ) -> bool:
        used = self._used if used is None else used
        cpus = self._cpus_used if cpus is None else cpus
        for key in cost.keys:
            if used.get(key, 0) >= self._size[key]:
                return False
        if cost.cpus and self.cpu_budget is not None:
            return cpus + cost.cpus <= self.cpu_budget + _EPSILON
        return True

    def _take(self, cost: _Cost) -> None:
        for key in cost.keys:
            self._used[key] = self._used.get(key, 0) + 1
        self._cpus_used += cost.cpus


def check_pools(specs: Iterable[TaskSpec], limits: Mapping[str, int]) -> None:
    """GraphError naming the first task whose pool ``limits`` leaves out (a typo must not
    lift a limit); ``fk.run`` checks the static graph before the run starts."""
    for spec in specs:
        pool = spec.options.pool
        if pool is not None and pool not in limits:
            known = ", ".join(sorted(limits)) or "none"
            raise GraphError(
                f"task `{spec.name}` is in pool {pool!r}, which the run gives no limit "
                f"(limits given: {known}); pass fk.run(..., limits={{{pool!r}: N}}) "
                f"(flowkit run --pool-limit {pool}=N)"
            )


def limited(spec: TaskSpec, cpu_budget: float | None) -> bool:
    """Whether calls of ``spec`` need a gate (a limit of their own, or CPUs to count)."""
    opts = spec.options
    if opts.concurrency is not None or opts.pool is not None:
        return True
    return cpu_budget is not None and opts.resources.cpus != 1


def gate_for(
    nodes: Iterable[_HasTask],
    limits: Mapping[str, int],
    cpu_budget: float | None,
    gate: Gate[C] | None,
    in_flight: Iterable[TaskSpec] = (),
) -> Gate[C] | None:
    """The run's gate once ``nodes`` join it: ``gate`` itself, a new gate when these are the
    first nodes with something to limit (charged for the calls ``in_flight``), or None.

    Raises :class:`GraphError` for a task that can never be admitted (a pool without a limit,
    more cpus than the budget)."""
    specs = list(dict.fromkeys(n.task for n in nodes if not n.task.dynamic))
    if gate is None:
        if not any(limited(s, cpu_budget) for s in specs):
            return None
        gate = Gate(limits, cpu_budget)
        gate.count_in_flight(in_flight)
    for spec in specs:
        gate.add_task(spec)
    return gate


__all__ = ["Gate", "check_limits", "check_pools", "gate_for", "limited"]
