"""Two sites and a witness on the testbed's planes, with one operator process per site.

Each operator is authenticated as its own ServiceAccount at its own site and reaches the other site and the
witness only through the testbed's link proxies (so partitions and outages apply), as the identity
`sharedcore peer-identity` ships for it there, with kubeconfigs it reads from Secrets the Topology names (and,
when the testbed runs the city DNS, the Topology names its server as each site reaches it); a
namespace is replicated into once opted in at both sites (`opt_in`). CloudNativePG, VolSync and Prometheus
are played at each site by `sharedcore_testbed.dataplane`. Used by the two-site tests, `make demo` and the
benchmarks:

    sites = (SiteClients(name, bed) for name in ("danang", "quangnam", "witness"))
    pair = prepare_pair(*sites, directory, crds=[...], topology=topology(mode="Automatic"), resync=5)
    with pair.running():
        pair.operators["danang"].stop(signal.SIGKILL)
"""

import base64
import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

import yaml
from kubernetes import client

from sharedcore import API_GROUP, API_VERSION, rbac
from sharedcore.render.output import to_yaml
from sharedcore.replication.content import OPT_IN, REPLICATE_LABEL
from sharedcore.sites.pair_memory import CONFIG_MAP as PAIR_MEMORY
from sharedcore_testbed.clients import SiteClients, as_object
from sharedcore_testbed.dataplane import DataPlaneDouble
from sharedcore_testbed.operators import (
    OPERATOR_NAMESPACE,
    OperatorProcess,
    install_crds,
    kubectl,
    service_account_kubeconfig,
)

ADDRESSES = {"danang": "203.0.113.10", "quangnam": "203.0.113.20"}
SERVICE_DOMAIN = "svc.clusterset.local"
WITNESS_SECRET = "sharedcore-witness"
WITNESS_LEASE = "sharedcore-active"
TOPOLOGY = (API_GROUP, API_VERSION, "topologies", "default")
REPLICATE = {REPLICATE_LABEL: "true"}
S = TypeVar("S", bound=SiteClients)


def peer_secret(site: str) -> str:
    return f"sharedcore-peer-{site}"


def heartbeat_lease(site: str) -> str:
    return f"sharedcore-heartbeat-{site}"


def topology(
    *,
    mode: str = "Manual",
    heartbeat: int = 2,
    lease: int = 15,
    addresses: Mapping[str, str] = ADDRESSES,
    **policy: Any,
) -> dict[str, Any]:
    """The Topology both sites get: danang preferred (each site's ingress address from `addresses`), the
    witness, and the failover policy (`mode` Manual/Automatic, heartbeatIntervalSeconds,
    leaseDurationSeconds, and any other policy field)."""
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
                for name, address in addresses.items()
            ],
            "preferredPrimary": "danang",
            "witness": {"kubeconfigSecretRef": {"name": WITNESS_SECRET, "namespace": OPERATOR_NAMESPACE}},
            "failover": {
                "mode": mode,
                "heartbeatIntervalSeconds": heartbeat,
                "leaseDurationSeconds": lease,
                **policy,
            },
        },
    }


def link_kubeconfig(site: SiteClients, target: SiteClients) -> str:
    """How `site` reaches `target`: through the link proxy, as the identity `sharedcore peer-identity` ships
    for `site` at `target` (applied there by its administrator), never as `target`'s own operator."""
    kubectl(
        target.kubeconfig,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        stdin=to_yaml(rbac.peer_identity(target.name, site.name)),
    )
    token = kubectl(
        target.kubeconfig,
        "create",
        "token",
        rbac.peer_account(site.name),
        "-n",
        OPERATOR_NAMESPACE,
        "--duration=24h",
    ).strip()
    cluster = yaml.safe_load(site.peer_kubeconfig(target.name).read_text())["clusters"][0]["cluster"]
    ca = base64.b64decode(cluster["certificate-authority-data"])
    return str(yaml.safe_dump(rbac.peer_kubeconfig(target.name, site.name, cluster["server"], ca, token)))


