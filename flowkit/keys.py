"""Cache keys: the one place where a call's key is derived.

The runner (on a worker), the engine (a driver-side lookup) and ``flowkit cache explain`` all
call these functions, so a call has one key wherever it is computed::

    key   = sha256(["call", identity, code, interface, {param: token}])
    token = digest                                       a value that names no user code
          | sha256(["value", digest, {name: code}])      one that does

* **identity** — the task function's module-qualified name (:func:`identity`), with
  ``__main__`` read as the script's stem, so ``python flow.py`` and ``flowkit run flow.py``
  share entries while two teams' ``score`` tasks in two modules never do. ``name=`` and
  ``version=`` do not change it.
* **code** — the task's code fingerprint (:mod:`flowkit.codehash`), or ``version=``'s digest.
* **interface** — parameter names and types, and the return type.
* **token** — per parameter not in ``cache_ignore``: the artifact digest the value gets in the
  store, plus, when the stored bytes name user classes or functions (a dataclass instance, a
  function passed as an argument, a pickled object of a user class), the code digest of each
  of them (:func:`codehash.object_digest`). Editing ``Rect.area`` therefore misses every call
  that receives a ``Rect``, wherever the ``Rect`` came from. A token is computed from the same
  bytes on both sides of the store: from what :meth:`Store.put` wrote, and from what
  :meth:`Store.get` read on a hit, with the classes the running code uses *now*.

Values whose serialised bytes are not reproducible (pickles) are serialised twice; if the two
differ, or if the pickle holds a hash-ordered set, the value has no token and the call is not
cached (one warning per task input and process).

Secrets (:class:`flowkit.secret.Secret`): an input whose value is a Secret has the token
``sha256(["secret", HMAC-SHA256(k, text)])``, with ``k`` a key the store's readers do not get
from the entry (:mod:`flowkit.secretkey`), so changing a secret misses the cache and the text
is never written, not even as a plain digest. Computing it needs the store (``store=``): without
one, or without a key at hand, the call has no key and is not cached. A Secret *inside* another
value is hashed as a placeholder holding the same HMAC (:data:`flowkit.secret.KEYING`), or,
without a store or a key, as a placeholder without it (:data:`flowkit.secret.REDACTING`: only
the rest of the value counts). Calls without a Secret have the keys they always had.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import types
import typing
from collections.abc import Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any, cast

from flowkit import codehash, hashing, naming, secretkey, serialize, typecheck
from flowkit.errors import SerializationError
from flowkit.fsio import HashingWriter
from flowkit.secret import KEYING, REDACTING, Secret
from flowkit.store import Store, hash_value

if TYPE_CHECKING:
    from flowkit.taskspec import TaskSpec

log = logging.getLogger(__name__)

_warned: set[str] = set()
_warned_lock = threading.Lock()


# -- the task's side of the key ----------------------------------------------------------------


def identity(task: TaskSpec) -> str:
    """The task's identity in keys: its function's module-qualified name."""
    return naming.qualified_name(codehash.unwrap_root(task.fn))


def code(task: TaskSpec) -> tuple[str, dict[str, str]]:
    """``(code digest, components by name)`` of a task: its fingerprint or its ``version=``."""
    version = task.options.version
    if version is not None:
        return hashing.version_digest(version), {"version": version}
    fp = codehash.fingerprint(task.fn)
    return fp.digest, dict(fp.components)


def interface(task: TaskSpec) -> str:
    """The digest of a task's typed interface (parameter names and types, return type)."""
    return hashing.interface_digest(
        [
            [[p.name, typecheck.type_repr(p.type)] for p in task.signature.params],
            typecheck.type_repr(task.return_type),
        ]
    )


# -- the inputs' side ----------------------------------------------------------------------------


def token(digest: str, refs: Iterable[Any]) -> str:
    """An input's token: ``digest``, extended by the code of the user objects in ``refs``."""
    named: dict[str, str] | None = None
    for obj in refs:
        if codehash.is_user_object(obj):
            if named is None:
                named = {}
            named[naming.qualified_name(obj)] = codehash.object_digest(obj)
    if named is None:
        return digest
    return hashing.hash_struct("value", digest, named)


