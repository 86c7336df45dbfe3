"""Errors of the ML lifecycle tasks.

Every one derives from :class:`flowkit.errors.FlowkitError` and names the thing that is wrong
and how to fix it. :class:`GateFailed` is a :class:`flowkit.errors.TaskFailedError`, so a
failed validation gate stops a run the same way any failing task does, and ``except
fk.TaskFailedError`` catches it whether the gate ran as a plain call or inside ``fk.run``.
"""

from __future__ import annotations

import math

from flowkit.errors import FlowkitError, TaskFailedError


class DataValidationError(FlowkitError, ValueError):
    """A table does not have the columns, types, nullability or rows a step needs.

    ``problems`` maps each offending column (or ``"<table>"`` for whole-table problems such
    as emptiness) to what was found.
    """

    def __init__(self, message: str, problems: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.problems: dict[str, str] = dict(problems or {})

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.args[0] if self.args else "", self.problems))


class ParameterError(FlowkitError, ValueError):
    """An argument to an ML step is out of range or of the wrong kind."""


class GateFailed(TaskFailedError):
    """A metric missed its threshold: the pipeline stops before the model is deployed."""

    def __init__(
        self,
        metric: str,
        value: float,
        threshold: float,
        higher_is_better: bool = True,
    ) -> None:
        if math.isnan(value):
            found = f"{metric} is NaN"
        else:
            side = "below" if higher_is_better else "above"
            found = f"{metric}={value:.6g} is {side} the threshold {threshold:.6g}"
        want = "at least" if higher_is_better else "at most"
        super().__init__(
            f"validation gate failed: {found} (need {metric} {want} {threshold:.6g}). "
            "Improve the model or change the threshold."
        )
        self.metric = metric
        self.value = value
        self.threshold = threshold
        self.higher_is_better = higher_is_better


class RegistryError(FlowkitError):
    """A model-registry operation could not be done; the registry was left unchanged."""


class ModelNotFoundError(RegistryError, LookupError):
    """No registered model, version or alias by that name."""


class NoEarlierVersionError(RegistryError):
    """``rollback`` found no version that held the alias before the current one."""


__all__ = [
    "DataValidationError",
    "GateFailed",
    "ModelNotFoundError",
    "NoEarlierVersionError",
    "ParameterError",
    "RegistryError",
]
