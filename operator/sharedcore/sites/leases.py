"""The Leases the sites coordinate through: heartbeats, and the witness's `sharedcore-active`.

A heartbeat Lease `sharedcore-heartbeat-<site>` is renewed by its site in both clusters and carries the
site's role (and why, when fenced), its recorded claim and its failover settings (with their digest) in
annotations, so the peer learns them even when it cannot reach the site; its leaseDurationSeconds is the
site's own.
The witness Lease names the active site (holderIdentity) and its epoch (annotation).
"""

import datetime
from dataclasses import dataclass

from sharedcore import API_GROUP, Body
from sharedcore.api import Role
from sharedcore.api.formats import micro_time
from sharedcore.sites.settings import FailoverSettings
from sharedcore.sites.state import Claim, Handover

LEASE_API = "coordination.k8s.io/v1"
ACTIVE_LEASE = "sharedcore-active"
ROLE_ANNOTATION = f"{API_GROUP}/role"
REASON_ANNOTATION = f"{API_GROUP}/reason"
SETTINGS_ANNOTATION = f"{API_GROUP}/failover-settings"
SETTINGS_DIGEST_ANNOTATION = f"{API_GROUP}/failover-settings-digest"
EPOCH_ANNOTATION = f"{API_GROUP}/epoch"
ACTIVE_SITE_ANNOTATION = f"{API_GROUP}/active-site"
HANDOVER_EPOCH_ANNOTATION = f"{API_GROUP}/handover-epoch"
HANDOVER_TO_ANNOTATION = f"{API_GROUP}/handover-to"
HANDOVER_FAILOVER_ANNOTATION = f"{API_GROUP}/handover-failover"


def heartbeat_name(site: str) -> str:
    return f"sharedcore-heartbeat-{site}"


def heartbeat(
    site: str,
    namespace: str,
    role: Role,
    claim: Claim | None,
    *,
    duration: int,
    now: datetime.datetime,
    handover: Handover | None = None,
    reason: str | None = None,
    settings: FailoverSettings | None = None,
) -> Body:
    annotations = {ROLE_ANNOTATION: str(role)}
    if reason is not None:
        annotations[REASON_ANNOTATION] = reason
    if settings is not None:
        annotations |= {SETTINGS_ANNOTATION: settings.encode(), SETTINGS_DIGEST_ANNOTATION: settings.digest}
    if claim is not None:
        annotations |= {EPOCH_ANNOTATION: str(claim.epoch), ACTIVE_SITE_ANNOTATION: claim.active_site}
    if handover is not None:
        annotations |= {
            HANDOVER_EPOCH_ANNOTATION: str(handover.epoch),
            HANDOVER_TO_ANNOTATION: handover.to_site,
            HANDOVER_FAILOVER_ANNOTATION: handover.failover,
        }
    return {
        "apiVersion": LEASE_API,
        "kind": "Lease",
        "metadata": {"name": heartbeat_name(site), "namespace": namespace, "annotations": annotations},
        "spec": {"holderIdentity": site, "leaseDurationSeconds": duration, "renewTime": micro_time(now)},
    }


@dataclass(frozen=True)
class Heartbeat:
    """What a site said in its last heartbeat."""

    role: Role | None
    claim: Claim | None
    renew_time: str | None
    handover: Handover | None = None
    reason: str | None = None  # why it is in its role (CamelCase)
    settings: FailoverSettings | None = None
    duration: int | None = None  # its leaseDurationSeconds


