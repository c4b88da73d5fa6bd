"""Topology: the two sites, which of them is preferred, and how failover between them is decided."""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, StrictBool, StrictFloat, StrictInt

from sharedcore import SYSTEM_NAMESPACE
from sharedcore.api.common import (
    Conditions,
    CrdInfo,
    Model,
    PrinterColumn,
    Resource,
    Role,
    SecretKeyRef,
    defaulted,
)
from sharedcore.api.formats import (
    BANDWIDTH,
    DnsLabel,
    DnsServer,
    DnsSubdomain,
    Host,
    HostPattern,
    ImageRepository,
    MicroTime,
    Quantity,
    SecretKey,
)
from sharedcore.api.validation import AS_SET, keyed_by, rule


class FailoverMode(enum.StrEnum):
    """Who decides to fail over."""

    MANUAL = "Manual"
    AUTOMATIC = "Automatic"


class FailbackMode(enum.StrEnum):
    """Who decides to move back to the preferred primary."""

    MANUAL = "Manual"
    AUTOMATIC = "Automatic"


class KubeconfigSecretRef(SecretKeyRef):
    """A kubeconfig in a Secret of the operator's namespace sharedcore-system."""

    key: SecretKey = "kubeconfig"
    """Key in the Secret's data that holds the kubeconfig."""

    @rule(
        f"self.namespace == '{SYSTEM_NAMESPACE}'",
        message=f"kubeconfig Secrets must be in the namespace {SYSTEM_NAMESPACE}: the operator reads "
        "credentials only from its own namespace, where only its administrators can write",
        field_path=".namespace",
    )
    def _in_system_namespace(self) -> bool:
        return self.namespace == SYSTEM_NAMESPACE


class SiteCapacity(Model):
    """What a site can hold: a SharedService whose storage would not fit at both sites is not rendered."""

    storage: Quantity
    """Storage the services may take at this site (its SAN), e.g. 100Ti. Each service counts at both sites,
    the standby holding a full copy: database instances x database.storage, plus files.size."""
    cpu: Quantity | None = None
    """CPU of the site's servers, e.g. 160; reported only."""
    memory: Quantity | None = None
    """Memory of the site's servers, e.g. 1280Gi; reported only."""


class Site(Model):
    """A Kubernetes cluster that runs the shared services."""

    name: DnsLabel
    """Name of the site, e.g. danang."""
    kubeconfig_secret_ref: KubeconfigSecretRef
    """Where the operator of the other site finds the kubeconfig to reach this site."""
    ingress_address: Host
    """IPv4 address or host name that DNS points the services' hosts at while this site is active."""
    service_domain: DnsSubdomain = "svc.clusterset.local"
    """DNS suffix under which this site's Services are reachable from the other site."""
    capacity: SiteCapacity | None = None
    """What the site can hold; nothing is refused for room when unset."""


class Witness(Model):
    """A third cluster that holds the lease deciding which site may be active."""

    kubeconfig_secret_ref: KubeconfigSecretRef
    """Where the operators find the kubeconfig to reach the witness."""


class FailoverPolicy(Model):
    """How failures are detected and who decides to fail over and back."""

    mode: FailoverMode = FailoverMode.MANUAL
    """Manual: an operator creates a Failover. Automatic: the standby site takes over when the active site's
    lease at the witness expires; requires spec.witness."""
    heartbeat_interval_seconds: StrictInt = Field(default=2, ge=1, le=60)
    """Seconds between two heartbeats of a site."""
    lease_duration_seconds: StrictInt = Field(default=15, ge=3, le=600)
    """Seconds without a heartbeat after which a site's lease expires; at least 3 heartbeats."""
    failback: FailbackMode = FailbackMode.MANUAL
    """Manual: the services stay at the site they failed over to. Automatic: they move back to
    spec.preferredPrimary once it has been healthy for failbackHoldSeconds."""
    failback_hold_seconds: StrictInt = Field(default=300, ge=0, le=86400)
    """Seconds the preferred primary must stay healthy before an automatic failback."""
    # No default: a defaulted field would appear in every stored Topology the moment the CRD is upgraded,
    # before the operators are, and an older operator refuses fields it does not know.
    accept_split_brain_risk: StrictBool | None = None
    """Without spec.witness only. Unset or false: an active site that has not heard its peer for two
    thirds of leaseDurationSeconds fences itself (no writer until it hears the peer again), so that a Failover
    at the peer never meets a second writer. True: it stays active however long it is cut off, accepting
    that a Failover created at the peer during a partition makes both sites write (split brain)."""

    @rule(
        "self.leaseDurationSeconds >= 3 * self.heartbeatIntervalSeconds",
        message="leaseDurationSeconds must be at least 3 times heartbeatIntervalSeconds, so that one late "
        "heartbeat does not expire the lease",
        field_path=".leaseDurationSeconds",
    )
    def _lease_outlasts_heartbeats(self) -> bool:
        return self.lease_duration_seconds >= 3 * self.heartbeat_interval_seconds


