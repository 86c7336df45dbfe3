"""What ``flowkit run`` attaches to a run besides its inputs: ``--notify``, ``--callback``,
``--secret``.

* ``--notify URL`` (repeatable) adds :func:`flowkit.notify.webhook` on the events of
  ``--notify-on`` (default ``failed``, the API's default). ``env:VAR`` / ``file:PATH`` read the
  URL from there as a :class:`~flowkit.secret.Secret`: a Slack webhook URL is a credential,
  and a command line is kept in the shell history and shown by ``ps``.
* ``--callback MODULE:FACTORY`` (repeatable) imports ``MODULE`` (the workflow file's folder
  is on ``sys.path`` by then, so a sibling file works) and calls ``FACTORY()``, which must
  return a :class:`~flowkit.callbacks.Callback` (a class, a function, or a Callback instance
  given as is). ``flowkit.ml:MLflowTracker`` tracks the run in MLflow (``MLFLOW_TRACKING_URI``
  picks the server).
* ``--secret NAME=env:VAR`` / ``NAME=file:PATH`` fills the ``fk.Secret`` input ``NAME``; it is
  the same as ``--NAME env:VAR`` and is rewritten to it before parsing, so a required secret
  input given this way is not reported missing. A literal value is refused without being
  quoted.

Every mistake is a :class:`~flowkit.cli.common.UsageError` (exit 2) naming the option and the fix.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from typing import Any

from flowkit import notify
from flowkit.callbacks import Callback
from flowkit.cli.common import CliParser, UsageError
from flowkit.cli.loading import LoadError, load_workflow
from flowkit.cli.params import mentions_secret, option_names
from flowkit.secret import Secret, SecretError
from flowkit.workflow import WorkflowDef

_FORMS = "env:VAR (an environment variable) or file:PATH (a file's first line)"


# -- --secret ---------------------------------------------------------------------------------


def secret_options(argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``argv`` with each ``--secret NAME=SPEC`` replaced by ``--NAME SPEC``, and the option
    each secret name became (by name)."""
    out: list[str] = []
    secrets: dict[str, str] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out += args[i:]
            break
        if arg == "--secret" or arg.startswith("--secret="):
            if arg == "--secret":
                if i + 1 >= len(args):
                    raise UsageError(f"flowkit run: error: --secret needs NAME={_FORMS}")
                text = args[i + 1]
                i += 2
            else:
                text = arg.split("=", 1)[1]
                i += 1
            name, option, spec = _secret_option(text)
            secrets[name] = option
            out += [option, spec]
            continue
        out.append(arg)
        i += 1
    return out, secrets


def _secret_option(text: str) -> tuple[str, str, str]:
    name, sep, spec = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name.isidentifier():
        raise UsageError(
            f"flowkit run: error: --secret takes NAME={_FORMS}, where NAME is the workflow's "
            "fk.Secret input"
        )
    kind, colon, rest = spec.partition(":")
    if not (colon and rest and kind in ("env", "file")):  # never quote it: it may be the secret
        raise UsageError(
            f"flowkit run: error: --secret {name}=...: give {_FORMS}, not the secret itself "
            "(a command line is kept in the shell history and shown by ps)"
        )
    return name, option_names(name)[0], spec


def parse_with_secrets(
    secrets: dict[str, str],
    target: str | None,
    parse: Callable[[], tuple[argparse.Namespace, WorkflowDef[..., Any], dict[str, Any]]],
) -> tuple[argparse.Namespace, WorkflowDef[..., Any], dict[str, Any]]:
    """``parse()``, with errors about a rewritten ``--secret`` said in its terms, and each
    ``--secret`` name checked to be an input typed ``fk.Secret``."""
    try:
        ns, wf, inputs = parse()
    except UsageError as e:
        if secrets and target is not None and not isinstance(e, LoadError):
            # say it in --secret's terms (loading again costs only on this error path)
            _check_secret_inputs(secrets, load_workflow(target))
        raise
    _check_secret_inputs(secrets, wf)
    return ns, wf, inputs


def _check_secret_inputs(secrets: dict[str, str], wf: WorkflowDef[..., Any]) -> None:
    types = {inp.name: inp.type for inp in wf.inputs}
    for name in secrets:
        if name not in types:
            raise UsageError(
                f"flowkit run: error: --secret {name}=...: workflow `{wf.name}` has no input "
                f"`{name}`; its inputs: {', '.join(types) or 'none'}"
            )
        if name not in types or not mentions_secret(types[name]):
            raise UsageError(
                f"flowkit run: error: --secret {name}=...: input `{name}` of workflow "
                f"`{wf.name}` is not typed fk.Secret; give it as {option_names(name)[0]} VALUE"
            )


# -- --notify ---------------------------------------------------------------------------------


def notifiers(urls: Sequence[str], on: str) -> list[Callback]:
    """One webhook per ``--notify`` URL, on the events of ``--notify-on``."""
    if not urls:
        return []
    events = [e.strip() for e in on.split(",") if e.strip()]
    out: list[Callback] = []
    for text in urls:
        try:
            out.append(notify.webhook(_url(text), on=events))
        except (notify.NotifyError, SecretError) as e:
            raise UsageError(f"flowkit run: error: --notify: {e}") from None
    return out


def _url(text: str) -> str | Secret:
    kind, colon, rest = text.partition(":")
    if colon and rest and kind == "env":
        return Secret.from_env(rest)
    if colon and rest and kind == "file":
        return Secret.from_file(rest)
    return text


# -- --callback -------------------------------------------------------------------------------


def factories(specs: Sequence[str]) -> list[Callback]:
    """The callback each ``MODULE:FACTORY`` gives."""
    return [_callback(spec) for spec in specs]


def _callback(spec: str) -> Callback:
    module_name, sep, attr = spec.partition(":")
    where = f"flowkit run: error: --callback {spec}"
    if not sep or not module_name or not attr:
        raise UsageError(f"{where}: give MODULE:FACTORY, e.g. flowkit.ml:MLflowTracker")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UsageError(
            f"{where}: cannot import module `{module_name}` ({e}); give an importable module "
            "(installed, or a file beside the workflow file)"
        ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UsageError(f"{where}: module `{module_name}` has no attribute `{attr}`")
        target = getattr(target, part)
    if isinstance(target, Callback):
        return target
    if not callable(target):
        raise UsageError(f"{where}: `{attr}` is not callable; give a function or a class")
    try:
        made = target()
    except Exception as e:
        raise UsageError(f"{where}: {attr}() raised {type(e).__name__}: {e}") from None
    if not isinstance(made, Callback):
        raise UsageError(
            f"{where}: {attr}() returned a {type(made).__name__}, not an fk.Callback; return "
            "an instance of a subclass of fk.Callback"
        )
    return made


def target_of(
    argv: Sequence[str], add_options: Callable[[argparse.ArgumentParser], None]
) -> str | None:
    """The ``FILE.py[:WORKFLOW]`` among ``argv`` (as :mod:`flowkit.cli.wfargs` finds it)."""
    first = CliParser(add_help=False, allow_abbrev=False)
    add_options(first)
    try:
        known, _ = first.parse_known_args(list(argv))
    except UsageError:
        return None
    target = getattr(known, "target", None)
    return target if isinstance(target, str) else None


__all__ = ["factories", "notifiers", "parse_with_secrets", "secret_options", "target_of"]