def value_token(value: Any, *, what: str = "value", store: Store | None = None) -> str | None:
    """The token of a value given directly (a workflow input, a literal, an uncached upstream
    output), or None (with one warning) when its bytes are not reproducible. A Secret has its
    HMAC token in ``store`` (None without a store); a Secret inside the value counts as a
    placeholder, without its text."""
    if isinstance(value, Secret):
        return None if store is None else secretkey.secret_token(store, value)
    data = serialize.scalar_json_bytes(value)  # ints, strings...: no serializer machinery
    if data is not None:
        return hashing.blob_digest("json", hashlib.sha256(data).hexdigest())
    token = REDACTING.set(True)  # secrets inside hash as a placeholder (directly: cheaper)
    keying = None if store is None else KEYING.set(functools.partial(secretkey.hmac_key, store))
    try:
        return _hashed_token(value, what)
    finally:
        if keying is not None:
            KEYING.reset(keying)
        REDACTING.reset(token)


def _hashed_token(value: Any, what: str) -> str | None:
    refs: set[Any] = set()
    writer = HashingWriter(None)
    try:
        # one dump gives the digest, the code it names and the hash-seed check
        fmt, unstable = serialize.dump_checked(value, cast(IO[bytes], writer), what=what, refs=refs)
        digest = writer.hasher.digest(fmt)
        if unstable is not None:
            _warn_once(
                what,
                f"{what} cannot be cached: {unstable}; use a sorted list or JSON-able values, "
                "or list it in cache_ignore",
            )
            return None
        if not serialize.is_stable(fmt) and hash_value(value, what=what)[0] != digest:
            _warn_once(
                what,
                f"{what} serialises to different bytes each time ({fmt} format), so the "
                "call is not cached (nothing stale is served); make the value JSON-able "
                "or deterministic, or list it in cache_ignore",
            )
            return None
    except SerializationError as exc:
        _warn_once(what, f"{what} cannot be hashed, so the call is not cached: {exc}")
        return None
    return token(digest, refs)


def input_tokens(
    ignore: frozenset[str],
    task_name: str,
    kwargs: Mapping[str, Any],
    known: Mapping[str, str],
    *,
    store: Store | None = None,
) -> dict[str, str] | None:
    """The token of every input in the key (``known`` ones reused), or None when one has none
    (a Secret input has none without ``store``: see the module docstring)."""
    tokens = {}
    for name, value in kwargs.items():
        if name in ignore:
            continue
        what = f"input `{name}` of task `{task_name}`"
        tok = known.get(name) or value_token(value, what=what, store=store)
        if tok is None:
            return None
        tokens[name] = tok
    return tokens


def is_secret(value: Any) -> bool:
    """True for a Secret: its token is its HMAC in the store (:func:`value_token`)."""
    return isinstance(value, Secret)


def secret_params(task: TaskSpec) -> frozenset[str]:
    """The parameters annotated ``fk.Secret`` (or ``Secret | None``...)."""
    return frozenset(
        p.name for p in task.signature.params if _mentions_secret(typecheck.strip_annotated(p.type))
    )


def _mentions_secret(tp: Any) -> bool:
    if tp is Secret:
        return True
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and any(
        _mentions_secret(a) for a in typing.get_args(tp)
    )


def list_token(tokens: list[str]) -> str:
    """The token of a map's outputs taken as one list (order matters)."""
    return hashing.list_digest(tokens)


def call_key(identity: str, code: str, interface: str, tokens: Mapping[str, str]) -> str:
    """The cache key of one call (see the module docstring)."""
    return hashing.call_key(identity, code, interface, tokens)


def _warn_once(what: str, message: str) -> None:
    with _warned_lock:
        if what in _warned:
            return
        _warned.add(what)
    log.warning("%s", message)


__all__ = [
    "call_key",
    "code",
    "identity",
    "input_tokens",
    "interface",
    "is_secret",
    "list_token",
    "secret_params",
    "token",
    "value_token",
]
