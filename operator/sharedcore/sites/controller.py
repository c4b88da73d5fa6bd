"""This site's place in the pair: the Topology, heartbeats, role and epoch, and the witness Lease.

Three loops, so that a silent peer or witness never delays this site's own work:
- the local loop reads the peer's heartbeat in this cluster, decides the role (`sites.state`), records it in
  the Topology status (only when the status changes) and renews this site's heartbeat here;
- the peer loop renews this site's heartbeat in the peer's cluster and reads the peer's own there;
- the witness loop reads the `sharedcore-active` Lease and renews it while this site holds it.
Each runs every heartbeatIntervalSeconds; what one of them learns wakes the local loop at once.
Until the first decision the site is Fenced: nothing acts on a role that is not known yet.
A usable Topology's pair (the peer, the last epoch) is remembered (`sites.pair_memory`): a Topology that is
deleted, invalid or does not name this site, before or across a restart, leaves the site Fenced in its
standby form, never rendered without its peer. Without a Topology and without a remembered pair the site
is a single Active site at epoch 0 only when run with `--single-site`; otherwise it is Fenced and renders
nothing.
A Failover executing here drives the handover through `announce` (the peer fences itself for it) and
`promote` (this site claims the next epoch); it reads the pair through `observation`.
"""

import asyncio
import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import ValidationError

from sharedcore import Body
from sharedcore.api import DEFAULT_RECORD_TTL_SECONDS, Role, Topology
from sharedcore.kube import conditions
from sharedcore.kube.client import KubeClient
from sharedcore.kube.events import EventRecorder
from sharedcore.kube.patches import merge_patch
from sharedcore.kube.resources import CONFIG_MAPS, LEASES, TOPOLOGIES
from sharedcore.kube.times import rfc3339
from sharedcore.metrics import (
    AUTOMATIC_FAILOVER_READY,
    EPOCH,
    PEER_HEARTBEAT_AGE,
    PEER_SETTINGS_MISMATCH,
    SITE_ROLE,
    TOPOLOGY_UNUSABLE,
)
from sharedcore.render import FailoverForm, PeerSite, SiteContext
from sharedcore.sites import leases, pair_memory, topology_status
from sharedcore.sites.citydns import CONDITION as CITY_DNS_CONDITION
from sharedcore.sites.citydns import CityDnsProbe
from sharedcore.sites.pair_memory import PairMemory
from sharedcore.sites.peers import REMOTE_ERRORS, Peers, describe, explain
from sharedcore.sites.settings import FailoverSettings
from sharedcore.sites.state import (
    Claim,
    Decision,
    Handover,
    Observations,
    SiteState,
    decide,
    fenced,
)
from sharedcore.sites.views import PairObservation, PairView
from sharedcore.sites.witness import RENEW_DEADLINE, WitnessLease

