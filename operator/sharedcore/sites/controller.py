"""This site's place in the pair: the Topology, heartbeats, role and epoch, and the witness Lease.

Three loops, so that a silent peer or witness never delays this site's own work:
- the local loop reads the peer's heartbeat in this cluster, decides the role (`sites.state`), records it in
  the Topology status (only when the status changes) and renews this site's heartbeat here;
- the peer loop renews this site's heartbeat in the peer's cluster and reads the peer's own there;
- the witness loop reads the `sharedcore-active` Lease and renews it while this site holds it.
Each runs every heartbeatIntervalSeconds; what one of them learns wakes the local loop at once. A watch on the
peer's heartbeat in this cluster wakes it too when the heartbeat says something new (a handover announced):
the source of a switchover learns of it at once, not at its next tick.
Until the first decision the site is Fenced: nothing acts on a role that is not known yet.
A usable Topology's pair (the peer, the last epoch) is remembered (`sites.pair_memory`): a Topology that is
deleted, invalid or does not name this site, before or across a restart, leaves the site Fenced in its
standby form, never rendered without its peer. Without a Topology and without a remembered pair the site
is a single Active site at epoch 0 only when run with `--single-site`; otherwise it is Fenced and renders
nothing.
A Failover executing here drives the handover through `announce` (the peer fences itself for it) and
`promote` (this site claims the next epoch); it reads the pair through `observation`.
The parts: what the Topology gives to work with (`sites.pairing`), the heartbeats exchanged with the peer
(`sites.heartbeats`), the witness Lease (`sites.witness`), the role decision (`sites.state`, pure) and the
status it is recorded in (`sites.topology_status`, pure).
"""

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import time
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from sharedcore import Body
from sharedcore.api import Role, Topology
from sharedcore.kube import conditions, loops
from sharedcore.kube.client import ApiError, KubeClient
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
from sharedcore.render import SiteContext
from sharedcore.sites import leases, pair_memory, topology_status
from sharedcore.sites.citydns import CityDnsProbe
from sharedcore.sites.heartbeats import PeerHeartbeats
from sharedcore.sites.pair_memory import Remembered
from sharedcore.sites.pairing import Pairing, UnpairedError, pairing_of
from sharedcore.sites.peers import REMOTE_ERRORS, Peers, describe
from sharedcore.sites.state import Claim, Decision, Handover, Observations, SiteState, decide, fenced
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


