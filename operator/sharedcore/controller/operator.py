"""Kopf wiring, kept thin: handlers only feed the caches and the work queue; workers do the reconciling.

Kopf watches (with its reconnects, bookmarks and finalizer bookkeeping); a bounded pool of workers takes keys
from the deduplicating queue, so a burst of events for one service costs one reconcile.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Collection
from dataclasses import dataclass, field
from typing import Any

import kopf

from sharedcore import API_GROUP
from sharedcore.controller import sharedservice
from sharedcore.controller.cache import SERVICE_LABEL
from sharedcore.controller.runtime import Runtime, ServiceKey
from sharedcore.failover.controller import FailoverController
from sharedcore.kube.client import ApiError
from sharedcore.kube.resources import (
    CONFIG_MAPS,
    FAILOVERS,
    MANAGED_BY,
    RENDERED,
    SECRETS,
    SHARED_SERVICES,
    TOPOLOGIES,
    Resource,
)
from sharedcore.metrics import (
    MANAGED_SERVICES,
    RECONCILE_DURATION,
    RECONCILE_TOTAL,
    REPLICATION,
    SERVICES,
    WORKQUEUE_DEPTH,
)
from sharedcore.replication.config import ConfigReplicator
from sharedcore.sites.controller import SiteController

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 300.0


@dataclass
class Health:
    """Readiness: the first full sync is done. Liveness: workers keep taking work (or have none)."""

    synced: bool = False
    last_progress: float = field(default_factory=time.monotonic)

    def alive(self, queue_depth: int, stall_seconds: float = 120.0) -> bool:
        return queue_depth == 0 or time.monotonic() - self.last_progress < stall_seconds


class Controller:
    def __init__(self, rt: Runtime, namespaces: Collection[str], workers: int) -> None:
        self.rt = rt
        self.namespaces = list(namespaces)  # empty: all namespaces
        self.workers = workers
        self.health = Health()
        self._failures: dict[ServiceKey, int] = {}

    # --- feeding the queue -------------------------------------------------------------------------------

    def on_service_event(self, event_type: str | None, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if event_type == "DELETED":
            self.rt.services.pop(key, None)
            self.rt.queue.forget(key)
            SERVICES.forget(*key)
            REPLICATION.forget(*key)
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

    def requeue(self, namespaces: set[str] | None = None) -> None:
        """Look at every service again (in `namespaces` only, if given): the site or the replicas changed."""
        for key in list(self.rt.services):
            if namespaces is None or key[0] in namespaces:
                self.rt.queue.add(key)
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
            requeue = await sharedservice.reconcile(self.rt, key)
        except Exception as error:  # any failure of one service must not stop the others
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures)
            log.warning("reconcile %s/%s failed (%s), retry in %.1fs", *key, error, delay)
            RECONCILE_TOTAL.labels("SharedService", "error").inc()
            self.rt.queue.add_after(key, delay)
        else:
            self._failures.pop(key, None)
            RECONCILE_TOTAL.labels("SharedService", "stalled" if requeue else "success").inc()
            if requeue:
                self.rt.queue.add_after(key, requeue)
        finally:
            RECONCILE_DURATION.labels("SharedService").observe(time.perf_counter() - started)
            self.health.last_progress = time.monotonic()

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
        delay = 0.5
        while True:
            try:
                return await self.prime()
            except (ApiError, OSError, TimeoutError) as error:
                log.warning("cannot list what this site manages yet (%s); retrying in %.1fs", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def run(self, site_settled: Awaitable[object] | None = None) -> None:
        """Prime, reconcile everything once (then report ready), and keep working until cancelled.

        Nothing renders before `site_settled`: a site must know its role before it acts on it.
        """
        initial = await self._prime_until_done()
        if site_settled is not None:
            await site_settled
        tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        tasks.append(asyncio.create_task(self._resync()))
        try:
            while any(self.rt.queue.busy(key) for key in initial):
                await asyncio.sleep(0.1)
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
            await sharedservice.finalize(self.rt, body)
        finally:
            self.rt.deleting.discard(key)


def register(
    registry: kopf.OperatorRegistry,
    controller: Controller,
    site: SiteController,
    replicator: ConfigReplicator,
    *,
    failovers: FailoverController,
    system_namespace: str,
) -> None:
    """The Kopf handlers: thin adapters from watch events to the controllers. Async, so that they run on
    the event loop (Kopf runs sync handlers in threads, where asyncio's queues are not safe)."""

    async def service_event(event: kopf.RawEvent, **_: Any) -> None:
        obj = dict(event["object"])
        controller.on_service_event(event.get("type"), obj)
        replicator.observe(event.get("type"), obj)

    async def owned_event(event: kopf.RawEvent, **_: Any) -> None:
        controller.on_owned_event(event.get("type"), dict(event["object"]))

    async def topology_event(event: kopf.RawEvent, **_: Any) -> None:
        site.on_topology(event.get("type"), dict(event["object"]))

    async def secret_event(event: kopf.RawEvent, **_: Any) -> None:
        obj: dict[str, Any] = dict(event["object"])
        if obj["metadata"].get("namespace") == system_namespace:
            await site.on_secret(event.get("type"), obj)  # perhaps a kubeconfig for the peer or the witness
        replicator.observe(event.get("type"), obj)

    async def config_map_event(event: kopf.RawEvent, **_: Any) -> None:
        obj: dict[str, Any] = dict(event["object"])
        if obj["metadata"].get("namespace") == system_namespace:
            site.on_config_map(event.get("type"), obj)  # perhaps the pair this site remembers
        replicator.observe(event.get("type"), obj)

    async def failover_event(event: kopf.RawEvent, **_: Any) -> None:
        failovers.on_event(event.get("type"), dict(event["object"]))

    async def service_deleted(body: kopf.Body, **_: Any) -> None:
        await controller.finalize(dict(body))

    kopf.on.event(API_GROUP, SHARED_SERVICES.version, SHARED_SERVICES.plural, registry=registry)(
        service_event
    )
    kopf.on.delete(
        API_GROUP, SHARED_SERVICES.version, SHARED_SERVICES.plural, registry=registry, optional=False
    )(service_deleted)
    for resource in RENDERED:
        kopf.on.event(
            resource.group, resource.version, resource.plural, labels=MANAGED_BY, registry=registry
        )(owned_event)
    for resource, handler in (
        (TOPOLOGIES, topology_event),
        (FAILOVERS, failover_event),
        (SECRETS, secret_event),
        (CONFIG_MAPS, config_map_event),
    ):
        kopf.on.event(resource.group, resource.version, resource.plural, registry=registry)(handler)


def configure(settings: kopf.OperatorSettings) -> None:
    """Our own prefix for Kopf's bookkeeping, and no Kopf-posted events (we post the ones that matter)."""
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.batching.worker_limit = 64
