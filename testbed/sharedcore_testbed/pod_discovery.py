"""Pod discovery for a site's Prometheus: its pods as Prometheus's `kubernetes_sd_configs` (role pod) would
list them, served to an `http_sd_configs` job.

Debian's `prometheus` is built without Kubernetes service discovery (client-go is not packaged), so this small
process stands in for that one part: one target per container port of every pod with an address, labelled
with the same `__meta_kubernetes_pod_*` names. Everything after discovery (the PodMonitor's relabelling, the
scrapes, the storage, the queries) is Prometheus's own.

    python -m sharedcore_testbed.pod_discovery DIR SITE PORT
"""

import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sharedcore_testbed import state
from sharedcore_testbed.plane import request


def _name(label: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def target_groups(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets kubernetes_sd_configs (role pod) gives for these pods, one per declared container port."""
    groups = []
    for pod in pods:
        meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
        address = status.get("podIP")
        if not address:
            continue
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
        labels = {
            "__meta_kubernetes_namespace": meta["namespace"],
            "__meta_kubernetes_pod_name": meta["name"],
            "__meta_kubernetes_pod_ip": address,
            "__meta_kubernetes_pod_node_name": spec.get("nodeName", ""),
            "__meta_kubernetes_pod_phase": status.get("phase", ""),
            "__meta_kubernetes_pod_ready": str(ready).lower(),
        }
        for key, value in (meta.get("labels") or {}).items():
            labels[f"__meta_kubernetes_pod_label_{_name(key)}"] = value
            labels[f"__meta_kubernetes_pod_labelpresent_{_name(key)}"] = "true"
        for container in spec["containers"]:
            for port in container.get("ports") or []:
                groups.append(
                    {
                        "targets": [f"{address}:{port['containerPort']}"],
                        "labels": labels
                        | {
                            "__meta_kubernetes_pod_container_name": container["name"],
                            "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                            "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
                            "__meta_kubernetes_pod_container_port_protocol": port.get("protocol", "TCP"),
                        },
                    }
                )
    return groups


def serve(root: Path, site: str, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            plane = state.load(root).planes[site]
            try:
                pods = json.loads(request(root, plane, "/api/v1/pods"))["items"]
            except OSError as error:  # the API server is gone: Prometheus keeps its last targets
                self.send_error(503, str(error))
                return
            body = json.dumps(target_groups(pods)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
