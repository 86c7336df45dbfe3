"""``import flowkit`` stays light: heavy optional libraries load only when user code needs them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = ("ray", "mlflow", "sklearn", "pandas", "numpy", "pyarrow")

SCRIPT = textwrap.dedent(
    """
    import json, sys

    HEAVY = {heavy!r}

    def loaded():
        return sorted(m for m in HEAVY if m in sys.modules)

    import flowkit as fk
    after_import = loaded()

    @fk.task
    def double(x: int) -> int:
        return 2 * x

    @fk.task
    def numbers(n: int) -> list[int]:
        return list(range(n))

    @fk.task(cache=True)
    def total(xs: list[int]) -> int:
        return sum(xs)

    @fk.workflow
    def small(n: int) -> int:
        return total(double.map(x=numbers(n)))

    runs = [fk.run(small, n=4, store={store!r}, backend=b) for b in ("local", "threads")]
    outputs = [[r.output, r.tasks[-1].cached] for r in runs]
    print(json.dumps({{"after_import": after_import, "after_runs": loaded(), "outputs": outputs}}))
    """
)


def test_import_and_small_run_load_no_heavy_library(tmp_path: Path) -> None:
    script = SCRIPT.format(heavy=HEAVY, store=str(tmp_path / "store"))
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["after_import"] == []
    assert report["after_runs"] == []
    assert report["outputs"] == [[12, False], [12, True]]  # stored, then served from the store


# Standard-library modules a user's file is often named like, and the automation libraries:
# loaded before `flowkit run` loads the user's file, they would hide that file's shadowing
# (tests/test_shadowing.py) and slow every command down.
NOT_BEFORE_THE_LOAD = ("calendar", "email", "http.client", "ssl", "croniter", "zoneinfo")


def test_the_cli_loads_no_network_or_cron_library_before_the_users_file() -> None:
    script = textwrap.dedent(
        f"""
        import json, sys
        import flowkit
        from flowkit.cli import _commands
        _commands()  # every command's module, as `flowkit run` imports them
        from flowkit.cli import commands_run
        print(json.dumps(sorted(m for m in {NOT_BEFORE_THE_LOAD!r} if m in sys.modules)))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
