"""What a graph node calls: a task's name, function, options and typed interface, as plain data.

:class:`TaskOptions` is the one list of ``@fk.task`` options: the decorator's option check
and the :class:`~flowkit.task.TaskDef` constructor are derived from it. :class:`TaskSpec` is
what the graph, the engine and the cache keys read of a task; it sits below the graph, so a
:class:`~flowkit.graph.Node` is typed without the graph knowing about tracing
(:mod:`flowkit.task`, which builds a spec for every decorated function).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from flowkit import typecheck
from flowkit.errors import GraphError
from flowkit.resources import Resources

if TYPE_CHECKING:
    from flowkit.typecheck import Signature


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """The options of ``@fk.task`` (besides ``name``), normalised.

    ``cache``: look calls up in the store and record them. ``version``: a string that stands
    for the code in cache keys (instead of the code's fingerprint). ``cache_ignore``: parameters
    left out of the key. ``retries`` further attempts after a failure, the first after
    ``retry_delay`` seconds, doubling after each. ``timeout``: seconds one attempt may run.
    ``resources``: what one call needs (honoured by backends that schedule resources).
    ``keep``: store the call's outputs even when it is not cached (``False``: a huge
    intermediate nobody will look back at; a cached task's outputs are always stored).
    ``concurrency``: at most this many calls of the task in flight at once in a run;
    ``pool``: the name of a limit shared with other tasks, given by ``fk.run(limits=...)``
    (:mod:`flowkit.limits`).
    """

    cache: bool = False
    version: str | None = None
    cache_ignore: frozenset[str] = frozenset()
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    resources: Resources = field(default_factory=Resources)
    keep: bool = True
    concurrency: int | None = None
    pool: str | None = None

    def __post_init__(self) -> None:
        # Options arrive as the user wrote them (a list for cache_ignore, an int delay...).
        object.__setattr__(self, "cache", bool(self.cache))
        object.__setattr__(self, "keep", bool(self.keep))
        object.__setattr__(self, "cache_ignore", frozenset(self.cache_ignore))
        object.__setattr__(self, "retries", int(self.retries))
        object.__setattr__(self, "retry_delay", float(self.retry_delay))
        object.__setattr__(self, "resources", self.resources or Resources())


#: The keyword options of ``@fk.task`` (``name`` included), in the order messages list them.
TASK_OPTIONS: tuple[str, ...] = (*(f.name for f in fields(TaskOptions)), "name")
#: A dynamic body runs in the driver: a timeout would be silently ignored. It may be cached
#: (keyed like a task, :mod:`flowkit.dyncache`); its resources are the default of the calls it
#: makes (:mod:`flowkit.dynamic`).
DYNAMIC_OPTIONS: tuple[str, ...] = (
    "cache",
    "version",
    "cache_ignore",
    "resources",
    "retries",
    "retry_delay",
    "name",
)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TaskSpec:
    """A task as the graph and the engine see it (compared by identity, like the function).

    ``fn`` is the undecorated function (what a call runs and what the cache key fingerprints);
    ``signature`` its typed interface; ``outputs`` the named output types the return type
    splits into, ``multi_output`` whether it splits (a tuple or NamedTuple return);
    ``dynamic`` marks an ``@fk.dynamic`` body, which runs in the driver and builds a sub-graph.
    """

    name: str
    fn: Callable[..., Any]
    signature: Signature
    options: TaskOptions = field(default_factory=TaskOptions)
    dynamic: bool = False
    outputs: tuple[tuple[str, Any], ...] = field(init=False)
    multi_output: bool = field(init=False)

    def __post_init__(self) -> None:
        outputs, multi = typecheck.output_types(self.signature.return_type)
        object.__setattr__(self, "outputs", tuple(outputs))
        object.__setattr__(self, "multi_output", multi)
        self._check_options()

    def _check_options(self) -> None:
        opts = self.options
        params = self.signature.names
        unknown = opts.cache_ignore - set(params)
        if unknown:
            raise GraphError(
                f"task `{self.name}`: cache_ignore names {sorted(unknown)}, which are not "
                f"parameters of {self.fn.__qualname__}; parameters are {list(params)}"
            )
        if (
            opts.retries < 0
            or opts.retry_delay < 0
            or (opts.timeout is not None and opts.timeout <= 0)
        ):
            raise ValueError(
                f"task `{self.name}`: retries and retry_delay must be >= 0 and timeout > 0"
            )
        n = opts.concurrency
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(
                f"task `{self.name}`: concurrency={n!r}; use an int >= 1 (calls in flight at once)"
            )
        if opts.pool is not None and (not isinstance(opts.pool, str) or not opts.pool):
            raise ValueError(
                f"task `{self.name}`: pool={opts.pool!r}; use a non-empty name, and give its "
                "limit with fk.run(..., limits={name: N})"
            )

    def __repr__(self) -> str:
        kind = "dynamic" if self.dynamic else "task"
        return f"<{kind} spec {self.name}>"

    @property
    def return_type(self) -> Any:
        """The annotated return type (``Annotated`` stripped at the top level)."""
        return self.signature.return_type

    @property
    def param_types(self) -> Mapping[str, Any]:
        """Parameter name -> annotated type, in signature order."""
        return {p.name: p.type for p in self.signature.params}

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait before retrying after failed ``attempt`` (1-based): exponential."""
        return self.options.retry_delay * 2.0 ** (attempt - 1)


def map_length(task: str, where: str, lengths: Mapping[str, int]) -> int:
    """The length a map's mapped lists (``lengths`` by parameter) share, which is its number of
    calls; a :class:`GraphError` naming the lengths when they differ (they are zipped)."""
    n = typecheck.common_length(lengths.values())
    if n is None:
        raise GraphError(
            f"task `{task}`.map at {where}: mapped lists have unequal lengths {dict(lengths)}; "
            "pass lists of the same length, or wrap the one passed whole in fk.unmapped(...)"
        )
    return n


__all__ = ["DYNAMIC_OPTIONS", "TASK_OPTIONS", "TaskOptions", "TaskSpec", "map_length"]
