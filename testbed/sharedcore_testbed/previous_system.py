"""A stand-in for the system a platform replaces during a parallel run, and what the parallel run's job does.

`PreviousSystem` serves HTTPS on loopback, with a certificate from its own private CA (`pki`), and answers
`GET /api/dossiers/in-force` with the numbers of the dossiers it holds in force, as JSON; `stop` and `start`
play it going down and coming back. `reconcile` does what the image of the rendered CronJob
(`<name>-parallel-run`) does at each run: ask both systems for their dossiers in force and write the counts to
the results ConfigMap. On the kwok planes no image runs, so the tests run it themselves, as the data-plane
double plays CloudNativePG.
"""

import datetime
import json
import ssl
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sharedcore_testbed import json_http, pki
from sharedcore_testbed.clients import SiteClients

IN_FORCE = "/api/dossiers/in-force"


class PreviousSystem:
    def __init__(self, directory: Path, dossiers: set[str]) -> None:
        self.dossiers = set(dossiers)
        self._keys = pki.create(directory, "previous-system", users=())
        self._port = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self._port}"

    @property
    def ca_pem(self) -> str:
        return self._keys.ca_cert.read_text()

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self._port), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._keys.serving_cert, self._keys.serving_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, name="previous-system", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return json_http.handler(
            lambda path: {"dossiers": sorted(self.dossiers)} if path == IN_FORCE else None
        )


def _in_force(url: str, ca_pem: str) -> set[str] | None:
    context = ssl.create_default_context(cadata=ca_pem)
    try:
        with urllib.request.urlopen(url + IN_FORCE, context=context, timeout=5) as answer:
            return set(json.load(answer)["dossiers"])
    except OSError:
        return None


def reconcile(
    site: SiteClients, namespace: str, results: str, system: PreviousSystem, new_in_force: set[str]
) -> dict[str, str]:
    """One run of the reconciliation job: the previous system's dossiers in force against the new system's
    (`new_in_force`, what the new system answered), written to the ConfigMap `results`; its data."""
    previous = _in_force(system.url, system.ca_pem)
    data = {
        "checkedAt": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "previousReachable": "true" if previous is not None else "false",
        "newInForce": str(len(new_in_force)),
    }
    if previous is not None:
        data |= {"previousInForce": str(len(previous)), "missing": str(len(previous - new_in_force))}
    site.core.patch_namespaced_config_map(results, namespace, {"data": data})
    return data