class ReplicationPolicy(Model):
    """What replication from the active site may bring into this site: checked by the active site before
    copying a SharedService, and by this site's operator before rendering a copy."""

    allowed_image_repositories: Annotated[list[ImageRepository], Field(max_length=64), AS_SET] = Field(
        default=[]
    )
    """Image repositories a copied SharedService's spec.image may name: one of these or below one (the
    repository registry.danang.gov.vn/sharedcore also allows registry.danang.gov.vn/sharedcore/mirror).
    Empty: any. The platforms' own images (spec.image unset) are always allowed."""
    allowed_ingress_hosts: Annotated[list[HostPattern], Field(max_length=64), AS_SET] = Field(default=[])
    """Host names a copied SharedService's spec.ingress.host may have: a name, or *.domain for any name
    below domain. Empty: any."""


class Link(Model):
    """A link between the two data centers that replication uses."""

    name: DnsLabel
    """Name of the link, e.g. wan-1."""
    bandwidth: str = Field(max_length=16, pattern=BANDWIDTH)
    """Its bandwidth, in Mbps or Gbps, e.g. 10Gbps."""
    replication_percent: StrictInt = Field(default=90, ge=1, le=100)
    """The share of it that replication may use, in percent."""


DEFAULT_RECORD_TTL_SECONDS = 30


class CityDns(Model):
    """The city's DNS: the authoritative servers for the services' public names, which ExternalDNS at each
    site updates and citizens' resolvers ask."""

    servers: Annotated[list[DnsServer], Field(min_length=1, max_length=4), AS_SET]
    """Addresses of the authoritative servers (address or host name, optionally :port), as this site
    reaches them. The Redirect step of a Failover waits until every one answers each service's host with
    the new site's ingressAddress; this site reports in the condition CityDNSReachable whether it
    reaches them."""
    ttl_seconds: StrictInt = Field(default=DEFAULT_RECORD_TTL_SECONDS, ge=1, le=3600)
    """TTL of the services' DNS records, unless a SharedService sets spec.ingress.ttlSeconds; never more
    than a service's objectives.rtoSeconds (a longer one is cut to it). Resolvers keep the old site's
    address for up to this long after a failover."""


class TopologySpec(Model):
    """The sites and the failover policy."""

    sites: Annotated[list[Site], Field(min_length=2, max_length=2), keyed_by("name")]
    """The two sites."""
    preferred_primary: DnsLabel
    """Site that is active when both are healthy; one of sites."""
    witness: Witness | None = None
    """Third cluster that arbitrates between the sites; required for automatic failover."""
    failover: FailoverPolicy = defaulted(FailoverPolicy)
    """How failures are detected and acted upon."""
    replication: ReplicationPolicy = defaulted(ReplicationPolicy)
    """What replication may copy into this site."""
    links: Annotated[list[Link], Field(max_length=8), keyed_by("name")] = Field(default=[])
    """The links between the sites: what the copies of the data may use. With them, each SharedService
    reports ReplicationFeasible: how long its first full copy takes, and whether its RPO can hold."""
    # No default, for the reason given at acceptSplitBrainRisk.
    dns: CityDns | None = None
    """The city's DNS servers and the services' record TTL. Unset: Redirect waits only for the DNSEndpoint
    objects, and records get a TTL of 30 seconds."""

    @rule(
        "self.sites.exists(s, s.name == self.preferredPrimary)",
        message="spec.preferredPrimary must name one of spec.sites",
        field_path=".preferredPrimary",
    )
    def _preferred_primary_is_a_site(self) -> bool:
        return any(site.name == self.preferred_primary for site in self.sites)

    @rule(
        "self.failover.mode != 'Automatic' || has(self.witness)",
        message="Automatic failover requires spec.witness: without a third party, a site cut off from its "
        "peer cannot tell the peer's failure from its own isolation",
        field_path=".witness",
        reason="FieldValueRequired",
    )
    def _automatic_has_witness(self) -> bool:
        return self.failover.mode != FailoverMode.AUTOMATIC or self.witness is not None

    @rule(
        "!has(self.witness) || !has(self.failover.acceptSplitBrainRisk) "
        "|| !self.failover.acceptSplitBrainRisk",
        message="spec.failover.acceptSplitBrainRisk applies only without spec.witness: with a witness, the "
        "witness Lease decides which site may be active",
        field_path=".failover.acceptSplitBrainRisk",
    )
    def _split_brain_risk_only_without_witness(self) -> bool:
        return self.witness is None or not self.failover.accept_split_brain_risk


