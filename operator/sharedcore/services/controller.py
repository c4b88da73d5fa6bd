"""The SharedService controller: watch events feed the caches and the work queue; workers do the reconciling.

Kopf watches (with its reconnects, bookmarks and finalizer bookkeeping, see `sharedcore.wiring`); a bounded
pool of workers takes keys from the deduplicating queue, so a burst of events for one service costs one
reconcile.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Collection
from dataclasses import dataclass, field
from typing import Any

from sharedcore.kube import loops
from sharedcore.kube.cache import SERVICE_LABEL
from sharedcore.kube.client import ApiError
from sharedcore.kube.resources import (
    MANAGED_BY,
    RENDERED,
    SHARED_SERVICES,
    Resource,
)
from sharedcore.metrics import (
    FEASIBILITY,
    MANAGED_SERVICES,
    PARALLEL_RUN,
    RECONCILE_DURATION,
    RECONCILE_TOTAL,
    REPLICATION,
    SERVICES,
    WORKQUEUE_DEPTH,
)
from sharedcore.services import reconcile
from sharedcore.services.runtime import Runtime, ServiceKey

log = logging.getLogger(__name__)


@dataclass
class Health:
    """Readiness: the first full sync is done. Liveness: workers keep taking work (or have none)."""

    synced: bool = False
    last_progress: float = field(default_factory=time.monotonic)

    def alive(self, queue_depth: int, stall_seconds: float = 120.0) -> bool:
        return queue_depth == 0 or time.monotonic() - self.last_progress < stall_seconds


class SharedServiceController:
    def __init__(self, rt: Runtime, namespaces: Collection[str], workers: int) -> None:
        self.rt = rt
        self.namespaces = list(namespaces)  # empty: all namespaces
        self.workers = workers
        self.health = Health()
        self._first_pass: set[ServiceKey] = set()  # the services found at start not yet reconciled once
        self._first_pass_done = asyncio.Event()

    # --- feeding the queue -------------------------------------------------------------------------------

    def on_service_event(self, event_type: str | None, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if event_type == "DELETED":
            self.rt.services.pop(key, None)
            self.rt.queue.forget(key)  # its failures, and their backoff
            self.rt.provisioned.discard(key)  # a namesake's credentials are looked for again
            SERVICES.forget(*key)
            REPLICATION.forget(*key)
            FEASIBILITY.set(*key, None)
            PARALLEL_RUN.set(*key, None)
            admitted = reconcile.assess_capacity(self.rt)  # the room it leaves may let others in
            for refused in admitted.refused if admitted else ():
                self.rt.queue.add(refused)
        else:
            self.rt.services[key] = obj
            self.rt.queue.add(key)
        MANAGED_SERVICES.set(len(self.rt.services))

    def on_owned_event(self, event_type: str | None, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self.rt.cache.remove(obj)
        else:
            self.rt.cache.upsert(obj)
        meta = obj["metadata"]
        service = meta.get("labels", {}).get(SERVICE_LABEL)
        if service and (meta.get("namespace"), service) in self.rt.services:
            self.rt.queue.add((meta["namespace"], service))

    def on_secret_event(self, event_type: str | None, obj: dict[str, Any]) -> None:
        """Which Secrets exist, so that a reconcile need not ask (see `reconcile._missing_references`)."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if event_type == "DELETED":
            self.rt.secrets.discard(key)
        else:
            self.rt.secrets.add(key)

    def requeue(self, namespaces: set[str] | None = None) -> None:
        """Look at every service again (in `namespaces` only, if given): the site or the replicas changed."""
        for key in list(self.rt.services):
            if namespaces is None or key[0] in namespaces:
                self.rt.queue.add(key)
        reconcile.assess_capacity(self.rt)  # the capacities may have changed, with no service to reconcile
        WORKQUEUE_DEPTH.set(len(self.rt.queue))

    # --- startup: prime the caches so the first pass writes only what really differs ---------------------

    async def _list(self, resource: Resource, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        scopes: list[str | None] = [*self.namespaces] or [None]
        found = []
        for namespace in scopes:
            try:
                found += await self.rt.client.list(resource, namespace, labels)
            except ApiError as error:
                if error.status != 404:  # 404: the kind's CRD is not installed here; nothing to cache
                    raise
        return found

    async def prime(self) -> list[ServiceKey]:
        for resource in RENDERED:
            for obj in await self._list(resource, MANAGED_BY):
                obj.setdefault("apiVersion", resource.api_version)
                obj.setdefault("kind", resource.kind)
                self.rt.cache.upsert(obj)
        keys = []
        for obj in await self._list(SHARED_SERVICES):
            obj.setdefault("apiVersion", SHARED_SERVICES.api_version)
            obj.setdefault("kind", SHARED_SERVICES.kind)
            self.on_service_event(None, obj)
            keys.append((obj["metadata"]["namespace"], obj["metadata"]["name"]))
        log.info("primed: %d services, %d owned objects", len(keys), len(self.rt.cache))
        return keys

    # --- work ---------------------------------------------------------------------------------------------

    async def _reconcile_one(self, key: ServiceKey) -> None:
        started = time.perf_counter()
        try:
            requeue = await reconcile.reconcile(self.rt, key)
        except Exception as error:  # any failure of one service must not stop the others
            delay = self.rt.queue.retry(key)
            log.warning("reconcile %s/%s failed (%s), retry in %.1fs", *key, error, delay)
            RECONCILE_TOTAL.labels("SharedService", "error").inc()
        else:
            self.rt.queue.succeeded(key)
            RECONCILE_TOTAL.labels("SharedService", "stalled" if requeue else "success").inc()
            if requeue:
                self.rt.queue.add_after(key, requeue)
        finally:
            RECONCILE_DURATION.labels("SharedService").observe(time.perf_counter() - started)
            self.health.last_progress = time.monotonic()
            self._first_pass.discard(key)
            if not self._first_pass:
                self._first_pass_done.set()

    async def _worker(self) -> None:
        while True:
            key = await self.rt.queue.get()
            try:
                await self._reconcile_one(key)
            finally:
                self.rt.queue.done(key)
                WORKQUEUE_DEPTH.set(len(self.rt.queue))

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.rt.resync_seconds)
            self.requeue()

    async def _prime_until_done(self) -> list[ServiceKey]:
        """Priming needs the API server; until it answers, stay not-ready and keep trying."""
        errors = (ApiError, OSError, TimeoutError)
        return await loops.until_done(self.prime, errors, "listing what this site manages")

    async def run(self, site_settled: Awaitable[object] | None = None) -> None:
        """Prime, reconcile everything found once (then report ready), and keep working until cancelled.

        Nothing renders before `site_settled`: a site must know its role before it acts on it.
        """
        initial = await self._prime_until_done()
        self._first_pass = set(initial)
        if not initial:
            self._first_pass_done.set()
        if site_settled is not None:
            await site_settled
        tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        tasks.append(asyncio.create_task(self._resync()))
        try:
            # Each once, not all idle at one instant: the events of a busy site keep queueing some again.
            await self._first_pass_done.wait()
            self.health.synced = True
            log.info("first full sync done: %d services", len(initial))
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def finalize(self, body: dict[str, Any]) -> None:
        """Kopf's delete handler: wait out a running reconcile of the same key, then clean up."""
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        self.rt.deleting.add(key)
        try:
            while self.rt.queue.busy(key):
                await asyncio.sleep(0.05)
            await reconcile.finalize(self.rt, body)
        finally:
            self.rt.deleting.discard(key)
