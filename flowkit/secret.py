"""``fk.Secret``: a string flowkit never writes anywhere in plain text.

A workflow or task parameter typed ``fk.Secret`` (an API token, a password) travels to the
tasks that use it, Ray workers included, and nowhere else:

* its ``repr``, ``str`` and ``format`` are ``Secret('***')``; only :meth:`Secret.reveal`
  gives the text;
* it is never stored: :mod:`flowkit.serialize` refuses it, nested too (a list, dict or
  dataclass holding one), with :class:`SecretStorageError`. Pickling for *transport* (a Ray
  worker, a process pool) works: the refusal applies only while :func:`storing` is active,
  which ``serialize`` sets while it writes a value;
* it is left out of cache keys (:mod:`flowkit.keys`): nothing derived from its value, not even
  a digest, is written. So changing a secret does **not** miss the cache: a result computed
  with the old token is served for the new one (a secret should change who may compute, not
  what is computed);
* the run header records it as ``{"$secret": true}`` (:mod:`flowkit.header_inputs`);
* :func:`mask` replaces every secret value known to this process in a text (captured logs,
  error messages, tracebacks) with ``***``. A value is known once a ``Secret`` holding it was
  built or unpickled in this process, so a worker masks what it received.

Values shorter than :data:`MIN_MASKED` characters are not masked: replacing every ``a`` or
``42`` in a log would make it unreadable without protecting anything (a secret that short is
guessed, not read), and the pattern of the ``***`` left behind would itself tell where the
value occurs.

Bottom layer: imports only :mod:`flowkit.errors`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import hmac
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

from flowkit.errors import FlowkitError, SerializationError

MASK: Final = "***"
MIN_MASKED: Final = 4  # shorter values are not masked (see the module docstring)
_SHOWN: Final = "Secret('***')"


class SecretError(FlowkitError, ValueError):
    """A secret could not be read (an unset environment variable, a missing file)."""


class SecretStorageError(SerializationError):
    """Something tried to write a :class:`Secret` to the store."""


# Set while serialize writes a value for the store: a Secret met then refuses to pickle.
# Public so hot paths set it directly (``storing()`` costs a generator per call).
STORING: Final[contextvars.ContextVar[bool]] = contextvars.ContextVar(
    "flowkit_secret_storing", default=False
)
# Set while keys hash a value: a Secret met then pickles as a placeholder without its value.
REDACTING: Final[contextvars.ContextVar[bool]] = contextvars.ContextVar(
    "flowkit_secret_redacting", default=False
)
# Set (with REDACTING) while keys hash a value for a store: gives the store's secret HMAC key,
# asked only when a Secret is met; the placeholder then holds the HMAC of the secret's text.
KEYING: Final[contextvars.ContextVar[Callable[[], bytes | None] | None]] = contextvars.ContextVar(
    "flowkit_secret_keying", default=None
)


def keyed_mac(text: str, key: bytes) -> str:
    """HMAC-SHA256 of a secret's text under ``key`` (hex): what cache keys hold of a secret."""
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


