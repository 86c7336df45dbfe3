"""The work function: what runs on a worker for one task call.

:func:`run_call` is the only function the engine submits to a backend. It rebuilds the
keyword arguments from the flat inputs (handles the backend has resolved to values), and
for a cached task computes the cache key, serves a hit from the store, or calls the
function and stores its outputs. Everything it needs travels in its arguments, so it
runs the same in-process, on a thread, or on a Ray worker — and the same call gets the
same key everywhere.

Arguments template (one per parameter, built by the engine):

* ``("h", i, index)`` — flat input ``i``; ``index`` picks a tuple element (None: whole);
* ``("v", value)`` — a literal value;
* ``("l", [templates], as_tuple)`` / ``("d", [(key, template), ...])`` — containers.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowkit import cache, codehash, hashing, typecheck
from flowkit.errors import SerializationError, TypeMismatchError
from flowkit.store import Store

log = logging.getLogger(__name__)

Template = tuple[Any, ...]


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


@dataclass(frozen=True, slots=True)
class Meta:
    """The small result of a call that travels back to the driver."""

    key: str | None
    cached: bool
    digests: tuple[str | None, ...]
    started: float
    ended: float


def build(template: Template, flat: Sequence[Any]) -> Any:
    """Rebuild one argument value from its template and the flat inputs."""
    kind = template[0]
    if kind == "h":
        value = flat[template[1]]
        return value if template[2] is None else value[template[2]]
    if kind == "v":
        return template[1]
    if kind == "l":
        items = [build(t, flat) for t in template[1]]
        return tuple(items) if template[2] else items
    return {k: build(t, flat) for k, t in template[1]}


def run_call(
    rt: TaskRuntime,
    templates: tuple[tuple[str, Template], ...],
    known_digests: Mapping[str, str],
    *flat: Any,
) -> tuple[Meta, Any]:
    """Run one task call (see the module docstring); returns ``(meta, value)``."""
    started = time.time()
    kwargs = {name: build(t, flat) for name, t in templates}
    inputs = input_digests(rt, kwargs, known_digests) if rt.use_cache else None
    key = None if inputs is None else hashing.call_key(rt.identity, rt.code, rt.interface, inputs)
    if key is not None and not rt.refresh:
        hit = _served_from_cache(rt, key, started)
        if hit is not None:
            return hit
    value = rt.fn(**kwargs)
    check_return(rt, value)
    if rt.multi_output and hasattr(rt.return_type, "_make") and type(value) is tuple:
        value = rt.return_type._make(value)  # as a cache hit would give it: fields work downstream
    digests: tuple[str | None, ...] = (None,) * len(rt.outputs)
    if key is not None:
        assert inputs is not None
        digests = store_outputs(rt, key, inputs, value)
    return Meta(key, False, digests, started, time.time()), value


def _served_from_cache(rt: TaskRuntime, key: str, started: float) -> tuple[Meta, Any] | None:
    """``(meta, value)`` of a cache hit on ``key``, or None on a miss."""
    assert rt.store is not None
    hit = cache.lookup(rt.store, key)
    if hit is None:
        return None
    loaded = cache.load_outputs(rt.store, hit)
    if loaded is None:
        return None
    value = tuple(loaded) if rt.multi_output else loaded[0]
    if rt.multi_output and hasattr(rt.return_type, "_make"):
        value = rt.return_type._make(value)
    digests = tuple(a.digest for a in hit.outputs)
    return Meta(key, True, digests, started, time.time()), value


def lookup_call(
    rt: TaskRuntime,
    templates: tuple[tuple[str, Template], ...],
    known_digests: Mapping[str, str],
    flat: Sequence[Any],
) -> tuple[tuple[Meta, Any] | None, dict[str, str]]:
    """What :func:`run_call` returns on a cache hit (or None), and the input digests found.

    For backends whose handles are values, the engine asks this in the driver before
    submitting: a hit then costs no hand-off to a worker (and, on threads, no contention
    for the interpreter lock between workers that only read small files). On a miss the
    digests go with the call, so the worker does not hash its inputs again.
    """
    if not rt.use_cache or rt.refresh:
        return None, {}
    started = time.time()
    kwargs = {name: build(t, flat) for name, t in templates}
    inputs = input_digests(rt, kwargs, known_digests)
    if inputs is None:
        return None, {}
    key = hashing.call_key(rt.identity, rt.code, rt.interface, inputs)
    return _served_from_cache(rt, key, started), inputs


def run_batch(
    rt: TaskRuntime,
    calls: Sequence[tuple[tuple[tuple[str, Template], ...], Mapping[str, str], Sequence[Any]]],
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


def input_digests(
    rt: TaskRuntime, kwargs: Mapping[str, Any], known: Mapping[str, str]
) -> dict[str, str] | None:
    """The digest of every input in the key, or None when one has no stable digest."""
    digests = {}
    for name, value in kwargs.items():
        if name in rt.ignore:
            continue
        # value_digest warns, naming the input, when it returns None: nothing stale is
        # ever served for a value whose bytes are not stable, the call just is not cached.
        digest = known.get(name) or cache.value_digest(
            value, what=f"input `{name}` of task `{rt.name}`"
        )
        if digest is None:
            return None
        digests[name] = digest
    return digests


def check_return(rt: TaskRuntime, value: Any) -> None:
    """Cheap runtime check of a returned value against the annotation."""
    if typecheck.check_value(value, rt.return_type):
        return
    which = ""
    if rt.multi_output and isinstance(value, tuple) and len(value) == len(rt.outputs):
        for (oname, otype), v in zip(rt.outputs, value, strict=True):
            if not typecheck.check_value(v, otype):
                which = (
                    f" (output `{oname}` is {type(v).__name__} {_short(v)}, expected "
                    f"{typecheck.type_repr(otype)})"
                )
                break
    raise TypeMismatchError(
        f"task `{rt.name}` returned {type(value).__name__} {_short(value)} but is annotated "
        f"-> {typecheck.type_repr(rt.return_type)}{which}; fix the return annotation or the value"
    )


def store_outputs(
    rt: TaskRuntime,
    key: str,
    inputs: Mapping[str, str],
    value: Any,
) -> tuple[str | None, ...]:
    """Write each output to the store and record the cache entry; returns their digests."""
    assert rt.store is not None
    values = tuple(value) if rt.multi_output else (value,)
    artifacts = []
    for (oname, _), v in zip(rt.outputs, values, strict=True):
        what = (
            f"task `{rt.name}` output `{oname}`" if rt.multi_output else f"task `{rt.name}` output"
        )
        try:
            artifacts.append(rt.store.put(v, what=what))
        except SerializationError:
            raise
        except Exception as e:  # an unexpected serializer failure still names the output
            raise SerializationError(f"{what}: cannot be stored: {e}") from e
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
        ),
    )
    return tuple(a.digest for a in artifacts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def make_runtime(
    task: Any, store: Store, cache: bool | str, run_id: str | None = None
) -> TaskRuntime:
    """The per-run, per-task object shipped with every call (code fingerprint included).

    ``task`` is a :class:`~flowkit.task.TaskDef` (read by attribute: runner sits below task).
    """
    use_cache = task.cache and cache is not False
    code, components = "", {}
    if use_cache:
        if task.version is not None:
            code, components = hashing.version_digest(task.version), {"version": task.version}
        else:
            fp = codehash.fingerprint(task.fn)
            code, components = fp.digest, dict(fp.components)
    interface = hashing.interface_digest(
        [
            [[p.name, typecheck.type_repr(p.type)] for p in task.signature.params],
            typecheck.type_repr(task.return_type),
        ]
    )
    return TaskRuntime(
        name=task.name,
        identity=task.name,
        fn=task.fn,
        return_type=task.return_type,
        outputs=tuple(task.outputs),
        multi_output=task.multi_output,
        use_cache=use_cache,
        refresh=cache == "refresh",
        code=code,
        components=components,
        interface=interface,
        version=task.version,
        ignore=task.cache_ignore,
        store=store if use_cache else None,
        run_id=run_id,
    )
