"""The operator as users run it: its image built from the Dockerfile, installed by its Helm chart at each
site, running as a pod, driving SharedServices whose workloads really run (stand-ins) at both sites."""

import base64
import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from sharedcore_testbed import chart
from sharedcore_testbed.dataplane import DataPlaneDouble
from sharedcore_testbed.operators import OPERATOR_ACCOUNT, OPERATOR_NAMESPACE
from sharedcore_testbed.pair import opt_in, topology
from tests.cluster.test_operator import condition, create, get
from tests.conftest import Sites
from tests.support import samples
from tests.support.cluster import Site, eventually
from tests.support.operator import install_crds

pytestmark = [pytest.mark.cluster, pytest.mark.nodes]

VERSION = "1.0.0"  # the stand-in images' tag (sharedcore_testbed.images.STANDIN_VERSIONS)
SERVICE_LABEL = "sharedcore.danang.gov.vn/service"


def operator_pod(site: Site) -> dict[str, Any]:
    pods = json.loads(
        site.kubectl(
            "get",
            "pods",
            "-n",
            OPERATOR_NAMESPACE,
            "-l",
            "app.kubernetes.io/name=sharedcore-operator",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert len(pods) == 1, pods
    pod: dict[str, Any] = pods[0]
    return pod


def http_get(url: str) -> str:
    """From the host, which routes each site's pod range into its namespace."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def lean(body: dict[str, Any]) -> dict[str, Any]:
    """One worker of each kind: a site's two nodes share this machine's 2 cores, and the seven platforms'
    samples request more than that (the fourth OCR worker stayed Pending once the e-archive and the portal
    came)."""
    for settings in (body["spec"].get("settings") or {}).values():
        settings.update({key: 1 for key in settings if key.endswith("Workers")})
    return body


@pytest.fixture
def chart_operators(real_sites: Sites) -> Iterator[Sites]:
    """`helm install` of the chart at danang and quangnam (namespace enforcing the restricted Pod Security
    Standard), the peers' and the witness's kubeconfig Secrets and the Topology; CloudNativePG, VolSync and
    Prometheus played by the data-plane double (the next issue brings the real ones)."""
    danang, quangnam, witness = real_sites.danang, real_sites.quangnam, real_sites.witness
    doubles = []
    for site in (danang, quangnam):
        install_crds(site)  # the chart installs sharedcore's own; the data plane's minimal CRDs besides
        doubles.append(DataPlaneDouble(site))
        chart.install_operator(site, {"operator.resyncSeconds": "5"})
    # Slow heartbeats, a long lease: nothing here times a failover; a loaded machine must not fence a site.
    chart.connect_pair(danang, quangnam, witness, topology(heartbeat=5, lease=60))
    for double in doubles:
        double.start()
    try:
        yield real_sites
    finally:
        for double in doubles:
            double.stop()
        for site in (danang, quangnam):
            chart.uninstall(site)


def test_the_chart_runs_the_operator_image_and_it_runs_every_platform_at_both_sites(
    chart_operators: Sites,
) -> None:
    danang, quangnam = chart_operators.danang, chart_operators.quangnam
    for site in (danang, quangnam):
        site.kubectl(
            "rollout", "status", "-n", OPERATOR_NAMESPACE, "deployment/sharedcore-operator", "--timeout=120s"
        )
        pod = operator_pod(site)
        assert pod["spec"]["containers"][0]["image"] == "sharedcore:0.1.0"  # the chart's default
        assert pod["spec"]["serviceAccountName"] == OPERATOR_ACCOUNT
        metrics = http_get(f"http://{pod['status']['podIP']}:8080/metrics")
        assert "sharedcore_site_role" in metrics

    namespace = f"t-{uuid.uuid4().hex[:8]}"
    for site in (danang, quangnam):
        opt_in(site, namespace)  # replication writes only into namespaces invited at both sites
    # Warm standbys: one replica of each stateless component runs at quangnam too.
    bodies = [
        lean(samples.service(slug, namespace, version=VERSION, replicas=1, standby={"mode": "Warm"}))
        for slug in samples.SLUGS
    ]
    for body in bodies:
        name = body["metadata"]["name"]
        for site in (danang, quangnam):
            # What cert-manager issues at each site, and what CloudNativePG creates with each database: the
            # application user's Secret the pods read.
            tls = body["spec"].get("ingress", {}).get("tlsSecretName")
            if tls:
                site.core.create_namespaced_secret(namespace, samples.tls_secret(namespace, tls))
            secret = {"username": name, "password": "testbed"}
            site.core.create_namespaced_secret(
                namespace,
                client.V1Secret(
                    metadata=client.V1ObjectMeta(name=f"{name}-db-app"),
                    data={k: base64.b64encode(v.encode()).decode() for k, v in secret.items()},
                ),
            )
        create(danang, body)

    for site, role in ((danang, "Active"), (quangnam, "Standby")):
        for body in bodies:
            name = body["metadata"]["name"]

            def ready(site: Site = site, name: str = name, role: str = role) -> dict[str, Any] | None:
                try:
                    found = get(site, namespace, name)
                except client.ApiException:
                    return None
                status = found.get("status") or {}
                return (
                    found
                    if status.get("role") == role and condition(found, "Ready").get("status") == "True"
                    else None
                )

            try:
                eventually(ready, timeout=240, message=f"{name} Ready as {role} at {site.name}")
            except AssertionError as error:  # say what it is instead
                status = get(site, namespace, name).get("status") or {}
                raise AssertionError(
                    f"{error}: role {status.get('role')}, {status.get('conditions')}"
                ) from None
            pods = json.loads(
                site.kubectl(
                    "get", "pods", "-n", namespace, "-l", f"{SERVICE_LABEL}={name}", "-o", "json"
                ).stdout
            )["items"]
            serving = [p for p in pods if p["status"].get("phase") == "Running"]
            assert serving, f"{name} runs real pods at {site.name}"
            answer = json.loads(http_get(f"http://{serving[0]['status']['podIP']}:{_port(serving[0])}/"))
            assert (answer["site"], answer["role"]) == (site.name, role), answer


def _port(pod: dict[str, Any]) -> int:
    """A TCP port of the pod's container (the stand-in answers HTTP on every one)."""
    ports = pod["spec"]["containers"][0]["ports"]
    port: int = next(p["containerPort"] for p in ports if p.get("protocol", "TCP") == "TCP")
    return port
