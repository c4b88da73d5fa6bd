"""Both sites' operators as users install them: `helm install` of the chart at danang and quangnam (its image
built by `make images`, the namespace enforcing the restricted Pod Security Standard), each reaching the other
site and the witness as the peer identity they grant it, and the Topology. Used by `sharedcore-testbed up
--pair` (the playground) and the real-node tests."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sharedcore_testbed.binaries import source_root
from sharedcore_testbed.clients import SiteClients
from sharedcore_testbed.operators import OPERATOR_NAMESPACE, kubectl, run_tool
from sharedcore_testbed.pair import WITNESS_SECRET, link_kubeconfig, peer_secret, put_secret, with_city_dns

RELEASE = "sharedcore-operator"
TOPOLOGY = ("sharedcore.danang.gov.vn", "v1alpha1", "topologies")


def chart() -> Path:
    return source_root() / "charts" / "sharedcore-operator"


def install_operator(site: SiteClients, values: Mapping[str, str]) -> None:
    """The chart at `site`, `site=<name>` and the given values (`--set` keys) set."""
    kubectl(site.kubeconfig, "create", "namespace", OPERATOR_NAMESPACE)
    kubectl(
        site.kubeconfig,
        "label",
        "namespace",
        OPERATOR_NAMESPACE,
        "pod-security.kubernetes.io/enforce=restricted",
    )
    settings = [
        arg for key, value in {"site": site.name, **values}.items() for arg in ("--set", f"{key}={value}")
    ]
    result = run_tool(
        "helm", site.kubeconfig, "install", RELEASE, str(chart()), "-n", OPERATOR_NAMESPACE, *settings
    )
    if result.returncode != 0:
        raise RuntimeError(f"helm install at {site.name}: {result.stderr.strip()}")


def connect_pair(
    danang: SiteClients, quangnam: SiteClients, witness: SiteClients, topology: dict[str, Any]
) -> None:
    """At each site: the other site's and the witness's kubeconfig Secrets (as the peer identity each grants
    it, through the link proxies) and the Topology."""
    for site, other in ((danang, quangnam), (quangnam, danang)):
        put_secret(site, peer_secret(other.name), link_kubeconfig(site, other))
        put_secret(site, WITNESS_SECRET, link_kubeconfig(site, witness))
        site.custom.create_cluster_custom_object(*TOPOLOGY, with_city_dns(site, topology))


def uninstall(site: SiteClients) -> None:
    run_tool("helm", site.kubeconfig, "uninstall", RELEASE, "-n", OPERATOR_NAMESPACE, "--wait")
    kubectl(site.kubeconfig, "delete", "topology", "default", "--wait=false", "--ignore-not-found")
