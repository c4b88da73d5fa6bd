"""A pair with a real database, written to while it moves: real nodes, CloudNativePG and a Prometheus at both
sites, both operators (Automatic mode, the API's defaults) and one SharedService with a one-instance database,
under the writer of `sharedcore_testbed.traffic`. Used by `bench/failover.py --real` and `make demo
DEMO_ARGS=--real-database`:

    with real_pair(directory) as (pair, traffic):
        move = switchover(pair, traffic, pair.quangnam)      # a Move: RTOs, rows lost, window, CNPG's times
        move = lose_site(pair, traffic)                      # danang lost: the automatic failover's Move
        seconds, copied = rejoin(pair)                       # danang back, following again; bytes copied
"""

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from sharedcore import API_GROUP, API_VERSION
from sharedcore.plugin import moves
from sharedcore_testbed import Testbed, cnpg, images
from sharedcore_testbed.binaries import source_root
from sharedcore_testbed.clients import SiteClients, as_object
from sharedcore_testbed.operators import data_plane_crds
from sharedcore_testbed.pair import ADDRESSES, Pair, opt_in, prepare_pair, topology
from sharedcore_testbed.targets import ServiceDatabase
from sharedcore_testbed.traffic import Move, Traffic
from sharedcore_testbed.waiting import eventually

SITES = ("danang", "quangnam", "witness")
NAMESPACE = "citydata"
SERVICE = "opendata"  # the OpenData sample's name
TIMEOUT = 300.0


def service() -> dict[str, Any]:
    """The OpenData sample with a one-instance database and no files (VolSync is a stand-in)."""
    sample = source_root() / "tests" / "golden" / "inputs" / "open-data.yaml"
    body: dict[str, Any] = yaml.safe_load(sample.read_text())
    body["metadata"] = {"name": SERVICE, "namespace": NAMESPACE}
    body["spec"].update(
        version=images.STANDIN_VERSIONS[0],  # the workloads run as the testbed's stand-ins
        replicas=1,
        database={"instances": 1, "storage": "1Gi"},
        files={"enabled": False},
    )
    return body


def _get(site: SiteClients, plural: str, name: str) -> dict[str, Any] | None:
    try:
        return as_object(site.custom.get_cluster_custom_object(API_GROUP, API_VERSION, plural, name))
    except client.ApiException:
        return None


def ended(site: SiteClients, name: str) -> dict[str, Any]:
    """A Failover's status once it has ended (raises unless it Succeeded)."""

    def done() -> dict[str, Any] | None:
        status = (_get(site, "failovers", name) or {}).get("status") or {}
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    try:
        status = eventually(done, timeout=TIMEOUT, message=f"Failover {name} ended")
    except TimeoutError as error:
        raise TimeoutError(
            f"{error}; its status: {(_get(site, 'failovers', name) or {}).get('status')}"
        ) from None
    if status["phase"] != "Succeeded":
        raise RuntimeError(f"Failover {name} {status['phase']}: {status.get('message')}")
    return status


def following(site: SiteClients) -> bool:
    """The site stands by with its database replicating again (its SharedService says so)."""
    try:
        body = as_object(
            site.custom.get_namespaced_custom_object(
                API_GROUP, API_VERSION, NAMESPACE, "sharedservices", SERVICE, _request_timeout=5
            )
        )
    except Exception:  # the site may still be starting
        return False
    status = body.get("status") or {}
    healthy = any(
        c["type"] == "ReplicationHealthy" and c["status"] == "True" for c in status.get("conditions") or []
    )
    return healthy and status.get("role") == "Standby"


@contextlib.contextmanager
def real_pair(directory: Path, *, resync: float = 30) -> Iterator[tuple[Pair[SiteClients], Traffic]]:
    """Everything up, the service's database streaming to quangnam and the writer writing at danang; all of
    it stopped and the testbed down on the way out. `resync`: the operators' --resync-seconds."""
    bed = Testbed(directory / "testbed")
    bed.up(SITES, real=SITES[:2], node_count=2, monitored=True)
    try:
        danang, quangnam, witness = (SiteClients(name, bed) for name in SITES)
        for site in (danang, quangnam):
            cnpg.install(site.kubeconfig)
        pair = prepare_pair(
            danang,
            quangnam,
            witness,
            directory / "operators",
            crds=(source_root() / "crds", *data_plane_crds()),
            topology=topology(mode="Automatic"),
            resync=resync,
            prometheus={site.name: bed.prometheus_url(site.name) for site in (danang, quangnam)},
        )
        with pair.running(forget=False):
            for site in (danang, quangnam):
                opt_in(site, NAMESPACE)
            danang.custom.create_namespaced_custom_object(
                API_GROUP, API_VERSION, NAMESPACE, "sharedservices", service()
            )
            eventually(lambda: following(quangnam), timeout=TIMEOUT, message="quangnam's replica streaming")
            database = ServiceDatabase({s.name: s for s in pair.sites}, NAMESPACE, SERVICE, ingress=ADDRESSES)
            with Traffic(database) as traffic:
                traffic.writing_at("danang")
                yield pair, traffic
    finally:
        bed.down()


def switchover(pair: Pair[SiteClients], traffic: Traffic, target: SiteClients) -> Move:
    since = time.time()
    body = moves.request("Switchover", target.name, "a planned move under writes")
    target.custom.create_cluster_custom_object(API_GROUP, API_VERSION, "failovers", body)
    status = ended(target, body["metadata"]["name"])
    return traffic.after_move(status, primary=target.name, since=since)


def lose_site(pair: Pair[SiteClients], traffic: Traffic) -> Move:
    """danang lost (its operator SIGKILLed, its plane and node stopped); quangnam fails over by itself."""
    epoch = int(((_get(pair.quangnam, "topologies", "default") or {}).get("status") or {})["epoch"])
    since = time.time()
    pair.operators["danang"].stop(signal.SIGKILL)
    pair.danang.stop()
    status = ended(pair.quangnam, f"automatic-failover-epoch-{epoch + 1}")
    return traffic.after_move(status, primary="quangnam", since=since)


def data_bytes(site: SiteClients) -> int:
    """The size of the site's database instance's data (its volume: a directory on this machine), which a
    returning site copies anew across the link."""
    cluster = as_object(
        site.custom.get_namespaced_custom_object(
            "postgresql.cnpg.io", "v1", NAMESPACE, "clusters", f"{SERVICE}-db-{site.name}"
        )
    )
    claim = site.core.read_namespaced_persistent_volume_claim(cluster["status"]["currentPrimary"], NAMESPACE)
    assert claim.spec is not None and claim.spec.volume_name, "a bound claim"
    volume = site.core.read_persistent_volume(claim.spec.volume_name)
    assert volume.spec is not None and volume.spec.host_path is not None, (
        "the testbed's volumes are directories"
    )
    directory = Path(str(volume.spec.host_path.path))
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def rejoin(pair: Pair[SiteClients]) -> tuple[float, int]:
    """danang back; seconds until its database follows quangnam's again, and the bytes it copied."""
    back = time.monotonic()
    pair.danang.start()
    pair.operators["danang"].start()
    eventually(lambda: following(pair.danang), timeout=TIMEOUT, message="danang following quangnam")
    return round(time.monotonic() - back, 2), data_bytes(pair.danang)
