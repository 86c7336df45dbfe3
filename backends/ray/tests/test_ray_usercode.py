"""User code that exists only on the driver runs on the cluster (shipped by value)."""

from __future__ import annotations

import importlib
import shutil
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import ray
from flowkit_ray import RayBackend
from flowkit_ray.usercode import is_user_module
from raycluster import RayCluster

from flowkit.backend import Submission

SOURCE = """
SCALE = 3


class Box:
    def __init__(self, value):
        self.value = value


def helper(x):
    return x * SCALE


def work(x):
    return "meta", Box(helper(x))
"""


@pytest.fixture
def driver_only_module() -> Iterator[ModuleType]:
    """A module in a fresh folder put on ``sys.path`` after Ray connected, so Ray's
    workers (which get the driver's script dir and cwd, not its whole path) lack it."""
    folder = tempfile.mkdtemp(prefix="fkmod", dir="/tmp")
    name = f"fk_usermod_{uuid.uuid4().hex[:8]}"
    Path(folder, f"{name}.py").write_text(textwrap.dedent(SOURCE))
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(folder)
        sys.modules.pop(name, None)
        shutil.rmtree(folder, ignore_errors=True)


def test_driver_only_module_runs_on_the_cluster(
    ray_cluster: RayCluster, driver_only_module: ModuleType
) -> None:
    mod = driver_only_module
    spec = Submission("work")
    # Control first (registration is process-wide and never undone): without shipping
    # by value the workers cannot import the module.
    with RayBackend(address=ray_cluster.address, user_modules=None) as plain:
        err = plain.submit(mod.work, (4,), spec).exception(120)
    assert err is not None
    assert mod.__name__ in str(err)
    with RayBackend(address=ray_cluster.address) as backend:
        meta, handle = backend.submit(mod.work, (4,), spec).result(120)
        box = backend.fetch(handle)
    assert meta == "meta"
    assert isinstance(box, mod.Box)  # the class round-trips to the driver's own class
    assert box.value == 12
    assert ray.is_initialized()


def test_which_modules_count_as_user_code(driver_only_module: ModuleType) -> None:
    import json

    import flowkit_ray

    import flowkit

    assert is_user_module(driver_only_module.__name__, driver_only_module)
    assert not is_user_module("json", json)  # standard library
    assert not is_user_module("ray", ray)  # installed
    assert not is_user_module("flowkit", flowkit)  # editable installs count as installed
    assert not is_user_module("flowkit_ray", flowkit_ray)
    folder = str(Path(driver_only_module.__file__ or "").parent)
    # under a runtime_env working_dir, Ray ships it itself
    assert not is_user_module(driver_only_module.__name__, driver_only_module, [folder])
