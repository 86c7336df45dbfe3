"""``BackendContract``: the conformance suite every flowkit backend must pass.

A backend (ours or a third party's) proves it keeps flowkit's semantics by subclassing
:class:`BackendContract` in its own test-suite and saying how to build a fresh instance::

    from flowkit.testing import BackendContract

    class TestMyBackend(BackendContract):
        def make_backend(self) -> fk.Backend:
            return MyBackend(workers=2)

        # optional: a store every worker can reach (default: a folder in pytest's tmp_path;
        # each test gets its own sub-folder of this URL)
        store_url = "s3://bucket/flowkit-contract"

pytest then runs every ``test_*`` method of its two parts against that backend:

* :class:`~flowkit.testing.protocol.ProtocolContract` drives the backend directly, member by
  member (``docs/backends.md``): submit and fetch, handles passed into later calls, static
  args, ``fetch_many``, errors that keep their type and traceback, batched returns
  (``Submission.split_values``), timeouts the backend enforces, ``cancel``, capacity and
  parallelism, context-manager re-entry, ``check_store``.
* :class:`~flowkit.testing.semantics.WorkflowContract` runs whole workflows through it:
  results (chains, fan-out/in, multi-output unpacking, sub-workflows), map order, zipped
  maps and ``fk.unmapped``, empty maps, retries with doubling back-off, timeouts, failures,
  dynamic sub-graphs, concurrency (when ``capacity > 1``), caching and callbacks.
* :class:`~flowkit.testing.conditional.ConditionalContract`: ``fk.cond`` runs only the branch
  taken (the other's calls recorded as skipped, never started), nested conds, and field access
  on promises (``h.low``) feeding calls.
* :class:`~flowkit.testing.fanout.FanoutContract`: limits on calls in flight (a task's
  ``concurrency``, a pool shared through ``fk.run(limits=...)``) held and reached, measured
  by files the calls keep while they run, and maps with ``min_success``.

Policies:

* The tasks, workflows and functions live at module level (:mod:`flowkit.testing.tasks`,
  :mod:`~flowkit.testing.workflows`, :mod:`~flowkit.testing.calls`), so a worker in another
  process imports them by name instead of receiving a copy.
* What happens inside a task is observed through files in a per-test folder (attempt counts,
  attempt times, "I started" marks; :mod:`flowkit.testing.observe`), never through shared
  memory, so the same checks hold for in-process, threaded and multi-process backends.
  Workers must therefore see the driver's filesystem (the same machine or a shared mount);
  override the ``folder`` fixture to point elsewhere.
* No wall-time assertions: overlap is proven by a rendezvous (each of two tasks waits for
  the other's mark), back-off by lower bounds on the gaps between recorded attempts (the
  engine guarantees the minimum delay, so slowness cannot make them fail).
* Every test stays well under a second on a healthy backend; the only long waits are the
  bounded rendezvous and future timeouts, reached only when a backend is broken.

This package imports pytest; it is meant for test-suites, and ``import flowkit`` never loads it.
"""

from __future__ import annotations

from flowkit.testing.base import ContractBase
from flowkit.testing.conditional import ConditionalContract
from flowkit.testing.fanout import FanoutContract
from flowkit.testing.observe import (
    Recorder,
    attempt_times,
    is_marked,
    mark,
    record_attempt,
    records_named,
    wait_for_mark,
)
from flowkit.testing.protocol import ProtocolContract
from flowkit.testing.semantics import WorkflowContract
from flowkit.testing.tasks import (
    Stats,
    add,
    after_boom,
    boom,
    cached_numbers,
    cached_square,
    cached_total,
    divide,
    double,
    double_each,
    doubles_up_to,
    finish_inverted,
    flaky,
    flaky_backoff,
    gate,
    negate,
    numbers,
    rendezvous,
    second_step,
    sign_branch,
    size_and_index,
    sleepy,
    sleepy_once,
    stats,
    sum_of_doubles,
    total,
)
from flowkit.testing.workflows import (
    backing_off,
    branching,
    cached_pipeline,
    chain,
    dynamic_fan_out,
    dynamic_map,
    empty_map,
    failing,
    fan_out_in,
    inner,
    map_order,
    multi_output,
    nested_dynamic,
    outer,
    overlapping,
    resumable,
    retrying,
    timing_out,
    timing_out_once,
    unmapped_whole,
    zipped,
)


class BackendContract(ProtocolContract, WorkflowContract, FanoutContract, ConditionalContract):
    """Inherit from this in a ``Test…`` class and implement :meth:`make_backend` (see the
    package docstring); optionally set ``store_url``."""


__all__ = [
    # the contract and its helpers
    "BackendContract",
    "ConditionalContract",
    "ContractBase",
    "FanoutContract",
    "ProtocolContract",
    "Recorder",
    # tasks and workflows (importable by name on any worker)
    "Stats",
    "WorkflowContract",
    "add",
    "after_boom",
    "attempt_times",
    "backing_off",
    "boom",
    "branching",
    "cached_numbers",
    "cached_pipeline",
    "cached_square",
    "cached_total",
    "chain",
    "divide",
    "double",
    "double_each",
    "doubles_up_to",
    "dynamic_fan_out",
    "dynamic_map",
    "empty_map",
    "failing",
    "fan_out_in",
    "finish_inverted",
    "flaky",
    "flaky_backoff",
    "gate",
    "inner",
    "is_marked",
    "map_order",
    "mark",
    "multi_output",
    "negate",
    "nested_dynamic",
    "numbers",
    "outer",
    "overlapping",
    "record_attempt",
    "records_named",
    "rendezvous",
    "resumable",
    "retrying",
    "second_step",
    "sign_branch",
    "size_and_index",
    "sleepy",
    "sleepy_once",
    "stats",
    "sum_of_doubles",
    "timing_out",
    "timing_out_once",
    "total",
    "unmapped_whole",
    "wait_for_mark",
    "zipped",
]
