"""How one site's operator is put together: its controllers, who wakes whom, and the Kopf handlers.

`assemble` builds the parts and connects them: the site's decisions requeue every service and wake the
replicator, the Failover executor's promotion tokens requeue the services, the lag poller's changes requeue
them too. The SiteContext a service renders for is composed here: the site's (role, epoch, peer, a final
sync it still pushes) with the tokens of the Failover promoting this site.
Kopf is the watch source (reconnects, bookmarks) and keeps the SharedService finalizer; the controllers'
own workers do the reconciling (`register`). `sharedcore.runner` runs it all in one process.
"""

import dataclasses
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf

from sharedcore import API_GROUP, SYSTEM_NAMESPACE
from sharedcore.api import ReplicationPolicy, Role
from sharedcore.failover.controller import FailoverController
from sharedcore.kube.client import KubeClient
from sharedcore.kube.events import EventRecorder
from sharedcore.kube.resources import (
    CONFIG_MAPS,
    FAILOVERS,
    MANAGED_BY,
    RENDERED,
    SECRETS,
    SHARED_SERVICES,
    TOPOLOGIES,
)
from sharedcore.render import SiteContext
from sharedcore.replication.config import ConfigReplicator
from sharedcore.replication.lag import PrometheusPoller
from sharedcore.services.controller import SharedServiceController
from sharedcore.services.runtime import Runtime
from sharedcore.sites.controller import SiteController
from sharedcore.sites.peers import Peers


@dataclass(frozen=True)
class Options:
    site: str
    namespaces: tuple[str, ...]
    metrics_port: int
    health_port: int
    resync_seconds: float
    workers: int
    kubeconfig: Path | None
    system_namespace: str = SYSTEM_NAMESPACE
    prometheus_url: str | None = None
    lag_poll_seconds: float = 10.0
    single_site: bool = False


@dataclass(frozen=True)
class Operator:
    """One site's controllers, and the loops that keep them working (by name)."""

    site: SiteController
    runtime: Runtime
    services: SharedServiceController
    replicator: ConfigReplicator
    failovers: FailoverController
    loops: dict[str, Coroutine[Any, Any, None]]


def _standby(site: SiteController, peers: Peers) -> tuple[KubeClient, int] | None:
    """Where configuration replicates to, and under which epoch: only while this site is the active one."""
    peer = site.peer_name()
    client = peers.client(peer) if peer and site.active() else None
    return (client, site.state.epoch) if client else None


def _replication_policy(site: SiteController) -> ReplicationPolicy:
    """The Topology's allow-lists; none without a usable Topology (nothing replicates then anyway)."""
    topology = site.topology()
    return topology.spec.replication if topology else ReplicationPolicy()


def _peer(site: SiteController, peers: Peers) -> KubeClient | None:
    peer = site.peer_name()
    return peers.client(peer) if peer else None


def site_context(site: SiteController, failovers: FailoverController) -> Callable[[], SiteContext]:
    """What a service renders for: the site as decided, and the tokens of a Failover promoting it."""

    def context() -> SiteContext:
        here, tokens = site.context(), failovers.promotion_tokens()
        if not tokens:
            return here
        return dataclasses.replace(here, failover=dataclasses.replace(here.failover, promotion_tokens=tokens))

    return context


def assemble(options: Options, client: KubeClient, peers: Peers) -> Operator:
    recorder = EventRecorder(client, options.site)
    site = SiteController(
        options.site,
        client,
        recorder=recorder,
        peers=peers,
        namespace=options.system_namespace,
        single_site=options.single_site,
    )
    rt = Runtime(
        client=client,
        recorder=recorder,
        site=site.context,
        resync_seconds=options.resync_seconds,
        policy=lambda: _replication_policy(site),
        topology=lambda: topology.spec if (topology := site.topology()) else None,
        report_capacity=site.report_capacity,
        peer=lambda: _peer(site, peers),
    )
    services = SharedServiceController(rt, options.namespaces, options.workers)
    replicator = ConfigReplicator(
        options.site,
        client,
        target=lambda: _standby(site, peers),
        policy=lambda: _replication_policy(site),
        namespaces=options.namespaces,
        excluded_namespace=options.system_namespace,
        resync_seconds=options.resync_seconds,
    )
    failovers = FailoverController(
        client,
        recorder=recorder,
        site=site,
        peer_client=lambda: _peer(site, peers),
        services=rt.services.values,
        managed=lambda resource: rt.cache.of_kind(resource.api_version, resource.kind),
        owned=rt.cache.owned_by,
    )
    rt.site = site_context(site, failovers)
    site.subscribe(services.requeue)
    site.subscribe(replicator.trigger)
    failovers.subscribe(services.requeue)
    loops = {
        "site": site.run(resume=failovers.handover_in_flight),
        "services": services.run(site.settled.wait()),
        "replication": replicator.run(),
        "failovers": failovers.run(site.settled.wait()),
        "automatic failover": failovers.watch(site.settled.wait()),
    }
    if options.prometheus_url:
        poller = PrometheusPoller(
            options.prometheus_url,
            rt.lag,
            interval=options.lag_poll_seconds,
            wanted=lambda: site.state.role is not Role.ACTIVE,
            on_change=services.requeue,
        )
        loops["lag"] = poller.run()
    return Operator(site, rt, services, replicator, failovers, loops)


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
        controller.on_secret_event(event.get("type"), obj)
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


class NoChangeTracking(kopf.DiffBaseStorage):
    """Kopf tracks what changed in an object since it was last handled (its essence, stored in an annotation)
    for create and update handlers; sharedcore has none (its own workers reconcile the level), only a
    deletion handler, which needs the finalizer alone. Every object's essence is the same empty one: Kopf
    builds none (a deep copy of the whole body on every event) and writes none (a patch per new object)."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def configure(settings: kopf.OperatorSettings) -> None:
    """Our own prefix for Kopf's bookkeeping, and no Kopf-posted events (we post the ones that matter)."""
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = NoChangeTracking()
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.queueing.worker_limit = 64
