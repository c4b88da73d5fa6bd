"""The witness Lease `sharedcore-active`: read by both sites, held by the active one.

A site counts as the holder only until two thirds of the Lease's duration after it last started a renewal
that succeeded, so it stops acting as Active well before the Lease could expire for anyone else.
Renewals carry the resourceVersion they read: two writers can never both succeed.

Another site's Lease is taken over only for a later epoch (a Failover's Promote step), and only once it is
released (no holder: a site handing over lets go) or has lapsed: not renewed for a whole Lease duration as
this process's clock measures it, counted from when it last saw the Lease change. The holder stopped acting
at two thirds of that duration after its last renewal began, so it has fenced itself by then. "That
duration" is the longer of this site's and the one the Lease records (its holder's): the sites' Topologies
may disagree, and the holder fences itself by its own. Then the holder's data plane follows (databases
demoted, DNS records withdrawn), which takes time: the fencing time measured at the last switchover from it
(`grace`) is waited on top.
"""

import asyncio
import datetime
import logging
import time

from sharedcore import Body
from sharedcore.api.formats import micro_time
from sharedcore.kube.client import ApiError, KubeClient
from sharedcore.kube.resources import LEASES
from sharedcore.sites.leases import (
    ACTIVE_LEASE,
    active_lease,
    lease_epoch,
    renewal,
    witness_claim,
)
from sharedcore.sites.peers import REMOTE_ERRORS, explain
from sharedcore.sites.state import Claim, WitnessView

log = logging.getLogger(__name__)
RENEW_DEADLINE = 2 / 3  # of the Lease duration


class WitnessLease:
    def __init__(self, site: str, namespace: str) -> None:
        self._site, self._namespace = site, namespace
        self._reachable = False
        self._claim: Claim | None = None
        self._epoch = 0  # the epoch the Lease was last held for, as last read (0: none, or no Lease)
        self._held: Claim | None = None
        self._held_until = 0.0  # monotonic
        self._last: tuple[object, ...] | None = None  # (holder, epoch, renewTime) as last read
        self._changed_at: float | None = None  # monotonic time `_last` was first seen
        self.recorded_duration = 0  # the Lease's leaseDurationSeconds as last read: its holder's
        self.grace = 0.0  # seconds its holder's data plane takes to fence, measured: waited beyond a lapse
        self._lock = asyncio.Lock()
        self.problem: str | None = "not contacted yet"
        self._answered_at: float | None = None  # monotonic: when the witness last answered

    def age(self) -> float:
        """Seconds since the witness last answered (+Inf: never)."""
        return float("inf") if self._answered_at is None else time.monotonic() - self._answered_at

    @property
    def changed_at(self) -> float | None:
        """When (monotonic) the Lease was last seen renewed or changed hands."""
        return self._changed_at

    def view(self, now: float) -> WitnessView:
        held = self._held is not None and self._held == self._claim and now < self._held_until
        return WitnessView(self._reachable, self._claim, held)

    def lapsed(self, now: float, duration: int, epoch: int = 0) -> bool:
        """Whether no site holds the Lease: released, or not renewed for `duration` seconds, or for the
        longer duration its holder renewed it with, and then for its data plane's fencing time. A read of the
        Lease older than `epoch`, which this site knows was started (its active site held the Lease to be
        active at it), was taken before that site acquired it: nobody holding it then proves nothing, only a
        whole duration without a change does."""
        if self._claim is None and self._epoch >= epoch:
            return self._reachable
        waited = max(duration, self.recorded_duration) + self.grace
        return self._changed_at is not None and now - self._changed_at >= waited

    def _observe(self, lease: Body | None, now: float) -> None:
        spec = (lease or {}).get("spec", {})
        seen = (spec.get("holderIdentity"), witness_claim(lease), spec.get("renewTime"))
        if seen != self._last:
            self._last, self._changed_at = seen, now
        self._claim = witness_claim(lease)
        self._epoch = lease_epoch(lease) if lease is not None else 0
        recorded = spec.get("leaseDurationSeconds")
        self.recorded_duration = recorded if isinstance(recorded, int) and recorded > 0 else 0

    async def visit(
        self,
        client: KubeClient | None,
        problem: str | None,
        hold: Claim | None,
        duration: int,
        *,
        release: Claim | None = None,
    ) -> None:
        """Read the Lease and, for `hold`, acquire or renew it, or let go of it if held for `release`;
        what was seen is kept for `view`."""
        async with self._lock:
            if client is None:
                self._reachable, self.problem = False, problem
                return
            started = time.monotonic()
            try:
                lease = await client.get(LEASES, ACTIVE_LEASE, self._namespace)
                self._observe(lease, time.monotonic())
                if hold is not None:
                    lease = await self._hold(client, lease, hold, duration, started)
                elif release is not None and lease is not None and witness_claim(lease) == release:
                    patch = {
                        "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                        "spec": {"holderIdentity": None},
                    }
                    lease = await client.patch(LEASES, ACTIVE_LEASE, self._namespace, patch)
                    self._held = None
                    log.info("released the witness Lease %s (epoch %d)", ACTIVE_LEASE, release.epoch)
            except REMOTE_ERRORS as error:
                if not (isinstance(error, ApiError) and error.status == 409):
                    self._reachable, self.problem = (
                        False,
                        explain(error, "witness", self._site, self._namespace),
                    )
                # 409: another writer was first; the next visit reads what it wrote
                return
            self._reachable, self.problem = True, None
            self._answered_at = time.monotonic()
            self._observe(lease, time.monotonic())

    async def _hold(
        self, client: KubeClient, lease: Body | None, hold: Claim, duration: int, started: float
    ) -> Body | None:
        now = datetime.datetime.now(datetime.UTC)
        if lease is None:
            lease = await client.create(LEASES, active_lease(self._namespace, hold, duration, now))
            log.info("acquired the witness Lease %s for epoch %d", ACTIVE_LEASE, hold.epoch)
        elif self._may_hold(lease, hold, duration):
            patch = renewal(lease, hold, duration, now)
            current = witness_claim(lease)
            if current is None or current.active_site != self._site:
                transitions = int(lease["spec"].get("leaseTransitions") or 0) + 1
                patch["spec"] |= {"acquireTime": micro_time(now), "leaseTransitions": transitions}
                log.info("acquired the witness Lease %s for epoch %d", ACTIVE_LEASE, hold.epoch)
            lease = await client.patch(LEASES, ACTIVE_LEASE, self._namespace, patch)
        else:
            return lease  # another site's, current: taking it over needs a later epoch and a lapse
        self._held, self._held_until = hold, started + duration * RENEW_DEADLINE
        return lease

    def _may_hold(self, lease: Body, hold: Claim, duration: int) -> bool:
        current = witness_claim(lease)
        if current is not None and current.active_site == self._site:
            return True
        epoch = lease_epoch(lease)
        if current is None:  # released: by the holder of `epoch`, for a later one (or for the same again)
            return hold.epoch >= epoch
        return hold.epoch > epoch and self.lapsed(time.monotonic(), duration)
