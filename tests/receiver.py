"""A loopback inbox for delivery tests: records every POST and answers from a script.

``Receiver`` plays one remote server. Each POST is recorded (path, headers, body) and
answered with the next scripted ``Reply`` for its path (or the default, 202). A reply can
be slow (``delay``), carry headers (``Retry-After``), or refuse the connection outright
(``close``: the socket is closed without an answer). ``stop()`` makes the port refuse
connections, ``start()`` brings it back on the same port.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    close: bool = False


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def activity(self) -> dict:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self.scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self.default = Reply()
        self.lock = threading.Lock()
        self.port = port
        self.httpd: _Server | None = None
        self.start()

    # ── scripting ─────────────────────────────────────────────────────────────────────

    def script(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.scripts[path].extend(replies)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def posts_to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, count: int, timeout: float = 10.0, path: str | None = None) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.posts_to(path) if path else list(self.received)
            if len(got) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(f"expected {count} POSTs, got {len(self.received)}")

    # ── serving ───────────────────────────────────────────────────────────────────────

    def _next_reply(self, path: str) -> Reply:
        with self.lock:
            queue = self.scripts.get(path)
            return queue.popleft() if queue else self.default

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                reply = receiver._next_reply(self.path)
                if reply.close:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                with receiver.lock:
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), body, time.monotonic())
                    )
                if reply.delay:
                    time.sleep(reply.delay)
                # 204 and 304 carry no body (RFC 9110): bytes sent after one would be read
                # as the next answer on the kept-alive connection.
                answer = b"" if reply.status in (204, 304) else b'{"status":"ok"}'
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.httpd = _Server(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the listening socket: connections to the port are refused until start()."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
