"""Two sites and a witness on the testbed's planes, with one operator process per site.

Each operator is authenticated as its own ServiceAccount at its own site and reaches the other site and the
witness only through the testbed's link proxies (so partitions and outages apply), with kubeconfigs it reads
from Secrets the Topology names. CloudNativePG and VolSync are played by `tests.support.dataplane`.
"""

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from sharedcore import API_GROUP, API_VERSION
from sharedcore.testbed.operators import OPERATOR_NAMESPACE
from tests.conftest import Sites
from tests.support.cluster import Site
from tests.support.dataplane import DataPlaneDouble
from tests.support.operator import OperatorProcess, install_crds, service_account_kubeconfig

RESYNC = 4.0
HEARTBEAT, LEASE = 1, 6
ADDRESSES = {"danang": "203.0.113.10", "quangnam": "203.0.113.20"}
SERVICE_DOMAIN = "svc.clusterset.local"
WITNESS_SECRET = "sharedcore-witness"


def peer_secret(site: str) -> str:
    return f"sharedcore-peer-{site}"


def topology() -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "Topology",
        "metadata": {"name": "default"},
        "spec": {
            "sites": [
                {
                    "name": name,
                    "kubeconfigSecretRef": {"name": peer_secret(name), "namespace": OPERATOR_NAMESPACE},
                    "ingressAddress": address,
                    "serviceDomain": SERVICE_DOMAIN,
                }
                for name, address in ADDRESSES.items()
            ],
            "preferredPrimary": "danang",
            "witness": {"kubeconfigSecretRef": {"name": WITNESS_SECRET, "namespace": OPERATOR_NAMESPACE}},
            "failover": {
                "mode": "Manual",
                "heartbeatIntervalSeconds": HEARTBEAT,
                "leaseDurationSeconds": LEASE,
            },
        },
    }


def link_kubeconfig(site: Site, target: Site, operator_kubeconfig: Path) -> str:
    """How `site` reaches `target`: through the link proxy, as `target`'s operator ServiceAccount."""
    config = yaml.safe_load(site.peer_kubeconfig(target.name).read_text())
    token = yaml.safe_load(operator_kubeconfig.read_text())["users"][0]["user"]["token"]
    config["users"] = [{"name": "operator", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "operator"
    return str(yaml.safe_dump(config))


def put_secret(site: Site, name: str, kubeconfig: str) -> None:
    body = {
        "metadata": {"name": name, "namespace": OPERATOR_NAMESPACE},
        "stringData": {"kubeconfig": kubeconfig},
    }
    try:
        site.core.create_namespaced_secret(OPERATOR_NAMESPACE, body)
    except client.ApiException as error:
        if error.status != 409:
            raise
        site.core.replace_namespaced_secret(name, OPERATOR_NAMESPACE, body)


@dataclass
class Pair:
    danang: Site
    quangnam: Site
    witness: Site
    operators: dict[str, OperatorProcess]
    doubles: dict[str, DataPlaneDouble]
    links: dict[tuple[str, str], str]  # (site, target) → kubeconfig text
    started: float  # monotonic time the operators were started


@contextlib.contextmanager
def running_pair(sites: Sites, directory: Path) -> Iterator[Pair]:
    """Both sites' operators running with the Topology (and the data-plane doubles); on the way out, nothing
    a later module's sites could mistake for their own: no Topology, no Lease, no Failover."""
    own = {site.name: service_account_kubeconfig(site, directory) for site in sites}
    workload_sites = (sites.danang, sites.quangnam)
    links = {}
    for site in workload_sites:
        install_crds(site)
        other = sites.quangnam if site is sites.danang else sites.danang
        links[(site.name, other.name)] = link_kubeconfig(site, other, own[other.name])
        links[(site.name, "witness")] = link_kubeconfig(site, sites.witness, own["witness"])
        put_secret(site, peer_secret(other.name), links[(site.name, other.name)])
        put_secret(site, WITNESS_SECRET, links[(site.name, "witness")])
        site.custom.create_cluster_custom_object(API_GROUP, API_VERSION, "topologies", topology())
    doubles = {site.name: DataPlaneDouble(site) for site in workload_sites}
    operators = {
        site.name: OperatorProcess(
            site,
            own[site.name],
            directory / f"{site.name}.log",
            args=(
                "--all-namespaces",
                "--resync-seconds",
                str(RESYNC),
                "--prometheus-url",
                doubles[site.name].prometheus_url,
                "--lag-poll-seconds",
                "1",
            ),
        )
        for site in workload_sites
    }
    for double in doubles.values():
        double.start()
    started = time.monotonic()
    for process in operators.values():
        process.start()
    try:
        for process in operators.values():
            process.wait_ready(timeout=120)
        yield Pair(sites.danang, sites.quangnam, sites.witness, operators, doubles, links, started)
    finally:
        for process in operators.values():
            process.stop()
        for double in doubles.values():
            double.stop()
        for site in workload_sites:  # the next module may run a single site: leave no Topology behind
            site.custom.delete_cluster_custom_object(API_GROUP, API_VERSION, "topologies", "default")
            site.custom.delete_collection_cluster_custom_object(API_GROUP, API_VERSION, "failovers")
            for name in ("danang", "quangnam"):
                _delete_lease(site, f"sharedcore-heartbeat-{name}")
        _delete_lease(sites.witness, "sharedcore-active")


def _delete_lease(site: Site, name: str) -> None:
    try:
        client.CoordinationV1Api(site.api).delete_namespaced_lease(name, OPERATOR_NAMESPACE)
    except client.ApiException as error:
        if error.status != 404:
            raise


def topology_status(site: Site) -> dict[str, Any]:
    body = site.custom.get_cluster_custom_object(API_GROUP, API_VERSION, "topologies", "default")
    return dict(body.get("status") or {})


def site_entry(site: Site, name: str) -> dict[str, Any]:
    return next((s for s in topology_status(site).get("sites", []) if s["name"] == name), {})


def lease(site: Site, name: str) -> Any:
    return client.CoordinationV1Api(site.api).read_namespaced_lease(name, OPERATOR_NAMESPACE)


def metric(process: OperatorProcess, series: str, /, **labels: str) -> float | None:
    return process.metrics().get((series, tuple(sorted(labels.items()))))
