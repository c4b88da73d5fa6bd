"""Topology status at one site, computed purely from what that site observes.

It is rewritten only when something in it changes. The peer's lastHeartbeatTime alone is not such a change
(it would mean a write per heartbeat): it is brought up to date with every other change, so that when the
peer falls silent the status shows its true last heartbeat. The heartbeat Lease has the live time.
"""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from sharedcore import Body
from sharedcore.api import Condition, Role, SiteCapacityStatus, SiteStatus, TopologyStatus, dump
from sharedcore.kube import conditions
from sharedcore.sites.citydns import CONDITION as CITY_DNS_CONDITION
from sharedcore.sites.settings import FailoverSettings
from sharedcore.sites.state import Claim, SiteState, WitnessView

KUBECONFIG_REJECTED = "KubeconfigRejected"
# The conditions whose flips people care about: each flip is an Event.
ANNOUNCED = (
    "Ready",
    "PeerConnected",
    "WitnessReachable",
    "SettingsMatch",
    "AutomaticFailoverReady",
    CITY_DNS_CONDITION,
)


@dataclass(frozen=True)
class PeerView:
    """The other site as this one sees it: can it be reached, and do its heartbeats arrive here."""

    name: str
    reachable: bool
    problem: str | None  # why it cannot be reached
    heartbeats_arrive: bool
    # When its heartbeat was last seen renewed in this cluster, by this site's clock.
    last_heartbeat: datetime.datetime | None
    role: Role | None  # as its heartbeats say
    epoch: int | None
    settings: FailoverSettings | None = None  # its failover settings, as its heartbeats say
    rejected: str | None = None  # why the kubeconfig Secret for reaching it is refused


def _ready(state: SiteState) -> conditions.Want:
    return conditions.Want("Ready", state.established, state.reason, state.message)


def _peer_connected(site: str, peer: PeerView) -> conditions.Want:
    name = peer.name
    if peer.rejected:
        return conditions.Want("PeerConnected", False, KUBECONFIG_REJECTED, peer.rejected)
    if peer.reachable and peer.heartbeats_arrive:
        message = f"{name} answers and its heartbeats arrive"
        return conditions.Want("PeerConnected", True, "Connected", message)
    if peer.reachable:
        message = (
            f"{site} reaches {name}, but {name}'s heartbeats no longer arrive here: its operator is down, "
            f"or the link from {name} to {site} is cut"
        )
        return conditions.Want("PeerConnected", False, "HeartbeatsNotArriving", message)
    if peer.heartbeats_arrive:
        message = (
            f"{name}'s heartbeats arrive, but {site} cannot reach {name} ({peer.problem}): "
            f"the link from {site} to {name} is cut"
        )
        return conditions.Want("PeerConnected", False, "PeerUnreachable", message)
    message = f"{site} cannot reach {name} ({peer.problem}) and its heartbeats no longer arrive"
    return conditions.Want("PeerConnected", False, "PeerLost", message)


def settings_match(site: str, own: FailoverSettings, peer: PeerView) -> conditions.Want:
    if peer.settings is None:
        message = (
            f"{peer.name} has not published its failover settings (not heard from yet, or older version)"
        )
        return conditions.Want("SettingsMatch", None, "PeerSettingsUnknown", message)
    differences = own.differences(peer.settings)
    if not differences:
        message = f"{site} and {peer.name} run with the same failover settings ({own.digest})"
        return conditions.Want("SettingsMatch", True, "Match", message)
    message = (
        f"the Topology's failover settings differ between {site} and {peer.name} ({'; '.join(differences)}): "
        "durations are judged by the more conservative site's; apply the same Topology at both sites"
    )
    return conditions.Want("SettingsMatch", False, "SettingsMismatch", message)


def _witness_reachable(witness: WitnessView, problem: str | None, rejected: str | None) -> conditions.Want:
    if rejected:
        return conditions.Want("WitnessReachable", False, KUBECONFIG_REJECTED, rejected)
    if not witness.reachable:
        message = problem or "the witness does not answer"
        return conditions.Want("WitnessReachable", False, "Unreachable", message)
    lease = witness.claim
    holder = f"names {lease.active_site} at epoch {lease.epoch}" if lease else "is not held"
    return conditions.Want("WitnessReachable", True, "Reachable", f"the witness Lease {holder}")


