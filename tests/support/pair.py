"""Two sites and a witness for tests: `sharedcore_testbed.pair` on the session's planes, with the tests'
`Site` handles and fast timings (heartbeat 1 s, lease 6 s, resync 4 s), the failover policy Manual."""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sharedcore_testbed import pair as two_sites
from sharedcore_testbed.operators import metric
from sharedcore_testbed.pair import (
    ADDRESSES,
    SERVICE_DOMAIN,
    WITNESS_SECRET,
    lease,
    link_kubeconfig,
    opt_in,
    peer_secret,
    put_secret,
    site_entry,
    topology_status,
)
from tests.conftest import Sites
from tests.support.cluster import Site
from tests.support.operator import CRD_DIRS

__all__ = [
    "ADDRESSES",
    "HEARTBEAT",
    "LEASE",
    "RESYNC",
    "SERVICE_DOMAIN",
    "WITNESS_SECRET",
    "Pair",
    "lease",
    "link_kubeconfig",
    "metric",
    "opt_in",
    "peer_secret",
    "put_secret",
    "running_pair",
    "site_entry",
    "topology",
    "topology_condition",
    "topology_status",
]

RESYNC = 4.0
HEARTBEAT, LEASE = 1, 6
Pair = two_sites.Pair[Site]


def topology() -> dict[str, Any]:
    return two_sites.topology(heartbeat=HEARTBEAT, lease=LEASE)


def topology_condition(site: Site, type_: str) -> dict[str, Any]:
    """The Topology's condition `type_` as `site` reports it ({} when absent)."""
    conditions = topology_status(site).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


@contextlib.contextmanager
def running_pair(sites: Sites, directory: Path, **policy: Any) -> Iterator[Pair]:
    """Both sites' operators running with the Topology (the tests' timings, and any other failover `policy`:
    mode=...) and the data-plane doubles; on the way out, nothing a later module's sites could mistake for
    their own: no Topology, no Lease, no Failover."""
    prepared = two_sites.prepare_pair(
        sites.danang,
        sites.quangnam,
        sites.witness,
        directory,
        crds=CRD_DIRS,
        topology=two_sites.topology(heartbeat=HEARTBEAT, lease=LEASE, **policy),
        resync=RESYNC,
    )
    with prepared.running() as running:
        yield running
