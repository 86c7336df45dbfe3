"""A real webhook receiver on 127.0.0.1 for the notification tests.

``Receiver`` answers each POST by its ``script``: a list of behaviours used in turn, the last
one repeated: ``200`` (keep the body), another status code (answer it, keep nothing), or
``"hang"`` (answer nothing until the receiver stops) or ``"garbage"`` (bytes that are not an
HTTP answer). Every try is counted in ``tries``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, script: list[int | str] | None = None) -> None:
        self.script: list[int | str] = list(script or [200])
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.tries = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.got = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                with receiver.lock:
                    i = min(receiver.tries, len(receiver.script) - 1)
                    receiver.tries += 1
                    what = receiver.script[i]
                    receiver.raw.append(data)
                if what == "hang":
                    receiver.stopping.wait()
                    return
                if what == "garbage":  # not an HTTP answer at all
                    self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
                    self.close_connection = True
                    return
                assert isinstance(what, int)
                if what == 200:
                    with receiver.got:
                        receiver.bodies.append(json.loads(data))
                        receiver.got.notify_all()
                self.send_response(what)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def wait_for(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The bodies once ``n`` arrived (or what arrived within ``timeout``)."""
        with self.got:
            self.got.wait_for(lambda: len(self.bodies) >= n, timeout)
            return list(self.bodies)


@contextlib.contextmanager
def receiver(script: list[int | str] | None = None) -> Iterator[Receiver]:
    r = Receiver(script)
    r.thread.start()
    try:
        yield r
    finally:
        r.stopping.set()
        r.server.shutdown()
        r.server.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a port bound then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
