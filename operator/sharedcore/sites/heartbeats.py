"""The heartbeats this site exchanges with its peer, and what they tell of the peer.

Each site renews its heartbeat Lease (`sites.leases`) in both clusters, so the peer's reaches this site two
ways: in this cluster ("inbound", renewed by the peer across the link) and at the peer ("outbound", read on
this site's visit). Which of them arrives, and whether the peer's API server answers, tells a cut link
from a dead site (the PeerConnected condition). Every time kept here is by this site's clock: the peer's
renewTime is by its own, which may be skewed, so it is only compared with itself.
"""

import dataclasses
import datetime
import logging
import time
from collections.abc import Callable

from sharedcore import Body
from sharedcore.api import Role
from sharedcore.kube.client import KubeClient
from sharedcore.kube.resources import LEASES
from sharedcore.sites import leases
from sharedcore.sites.pairing import Pairing
from sharedcore.sites.peers import REMOTE_ERRORS, describe, explain
from sharedcore.sites.topology_status import PeerView
from sharedcore.sites.witness import RENEW_DEADLINE

log = logging.getLogger(__name__)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class PeerHeartbeats:
    def __init__(self, site: str, namespace: str) -> None:
        self._site, self._namespace = site, namespace
        self.inbound = leases.Freshness()  # the peer's heartbeat in this cluster: does it arrive?
        self.outbound = leases.Freshness()  # the peer's heartbeat in its own cluster: is it renewed there?
        self._latest: dict[str, leases.Heartbeat] = {}  # by where it was read: "inbound", "outbound"
        # When this site last saw the peer active: a new heartbeat of it saying Active, or its renewal of the
        # witness Lease (`seen_active`).
        self.active_seen: datetime.datetime | None = None
        self.reachable = False
        self.problem: str | None = "not contacted yet"  # why the peer cannot be reached
        self._reached_at: float | None = None  # when a request to the peer last succeeded
        self._renewed_here: float | None = None  # when this site's heartbeat was last renewed in its cluster
        self._own_failing_since: float | None = None  # since when this site's API server has not answered

    # --- what they tell -------------------------------------------------------------------------------------

    def latest(self) -> leases.Heartbeat | None:
        """The peer's latest heartbeat, however it reached this site (its clock orders its own renewals)."""
        return max(self._latest.values(), key=lambda h: h.renew_time or "", default=None)

    def silence(self, now: float) -> float | None:
        """Seconds since the peer was last known alive (a fresh heartbeat here, or an answer there)."""
        answered = None if self._reached_at is None else now - self._reached_at
        return min((a for a in (self.inbound.age(now), answered) if a is not None), default=None)

    def renewing(self, now: float, duration: float) -> bool:
        """The peer's operator renewed its heartbeat (either copy) within `duration`: what it announces there
        (a handover) still stands. Unlike `current`, an answer from its API server does not count."""
        return not all(f.silent(now, duration) for f in (self.inbound, self.outbound))

    def current(self, now: float, duration: float) -> bool:
        """The peer was heard from (a heartbeat renewed here, or an answer there) within `duration`."""
        answered = self._reached_at is not None and now - self._reached_at < duration
        return self.inbound.fresh(now, duration) or answered

    def age(self) -> float:
        """Seconds since the peer's heartbeat was last seen renewed here (infinite: never)."""
        age = self.inbound.age(time.monotonic())
        return float("inf") if age is None else age

    def own_cluster_lost(self, now: float, duration: float) -> bool:
        """This site's API server has not answered for two thirds of `duration`."""
        failing = self._own_failing_since
        return failing is not None and now - failing >= duration * RENEW_DEADLINE

    def view(self, pairing: Pairing, rejected: str | None) -> PeerView:
        """The peer for the Topology status; `rejected`: why its kubeconfig is refused, if it is."""
        heartbeat = self.latest()
        age = self.inbound.age(time.monotonic())
        return PeerView(
            name=pairing.peer,
            reachable=self.reachable,
            problem=self.problem,
            heartbeats_arrive=self.inbound.fresh(time.monotonic(), pairing.duration),
            # When its heartbeat was last seen renewed here (renewTime is the peer's clock).
            last_heartbeat=None if age is None else _now() - datetime.timedelta(seconds=age),
            role=heartbeat.role if heartbeat else None,
            epoch=heartbeat.claim.epoch if heartbeat and heartbeat.claim else None,
            settings=heartbeat.settings if heartbeat else None,
            rejected=rejected,
        )

    def seen_active(self) -> None:
        """The peer was seen renewing the witness Lease it holds: active still, whatever its heartbeats."""
        self.active_seen = _now()

    # --- exchanging them ------------------------------------------------------------------------------------

    def news(self, heartbeat: leases.Heartbeat) -> bool:
        """Whether the peer's heartbeat, seen in this cluster, says something the last one read here did not
        (a handover announced, a new role or claim): a renewal alone is no news."""
        known = self._latest.get("inbound")
        return known is None or dataclasses.replace(known, renew_time=None) != dataclasses.replace(
            heartbeat, renew_time=None
        )

    def heard(self, where: str, heartbeat: leases.Heartbeat) -> leases.Heartbeat:
        previous = self._latest.get(where)
        self._latest[where] = heartbeat
        renewed = previous is None or previous.renew_time != heartbeat.renew_time
        if heartbeat.role is Role.ACTIVE and renewed:
            self.active_seen = _now()  # the first sight of an old one overestimates: the safe side
        return heartbeat

    async def read_here(self, client: KubeClient, peer: str) -> None:
        """Read the peer's heartbeat in this cluster; a failure says this site's API server is failing."""
        try:
            lease = await client.get(LEASES, leases.heartbeat_name(peer), self._namespace)
        except REMOTE_ERRORS as error:
            log.warning("cannot read %s's heartbeat here: %s", peer, describe(error))
            if self._own_failing_since is None:
                self._own_failing_since = time.monotonic()
            return
        self._own_failing_since = None
        if lease is not None:
            heartbeat = self.heard("inbound", leases.read_heartbeat(lease))
            self.inbound.observe(heartbeat.renew_time, time.monotonic())

    async def renew_here(self, client: KubeClient, heartbeat: Body) -> None:
        try:
            await client.apply(heartbeat)
        except REMOTE_ERRORS as error:
            log.warning("cannot renew this site's heartbeat here: %s", describe(error))
        else:
            self._renewed_here = time.monotonic()

    async def visit(
        self, client: KubeClient | None, problem: str | None, pairing: Pairing, heartbeat: Callable[[], Body]
    ) -> bool:
        """Renew this site's heartbeat at the peer and read the peer's there; whether the peer's
        reachability changed. `problem`: why there is no `client`."""
        reachable = False
        if client is not None:
            try:
                # A heartbeat vouches for this site, not just its operator: while the operator cannot renew
                # it in its own cluster, the peer must see it go stale.
                renewed = self._renewed_here
                if renewed is not None and time.monotonic() - renewed < pairing.duration:
                    await client.apply(heartbeat())
                lease = await client.get(LEASES, leases.heartbeat_name(pairing.peer), self._namespace)
            except REMOTE_ERRORS as error:
                problem = explain(error, pairing.peer, self._site, self._namespace)
            else:
                reachable, problem, self._reached_at = True, None, time.monotonic()
                if lease is not None:
                    theirs = self.heard("outbound", leases.read_heartbeat(lease))
                    self.outbound.observe(theirs.renew_time, time.monotonic())
        changed = reachable != self.reachable
        if changed and reachable:
            log.info("%s reachable", pairing.peer)
        elif changed:
            log.warning("%s unreachable: %s", pairing.peer, problem)
        self.reachable, self.problem = reachable, problem
        return changed
