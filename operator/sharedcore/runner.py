"""`sharedcore run`: one operator process for one site: Kopf embedded, workers, metrics and health."""

import asyncio
import contextlib
import faulthandler
import io
import logging
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import click
import kopf
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sharedcore import SYSTEM_NAMESPACE
from sharedcore.kube import credentials, loops
from sharedcore.kube.client import KubeClient
from sharedcore.metrics import API_REQUESTS, REGISTRY
from sharedcore.sites.peers import REMOTE_ERRORS, Peers
from sharedcore.wiring import Options, assemble, configure, register

log = logging.getLogger("sharedcore")
# Another site gets this long to answer: more than a loaded API server needs, and short enough that a link
# which drops packets costs a heartbeat or two, not a reconcile.
PEER_TIMEOUT_SECONDS = 3.0
# A stop that takes longer is stuck (seen once in CI: still running 30 s after SIGTERM, as 20 services were
# being deleted): the tasks still running are logged at half of it; at all of it every thread's stack goes to
# stderr and the process exits 1, before the kubelet's SIGKILL at 30 s.
SHUTDOWN_GRACE_SECONDS = 20.0


def _count(cluster: str) -> Callable[[str, int], None]:
    def observe(verb: str, code: int) -> None:
        API_REQUESTS.labels(cluster, verb, str(code)).inc()

    return observe


async def _serve(routes: list[web.RouteDef], port: int) -> web.AppRunner:
    app = web.Application()
    app.add_routes(routes)
    # Probes and scrapes are not worth waiting for on the way out (aiohttp would wait up to 60 s).
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner


def _own_signals(stop: asyncio.Event) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """SIGTERM and SIGINT set `stop`. Kopf installs its own handlers as it starts, replacing these, and on a
    signal would stop by itself, cancelling the tasks this operator's loops spawned, which looked like a
    crash: once Kopf is up (the Event returned, for its ready_flag) the signals are taken back, and Kopf stops
    through its stop_flag like everything else. The task that takes them back is returned, to be cancelled."""
    loop = asyncio.get_running_loop()

    def take() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

    async def retake(up: asyncio.Event) -> None:
        await up.wait()
        take()

    take()
    kopf_up = asyncio.Event()
    return kopf_up, asyncio.create_task(retake(kopf_up), name="signals")


async def metrics(request: web.Request) -> web.Response:
    """The exposition; with `name[]` parameters, of those metric families only (as Prometheus' clients
    allow): a frequent reader of one gauge (the tests' role sampler) does not pay for every service's."""
    names = request.query.getall("name[]", [])
    registry = REGISTRY.restricted_registry(names) if names else REGISTRY
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def run(options: Options) -> None:
    creds = credentials.load(options.kubeconfig)
    client = KubeClient(creds, observer=_count("local"))
    peers = Peers(
        client, timeout=PEER_TIMEOUT_SECONDS, observer=_count, user_agent=f"sharedcore/{options.site}"
    )
    parts = assemble(options, client, peers)
    controller = parts.services

    async def healthz(_: web.Request) -> web.Response:
        ok = controller.health.alive(len(parts.runtime.queue))
        return web.Response(status=200 if ok else 500, text="ok" if ok else "workers stalled")

    async def readyz(_: web.Request) -> web.Response:
        ok = controller.health.synced
        return web.Response(status=200 if ok else 503, text="ok" if ok else "first sync not done")

    registry = kopf.OperatorRegistry()
    register(
        registry,
        controller,
        parts.site,
        parts.replicator,
        failovers=parts.failovers,
        system_namespace=options.system_namespace,
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
    kopf_up, retaken = _own_signals(stop)
    log.info(
        "sharedcore at site %s: %s",
        options.site,
        f"namespaces {', '.join(options.namespaces)}" if options.namespaces else "all namespaces",
    )
    # Watching only some namespaces, Kopf must still see the system namespace's Secrets (kubeconfigs).
    watched = [*options.namespaces, options.system_namespace] if options.namespaces else []

    async def kopf_once_ready() -> None:
        # Kopf reads the API server's discovery once, as it starts, and serves only the resources it found
        # then: started while the API server itself starts (one API group listed, for its first seconds), it
        # would go on without watching SharedServices, Topologies or Failovers until restarted.
        await loops.until_done(client.ready, REMOTE_ERRORS, "waiting for the API server to be ready")
        await kopf.operator(
            registry=registry,
            # Kopf would name itself after the process's user, from the passwd database; the image runs
            # as a numeric user that has no entry there (getpwuid fails and Kopf with it).
            identity=cast(Any, f"sharedcore-{options.site}@{socket.gethostname()}"),  # Kopf's NewType
            standalone=True,
            clusterwide=not options.namespaces,
            namespaces=watched,
            stop_flag=stop,
            ready_flag=kopf_up,
        )

    tasks = [
        asyncio.create_task(kopf_once_ready(), name="kopf"),
        *(asyncio.create_task(job, name=name) for name, job in parts.loops.items()),
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
        faulthandler.dump_traceback_later(SHUTDOWN_GRACE_SECONDS, exit=True)
        stop.set()
        retaken.cancel()
        for task in tasks:
            task.cancel()
        _, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS / 2)
        for task in stuck:
            where = io.StringIO()
            task.print_stack(file=where)
            log.error(
                "%s has not stopped %.0fs after it was told to:\n%s",
                task.get_name(),
                SHUTDOWN_GRACE_SECONDS / 2,
                where.getvalue(),
            )
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
