"""`make demo`: sharedcore on two sites and a witness, on real local control planes: a site lost and won back.

Starts three control planes (danang and quangnam with fake nodes, a bare witness), both sites' operators as
their ServiceAccounts with a Topology in Automatic mode, stand-ins for CloudNativePG, VolSync and Prometheus
at each site, and one SharedService per platform created at danang. Then, printing both sites at each stage:

  1. steady state: danang Active, quangnam a warm Standby, the witness Lease held by danang;
  2. danang is lost (its control plane stopped, its operator SIGKILLed: it runs in that cluster); quangnam's
     operator fails over by itself once danang is silent and the witness Lease has lapsed;
  3. danang comes back and stands by, following quangnam;
  4. a planned switchover back to danang, created at danang and followed step by step, loses nothing;
  5. the final state.

Every stage checks its outcome within a generous timeout: the demo exits non-zero, saying which stage did not
happen (with the Failovers' status and the operators' log tails), if anything does not happen as narrated.
Leaves nothing running unless --keep (the planes stay up; the operators always stop).
"""

import argparse
import datetime
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import demo_real
import urllib3
import yaml
from kubernetes import client

from sharedcore import API_GROUP, API_VERSION
from sharedcore.kube import conditions
from sharedcore.plugin import moves
from sharedcore.replication.content import REPLICATE_LABEL
from sharedcore_testbed import PlaneError, Testbed, waiting
from sharedcore_testbed.clients import SiteClients, as_object, items
from sharedcore_testbed.operators import OperatorProcess, data_plane_crds, kubectl
from sharedcore_testbed.pair import (
    WITNESS_LEASE,
    Pair,
    lease,
    opt_in,
    prepare_pair,
    topology,
    topology_status,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "golden" / "inputs"  # one SharedService per platform
CRDS = (ROOT / "crds", *data_plane_crds())
SITES = ("danang", "quangnam", "witness")
RESYNC = 5.0
FAILOVERS = (API_GROUP, API_VERSION, "failovers")
ENDED = ("Succeeded", "Failed", "Planned")
DOWN = (client.ApiException, urllib3.exceptions.HTTPError, OSError)  # a stopped site, as a client sees it
T = TypeVar("T")
Body = dict[str, Any]
Marks = dict[str, float]  # what happened → seconds after the stage began
STARTED = time.monotonic()


class DemoError(RuntimeError):
    """A stage did not happen as narrated."""


def say(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {text}", flush=True)


def show(lines: Sequence[str]) -> None:
    for line in lines:
        print(f"          {line}".rstrip(), flush=True)


def grid(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    return waiting.eventually(probe, timeout, 0.5, what, error=DemoError)


def read(probe: Callable[[], T]) -> T | None:
    """What a site answers, or None while it is down."""
    try:
        return probe()
    except DOWN:
        return None


# --- the services -------------------------------------------------------------------------------------


def samples() -> list[Body]:
    return [yaml.safe_load(path.read_text()) for path in sorted(SAMPLES.glob("*.yaml"))]


def key(body: Body) -> str:
    return f"{body['metadata']['namespace']}/{body['metadata']['name']}"


def create_at_active(kubeconfig: Path, services: list[Body]) -> None:
    """The services with their TLS Secrets (placeholders for what cert-manager issues at the active site),
    the Secrets labelled to follow the services to the standby."""
    objects: list[Body] = []
    for service in services:
        namespace = service["metadata"]["namespace"]
        if secret := (service["spec"].get("ingress") or {}).get("tlsSecretName"):
            meta = {"name": secret, "namespace": namespace, "labels": {REPLICATE_LABEL: "true"}}
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "kubernetes.io/tls",
                    "metadata": meta,
                    "data": {"tls.crt": "", "tls.key": ""},
                }
            )
    manifests = "---\n".join(yaml.safe_dump(obj) for obj in [*objects, *services])
    kubectl(kubeconfig, "apply", "-f", "-", stdin=manifests)


def services_at(site: SiteClients) -> dict[str, Body] | None:
    found = read(partial(site.custom.list_cluster_custom_object, API_GROUP, API_VERSION, "sharedservices"))
    return None if found is None else {key(body): body for body in items(found)}


def in_form(body: Body | None, role: str, measured: bool = False) -> bool:
    """Reconciled for its generation, in `role` and Ready; with `measured`, its replication healthy."""
    status = (body or {}).get("status") or {}
    if body is None or status.get("observedGeneration") != body["metadata"]["generation"]:
        return False
    found = status.get("conditions")
    return (
        status.get("role") == role
        and conditions.is_true(found, "Ready")
        and (not measured or conditions.is_true(found, "ReplicationHealthy"))
    )


def role_of(body: Body | None) -> str | None:
    return ((body or {}).get("status") or {}).get("role")


# --- both sites at a glance ---------------------------------------------------------------------------


def operator_role(process: OperatorProcess) -> str:
    """The role the operator acts in (its sharedcore_site_role), or whether it runs at all."""
    if process.process is None or process.process.poll() is not None:
        return "stopped"
    try:
        found = process.metrics()
    except OSError:
        return "starting"
    roles = [
        dict(labels)["role"]
        for (series, labels), value in found.items()
        if series == "sharedcore_site_role" and value == 1
    ]
    return roles[0] if roles else "starting"


def site_role(status: Body) -> str:
    ready = conditions.find(status.get("conditions"), "Ready") or {}
    reason = str(ready.get("reason", "?"))
    return reason if ready.get("status") == "True" else f"Fenced ({reason})"


def peer_seen(status: Body, peer: str) -> str:
    entry = next((s for s in status.get("sites", []) if s["name"] == peer), None)
    if entry is None:
        return f"{peer}: not yet seen"
    reach = "reachable" if entry.get("reachable") else "unreachable"
    return f"{peer} {entry.get('role', '?')} e{entry.get('epoch', '?')}, {reach}"


def witness_row(witness: SiteClients) -> list[str]:
    """The witness Lease as a row: who holds it at which epoch (ACTIVE SITE, EPOCH)."""
    found = read(partial(lease, witness, WITNESS_LEASE))
    if found is None or not found.spec.holder_identity:
        return ["witness", "-", "Lease not held", "", "", ""]
    epoch = (found.metadata.annotations or {}).get(f"{API_GROUP}/epoch", "?")
    age = (datetime.datetime.now(datetime.UTC) - found.spec.renew_time).total_seconds()
    return ["witness", "-", "Lease held", found.spec.holder_identity, epoch, f"renewed {age:.0f}s ago"]


def service_cell(body: Body | None, down: bool) -> str:
    if down:
        return "(site down)"
    if body is None:
        return "-"
    status = body.get("status") or {}
    found = status.get("conditions")
    cell = f"{status.get('role', '?')} e{status.get('epoch', '?')} "
    cell += "Ready" if conditions.is_true(found, "Ready") else "NotReady"
    if status.get("role") == "Standby":
        replication = conditions.find(found, "ReplicationHealthy") or {}
        healthy = replication.get("status") == "True"
        cell += ", replicating" if healthy else f", {replication.get('reason', 'replication unknown')}"
    return cell


# --- Failovers ----------------------------------------------------------------------------------------


def failover(site: SiteClients, name: str) -> Body | None:
    found = read(partial(site.custom.get_cluster_custom_object, *FAILOVERS, name))
    return None if found is None else as_object(found)


def failovers(site: SiteClients, selector: str = "") -> list[Body]:
    found = read(partial(site.custom.list_cluster_custom_object, *FAILOVERS, label_selector=selector))
    return [] if found is None else items(found)


def report(status: Body) -> None:
    show([moves.describe_step(step)[:120] for step in status["steps"]])
    window = status.get("dataLossWindowSeconds")
    per_service = ", ".join(
        f"{s['name']} {s['dataLossWindowSeconds']:.1f}s" if "dataLossWindowSeconds" in s else f"{s['name']} ?"
        for s in status.get("services", [])
    )
    show(
        [
            f"{status.get('fromSite')} (epoch {status.get('fromEpoch')}) → {status.get('toSite')} "
            f"(epoch {status.get('toEpoch')}): {status['phase']}",
            f"status.rtoSeconds: {status.get('rtoSeconds')}",
            f"status.dataLossWindowSeconds: {'unknown' if window is None else window} ({per_service})",
        ]
    )


# --- the story ----------------------------------------------------------------------------------------


class Demo:
    def __init__(self, pair: Pair[SiteClients], bed: Testbed, timeout: float) -> None:
        self.pair, self.bed, self.timeout = pair, bed, timeout
        self.danang, self.quangnam = pair.danang, pair.quangnam
        self.names: list[str] = []
        self.timings: list[tuple[str, str]] = []

    def agreed(self, active: str, epoch: int) -> bool:
        """Both sites' Topology status name `active` at `epoch`."""
        statuses = [read(partial(topology_status, site)) or {} for site in self.pair.sites]
        return all((s.get("activeSite"), s.get("epoch")) == (active, epoch) for s in statuses)

    def all_in_form(self, site: SiteClients, role: str, measured: bool = False) -> bool:
        found = services_at(site) or {}
        return all(in_form(found.get(name), role, measured) for name in self.names)

    def snapshot(self, title: str) -> None:
        say(title)
        rows = [["SITE", "OPERATOR", "ROLE (TOPOLOGY)", "ACTIVE SITE", "EPOCH", "SEES ITS PEER"]]
        found: dict[str, dict[str, Body] | None] = {}
        for site, peer in ((self.danang, "quangnam"), (self.quangnam, "danang")):
            status = read(partial(topology_status, site))
            found[site.name] = services_at(site)
            operator = operator_role(self.pair.operators[site.name])
            if status is None:
                rows.append([site.name, operator, "(control plane down)", "", "", ""])
                continue
            active, epoch = str(status.get("activeSite", "?")), str(status.get("epoch", "?"))
            rows.append([site.name, operator, site_role(status), active, epoch, peer_seen(status, peer)])
        rows.append(witness_row(self.pair.witness))
        show(grid(rows))
        rows = [["SERVICE", "AT DANANG", "AT QUANGNAM"]]
        for name in self.names:
            rows.append([name, *(service_cell((found[s] or {}).get(name), found[s] is None) for s in found)])
        print(flush=True)
        show(grid(rows))

    def follow(self, site: SiteClients, name: Callable[[], str | None], since: float) -> tuple[Body, Marks]:
        """Follow a Failover executed at `site` (its name once known) step by step, until it has Succeeded and
        every service is Active and Ready at `site`; its status, and the seconds from `since` until every
        service reported role Active ("Active") and was Ready as well ("Ready")."""
        deadline = since + self.timeout
        found: str | None = None
        seen: dict[str, tuple[str, str]] = {}
        marks: Marks = {}
        status: Body = {}
        while time.monotonic() < deadline:
            if found is None and (found := name()):
                spec = (failover(site, found) or {}).get("spec") or {}
                say(f"  Failover {found} at {site.name}: {spec.get('type')}, reason {spec.get('reason')!r}")
            if found is not None:
                status = (failover(site, found) or {}).get("status") or status
                for step in status.get("steps", []):
                    now = (step["state"], step.get("message", ""))
                    if seen.get(step["name"], ("Pending", "")) != now:
                        seen[step["name"]] = now
                        say(f"  {moves.describe_step(step)[:120]}")
            serving = services_at(site) or {}
            if "Active" not in marks and all(role_of(serving.get(n)) == "Active" for n in self.names):
                marks["Active"] = time.monotonic() - since
                say(f"  every service reports role Active at {site.name}: {marks['Active']:.1f}s")
            if "Ready" not in marks and all(in_form(serving.get(n), "Active") for n in self.names):
                marks["Ready"] = time.monotonic() - since
                say(f"  every service Active and Ready at {site.name}: {marks['Ready']:.1f}s")
            if status.get("phase") in ENDED and status["phase"] != "Succeeded":
                raise DemoError(f"Failover {found} at {site.name} {status['phase']}: {status.get('message')}")
            if status.get("phase") == "Succeeded" and "Ready" in marks:
                return status, marks
            time.sleep(0.5)
        what = f"Failover {found} (phase {status.get('phase')})" if found else "no Failover was created"
        raise DemoError(
            f"{what}: not Succeeded, every service Active and Ready at {site.name}, in {self.timeout}s"
        )

    def steady_state(self) -> None:
        wait_for("danang Active, quangnam Standby, epoch 1 at both", lambda: self.agreed("danang", 1), 90)
        say(f"Roles established {time.monotonic() - self.pair.started:.1f}s after the operators started")
        services = samples()
        self.names = [key(s) for s in services]
        say(
            f"Creating one SharedService per platform at danang ({len(services)}), their namespaces opted in "
            "to replication at both sites, TLS Secrets replicated"
        )
        created = time.monotonic()
        for namespace in sorted({s["metadata"]["namespace"] for s in services}):
            for site in (self.danang, self.quangnam):  # replication writes only where both sites invite it
                opt_in(site, namespace)
        create_at_active(self.danang.kubeconfig, services)
        wait_for(
            "every service Ready at danang", lambda: self.all_in_form(self.danang, "Active"), self.timeout
        )
        self.timings.append(("every service Ready at danang", f"{time.monotonic() - created:.1f}s"))
        wait_for(
            "every service Ready in standby form at quangnam, its replication measured healthy",
            lambda: self.all_in_form(self.quangnam, "Standby", measured=True),
            self.timeout,
        )
        self.timings.append(("... and in standby form at quangnam", f"{time.monotonic() - created:.1f}s"))
        self.snapshot("1. Both sites in steady state")

    def lose_danang(self) -> int:
        automatic = f"{API_GROUP}/automatic=failover"
        before = {f["metadata"]["name"] for f in failovers(self.quangnam, automatic)}

        def created() -> str | None:
            return next(
                (
                    n
                    for f in failovers(self.quangnam, automatic)
                    if (n := f["metadata"]["name"]) not in before
                ),
                None,
            )

        say("2. danang is lost: `testbed stop danang` (its control plane) and SIGKILL of its operator")
        lost = time.monotonic()
        self.pair.operators["danang"].stop(signal.SIGKILL)
        self.bed.stop("danang")
        self.pair.doubles["quangnam"].lose_source(True)  # quangnam's replicas stop receiving WAL and files
        say(
            "   quangnam waits until danang has been silent, and the witness Lease unrenewed, for a lease ..."
        )
        status, marks = self.follow(self.quangnam, created, lost)
        say("  The automatic failover:")
        report(status)
        measured = f"{marks['Active']:.1f}s (and Ready: {marks['Ready']:.1f}s)"
        say(f"  RTO measured by the demo, from the loss to every service Active at quangnam: {measured}")
        self.timings.append(("automatic failover: RTO recorded", f"{status.get('rtoSeconds')}s"))
        self.timings.append(("automatic failover: RTO measured", measured))
        window = status.get("dataLossWindowSeconds")
        self.timings.append(
            ("automatic failover: data-loss window", f"{window}s" if window is not None else "?")
        )
        self.snapshot("   After the automatic failover")
        return int(status["toEpoch"])

    def danang_returns(self, epoch: int) -> None:
        say("3. danang comes back: `testbed start danang`, and its operator restarts")
        back = time.monotonic()
        self.bed.start("danang")
        self.pair.doubles["quangnam"].lose_source(False)
        operator = self.pair.operators["danang"]
        operator.start()
        wait_for("danang's operator ready", operator.ready, 120)
        wait_for(
            f"danang rejoins: quangnam active at epoch {epoch}",
            lambda: self.agreed("quangnam", epoch),
            self.timeout,
        )
        wait_for("danang's operator Standby", lambda: operator_role(operator) == "Standby", 60)
        wait_for(
            "every service Ready in standby form at danang",
            lambda: self.all_in_form(self.danang, "Standby"),
            self.timeout,
        )
        wait_for(
            "every service's replication measured healthy at danang, caught up",
            lambda: self.all_in_form(self.danang, "Standby", measured=True),
            self.timeout,
        )
        self.timings.append(("danang back, standing by", f"{time.monotonic() - back:.1f}s"))
        self.snapshot(f"   danang stands by, {time.monotonic() - back:.1f}s after its return")

    def switch_back(self, epoch: int) -> None:
        say("4. Planned switchover back to danang: a Failover created at danang, the site that executes it")
        body = moves.request("Switchover", "danang", "demo: planned failback")
        name = body["metadata"]["name"]
        requested = time.monotonic()
        self.danang.custom.create_cluster_custom_object(*FAILOVERS, body)
        status, marks = self.follow(self.danang, lambda: name, requested)
        say("  The switchover:")
        report(status)
        window = status.get("dataLossWindowSeconds")
        if window != 0:
            raise DemoError(f"the switchover's dataLossWindowSeconds is {window}, not 0")
        measured = f"{marks['Active']:.1f}s (and Ready: {marks['Ready']:.1f}s)"
        say(f"  Nothing lost. RTO recorded {status.get('rtoSeconds')}s; request to Active: {measured}")
        self.timings.append(("switchover: RTO recorded", f"{status.get('rtoSeconds')}s"))
        self.timings.append(("switchover: from the request to Active", measured))
        wait_for(
            f"both sites: danang active at epoch {epoch + 1}", lambda: self.agreed("danang", epoch + 1), 60
        )
        wait_for(
            "every service Ready in standby form at quangnam",
            lambda: self.all_in_form(self.quangnam, "Standby"),
            self.timeout,
        )
        self.snapshot("5. Back where it started, two epochs later")

    def run(self) -> None:
        self.steady_state()
        epoch = self.lose_danang()
        self.danang_returns(epoch)
        self.switch_back(epoch)
        say("Timings:")
        show(grid(self.timings))

    def diagnose(self) -> None:
        """What a failed stage leaves to look at: both sites, their Failovers, the operators' log tails."""
        if self.names:
            self.snapshot("Both sites when the stage failed")
        for site in self.pair.sites:
            for body in failovers(site):
                say(f"Failover {body['metadata']['name']} at {site.name}:")
                show(yaml.safe_dump({"spec": body["spec"], "status": body.get("status")}).splitlines())
        for name, process in self.pair.operators.items():
            say(f"Operator at {name}, the end of {process.log_path}:")
            show(process.log_tail(25).splitlines())


def run(directory: Path, heartbeat: int, lease_seconds: int, timeout: float) -> None:
    bed = Testbed(directory / "testbed")
    say("Starting three control planes (danang, quangnam with fake nodes; witness bare) ...")
    bed.up(SITES, workloads={"danang", "quangnam"})
    for plane in bed.status():
        say(f"  {plane.name}: kube-apiserver on 127.0.0.1:{plane.apiserver_port}")
    say(
        f"Starting both operators as their ServiceAccounts, Topology failover mode Automatic: heartbeat "
        f"{heartbeat}s, lease {lease_seconds}s; CloudNativePG/VolSync/Prometheus doubles at each site"
    )
    danang, quangnam, witness = (SiteClients(name, bed) for name in SITES)
    pair = prepare_pair(
        danang,
        quangnam,
        witness,
        directory,
        crds=CRDS,
        topology=topology(mode="Automatic", heartbeat=heartbeat, lease=lease_seconds),
        resync=RESYNC,
    )
    with pair.running(forget=False):  # the planes go down with the demo, or stay for a look with --keep
        demo = Demo(pair, bed, timeout)
        try:
            demo.run()
        except RuntimeError:  # a DemoError, or a kubectl or an operator process that failed
            demo.diagnose()
            raise


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the planes running (stop them with `sharedcore-testbed down --dir DIR/testbed`)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="where to keep the testbed, kubeconfigs and operator logs (default: a new temporary directory)",
    )
    parser.add_argument("--heartbeat", type=int, default=2, help="heartbeatIntervalSeconds (default: 2)")
    parser.add_argument(
        "--lease", type=int, default=15, help="leaseDurationSeconds, at least 3 heartbeats (default: 15)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds each stage may take (default: 300)"
    )
    parser.add_argument(
        "--real-database",
        action="store_true",
        help="instead: one platform with a real PostgreSQL on real nodes, written to while it moves "
        "(root, after `make testbed-packages images`; a few minutes)",
    )
    args = parser.parse_args()
    if args.lease < 3 * args.heartbeat:
        parser.error("--lease must be at least three heartbeats")
    directory = (args.dir or Path(tempfile.mkdtemp(prefix="sharedcore-demo-"))).resolve()
    say(f"Testbed, kubeconfigs and operator logs in {directory}")
    if args.real_database:
        problems = demo_real.run(directory)
        for problem in problems:
            say(f"DEMO FAILED: {problem}")
        return 1 if problems else 0
    bed = Testbed(directory / "testbed")
    try:
        run(directory, args.heartbeat, args.lease, args.timeout)
    except (RuntimeError, TimeoutError, PlaneError) as error:
        say(f"DEMO FAILED: {error}")
        return 1
    finally:
        if args.keep:
            say(f"Testbed kept: sharedcore-testbed status --dir {bed.directory}")
        else:
            bed.down()
            say("Testbed stopped; nothing left running.")
    say("Demo complete.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
