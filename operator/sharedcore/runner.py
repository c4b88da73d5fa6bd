"""`sharedcore run`: one operator process for one site: Kopf embedded, workers, metrics and health."""

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import click
import kopf
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sharedcore import SYSTEM_NAMESPACE
from sharedcore.api import ReplicationPolicy, Role
from sharedcore.failover.controller import FailoverController
from sharedcore.kube import credentials
from sharedcore.kube.client import KubeClient
from sharedcore.kube.events import EventRecorder
from sharedcore.metrics import API_REQUESTS, REGISTRY
from sharedcore.replication.config import ConfigReplicator
from sharedcore.replication.lag import PrometheusPoller
from sharedcore.services.controller import SharedServiceController
from sharedcore.services.runtime import Runtime
from sharedcore.sites.controller import SiteController
from sharedcore.sites.peers import Peers
from sharedcore.wiring import configure, register

log = logging.getLogger("sharedcore")
# Another site gets this long to answer: more than a loaded API server needs, and short enough that a link
# which drops packets costs a heartbeat or two, not a reconcile.
PEER_TIMEOUT_SECONDS = 3.0


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


def _count(cluster: str) -> Callable[[str, int], None]:
    def observe(verb: str, code: int) -> None:
        API_REQUESTS.labels(cluster, verb, str(code)).inc()

    return observe


async def _serve(routes: list[web.RouteDef], port: int) -> web.AppRunner:
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner


async def run(options: Options) -> None:
    creds = credentials.load(options.kubeconfig)
    client = KubeClient(creds, observer=_count("local"))
    recorder = EventRecorder(client, options.site)
    peers = Peers(
        client, timeout=PEER_TIMEOUT_SECONDS, observer=_count, user_agent=f"sharedcore/{options.site}"
    )
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
    controller = SharedServiceController(rt, options.namespaces, options.workers)
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
    )
    site.subscribe(controller.requeue)
    site.subscribe(replicator.trigger)
    background = {
        "site": site.run(),
        "services": controller.run(site.settled.wait()),
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
            on_change=controller.requeue,
        )
        background["lag"] = poller.run()

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        ok = controller.health.alive(len(rt.queue))
        return web.Response(status=200 if ok else 500, text="ok" if ok else "workers stalled")

    async def readyz(_: web.Request) -> web.Response:
        ok = controller.health.synced
        return web.Response(status=200 if ok else 503, text="ok" if ok else "first sync not done")

    registry = kopf.OperatorRegistry()
    register(
        registry, controller, site, replicator, failovers=failovers, system_namespace=options.system_namespace
    )

    @kopf.on.startup(registry=registry)
    def _settings(settings: kopf.OperatorSettings, **_: object) -> None:
        configure(settings)

    @kopf.on.login(registry=registry)
    def _login(**_: object) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(
            server=creds.server,
            ca_data=creds.ca_data,
            insecure=creds.insecure,
            scheme="Bearer",
            token=creds.bearer(),
            certificate_data=creds.cert_data,
            private_key_data=creds.key_data,
            default_namespace=creds.namespace,
        )

    servers = [
        await _serve([web.get("/metrics", metrics)], options.metrics_port),
        await _serve([web.get("/healthz", healthz), web.get("/readyz", readyz)], options.health_port),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "sharedcore at site %s: %s",
        options.site,
        f"namespaces {', '.join(options.namespaces)}" if options.namespaces else "all namespaces",
    )
    # Watching only some namespaces, Kopf must still see the system namespace's Secrets (kubeconfigs).
    watched = [*options.namespaces, options.system_namespace] if options.namespaces else []
    tasks = [
        asyncio.create_task(
            kopf.operator(
                registry=registry,
                # Kopf would name itself after the process's user, from the passwd database; the image runs
                # as a numeric user that has no entry there (getpwuid fails and Kopf with it).
                identity=cast(Any, f"sharedcore-{options.site}@{socket.gethostname()}"),  # Kopf's NewType
                standalone=True,
                clusterwide=not options.namespaces,
                namespaces=watched,
                stop_flag=stop,
            ),
            name="kopf",
        ),
        *(asyncio.create_task(job, name=name) for name, job in background.items()),
    ]
    try:
        done, _ = await asyncio.wait(
            [*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        ended = [task for task in done if task in tasks]
        if ended and not stop.is_set():
            # Nothing here ends by itself: Kopf stopped, or a loop met what it should have survived.
            task = ended[0]
            cause = None if task.cancelled() else task.exception()
            raise RuntimeError(f"{task.get_name()} ended unexpectedly") from cause
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(*tasks)
        for server in servers:
            await server.cleanup()
        await peers.close()
        await client.close()


@click.command("run")
@click.option("--site", required=True, help="This operator's site (a Topology site name).")
@click.option("--namespace", "namespaces", multiple=True, help="Watch only these namespaces (repeatable).")
@click.option(
    "--all-namespaces", is_flag=True, help="Watch every namespace (the default without --namespace)."
)
@click.option("--metrics-port", default=8080, show_default=True)
@click.option("--health-port", default=8081, show_default=True)
@click.option(
    "--resync-seconds", default=60.0, show_default=True, help="Full resync (and drift repair) interval."
)
@click.option("--workers", default=8, show_default=True, help="Services reconciled concurrently.")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Default: $KUBECONFIG, then the pod's service account.",
)
@click.option(
    "--system-namespace",
    default=SYSTEM_NAMESPACE,
    show_default=True,
    help="The operator's own namespace: heartbeat Leases and the peers' kubeconfig Secrets.",
)
@click.option(
    "--prometheus-url",
    help="Prometheus that scrapes CloudNativePG's instances, for the standby's database lag.",
)
@click.option(
    "--lag-poll-seconds", default=10.0, show_default=True, help="How often the database lag is read."
)
@click.option(
    "--single-site",
    is_flag=True,
    help="Without a Topology, run as one Active site. Without this flag and without a Topology the site "
    "stays Fenced and renders nothing; a site that was part of a pair stays Fenced either way.",
)
@click.option("--log-level", default="INFO", show_default=True)
def run_command(
    *,
    site: str,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    metrics_port: int,
    health_port: int,
    resync_seconds: float,
    workers: int,
    kubeconfig: Path | None,
    system_namespace: str,
    prometheus_url: str | None,
    lag_poll_seconds: float,
    single_site: bool,
    log_level: str,
) -> None:
    """Run the operator for one site."""
    if namespaces and all_namespaces:
        raise click.UsageError("--namespace and --all-namespaces exclude each other")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf").setLevel(max(logging.WARNING, logging.getLogger().level))
    options = Options(
        site,
        namespaces,
        metrics_port,
        health_port,
        resync_seconds,
        workers,
        kubeconfig,
        system_namespace=system_namespace,
        prometheus_url=prometheus_url,
        lag_poll_seconds=lag_poll_seconds,
        single_site=single_site,
    )
    asyncio.run(run(options))
