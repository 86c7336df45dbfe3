"""Issue 9's in-place cases on every in-process backend and on a local and an S3 store.

In-place mutation (case 5: a task that appends to its input list must not change what a
sibling sees or what the cache stores) and unpacked ``fk.File`` copies (case 6: a consumer that
appends to its input must not change what later runs read, and a deleted copy heals) are
about values in the driver and copies on local disk, so they must hold whatever the store is.
The workflows are those of ``test_isolation.py`` and ``test_store_attacks.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import test_isolation as iso
import test_store_attacks as attacks

import flowkit as fk
from flowkit.store import Artifact, Store

if TYPE_CHECKING:
    from tests.conftest import S3Stores


@pytest.fixture(params=["local-store", "s3-store"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local-store":
        s = Store(tmp_path / "store")
    else:
        s3: S3Stores = request.getfixturevalue("s3_stores")
        s = s3.new()
    s.check()
    return s


@pytest.mark.parametrize("backend", ["local", "threads"])
def test_a_mutating_task_poisons_neither_its_sibling_nor_the_cache(
    store: Store, backend: str
) -> None:
    first = fk.run(iso.siblings, n=4, backend=backend, store=store)
    assert first.output == ([0, 1, 2, 3, 1000], 6, [0, 1, 2, 3])
    later = fk.run(iso.just_total, n=4, backend=backend, store=store)
    assert later.output == 6
    assert {t.node: t.cached for t in later.tasks} == {"load": True, "total": True}


@pytest.mark.parametrize("backend", ["local", "threads"])
def test_a_consumers_edit_of_its_file_never_reaches_later_runs(
    store: Store, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FK_TEST_DIR", str(tmp_path))
    outputs = [
        fk.run(attacks.counter_wf, text="10", backend=backend, store=store).output for _ in range(3)
    ]
    assert outputs == ["10", "10", "10"]


@pytest.mark.parametrize("backend", ["local", "threads"])
def test_a_deleted_copy_heals_in_the_next_run(
    store: Store, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FK_TEST_DIR", str(tmp_path))
    fk.run(attacks.counter_wf, text="7", backend=backend, store=store)
    art_entry = fk.run(attacks.counter_wf, text="7", backend=backend, store=store)
    made = next(t for t in art_entry.tasks if t.name == "make_counter")
    assert made.cached
    assert made.outputs is not None and made.outputs["0"] is not None
    copy = Path(store.get(Artifact.from_dict(made.outputs["0"])).path)
    shutil.rmtree(copy.parent, ignore_errors=True)  # the copy and its folder are gone
    assert not copy.exists()
    again = fk.run(attacks.counter_wf, text="7", backend=backend, store=store)
    assert again.output == "7"
