"""Annotation queues: rows that need a human label, kept as a Parquet dataset on the store.

Layout: ``<store>/annotations/<name>/part-<UTC time>-<random>.parquet``. Every call adds one
part file, so the queue grows across runs and the whole queue reads back as one dataset
(``pyarrow.dataset.dataset(location, filesystem=...)`` or ``ml.read_annotation_queue``). Parts
are written under a dot-name and renamed when complete, so readers never see half a file (dot-
and underscore-prefixed files are ignored by Parquet dataset readers). A call with no rows
writes nothing and still returns the location.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq

from flowkit.ml.errors import ParameterError
from flowkit.store import Store

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
StoreSpec: TypeAlias = Store | str | os.PathLike[str] | None


def _filesystem(store: Store) -> tuple[Any, str]:
    """(fsspec filesystem, root path inside it) of a store."""
    import fsspec  # remote stores only need it here

    if store.local:
        return fsspec.filesystem("file"), store.root
    fs, root = fsspec.core.url_to_fs(store.url, **store.storage_options)
    return fs, root.rstrip("/")


def _location(store: Store, name: str) -> str:
    base = store.root if store.local else store.url.rstrip("/")
    return f"{base}/annotations/{name}"


def annotation_queue(
    rows: pa.Table,
    store: StoreSpec = None,
    name: str = "annotations",
) -> str:
    """Append ``rows`` to the annotation queue ``name`` on ``store``; return the queue location.

    ``store`` is an ``fk.Store``, a URL or path, or None (or ``""``) for ``$FLOWKIT_STORE`` /
    ``./.flowkit``.

    Example::

        uncertain = scored.filter(pc.less(scored["confidence"], 0.6))
        where = ml.annotation_queue(uncertain, name="digits-review")
    """
    if not isinstance(rows, pa.Table):
        raise ParameterError(
            f"annotation_queue: rows must be a pyarrow Table, got {type(rows).__name__}"
        )
    if not _NAME_RE.match(name):
        raise ParameterError(
            f"annotation_queue: name {name!r} must be letters, digits, '.', '_' or '-' "
            "and start with a letter or digit"
        )
    st = Store.open(store or None)  # "" (e.g. an unset workflow input) means the default
    st.check()  # creates the store marker first, so the folder stays a valid flowkit store
    location = _location(st, name)
    if rows.num_rows == 0:
        log.info("annotation_queue %s: no rows to add", location)
        return location
    fs, root = _filesystem(st)
    folder = f"{root}/annotations/{name}"
    fs.makedirs(folder, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    part = f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = f"{folder}/.{part}.tmp"
    with fs.open(tmp, "wb") as f:
        pq.write_table(rows, f)
    fs.mv(tmp, f"{folder}/{part}")
    log.info("annotation_queue %s: added %d row(s) in %s", location, rows.num_rows, part)
    return location


def read_annotation_queue(name: str = "annotations", store: StoreSpec = None) -> pa.Table:
    """Every row queued so far under ``name`` (an empty table when there are none)."""
    import pyarrow.dataset as ds

    st = Store.open(store or None)
    fs, root = _filesystem(st)
    folder = f"{root}/annotations/{name}"
    if not fs.exists(folder):
        return pa.table({})
    parts = sorted(
        p
        for p in fs.ls(folder, detail=False)
        if p.endswith(".parquet") and not os.path.basename(p).startswith((".", "_"))
    )
    if not parts:
        return pa.table({})
    return ds.dataset(parts, filesystem=fs, format="parquet").to_table()


__all__ = ["annotation_queue", "read_annotation_queue"]
