"""The code fingerprint of a task: everything its behaviour depends on, hashed.

``fingerprint(fn)`` returns a :class:`Fingerprint`: a sha256 ``digest`` and the named
``components`` it was computed from (``flowkit cache explain`` prints the ones that changed).

Policy
------
* **What is hashed is the compiled code, not the source text.** Each function counts by its
  normalised bytecode: instruction names and arguments (constants by value, names by name, jump
  targets by instruction index), argument layout, flags, exception table and nested code objects
  (lambdas, comprehensions, inner functions). Comments, docstrings, blank lines, formatting and
  line numbers never reach the bytecode, and decorators live in the enclosing module's code, so
  none of them changes the fingerprint. Hashing what actually runs (rather than
  ``inspect.getsource``) also means a source file edited after import, a lambda on a shared line
  or a function with no source file cannot fool it. The bytecode format is named by the
  ``bytecode`` component (e.g. ``cpython-311``).
* **User code is followed transitively; installed code counts by version.** A module whose file
  lies under site-packages/dist-packages or the standard library is not user code; flowkit itself
  counts as installed code. Everything else (scripts, ``__main__``, notebooks, the user's own
  packages, editable installs) is user code. From the task function, every global, attribute chain
  on a user module (``utils.clean`` fingerprints ``utils.clean``, not all of ``utils``),
  function-level import, closure cell and default value is resolved to the object it names now:
  user functions become ``helper`` components, user classes ``class`` components (every method,
  user base classes followed), plain values ``constant`` / ``closure`` / ``default`` components
  hashed by value, and installed modules ``module `numpy``` -> ``"numpy==2.4.6"`` (stdlib:
  ``"python==3.11"``). Builtins and names not bound yet are ignored.
* **Objects that wrap a function** (flowkit ``TaskDef``, ``functools.lru_cache``, installed
  decorators) are followed through ``__wrapped__``; a *user* wrapper function is hashed itself, and
  the function it wraps is reached through its closure.
* **Values** are encoded canonically: JSON-like values directly (dicts and sets order-insensitive),
  functions/classes/modules inside them by reference, type annotations structurally (unions,
  generics, ``Annotated``, ``Literal``…, with classes by reference), numpy arrays by dtype,
  shape and bytes, other objects through their pickle reduction (``__reduce_ex__``),
  recursively. Runtime machinery
  (locks, threads, open files…) counts by its type. A value that cannot be encoded stably counts
  by its type name and a warning is logged; fingerprinting never raises for a value. Values are
  read at fingerprint time (run start): a module-level dict used as a memo changes the digest
  once it has filled.
* **Stable across processes**: no ids, addresses, file paths, line numbers or set orders reach a
  pre-image. Component names use qualified names relative to the task's own module, and
  ``__main__`` is named by the script's stem (:mod:`flowkit.naming`), so running a script as
  ``__main__`` or importing it gives the same digest. The task's module and qualified
  name are not part of it (the cache key adds the task identity separately); only its plain name
  labels the ``function`` component.
* **Fast**: the bytecode analysis is memoised per code object (code objects are immutable); the
  bindings (which object a global names now) are re-resolved on every call, so a re-executed
  notebook cell or a rebound global is always seen. The first analysis in a process costs
  about ten times a repeat (timings: ``benchmarks/RESULTS.md``, "Design measurements").

* **Objects inside values**: :func:`object_digest` gives one class's or function's code digest
  by the same rules (the class or function as the root), for the classes of input values and
  functions passed as inputs; memoised per object until :func:`forget_objects` (run start).
  :func:`is_user_object` tells user code from installed code by the same rule.

Layout: :mod:`.bytecode` (normalised code and what it refers to), :mod:`.origins` (user code vs
stdlib vs installed, and versions), :mod:`.values` (canonical value encodings), :mod:`.walk`
(the traversal that names components), :mod:`.objects` (digests of single classes and
functions).

Example::

    fp = fingerprint(train)
    fp.digest                       # 'a3f9…'
    fp.components["helper `clean`"]  # digest of the helper's code and bindings
    describe_changes(old.components, fp.components)  # ['helper `clean` changed']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowkit import hashing
from flowkit.codehash import bytecode
from flowkit.codehash.objects import forget_objects, is_user_object, object_digest
from flowkit.codehash.walk import Walker, module_name_of, unwrap_root

__all__ = [
    "Fingerprint",
    "components_digest",
    "describe_changes",
    "fingerprint",
    "forget_objects",
    "is_user_object",
    "object_digest",
    "unwrap_root",
]


@dataclass(frozen=True)
class Fingerprint:
    """The code fingerprint of one task function.

    ``digest`` is ``hashing.hash_struct("code", components)``; ``components`` maps human-readable
    names (``"function `train`"``, ``"helper `clean`"``, ``"constant `FACTOR`"``,
    ``"class `Scaler`"``, ``"closure `threshold`"``, ``"default `alpha`"``, ``"module `numpy`"``,
    ``"bytecode"``) to sha256 digests or, for installed code, ``"dist==version"``.
    """

    digest: str
    components: dict[str, str] = field(hash=False)


def fingerprint(fn: Callable[..., Any]) -> Fingerprint:
    """Fingerprint the code of ``fn`` and of the user code it reaches.

    ``fn`` may be a plain function, a bound method, or an object wrapping one through
    ``__wrapped__`` (a flowkit ``TaskDef``). An installed function used as a task counts by its
    qualified name and distribution version. Raises ``TypeError`` when ``fn`` is not callable.
    """
    target = unwrap_root(fn)
    walker = Walker(root_module=module_name_of(target))
    walker.run(target)
    components = {**walker.components, "bytecode": bytecode.FORMAT}
    components = dict(sorted(components.items()))
    return Fingerprint(digest=components_digest(components), components=components)


def components_digest(components: Mapping[str, str]) -> str:
    """The digest of a component mapping: :func:`flowkit.hashing.code_digest` (golden-tested)."""
    return hashing.code_digest(components)


def describe_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Human-readable differences between two component mappings, sorted by name.

    >>> describe_changes({"helper `clean`": "a"}, {"helper `clean`": "b"})
    ['helper `clean` changed']
    """
    lines: list[str] = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if before is None:
            lines.append(f"{name} added")
        elif after is None:
            lines.append(f"{name} removed")
        elif "==" in before or "==" in after or name == "bytecode":
            lines.append(f"{name} changed ({before} -> {after})")
        else:
            lines.append(f"{name} changed")
    return lines
