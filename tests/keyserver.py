"""A tiny HTTP server on loopback that plays a remote server's actor and key documents.

Each GET is recorded (path and headers). ``authorize``, when set, is asked first about each
GET (method, path, headers) and may answer a status to refuse it with: a server that
demands signed fetches (GoToSocial; Mastodon in authorized-fetch mode).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class KeyServer:
    def __init__(self) -> None:
        self.documents: dict[str, tuple[int, object]] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.authorize: Callable[[str, str, Message], int | None] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] += 1
                server.requests.append((self.path, dict(self.headers.items())))
                refusal = server.authorize and server.authorize("GET", self.path, self.headers)
                if refusal:
                    status, document = refusal, {"error": "refused"}
                else:
                    status, document = server.documents.get(self.path, (404, {"error": "nope"}))
                body = json.dumps(document).encode()
                self.send_response(status)
                if 300 <= status < 400:  # the document is where to
                    self.send_header("Location", str(document))
                self.send_header("Content-Type", "application/activity+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def serve(self, path: str, document: object, status: int = 200) -> str:
        self.documents[path] = (status, document)
        return self.origin + path

    def __enter__(self) -> KeyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
