"""Where a SharedService is being rendered: the site, its role and, for two-site services, the peer."""

from __future__ import annotations

from dataclasses import dataclass

from sharedcore.api import Role


@dataclass(frozen=True)
class PeerSite:
    """The other site of the pair.

    `service_domain` is the DNS suffix under which the peer's Services are reachable from this site,
    e.g. "svc.clusterset.local" with Multi-Cluster Services (the Services must be exported there).
    """

    name: str
    service_domain: str


@dataclass(frozen=True)
class SiteContext:
    """The site a render is for. `ingress_address` is where this site's ingress controller answers."""

    name: str
    role: Role
    epoch: int
    ingress_address: str | None = None
    peer: PeerSite | None = None
