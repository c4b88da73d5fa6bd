"""When a site starts a Failover by itself: decided purely from what it observes.

- Automatic failover (policy mode Automatic, which requires a witness): this site is the standby, it can
  reach the witness, nobody holds the witness Lease (released, or not renewed for a Lease duration), and the
  active site is not acting: silent for a Lease duration, or saying it is not Active (fenced, say, because it
  lost the witness). A standby that cannot reach the witness never promotes by itself. "A Lease duration" is
  the longest in play (this site's, the peer's, the witness Lease's): the sites' Topologies may disagree. A
  site fenced only because it is handing over (a switchover this site withdrew, or that failed) is taking
  its role back, not failing; and a peer that says it runs without the witness cannot be fenced by it.
- Automatic failback (policy failback Automatic): this site is the preferred primary, standing by, and has
  been caught up (both sites talking, the peer Active, every service's replication healthy here) for
  failbackHoldSeconds without a break: a Switchover back.
In manual mode the same observation that would start a failover is told as a Warning Event, once per epoch.
Either creates a Failover named after the epoch it would start, so at most one runs per epoch; one that fails
(its data-loss window above a service's objective, say) is tried again while the observation holds, after a
pause that doubles at each attempt (`attempt`).
"""

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sharedcore import API_GROUP, API_VERSION, Body
from sharedcore.api import FailbackMode, FailoverMode, FailoverPhase, FailoverType, Role, Topology
from sharedcore.kube import conditions
from sharedcore.kube.times import parse_time
from sharedcore.sites.state import HANDING_OVER
from sharedcore.sites.views import PairObservation


@dataclass(frozen=True)
class Due:
    """A Failover this site should create."""

    kind: str  # failover | failback: names it
    type: FailoverType
    reason: str

    def failover(self, site: str, epoch: int) -> Body:
        return {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "Failover",
            "metadata": {
                "name": f"automatic-{self.kind}-epoch-{epoch}",
                "labels": {f"{API_GROUP}/automatic": self.kind},
            },
            "spec": {"targetSite": site, "type": str(self.type), "reason": self.reason},
        }


# A failed automatic Failover of an epoch is tried again after this pause, doubled at each attempt, up to the
# longest: its preconditions may hold later (a window known again, a flapping site lost for good), and a
# condition that persists costs one Failover object per pause.
RETRY_SECONDS = 60.0
RETRY_MAX_SECONDS = 900.0
RETRY = "-retry-"


def attempt(
    due: Due, site: str, epoch: int, existing: Mapping[str, Body], now: datetime.datetime
) -> Body | None:
    """The Failover to create for `due` at `epoch`, given this site's Failovers: the epoch's first, or its
    next attempt once the last one failed and its pause has passed; None while one is under way, or once one
    succeeded."""
    body = due.failover(site, epoch)
    first = body["metadata"]["name"]
    attempts = [b for name, b in existing.items() if name == first or name.startswith(first + RETRY)]
    if not attempts:
        return body
    statuses = [b.get("status") or {} for b in attempts]
    if any(s.get("phase") != FailoverPhase.FAILED or not s.get("completionTime") for s in statuses):
        return None
    last = max(parse_time(s["completionTime"]) or now for s in statuses)
    pause = min(RETRY_SECONDS * 2 ** (len(attempts) - 1), RETRY_MAX_SECONDS)
    if (now - last).total_seconds() < pause:
        return None
    body["metadata"]["name"] = f"{first}{RETRY}{len(attempts)}"
    return body


def automatic_failover(site: str, view: PairObservation, topology: Topology) -> Due | None:
    if topology.spec.failover.mode is not FailoverMode.AUTOMATIC:
        return None
    return failover_due(site, view, topology)


def failover_due(site: str, view: PairObservation, topology: Topology) -> Due | None:
    """The failover automatic mode would start now (in manual mode: the one to recommend)."""
    policy = topology.spec.failover
    state = view.state
    if state.role is not Role.STANDBY or state.active_site == site:
        return None
    witness = view.witness
    if witness is None or not witness.reachable or not view.witness_lapsed:
        return None
    if peer_without_witness(view):
        return None
    source = state.active_site
    silent = view.peer_silent_seconds
    if silent is None or silent >= max(policy.lease_duration_seconds, view.takeover_seconds):
        why = "has not been heard from" if silent is None else f"has been silent for {silent:.0f}s"
    elif view.peer_role is not Role.ACTIVE and view.peer_reason != HANDING_OVER:
        why = f"reports itself {view.peer_role or 'unknown'}"
    else:
        return None
    reason = f"AutomaticFailover: {source} {why} and nobody holds the witness Lease"
    return Due("failover", FailoverType.FAILOVER, reason)


def peer_without_witness(view: PairObservation) -> bool:
    """The peer says (in its heartbeats) that it runs without the witness: its Lease would not fence it."""
    return view.peer_settings is not None and not view.peer_settings.witness


def caught_up(site: str, view: PairObservation, topology: Topology, services: Iterable[Body]) -> bool:
    """Whether the preferred primary, standing by, could take its role back without losing anything."""
    state = view.state
    if site != topology.spec.preferred_primary or state.role is not Role.STANDBY:
        return False
    if not (view.peer_current and view.peer_role is Role.ACTIVE):
        return False
    return all(
        conditions.is_true((s.get("status") or {}).get("conditions"), "ReplicationHealthy") for s in services
    )


def automatic_failback(site: str, topology: Topology, healthy_seconds: float | None) -> Due | None:
    policy = topology.spec.failover
    if policy.failback is not FailbackMode.AUTOMATIC or healthy_seconds is None:
        return None
    if healthy_seconds < policy.failback_hold_seconds:
        return None
    reason = (
        f"AutomaticFailback: {site}, the preferred primary, has been caught up for "
        f"{healthy_seconds:.0f}s (hold {policy.failback_hold_seconds}s)"
    )
    return Due("failback", FailoverType.SWITCHOVER, reason)


class HealthyClock:
    """How long a condition has held without a break."""

    def __init__(self) -> None:
        self._since: float | None = None

    def held(self, healthy: bool, now: float) -> float | None:
        if not healthy:
            self._since = None
            return None
        if self._since is None:
            self._since = now
        return now - self._since
