"""The code digest of one class or function found inside a value.

A cached call's key must change when the code of its inputs' classes changes (a dataclass's
method, a NamedTuple's property, the class named in a pickle) and when a function passed as an
input is edited. :func:`object_digest` gives that digest, by the same rules as a task's
fingerprint (:mod:`flowkit.codehash.walk`, with the object as the root):

* a user class counts by its bases, metaclass, annotations and every member, and, transitively,
  the helpers, constants and classes its methods reach; a user function by its bytecode and
  everything it reaches; a callable object (``functools.partial``…) by its value, with the
  functions and classes inside it fingerprinted;
* installed and standard-library code counts by version: ``"numpy==2.4.6"``, ``"python==3.11"``.

The digest is the same in every process and for every hash seed, and the same whether the
defining script runs as ``__main__`` or is imported under its stem (:mod:`flowkit.naming`).

It runs on cache hits, so it is memoised per object for the process: a repeated call is one
dictionary look-up. The memo holds the object, so its id cannot be reused while it is memoised.
A consequence: rebinding a global that a memoised class's method reads (a re-executed notebook
cell assigning a new ``FACTOR``) is seen only after :func:`forget_objects`, which the engine calls
at the start of each run, or in the next process. Redefining the class itself makes a new class
object, which is seen at once.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from flowkit import hashing
from flowkit.codehash import bytecode, origins
from flowkit.codehash.walk import Walker, module_name_of, unwrap_root

__all__ = ["forget_objects", "is_user_object", "object_digest"]

# id(obj) -> (obj, answer); holding obj keeps its id from being reused while memoised.
_memo: dict[int, tuple[object, str]] = {}
_user_memo: dict[int, tuple[object, bool]] = {}

_BUILTIN_CALLABLES = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
)


def object_digest(obj: type | Callable[..., Any]) -> str:
    """The code digest of one class or function (see the module docstring).

    A sha256 hex digest for user code, ``"dist==version"`` / ``"python==X.Y"`` for installed and
    standard-library code. Raises ``TypeError`` for anything that is neither a class nor
    callable.
    """
    hit = _memo.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    digest = _compute(obj)
    _memo[id(obj)] = (obj, digest)
    return digest


def forget_objects() -> None:
    """Clear the memos of :func:`object_digest` and :func:`is_user_object` (at run start), so
    rebound globals are seen and the memoised objects can be freed."""
    _memo.clear()
    _user_memo.clear()


def is_user_object(obj: object) -> bool:
    """Whether ``obj`` (a class, function, module or other object) is user code.

    By the same rule the fingerprint walk applies (:mod:`.origins`): a function by the file of
    its code, a module by its file, anything else by the module its ``__module__`` names.
    Memoised for classes and functions, like :func:`object_digest`.
    """
    hit = _user_memo.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    answer = _is_user(obj)
    if isinstance(obj, (type, types.FunctionType)):
        _user_memo[id(obj)] = (obj, answer)
    return answer


def _is_user(obj: object) -> bool:
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    if isinstance(obj, types.FunctionType):
        return origins.function_origin(obj).kind == "user"
    if isinstance(obj, types.ModuleType):
        return origins.module_origin(obj).kind == "user"
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):  # some C functions have __module__ None
        module = type(obj).__module__
    return origins.module_origin_by_name(module).kind == "user"


def _compute(obj: object) -> str:
    if isinstance(obj, type):
        root: object = obj
        if not is_user_object(obj):
            return _version(obj.__module__)
    else:
        root = unwrap_root(obj)  # a bound method, a TaskDef, an lru_cache or wraps wrapper
        if isinstance(root, types.FunctionType) and not is_user_object(root):
            return origins.version(origins.function_origin(root))
        if isinstance(root, _BUILTIN_CALLABLES):
            return _version(getattr(root, "__module__", None) or "builtins")
    walker = Walker(root_module=module_name_of(root))
    label = walker.root(root)
    components = {**walker.components, "root": label, "bytecode": bytecode.FORMAT}
    return hashing.hash_struct("code", dict(sorted(components.items())))


def _version(module: str) -> str:
    origin = origins.module_origin_by_name(module)
    if origin.kind == "user":  # a builtin whose __module__ names a user module: rare
        return origins.PYTHON_VERSION
    return origins.version(origin)
