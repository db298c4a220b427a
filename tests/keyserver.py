"""A tiny HTTP server on loopback that plays a remote server's actor and key documents."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class KeyServer:
    def __init__(self) -> None:
        self.documents: dict[str, tuple[int, object]] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] += 1
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
