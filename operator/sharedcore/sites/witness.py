"""The witness Lease `sharedcore-active`: read by both sites, held by the active one.

A site counts as the holder only until two thirds of the Lease's duration after it last started a renewal
that succeeded, so it stops acting as Active well before the Lease could expire for anyone else.
Renewals carry the resourceVersion they read: two writers can never both succeed.
"""

import asyncio
import datetime
import logging
import time

from sharedcore.kube.client import ApiError, KubeClient
from sharedcore.kube.resources import LEASES
from sharedcore.sites.leases import ACTIVE_LEASE, Body, active_lease, renewal, witness_claim
from sharedcore.sites.peers import REMOTE_ERRORS, describe
from sharedcore.sites.state import Claim, WitnessView

log = logging.getLogger(__name__)
RENEW_DEADLINE = 2 / 3  # of the Lease duration


class WitnessLease:
    def __init__(self, site: str, namespace: str) -> None:
        self._site, self._namespace = site, namespace
        self._reachable = False
        self._claim: Claim | None = None
        self._held: Claim | None = None
        self._held_until = 0.0  # monotonic
        self._lock = asyncio.Lock()
        self.problem: str | None = "not contacted yet"

    def view(self, now: float) -> WitnessView:
        held = self._held is not None and self._held == self._claim and now < self._held_until
        return WitnessView(self._reachable, self._claim, held)

    async def visit(
        self, client: KubeClient | None, problem: str | None, hold: Claim | None, duration: int
    ) -> None:
        """Read the Lease and, for `hold`, acquire or renew it; what was seen is kept for `view`."""
        async with self._lock:
            if client is None:
                self._reachable, self.problem = False, problem
                return
            started = time.monotonic()
            try:
                lease = await client.get(LEASES, ACTIVE_LEASE, self._namespace)
                if hold is not None:
                    lease = await self._hold(client, lease, hold, duration, started)
            except REMOTE_ERRORS as error:
                if not (isinstance(error, ApiError) and error.status == 409):
                    self._reachable, self.problem = False, describe(error)
                # 409: another writer was first; the next visit reads what it wrote
                return
            self._reachable, self.problem = True, None
            self._claim = witness_claim(lease)

    async def _hold(
        self, client: KubeClient, lease: Body | None, hold: Claim, duration: int, started: float
    ) -> Body | None:
        now = datetime.datetime.now(datetime.UTC)
        current = witness_claim(lease)
        if lease is None:
            lease = await client.create(LEASES, active_lease(self._namespace, hold, duration, now))
            log.info("acquired the witness Lease %s for epoch %d", ACTIVE_LEASE, hold.epoch)
        elif current is None or current.active_site == self._site:
            lease = await client.patch(
                LEASES, ACTIVE_LEASE, self._namespace, renewal(lease, hold, duration, now)
            )
        else:
            return lease  # another site's: taking it over is a failover's decision, not a heartbeat's
        self._held, self._held_until = hold, started + duration * RENEW_DEADLINE
        return lease
