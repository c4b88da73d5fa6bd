"""A tiny JSON-over-HTTP request handler for the testbed's stand-in servers (a site's front end, a previous
system)."""

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any


def handler(answer: Callable[[str], Any | None]) -> type[BaseHTTPRequestHandler]:
    """A handler answering each GET with `answer(path)` as JSON, or 404 where it returns None."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = answer(self.path)
            if found is None:
                self.send_error(404)
                return
            body = json.dumps(found).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    return Handler
