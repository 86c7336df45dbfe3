"""``flowkit trigger add | list | pause | resume | remove``: run a workflow when something happens.

``add FILE.py[:WORKFLOW]`` with one of ``--on-success OTHER_WF``, ``--on-failure OTHER_WF``,
``--on-alias MODEL@ALIAS``, ``--on-new URL_PREFIX`` keeps a trigger in the store; the
scheduler loop (``flowkit scheduler``) evaluates it on every tick (see
:mod:`flowkit.automation.triggers`). ``add`` loads the workflow file to check the target,
the ``--param`` values (converted as ``flowkit run`` converts its options) and finds the
input annotated ``fk.Event``, which each fire fills with the event's JSON. It then records
what the sensor sees now (the runs there, the alias's version, the objects under the prefix):
only what happens after ``add`` fires.

Exit codes: 0 done; 2 bad usage or input (an unknown workflow, parameter or trigger, a
prefix whose filesystem fsspec does not know, a registry that cannot be reached).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import types
import typing
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from flowkit import typecheck
from flowkit.automation import trigger_store, triggers
from flowkit.automation.sensor_alias import AliasSensor, parse_source
from flowkit.automation.sensor_objects import normalise
from flowkit.automation.trigger_defs import (
    On,
    TriggerDef,
    TriggerDefError,
    check_name,
    fired_folder,
)
from flowkit.backend import available_backends
from flowkit.cli.common import (
    EXIT_OK,
    CliParser,
    UsageError,
    add_store_option,
    add_traceback_option,
    existing_store,
    format_table,
    format_time,
    store_url,
)
from flowkit.cli.launchparams import param_texts
from flowkit.cli.loading import load_workflow, parse_target
from flowkit.errors import FlowkitError, StoreError
from flowkit.events import Event
from flowkit.store import Store
from flowkit.workflow import WorkflowDef

DESCRIPTION = """\
Run a workflow when something happens: another workflow's run ends (--on-success,
--on-failure), a registry alias names another version (--on-alias: a promotion or a
rollback), or new objects appear under a prefix (--on-new: any fsspec URL). `flowkit
scheduler` evaluates the triggers on every tick. A trigger fires only for what happens after
it is added. The workflow's input annotated fk.Event receives the event (kind, run id, alias
and versions, object URLs).

