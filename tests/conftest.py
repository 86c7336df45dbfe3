"""Shared fixtures: stores on a local folder, ``memory://`` and a real S3 server on loopback.

The S3 server is moto's ``ThreadedMotoServer`` bound to 127.0.0.1 on a free port, started
once per session and stopped at the end. s3fs talks to it with explicit key/secret and
``endpoint_url`` (no ``region_name``: moto then refuses bucket creation).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowkit.store import Store

S3_CREDENTIALS = {"username": "flowkit-test", "secret": "flowkit-test"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on 127.0.0.1 (one per test session)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class S3Stores:
    """Makes buckets and stores on the session's S3 server."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.options: dict[str, Any] = {**S3_CREDENTIALS, "endpoint_url": endpoint}

    def bucket(self) -> str:
        """Create a fresh bucket and return its name."""
        import s3fs

        fs = s3fs.S3FileSystem(
            **S3_CREDENTIALS,
            client_kwargs={"endpoint_url": self.endpoint},
            skip_instance_cache=True,
        )
        name = f"fk-{uuid.uuid4().hex[:12]}"
        fs.mkdir(name)
        return name

    def new(self) -> Store:
        """A new, checked store under a fresh bucket."""
        store = Store(f"s3://{self.bucket()}/prefix", **self.options)
        store.check()
        return store


@pytest.fixture(scope="session")
def s3_stores(s3_endpoint: str) -> S3Stores:
    """Factory of stores on the session's S3 server."""
    return S3Stores(s3_endpoint)


@pytest.fixture
def local_store(tmp_path: Path) -> Store:
    """A new, checked store in a temporary folder."""
    store = Store(tmp_path / "store")
    store.check()
    return store


@pytest.fixture(params=["local", "memory", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A new, checked store of each kind: local folder, ``memory://`` and S3 (moto)."""
    if request.param == "local":
        store = Store(tmp_path / "store")
    elif request.param == "memory":
        store = Store(f"memory://fk-{uuid.uuid4().hex[:12]}")
    else:
        store = request.getfixturevalue("s3_stores").new()
    store.check()
    yield store
    if request.param == "memory":
        import fsspec

        fs = fsspec.filesystem("memory")
        fs.rm("/" + store.url.split("://", 1)[1], recursive=True)


@pytest.fixture(autouse=True)
def _default_store_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A workflow called directly uses the default store: keep it out of the working tree
    (tests that check the default itself unset the variable)."""
    monkeypatch.setenv("FLOWKIT_STORE", str(tmp_path / "default-store"))
