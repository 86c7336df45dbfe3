"""A file beside the workflow named like a standard-library or installed module.

``flowkit run wf.py`` puts the workflow's folder first on ``sys.path``, so a ``pyarrow.py`` or an
``attr.py`` there would be imported by flowkit or a library instead of the real module, and the
run would end far from the cause ("internal error, please report it"). Each case runs the real
command in a fresh process (the guard is an import hook; a test process must not keep it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

WORKFLOW = """
import flowkit as fk

@fk.task
def double(n: int) -> int:
    return 2 * n

@fk.workflow
def wf(n: int = 3) -> int:
    return double(n)
"""

STUB = "X = 1  # the user's own module, unrelated to the real one\n"


def run(
    folder: Path, *, workflow: str = "wf.py", pre: str = ""
) -> subprocess.CompletedProcess[str]:
    """``flowkit run`` of ``folder/workflow`` from another working directory."""
    code = f"{pre}\nimport sys\nfrom flowkit.cli import main\nsys.exit(main(sys.argv[1:]))"
    store = folder.parent / f"store-{folder.name}"
    return subprocess.run(
        [sys.executable, "-c", code, "run", str(folder / workflow), "--store", str(store)],
        cwd=folder if pre else folder.parent,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def project(tmp_path: Path, files: dict[str, str], workflow: str = WORKFLOW) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "wf.py").write_text(textwrap.dedent(workflow))
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def assert_refused(result: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "internal error" not in result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("flowkit run: error: ")
    for part in (*parts, "rename your file"):
        assert part in message, message


@pytest.mark.parametrize(
    ("filename", "what"),
    [
        pytest.param("pyarrow.py", "the installed module `pyarrow` (pyarrow==", id="installed"),
        pytest.param("sysconfig.py", "the standard-library module `sysconfig`", id="stdlib"),
    ],
)
def test_a_module_flowkit_imports_later_is_refused_before_the_run(
    tmp_path: Path, filename: str, what: str
) -> None:
    """flowkit imports these lazily (a table's serialiser, the code fingerprint): without the
    check the run would fail mid-way, or a pyarrow value would be stored with the user's file."""
    folder = project(tmp_path, {filename: STUB})
    assert_refused(run(folder), f"{folder / filename} shadows {what}", "used by flowkit")


def test_a_dataframe_workflow_beside_pyarrow_py_is_refused(tmp_path: Path) -> None:
    """Today: "error while importing wf.py: AttributeError: module 'pyarrow' has no attribute
    '__version__'", raised inside pandas."""
    workflow = """
    import pandas as pd
    import flowkit as fk

    @fk.task(cache=True)
    def frame(n: int) -> pd.DataFrame:
        return pd.DataFrame({"a": list(range(n))})

    @fk.workflow
    def wf(n: int = 3) -> pd.DataFrame:
        return frame(n)
    """
    folder = project(tmp_path, {"pyarrow.py": STUB}, workflow)
    assert_refused(run(folder), f"{folder / 'pyarrow.py'} shadows the installed module `pyarrow`")


def test_a_module_a_library_imports_is_refused_naming_the_library(tmp_path: Path) -> None:
    workflow = "import jsonschema  # imports attrs, which imports attr\n" + WORKFLOW
    folder = project(tmp_path, {"attr.py": STUB}, workflow)
    assert_refused(
        run(folder),
        f"{folder / 'attr.py'} shadows the installed module `attr` (attrs==",
        "imported by `attrs`",
    )


def test_a_shadowing_package_is_refused(tmp_path: Path) -> None:
    workflow = "import jsonschema\n" + WORKFLOW
    folder = project(tmp_path, {"attr/__init__.py": STUB}, workflow)
    assert_refused(run(folder), f"{folder / 'attr'} shadows the installed module `attr`")


def test_the_workflow_importing_it_itself_is_refused(tmp_path: Path) -> None:
    folder = project(tmp_path, {"calendar.py": STUB}, "import calendar\n" + WORKFLOW)
    assert_refused(
        run(folder),
        f"{folder / 'calendar.py'} shadows the standard-library module `calendar`",
        f"imported by {folder / 'wf.py'}",
    )


def test_a_refusal_the_importer_swallows_is_still_reported(tmp_path: Path) -> None:
    workflow = "try:\n    import calendar\nexcept Exception:\n    calendar = None\n" + WORKFLOW
    folder = project(tmp_path, {"calendar.py": STUB}, workflow)
    assert_refused(run(folder), "shadows the standard-library module `calendar`")


def test_a_module_imported_before_the_load_is_refused(tmp_path: Path) -> None:
    """``python -c`` from the workflow's folder: the folder's calendar.py is imported first."""
    folder = project(tmp_path, {"calendar.py": STUB})
    result = run(folder, pre="import calendar")
    assert_refused(result, "shadows the standard-library module `calendar`", "already imported")


def test_an_import_during_the_run_names_the_file(tmp_path: Path) -> None:
    """Imported by a task at run time: found when the task's code is fingerprinted (every
    kept call is keyed), before anything runs, with the same message."""
    workflow = WORKFLOW.replace("return 2 * n", "import calendar\n    return 2 * n")
    folder = project(tmp_path, {"calendar.py": STUB}, workflow)
    result = run(folder)
    assert result.returncode == 2, result.stderr
    assert "internal error" not in result.stderr
    assert f"{folder / 'calendar.py'} shadows the standard-library module `calendar`" in (
        result.stderr
    )


def test_harmless_files_run(tmp_path: Path) -> None:
    """A sibling helper, an unused file named like a module nobody imports, and a workflow
    file named like a standard-library module all run."""
    workflow = "from helpers import offset\n" + WORKFLOW.replace("2 * n", "2 * n + offset")
    folder = project(
        tmp_path, {"helpers.py": "offset = 0\n", "calendar.py": STUB, "test.py": STUB}, workflow
    )
    result = run(folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "6"
    (folder / "statistics.py").write_text((folder / "wf.py").read_text())
    result = run(folder, workflow="statistics.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "6"
