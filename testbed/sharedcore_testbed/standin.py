"""The stand-in for a platform's containers on real nodes (standard library only: it runs in the image).

Listens on every TCP port given in STANDIN_PORTS (the platform's ports, from its profile) and answers any
HTTP request — the profile's probes included — with 200 and a JSON body naming the platform, the site and the
role the pod runs as. The role is read on each request from the site ConfigMap mounted at
/etc/sharedcore/site (it follows a failover without a restart), falling back to the environment.
"""

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SITE_DIR = Path("/etc/sharedcore/site")


def _value(key: str) -> str:
    try:
        return (SITE_DIR / key).read_text().strip()
    except OSError:
        return os.environ.get(key, "")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(
            {
                "platform": os.environ.get("STANDIN_PLATFORM", ""),
                "site": _value("SHAREDCORE_SITE"),
                "role": _value("SHAREDCORE_ROLE"),
                "hostname": socket.gethostname(),
                "path": self.path,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    ports = [int(port) for port in os.environ.get("STANDIN_PORTS", "8080").split(",") if port]
    servers = [ThreadingHTTPServer(("", port), Handler) for port in ports]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"stand-in {os.environ.get('STANDIN_PLATFORM', '')} listening on {ports}", flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