class SiteStatus(Model):
    """What the operator of the reporting site last saw of a site."""

    name: DnsLabel
    """Name of the site."""
    reachable: StrictBool | None = None
    """Whether the reporting site's last heartbeat to this site's API server got through."""
    last_heartbeat_time: MicroTime | None = None
    """When this site's latest heartbeat had arrived at the reporting site (by the reporting site's clock,
    never the heartbeat's own renewTime: the sites' clocks may differ), as of the last change of this
    status: rewriting the status at every heartbeat would be a write every few seconds. The Lease
    sharedcore-heartbeat-<site> in the operator's namespace has the live time."""
    role: Role | None = None
    """Role of the site, as its heartbeats say."""
    epoch: StrictInt | None = Field(default=None, ge=0)
    """Failover epoch the site acts under, as its heartbeats say."""


class LastFailover(Model):
    """The last completed Failover."""

    name: DnsSubdomain
    """Name of the Failover object."""
    completion_time: AwareDatetime | None = None
    """When it completed."""
    rto_seconds: StrictFloat | None = Field(default=None, ge=0)
    """Seconds it took until the services answered again."""
    data_loss_window_seconds: StrictFloat | None = Field(default=None, ge=0)
    """Seconds of changes it may have lost, at worst over all services."""


class SiteCapacityStatus(Model):
    """The storage the SharedServices commit at a site, against what it can hold."""

    site: DnsLabel
    """The site."""
    storage: str | None = Field(default=None, max_length=64)
    """Its storage capacity, as the spec declares it; unset: none declared."""
    committed: str = Field(max_length=64)
    """Storage committed by the services rendered or admitted, e.g. 85Ti."""
    committed_bytes: StrictInt = Field(ge=0)
    """The same in bytes."""
    used_percent: StrictFloat | None = Field(default=None, ge=0)
    """Committed storage as a percentage of the capacity."""
    services: StrictInt = Field(ge=0)
    """Services counted."""
    refused: Annotated[list[Annotated[str, Field(max_length=317)]], Field(max_length=64)] = Field(
        default_factory=list
    )
    """Services not rendered for want of room (CapacityExceeded), as namespace/name; the first 64."""


class TopologyStatus(Model):
    """The observed state of the sites."""

    observed_generation: StrictInt | None = Field(default=None, ge=0)
    """The .metadata.generation that this status describes."""
    conditions: Conditions = Field(default_factory=list)
    """Conditions of the topology."""
    site: DnsLabel | None = None
    """The site this cluster is, as its operator was told (`--site`): where this status is written."""
    active_site: DnsLabel | None = None
    """Site that is active."""
    epoch: StrictInt | None = Field(default=None, ge=0)
    """Failover epoch: it grows with each failover, and a site acting under an older epoch is fenced."""
    sites: Annotated[list[SiteStatus], Field(max_length=2), keyed_by("name")] = Field(default_factory=list)
    """State of each site."""
    last_failover: LastFailover | None = None
    """The last completed failover."""
    capacity: Annotated[list[SiteCapacityStatus], Field(max_length=2), keyed_by("site")] = Field(
        default_factory=list
    )
    """Storage committed at each site against its capacity, as this site computes it."""
    peer_fencing_seconds: StrictFloat | None = Field(default=None, ge=0)
    """How long the other site took to fence its data plane (databases demoted, DNS records withdrawn) at the
    last switchover from it, as this site measured it. Taking over from it, this site waits this much
    beyond its Lease (or its silence, without a witness), so that it never promotes while the other site's
    databases may still write."""


class Topology(Resource):
    """The sites that run the shared services and how they fail over; a cluster has exactly one, named
    default."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="topologies",
        short_name="topo",
        namespaced=False,
        columns=(
            PrinterColumn("Active", ".status.activeSite"),
            PrinterColumn("Epoch", ".status.epoch", "integer"),
            PrinterColumn("Mode", ".spec.failover.mode"),
        ),
    )

    kind: Literal["Topology"] = "Topology"
    spec: TopologySpec
    """The sites and the failover policy."""
    status: TopologyStatus | None = None
    """The observed state of the sites."""

    @rule(
        "self.metadata.name == 'default'",
        message="the Topology must be named default: a cluster has exactly one",
    )
    def _named_default(self) -> bool:
        return self.metadata.name == "default"
