"""A throwaway HTTP server on 127.0.0.1 for download tests; each test module brings its own handler."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def local_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """Serve `handler` on a free port; `.url`, and `.hits`, `.lock`, `.files` for the handler to use."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.hits, httpd.lock, httpd.files, httpd.daemon_threads = Counter(), threading.Lock(), {}, True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """Base of the tests' handlers: `reply` with an optional lying Content-Length, and no request logging."""

    def reply(self, body: bytes, status: int = 200, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass
