"""Saving a model to a folder for the registry, and loading it back.

Policy: scikit-learn estimators (anything with ``get_params`` and ``fit``) are saved with the
``mlflow.sklearn`` flavour in the skops format (MLflow's safe default), trusting exactly the
types the model itself is made of, so a pipeline with your own transformer classes loads back;
if skops cannot represent the model, the cloudpickle format of the same flavour is used. Any
other object is cloudpickled to ``model.pkl`` (flavour ``"cloudpickle"``). Requirements are
given explicitly (``scikit-learn==<version>``): MLflow's inference of them starts a subprocess
and takes seconds.

Loading uses the flavour recorded on the model version; a version registered by other tools
(no flowkit flavour) is loaded with ``mlflow.sklearn`` when it has that flavour, else as a
``mlflow.pyfunc`` model.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import cloudpickle

from flowkit.ml import uris

log = logging.getLogger(__name__)

SKLEARN = "sklearn"
CLOUDPICKLE = "cloudpickle"
PICKLE_FILE = "model.pkl"


def is_sklearn(model: Any) -> bool:
    return hasattr(model, "get_params") and hasattr(model, "fit")


def save(model: Any, path: str) -> str:
    """Save ``model`` into the new folder ``path``; return the flavour name."""
    uris.import_mlflow(models=True)
    if is_sklearn(model):
        import mlflow.sklearn
        import sklearn

        requirements = [f"scikit-learn=={sklearn.__version__}"]
        try:
            import skops.io

            trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
            mlflow.sklearn.save_model(
                model,
                path,
                serialization_format="skops",
                skops_trusted_types=trusted,
                pip_requirements=requirements,
            )
        except Exception as exc:  # skops cannot represent every object graph
            log.info("skops cannot save %r (%s); using cloudpickle", type(model).__name__, exc)
            if os.path.exists(path):
                import shutil

                shutil.rmtree(path)
            mlflow.sklearn.save_model(
                model,
                path,
                serialization_format="cloudpickle",
                pip_requirements=[*requirements, f"cloudpickle=={cloudpickle.__version__}"],
            )
        return SKLEARN
    os.makedirs(path)
    with open(os.path.join(path, PICKLE_FILE), "wb") as f:
        cloudpickle.dump(model, f)
    return CLOUDPICKLE


def load(path: str, flavor: str | None) -> Any:
    """Load a model saved by :func:`save` (or by MLflow itself) from the folder ``path``."""
    uris.import_mlflow(models=True)
    if flavor == CLOUDPICKLE:
        with open(os.path.join(path, PICKLE_FILE), "rb") as f:
            return cloudpickle.load(f)
    if flavor == SKLEARN or _has_flavor(path, "sklearn"):
        import mlflow.sklearn

        return mlflow.sklearn.load_model(path)
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(path)


def _has_flavor(path: str, name: str) -> bool:
    mlmodel = os.path.join(path, "MLmodel")
    if not os.path.exists(mlmodel):
        return False
    import yaml

    with open(mlmodel) as f:
        doc = yaml.safe_load(f) or {}
    return name in (doc.get("flavors") or {})


__all__ = ["CLOUDPICKLE", "SKLEARN", "is_sklearn", "load", "save"]