def put_secret(site: SiteClients, name: str, kubeconfig: str) -> None:
    """Create or replace a kubeconfig Secret in the operator's namespace at `site`."""
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, namespace=OPERATOR_NAMESPACE),
        string_data={"kubeconfig": kubeconfig},
    )
    try:
        site.core.create_namespaced_secret(OPERATOR_NAMESPACE, body)
    except client.ApiException as error:
        if error.status != 409:
            raise
        site.core.replace_namespaced_secret(name, OPERATOR_NAMESPACE, body)


def opt_in(site: SiteClients, namespace: str) -> None:
    """What an administrator does at `site` to invite `namespace` to replication: let the other site's peer
    identity write its copies there, then label the namespace opted in (creating it if need be). Replication
    writes only into namespaces invited at both sites, and never creates one."""
    try:
        site.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    except client.ApiException as error:
        if error.status != 409:
            raise
    for other in (name for name in ADDRESSES if site.name in ADDRESSES and name != site.name):
        kubectl(
            site.kubeconfig,
            "apply",
            "--server-side",
            "-f",
            "-",
            stdin=to_yaml([rbac.replication_binding(other, namespace)]),
        )
    site.core.patch_namespace(namespace, {"metadata": {"labels": OPT_IN}})


def create_services(site: S, standby: S, bodies: Sequence[dict[str, Any]]) -> None:
    """At the active `site`: the services' namespaces (opted in to replication at both sites), their TLS
    Secrets (as cert-manager would issue them there, labelled to follow their service to the standby) and the
    services."""
    for namespace in sorted({b["metadata"]["namespace"] for b in bodies}):
        for where in (site, standby):
            opt_in(where, namespace)
    for body in bodies:
        namespace = body["metadata"]["namespace"]
        tls = (body["spec"].get("ingress") or {}).get("tlsSecretName")
        if tls:
            secret = client.V1Secret(
                type="kubernetes.io/tls",
                metadata=client.V1ObjectMeta(name=tls, namespace=namespace, labels=REPLICATE),
                data={"tls.crt": "", "tls.key": ""},
            )
            try:
                site.core.create_namespaced_secret(namespace, secret)
            except client.ApiException as error:
                if error.status != 409:
                    raise
        site.custom.create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "sharedservices", body)


def topology_status(site: SiteClients) -> dict[str, Any]:
    body = as_object(site.custom.get_cluster_custom_object(*TOPOLOGY))
    return dict(body.get("status") or {})


def site_entry(site: SiteClients, name: str) -> dict[str, Any]:
    """What `site`'s Topology status records of site `name`."""
    return next((s for s in topology_status(site).get("sites", []) if s["name"] == name), {})


def lease(site: SiteClients, name: str) -> Any:
    return site.coordination.read_namespaced_lease(name, OPERATOR_NAMESPACE)


def _absent(delete: Any, *args: str) -> None:
    """Delete something that may be gone already."""
    try:
        delete(*args)
    except client.ApiException as error:
        if error.status != 404:
            raise


def _delete_lease(site: SiteClients, name: str) -> None:
    _absent(site.coordination.delete_namespaced_lease, name, OPERATOR_NAMESPACE)


