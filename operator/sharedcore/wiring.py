"""Kopf wiring, kept thin: each handler hands a watch event to the controller that owns it.

Kopf is the watch source (reconnects, bookmarks) and keeps the SharedService finalizer; the controllers' own
workers do the reconciling.
"""

from typing import Any

import kopf

from sharedcore import API_GROUP
from sharedcore.failover.controller import FailoverController
from sharedcore.kube.resources import (
    CONFIG_MAPS,
    FAILOVERS,
    MANAGED_BY,
    RENDERED,
    SECRETS,
    SHARED_SERVICES,
    TOPOLOGIES,
)
from sharedcore.replication.config import ConfigReplicator
from sharedcore.services.controller import SharedServiceController
from sharedcore.sites.controller import SiteController


def register(
    registry: kopf.OperatorRegistry,
    controller: SharedServiceController,
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