def read_heartbeat(lease: Body) -> Heartbeat:
    annotations = lease["metadata"].get("annotations") or {}
    role = annotations.get(ROLE_ANNOTATION)
    epoch, active = annotations.get(EPOCH_ANNOTATION, ""), annotations.get(ACTIVE_SITE_ANNOTATION)
    spec = lease.get("spec") or {}
    settings = FailoverSettings.decode(annotations.get(SETTINGS_ANNOTATION))
    duration = spec.get("leaseDurationSeconds")
    return Heartbeat(
        role=Role(role) if role in {str(member) for member in Role} else None,
        claim=Claim(int(epoch), active) if epoch.isdigit() and active else None,
        renew_time=spec.get("renewTime"),
        handover=_handover(annotations),
        reason=annotations.get(REASON_ANNOTATION),
        # The digest vouches for the settings: a hand-edited annotation is not taken for the peer's word.
        settings=settings
        if settings and settings.digest == annotations.get(SETTINGS_DIGEST_ANNOTATION)
        else None,
        duration=duration if isinstance(duration, int) and duration > 0 else None,
    )


def _handover(annotations: dict[str, str]) -> Handover | None:
    epoch = annotations.get(HANDOVER_EPOCH_ANNOTATION, "")
    to_site, failover = annotations.get(HANDOVER_TO_ANNOTATION), annotations.get(HANDOVER_FAILOVER_ANNOTATION)
    return Handover(int(epoch), to_site, failover) if epoch.isdigit() and to_site and failover else None


def active_lease(namespace: str, claim: Claim, duration: int, now: datetime.datetime) -> Body:
    """The witness Lease as the first holder creates it."""
    return {
        "apiVersion": LEASE_API,
        "kind": "Lease",
        "metadata": {
            "name": ACTIVE_LEASE,
            "namespace": namespace,
            "annotations": {EPOCH_ANNOTATION: str(claim.epoch)},
        },
        "spec": {
            "holderIdentity": claim.active_site,
            "leaseDurationSeconds": duration,
            "acquireTime": micro_time(now),
            "renewTime": micro_time(now),
            "leaseTransitions": 0,
        },
    }


def renewal(lease: Body, claim: Claim, duration: int, now: datetime.datetime) -> Body:
    """A merge patch renewing the witness Lease; its resourceVersion makes it fail if anyone wrote since."""
    return {
        "metadata": {
            "resourceVersion": lease["metadata"]["resourceVersion"],
            "annotations": {EPOCH_ANNOTATION: str(claim.epoch)},
        },
        "spec": {
            "holderIdentity": claim.active_site,
            "leaseDurationSeconds": duration,
            "renewTime": micro_time(now),
        },
    }


def lease_epoch(lease: Body) -> int:
    """The epoch the witness Lease was last held for (0 if none)."""
    epoch = (lease["metadata"].get("annotations") or {}).get(EPOCH_ANNOTATION, "")
    return int(epoch) if epoch.isdigit() else 0


def witness_claim(lease: Body | None) -> Claim | None:
    """Who holds the witness Lease at which epoch; None when nobody does (never held, or released)."""
    if lease is None:
        return None
    holder = lease.get("spec", {}).get("holderIdentity")
    epoch = lease_epoch(lease)
    return Claim(epoch, holder) if holder and epoch else None


class Freshness:
    """When a Lease was last seen renewed, by this process's clock: immune to skew between the sites' clocks.
    The first sight of a Lease proves nothing (it may be an hour old): only seeing it change does."""

    def __init__(self) -> None:
        self.renew_time: str | None = None
        self._seen_at: float | None = None
        self._first_at: float | None = None

    def observe(self, renew_time: str | None, now: float) -> None:
        if renew_time is not None and renew_time != self.renew_time:
            if self.renew_time is not None:
                self._seen_at = now
            else:
                self._first_at = now
            self.renew_time = renew_time

    def age(self, now: float) -> float | None:
        return None if self._seen_at is None else now - self._seen_at

    def fresh(self, now: float, duration: float) -> bool:
        age = self.age(now)
        return age is not None and age < duration

    def silent(self, now: float, duration: float) -> bool:
        """Not seen renewed for `duration`, counting from its first sight (which proves nothing either way)
        when it has not changed since; a Lease never seen is silent."""
        since = self._seen_at if self._seen_at is not None else self._first_at
        return since is None or now - since >= duration
