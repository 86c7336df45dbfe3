"""Conditional writes on S3 through s3fs's botocore client: ``PutObject`` with
``If-None-Match: *`` (create only if absent) or ``If-Match: <etag>`` (replace only if
unchanged), which AWS honours since 2024 and moto does too.

Some S3-compatible servers ignore these headers and simply overwrite. :func:`probe` finds out
once per connection, by writing a scratch object twice under ``If-None-Match: *`` and once
under an ``If-Match`` that cannot hold: a server that lets a write through is not
conditional, and the caller falls back to best effort (and says so).

A request whose answer is lost is retried by the client, and the retry of a write that did
happen fails its condition: the call then reports False although its bytes are there. Bytes
alone cannot tell (two writers may send the same), so callers that care recognise their own
write by a token in it (:func:`flowkit.automation.claims.claim` does; a lease names its
holder).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

_WRONG_ETAG = '"00000000000000000000000000000000"'


def is_precondition_failed(exc: BaseException) -> bool:
    """True if ``exc`` (s3fs wraps botocore's error) is an HTTP 412 Precondition Failed."""
    cur: BaseException | None = exc
    seen: set[int] = set()
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        response = getattr(cur, "response", None)
        if isinstance(response, dict):
            error = response.get("Error") or {}
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.get("Code") in ("PreconditionFailed", "412") or status == 412:
                return True
        cur = cur.__cause__ or cur.__context__
    return False


class S3Conditional:
    """Conditional puts and versioned gets of one bucket/key pair through an s3fs
    filesystem ``fs``; ``kw``: the deadline keywords of the connection."""

    def __init__(self, fs: Any, kw: dict[str, Any]) -> None:
        self.fs = fs
        self.kw = kw

    def _put(self, path: str, data: bytes, **condition: str) -> None:
        bucket, key, _ = self.fs.split_path(path)
        self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition, **self.kw)

    def create(self, path: str, data: bytes) -> bool:
        try:
            self._put(path, data, IfNoneMatch="*")
        except FileExistsError:
            return False
        except OSError as exc:
            if not is_precondition_failed(exc):
                raise
            return False
        return True

    def read_versioned(self, path: str) -> tuple[bytes, str]:
        """The object's bytes and ETag, from one GET (so they belong together)."""
        from fsspec.asyn import sync

        bucket, key, _ = self.fs.split_path(path)

        async def get() -> tuple[bytes, str]:
            response = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
            async with response["Body"] as body:
                data: bytes = await body.read()
            return data, str(response["ETag"])

        result: tuple[bytes, str] = sync(self.fs.loop, get, **self.kw)
        return result

    def replace(self, path: str, data: bytes, version: str) -> bool:
        try:
            self._put(path, data, IfMatch=version)
        except FileNotFoundError:
            return False  # deleted since it was read
        except OSError as exc:
            if not is_precondition_failed(exc):
                raise
            return False
        return True

    def probe(self, root: str) -> bool:
        """Whether the server honours both conditions (a scratch object below ``root``,
        removed afterwards)."""
        path = f"{root}/tmp/conditional-probe-{uuid.uuid4().hex}"
        try:
            self._put(path, b"1", IfNoneMatch="*")
            for condition in ({"IfNoneMatch": "*"}, {"IfMatch": _WRONG_ETAG}):
                try:
                    self._put(path, b"2", **condition)
                except FileExistsError:
                    continue
                except OSError as exc:
                    if is_precondition_failed(exc):
                        continue
                    raise
                return False  # the write went through: the header was ignored
            return True
        except OSError as exc:
            if _not_implemented(exc):
                return False  # a server that refuses the headers outright
            raise
        finally:
            with contextlib.suppress(OSError):
                self.fs.rm_file(path, **self.kw)


def _not_implemented(exc: BaseException) -> bool:
    cur: BaseException | None = exc
    while cur is not None:
        response = getattr(cur, "response", None)
        if isinstance(response, dict):
            code = (response.get("Error") or {}).get("Code")
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NotImplemented", "InvalidArgument") or status == 501:
                return True
        cur = cur.__cause__
    return False


__all__ = ["S3Conditional", "is_precondition_failed"]
