"""A loopback HTTP listener that counts every TCP connection made to it (SSRF tests).

    with CountingListener(body=b'{"token": "INTERNAL-SECRET"}') as internal:
        ...                      # aim something at internal.base_url
        internal.connections     # accepted TCP connections, whatever was (or was not) sent on them

It stands in for a service on the server's own network (a metadata endpoint, an admin
port): any request gets 200 with `body`. Counting accepts, not requests, catches a
connection that was opened and dropped before a full request. stdlib only.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: "CountingListener"):
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self):  # every accepted connection passes here
        conn = super().get_request()
        with self.owner._lock:
            self.owner.connections += 1
        return conn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = self.server.owner.body
        with self.server.owner._lock:
            self.server.owner.requests += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815


class CountingListener:
    def __init__(self, body: bytes = b'{"token": "INTERNAL-SECRET-0xC0FFEE"}'):
        self.body = body
        self.connections = 0
        self.requests = 0
        self._lock = threading.Lock()
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="counting-listener", daemon=True)

    def __enter__(self) -> "CountingListener":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


__all__ = ["CountingListener"]
