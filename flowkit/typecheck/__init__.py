"""Type hints of tasks: resolution, PEP 484 assignability, and cheap runtime checks.

Each policy lives in the docstring of the module that implements it:

* :mod:`~flowkit.typecheck.signature` - resolving a function's annotated parameters and return
  type (:func:`resolve_signature`, :class:`Signature`, :class:`Param`).
* :mod:`~flowkit.typecheck.assignable` - PEP 484 assignability between static types
  (:func:`is_assignable`): mypy's verdicts, except that mutable containers are covariant like
  their read-only twins; unknown constructs accepted.
* :mod:`~flowkit.typecheck.explain` - why a type is not assignable, with the fix
  (:func:`explain_mismatch`).
* :mod:`~flowkit.typecheck.shapes` - list element types for ``task.map`` and multi-output return
  types (:func:`element_type`, :func:`map_binding`, :func:`output_types`, ...), the length
  mapped lists share (:func:`common_length`) and multi-outputs rebuilt as their NamedTuple
  (:func:`rebuild_namedtuple`).
* :mod:`~flowkit.typecheck.runtime` - cheap runtime checks of values (:func:`check_value`,
  :func:`checker_for`) and the static type of a constant (:func:`infer_type`).
* :mod:`~flowkit.typecheck.names` - readable type names for messages (:func:`type_repr`).
* :mod:`~flowkit.typecheck.normalize` - looking through wrappers that do not change the admitted
  values (``Annotated``, ``Final``, ``NewType``, ``TypeVar``, ...), shared by all of the above.

Import the public names from ``flowkit.typecheck``; the submodules are an implementation layout.
They load on first use of one of their names (PEP 562 ``__getattr__``), not when ``flowkit`` is
imported: no task is decorated during ``import flowkit``, so importing seven modules up front would
only add import time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowkit.typecheck.assignable import is_assignable
    from flowkit.typecheck.explain import explain_mismatch
    from flowkit.typecheck.names import type_repr
    from flowkit.typecheck.normalize import (
        NoneType,
        annotated_metadata,
        namedtuple_fields,
        strip_annotated,
    )
    from flowkit.typecheck.runtime import check_value, checker_for, infer_type
    from flowkit.typecheck.shapes import (
        MapBinding,
        common_length,
        element_type,
        is_list_type,
        list_of,
        map_binding,
        output_types,
        rebuild_namedtuple,
    )
    from flowkit.typecheck.signature import NO_DEFAULT, Param, Signature, resolve_signature

# Public name -> the submodule that defines it.
_HOME: dict[str, str] = {
    "NO_DEFAULT": "signature",
    "MapBinding": "shapes",
    "NoneType": "normalize",
    "Param": "signature",
    "Signature": "signature",
    "annotated_metadata": "normalize",
    "check_value": "runtime",
    "common_length": "shapes",
    "checker_for": "runtime",
    "element_type": "shapes",
    "explain_mismatch": "explain",
    "infer_type": "runtime",
    "is_assignable": "assignable",
    "is_list_type": "shapes",
    "list_of": "shapes",
    "map_binding": "shapes",
    "namedtuple_fields": "normalize",
    "output_types": "shapes",
    "rebuild_namedtuple": "shapes",
    "resolve_signature": "signature",
    "strip_annotated": "normalize",
    "type_repr": "names",
}


if not TYPE_CHECKING:  # hidden from mypy, which would otherwise type every unknown name Any

    def __getattr__(name: str) -> Any:
        home = _HOME.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
        globals()[name] = value  # later look-ups are plain attribute hits, the hook runs once
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(_HOME))


__all__ = [
    "NO_DEFAULT",
    "MapBinding",
    "NoneType",
    "Param",
    "Signature",
    "annotated_metadata",
    "check_value",
    "checker_for",
    "common_length",
    "element_type",
    "explain_mismatch",
    "infer_type",
    "is_assignable",
    "is_list_type",
    "list_of",
    "map_binding",
    "namedtuple_fields",
    "output_types",
    "rebuild_namedtuple",
    "resolve_signature",
    "strip_annotated",
    "type_repr",
]
