"""``--param NAME=VALUE`` of ``flowkit schedule add`` and ``flowkit trigger add``: workflow
inputs kept as text in the store and given to each fire's ``flowkit run``.

Each text is checked now, with the converter ``flowkit run`` will use, so a typo fails when
the schedule or trigger is added, not at 3 a.m. A ``fk.Secret`` is checked for its form only
(``env:VAR`` / ``file:PATH``): it is read when the run starts, on the machine that runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowkit import typecheck
from flowkit.cli.common import UsageError
from flowkit.cli.params import (
    SECRET_FORMS,
    ParamError,
    describe,
    mentions_secret,
    parse_value,
    supported,
)
from flowkit.secret import SecretError
from flowkit.workflow import WorkflowDef


def param_texts(
    wf: WorkflowDef[..., Any], given: Sequence[str], filled: str | None, why: str
) -> dict[str, str]:
    """The ``NAME=VALUE`` texts of ``given`` by input name. ``filled``: the input each fire
    fills itself (its ``fk.FireTime`` or ``fk.Event``), refused here with ``why``. UsageError
    for a malformed, unknown, repeated or unconvertible input, or a required one missing."""
    inputs = {inp.name: inp for inp in wf.inputs}
    texts: dict[str, str] = {}
    for item in given:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise UsageError(f"--param {item!r}: write NAME=VALUE")
        inp = inputs.get(name)
        if inp is None:
            raise UsageError(
                f"--param {item!r}: workflow `{wf.name}` has no input {name!r}; its inputs: "
                f"{', '.join(inputs) or '(none)'}"
            )
        if name == filled:
            raise UsageError(f"--param {name}: {why}")
        if name in texts:
            raise UsageError(f"--param {name} is given twice; give each input once")
        check_text(name, text, inp.type)
        texts[name] = text
    missing = [i for i in wf.inputs if not i.has_default and i.name not in texts]
    missing = [i for i in missing if i.name != filled]
    if missing:
        raise UsageError(
            f"workflow `{wf.name}` needs "
            + ", ".join(f"input {i.name!r} ({describe(i.type)}, no default)" for i in missing)
            + ": give "
            + " ".join(f"--param {i.name}=VALUE" for i in missing)
        )
    return texts


def check_text(name: str, text: str, tp: Any) -> None:
    """UsageError unless ``flowkit run --NAME TEXT`` would accept ``text`` for ``tp``."""
    if not supported(tp):
        raise UsageError(
            f"--param {name}: input `{name}` has type {typecheck.type_repr(tp)}, which cannot "
            "be given as text; give it a default in the workflow"
        )
    if mentions_secret(tp):
        kind, sep, rest = text.partition(":")
        if not (sep and rest and kind in ("env", "file")):
            raise UsageError(f"--param {name}: a fk.Secret is given as {SECRET_FORMS}")
        return
    try:
        parse_value(text, tp)
    except (ParamError, SecretError):
        raise UsageError(f"--param {name}: expected {describe(tp)}, got {text!r}") from None


__all__ = ["check_text", "param_texts"]
