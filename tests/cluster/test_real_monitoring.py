"""Each real site's Prometheus scrapes what the shipped PodMonitor selects, and the operator's lag reader
understands its answers (sharedcore_testbed.prometheus)."""

import json
import urllib.parse
import urllib.request
from typing import Any

import pytest

from sharedcore.replication.lag import LAG, QUERY, RECEIVER_UP, parse
from tests.cluster.test_real_nodes import apply, pod, wait_ready
from tests.conftest import Sites
from tests.support.cluster import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.nodes]

# An exporter playing a CloudNativePG instance's metrics endpoint (the lag it reports comes from argv).
EXPORTER = """
import http.server, sys
body = f"cnpg_pg_replication_lag {sys.argv[1]}\\ncnpg_pg_replication_is_wal_receiver_up 1\\n".encode()
class Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("", 9187), Metrics).serve_forever()
"""


def exporter(name: str, lag: float, *, role: str | None, port_name: str = "metrics") -> dict[str, Any]:
    body = pod(name)
    container = body["spec"]["containers"][0]
    container["command"] = ["python3", "-c", EXPORTER, str(lag)]
    container["ports"] = [{"name": port_name, "containerPort": 9187}]
    container["readinessProbe"] = {"tcpSocket": {"port": 9187}, "periodSeconds": 1}
    if role:
        body["metadata"]["labels"]["cnpg.io/podRole"] = role
    return body


def query(url: str, promql: str) -> dict[str, Any]:
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(address, timeout=5) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def test_each_sites_prometheus_scrapes_the_instances_the_podmonitor_selects(
    real_sites: Sites, real_namespace: str
) -> None:
    site = real_sites.quangnam
    instances = [
        exporter("instance", 1.5, role="instance"),
        exporter("pooler", 7.0, role="pooler"),  # CloudNativePG's poolers are not instances
        exporter("other-port", 9.0, role="instance", port_name="web"),  # not the endpoint named metrics
    ]
    apply(site, real_namespace, *instances)
    wait_ready(site, real_namespace, "instance", "pooler", "other-port")
    url = real_sites.bed.prometheus_url(site.name)

    def scraped() -> dict[tuple[str, str], dict[str, tuple[float, float]]] | None:
        values = parse(query(url, QUERY))
        ours = {pod: metrics for pod, metrics in values.items() if pod[0] == real_namespace}
        return ours if ours.get((real_namespace, "instance"), {}).keys() == {LAG, RECEIVER_UP} else None

    found = eventually(scraped, timeout=60, message="the instance's metrics in quangnam's Prometheus")
    assert set(found) == {(real_namespace, "instance")}, found
    assert found[(real_namespace, "instance")][LAG][1] == 1.5
    # Each site has its own: danang's knows nothing of quangnam's pods.
    assert parse(query(real_sites.bed.prometheus_url("danang"), QUERY)).keys().isdisjoint(found)
