"""The work function: what runs on a worker for one task call.

:func:`run_call` is the only function the engine submits to a backend. It rebuilds the
keyword arguments from the flat inputs (handles the backend has resolved to values), and
for a cached task computes the cache key, serves a hit from the store, or calls the
function and stores its outputs. Everything it needs travels in its arguments, so it
runs the same in-process, on a thread, or on a Ray worker — and the same call gets the
same key everywhere (the key itself is derived in :mod:`flowkit.keys`).

Every argument a task receives is private to that call (:func:`flowkit.isolation.private`):
a task that mutates its input cannot change what another task, or the key already computed
from the input's digest, saw.

A value served from the cache is loaded as the task's annotated output types (class
references resolve against them) and checked against the return annotation like a fresh
one; a value that does not fit is a miss, never served.

Each argument is rebuilt from the flat inputs by its template (:mod:`flowkit.arguments`),
built by the engine.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from flowkit import cache, isolation, keys, typecheck
from flowkit.arguments import Templates
from flowkit.errors import SerializationError, StoreError, TypeMismatchError
from flowkit.reprs import short_repr
from flowkit.store import Store
from flowkit.taskspec import TaskSpec

log = logging.getLogger(__name__)

#: How a run uses the cache: True (look up and record tasks declared ``cache=True``), False
#: (neither), or "refresh" (recompute and overwrite).
CacheMode = bool | Literal["refresh"]


@dataclass(frozen=True)
class TaskRuntime:
    """What every call of one task in one run shares (shipped once per worker on Ray)."""

    name: str
    identity: str
    fn: Callable[..., Any]
    return_type: Any
    outputs: tuple[tuple[str, Any], ...]
    multi_output: bool
    use_cache: bool = False
    refresh: bool = False
    code: str = ""
    components: Mapping[str, str] = field(default_factory=dict)
    interface: str = ""
    version: str | None = None
    ignore: frozenset[str] = frozenset()
    store: Store | None = None
    run_id: str | None = None
    output_types: tuple[Any, ...] = ()  # what a cache hit's values are loaded as


@dataclass(frozen=True, slots=True)
class Meta:
    """The small result of a call that travels back to the driver.

    ``digests`` are the outputs' tokens (what a downstream key uses, see :mod:`flowkit.keys`),
    ``objects`` their artifact digests in the store (lineage); a call whose outputs were not
    stored has None tokens and no objects.
    """

    key: str | None
    cached: bool
    digests: tuple[str | None, ...]
    started: float
    ended: float
    objects: tuple[str | None, ...] = ()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A call's key and input tokens, computed in the driver, where the key was looked up and
    missed: the worker stores under it without hashing or looking up again."""

    key: str
    tokens: Mapping[str, str]


def run_call(
    rt: TaskRuntime,
    templates: Templates,
    known: Mapping[str, str] | Prepared,
    *flat: Any,
) -> tuple[Meta, Any]:
    """Run one task call (see the module docstring); returns ``(meta, value)``."""
    started = time.time()
    kwargs = {name: t.build(flat) for name, t in templates}  # (inline: once per call)
    key: str | None = None
    tokens: Mapping[str, str] | None = None
    if isinstance(known, Prepared):
        key, tokens = known.key, known.tokens
    elif rt.use_cache:
        tokens = keys.input_tokens(rt.ignore, rt.name, kwargs, known)
        if tokens is not None:
            key = keys.call_key(rt.identity, rt.code, rt.interface, tokens)
            if not rt.refresh:
                hit = _served_from_cache(rt, key, started)
                if hit is not None:
                    return hit
    # private copies only for a call that runs: hits and keys use the originals
    value = rt.fn(**{name: isolation.private(v) for name, v in kwargs.items()})
    check_return(rt, value)
    if rt.multi_output:  # a NamedTuple as a cache hit would give it: fields work downstream
        value = typecheck.rebuild_namedtuple(rt.return_type, value)
    if key is None or tokens is None:
        return Meta(None, False, (None,) * len(rt.outputs), started, time.time()), value
    digests, objects = store_outputs(rt, key, tokens, value)
    return Meta(key, False, digests, started, time.time(), objects), value


def _served_from_cache(rt: TaskRuntime, key: str, started: float) -> tuple[Meta, Any] | None:
    """``(meta, value)`` of a cache hit on ``key``, or None on a miss."""
    assert rt.store is not None
    hit = cache.lookup(rt.store, key)
    if hit is None:
        return None
    loaded = cache.load_outputs(rt.store, hit, rt.output_types)
    if loaded is None:
        return None
    if rt.multi_output:
        value = typecheck.rebuild_namedtuple(rt.return_type, tuple([v for v, _ in loaded]))
    else:
        value = loaded[0][0]
    try:
        check_return(rt, value)
    except TypeMismatchError as exc:
        log.warning("cache entry %s does not fit the task's annotation (%s); recomputing", key, exc)
        return None
    # (lists, not generators: this runs on every cache hit)
    objects = tuple([a.digest for a in hit.outputs])
    tokens = tuple([keys.token(d, refs) for d, (_, refs) in zip(objects, loaded, strict=True)])
    return Meta(key, True, tokens, started, time.time(), objects), value


