"""What the models pages show of an MLflow registry, read into plain values.

:class:`Registry` reads one tracking URI with one explicit ``MlflowClient`` (MLflow is
imported on first use, never when this module is): the registered models (:meth:`Registry.
models`) and one model's versions, each version's metrics from its MLflow run, and its
aliases with their deployment history (:meth:`Registry.model`).

The history is the tag :mod:`flowkit.ml.registry` keeps per alias,
``flowkit.alias_history.<alias>``: the versions that held it, oldest first, the current one
last. ``promote`` appends and ``rollback`` pops, so the tag is a stack of deployments: a
rollback leaves no entry of its own, it removes the version it left.

Read-only: nothing here writes, and a registry that is not there is an error, never a new
one (MLflow would create a sqlite database, and run its migrations, for a missing file).
Whatever goes wrong talking to the registry is a :class:`RegistryUnavailable` naming the URI
(its password masked), or a :class:`UnknownModel`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from flowkit.errors import FlowkitError

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: The registered-model tag prefix of an alias's history (flowkit.ml.registry.HISTORY_TAG;
#: spelled here so that listing models does not import flowkit.ml).
HISTORY_TAG: Final = "flowkit.alias_history."
EVENTS_TAG: Final = "flowkit.alias_events."  # each move, logged (flowkit.ml.registry.EVENTS_TAG)
#: The tag the MLflow tracker (flowkit.ml.tracking) puts on the MLflow run of a flowkit run.
RUN_ID_TAG: Final = "flowkit.run_id"
MAX_MODELS: Final = 500
MAX_VERSIONS: Final = 100  # newest first; a page of thousands of versions helps nobody
MAX_METRICS: Final = 12  # per version: a tracked run can log one metric per graph node
MAX_MOVES: Final = 200  # as many as the tag keeps
_PROBE_TIMEOUT: Final = 3.0


class RegistryUnavailable(FlowkitError):
    """The registry at a tracking URI cannot be read (down, missing, refused, broken)."""


class UnknownModel(FlowkitError, LookupError):
    """No registered model of that name."""


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One registered model as the models list shows it."""

    name: str
    latest: int | None
    aliases: dict[str, int]
    updated: float | None  # Unix seconds
    description: str


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One version: when, from which MLflow run (and flowkit run), its metrics."""

    version: int
    created: float | None
    status: str
    run_id: str | None  # the MLflow run that logged the model
    source: str
    flowkit_run: str | None  # the flowkit run id tag, on the version or its MLflow run
    metrics: list[tuple[str, float]]
    more_metrics: int
    aliases: list[str]
    problem: str | None = None  # why the metrics could not be read


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One move of an alias: ``version`` took it from ``previous``; ``action`` is promote or
    rollback, with its time ``at``, when the move was logged (None: known only from the
    history stack of a registry written before flowkit logged moves)."""

    version: int
    previous: int | None
    current: bool
    action: str | None = None
    at: float | None = None


@dataclass(frozen=True, slots=True)
class AliasHistory:
    """An alias, the version it points at now, and its moves, the newest first."""

    alias: str
    current: int | None
    moves: list[AliasMove]
    damaged: bool  # the history tag could not be read (only the current version is known)


@dataclass(frozen=True, slots=True)
class ModelDetail:
    """One model: its versions (the newest first) and its aliases."""

    name: str
    description: str
    updated: float | None
    versions: list[VersionRow]
    more_versions: bool
    aliases: list[AliasHistory]


