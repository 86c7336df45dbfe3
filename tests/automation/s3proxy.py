"""An HTTP proxy on 127.0.0.1 in front of the test S3 server, to play a misbehaving S3:

* ``strip``: request headers it drops (``If-None-Match``, ``If-Match``: an S3-compatible
  server without conditional writes);
* ``lose``: a path fragment; the first PUT whose path contains it is forwarded (the server
  does it) and its answer is never sent back: the connection closes, as when a network
  drops the reply, and the client retries.
"""

from __future__ import annotations

import http.client
import http.server
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flowkit.store import Store
from tests.conftest import S3_CREDENTIALS, S3Stores

CONDITIONS = frozenset({"if-none-match", "if-match"})


class Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, strip: frozenset[str], lose: str | None) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.strip = strip | {"expect"}  # the body is read before it is forwarded
        self.lose = lose
        self.lost: list[str] = []  # paths whose answer was dropped
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def should_lose(self, method: str, path: str) -> bool:
        with self.lock:
            if method == "PUT" and self.lose and self.lose in path and not self.lost:
                self.lost.append(path)
                return True
        return False


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Proxy
    protocol_version = "HTTP/1.1"  # keep-alive, and "100 Continue" for a client that waits

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        strip = self.server.strip
        headers = {k: v for k, v in self.headers.items() if k.lower() not in strip}
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        finally:
            conn.close()
        if self.server.should_lose(self.command, self.path):
            self.close_connection = True  # done upstream; the client never hears of it
            return
        self.send_response(answer.status)
        for k, v in answer.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


@contextmanager
def proxied_store(
    s3: S3Stores, *, strip: frozenset[str] = frozenset(), lose: str | None = None
) -> Iterator[tuple[Store, Proxy]]:
    """A new store in a fresh bucket, reached through a :class:`Proxy`."""
    proxy = Proxy(s3.endpoint, strip, lose)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = proxy.server_address[:2]
        url = f"s3://{s3.bucket()}/prefix"
        store = Store(url, **S3_CREDENTIALS, endpoint_url=f"http://{host!s}:{port}")
        store.check()
        yield store, proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join()