def lookup_call(
    rt: TaskRuntime,
    templates: Templates,
    known: Mapping[str, str],
    flat: Sequence[Any],
) -> tuple[Meta, Any] | Prepared | None:
    """What :func:`run_call` returns on a cache hit, else the :class:`Prepared` key of the
    miss (None when the call has no key).

    For backends whose handles are values, the engine asks this in the driver before
    submitting: a hit then costs no hand-off to a worker (and, on threads, no contention
    for the interpreter lock between workers that only read small files). On a miss the
    key goes with the call, so the worker neither hashes its inputs nor looks up again.
    """
    if not rt.use_cache or rt.refresh:
        return None
    started = time.time()
    kwargs = {name: t.build(flat) for name, t in templates}
    tokens = keys.input_tokens(rt.ignore, rt.name, kwargs, known)
    if tokens is None:
        return None
    key = keys.call_key(rt.identity, rt.code, rt.interface, tokens)
    hit = _served_from_cache(rt, key, started)
    return hit if hit is not None else Prepared(key, tokens)


def run_batch(
    rt: TaskRuntime,
    calls: Sequence[tuple[Templates, Mapping[str, str] | Prepared, Sequence[Any]]],
) -> tuple[list[Meta | Exception], list[Any]]:
    """Run several calls of one task in a row (small map items on in-process backends).

    Each call's outcome is its :class:`Meta` or the exception it raised, so the engine still
    retries and reports every call on its own.
    """
    outcomes: list[Meta | Exception] = []
    values: list[Any] = []
    for templates, known, flat in calls:
        try:
            meta, value = run_call(rt, templates, known, *flat)
        except Exception as e:  # reported per call, like a failed future
            if getattr(e, "remote_traceback", None) is None:
                # a traceback does not survive pickling back from a remote worker
                e.remote_traceback = traceback.format_exc()  # type: ignore[attr-defined]
            outcomes.append(e)
            values.append(None)
        else:
            outcomes.append(meta)
            values.append(value)
    return outcomes, values


def check_return(rt: TaskRuntime, value: Any) -> None:
    """Cheap runtime check of a returned value against the annotation."""
    if typecheck.check_value(value, rt.return_type):
        return
    which = ""
    if rt.multi_output and isinstance(value, tuple) and len(value) == len(rt.outputs):
        for (oname, otype), v in zip(rt.outputs, value, strict=True):
            if not typecheck.check_value(v, otype):
                which = (
                    f" (output `{oname}` is {type(v).__name__} {short_repr(v)}, expected "
                    f"{typecheck.type_repr(otype)})"
                )
                break
    raise TypeMismatchError(
        f"task `{rt.name}` returned {type(value).__name__} {short_repr(value)} but is annotated "
        f"-> {typecheck.type_repr(rt.return_type)}{which}; fix the return annotation or the value"
    )


def store_outputs(
    rt: TaskRuntime,
    key: str,
    inputs: Mapping[str, str],
    value: Any,
) -> tuple[tuple[str | None, ...], tuple[str | None, ...]]:
    """Write each output to the store and record the cache entry; returns the outputs'
    tokens and artifact digests."""
    assert rt.store is not None
    values = tuple(value) if rt.multi_output else (value,)
    artifacts = []
    tokens = []
    for (oname, _), v in zip(rt.outputs, values, strict=True):
        what = (
            f"task `{rt.name}` output `{oname}`" if rt.multi_output else f"task `{rt.name}` output"
        )
        refs: set[Any] = set()
        try:
            artifact = rt.store.put(v, what=what, refs=refs)
        except (SerializationError, StoreError):
            raise
        except Exception as e:  # an unexpected serializer failure still names the output
            raise SerializationError(f"{what}: cannot be stored: {e}") from e
        artifacts.append(artifact)
        tokens.append(keys.token(artifact.digest, refs))
    cache.record(
        rt.store,
        cache.CacheEntry(
            key=key,
            identity=rt.identity,
            outputs=tuple(artifacts),
            components=dict(rt.components),
            interface=rt.interface,
            inputs=dict(inputs),
            version=rt.version,
            created=time.time(),
            run_id=rt.run_id,
            tokens=tuple(tokens),
        ),
    )
    return tuple(tokens), tuple(a.digest for a in artifacts)


def make_runtime(
    task: TaskSpec, store: Store, cache: CacheMode, run_id: str | None = None
) -> TaskRuntime:
    """The per-run, per-task object shipped with every call (code fingerprint included)."""
    opts = task.options
    use_cache = opts.cache and cache is not False
    code, components = keys.code(task) if use_cache else ("", {})
    return TaskRuntime(
        name=task.name,
        identity=keys.identity(task),
        fn=task.fn,
        return_type=task.return_type,
        outputs=tuple(task.outputs),
        output_types=tuple(t for _, t in task.outputs),
        multi_output=task.multi_output,
        use_cache=use_cache,
        refresh=cache == "refresh",
        code=code,
        components=components,
        interface=keys.interface(task),
        version=opts.version,
        ignore=opts.cache_ignore,
        store=store if use_cache else None,
        run_id=run_id,
    )