def shown_uri(uri: str) -> str:
    """``uri`` with a password in it masked (``http://me:***@host``): pages show the URI."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{parts.username or ''}:***@{host}{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class Registry:
    """The registry at ``uri`` (one client, made on first use; thread-safe reads)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._client: MlflowClient | None = None
        self._lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------

    def models(self) -> tuple[list[ModelRow], bool]:
        """The registered models by name (at most :data:`MAX_MODELS`), and whether there
        are more."""
        client = self._connect()
        found: list[Any] = []
        token: str | None = None
        with _mlflow_errors(self.uri):
            while len(found) <= MAX_MODELS:
                page = client.search_registered_models(max_results=100, page_token=token)
                found.extend(page)
                token = page.token
                if not token:
                    break
        rows = [_model_row(rm) for rm in found[:MAX_MODELS]]
        return sorted(rows, key=lambda r: r.name), len(found) > MAX_MODELS

    def model(self, name: str) -> ModelDetail:
        """Model ``name``: versions with their metrics, aliases with their history."""
        client = self._connect()
        with _mlflow_errors(self.uri):
            rm = self._registered(client, name)
            versions = self._versions(client, rm)
        aliases = _aliases(rm)
        by_version: dict[int, list[str]] = {}
        for alias, version in sorted(aliases.items()):
            by_version.setdefault(version, []).append(alias)
        rows = [self._version_row(client, mv, by_version) for mv in versions[:MAX_VERSIONS]]
        return ModelDetail(
            name=str(rm.name),
            description=str(rm.description or ""),
            updated=_seconds(rm.last_updated_timestamp),
            versions=rows,
            more_versions=len(versions) > MAX_VERSIONS,
            aliases=alias_histories(rm),
        )

    # -- helpers ------------------------------------------------------------------------

    def _connect(self) -> MlflowClient:
        """The client, after checking that the registry is there (cheaply: MLflow's own
        client retries an unreachable server for minutes, and makes a missing sqlite file)."""
        check_reachable(self.uri)
        with self._lock, _mlflow_errors(self.uri):  # an unsupported scheme, a broken install
            if self._client is None:
                from flowkit.ml import uris

                uris.import_mlflow()
                from mlflow import MlflowClient

                self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            return self._client

    def _registered(self, client: MlflowClient, name: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return client.get_registered_model(name)
        except MlflowException as exc:
            if str(getattr(exc, "error_code", "")) != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise UnknownModel(
                f"no registered model {name!r} in the MLflow registry at {shown_uri(self.uri)}"
            ) from exc

    def _versions(self, client: MlflowClient, rm: Any) -> list[Any]:
        """Every version of ``rm``, the newest first. A name holding both quote characters
        cannot be put in MLflow's filter string: then the versions are asked one by one."""
        name = str(rm.name)
        if "'" in name and '"' in name:
            latest = max((int(v.version) for v in rm.latest_versions or []), default=0)
            return [
                mv
                for n in range(latest, max(0, latest - MAX_VERSIONS) - 1, -1)
                if n > 0 and (mv := _version_or_none(client, name, n)) is not None
            ]
        quote = "'" if "'" not in name else '"'
        found: list[Any] = []
        token: str | None = None
        while True:
            page = client.search_model_versions(
                f"name={quote}{name}{quote}", max_results=200, page_token=token
            )
            found.extend(page)
            token = page.token
            if not token or len(found) > MAX_VERSIONS * 10:
                break
        return sorted(found, key=lambda mv: -int(mv.version))

    def _version_row(
        self, client: MlflowClient, mv: Any, by_version: dict[int, list[str]]
    ) -> VersionRow:
        version = int(mv.version)
        tags = dict(mv.tags or {})
        metrics: list[tuple[str, float]] = []
        more = 0
        problem = None
        flowkit_run = tags.get(RUN_ID_TAG)
        if mv.run_id:
            try:
                with _mlflow_errors(self.uri):
                    run = client.get_run(mv.run_id)
            except RegistryUnavailable as exc:
                problem = f"its MLflow run {mv.run_id} cannot be read: {exc}"
            else:
                numbers = sorted((str(k), float(v)) for k, v in run.data.metrics.items())
                metrics, more = numbers[:MAX_METRICS], max(0, len(numbers) - MAX_METRICS)
                flowkit_run = flowkit_run or run.data.tags.get(RUN_ID_TAG)
        return VersionRow(
            version=version,
            created=_seconds(mv.creation_timestamp),
            status=str(mv.status or "?"),
            run_id=str(mv.run_id) if mv.run_id else None,
            source=str(mv.source or ""),
            flowkit_run=str(flowkit_run) if flowkit_run else None,
            metrics=metrics,
            more_metrics=more,
            aliases=by_version.get(version, []),
            problem=problem,
        )


@contextlib.contextmanager
def _mlflow_errors(uri: str) -> Iterator[None]:
    """What MLflow (or the network under it) raises in the block, as
    :class:`RegistryUnavailable` naming the URI; flowkit's own errors (UnknownModel) pass."""
    try:
        yield
    except FlowkitError:
        raise
    except Exception as exc:
        text = str(exc).strip()
        reason = f": {text.splitlines()[0][:300]}" if text else ""
        raise RegistryUnavailable(
            f"the MLflow registry at {shown_uri(uri)} could not be read: "
            f"{type(exc).__name__}{reason}"
        ) from exc


def check_reachable(uri: str) -> None:
    """RegistryUnavailable if the registry at ``uri`` is surely not there: a ``sqlite:``
    database file or a ``file:`` folder (or plain path) that does not exist, or an
    ``http(s):`` server that does not answer. Other schemes are left to MLflow."""
    scheme = uri.split(":", 1)[0].lower()
    if scheme == "sqlite":
        path = uri[len("sqlite:///") :].split("?", 1)[0] if uri.startswith("sqlite:///") else ""
        if path and path != ":memory:" and not Path(path).is_file():
            raise RegistryUnavailable(
                f"there is no MLflow registry at {shown_uri(uri)}: the database file {path} "
                "does not exist (flowkit ui never creates one)"
            )
    elif scheme == "file" or ":" not in uri:  # MLflow's file store: a folder it would make
        path = urlsplit(uri).path if scheme == "file" else uri
        if not Path(path).is_dir():
            raise RegistryUnavailable(
                f"there is no MLflow registry at {shown_uri(uri)}: the folder {path} does not "
                "exist (flowkit ui never creates one)"
            )
    elif scheme in ("http", "https"):
        try:
            probe = _health_url(uri)
        except ValueError as exc:
            raise RegistryUnavailable(f"the tracking URI {shown_uri(uri)} is malformed") from exc
        try:
            with urllib.request.urlopen(probe, timeout=_PROBE_TIMEOUT):
                pass
        except urllib.error.HTTPError:
            return  # it answered: whatever the status, the server is there
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryUnavailable(
                f"the MLflow registry at {shown_uri(uri)} cannot be reached: {reason}"
            ) from exc


def _health_url(uri: str) -> str:
    """The server's ``/health`` URL, without user and password (urllib cannot take them,
    and the health check needs none)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", ""))


def alias_histories(rm: Any) -> list[AliasHistory]:
    """Each alias of registered model ``rm`` (current or only in a history tag), by name,
    with its moves, newest first."""
    aliases = _aliases(rm)
    tags = dict(rm.tags or {})
    names = set(aliases) | {k[len(HISTORY_TAG) :] for k in tags if k.startswith(HISTORY_TAG)}
    found = []
    for alias in sorted(n for n in names if n):
        history, damaged = parse_history(tags.get(HISTORY_TAG + alias))
        current = aliases.get(alias)
        logged = _logged_moves(tags.get(EVENTS_TAG + alias), current)
        if logged:
            found.append(AliasHistory(alias, current, logged, damaged))
            continue
        if current is not None and (not history or history[-1] != current):
            history.append(current)  # moved by another tool, or never by flowkit
        found.append(AliasHistory(alias, current, _moves(history, current), damaged))
    return found


def _logged_moves(raw: Any, current: int | None) -> list[AliasMove]:
    """The promote and rollback moves in an events tag's value, the newest first (none when
    the tag is absent or damaged: the history stack is shown instead)."""
    from flowkit.ml.registry import well_formed_move  # a model page has imported MLflow already

    try:
        events = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return []
    if not isinstance(events, list):
        return []
    moves = [
        AliasMove(e["v"], e["from"], False, e["do"], float(e["at"]))
        for e in events[-MAX_MOVES:]
        if well_formed_move(e)
    ]
    moves.reverse()
    if moves and moves[0].version == current:
        moves[0] = AliasMove(
            moves[0].version, moves[0].previous, True, moves[0].action, moves[0].at
        )
    return moves


def parse_history(raw: Any) -> tuple[list[int], bool]:
    """The versions in a history tag's value, oldest first, and whether it was damaged."""
    if raw is None:
        return [], False
    try:
        found = json.loads(raw)
    except (TypeError, ValueError):
        return [], True
    if not isinstance(found, list):
        return [], True
    versions = [v for v in found if type(v) is int and v > 0]
    return versions[-MAX_MOVES:], len(versions) != len(found)


