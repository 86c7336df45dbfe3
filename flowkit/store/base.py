"""What every part of a store shares: where it is, its key, its connection, and how it names a
fault. :class:`flowkit.store.Store` is built on :class:`StoreBase`."""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from flowkit.config import check_timeout, store_key, store_timeout
from flowkit.errors import StoreError
from flowkit.fsio import FsspecIO, LocalIO, ObjectIO, SinkError, StoreFault, describe_fault
from flowkit.signing import Signer, as_key

log = logging.getLogger("flowkit.store")

_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://(.*)$")
_WARN_MAX = 10_000  # files warned about once each (per store object)


class StoreBase:
    """A store's location (``url``, ``root``, ``local``), options, key, read-only flag and
    timeout, and its :class:`~flowkit.fsio.ObjectIO` (``_io``, made on first use).

    It pickles as its URL, options, key, read-only flag and timeout (it is sent to workers).
    """

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        key: bytes | str | None = None,
        read_only: bool = False,
        timeout: float | None = None,
        **storage_options: Any,
    ) -> None:
        text = os.fspath(url)
        m = _URL_RE.match(text)
        protocol = m.group(1).lower() if m else None
        self.local = protocol in (None, "file", "local") and "::" not in text
        if self.local:
            raw = m.group(2) if m else text
            self.root = os.path.abspath(os.path.expanduser(raw))
            self.url = self.root
        else:
            self.root = ""
            self.url = text
        self.storage_options = dict(storage_options)
        self.read_only = bool(read_only)
        self.timeout = store_timeout() if timeout is None else check_timeout(timeout)
        if key is not None and protocol in ("s3", "s3a"):
            self._refuse_s3_credential_as_key()
        self._set_key(store_key() if key is None else self._as_key(key))
        self._files = os.path.join(self.root, "files", "") if self.local else ""
        self._io_: ObjectIO | None = LocalIO(self.root) if self.local else None
        self._warned: set[str] = set()

    def _set_key(self, key: bytes | None) -> None:
        self._key = key
        self._signer = None if key is None else Signer(key)

    def _as_key(self, key: bytes | str) -> bytes:
        try:
            return as_key(key)
        except ValueError as exc:
            raise StoreError(
                f"store {self.url}: key= is empty; give the shared signing key, or leave it "
                "out (and FLOWKIT_STORE_KEY unset) for an unsigned store"
            ) from exc

    def _refuse_s3_credential_as_key(self) -> None:
        opts = self.storage_options
        if ("secret" in opts or "password" in opts) and "username" not in opts:
            raise StoreError(
                f"store {self.url}: fk.Store(key=...) is the key that signs the store, not the "
                "S3 access key id. Pass the access key id as username= (with secret=), or set "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            )

    @property
    def signed(self) -> bool:
        """True if documents and objects are signed and checked with a key."""
        return self._key is not None

    def __repr__(self) -> str:
        flags = (", signed" if self.signed else "") + (", read_only" if self.read_only else "")
        return f"Store({self.url!r}{flags})"  # never the key

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, StoreBase)
            and other.url == self.url
            and other.storage_options == self.storage_options
            and other._key == self._key
            and other.read_only == self.read_only
        )

    def __hash__(self) -> int:
        return hash(self.url)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "storage_options": self.storage_options,
            "key": self._key,
            "read_only": self.read_only,
            "timeout": self.timeout,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["url"],
            read_only=state.get("read_only", False),
            timeout=state.get("timeout"),
            **state["storage_options"],
        )
        self._set_key(state.get("key"))  # the sender's key, never this process's environment

    # -- the connection --------------------------------------------------------------------

    @property
    def _io(self) -> ObjectIO:
        if self._io_ is None:
            self._io_ = self._connect()
        return self._io_

    def _connect(self) -> FsspecIO:
        try:
            import fsspec
        except ImportError as exc:
            raise StoreError(f"store {self.url} needs fsspec: pip install fsspec") from exc
        options = {"use_listings_cache": False, "skip_instance_cache": True, **self.storage_options}
        protocol = self.url.split("://", 1)[0].lower()
        if protocol in ("s3", "s3a"):
            # per-request timeouts and few retries: a silent endpoint must not hang a run
            config = dict(options.get("config_kwargs") or {})
            config.setdefault("connect_timeout", self.timeout)
            config.setdefault("read_timeout", self.timeout)
            config.setdefault("retries", {"max_attempts": 2})
            options["config_kwargs"] = config
        try:
            fs, root = fsspec.core.url_to_fs(self.url, **options)
        except ImportError as exc:
            raise StoreError(f"store {self.url}: {exc}") from exc
        except Exception as exc:
            raise StoreError(f"cannot open store {self.url}: {type(exc).__name__}: {exc}") from exc
        return FsspecIO(fs, root, self.timeout)

    # -- faults and warnings ---------------------------------------------------------------

    def _fault(self, op: str, exc: BaseException, hint: str = "") -> StoreFault:
        """``cannot <op> store <url>: <what went wrong>`` (op: e.g. "write x to")."""
        reason, transient = describe_fault(exc, None if self.local else self.timeout)
        number = None
        for e in (exc.error if isinstance(exc, SinkError) else exc, exc.__cause__):
            if isinstance(e, OSError) and isinstance(e.errno, int):
                number = e.errno
                break
        return StoreFault(
            f"cannot {op} store {self.url}: {reason}{hint}", transient=transient, errno=number
        )

    def _warn_once(self, where: str, message: str) -> None:
        if where not in self._warned:
            if len(self._warned) < _WARN_MAX:
                self._warned.add(where)
            log.warning("%s", message)


__all__ = ["StoreBase"]
