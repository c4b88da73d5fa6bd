"""Benchmark: automatic-failover RTO and switchover duration, for N SharedServices on two sites and a witness.

For each N it starts a fresh testbed (danang and quangnam with workloads, a bare witness), both operators with
a Topology in Automatic mode and the data-plane doubles (CloudNativePG, VolSync, Prometheus), creates N
services at danang and waits until they are Ready there and standing by at quangnam. Then, per run:
1. site loss: danang's control plane is stopped and its operator SIGKILLed (a site loss takes the operator,
   which runs in that cluster, with it); measured: from the stop until every service reports Active at
   quangnam (and the RTO quangnam's Failover recorded);
2. rejoin: danang and its operator come back; measured: until every service stands by at danang;
3. switchover back to danang (a Failover created at danang); measured: its start to its end, and its RTO.
Prints median and spread (min-max) per N, and RTO / leaseDurationSeconds (the detection window is the physical
floor: a lapsed witness Lease), and writes bench/results/failover.json. Each failover is split, from the
steps its Failover recorded, into detection (loss → FenceSource done: the Lease lapsed), promotion
(→ Redirect done: quangnam Active, its databases primaries, its DNS records published) and scale-up (→ every
service Active and Ready); each switchover into its handover (FenceSource start → Promote done: fence, final
sync, promote) and end to end (created → every service Active and Ready at danang); each Failover's steps'
durations are kept beside them. A role sampler (both
operators' roles every 100 ms) runs throughout: a run in which it ever sees two Active sites is void, and the
benchmark fails. The load average is recorded beside each run (the machine is shared). Before the runs, two
resyncs of doing nothing: the requests per second each plane's audit log records from the operators (and,
apart, from the testbed's doubles and ExternalDNS), the operators' by request.

The testbed runs the city DNS with ExternalDNS at each site (as root: port 53), and each site has a stand-in
web front end at its ingress address (stopped with the site). A prober, a citizen's HTTP client, resolves the
first service's host at the city DNS honouring its TTL (`--ttl`, the Topology's spec.dns.ttlSeconds) and asks
the front end every 100 ms; its RTO (danang's last answer to quangnam's first) is printed beside sharedcore's:
it differs by up to one TTL, the time the old address stays cached.

    .venv/bin/python bench/failover.py [--sizes 5 50] [--runs 5] [--heartbeat 2] [--lease 15] [--ttl 30]
                                       [--keep DIR]
    .venv/bin/python bench/failover.py --real [--runs 5]    (real PostgreSQL under writes: failover_real.py)
"""

import argparse
import contextlib
import datetime
import json
import os
import signal
import socket
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import failover_real
import results_file
import yaml
from kubernetes import client

from sharedcore import API_GROUP, API_VERSION
from sharedcore.plugin import moves
from sharedcore_testbed import Testbed
from sharedcore_testbed.clients import SiteClients, as_object, items
from sharedcore_testbed.operators import OPERATOR_USER, audit_events, data_plane_crds, peer_user
from sharedcore_testbed.pair import Pair, create_services, prepare_pair, topology
from sharedcore_testbed.prober import FrontEnd, Prober
from sharedcore_testbed.roles import RoleSampler
from sharedcore_testbed.waiting import eventually

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "tests" / "golden" / "inputs").glob("*.yaml"))
CRDS = (ROOT / "crds", *data_plane_crds())
NAMESPACES = 5
WRITES = {"create", "update", "patch", "delete"}
RESYNC = 30  # the operators' --resync-seconds
FRONT_ENDS = {"danang": "127.54.0.1", "quangnam": "127.54.0.2"}  # each site's ingress address


def services(n: int) -> list[dict[str, Any]]:
    """n services cycling through the platforms, 1 replica each, every one with its public name."""
    bodies = []
    for i in range(n):
        body = yaml.safe_load(SAMPLES[i % len(SAMPLES)].read_text())
        body["metadata"] = {"name": f"svc-{i:03d}", "namespace": f"bench-{i % NAMESPACES}"}
        body["spec"]["replicas"] = 1
        if body["spec"].get("ingress"):
            body["spec"]["ingress"]["host"] = f"svc-{i:03d}.danang.gov.vn"
        bodies.append(body)
    return bodies


def roles(site: SiteClients) -> list[tuple[str | None, int | None, bool]]:
    """(role, epoch, Ready) of every service as `site` reports it; empty while the site does not answer."""
    try:
        found = items(
            site.custom.list_cluster_custom_object(
                API_GROUP, API_VERSION, "sharedservices", _request_timeout=5
            )
        )
    except (client.ApiException, OSError, ValueError):
        return []
    rows = []
    for item in found:
        status = item.get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
        rows.append((status.get("role"), status.get("epoch"), ready))
    return rows


