"""Project hygiene: one version, a package docstring that runs, markers that split the suite."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import flowkit as fk

ROOT = Path(__file__).resolve().parent.parent


def test_the_version_is_written_once_and_read_by_the_packaging() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is 3.11+)
    project = pyproject.split("\n[project]\n", 1)[1].split("\n[", 1)[0]
    assert 'dynamic = ["version"]' in project and "\nversion =" not in project
    assert 'version = { attr = "flowkit.__version__" }' in pyproject
    assert importlib.metadata.version("flowkit") == fk.__version__
    assert f"`{fk.__version__}`" in (ROOT / "CHANGELOG.md").read_text()


def test_the_package_docstring_example_runs() -> None:
    assert fk.__doc__ is not None
    example = fk.__doc__.split("\n\n", 1)[1]
    *body, last = example.strip().splitlines()
    expression, _, expected = last.partition("  # ")
    namespace: dict[str, object] = {"__name__": "docstring_example"}
    exec(compile("\n".join(body), "<flowkit docstring>", "exec"), namespace)
    assert eval(expression, namespace) == int(expected)


def _collected(*args: str) -> list[str]:
    """Node ids pytest collects with ``args`` (in a fresh interpreter, as a user would)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_services_marker_follows_fixtures_and_store_kinds() -> None:
    marked = _collected("-m", "services", "tests/test_store.py", "tests/ml/test_server.py")
    assert "tests/ml/test_server.py::test_lifecycle_against_a_real_mlflow_server" in marked
    assert any("[s3" in t for t in marked)  # any_store[s3] reaches the S3 server
    assert not any("[local" in t or "[memory" in t for t in marked)


def test_quick_selection_leaves_out_services_and_slow_tests() -> None:
    quick = _collected("-m", "not services and not slow", "tests/test_store.py")
    assert quick and not any("[s3" in t for t in quick)
    assert not any("test_three_processes_writing_the_same_objects" in t for t in quick)
    slow = _collected("-m", "slow", "tests/test_caching_e2e.py")
    assert slow and all(t.startswith("tests/test_caching_e2e.py::") for t in slow)