exit codes: 0 done, 2 bad usage or bad input
"""

_ON_OPTIONS: Mapping[str, On] = {
    "on_success": "success",
    "on_failure": "failure",
    "on_alias": "alias",
    "on_new": "new",
}


def command(argv: Sequence[str]) -> int:
    p = CliParser(
        prog="flowkit trigger",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", metavar="{add,list,pause,resume,remove}")
    sub.required = True
    _add_parser(sub)
    listing = sub.add_parser("list", help="the store's triggers")
    add_store_option(listing)
    for action, text in (
        ("pause", "stop evaluating a trigger"),
        ("resume", "evaluate a paused trigger again (what happened meanwhile does not fire)"),
        ("remove", "delete a trigger, what it has seen and its claims"),
    ):
        one = sub.add_parser(action, help=text)
        one.add_argument("name", metavar="NAME")
        add_store_option(one)
        add_traceback_option(one)
    ns = p.parse_args(list(argv))
    if ns.action == "add":
        return _add(ns)
    store = _existing(ns.store)
    if ns.action == "list":
        return _list(store)
    try:
        if ns.action == "remove":
            trigger_store.remove(store, ns.name)
            print(f"removed trigger {ns.name}", file=sys.stderr)
        else:
            trigger_store.set_paused(store, ns.name, ns.action == "pause")
            print(f"trigger {ns.name} {ns.action}d", file=sys.stderr)
    except TriggerDefError as exc:
        raise UsageError(f"{exc} (`flowkit trigger remove {ns.name}` deletes it)") from exc
    return EXIT_OK


def _add_parser(sub: Any) -> None:
    add = sub.add_parser(
        "add",
        help="run FILE.py[:WORKFLOW] when something happens",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("target", metavar="FILE.py[:WORKFLOW]")
    on = add.add_mutually_exclusive_group(required=True)
    on.add_argument("--on-success", metavar="OTHER_WF", help="when a run of OTHER_WF succeeds")
    on.add_argument(
        "--on-failure",
        metavar="OTHER_WF",
        help="when a run of OTHER_WF fails or is lost (an interrupted run fires nothing)",
    )
    on.add_argument(
        "--on-alias",
        metavar="MODEL@ALIAS",
        help="when the registry alias names another version (promote or rollback)",
    )
    on.add_argument(
        "--on-new",
        metavar="URL_PREFIX",
        help="when objects appear (or are rewritten) under an fsspec prefix: a folder, "
        "s3://bucket/prefix/ (credentials from the environment)...",
    )
    add.add_argument(
        "--param",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="a workflow input for every fire, as flowkit run takes it (repeatable)",
    )
    add.add_argument("--name", metavar="NAME", help="the trigger's name (default: WORKFLOW-on-...)")
    add.add_argument("--backend", metavar="NAME", help="the backend fires run on")
    add.add_argument(
        "--notify",
        metavar="URL",
        action="append",
        default=[],
        help="a webhook told when each fired run ends (repeatable)",
    )
    add.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="the MLflow registry of --on-alias (default: $MLFLOW_TRACKING_URI, else the "
        "store's embedded registry)",
    )
    add_store_option(add)
    add_traceback_option(add)


def _add(ns: argparse.Namespace) -> int:
    on, source = _on(ns)
    if ns.tracking_uri and on != "alias":
        raise UsageError("--tracking-uri goes with --on-alias only")
    wf = load_workflow(ns.target)
    event_param = _event_param(wf)
    params = param_texts(
        wf, ns.param, event_param, "that input receives the event; each fire fills it"
    )
    if on in ("success", "failure"):
        source = _other_workflow(source, wf)
    elif on == "new":
        source = normalise(source)
    store = Store(store_url(ns.store))
    try:
        store.check()
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
    definition = TriggerDef(
        name=_name(ns.name, wf, on),
        target=f"{_absolute(ns.target)}:{wf.name}",
        workflow=wf.name,
        on=on,
        source=source,
        params=params,
        event_param=event_param,
        backend=_backend(ns.backend),
        notify=tuple(_url(u) for u in ns.notify),
        tracking_uri=_tracking_uri(ns.tracking_uri, store) if on == "alias" else None,
        created=time.time(),
    )
    now_seen = _first_look(store, definition)
    try:
        trigger_store.add(store, definition)
        triggers.record_first_look(store, definition, now_seen, definition.created)
    except FlowkitError as exc:
        raise UsageError(str(exc)) from exc
    takes = f", passing the event as --{event_param}" if event_param else ""
    print(
        f"trigger {definition.name}: runs {definition.workflow} {_describe(definition)}{takes}"
        f" (evaluated by `flowkit scheduler --store {store.url}`)",
        file=sys.stderr,
    )
    return EXIT_OK


def _on(ns: argparse.Namespace) -> tuple[On, str]:
    for dest, on in _ON_OPTIONS.items():
        value = getattr(ns, dest)
        if value is not None:
            if not value.strip():
                raise UsageError(f"--{dest.replace('_', '-')} needs a value")
            if on == "alias":
                try:
                    parse_source(value)
                except ValueError as exc:
                    raise UsageError(f"--on-alias {exc}") from None
            return on, value
    raise UsageError("give one of --on-success, --on-failure, --on-alias, --on-new")


def _other_workflow(name: str, wf: WorkflowDef[..., Any]) -> str:
    if name.endswith(".py") or ".py:" in name:
        raise UsageError(
            f"{name!r}: give the other workflow's name, as `flowkit runs list` shows it "
            "(e.g. train), not its file"
        )
    if name == wf.name:
        raise UsageError(
            f"workflow `{wf.name}` would start itself after each of its own runs, for ever; "
            "trigger another workflow"
        )
    return name


def _event_param(wf: WorkflowDef[..., Any]) -> str | None:
    """The input annotated ``fk.Event`` (or ``fk.Event | None``); None if there is none."""
    found = [inp.name for inp in wf.inputs if _is_event(inp.type)]
    if len(found) > 1:
        raise UsageError(
            f"workflow `{wf.name}` has {len(found)} inputs annotated fk.Event "
            f"({', '.join(found)}); keep one: each fire passes its event to that input"
        )
    return found[0] if found else None


def _is_event(tp: Any) -> bool:
    tp = typecheck.strip_annotated(tp)
    if tp is Event:
        return True
    args = typing.get_args(tp)
    optional = typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 2
    return optional and Event in args and type(None) in args


def _name(given: str | None, wf: WorkflowDef[..., Any], on: On) -> str:
    if given is not None:
        try:
            return check_name(given)
        except TriggerDefError as exc:
            raise UsageError(f"--name: {exc}") from None
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{wf.name}-on-{on}").strip("-.")
    return check_name((base or "trigger")[:100])


def _absolute(target: str) -> str:
    return os.path.abspath(parse_target(target).path)


def _backend(name: str | None) -> str | None:
    if name is None:
        return None
    known = available_backends()
    if name not in known:
        raise UsageError(f"--backend {name!r}: not a backend here (available: {', '.join(known)})")
    return name


def _url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--notify {text!r}: give an http:// or https:// URL")
    return text


def _tracking_uri(given: str | None, store: Store) -> str:
    """The registry the alias lives in, fixed now (the scheduler may run elsewhere)."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    if not store.local:
        raise UsageError(
            f"--on-alias: store {store.url} is not a local folder, so it holds no embedded "
            "MLflow registry; give --tracking-uri (or set MLFLOW_TRACKING_URI)"
        )
    return f"sqlite:///{os.path.join(os.path.abspath(store.root), 'mlflow.db')}"