class Secret:
    """A secret string. ``Secret("v")``, :meth:`from_env`, :meth:`from_file`; :meth:`reveal`.

    Equal by value (compared in constant time), hashable, immutable, picklable for transport.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            # the type only: the value may be the secret itself
            raise TypeError(f"fk.Secret wraps a str, not a {type(value).__name__}")
        object.__setattr__(self, "_value", value)
        _register(value)

    @classmethod
    def from_env(cls, name: str) -> Secret:
        """The value of the environment variable ``name``; SecretError if it is unset or empty."""
        value = os.environ.get(name)
        if not value:
            state = "is not set" if value is None else "is empty"
            raise SecretError(
                f"environment variable {name} {state}: export {name}=... (the secret) "
                f"before running, or pass fk.Secret(value) from Python"
            )
        return cls(value)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Secret:
        """The first line of the file at ``path`` (``~`` expanded; without its line ending)."""
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                first = f.readline()
        except OSError as exc:
            raise SecretError(
                f"cannot read the secret file {os.fspath(path)!r}: {exc.strerror or exc}; "
                "give the path of a readable file whose first line is the secret"
            ) from None
        value = first.rstrip("\r\n")
        if not value:
            raise SecretError(
                f"the secret file {os.fspath(path)!r} is empty or starts with an empty line; "
                "its first line must be the secret"
            )
        return cls(value)

    def reveal(self) -> str:
        """The secret text. Pass it on directly; do not log it, return it or store it."""
        return self._value

    def __repr__(self) -> str:
        return _SHOWN

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(_SHOWN, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other._value.encode("utf-8"))

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("fk.Secret is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("fk.Secret is immutable")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if REDACTING.get():
            get_key = KEYING.get()
            key = None if get_key is None else get_key()
            if key is not None:
                return (_keyed, (keyed_mac(self._value, key),))
            return (Redacted, ())
        if STORING.get():
            raise SecretStorageError(
                "a fk.Secret is never written to the store; pass it to tasks as its own "
                "parameter (typed fk.Secret), and do not return it or keep it inside a value "
                "that is returned or stored"
            )
        return (Secret, (self._value,))  # transport: unpickling registers it for masking

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[Any, ...]]:
        return self.__reduce__()


class SecretText(str):
    """A secret's text as a task parameter typed ``str`` receives it (see docs/secrets.md):
    a ``str`` in every use (a header, a client, ``len``), known to :func:`mask`, shown as
    ``Secret('***')`` by ``repr``, and refused by the store like a :class:`Secret` when
    returned as it is. Text built from it (an f-string, ``+``) is a plain ``str``: flowkit
    cannot follow it, so do not return or store such text."""

    __slots__ = ()

    def __new__(cls, value: str) -> SecretText:
        _register(value)
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return _SHOWN

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        reduced = Secret.__reduce__(Secret(str.__str__(self)))  # the same rules as a Secret
        if reduced[0] is Secret:
            return (SecretText, reduced[1])  # transport keeps it text
        return reduced

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[Any, ...]]:
        return self.__reduce__()


def revealed(value: Any) -> Any:
    """``value`` as a task parameter typed ``str`` takes it: a :class:`Secret` becomes its
    :class:`SecretText`; anything else is returned as it is."""
    return SecretText(value._value) if isinstance(value, Secret) else value


class Redacted:
    """What readers get where a secret was: the run header recorded no value for it.

    One instance (:data:`REDACTED`); :meth:`reveal` raises and says how to give it again.
    """

    __slots__ = ()
    _instance: Redacted | None = None

    def __new__(cls) -> Redacted:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def reveal(self) -> str:
        raise SecretError(
            "this fk.Secret was not recorded (secrets never are); give it again: "
            "fk.Secret.from_env(NAME) in Python, or env:NAME / file:PATH on the command line"
        )

    def __repr__(self) -> str:
        return "Secret(<not recorded>)"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Redacted, ())


REDACTED: Final = Redacted()


def _keyed(mac: str) -> Redacted:
    """What a keyed placeholder (a secret's HMAC in hashed bytes) loads as: no secret."""
    return REDACTED


@contextlib.contextmanager
def storing() -> Iterator[None]:
    """While active, a :class:`Secret` refuses to be pickled (:class:`SecretStorageError`)."""
    token = STORING.set(True)
    try:
        yield
    finally:
        STORING.reset(token)


@contextlib.contextmanager
def redacting() -> Iterator[None]:
    """While active, a :class:`Secret` pickles as :class:`Redacted`: bytes without its value.

    For hashing only (cache keys); never around a write to the store.
    """
    token = REDACTING.set(True)
    try:
        yield
    finally:
        REDACTING.reset(token)


# -- masking -----------------------------------------------------------------------------------

_lock = threading.Lock()
_known: frozenset[str] = frozenset()
_pattern: re.Pattern[str] | None = None  # None until a maskable secret is registered


def _written_forms(value: str) -> set[str]:
    """``value`` and how code commonly writes it into a text: ``repr`` (``f"{token!r}"``) and
    JSON escape what is not printable, so ``'\\x00'`` would otherwise pass the mask."""
    forms = {value, repr(value)[1:-1], json.dumps(value)[1:-1]}
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return {f for f in forms if len(f) >= MIN_MASKED}


def _register(value: str) -> None:
    global _known, _pattern
    if len(value) < MIN_MASKED or value in _known:
        return
    with _lock:
        if value in _known:
            return
        known = _known | _written_forms(value)
        # longest first: where one secret contains another, the longer one is masked whole
        ordered = sorted(known, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))
        _known = known


def mask(text: str) -> str:
    """``text`` with every secret value known to this process replaced by ``***``.

    Repeated until none is left: masking can join the ends of two pieces into a secret again
    (``*****`` holds ``****`` once more after one pass).
    """
    pattern = _pattern
    if pattern is None:  # no secret registered: the common case costs this check
        return text
    while True:
        masked = pattern.sub(MASK, text)
        if masked == text:
            return text
        text = masked


# -- finding secrets inside values ---------------------------------------------------------------


def contains_secret(value: Any) -> bool:
    """True if ``value`` is a :class:`Secret` or holds one in a list, tuple, set, dict (keys
    or values) or dataclass field, however deep. Other objects are not looked into: storing
    one that holds a secret is refused by :mod:`flowkit.serialize` instead."""
    stack = [value]
    seen: set[int] = set()
    while stack:
        v = stack.pop()
        if isinstance(v, (Secret, SecretText)):
            return True
        if isinstance(v, (str, bytes, int, float)) or v is None or id(v) in seen:
            continue
        seen.add(id(v))
        if isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            stack.extend(getattr(v, f.name, None) for f in dataclasses.fields(v))
    return False


__all__ = [
    "KEYING",
    "MASK",
    "MIN_MASKED",
    "REDACTED",
    "REDACTING",
    "STORING",
    "Redacted",
    "Secret",
    "SecretError",
    "SecretStorageError",
    "SecretText",
    "contains_secret",
    "keyed_mac",
    "mask",
    "redacting",
    "revealed",
    "storing",
]
