"""What every part of the contract shares: how to make the backend, and per-test folders."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest

import flowkit as fk
from flowkit.backend import Backend
from flowkit.records import Run


class ContractBase:
    """Implement :meth:`make_backend`; optionally set ``store_url``.

    ``store_url`` (optional) is a store URL reachable from every worker; each test uses a
    fresh sub-folder of it. By default each test gets a store in its pytest ``tmp_path``.
    """

    store_url: ClassVar[str | None] = None

    def make_backend(self) -> Backend:
        """A fresh backend instance (called once per ``fk.run`` or protocol test)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement make_backend() returning a backend instance"
        )

    # -- fixtures and helpers --------------------------------------------------------------

    @pytest.fixture
    def folder(self, tmp_path: Path) -> str:
        """A per-test folder for the files tasks write to report what they did."""
        d = tmp_path / "marks"
        d.mkdir()
        return str(d)

    @pytest.fixture
    def store(self, tmp_path: Path) -> str:
        """A fresh store URL for this test."""
        if self.store_url:
            return f"{self.store_url.rstrip('/')}/{uuid.uuid4().hex}"
        return str(tmp_path / "store")

    def run(self, workflow: fk.WorkflowDef[..., Any], store: str, **kwargs: Any) -> Run:
        """``fk.run`` on a fresh backend from :meth:`make_backend`."""
        return fk.run(workflow, backend=self.make_backend(), store=store, **kwargs)
