"""Validation gates: stop a pipeline before a model that misses its bar is deployed.

``gate`` returns the metric value when it passes, so downstream steps (``register``, ``promote``)
can take it as an input: that data edge is what orders "deploy" after "validate" in a workflow.
A NaN metric never passes. ``Metrics`` is the type to declare on tasks that return metrics;
:class:`flowkit.ml.MLflowTracker` logs every task output of that type.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from flowkit.ml.errors import GateFailed, ParameterError

#: A task's metrics: name → value. Declare it as a task's return type to have
#: :class:`flowkit.ml.MLflowTracker` log the values.
Metrics = dict[str, float]


def gate(
    value: float | Mapping[str, float],
    threshold: float,
    metric: str = "accuracy",
    higher_is_better: bool = True,
) -> float:
    """Return ``value`` if it meets ``threshold``, else raise :class:`GateFailed`.

    ``value`` may be the metric itself or a ``Metrics`` dict, from which ``metric`` is taken.

    Example::

        score = ml.gate(metrics, threshold=0.9, metric="accuracy")   # raises GateFailed if < 0.9
        version = register_model(model, score)                        # runs only after the gate
    """
    if isinstance(value, Mapping):
        if metric not in value:
            raise ParameterError(
                f"gate: metric {metric!r} is not in the metrics "
                f"(have: {', '.join(sorted(value)) or 'none'}); pass metric= one of them"
            )
        value = value[metric]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"gate: {metric} must be a number, got {type(value).__name__}")
    v = float(value)
    passed = (v >= threshold) if higher_is_better else (v <= threshold)
    if math.isnan(v) or not passed:
        raise GateFailed(metric, v, float(threshold), higher_is_better)
    return v


__all__ = ["Metrics", "gate"]