def _revision(body: Body | None) -> int:
    try:
        return int((body or {})["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return 0


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
        self._remembered = Remembered()  # the pair as last remembered (`sites.pair_memory`)
        self._where = f"ConfigMap {namespace}/{pair_memory.CONFIG_MAP}"  # the memory, as people find it
        self.state = fenced("Starting", "deciding this site's role")
        self._context = SiteContext(name, Role.FENCED, 0)
        self._hold: Claim | None = None
        self.witness = WitnessLease(name, namespace)
        self.heartbeats = PeerHeartbeats(name, namespace)
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
        heartbeat = self.heartbeats.latest()
        if pairing is None:
            state = self.state
            return PairView(self.name, (self.name,), state.active_site, state.epoch, False, None, state=state)
        return PairView(
            site=self.name,
            sites=tuple(site.name for site in pairing.topology.spec.sites),
            active_site=recorded.active_site if recorded else None,
            epoch=recorded.epoch if recorded else 0,
            peer_reachable=self.heartbeats.reachable,
            # Its services stopped answering when it stopped being active, not when its operator fell silent.
            peer_last_active=self.heartbeats.active_seen,
            peer_may_write_seconds=self._takeover_seconds(pairing, heartbeat),
            state=self.state,
            # A silent peer's last announcement is not a move under way: it may have died during it.
            peer_handover=heartbeat.handover
            if heartbeat and self.heartbeats.current(time.monotonic(), pairing.duration)
            else None,
        )

    def peer_name(self) -> str | None:
        return self._pairing.peer if self._pairing else None

    def topology(self) -> Topology | None:
        return self._pairing.topology if self._pairing else None

    def observation(self) -> PairObservation:
        """What a Failover executing here needs to know of the pair now."""
        pairing = self._pairing
        heartbeat = self.heartbeats.latest()
        now = time.monotonic()
        witness = pairing is not None and pairing.witnessed
        duration = pairing.duration if pairing else 0
        silence = self.heartbeats.silence(now)
        return PairObservation(
            state=self.state,
            peer_role=heartbeat.role if heartbeat else None,
            peer_claim=heartbeat.claim if heartbeat else None,
            peer_reachable=self.heartbeats.reachable,
            peer_current=self.heartbeats.current(now, duration),
            peer_silent_seconds=silence if silence is not None else now - self._started,
            witness=self.witness.view(now) if witness else None,
            witness_lapsed=witness and self.witness.lapsed(now, duration, self.state.epoch),
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
        witnessed = self.witness.recorded_duration if pairing.witnessed else 0
        return max(_sites_lease(pairing, heartbeat), witnessed) + self._peer_fencing()

    def _peer_fencing(self) -> float:
        """Seconds the peer took to fence its data plane at the last switchover from it (0: not measured)."""
        measured = ((self._body or {}).get("status") or {}).get("peerFencingSeconds")
        return float(measured) if isinstance(measured, int | float) else 0.0

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
        before = self._remembered
        self._remember_stored(None if event_type == "DELETED" else body)
        if self._remembered != before:
            self._wake.set()

    def _remember_stored(self, body: Body | None) -> None:
        self._remembered = pair_memory.read(body, self.name)
        self._assess()

    # --- the loops ------------------------------------------------------------------------------------------

    async def run(self, resume: Callable[[], Awaitable[Handover | None]] | None = None) -> None:
        """`resume`: the handover a Failover executing here had announced before this operator started."""
        await self._prime(resume)
        await asyncio.gather(
            self._repeat(self._tick, self._wake),
            self._repeat(self._peer_round, self._wake_peer),
            self._repeat(self._witness_round, self._wake_witness),
            self._repeat(self._city_dns_round),
            self._watch_peer_heartbeat(),
        )

    async def _prime(self, resume: Callable[[], Awaitable[Handover | None]] | None = None) -> None:
        """Read the Topology and the remembered pair, and hear from the others once, before the first
        decision is published."""
        body = await loops.until_done(self._read_stored, REMOTE_ERRORS, "reading the Topology")
        if body is not None:
            body.setdefault("apiVersion", TOPOLOGIES.api_version)
            body.setdefault("kind", TOPOLOGIES.kind)
            self.on_topology(None, body)
            if self._pairing is not None and resume is not None:
                # Announced again before the first heartbeat: the source, fenced for the handover, would take
                # a heartbeat without it for a withdrawal and act again, outdating the Failover's tokens.
                self.announce(await loops.until_done(resume, REMOTE_ERRORS, "reading the Failovers"))
            if self._pairing is not None:
                await self._configure_peers(self._pairing)
                rounds = (self._peer_round, self._witness_round)
                await asyncio.gather(*(loops.attempt(step, f"site {self.name}") for step in rounds))
        await self._tick()

    async def _read_stored(self) -> Body | None:
        """The Topology (None: there is none); the remembered pair is taken in."""
        body = await self._client.get(TOPOLOGIES, TOPOLOGY_NAME)
        self._remember_stored(await self._client.get(CONFIG_MAPS, pair_memory.CONFIG_MAP, self._namespace))
        return body

    def _interval(self) -> float:
        return self._pairing.interval if self._pairing else IDLE_SECONDS

    async def _repeat(self, step: Callable[[], Awaitable[None]], wake: asyncio.Event | None = None) -> None:
        """Run `step` every heartbeat interval, and whenever woken."""
        await loops.repeat(step, interval=self._interval, what=f"site {self.name}", wake=wake)

    async def _peer_round(self) -> None:
        pairing = self._pairing
        if pairing is None:
            return
        client = self._peers.client(pairing.peer)
        problem = self._peers.problem(pairing.peer)
        if await self.heartbeats.visit(client, problem, pairing, lambda: self._heartbeat(pairing)):
            self._wake.set()

    async def _watch_peer_heartbeat(self) -> None:
        """Watch the peer's heartbeat Lease in this cluster, as long as the peer stays the same: news in it
        wakes the local loop (which reads it as always). A failure: it watches again an interval later."""
        since: str | None = None
        while True:
            peer = self.peer_name()
            if peer is None:
                since = None
                await asyncio.sleep(min(self._interval(), 5.0))  # a Topology may come
                continue
            try:
                since = await self._follow(peer, since)
            except ApiError as error:
                since = None  # 410 Gone (too old to go on from), or a refusal: start afresh
                if error.status != 410:
                    log.warning("cannot watch %s's heartbeat here: %s", peer, describe(error))
                    await asyncio.sleep(self._interval())
            except REMOTE_ERRORS as error:
                log.warning("cannot watch %s's heartbeat here: %s", peer, describe(error))
                await asyncio.sleep(self._interval())

    async def _follow(self, peer: str, since: str | None) -> str | None:
        """One watch of `peer`'s heartbeat; the resourceVersion to go on from when it ends."""
        name = leases.heartbeat_name(peer)
        events = self._client.watch(LEASES, self._namespace, name, since)
        async with contextlib.aclosing(events):
            async for kind, lease in events:
                since = lease.get("metadata", {}).get("resourceVersion") or since
                if kind in ("ADDED", "MODIFIED") and self.heartbeats.news(leases.read_heartbeat(lease)):
                    self._wake.set()
                if self.peer_name() != peer:
                    return None
        return since

    async def _witness_round(self) -> None:
        pairing = self._pairing
        if pairing is not None and pairing.witnessed:
            await self._visit_witness(pairing)

    async def _city_dns_round(self) -> None:
        dns = self._pairing.topology.spec.dns if self._pairing is not None else None
        if await self._city_dns.round(dns, self._interval()):
            self._wake.set()

    # --- the Topology ---------------------------------------------------------------------------------------

    def _assess(self) -> None:
        """What to work with (`_pairing`), or, when the Topology gives nothing to work with, None and the
        state to be in (`_unpaired`). Called whenever the Topology or the remembered pair changes."""
        try:
            self._pairing = pairing_of(
                self.name,
                self._body,
                self._remembered,
                deleted=self._had_topology,
                single_site=self._single_site,
                where=self._where,
            )
        except UnpairedError as why:
            self._pairing, self._unpaired = None, why.state

    async def _remember(self, pairing: Pairing) -> None:
        """Store the pair and the recorded claim when they changed (a new peer, a new epoch)."""
        claim = topology_status.recorded_claim(self._body or {})
        wanted = dataclasses.replace(pairing.memory, claim=claim)
        if wanted == self._remembered.memory:
            return
        try:
            await self._client.apply(wanted.config_map(self._namespace))
        except REMOTE_ERRORS as error:
            log.warning("cannot remember the pair in %s: %s", pair_memory.CONFIG_MAP, describe(error))
            return
        self._remembered = Remembered(wanted)
        self._assess()

    async def _configure_peers(self, pairing: Pairing) -> None:
        spec = pairing.topology.spec
        refs = {pairing.peer: pairing.other.kubeconfig_secret_ref}
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
            now=datetime.datetime.now(datetime.UTC),
            handover=self._handover,
            reason=self.state.reason,
            settings=pairing.settings,
        )

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
            self.heartbeats.seen_active()  # cut off from this site, it may be taking writes still
        if self.witness.view(time.monotonic()) != before:
            self._wake.set()

    # --- deciding -------------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        pairing = self._pairing
        if pairing is None:
            await self._report_unusable(self._unpaired)
            self._publish(self._unpaired)
            return
        await self._configure_peers(pairing)
        await self.heartbeats.read_here(self._client, pairing.peer)
        decision = self._decide(pairing)
        if decision.hold is not None and not decision.state.established and decision.hold != self._hold:
            await self._visit_witness(pairing, decision.hold)  # acquire now rather than at the next visit
            decision = self._decide(pairing)
        self._hold = decision.hold
        if await self._record(pairing, decision):
            self._publish(decision.state, pairing)
            await self._remember(pairing)
        await self.heartbeats.renew_here(self._client, self._heartbeat(pairing))

    def _observations(self, pairing: Pairing) -> Observations:
        now = time.monotonic()
        heartbeat = self.heartbeats.latest()
        # Without a witness, an active site that has not heard its peer for this long fences itself: two
        # thirds of the shorter of the sites' Lease durations, while a Failover at the peer waits for the
        # longer one.
        fence_after = RENEW_DEADLINE * min(
            pairing.duration, (heartbeat.duration if heartbeat else None) or pairing.duration
        )
        silence = self.heartbeats.silence(now)
        memory = self._remembered.memory
        remembered = memory.claim if memory else None  # of this very pair: see `_assess`
        return Observations(
            # A re-created Topology has no status yet: this site's last record is the remembered one.
            own=topology_status.recorded_claim(self._body or {}) or remembered,
            peer=heartbeat.claim if heartbeat else None,
            peer_seen=heartbeat is not None,
            peer_current=silence is not None and silence < fence_after,
            witness=self.witness.view(now) if pairing.witnessed else None,
            handover=heartbeat.handover if heartbeat else None,
            handover_lapsed=not self.heartbeats.renewing(now, _sites_lease(pairing, heartbeat)),
            promotion=self._promotion,
            own_cluster_lost=self.heartbeats.own_cluster_lost(now, pairing.duration),
            accept_split_brain_risk=bool(pairing.topology.spec.failover.accept_split_brain_risk),
            settings_agree=heartbeat is not None and heartbeat.settings == pairing.settings,
        )

    def _decide(self, pairing: Pairing) -> Decision:
        spec = pairing.topology.spec
        return decide(
            self.name, pairing.peer, spec.preferred_primary, self._observations(pairing), self.state
        )

    async def _record(self, pairing: Pairing, decision: Decision) -> bool:
        """Write the Topology status if it changed; the new role counts only once its claim is recorded."""
        body = self._body
        assert body is not None
        witness = (
            (self.witness.view(time.monotonic()), self.witness.problem, self._peers.rejected(WITNESS))
            if pairing.witnessed
            else None
        )
        recorded = decision.record or topology_status.recorded_claim(body)
        peer = self.heartbeats.view(pairing, self._peers.rejected(pairing.peer))
        mismatch = peer.settings is not None and peer.settings != pairing.settings
        PEER_SETTINGS_MISMATCH.labels(pairing.peer).set(1 if mismatch else 0)
        new = topology_status.build(
            body,
            self.name,
            decision.state,
            recorded=recorded,
            peer=peer,
            witness=witness,
            now=rfc3339(),
            settings=pairing.settings,
            extra=[want for want in (self._readiness, self._city_dns.want) if want],
            capacity=self._capacity,
        )
        current = body.get("status") or {}
        if not topology_status.differs(current, new):
            return True
        try:
            updated = await self._write(current, new)
        except REMOTE_ERRORS as error:
            log.warning("cannot record this site's Topology status: %s", describe(error))
            return decision.record is None or decision.record == topology_status.recorded_claim(body)
        for flip in topology_status.flips(self.name, current, new):
            await self._recorder.record(updated, flip.type, flip.reason, flip.message)
        return True

    async def _write(self, current: Body, new: Body) -> Body:
        """Turn the Topology status `current` into `new`, and take the result in."""
        patch = {"status": merge_patch(current, new)}
        updated = await self._client.patch(TOPOLOGIES, TOPOLOGY_NAME, None, patch, "status")
        self.on_topology(None, updated)
        return updated

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
        try:
            new = topology_status.unusable(body, state, now=rfc3339())
        except ValidationError as error:  # the status is what makes it invalid: rewriting it would lose it
            log.warning("cannot record why the Topology is unusable in its unreadable status: %s", error)
            return
        if not topology_status.differs(current, new):
            return
        try:
            await self._write(current, new)
        except REMOTE_ERRORS as error:
            log.warning("cannot record why the Topology is unusable: %s", describe(error))

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
        memory = self._remembered.memory
        context = pairing.context(state) if pairing else pair_memory.context(self.name, state, memory)
        if pairing:
            PEER_HEARTBEAT_AGE.labels(pairing.peer).set_function(self.heartbeats.age)
            if pairing.witnessed:
                PEER_HEARTBEAT_AGE.labels(WITNESS).set_function(self.witness.age)
        if context != self._context:
            self._context = context
            for listener in self._listeners:
                listener()
        self.settled.set()


def _sites_lease(pairing: Pairing, heartbeat: leases.Heartbeat | None) -> float:
    """The longer of the two sites' Lease durations (this Topology's, the one the peer's heartbeat gives)."""
    return max(pairing.duration, (heartbeat.duration or 0) if heartbeat else 0)