def build(
    topology: Body,
    site: str,
    state: SiteState,
    *,
    recorded: Claim | None,
    peer: PeerView,
    witness: tuple[WitnessView, str | None, str | None] | None,
    now: str,
    settings: FailoverSettings | None = None,
    extra: Sequence[conditions.Want] = (),
    capacity: Sequence[Body] = (),
) -> Body:
    """The status this site reports; `recorded` is the claim it has agreed to, if any; `extra`: conditions
    judged elsewhere (AutomaticFailoverReady). What others record here (lastFailover, peerFencingSeconds)
    and the claim, when none is agreed to now, are kept."""
    stored = topology.get("status") or {}
    current = TopologyStatus.model_validate(stored)
    generation = topology["metadata"].get("generation", 0)
    wanted = [_ready(state), _peer_connected(site, peer)]
    if settings is not None:
        wanted.append(settings_match(site, settings, peer))
    if witness is not None:
        wanted.append(_witness_reachable(*witness))
    wanted.extend(extra)
    own = SiteStatus(name=site, reachable=True, role=state.role, epoch=state.epoch)
    other = SiteStatus(
        name=peer.name,
        reachable=peer.reachable,
        last_heartbeat_time=peer.last_heartbeat,
        role=peer.role,
        epoch=peer.epoch,
    )
    order = [entry["name"] for entry in topology["spec"]["sites"]]
    status = TopologyStatus(
        observed_generation=generation,
        site=site,
        conditions=_conditions(stored, wanted, generation, now),
        sites=sorted((own, other), key=lambda entry: order.index(entry.name)),
        active_site=recorded.active_site if recorded else current.active_site,
        epoch=recorded.epoch if recorded else current.epoch,
        last_failover=current.last_failover,
        peer_fencing_seconds=current.peer_fencing_seconds,
        capacity=[SiteCapacityStatus.model_validate(entry) for entry in capacity],
    )
    return dump(status)


def _conditions(stored: Body, wanted: list[conditions.Want], generation: int, now: str) -> list[Condition]:
    merged = conditions.merge(stored.get("conditions") or [], wanted, generation, now)
    return [Condition.model_validate(condition) for condition in merged]


def _without_heartbeat_times(status: Body) -> Body:
    sites = [
        {key: value for key, value in entry.items() if key != "lastHeartbeatTime"}
        for entry in status.get("sites", [])
    ]
    return {**status, "sites": sites}


def differs(current: Body | None, new: Body) -> bool:
    """Whether `new` says anything `current` does not, a newer heartbeat time aside."""
    return _without_heartbeat_times(current or {}) != _without_heartbeat_times(new)


@dataclass(frozen=True)
class Flip:
    """An Event to record about the Topology."""

    type: str  # Normal or Warning
    reason: str
    message: str


def flips(site: str, old: Body, new: Body) -> list[Flip]:
    """The Events for the flips between two statuses: the site's role, and its links to the others."""
    found = []
    for type_ in ANNOUNCED:
        was = conditions.find(old.get("conditions"), type_)
        now = conditions.find(new["conditions"], type_)
        if now is None or now["status"] == "Unknown":
            continue
        if was and (was["status"], was["reason"]) == (now["status"], now["reason"]):
            continue
        kind = "Normal" if now["status"] == "True" else "Warning"
        if type_ == "Ready":
            role = next(entry for entry in new["sites"] if entry["name"] == site)["role"]
            found.append(Flip(kind, f"Site{role}", now["message"]))
        else:
            found.append(Flip(kind, now["reason"] if now["status"] != "True" else type_, now["message"]))
    return found


def recorded_claim(topology: Body) -> Claim | None:
    status = topology.get("status") or {}
    epoch, active = status.get("epoch"), status.get("activeSite")
    return Claim(int(epoch), str(active)) if isinstance(epoch, int) and epoch > 0 and active else None


def unusable(topology: Body, state: SiteState, *, now: str) -> Body:
    """The status of a Topology this site cannot use: its Ready condition says why (the rest is kept)."""
    stored = topology.get("status") or {}
    current = TopologyStatus.model_validate(stored)
    generation = topology["metadata"].get("generation", 0)
    ready = _conditions(stored, [_ready(state)], generation, now)
    others = [condition for condition in current.conditions if condition.type != "Ready"]
    return dump(current.model_copy(update={"observed_generation": generation, "conditions": ready + others}))