def all_in(site: SiteClients, n: int, role: str, epoch: int | None = None) -> bool:
    rows = roles(site)
    return len(rows) == n and all(r == role and (epoch is None or e == epoch) and ok for r, e, ok in rows)


def epoch_at(site: SiteClients) -> int:
    body = as_object(site.custom.get_cluster_custom_object(API_GROUP, API_VERSION, "topologies", "default"))
    return int(body["status"]["epoch"])


def failover(site: SiteClients, name: str) -> dict[str, Any]:
    return as_object(site.custom.get_cluster_custom_object(API_GROUP, API_VERSION, "failovers", name))


def automatic(site: SiteClients, epoch: int) -> dict[str, Any] | None:
    try:
        return failover(site, f"automatic-failover-epoch-{epoch}")
    except client.ApiException:
        return None


def step_times(status: dict[str, Any]) -> dict[str, tuple[float | None, float | None]]:
    """Each step's (start, completion), as seconds since the epoch, from a Failover's status."""

    def seconds(value: str | None) -> float | None:
        return datetime.datetime.fromisoformat(value).timestamp() if value else None

    return {
        step["name"]: (seconds(step.get("startTime")), seconds(step.get("completionTime")))
        for step in status.get("steps", [])
    }


def between(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 2)


def one_run(
    pair: Pair[SiteClients], n: int, timeout: float, front_ends: dict[str, FrontEnd]
) -> dict[str, Any]:
    """One site loss, rejoin and switchover back, under the role sampler (void if it saw two Active)."""
    load = os.getloadavg()[0]
    with RoleSampler(pair.operators) as sampler:  # fails the benchmark if it ever saw two Active sites
        row = losing_danang(pair, n, timeout, front_ends)
    return {**row, "load_average": round(load, 2), "role_samples": len(sampler.samples)}


def losing_danang(
    pair: Pair[SiteClients], n: int, timeout: float, front_ends: dict[str, FrontEnd]
) -> dict[str, Any]:
    danang, quangnam = pair.danang, pair.quangnam
    epoch = epoch_at(quangnam)
    city = danang.bed.city_dns()
    assert city is not None
    host = services(1)[0]["spec"]["ingress"]["host"]
    with Prober(host, city.address, port=front_ends["danang"].port) as prober:
        eventually(lambda: prober.first_success("danang"), timeout=timeout, message="prober at danang")
        stopped, stopped_at = time.monotonic(), time.time()
        pair.operators["danang"].stop(signal.SIGKILL)  # first: stopping the plane takes a moment
        danang.stop()
        front_ends["danang"].stop()
        pair.doubles["quangnam"].lose_source(True)  # quangnam's replicas stop receiving WAL and files
        eventually(
            lambda: all_in(quangnam, n, "Active", epoch + 1), timeout=timeout, message="Active at quangnam"
        )
        measured = time.monotonic() - stopped
        serving_at = time.time()
        eventually(
            lambda: prober.first_success("quangnam", stopped), timeout=timeout, message="prober at quangnam"
        )
    citizen = prober.rto("danang", "quangnam", stopped)
    done = eventually(
        lambda: (
            (f := automatic(quangnam, epoch + 1))
            and (f.get("status") or {}).get("phase") == "Succeeded"
            and f
        ),
        timeout=timeout,
        message="the automatic failover Succeeded",
    )
    recorded = done["status"].get("rtoSeconds")
    steps = step_times(done["status"])
    fenced, redirected = steps["FenceSource"][1], steps["Redirect"][1]
    back = time.monotonic()
    front_ends["danang"].start()
    danang.start()
    pair.doubles["quangnam"].lose_source(False)
    pair.operators["danang"].start()
    pair.operators["danang"].wait_ready(timeout=timeout)
    eventually(
        lambda: all_in(danang, n, "Standby", epoch + 1), timeout=timeout, message="standing by at danang"
    )
    rejoin = time.monotonic() - back
    body = moves.request("Switchover", "danang", "benchmark: switchover back")
    name = body["metadata"]["name"]
    asked = time.time()
    danang.custom.create_cluster_custom_object(API_GROUP, API_VERSION, "failovers", body)
    status = eventually(
        lambda: (
            (s := failover(danang, name).get("status") or {}).get("phase") in ("Succeeded", "Failed") and s
        ),
        timeout=timeout,
        message=f"switchover {name} ended",
    )
    if status["phase"] != "Succeeded":
        raise SystemExit(f"switchover {name} failed: {status.get('message')}")
    start, end = (datetime.datetime.fromisoformat(status[key]) for key in ("startTime", "completionTime"))
    eventually(lambda: all_in(danang, n, "Active", epoch + 2), timeout=timeout, message="Active at danang")
    served = time.time()
    eventually(
        lambda: all_in(quangnam, n, "Standby", epoch + 2), timeout=timeout, message="standing by at quangnam"
    )
    handover = step_times(status)
    return {
        "failover_steps_s": {name: between(*times) for name, times in steps.items()},
        "switchover_steps_s": {name: between(*times) for name, times in handover.items()},
        "failover_rto_measured_s": round(measured, 2),
        "failover_rto_recorded_s": recorded,
        "failover_rto_prober_s": None if citizen is None else round(citizen, 2),
        "detection_s": between(stopped_at, fenced),
        "promotion_s": between(fenced, redirected),
        "scale_up_s": between(redirected, serving_at),
        "rejoin_s": round(rejoin, 2),
        "switchover_handover_s": between(handover["FenceSource"][0], handover["Promote"][1]),
        "switchover_end_to_end_s": round(served - asked, 2),
        "switchover_duration_s": round((end - start).total_seconds(), 2),
        "switchover_rto_s": status.get("rtoSeconds"),
        "data_loss_window_s": status.get("dataLossWindowSeconds"),
    }


