"""Roles and epochs, decided purely from what a site observes: the state machine failover extends.

A claim says which site is active at which epoch. Claims are recorded in each site's Topology status, carried
by the sites' heartbeats and, with a witness, held in its `sharedcore-active` Lease; the highest epoch wins.
A site is Active only while the winning claim names it and it can prove so: by holding the witness Lease, or
without a witness by hearing from its peer (within two thirds of the shorter Lease duration of the two
sites, so that it has fenced itself before a Failover at the peer, which waits for a whole one, takes over),
unless the Topology accepts the risk of split brain, or a Failover promoted it while the peer was silent (and
it has not heard the peer since). A site that cannot prove its role is Fenced, never Active by default.
An active site whose peer announces a takeover at a later epoch (a Failover executing there) fences itself
for it, keeping only its final sync of the files.
The only way to a later epoch is the Promote step of a Failover at its target, which adds its claim
(`Observations.promotion`); with a witness it counts only once the target holds the Lease at that epoch.
A site whose own API server has not answered for the renew deadline fences itself: it can no longer
observe, fence or repair anything there, and its peer, which can, may take over.
"""

from dataclasses import dataclass, replace

from sharedcore.api import Role

FIRST_EPOCH = 1
HANDING_OVER = "HandingOver"  # the reason of a site fenced for its peer's announced takeover
PEER_SILENT = "PeerSilent"  # the reason of a site without witness fenced for not hearing its peer


@dataclass(frozen=True)
class Claim:
    """`active_site` is the active site at `epoch`."""

    epoch: int
    active_site: str


@dataclass(frozen=True)
class Handover:
    """A site announcing (in its heartbeat) that a Failover is making it active at `epoch`: the active site
    fences itself for it, so that the target can promote without ever meeting a second writer."""

    epoch: int
    to_site: str
    failover: str  # the Failover's name, which also names its final sync


@dataclass(frozen=True)
class WitnessView:
    """The `sharedcore-active` Lease as this site last saw it."""

    reachable: bool
    claim: Claim | None = None  # its holder and epoch; None when there is no Lease
    held: bool = False  # this site renewed it for `claim` recently enough to still count as its holder


@dataclass(frozen=True)
class Observations:
    own: Claim | None  # this site's Topology status
    peer: Claim | None  # the latest claim in the peer's heartbeats
    peer_seen: bool  # the peer has heartbeated: it runs with the Topology
    peer_current: bool  # the peer was heard recently enough: without a witness, not for long enough to fence
    witness: WitnessView | None  # None: no witness configured
    handover: Handover | None = None  # the peer's announced takeover, if any
    handover_lapsed: bool = False  # the peer has not renewed the heartbeat announcing it for a lease
    promotion: Claim | None = None  # a Failover promoting this site (its Promote step), if any
    own_cluster_lost: bool = False  # this site's API server has not answered for the renew deadline
    accept_split_brain_risk: bool = False  # without a witness: stay active without hearing the peer
    settings_agree: bool = True  # the peer's heartbeats publish the same failover settings as this Topology


@dataclass(frozen=True)
class SiteState:
    role: Role
    epoch: int
    active_site: str | None
    reason: str  # CamelCase: the role when established, else why the site is fenced
    message: str
    final_sync: str | None = None  # handing over: the Failover whose final sync this site still pushes
    on_failovers_word: bool = False  # active without a witness, promoted while the peer was silent

    @property
    def established(self) -> bool:
        return self.role is not Role.FENCED


@dataclass(frozen=True)
class Decision:
    state: SiteState
    record: Claim | None  # what this site's Topology status must say (None: leave it)
    hold: Claim | None  # the claim to acquire or renew the witness Lease for (None: leave it)


def fenced(reason: str, message: str, epoch: int = 0, active_site: str | None = None) -> SiteState:
    return SiteState(Role.FENCED, epoch, active_site, reason, message)


def decide(site: str, peer: str, preferred: str, seen: Observations, previous: SiteState) -> Decision:
    """This site's role now, what to record, and which witness Lease to hold."""
    if seen.own_cluster_lost:
        message = "this site's API server does not answer: fenced, so that the peer may take over"
        epoch, active_site = (seen.own.epoch, seen.own.active_site) if seen.own else (0, None)
        return Decision(fenced("ClusterUnreachable", message, epoch, active_site), None, None)
    witness_claim = seen.witness.claim if seen.witness else None
    claims = [claim for claim in (seen.own, seen.peer, witness_claim, seen.promotion) if claim is not None]
    if not claims:
        return _bootstrap(site, peer, preferred, seen)
    best = max(claims, key=lambda claim: claim.epoch)
    if (taken_back := _taken_back(site, best, seen)) is not None:
        claims.append(best := taken_back)
    rivals = sorted({claim.active_site for claim in claims if claim.epoch == best.epoch})
    if len(rivals) > 1:
        message = f"both {' and '.join(rivals)} claim to be active at epoch {best.epoch}"
        return Decision(fenced("ConflictingClaims", message, best.epoch), None, None)
    if best.active_site != site:
        return _standby(best)
    return _claimed(site, peer, best, seen, previous)


def _taken_back(site: str, best: Claim, seen: Observations) -> Claim | None:
    """The epoch a lapsed handover announced, claimed by its source for itself. A target that announced a
    handover and then stopped renewing its heartbeat for a lease may have died during it; its source, fenced
    for it, would otherwise stay fenced for good, and no site be active. The source takes that very epoch
    (not its own again): should the target come back, its Failover finds the epoch taken and fails
    (Superseded) rather than resume with a final sync and demotion tokens the source's writes since have
    outdated. The witness arbitrates: once the target holds its Lease at that epoch, it won; without a
    reachable witness nobody can tell, and the source stays fenced."""
    handover = seen.handover
    if handover is None or not seen.handover_lapsed or handover.to_site == site:
        return None
    if best.active_site != site or handover.epoch <= best.epoch:
        return None
    witness = seen.witness
    if witness is None or not witness.reachable:
        return None
    if witness.claim is not None and witness.claim.epoch >= handover.epoch:
        return None
    return Claim(handover.epoch, site)


