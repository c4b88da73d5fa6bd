"""This site's views of the pair, as the SiteController hands them to the Failover executor."""

import datetime
from dataclasses import dataclass, field

from sharedcore.api import Role
from sharedcore.sites.settings import FailoverSettings
from sharedcore.sites.state import Claim, Handover, SiteState, WitnessView


@dataclass(frozen=True)
class PairView:
    """What this site's SiteController knows of the pair right now."""

    site: str
    sites: tuple[str, ...]
    active_site: str | None
    epoch: int
    peer_reachable: bool
    # When this site last saw a new heartbeat of the peer saying Active, by this site's own clock (None: not
    # since this operator started): the peer's own timestamps are by its clock, never mixed with this one's.
    peer_last_active: datetime.datetime | None
    # How long the peer may go on writing unseen after that before it has fenced itself: the takeover time.
    peer_may_write_seconds: float = 0.0
    state: SiteState = field(kw_only=True)  # this site's role now: `active_site` is only what it recorded
    # A Failover the peer announces it is executing (to itself), as its heartbeat says while it is current.
    peer_handover: Handover | None = None


@dataclass(frozen=True)
class PairObservation:
    """The pair as this site observes it now: what a running Failover and the automatic triggers judge."""

    state: SiteState  # this site's
    peer_role: Role | None  # as the peer's latest heartbeat says
    peer_claim: Claim | None
    peer_reachable: bool  # the peer's API server answered this site's last visit
    peer_current: bool  # the peer was heard from within a Lease duration
    peer_silent_seconds: float | None  # since the peer was last heard from (or this operator started)
    witness: WitnessView | None  # None: no witness configured
    # Nobody holds the witness Lease (released, or not renewed for a Lease duration), as last read: a read
    # older than this site's epoch shows nobody holding only after a whole duration without a change.
    witness_lapsed: bool
    peer_reason: str | None = None  # why the peer is in its role, as its latest heartbeat says
    # How long the active site must have been silent (or its witness Lease unrenewed) before this site may
    # take over: the longest Lease duration in play (this site's, the peer's, the witness Lease's), plus the
    # time the peer was last measured to take to fence its data plane.
    takeover_seconds: float = 0.0
    peer_settings: FailoverSettings | None = None  # as the peer's latest heartbeat says
