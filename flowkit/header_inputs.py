"""The workflow's inputs as the run header records them, and back.

The run header (``runs/<id>/run.json``) is read for every run that ``runs list`` shows, so it
stays small, and it is plain JSON anyone with the store can read, so it holds no secret.
:func:`record_inputs` gives, per input, what the header writes:

* a JSON-able value (``None``, ``bool``, ``int``, ``float``, ``str`` and lists, tuples and
  ``str``-keyed dicts of them, exact types) whose canonical JSON is at most ``max_inline``
  bytes: the value as it is (a tuple as a list; ``nan``/``inf`` as the strings ``'nan'``,
  ``'inf'``, as headers always wrote them);
* a :class:`~flowkit.secret.Secret`, alone or anywhere inside such a value: ``{"$secret":
  true}`` in its place;
* anything else (larger, or not JSON-able: a DataFrame, an ndarray, a dataclass, a dict whose
  keys are not strings or start with ``$``): stored with :meth:`Store.put` and written as
  ``{"$artifact": artifact.to_dict()}``;
* what cannot be stored (an object that does not pickle; a large value holding a secret,
  which the store refuses): ``{"$repr": short repr}``, with every known secret masked.

So a header entry is a marker exactly when it is a dict with one ``$`` key: an input dict with
such keys is never inline. :func:`load_inputs` / :func:`input_value` read entries back: an
artifact is loaded from the store, a secret becomes :data:`~flowkit.secret.REDACTED` (its
value was never recorded), a repr becomes :class:`Unrecorded`.
"""

from __future__ import annotations

import math
from typing import Any, Final

from flowkit.errors import SerializationError
from flowkit.hashing import canonical_json
from flowkit.reprs import short_repr
from flowkit.secret import REDACTED, Secret, contains_secret, mask
from flowkit.store import Artifact, Store

MAX_INLINE: Final = 4096  # bytes of canonical JSON an input may take in the header
SECRET_MARK: Final = "$secret"
ARTIFACT_MARK: Final = "$artifact"
REPR_MARK: Final = "$repr"


class Unrecorded:
    """An input the header could only describe: it was not JSON-able and not storable."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unrecorded) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


# -- writing ------------------------------------------------------------------------------------


def record_inputs(
    values: dict[str, Any], store: Store, *, max_inline: int = MAX_INLINE
) -> dict[str, Any]:
    """What the run header writes for the workflow's inputs (see the module docstring)."""
    return {name: record_input(name, v, store, max_inline=max_inline) for name, v in values.items()}


def record_input(name: str, value: Any, store: Store, *, max_inline: int = MAX_INLINE) -> Any:
    """What the run header writes for one input ``name``."""
    found = _Tree()
    tree = found.build(value)
    if tree is not _NOT_JSON and len(canonical_json(tree)) <= max_inline:
        return tree
    if found.secret:  # the store would refuse it: do not even try
        return {REPR_MARK: _described(value)}
    try:
        artifact = store.put(value, what=f"workflow input `{name}`")
    except SerializationError:
        return {REPR_MARK: _described(value)}
    return {ARTIFACT_MARK: artifact.to_dict()}


def _described(value: Any) -> str:
    try:
        text = short_repr(value)
    except Exception as exc:  # a user __repr__ may fail: the type still says something
        text = f"<{type(value).__qualname__}: repr failed with {type(exc).__name__}>"
    return mask(text)  # a user __repr__ may reveal a secret


class _NotJSON:
    pass


_NOT_JSON: Final = _NotJSON()


class _Tree:
    """Builds an input's header JSON, noting whether a secret was met on the way."""

    def __init__(self) -> None:
        self.secret = False

    def build(self, value: Any) -> Any:
        """The JSON tree of ``value`` (secrets as markers), or ``_NOT_JSON``."""
        try:
            return self._enc(value)
        except (_Refused, RecursionError):
            return _NOT_JSON

    def _enc(self, v: Any) -> Any:
        t = type(v)
        if v is None or t is bool or t is int or t is str:
            return v
        if t is float:
            return v if math.isfinite(v) else repr(v)  # 'nan', 'inf': as headers always did
        if t is list or t is tuple:
            return [self._enc(x) for x in v]
        if t is dict:
            if not all(type(k) is str and not k.startswith("$") for k in v):
                raise _Refused  # "$" keys would read as markers; other keys would not round-trip
            return {k: self._enc(x) for k, x in v.items()}
        if isinstance(v, Secret):
            self.secret = True
            return {SECRET_MARK: True}
        raise _Refused


class _Refused(Exception):
    """The value is not JSON-able as it is."""


# -- reading ------------------------------------------------------------------------------------


def load_inputs(recorded: dict[str, Any], store: Store) -> dict[str, Any]:
    """The inputs a header recorded, artifacts loaded (see :func:`input_value`)."""
    return {
        name: input_value(entry, store, what=f"workflow input `{name}`")
        for name, entry in recorded.items()
    }


def input_value(entry: Any, store: Store, *, what: str = "workflow input") -> Any:
    """One recorded input: an artifact loaded from ``store``, a secret as ``REDACTED``, a
    repr as :class:`Unrecorded`, a JSON value as it is (secrets inside it as ``REDACTED``)."""
    marker = _marker(entry)
    if marker == ARTIFACT_MARK:
        try:
            artifact = Artifact.from_dict(entry[ARTIFACT_MARK])
        except ValueError as exc:
            raise SerializationError(
                f"cannot load {what}: the run header is damaged ({exc})"
            ) from exc
        return store.get(artifact, what=what)
    if marker == REPR_MARK:
        return Unrecorded(str(entry[REPR_MARK]))
    return _restored(entry)


def _marker(entry: Any) -> str | None:
    if type(entry) is dict and len(entry) == 1:
        (key,) = entry
        if key in (SECRET_MARK, ARTIFACT_MARK, REPR_MARK):
            return str(key)
    return None


def _restored(v: Any) -> Any:
    if type(v) is list:
        return [_restored(x) for x in v]
    if type(v) is dict:
        if _marker(v) == SECRET_MARK:
            return REDACTED
        return {k: _restored(x) for k, x in v.items()}
    return v


__all__ = [
    "ARTIFACT_MARK",
    "MAX_INLINE",
    "REPR_MARK",
    "SECRET_MARK",
    "Unrecorded",
    "contains_secret",
    "input_value",
    "load_inputs",
    "record_input",
    "record_inputs",
]
