"""Issue 9's cache cases on Ray: each driver is a new process connected to the loopback
cluster, so every run is a second driver whose workers import the user's modules afresh.

The cases and their workflow files are the ones of ``tests/test_trust_cache.py`` (loaded by
path, so both suites run the same code); here the runner passes ``--backend ray`` with
``RAY_ADDRESS`` set to the shared cluster. Most cases use a local store, which the loopback
nodes share; the class-identity and class-edit cases run on an S3 (moto) store as well.
In-place mutation, which on Ray crosses the object store, has its own case below.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from raycluster import RayCluster

TESTS = Path(__file__).resolve().parents[3] / "tests"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


trust = _load("flowkit_trust_cases", TESTS / "test_trust_cache.py")
shared = _load("flowkit_shared_fixtures", TESTS / "conftest.py")
s3_endpoint = shared.s3_endpoint  # the moto server fixture, shared with tests/
s3_stores = shared.s3_stores

Case = Callable[[Any], None]
CASES: dict[str, tuple[Case, tuple[str, ...]]] = {
    "dict-order": (trust.test_dict_order_is_part_of_the_key_and_of_the_stored_value, ("local",)),
    "input-class-edit": (trust.test_editing_an_input_values_class_misses, ("local", "s3")),
    "function-input-edit": (trust.test_editing_a_function_passed_as_an_input_misses, ("local",)),
    "two-modules": (
        trust.test_same_name_and_version_in_two_modules_never_share_entries,
        ("local",),
    ),
    "class-identity": (
        trust.test_values_from_the_cache_are_instances_of_the_running_code_classes,
        ("local", "s3"),
    ),
}
PARAMS = [(case, store) for case, (_, stores) in CASES.items() for store in stores]


def ray_runner(
    request: pytest.FixtureRequest, tmp_path: Path, cluster: RayCluster, store: str
) -> Any:
    work = tmp_path / "work"
    work.mkdir()
    if store == "local":
        url, env = str(tmp_path / "store"), trust.clean_env()
    else:
        s3 = request.getfixturevalue("s3_stores")
        url = f"s3://{s3.bucket()}/prefix"
        env = trust.clean_env(FK_STORE_OPTIONS=json.dumps(s3.options))
    env["RAY_ADDRESS"] = cluster.address
    return trust.Runner(work, url, env, backend="ray")


@pytest.mark.parametrize(("case", "store"), PARAMS)
def test_trust_case_on_ray(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    ray_cluster: RayCluster,
    case: str,
    store: str,
) -> None:
    check, _ = CASES[case]
    check(ray_runner(request, tmp_path, ray_cluster, store))


@pytest.fixture
def runner(request: pytest.FixtureRequest, tmp_path: Path, ray_cluster: RayCluster) -> Any:
    return ray_runner(request, tmp_path, ray_cluster, "local")


def test_in_place_mutation_never_reaches_a_sibling_or_the_cache(runner: Any) -> None:
    scenario = (TESTS / "caching_fixtures" / "mutation.py").read_text()
    wfs = "normalise_then_total, siblings, just_total"
    runner.write("mutation.py", scenario + trust.DRIVE.format(wfs=wfs))
    first = runner.run("mutation.py", "--workflow", "normalise_then_total", "n=4")
    assert first["output"] == [[0, 1, 2, 3, 1000], 6]
    later = runner.run("mutation.py", "--workflow", "just_total", "n=4")
    assert later["output"] == 6 and later["cached"] == {"load": True, "total": True}
    res = runner.run("mutation.py", "--workflow", "siblings", "n=5")
    assert res["output"] == [[0, 1, 2, 3, 4, 1000], 10, [0, 1, 2, 3, 4]]