@contextlib.contextmanager
def running_pair(
    workdir: Path, *, heartbeat: int, lease: int, resync: float, ttl: int | None = None
) -> Iterator[Pair[SiteClients]]:
    """A fresh testbed in `workdir` (danang and quangnam with workloads, a bare witness) and both operators
    running with a Topology in Automatic mode; all of it stopped on the way out. With a record `ttl`, also the
    city DNS (ExternalDNS at both sites), each site's ingress address one of FRONT_ENDS."""
    bed = Testbed(workdir / "testbed")
    bed.up(["danang", "quangnam", "witness"], workloads={"danang", "quangnam"}, city_dns=ttl is not None)
    body = topology(mode="Automatic", heartbeat=heartbeat, lease=lease)
    if ttl is not None:
        body = topology(mode="Automatic", heartbeat=heartbeat, lease=lease, addresses=FRONT_ENDS)
        body["spec"]["dns"] = {"ttlSeconds": ttl}  # the pair adds the servers, as each site reaches them
    try:
        danang, quangnam, witness = (SiteClients(name, bed) for name in ("danang", "quangnam", "witness"))
        pair = prepare_pair(
            danang,
            quangnam,
            witness,
            workdir / "operators",
            crds=CRDS,
            topology=body,
            resync=resync,
        )
        with pair.running(forget=False):
            yield pair
    finally:
        bed.down()


@contextlib.contextmanager
def front_ends() -> Iterator[dict[str, FrontEnd]]:
    """A stand-in web front end at each site's ingress address (kwok sites run no real pods)."""
    with socket.socket() as sock:
        sock.bind((FRONT_ENDS["danang"], 0))
        port = int(sock.getsockname()[1])
    ends = {site: FrontEnd(site, address, port) for site, address in FRONT_ENDS.items()}
    for end in ends.values():
        end.start()
    try:
        yield ends
    finally:
        for end in ends.values():
            end.stop()


def who(username: str) -> str | None:
    """Whose request a plane's audit log records: the operators' (either's own identity, or its peer identity
    at the other site and the witness), the testbed's (the data-plane doubles and ExternalDNS, as the site's
    admin), or neither (the API server's own; kube-controller-manager, the scheduler and kwok are not
    audited)."""
    if username in {OPERATOR_USER, peer_user("danang"), peer_user("quangnam")}:
        return "operator"
    return "testbed" if username == "admin" else None


def idle_requests(bed: Testbed, seconds: float) -> dict[str, Any]:
    """The requests per second each plane received over `seconds` of doing nothing, counted from the plane's
    audit log, watches aside (a watch held open is one stream): the operators' and the testbed's apart, each
    all and writes, and the operators' by verb and resource (what they are)."""
    since = time.time()
    time.sleep(seconds)
    until = time.time()
    rates: dict[str, Any] = {}
    for plane in ("danang", "quangnam", "witness"):
        counts: dict[str, Counter[str]] = {"operator": Counter(), "testbed": Counter()}
        for e in audit_events(bed.directory / plane / "audit.log", None, since):
            received = datetime.datetime.fromisoformat(e["requestReceivedTimestamp"]).timestamp()
            whose = who(e.get("user", {}).get("username", ""))
            if whose is None or received >= until or e["verb"] == "watch":
                continue
            ref = e.get("objectRef") or {}
            what = "/".join(filter(None, (ref.get("resource"), ref.get("subresource"))))
            counts[whose][f"{e['verb']} {what}"] += 1
        rates[plane] = {
            whose: {
                "requests_per_s": round(sum(found.values()) / seconds, 2),
                "writes_per_s": round(
                    sum(n for request, n in found.items() if request.split()[0] in WRITES) / seconds, 2
                ),
            }
            for whose, found in counts.items()
        }
        rates[plane]["operator"]["by_request_per_s"] = {
            request: round(n / seconds, 2) for request, n in counts["operator"].most_common()
        }
    return rates