def _moves(history: list[int], current: int | None) -> list[AliasMove]:
    moves = [
        AliasMove(version, history[i - 1] if i else None, False)
        for i, version in enumerate(history)
    ]
    moves.reverse()
    if moves and moves[0].version == current:
        moves[0] = AliasMove(moves[0].version, moves[0].previous, True)
    return moves


def _model_row(rm: Any) -> ModelRow:
    versions = [int(v.version) for v in rm.latest_versions or []]
    return ModelRow(
        name=str(rm.name),
        latest=max(versions) if versions else None,
        aliases=_aliases(rm),
        updated=_seconds(rm.last_updated_timestamp),
        description=str(rm.description or ""),
    )


def _aliases(rm: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for alias, version in dict(rm.aliases or {}).items():
        try:
            found[str(alias)] = int(version)
        except (TypeError, ValueError):
            continue
    return found


def _version_or_none(client: MlflowClient, name: str, version: int) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        return None  # deleted


def _seconds(millis: Any) -> float | None:
    return (
        millis / 1000 if isinstance(millis, (int, float)) and not isinstance(millis, bool) else None
    )


__all__ = [
    "HISTORY_TAG",
    "AliasHistory",
    "AliasMove",
    "ModelDetail",
    "ModelRow",
    "Registry",
    "RegistryUnavailable",
    "UnknownModel",
    "VersionRow",
    "alias_histories",
    "check_reachable",
    "parse_history",
    "shown_uri",
]