@dataclass
class Pair(Generic[S]):
    danang: S
    quangnam: S
    witness: S
    operators: dict[str, OperatorProcess]
    doubles: dict[str, DataPlaneDouble]
    links: dict[tuple[str, str], str]  # (site, target) → kubeconfig text
    started: float  # monotonic time the operators were started

    @property
    def sites(self) -> tuple[S, S]:
        """The two workload sites (not the witness)."""
        return self.danang, self.quangnam

    def stop(self) -> None:
        """Stop both operators (SIGTERM, if still running) and the data-plane doubles."""
        for process in self.operators.values():
            process.stop()
        for double in self.doubles.values():
            double.stop()

    def forget(self) -> None:
        """Remove what a later single-site user of the same planes could mistake for its own: the
        Topology, the pair each site remembers, every Failover, the heartbeat Leases and the witness
        Lease."""
        for site in self.sites:
            _absent(site.custom.delete_cluster_custom_object, *TOPOLOGY)
            _absent(site.core.delete_namespaced_config_map, PAIR_MEMORY, OPERATOR_NAMESPACE)
            site.custom.delete_collection_cluster_custom_object(API_GROUP, API_VERSION, "failovers")
            for name in ADDRESSES:
                _delete_lease(site, heartbeat_lease(name))
        _delete_lease(self.witness, WITNESS_LEASE)

    @contextlib.contextmanager
    def running(self, *, forget: bool = True, ready_timeout: float = 120) -> Iterator[Self]:
        """Both operators running (and the data-plane doubles), ready; on the way out they are stopped and,
        with `forget`, the sites left with no Topology, Lease or Failover."""
        for double in self.doubles.values():
            double.start()
        self.started = time.monotonic()
        try:
            for process in self.operators.values():
                process.start()
            for process in self.operators.values():
                process.wait_ready(timeout=ready_timeout)
            yield self
        finally:
            self.stop()
            if forget:
                self.forget()


def with_city_dns(site: SiteClients, topology: dict[str, Any]) -> dict[str, Any]:
    """`topology` for `site`: naming the city DNS as the site reaches it, when the testbed runs one."""
    if site.bed.city_dns() is None:
        return topology
    dns = {**topology["spec"].get("dns", {}), "servers": [site.bed.city_dns_server(site.name)]}
    return {**topology, "spec": {**topology["spec"], "dns": dns}}


def prepare_pair(
    danang: S,
    quangnam: S,
    witness: S,
    directory: Path,
    *,
    crds: Sequence[Path],
    topology: dict[str, Any],
    resync: float,
    lag_poll: float = 1.0,
    prometheus: dict[str, str] | None = None,
) -> Pair[S]:
    """At both sites: CRDs, the operator's ServiceAccount, the peer and witness kubeconfig Secrets and the
    Topology; the operator processes (logs in `directory`) and the doubles, created but not started.

    With `prometheus` (site → URL, possibly none) the data plane is real (CloudNativePG runs at both sites,
    `sharedcore_testbed.cnpg`): no double plays it, and each operator reads lag from its site's URL."""
    own = {
        site.name: service_account_kubeconfig(
            site.bed, site.name, directory / f"{site.name}-operator.kubeconfig"
        )
        for site in (danang, quangnam)
    }
    links = {}
    for site, other in ((danang, quangnam), (quangnam, danang)):
        install_crds(site.kubeconfig, *crds)
        for target in (other, witness):
            links[(site.name, target.name)] = link_kubeconfig(site, target)
        put_secret(site, peer_secret(other.name), links[(site.name, other.name)])
        put_secret(site, WITNESS_SECRET, links[(site.name, witness.name)])
        site.custom.create_cluster_custom_object(*TOPOLOGY[:3], with_city_dns(site, topology))
    doubles = {site.name: DataPlaneDouble(site) for site in (danang, quangnam)} if prometheus is None else {}
    urls = prometheus if prometheus is not None else {n: d.prometheus_url for n, d in doubles.items()}
    operators = {
        site.name: OperatorProcess(
            site.name,
            own[site.name],
            directory / f"{site.name}.log",
            args=(
                "--all-namespaces",
                "--resync-seconds",
                str(resync),
                *(("--prometheus-url", urls[site.name]) if site.name in urls else ()),
                "--lag-poll-seconds",
                str(lag_poll),
            ),
        )
        for site in (danang, quangnam)
    }
    return Pair(danang, quangnam, witness, operators, doubles, links, started=0.0)