log = logging.getLogger(__name__)
TOPOLOGY_NAME = "default"
WITNESS = "witness"
# Why a site cannot use its Topology (the reason of its Fenced state, a condition, an Event and a metric).
UNUSABLE = (
    "NoTopology",
    "TopologyMissing",
    "TopologyDeleted",
    "TopologyInvalid",
    "SiteNotInTopology",
    "PeerChanged",
    "PairMemoryUnreadable",
)
IDLE_SECONDS = 3600.0  # without a Topology the loops only wait for one to appear (which wakes them)
# What Events about the Topology refer to, whether or not it exists.
TOPOLOGY_REFERENCE = {
    "apiVersion": TOPOLOGIES.api_version,
    "kind": TOPOLOGIES.kind,
    "metadata": {"name": TOPOLOGY_NAME},
}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _revision(body: Body | None) -> int:
    try:
        return int((body or {})["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Pairing:
    """The parts of a valid Topology this site works with."""

    topology: Topology
    peer: str
    context: Callable[[SiteState], SiteContext]
    pair: PairMemory  # what to remember of it (the claim is added once recorded)

    @property
    def interval(self) -> float:
        return float(self.topology.spec.failover.heartbeat_interval_seconds)

    @property
    def duration(self) -> int:
        return self.topology.spec.failover.lease_duration_seconds

    @property
    def settings(self) -> FailoverSettings:
        return FailoverSettings.of(self.topology)


class SiteController:
    def __init__(
        self,
        name: str,
        client: KubeClient,
        *,
        recorder: EventRecorder,
        peers: Peers,
        namespace: str,
        single_site: bool = False,
    ) -> None:
        self.name = name
        self._client, self._recorder, self._peers = client, recorder, peers
        self._namespace = namespace
        self._single_site = single_site  # without a Topology (and no pair remembered): one Active site
        self._listeners: list[Callable[[], None]] = []
        self._body: Body | None = None  # the Topology as last seen
        self._had_topology = False
        self._memory: PairMemory | None = None  # the pair as last remembered (`sites.pair_memory`)
        self._memory_problem: str | None = None  # why the remembered pair cannot be read
        self._where = f"ConfigMap {namespace}/{pair_memory.CONFIG_MAP}"  # the memory, as people find it
        self.state = fenced("Starting", "deciding this site's role")
        self._context = SiteContext(name, Role.FENCED, 0)
        self._hold: Claim | None = None
        self.witness = WitnessLease(name, namespace)
        self._inbound = leases.Freshness()  # the peer's heartbeat in this cluster: does it arrive?
        # The peer's latest heartbeat by where it was read: "inbound" (here), "outbound" (at the peer).
        self._heartbeats: dict[str, leases.Heartbeat] = {}
        # When this site last saw a new heartbeat of the peer saying Active, by this site's clock: the peer's
        # renewTime is by its own clock, which may be skewed, so never compared with this site's times.
        self._peer_active_seen: datetime.datetime | None = None
        self._reachable = False
        self._reach_problem: str | None = "not contacted yet"
        self._reached_at: float | None = None  # when a request to the peer last succeeded
        self._renewed_here: float | None = None  # when this site's heartbeat was last renewed in its cluster
        self._own_failing_since: float | None = None  # since when this site's API server has not answered
        self._handover: Handover | None = None  # a Failover making this site active, announced to the peer
        self._promotion: Claim | None = None  # its Promote step: the claim this site takes
        self._readiness: conditions.Want | None = None  # AutomaticFailoverReady, as `failover` judges it
        self._city_dns = CityDnsProbe()
        self._capacity: list[Body] = []  # Topology.status.capacity, as the services' admission reports it
        self._started = time.monotonic()
        self._wake = asyncio.Event()
        self._wake_peer = asyncio.Event()
        self._wake_witness = asyncio.Event()
        self.settled = asyncio.Event()  # set once the first decision is made: services may render
        self._pairing: Pairing | None = None  # what a usable Topology gives this site to work with
        self._unpaired = self.state  # without one: the state to be in, and why
        self._assess()

    # --- what the rest of the operator sees ---------------------------------------------------------------

    def context(self) -> SiteContext:
        return self._context

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever the site a service renders for changes (role, epoch, peer, address)."""
        self._listeners.append(listener)

    def active(self) -> bool:
        """Whether this site is the active one of a pair (and so replicates to the other): decided so, and
        still with a usable Topology."""
        return self.state.role is Role.ACTIVE and self._pairing is not None

    def pair(self) -> PairView:
        """What a Failover is planned from: the claim recorded here and what is known of the peer now."""
        pairing = self._pairing
        recorded = topology_status.recorded_claim(self._body or {})
        if pairing is None:
            return PairView(self.name, (self.name,), self.state.active_site, self.state.epoch, False, None)
        return PairView(
            site=self.name,
            sites=tuple(site.name for site in pairing.topology.spec.sites),
            active_site=recorded.active_site if recorded else None,
            epoch=recorded.epoch if recorded else 0,
            peer_reachable=self._reachable,
            # Its services stopped answering when it stopped being active, not when its operator fell silent.
            peer_last_active=self._peer_active_seen,
            peer_may_write_seconds=self._takeover_seconds(pairing, self._peer_heartbeat()),
        )

    def peer_name(self) -> str | None:
        return self._pairing.peer if self._pairing else None

    def topology(self) -> Topology | None:
        return self._pairing.topology if self._pairing else None

    def observation(self) -> PairObservation:
        """What a Failover executing here needs to know of the pair now."""
        pairing = self._pairing
        heartbeat = self._peer_heartbeat()
        now = time.monotonic()
        witness = pairing is not None and pairing.topology.spec.witness is not None
        duration = pairing.duration if pairing else 0
        return PairObservation(
            state=self.state,
            peer_role=heartbeat.role if heartbeat else None,
            peer_claim=heartbeat.claim if heartbeat else None,
            peer_reachable=self._reachable,
            peer_current=self._inbound.fresh(now, duration)
            or (self._reached_at is not None and now - self._reached_at < duration),
            peer_silent_seconds=silence
            if (silence := self._silence(now)) is not None
            else now - self._started,
            witness=self.witness.view(now) if witness else None,
            witness_lapsed=witness and self.witness.lapsed(now, duration),
            peer_reason=heartbeat.reason if heartbeat else None,
            takeover_seconds=self._takeover_seconds(pairing, heartbeat) if pairing else self._peer_fencing(),
            peer_settings=heartbeat.settings if heartbeat else None,
        )

    def announce(self, handover: Handover | None) -> None:
        """Tell the peer (in this site's heartbeats) that a Failover is making this site active; None ends
        the handover, and with it any promotion."""
        if handover != self._handover:
            self._handover = handover
            if handover is None:
                self._promotion = None
            self._wake.set()
            self._wake_peer.set()

    def promote(self, claim: Claim) -> None:
        """Claim `claim` (the Failover's next epoch): this site becomes active at it."""
        if claim != self._promotion:
            self._promotion = claim
            self._wake.set()
            self._wake_witness.set()

    def report_readiness(self, want: conditions.Want | None) -> None:
        """Carry the AutomaticFailoverReady condition (None: not applicable here) in the Topology status."""
        if want != self._readiness:
            self._readiness = want
            if want is None:
                AUTOMATIC_FAILOVER_READY.clear()
            else:
                AUTOMATIC_FAILOVER_READY.labels(self.name).set(1 if want.status else 0)
            self._wake.set()

    def report_capacity(self, report: list[Body]) -> None:
        """Carry the storage committed at each site, against its capacity, in the Topology status."""
        if report != self._capacity:
            self._capacity = report
            self._wake.set()

    def _takeover_seconds(self, pairing: Pairing, heartbeat: leases.Heartbeat | None) -> float:
        """The longest Lease duration in play (this site's, the peer's, the witness Lease's), plus the time
        the peer was last measured to take to fence its data plane."""
        witness = pairing.topology.spec.witness is not None
        return (
            max(
                pairing.duration,
                (heartbeat.duration or 0) if heartbeat else 0,
                self.witness.recorded_duration if witness else 0,
            )
            + self._peer_fencing()
        )

    def _peer_fencing(self) -> float:
        """Seconds the peer took to fence its data plane at the last switchover from it (0: not measured)."""
        measured = ((self._body or {}).get("status") or {}).get("peerFencingSeconds")
        return float(measured) if isinstance(measured, int | float) else 0.0

    def _silence(self, now: float) -> float | None:
        """Seconds since the peer was last known alive (a fresh heartbeat here, or an answer there)."""
        answered = None if self._reached_at is None else now - self._reached_at
        return min((a for a in (self._inbound.age(now), answered) if a is not None), default=None)

    # --- inputs ---------------------------------------------------------------------------------------------

    def on_topology(self, event_type: str | None, body: Body) -> None:
        if body["metadata"]["name"] != TOPOLOGY_NAME:
            return
        generation = (self._body or {}).get("metadata", {}).get("generation")
        if event_type == "DELETED":
            self._body = None
        elif _revision(body) >= _revision(self._body):
            self._body, self._had_topology = body, True
        self._assess()
        self._wake.set()
        if (self._body or {}).get("metadata", {}).get("generation") != generation:
            self._wake_peer.set()  # the spec changed (or came or went): the others may be elsewhere now
            self._wake_witness.set()

    async def on_secret(self, event_type: str | None, body: Body) -> None:
        await self._peers.on_secret(event_type, body)

    def on_config_map(self, event_type: str | None, body: Body) -> None:
        """The remembered pair, as stored (deleted by a person: this site leaves the pair)."""
        meta = body["metadata"]
        if (meta.get("namespace"), meta["name"]) != (self._namespace, pair_memory.CONFIG_MAP):
            return
        before = (self._memory, self._memory_problem)
        self._remember_stored(None if event_type == "DELETED" else body)
        if (self._memory, self._memory_problem) != before:
            self._wake.set()

    def _remember_stored(self, body: Body | None) -> None:
        self._memory, self._memory_problem = None, None
        if body is not None:
            try:
                self._memory = pair_memory.parse(body, self.name)
            except pair_memory.UnreadableError as error:
                self._memory_problem = str(error)
        self._assess()

    # --- the loops ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        await self._prime()
        await asyncio.gather(
            self._repeat(self._wake, self._tick),
            self._repeat(self._wake_peer, self._peer_round),
            self._repeat(self._wake_witness, self._witness_round),
            self._repeat(asyncio.Event(), self._city_dns_round),
        )

    async def _prime(self) -> None:
        """Read the Topology and the remembered pair, and hear from the others once, before the first
        decision is published."""
        delay = 0.5
        while True:
            try:
                body = await self._client.get(TOPOLOGIES, TOPOLOGY_NAME)
                self._remember_stored(
                    await self._client.get(CONFIG_MAPS, pair_memory.CONFIG_MAP, self._namespace)
                )
                break
            except REMOTE_ERRORS as error:
                log.warning("cannot read the Topology yet (%s); retrying in %.1fs", describe(error), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        if body is not None:
            body.setdefault("apiVersion", TOPOLOGIES.api_version)
            body.setdefault("kind", TOPOLOGIES.kind)
            self.on_topology(None, body)
            if self._pairing is not None:
                await self._configure_peers(self._pairing)
                await asyncio.gather(self._attempt(self._peer_round), self._attempt(self._witness_round))
        await self._tick()

    async def _attempt(self, step: Callable[[], Awaitable[None]]) -> None:
        try:
            await step()
        except Exception:  # keep coordinating, whatever one round met
            log.exception("site %s: %s failed", self.name, step.__name__)

    async def _repeat(self, wake: asyncio.Event, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` every heartbeat interval, and whenever woken."""
        while True:
            await self._attempt(step)
            try:
                await asyncio.wait_for(wake.wait(), self._pairing.interval if self._pairing else IDLE_SECONDS)
            except TimeoutError:
                continue
            wake.clear()

    async def _peer_round(self) -> None:
        if self._pairing is not None:
            await self._visit_peer(self._pairing)

    async def _witness_round(self) -> None:
        pairing = self._pairing
        if pairing is not None and pairing.topology.spec.witness is not None:
            await self._visit_witness(pairing)

    async def _city_dns_round(self) -> None:
        pairing = self._pairing
        dns = pairing.topology.spec.dns if pairing is not None else None
        timeout = pairing.interval if pairing is not None else IDLE_SECONDS
        if await self._city_dns.round(dns, timeout):
            self._wake.set()

    # --- the Topology ---------------------------------------------------------------------------------------

    def _assess(self) -> None:
        """What to work with (`_pairing`), or, when the Topology gives nothing to work with, None and the
        state to be in (`_unpaired`). Called whenever the Topology or the remembered pair changes."""
        self._pairing = None
        body = self._body
        if body is None:
            self._unpaired = pair_memory.without_topology(
                self.name,
                self._memory,
                self._memory_problem,
                deleted=self._had_topology,
                single_site=self._single_site,
                where=self._where,
            )
            return
        try:
            topology = Topology.model_validate(body)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(map(str, first["loc"]))
            what = f"is invalid at {where}: {first['msg']}"
            self._unpaired = pair_memory.unusable(self._memory, "TopologyInvalid", what)
            return
        sites = {site.name: site for site in topology.spec.sites}
        if self.name not in sites:
            what = f"does not name {self.name} among its sites"
            self._unpaired = pair_memory.unusable(self._memory, "SiteNotInTopology", what)
            return
        own = sites.pop(self.name)
        (peer,) = sites.values()
        dns = topology.spec.dns
        if self._memory is not None and self._memory.peer != peer.name:
            self._unpaired = pair_memory.peer_changed(self._memory, peer.name, self._where)
            return

        def context(state: SiteState) -> SiteContext:
            return SiteContext(
                self.name,
                state.role,
                state.epoch,
                ingress_address=own.ingress_address,
                peer=PeerSite(peer.name, peer.service_domain),
                record_ttl_seconds=dns.ttl_seconds if dns else DEFAULT_RECORD_TTL_SECONDS,
                failover=FailoverForm(final_sync=state.final_sync),
            )

        remembered = PairMemory(self.name, peer.name, peer.service_domain, own.ingress_address)
        self._pairing = Pairing(topology, peer.name, context, remembered)

    async def _remember(self, pairing: Pairing) -> None:
        """Store the pair and the recorded claim when they changed (a new peer, a new epoch)."""
        claim = topology_status.recorded_claim(self._body or {})
        wanted = PairMemory(
            pairing.pair.site,
            pairing.pair.peer,
            pairing.pair.peer_service_domain,
            pairing.pair.ingress_address,
            claim,
        )
        if wanted == self._memory:
            return
        try:
            await self._client.apply(wanted.config_map(self._namespace))
        except REMOTE_ERRORS as error:
            log.warning("cannot remember the pair in %s: %s", pair_memory.CONFIG_MAP, describe(error))
            return
        self._memory, self._memory_problem = wanted, None
        self._assess()

    async def _configure_peers(self, pairing: Pairing) -> None:
        spec = pairing.topology.spec
        refs = {pairing.peer: next(s for s in spec.sites if s.name == pairing.peer).kubeconfig_secret_ref}
        if spec.witness is not None:
            refs[WITNESS] = spec.witness.kubeconfig_secret_ref
        await self._peers.configure(refs)

    # --- the peer and the witness ---------------------------------------------------------------------------

    def _heartbeat(self, pairing: Pairing) -> Body:
        recorded = topology_status.recorded_claim(self._body or {})
        return leases.heartbeat(
            self.name,
            self._namespace,
            self.state.role,
            recorded,
            duration=pairing.duration,
            now=_now(),
            handover=self._handover,
            reason=self.state.reason,
            settings=pairing.settings,
        )

    async def _visit_peer(self, pairing: Pairing) -> None:
        client = self._peers.client(pairing.peer)
        reachable, problem = False, self._peers.problem(pairing.peer)
        if client is not None:
            try:
                # A heartbeat vouches for this site, not just its operator: while the operator cannot renew
                # it in its own cluster, the peer must see it go stale.
                if (
                    self._renewed_here is not None
                    and time.monotonic() - self._renewed_here < pairing.duration
                ):
                    await client.apply(self._heartbeat(pairing))
                lease = await client.get(LEASES, leases.heartbeat_name(pairing.peer), self._namespace)
            except REMOTE_ERRORS as error:
                problem = explain(error, pairing.peer, self.name, self._namespace)
            else:
                reachable, problem, self._reached_at = True, None, time.monotonic()
                if lease is not None:
                    self._heard("outbound", leases.read_heartbeat(lease))
        if reachable != self._reachable:
            if reachable:
                log.info("%s reachable", pairing.peer)
            else:
                log.warning("%s unreachable: %s", pairing.peer, problem)
            self._wake.set()
        self._reachable, self._reach_problem = reachable, problem

    async def _visit_witness(self, pairing: Pairing, hold: Claim | None = None) -> None:
        before = self.witness.view(time.monotonic())
        self.witness.grace = self._peer_fencing()
        client = self._peers.client(WITNESS)
        # Handing over: let go of the Lease now rather than make the target wait for it to lapse.
        release = topology_status.recorded_claim(self._body or {}) if self.state.final_sync else None
        renewed = self.witness.changed_at
        await self.witness.visit(
            client, self._peers.problem(WITNESS), hold or self._hold, pairing.duration, release=release
        )
        claim = self.witness.view(time.monotonic()).claim
        if self.witness.changed_at != renewed and claim is not None and claim.active_site == pairing.peer:
            # Renewing the witness Lease, the peer is active still: cut off from this site, it may be writing.
            self._peer_active_seen = _now()
        if self.witness.view(time.monotonic()) != before:
            self._wake.set()

    def _heard(self, where: str, heartbeat: leases.Heartbeat) -> leases.Heartbeat:
        previous = self._heartbeats.get(where)
        self._heartbeats[where] = heartbeat
        renewed = previous is None or previous.renew_time != heartbeat.renew_time
        if heartbeat.role is Role.ACTIVE and renewed:
            self._peer_active_seen = _now()  # the first sight of an old one overestimates: the safe side
        return heartbeat

    def _peer_heartbeat(self) -> leases.Heartbeat | None:
        """The peer's latest heartbeat, however it reached this site (its clock orders its own renewals)."""
        return max(self._heartbeats.values(), key=lambda h: h.renew_time or "", default=None)

    # --- deciding -------------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        pairing = self._pairing
        if pairing is None:
            await self._report_unusable(self._unpaired)
            self._publish(self._unpaired)
            return
        await self._configure_peers(pairing)
        try:
            inbound = await self._client.get(LEASES, leases.heartbeat_name(pairing.peer), self._namespace)
        except REMOTE_ERRORS as error:
            log.warning("cannot read %s's heartbeat here: %s", pairing.peer, describe(error))
            if self._own_failing_since is None:
                self._own_failing_since = time.monotonic()
        else:
            self._own_failing_since = None
            if inbound is not None:
                heartbeat = self._heard("inbound", leases.read_heartbeat(inbound))
                self._inbound.observe(heartbeat.renew_time, time.monotonic())
        decision = self._decide(pairing)
        if decision.hold is not None and not decision.state.established and decision.hold != self._hold:
            await self._visit_witness(pairing, decision.hold)  # acquire now rather than at the next visit
            decision = self._decide(pairing)
        self._hold = decision.hold
        if await self._record(pairing, decision):
            self._publish(decision.state, pairing)
            await self._remember(pairing)
        try:
            await self._client.apply(self._heartbeat(pairing))
        except REMOTE_ERRORS as error:
            log.warning("cannot renew this site's heartbeat here: %s", describe(error))
        else:
            self._renewed_here = time.monotonic()

    def _observations(self, pairing: Pairing) -> Observations:
        now = time.monotonic()
        heartbeat = self._peer_heartbeat()
        # Without a witness, an active site that has not heard its peer for this long fences itself: two
        # thirds of the shorter of the sites' Lease durations, while a Failover at the peer waits for the
        # longer one.
        fence_after = RENEW_DEADLINE * min(
            pairing.duration, (heartbeat.duration if heartbeat else None) or pairing.duration
        )
        silence = self._silence(now)
        remembered = self._memory.claim if self._memory else None  # of this very pair: see `_assess`
        return Observations(
            # A re-created Topology has no status yet: this site's last record is the remembered one.
            own=topology_status.recorded_claim(self._body or {}) or remembered,
            peer=heartbeat.claim if heartbeat else None,
            peer_seen=heartbeat is not None,
            peer_current=silence is not None and silence < fence_after,
            witness=self.witness.view(now) if pairing.topology.spec.witness is not None else None,
            handover=heartbeat.handover if heartbeat else None,
            promotion=self._promotion,
            own_cluster_lost=self._own_failing_since is not None
            and now - self._own_failing_since >= pairing.duration * RENEW_DEADLINE,
            accept_split_brain_risk=bool(pairing.topology.spec.failover.accept_split_brain_risk),
            settings_agree=heartbeat is not None and heartbeat.settings == pairing.settings,
        )

    def _decide(self, pairing: Pairing) -> Decision:
        spec = pairing.topology.spec
        return decide(
            self.name, pairing.peer, spec.preferred_primary, self._observations(pairing), self.state
        )

    def _peer_view(self, pairing: Pairing) -> topology_status.PeerView:
        heartbeat = self._peer_heartbeat()
        # When its heartbeat was last seen renewed here, by this site's clock (renewTime is the peer's).
        age = self._inbound.age(time.monotonic())
        arrived = None if age is None else leases.micro_time(_now() - datetime.timedelta(seconds=age))
        return topology_status.PeerView(
            name=pairing.peer,
            reachable=self._reachable,
            problem=self._reach_problem,
            heartbeats_arrive=self._inbound.fresh(time.monotonic(), pairing.duration),
            last_heartbeat=arrived,
            role=heartbeat.role if heartbeat else None,
            epoch=heartbeat.claim.epoch if heartbeat and heartbeat.claim else None,
            settings=heartbeat.settings if heartbeat else None,
            rejected=self._peers.rejected(pairing.peer),
        )

    async def _record(self, pairing: Pairing, decision: Decision) -> bool:
        """Write the Topology status if it changed; the new role counts only once its claim is recorded."""
        body = self._body
        assert body is not None
        witness = (
            (self.witness.view(time.monotonic()), self.witness.problem, self._peers.rejected(WITNESS))
            if pairing.topology.spec.witness is not None
            else None
        )
        recorded = decision.record or topology_status.recorded_claim(body)
        peer = self._peer_view(pairing)
        mismatch = peer.settings is not None and peer.settings != pairing.settings
        PEER_SETTINGS_MISMATCH.labels(pairing.peer).set(1 if mismatch else 0)
        new = topology_status.build(
            body,
            self.name,
            decision.state,
            recorded=recorded,
            peer=peer,
            witness=witness,
            now=rfc3339(_now()),
            settings=pairing.settings,
            extra=[want for want in (self._readiness, self._city_dns.want) if want],
            capacity=self._capacity,
        )
        current = body.get("status") or {}
        if not topology_status.differs(current, new):
            return True
        try:
            patch = {"status": merge_patch(current, new)}
            updated = await self._client.patch(TOPOLOGIES, TOPOLOGY_NAME, None, patch, "status")
        except REMOTE_ERRORS as error:
            log.warning("cannot record this site's Topology status: %s", describe(error))
            return decision.record is None or decision.record == topology_status.recorded_claim(body)
        self.on_topology(None, updated)
        await self._announce(updated, current, new)
        return True

    async def _announce(self, topology: Body, old: Body, new: Body) -> None:
        """Events for the flips people care about: the site's role, and the links to the others."""
        for type_ in (
            "Ready",
            "PeerConnected",
            "WitnessReachable",
            "SettingsMatch",
            "AutomaticFailoverReady",
            CITY_DNS_CONDITION,
        ):
            was = conditions.find(old.get("conditions"), type_)
            now = conditions.find(new["conditions"], type_)
            if now is None or now["status"] == "Unknown":
                continue
            if was and (was["status"], was["reason"]) == (now["status"], now["reason"]):
                continue
            if type_ == "Ready":
                role = next(s for s in new["sites"] if s["name"] == self.name)["role"]
                reason, kind = f"Site{role}", "Normal" if now["status"] == "True" else "Warning"
            else:
                reason = now["reason"] if now["status"] != "True" else type_
                kind = "Normal" if now["status"] == "True" else "Warning"
            await self._recorder.record(topology, kind, reason, now["message"])

    async def _report_unusable(self, state: SiteState) -> None:
        """Say why the site is fenced without a usable Topology: in the Topology's status when there is one,
        and an Event when the reason changes."""
        if state.reason != self.state.reason and state.reason in UNUSABLE:
            await self._recorder.record(
                self._body or TOPOLOGY_REFERENCE, "Warning", state.reason, state.message
            )
        body = self._body
        if body is None or state.reason not in UNUSABLE:
            return
        current = body.get("status") or {}
        new = topology_status.unusable(body, state, now=rfc3339(_now()))
        if not topology_status.differs(current, new):
            return
        try:
            patch = {"status": merge_patch(current, new)}
            self.on_topology(None, await self._client.patch(TOPOLOGIES, TOPOLOGY_NAME, None, patch, "status"))
        except REMOTE_ERRORS as error:
            log.warning("cannot record why the Topology is unusable: %s", describe(error))

    def _heartbeat_age(self) -> float:
        age = self._inbound.age(time.monotonic())
        return float("inf") if age is None else age

    def _publish(self, state: SiteState, pairing: Pairing | None = None) -> None:
        """Make `state` this site's role: metrics, and a re-render of every service if the site changed."""
        if (state.role, state.epoch) != (self.state.role, self.state.epoch) or not self.settled.is_set():
            log.info("site %s: %s at epoch %d (%s)", self.name, state.role, state.epoch, state.message)
        self.state = state
        for role in Role:
            SITE_ROLE.labels(self.name, str(role)).set(1 if role is state.role else 0)
        EPOCH.set(state.epoch)
        for reason in UNUSABLE:
            TOPOLOGY_UNUSABLE.labels(reason).set(1 if reason == state.reason else 0)
        context = pairing.context(state) if pairing else pair_memory.context(self.name, state, self._memory)
        if pairing:
            PEER_HEARTBEAT_AGE.labels(pairing.peer).set_function(self._heartbeat_age)
            if pairing.topology.spec.witness is not None:
                PEER_HEARTBEAT_AGE.labels(WITNESS).set_function(self.witness.age)
        if context != self._context:
            self._context = context
            for listener in self._listeners:
                listener()
        self.settled.set()
