"""The ``--on-new URL_PREFIX`` sensor: objects that appeared under an fsspec prefix.

Any fsspec URL works (``file://``, ``s3://``, ``gs://``, ``memory://``...); credentials and
endpoints come from the environment, as the filesystem's library reads them
(``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``... for s3fs). Every object below the prefix
counts, at any depth. The cursor maps each object's URL to its signature: its size and its
ETag / modification time, so an object rewritten in place counts as new again, and one that
is deleted then recreated too. A local folder that is missing is a failure (the sensor keeps
its cursor), not an empty folder; on object stores an empty listing is just empty. An object
still being written (a local file growing) may be seen twice, once per size: write it
elsewhere and rename it into the folder (objects on S3 and GCS appear whole).

Each new object is its own :class:`Found` (key: a digest of its URL and signature), so two
schedulers that list the folder at different moments still claim each object once; the
trigger fires one run for the objects it claimed in one look (``Event.urls``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from flowkit.automation.sensing import CursorError, Found, Look
from flowkit.events import Event


def normalise(prefix: str) -> str:
    """A URL for ``prefix``: a plain path becomes an absolute ``file://`` URL (the scheduler
    may run in another folder)."""
    import os

    if "://" in prefix:
        return prefix
    return "file://" + os.path.abspath(os.path.expanduser(prefix))


def list_objects(prefix: str) -> dict[str, str]:
    """Every object below ``prefix``: its URL and signature (raises what fsspec raises)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(prefix)
    fs.invalidate_cache()  # s3fs, gcsfs keep listings: a stale one hides new objects
    if "file" in _protocols(fs) and not fs.isdir(path):
        # a folder that went away (an unmounted disk) is a failure, not "every object gone":
        # when it comes back, its objects are not new
        raise FileNotFoundError(f"{prefix}: no such folder")
    listing: dict[str, dict[str, Any]] = fs.find(path, detail=True)
    return {
        fs.unstrip_protocol(name): signature(info)
        for name, info in listing.items()
        if info.get("type", "file") != "directory"
    }


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def signature(info: Mapping[str, Any]) -> str:
    """``size|etag|mtime`` from an fsspec ``info`` (whichever of them the filesystem gives)."""
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or ""
    when = info.get("mtime") or info.get("LastModified") or info.get("updated")
    when = when or info.get("created") or ""
    if isinstance(when, dt.datetime):
        when = when.timestamp()
    return f"{info.get('size')}|{etag}|{when}"


def object_key(url: str, sig: str) -> str:
    return "obj-" + hashlib.sha256(f"{url}\0{sig}".encode()).hexdigest()[:40]


class ObjectsSensor:
    """New or rewritten objects below ``prefix``."""

    def __init__(self, trigger: str, prefix: str) -> None:
        self.trigger = trigger
        self.prefix = prefix

    def look(self, cursor: Mapping[str, Any] | None, now: float) -> Look:
        seen = _seen(cursor)
        present = list_objects(self.prefix)
        found: list[Found] = []
        if cursor is not None:
            for url, sig in sorted(present.items()):
                if seen.get(url) != sig:
                    event = Event(
                        kind="new_objects", trigger=self.trigger, time=now, prefix=self.prefix,
                        urls=(url,),
                    )  # fmt: skip
                    found.append(Found(object_key(url, sig), event))
        return Look(found, {"objects": present})


def _seen(cursor: Mapping[str, Any] | None) -> dict[str, str]:
    if cursor is None:
        return {}
    objects = cursor.get("objects")
    if not isinstance(objects, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in objects.items()
    ):
        raise CursorError("'objects' must map object URLs to signatures")
    return dict(objects)


__all__ = ["ObjectsSensor", "list_objects", "normalise", "object_key", "signature"]
