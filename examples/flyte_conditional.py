"""A Flyte conditional pipeline, ported to flowkit: ``fk.cond`` and field access on promises.

The original is flytesnacks' ``advanced_composition/conditional.py`` (circle properties by
radius; a coin toss choosing a branch; nested conditionals; a no-op branch). How its pieces
map onto flowkit:

* ``conditional("x").if_(p).then(a(...)).else_().then(b(...))`` ->
  ``fk.cond(p, then=a, otherwise=b, radius=radius)``: both branches are traced and
  type-checked now; only the taken one runs, the other is recorded as skipped.
* ``(radius >= 0.1) & (radius < 1.0)`` on promises -> a task returning ``bool``: a promise has
  no value while the workflow is traced, so a comparison is a (tiny, typed, cacheable) task.
* ``.elif_(...)`` -> a nested ``fk.cond`` in ``otherwise``; ``.fail("...")`` -> a task that
  raises (the run fails with that message, naming the task).
* ``result.is_true()`` -> the ``bool`` promise itself; ``Echo`` -> a branch that returns its
  input (``lambda radius: radius``: no task at all).
* A report is a dataclass: ``report.kind`` reads a field of its promise (no task in between).

Run it:   python examples/flyte_conditional.py
          (prints each workflow's output and which calls ran or were skipped)
Draw it:  flowkit graph examples/flyte_conditional.py:nested_conditions --format mermaid
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass

import flowkit as fk

PI = 3.14  # the original's value, so outputs agree with it


@fk.task
def calculate_circle_circumference(radius: float) -> float:
    return 2 * PI * radius


@fk.task
def calculate_circle_area(radius: float) -> float:
    return PI * radius * radius


@fk.task
def within(radius: float, low: float, high: float, inclusive: bool = False) -> bool:
    """``low <= radius < high`` (``<= high`` when inclusive): Flyte's ``(r >= lo) & (r < hi)``."""
    return low <= radius <= high if inclusive else low <= radius < high


@fk.task
def out_of_range(radius: float, message: str) -> float:
    """Flyte's ``.else_().fail(message)``: a branch that fails the run."""
    raise ValueError(f"{message} (radius={radius})")


@fk.task
def coin_toss(seed: int) -> bool:
    return random.Random(seed).random() < 0.5


@fk.task
def success() -> int:
    return 0


@fk.task
def failed() -> int:
    return -1


@fk.workflow
def shape_properties(radius: float) -> float:
    """Circumference for a fraction (0.1 <= r < 1), else the area."""
    return fk.cond(
        within(radius, 0.1, 1.0),
        then=calculate_circle_circumference,
        otherwise=calculate_circle_area,
        radius=radius,
    )


@fk.workflow
def area_or_fail(radius: float) -> float:
    """The ``elif_`` branch of the original (1 <= r <= 10: the area), else it fails."""
    return fk.cond(
        within(radius, 1.0, 10.0, inclusive=True),
        then=calculate_circle_area,
        otherwise=lambda radius: out_of_range(radius, "the input must be within 0 to 10"),
        radius=radius,
    )


@fk.workflow
def shape_properties_with_multiple_branches(radius: float) -> float:
    return fk.cond(
        within(radius, 0.1, 1.0),
        then=calculate_circle_circumference,
        otherwise=area_or_fail,
        radius=radius,
    )


@fk.workflow
def shape_properties_accept_conditional_output(radius: float) -> float:
    """A task consumes the output of a conditional, like any promise."""
    return calculate_circle_area(shape_properties_with_multiple_branches(radius))


@fk.workflow
def boolean_wf(seed: int = 5) -> int:
    return fk.cond(coin_toss(seed), then=success, otherwise=failed)


@fk.workflow
def boolean_input_wf(boolean_input: bool) -> int:
    return fk.cond(boolean_input, then=success, otherwise=failed)


@fk.workflow
def inner_nested(radius: float) -> float:
    return fk.cond(
        within(radius, 0.0, 0.5),
        then=calculate_circle_circumference,
        otherwise=lambda radius: fk.cond(
            within(radius, 0.5, 0.9),
            then=calculate_circle_area,
            otherwise=lambda radius: out_of_range(radius, "0.9 is an outlier"),
            radius=radius,
        ),
        radius=radius,
    )


@fk.workflow
def nested_conditions(radius: float) -> float:
    return fk.cond(
        within(radius, 0.1, 1.0),
        then=inner_nested,
        otherwise=area_or_fail,
        radius=radius,
    )


@fk.workflow
def noop_in_conditional(radius: float, seed: int = 5) -> float:
    """The taken branch may be no task at all: the radius passes through unchanged."""
    return fk.cond(
        coin_toss(seed),
        then=calculate_circle_circumference,
        otherwise=lambda radius: radius,
        radius=radius,
    )


@dataclass(frozen=True)
class Report:
    kind: str
    value: float


@fk.task
def measure(radius: float) -> Report:
    if radius < 1.0:
        return Report("circumference", 2 * PI * radius)
    return Report("area", PI * radius * radius)


@fk.task
def is_area(kind: str) -> bool:
    return kind == "area"


@fk.task
def halve(value: float) -> float:
    return value / 2


@fk.workflow
def report_fields(radius: float) -> float:
    """Fields of a dataclass promise feed a predicate and a branch (no task reads them)."""
    report = measure(radius)
    return fk.cond(
        is_area(report.kind), then=halve, otherwise=lambda value: value, value=report.value
    )


def describe(run: fk.Run) -> str:
    calls = ", ".join(f"{t.node}={t.status}" for t in run.tasks)
    return f"{run.output!r:>22}  [{calls}]"


def main(store: str | None = None) -> dict[str, object]:
    """Run every workflow as the original's ``__main__`` does; return the outputs."""
    outputs: dict[str, object] = {}

    def show(name: str, wf: fk.WorkflowDef[..., object], **inputs: object) -> None:
        run = fk.run(wf, store=store, **inputs)
        outputs[f"{name}({', '.join(f'{k}={v}' for k, v in inputs.items())})"] = run.output
        print(f"{name:>44}: {describe(run)}")

    show("shape_properties", shape_properties, radius=0.5)
    show("shape_properties", shape_properties, radius=3.0)
    show(
        "shape_properties_with_multiple_branches",
        shape_properties_with_multiple_branches,
        radius=5.0,
    )
    show(
        "shape_properties_accept_conditional_output",
        shape_properties_accept_conditional_output,
        radius=0.5,
    )
    for seed in range(3):
        show("boolean_wf", boolean_wf, seed=seed)
    show("boolean_input_wf", boolean_input_wf, boolean_input=True)
    show("nested_conditions", nested_conditions, radius=0.4)
    show("nested_conditions", nested_conditions, radius=0.7)
    show("noop_in_conditional", noop_in_conditional, radius=0.4, seed=5)
    show("noop_in_conditional", noop_in_conditional, radius=0.4, seed=7)
    show("report_fields", report_fields, radius=4.0)
    try:
        fk.run(shape_properties_with_multiple_branches, radius=11.0, store=store)
    except fk.TaskFailedError as e:
        print(f"{'radius=11.0':>44}: failed as the original does: {e.__cause__}")
        outputs["failure"] = str(e.__cause__)
    return outputs


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
