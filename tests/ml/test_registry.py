"""ml.register / promote / rollback / load on a real MLflow registry (sqlite in a temp folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import flowkit as fk
from flowkit import ml

X = np.random.default_rng(0).normal(size=(60, 3))
Y = (X[:, 0] > 0).astype(int)


def _model(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=200).fit(X, Y)


class Doubler(BaseEstimator, TransformerMixin):  # a user's own transformer class
    def fit(self, x: np.ndarray, y: object = None) -> Doubler:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return x * 2


def _registry_state(uri: str, name: str) -> tuple[dict[str, int], dict[str, str]]:
    from mlflow import MlflowClient

    rm = MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(name)
    return dict(rm.aliases), dict(rm.tags)


def test_register_promote_load_and_walk_back(tracking_uri: str) -> None:
    versions = [
        ml.register(_model(c), "clf", tracking_uri=tracking_uri, metrics={"accuracy": c})
        for c in (0.1, 1.0, 10.0)
    ]
    assert [(v.name, v.version, v.uri) for v in versions] == [
        ("clf", 1, "models:/clf/1"),
        ("clf", 2, "models:/clf/2"),
        ("clf", 3, "models:/clf/3"),
    ]
    for v in (1, 3, 2):
        ml.promote("clf", v, tracking_uri=tracking_uri)
    assert ml.alias_history("clf", tracking_uri=tracking_uri) == [1, 3, 2]
    assert ml.load("clf", tracking_uri=tracking_uri).C == 1.0
    assert ml.get_version("clf", tracking_uri=tracking_uri).version == 2

    back = ml.rollback("clf", tracking_uri=tracking_uri)
    assert back == ml.ModelVersion("clf", 3, "models:/clf/3")
    assert ml.load("clf", tracking_uri=tracking_uri).C == 10.0
    assert ml.rollback("clf", tracking_uri=tracking_uri).version == 1
    assert ml.load("clf", tracking_uri=tracking_uri).C == 0.1
    moves = ml.alias_moves("clf", tracking_uri=tracking_uri)  # what the UI shows
    assert [(m["do"], m["from"], m["v"]) for m in moves] == [
        ("promote", None, 1),
        ("promote", 1, 3),
        ("promote", 3, 2),
        ("rollback", 2, 3),
        ("rollback", 3, 1),
    ]
    assert [m["at"] for m in moves] == sorted(m["at"] for m in moves)

    before = _registry_state(tracking_uri, "clf")
    with pytest.raises(ml.NoEarlierVersionError, match=r"version 1.*nothing to roll back"):
        ml.rollback("clf", tracking_uri=tracking_uri)
    assert _registry_state(tracking_uri, "clf") == before  # nothing half-changed
    assert isinstance(ml.NoEarlierVersionError("x"), fk.FlowkitError)

    # The loaded model predicts like the original; metrics were logged on the model's run.
    np.testing.assert_array_equal(
        ml.load("clf", version=3, tracking_uri=tracking_uri).predict(X), _model(10.0).predict(X)
    )
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    mv = c.get_model_version("clf", "3")
    assert c.get_run(mv.run_id).data.metrics == {"accuracy": 10.0}


def test_promoting_the_current_version_is_a_no_op(tracking_uri: str) -> None:
    ml.register(_model(1.0), "m", tracking_uri=tracking_uri, alias="production")
    ml.promote("m", 1, tracking_uri=tracking_uri)
    assert ml.alias_history("m", tracking_uri=tracking_uri) == [1]


def test_aliases_have_separate_histories(tracking_uri: str) -> None:
    for c in (1.0, 2.0):
        ml.register(_model(c), "m", tracking_uri=tracking_uri)
    ml.promote("m", 1, alias="staging", tracking_uri=tracking_uri)
    ml.promote("m", 2, alias="staging", tracking_uri=tracking_uri)
    ml.promote("m", 2, tracking_uri=tracking_uri)
    assert ml.rollback("m", alias="staging", tracking_uri=tracking_uri).version == 1
    assert ml.get_version("m", tracking_uri=tracking_uri).version == 2
    with pytest.raises(ml.NoEarlierVersionError):
        ml.rollback("m", tracking_uri=tracking_uri)


def test_an_alias_moved_by_other_tools_is_reconciled(tracking_uri: str) -> None:
    from mlflow import MlflowClient

    for c in (1.0, 2.0, 3.0):
        ml.register(_model(c), "m", tracking_uri=tracking_uri)
    ml.promote("m", 1, tracking_uri=tracking_uri)
    MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(
        "m", "production", "3"
    )
    assert ml.rollback("m", tracking_uri=tracking_uri).version == 1  # 3 was recorded, then left


def test_rollback_skips_deleted_versions(tracking_uri: str) -> None:
    from mlflow import MlflowClient

    for c in (1.0, 2.0, 3.0):
        ml.register(_model(c), "m", tracking_uri=tracking_uri)
    for v in (1, 2, 3):
        ml.promote("m", v, tracking_uri=tracking_uri)
    MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).delete_model_version(
        "m", "2"
    )
    assert ml.rollback("m", tracking_uri=tracking_uri).version == 1


def test_unknown_model_version_and_alias_are_named(tracking_uri: str) -> None:
    with pytest.raises(ml.ModelNotFoundError, match=r"no registered model 'ghost'.*empty"):
        ml.load("ghost", tracking_uri=tracking_uri)
    ml.register(_model(1.0), "m", tracking_uri=tracking_uri, alias="staging")
    with pytest.raises(ml.ModelNotFoundError, match=r"'ghost'.*Registered models: m"):
        ml.promote("ghost", 1, tracking_uri=tracking_uri)
    with pytest.raises(ml.ModelNotFoundError, match=r"no alias 'production'.*staging -> v1"):
        ml.load("m", tracking_uri=tracking_uri)
    with pytest.raises(ml.ModelNotFoundError, match="no alias 'production'"):
        ml.rollback("m", tracking_uri=tracking_uri)
    with pytest.raises(ml.ModelNotFoundError, match="no version 7"):
        ml.promote("m", 7, tracking_uri=tracking_uri)
    with pytest.raises(ml.ModelNotFoundError, match="no version 7"):
        ml.load("m", version=7, tracking_uri=tracking_uri)
    assert _registry_state(tracking_uri, "m")[0] == {"staging": 1}
    assert issubclass(ml.ModelNotFoundError, fk.FlowkitError)


@pytest.mark.parametrize("alias", ["latest", "v2", "has space", ""])
def test_invalid_aliases_change_nothing(tracking_uri: str, alias: str) -> None:
    with pytest.raises(ml.RegistryError, match="alias"):
        ml.register(_model(1.0), "m", tracking_uri=tracking_uri, alias=alias)
    with pytest.raises(ml.ModelNotFoundError):
        ml.load("m", tracking_uri=tracking_uri)  # nothing was registered


def test_pipelines_with_user_classes_and_plain_objects(tracking_uri: str) -> None:
    pipe = make_pipeline(Doubler(), LogisticRegression(max_iter=200)).fit(X, Y)
    ml.register(pipe, "pipe", tracking_uri=tracking_uri, alias="production")
    np.testing.assert_array_equal(
        ml.load("pipe", tracking_uri=tracking_uri).predict(X), pipe.predict(X)
    )
    ml.register({"weights": [1, 2, 3]}, "obj", tracking_uri=tracking_uri, alias="production")
    assert ml.load("obj", tracking_uri=tracking_uri) == {"weights": [1, 2, 3]}


def test_default_registry_lives_under_the_flowkit_store(
    isolated: Path, blank_registry_db: Path
) -> None:
    fk.Store(isolated / ".flowkit").check()
    shutil.copyfile(blank_registry_db, isolated / ".flowkit" / "mlflow.db")  # skip migrations
    mv = ml.register(_model(1.0), "m", alias="production")
    assert mv.version == 1
    store = isolated / ".flowkit"
    assert (store / "mlflow.db").is_file()
    assert (store / "mlartifacts").is_dir()
    assert not (isolated / "mlruns").exists()  # MLflow's cwd default is not used
    assert ml.load("m").C == 1.0
    fk.Store(store).check()  # the folder is still a valid flowkit store


def test_mlflow_tracking_uri_env_is_used(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    ml.register(_model(1.0), "m", alias="production")
    assert ml.load("m", tracking_uri=tracking_uri).C == 1.0
    assert not (isolated / ".flowkit").exists()


@fk.task
def fit(c: float) -> LogisticRegression:
    return _model(c)


@fk.task
def accuracy(model: LogisticRegression) -> ml.Metrics:
    return {"accuracy": float(model.score(X, Y))}


@fk.workflow
def deploy(c: float = 1.0, uri: str = "", threshold: float = 0.5) -> ml.ModelVersion:
    model = fit(c)
    passed = ml.gate(accuracy(model), threshold=threshold)
    return ml.register(model, "wf-model", tracking_uri=uri, metrics={"accuracy": passed},
                       alias="production")  # fmt: skip


def test_registry_steps_as_workflow_tasks(tracking_uri: str) -> None:
    run = fk.run(deploy, uri=tracking_uri, backend="threads", store="memory://reg-wf")
    assert run.output == ml.ModelVersion("wf-model", 1, "models:/wf-model/1")
    assert ml.load("wf-model", tracking_uri=tracking_uri).C == 1.0
    with pytest.raises(fk.TaskFailedError) as info:
        fk.run(deploy, uri=tracking_uri, threshold=1.01, backend="threads", store="memory://reg-wf")
    assert isinstance(info.value.__cause__, ml.GateFailed)
    assert ml.alias_history("wf-model", tracking_uri=tracking_uri) == [1]  # nothing deployed


def test_concurrent_registers_and_promotes_from_threads(tracking_uri: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        versions = list(
            pool.map(lambda c: ml.register(_model(c), "m", tracking_uri=tracking_uri), [1, 2, 3, 4])
        )
        assert sorted(v.version for v in versions) == [1, 2, 3, 4]
        list(pool.map(lambda v: ml.promote("m", v, tracking_uri=tracking_uri), [1, 2, 3, 4]))
    history = ml.alias_history("m", tracking_uri=tracking_uri)
    assert sorted(history) == [1, 2, 3, 4]  # every promotion recorded once, none lost
    assert history[-1] == ml.get_version("m", tracking_uri=tracking_uri).version


@pytest.mark.parametrize("failing", ["flowkit.alias_events.", "flowkit.alias_history."])
def test_a_move_whose_record_cannot_be_written_is_undone(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    from mlflow import MlflowClient

    for _ in range(2):
        ml.register(_model(1.0), "undo", tracking_uri=tracking_uri)
    ml.promote("undo", 1, tracking_uri=tracking_uri)
    before = _registry_state(tracking_uri, "undo")
    real = MlflowClient.set_registered_model_tag

    def refuse(self: MlflowClient, name: str, key: str, value: str) -> None:
        if key.startswith(failing):
            raise RuntimeError("the registry refused the tag")
        real(self, name, key, value)

    monkeypatch.setattr(MlflowClient, "set_registered_model_tag", refuse)
    with pytest.raises(RuntimeError, match="refused"):
        ml.promote("undo", 2, tracking_uri=tracking_uri)
    monkeypatch.undo()
    assert _registry_state(tracking_uri, "undo") == before  # alias, history and moves as they were