def _standby(best: Claim) -> Decision:
    state = SiteState(
        Role.STANDBY,
        best.epoch,
        best.active_site,
        "Standby",
        f"{best.active_site} is active at epoch {best.epoch}",
    )
    return Decision(state, best, None)


def _claimed(site: str, peer: str, best: Claim, seen: Observations, previous: SiteState) -> Decision:
    """The best claim names this site: Active if it can prove so."""
    handover = seen.handover
    if handover is not None and handover.to_site != site and handover.epoch > best.epoch:
        # No witness Lease to hold: it lapses (or is released), which is what the target waits for.
        message = (
            f"handing over to {handover.to_site} for epoch {handover.epoch} (Failover {handover.failover})"
        )
        state = SiteState(Role.FENCED, best.epoch, site, HANDING_OVER, message, final_sync=handover.failover)
        return Decision(state, None, None)
    if seen.witness is not None:
        return _active_with_witness(site, best, seen.witness)
    if best == seen.promotion and seen.own != best:
        # No witness to arbitrate: the Failover (a person's decision, taken once the peer was silent for a
        # whole Lease, so fenced) is the proof.
        promoted = _active(site, best, "promoted by a Failover")
        return Decision(replace(promoted, on_failovers_word=not seen.peer_current), best, None)
    return _active_without_witness(site, peer, best, seen, previous)


def _bootstrap(site: str, peer: str, preferred: str, seen: Observations) -> Decision:
    """No epoch anywhere yet: the preferred primary starts epoch 1 once its peer runs with the Topology."""
    if site != preferred:
        message = f"no epoch yet: waiting for the preferred primary {preferred} to start epoch {FIRST_EPOCH}"
        return Decision(fenced("AwaitingBootstrap", message), None, None)
    if not seen.peer_seen:
        message = f"no epoch yet: waiting for {peer} to run with this Topology before starting epoch 1"
        return Decision(fenced("AwaitingPeer", message), None, None)
    if not seen.settings_agree:
        # Each might name itself the preferred primary: both would start the first epoch.
        message = (
            f"no epoch yet: {peer}'s Topology differs from this one (condition SettingsMatch): apply the "
            f"same Topology at both sites before starting epoch {FIRST_EPOCH}"
        )
        return Decision(fenced("SettingsMismatch", message), None, None)
    first = Claim(FIRST_EPOCH, site)
    if seen.witness is not None:
        message = f"starting epoch {FIRST_EPOCH}: acquiring the witness Lease"
        return Decision(fenced("AcquiringWitnessLease", message), None, first)
    started = _active(site, first, f"started epoch {FIRST_EPOCH} as the preferred primary")
    return Decision(started, first, None)


def _active_with_witness(site: str, best: Claim, witness: WitnessView) -> Decision:
    lease = witness.claim
    if witness.held and lease == best:
        return Decision(_active(site, best, "holds the witness Lease"), best, best)
    if lease is not None and lease.active_site != site and lease.epoch >= best.epoch:
        message = (
            f"the witness Lease is held by {lease.active_site} (epoch {lease.epoch}): "
            f"not active until it is released"
        )
        return Decision(fenced("WitnessHeldByPeer", message, best.epoch, site), None, None)
    if lease is not None and lease.active_site != site:
        # A promotion to a later epoch: the Lease is taken over once released or lapsed (`sites.witness`).
        message = (
            f"promoting to epoch {best.epoch}: waiting for {lease.active_site}'s witness Lease "
            f"(epoch {lease.epoch}) to be released or to lapse"
        )
        return Decision(fenced("AwaitingWitnessLease", message, best.epoch, site), None, best)
    if not witness.reachable:
        message = f"cannot reach the witness to hold its Lease for epoch {best.epoch}"
        return Decision(fenced("WitnessUnreachable", message, best.epoch, site), None, best)
    message = f"acquiring the witness Lease for epoch {best.epoch}"
    return Decision(fenced("AcquiringWitnessLease", message, best.epoch, site), None, best)


def _active_without_witness(
    site: str, peer: str, best: Claim, seen: Observations, previous: SiteState
) -> Decision:
    if seen.peer_current:
        return Decision(_active(site, best, f"{peer} claims no later epoch"), best, None)
    confirmed = previous.role is Role.ACTIVE and previous.epoch == best.epoch
    if confirmed and seen.accept_split_brain_risk:
        why = f"the Topology's acceptSplitBrainRisk keeps it active without hearing {peer}"
        return Decision(_active(site, best, why), best, None)
    if confirmed and previous.on_failovers_word:
        return Decision(previous, best, None)
    if confirmed or previous.reason == PEER_SILENT:
        message = (
            f"{site} has not heard {peer} for two thirds of the Lease: fenced, so that a Failover at {peer} "
            "never meets a second writer (active again once it hears from it; the Topology's "
            "failover.acceptSplitBrainRisk would keep it active instead)"
        )
        return Decision(fenced(PEER_SILENT, message, best.epoch, site), None, None)
    message = f"cannot confirm that {peer} has not taken over since epoch {best.epoch}: waiting for it"
    return Decision(fenced("PeerUnconfirmed", message, best.epoch, site), None, None)


def _active(site: str, claim: Claim, why: str) -> SiteState:
    message = f"{site} is active at epoch {claim.epoch}: {why}"
    return SiteState(Role.ACTIVE, claim.epoch, site, "Active", message)
