"""Where a SharedService is being rendered: the site, its role and, for two-site services, the peer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from sharedcore.api import DEFAULT_RECORD_TTL_SECONDS, Role


class ClusterKey(NamedTuple):
    """A database Cluster at this site."""

    namespace: str
    cluster: str


@dataclass(frozen=True)
class PeerSite:
    """The other site of the pair.

    `service_domain` is the DNS suffix under which the peer's Services are reachable from this site,
    e.g. "svc.clusterset.local" with Multi-Cluster Services (the Services must be exported there).
    """

    name: str
    service_domain: str


@dataclass(frozen=True)
class FailoverForm:
    """What a running Failover adds to a site's form.

    `final_sync`: the fenced source keeps its file ReplicationSources and triggers them once more by hand,
    named after the Failover, so the target can tell that sync from a scheduled one. `promotion_tokens`: the
    target promotes each database Cluster with the token CloudNativePG published when the source's Cluster
    was demoted (CloudNativePG then promotes only once it has replayed all the source wrote), by Cluster.
    """

    final_sync: str | None = None
    promotion_tokens: Mapping[ClusterKey, str] = field(default_factory=dict)

    def promotion_token(self, namespace: str, cluster: str) -> str | None:
        return self.promotion_tokens.get(ClusterKey(namespace, cluster))


@dataclass(frozen=True)
class SiteContext:
    """The site a render is for. `ingress_address` is where this site's ingress controller answers."""

    name: str
    role: Role
    epoch: int
    ingress_address: str | None = None
    peer: PeerSite | None = None
    failover: FailoverForm = field(default_factory=FailoverForm)
    record_ttl_seconds: int = DEFAULT_RECORD_TTL_SECONDS  # the Topology's, for services that set none