def measure(n: int, runs: int, *, heartbeat: int, lease: int, ttl: int, workdir: Path) -> dict[str, Any]:
    with (
        front_ends() as ends,
        running_pair(workdir / f"n{n}", heartbeat=heartbeat, lease=lease, resync=RESYNC, ttl=ttl) as pair,
    ):
        danang, quangnam = pair.sites
        started = time.monotonic()
        create_services(danang, quangnam, services(n))
        timeout = 120 + 4 * n
        eventually(lambda: all_in(danang, n, "Active"), timeout=timeout, message="Ready at danang")
        eventually(lambda: all_in(quangnam, n, "Standby"), timeout=timeout, message="standing by")
        print(
            f"  n={n}: {n} services Ready and standing by in {time.monotonic() - started:.0f}s",
            flush=True,
        )
        time.sleep(RESYNC)  # the last status writes and watch events settle
        load = os.getloadavg()[0]
        idle = idle_requests(danang.bed, 2 * RESYNC)
        print(f"  n={n}: idle, two resyncs (load {load:.1f}): {json.dumps(idle)}", flush=True)
        rows = []
        for run in range(runs):
            rows.append(one_run(pair, n, timeout, ends))
            print(f"  n={n} run {run + 1}: {json.dumps(rows[-1])}", flush=True)
    return {
        "services": n,
        "heartbeat_s": heartbeat,
        "lease_s": lease,
        "ttl_s": ttl,
        "idle": idle | {"load_average": round(load, 2), "seconds": 2 * RESYNC},
        "runs": rows,
    }


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):6.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--heartbeat", type=int, default=2)
    parser.add_argument("--lease", type=int, default=15)
    parser.add_argument("--ttl", type=int, default=30, help="the services' DNS record TTL, seconds")
    parser.add_argument("--keep", type=Path, help="work here and keep it (the operators' logs) afterwards")
    parser.add_argument(
        "--real", action="store_true", help="every move on real PostgreSQL under writes (real nodes, as root)"
    )
    args = parser.parse_args()
    if args.real:
        failover_real.main(args.runs)
        return
    results = []
    with (
        contextlib.nullcontext(args.keep)
        if args.keep
        else tempfile.TemporaryDirectory(prefix="sharedcore-bench-") as tmp
    ):
        for n in args.sizes:
            results.append(
                measure(
                    n, args.runs, heartbeat=args.heartbeat, lease=args.lease, ttl=args.ttl, workdir=Path(tmp)
                )
            )
    print(
        f"\nheartbeat {args.heartbeat}s, lease {args.lease}s, TTL {args.ttl}s; median (min-max) over "
        f"{args.runs} runs, seconds"
    )
    columns = {
        "failover RTO": "failover_rto_measured_s",
        "detection": "detection_s",
        "promotion": "promotion_s",
        "scale-up": "scale_up_s",
        "recorded RTO": "failover_rto_recorded_s",
        "prober RTO": "failover_rto_prober_s",
        "rejoin": "rejoin_s",
        "handover": "switchover_handover_s",
        "switch end-to-end": "switchover_end_to_end_s",
        "switch RTO": "switchover_rto_s",
        "load average": "load_average",
    }
    print("  ".join(f"{h:>18}" for h in ("services", "RTO/lease", *columns)))
    for r in results:
        runs = r["runs"]

        def col(key: str, runs: list[dict[str, Any]] = runs) -> list[float]:
            return [float(x[key]) for x in runs if x[key] is not None]

        ratio = [x / args.lease for x in col("failover_rto_measured_s")]
        row = (
            str(r["services"]),
            f"{statistics.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f})",
            *(spread(col(key)) for key in columns.values()),
        )
        print("  ".join(f"{v:>18}" for v in row))
    print(
        "\nidle (two resyncs): requests per second (writes) at each plane, watches aside: the operators' and"
        " the testbed's (data-plane doubles, ExternalDNS)"
    )
    for r in results:
        idle = r["idle"]
        for whose in ("operator", "testbed"):
            planes = "  ".join(
                f"{plane} {idle[plane][whose]['requests_per_s']} ({idle[plane][whose]['writes_per_s']})"
                for plane in ("danang", "quangnam", "witness")
            )
            print(f"  {r['services']:>5} services, {whose:>8}: {planes}  (load {idle['load_average']})")
    out = results_file.write("failover", results)
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