def _first_look(store: Store, definition: TriggerDef) -> dict[str, Any]:
    """The sensor's record of what is there now; UsageError if it cannot look."""
    sensor = triggers.sensor_for(store, definition)
    folder = definition.source.removeprefix("file://")
    if (
        definition.on == "new"
        and definition.source.startswith("file://")
        and not os.path.isdir(folder)
    ):
        raise UsageError(f"--on-new {folder}: no such folder; create it first")
    if isinstance(sensor, AliasSensor):
        from flowkit.ml import uris

        uris.import_mlflow()
    try:
        return sensor.look(None, time.time()).cursor
    except FlowkitError as exc:
        raise UsageError(f"{_describe(definition)}: {exc}") from exc
    except ValueError as exc:  # fsspec: an unknown protocol, a malformed URL
        raise UsageError(f"--on-new {definition.source}: {exc}") from exc
    except Exception as exc:  # a bucket or registry that cannot be reached
        raise UsageError(
            f"cannot look at {_describe(definition)} now ({type(exc).__name__}: {exc}); check "
            "the URL, the credentials and the network, then add the trigger again"
        ) from exc


def _describe(definition: TriggerDef) -> str:
    if definition.on == "alias":
        return f"when alias {definition.source} moves"
    if definition.on == "new":
        return f"when objects appear under {definition.source}"
    status = "succeeds" if definition.on == "success" else "fails"
    return f"when a run of {definition.source} {status}"


def _existing(option: str | None) -> Store:
    try:
        store = existing_store(option)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
    if store is None:
        raise UsageError(
            f"there is no store at {store_url(option)}; give --store (or set FLOWKIT_STORE)"
        )
    return store


def _list(store: Store) -> int:
    rows = []
    for name in trigger_store.names(store):
        try:
            d = trigger_store.load(store, name)
        except (TriggerDefError, StoreError) as exc:
            rows.append([name, "?", "?", "damaged", "-", "-", str(exc)[:60]])
            continue
        fired = str(len(store.list_dir(fired_folder(name))))
        rows.append(
            [
                name,
                d.workflow,
                f"--on-{d.on}",
                "paused" if d.paused else "active",
                fired,
                format_time(d.created),
                d.source,
            ]
        )
    if not rows:
        print(
            f"no triggers in store {store.url} (add one: flowkit trigger add --help)",
            file=sys.stderr,
        )
        return EXIT_OK
    print(format_table(["NAME", "WORKFLOW", "ON", "STATE", "FIRED", "ADDED", "SOURCE"], rows))
    return EXIT_OK


__all__ = ["command"]
