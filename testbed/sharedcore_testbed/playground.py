"""The whole pair in one command, for people who want to try sharedcore by hand:

    sharedcore-testbed up --dir DIR --nodes real --pair danang quangnam witness

brings up the three planes, real nodes, CloudNativePG and a Prometheus at both sites, the city DNS with
ExternalDNS at both sites, VolSync's stand-in CRDs, both operators from the chart (their image built by
`make images`), each reaching the other site and the witness as the peer identity it is granted there and
reading lag from its site's Prometheus, and the Topology (Automatic mode, the API's defaults, the city DNS as
each site reaches it). `sharedcore-testbed down --dir DIR` ends it.
"""

from collections.abc import Sequence
from pathlib import Path

from sharedcore_testbed import Testbed, chart, citydns, cnpg
from sharedcore_testbed.binaries import source_root
from sharedcore_testbed.clients import SiteClients
from sharedcore_testbed.operators import install_crds
from sharedcore_testbed.pair import ADDRESSES, topology

# VolSync's CRDs are still the minimal stand-ins (its module is not served here); the testbed installs
# ExternalDNS's own with the city DNS.
STAND_IN_CRDS = ("volsync-replicationsources.yaml", "volsync-replicationdestinations.yaml")


def _stand_in_crds() -> list[Path]:
    return [source_root() / "tests" / "fixtures" / "crds" / name for name in STAND_IN_CRDS]


def up(directory: Path, names: Sequence[str], node_count: int) -> list[str]:
    """Start the pair; return what to tell the person who asked for it."""
    sites = tuple(names)
    if len(sites) != 3 or set(sites[:2]) != set(ADDRESSES):
        raise ValueError(f"--pair takes the two sites and the witness: {' '.join(ADDRESSES)} witness")
    bed = Testbed(directory)
    bed.up(sites, real=sites[:2], node_count=node_count, monitored=True, city_dns=True)
    danang, quangnam, witness = (SiteClients(name, bed) for name in sites)
    for site in (danang, quangnam):
        cnpg.install(site.kubeconfig)
        install_crds(site.kubeconfig, *_stand_in_crds())
        chart.install_operator(site, {"operator.prometheusUrl": bed.prometheus_url(site.name)})
    chart.connect_pair(danang, quangnam, witness, topology(mode="Automatic"))
    nameserver = citydns.nameserver(citydns.resolv_conf(bed.directory))
    return [
        *(f"{name}: export KUBECONFIG={bed.kubeconfig(name)}" for name in sites),
        "",
        f"Both operators run in namespace sharedcore-system at {sites[0]} and {sites[1]} (Automatic mode),",
        f"CloudNativePG in {cnpg.NAMESPACE}; each site's Prometheus: "
        + ", ".join(f"{name} {bed.prometheus_url(name)}" for name in sites[:2]),
        f"Try: kubectl --kubeconfig {bed.kubeconfig(sites[0])} get topology,sharedservices -A",
        f"The city DNS: {citydns.resolv_conf(bed.directory)} (e.g. dig @{nameserver} <a service's host>)",
        f"Lose a site: sharedcore-testbed stop --dir {directory} {sites[0]}   (start brings it back)",
        f"Cut the link: sharedcore-testbed partition --dir {directory} {sites[0]} {sites[1]}   (heal)",
        f"End it all:   sharedcore-testbed down --dir {directory}",
    ]
