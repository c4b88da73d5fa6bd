"""Benchmark: N SharedServices (mixed platforms) reconciled to Ready by one operator on a testbed plane.

For each N it starts a fresh plane with workloads, runs the operator as its ServiceAccount, creates N services
at once, and measures: time until every service is reconciled (status written for its generation) and until
every one is Ready (which includes kube-controller-manager, kube-scheduler and kwok making the pods Ready),
the operator's API requests by verb (from the API server's audit log), its writes during an idle window of
two resync intervals, and its peak RSS; and beside the operator's CPU until all are reconciled, the CPU
kube-apiserver spent meanwhile (what the operator costs the control plane), with the load average at the start
(the machine is shared). Prints a table and writes bench/results/reconcile.json. With --profile DIR, py-spy
samples the operator from the creation until all are reconciled (DIR/reconcile-N.txt, collapsed stacks), and
its busiest functions are printed.

    .venv/bin/python bench/reconcile.py [--sizes 100 500 1000] [--resync 20] [--profile DIR]
"""

import argparse
import collections
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import profiling
import results_file
import yaml

from sharedcore_testbed import Testbed, processes
from sharedcore_testbed import state as testbed_state
from sharedcore_testbed.operators import (
    OPERATOR_USER,
    OperatorProcess,
    audit_events,
    data_plane_crds,
    install_crds,
    kubectl,
    service_account_kubeconfig,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "tests" / "golden" / "inputs").glob("*.yaml"))
WRITES = {"create", "update", "patch", "delete"}


def services(n: int) -> list[dict[str, Any]]:
    """n services cycling through the platforms, 1 replica each (the plane plays every pod with kwok)."""
    bodies = []
    for i in range(n):
        body = yaml.safe_load(SAMPLES[i % len(SAMPLES)].read_text())
        body["metadata"] = {"name": f"svc-{i:04d}", "namespace": f"bench-{i % 10}"}
        body["spec"]["replicas"] = 1
        # The ingress is kept (the e-archive's read-only host needs it), without TLS to provision.
        if "ingress" in body["spec"]:
            body["spec"]["ingress"].pop("tlsSecretName", None)
        bodies.append(body)
    return bodies


def statuses(kubeconfig: Path) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(kubectl(kubeconfig, "get", "shs", "-A", "-o", "json"))["items"]
    return items


def reconciled(item: dict[str, Any]) -> bool:
    return bool((item.get("status") or {}).get("observedGeneration") == item["metadata"]["generation"])


def ready(item: dict[str, Any]) -> bool:
    conditions = (item.get("status") or {}).get("conditions", [])
    return reconciled(item) and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait_all(kubeconfig: Path, n: int, predicate: Any, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if sum(map(predicate, statuses(kubeconfig))) == n:
            return time.monotonic()
        time.sleep(0.5)
    return None


def measure(n: int, resync: float, workdir: Path, profile: Path | None) -> dict[str, Any]:
    bed = Testbed(workdir / f"n{n}")
    bed.up(["bench"], workloads={"bench"})
    try:
        admin = bed.kubeconfig("bench")
        install_crds(admin, ROOT / "crds", *data_plane_crds())
        operator = OperatorProcess(
            "bench",
            service_account_kubeconfig(bed, "bench", workdir / f"n{n}.kubeconfig"),
            workdir / f"n{n}-operator.log",
            args=("--all-namespaces", "--single-site", "--resync-seconds", str(resync)),
        )
        operator.start()
        while not operator.ready():
            time.sleep(0.2)
        bodies = services(n)
        for namespace in sorted({b["metadata"]["namespace"] for b in bodies}):
            kubectl(admin, "create", "namespace", namespace)
        apiserver = testbed_state.load(bed.directory).planes["bench"].processes["kube-apiserver"].pid
        load = os.getloadavg()[0]
        since = time.time()
        cpu_before, apiserver_before = operator.cpu_seconds(), processes.cpu_seconds(apiserver)
        assert operator.process is not None
        samples = None if profile is None else profile / f"reconcile-{n}.txt"
        with profiling.recording(operator.process.pid, samples):
            started = time.monotonic()
            kubectl(admin, "create", "-f", "-", stdin="---\n".join(yaml.safe_dump(b) for b in bodies))
            done_reconciled = wait_all(admin, n, reconciled, 600 + n)
        cpu_reconciled = operator.cpu_seconds() - cpu_before
        apiserver_reconciled = processes.cpu_seconds(apiserver) - apiserver_before
        done_ready = wait_all(admin, n, ready, 900 + n)
        busy = collections.Counter(
            str(e["verb"]) for e in audit_events(bed.directory / "bench" / "audit.log", OPERATOR_USER, since)
        )
        time.sleep(resync)  # let the last status and watch events settle
        idle_since = time.time()
        time.sleep(2 * resync)
        idle = [
            e
            for e in audit_events(bed.directory / "bench" / "audit.log", OPERATOR_USER, idle_since)
            if e["verb"] in WRITES
        ]
        result: dict[str, Any] = {
            "services": n,
            "reconciled_seconds": round(done_reconciled - started, 1) if done_reconciled else None,
            "ready_seconds": round(done_ready - started, 1) if done_ready else None,
            "operator_cpu_seconds_until_reconciled": round(cpu_reconciled, 1),
            "operator_cpu_ms_per_service": round(1000 * cpu_reconciled / n, 1),
            "apiserver_cpu_seconds_until_reconciled": round(apiserver_reconciled, 1),
            "load_average": round(load, 2),
            "requests_until_ready": dict(sorted(busy.items())),
            "idle_window_seconds": 2 * resync,
            "idle_writes": len(idle),
            "peak_rss_mib": round(operator.peak_rss_bytes() / 2**20, 1),
        }
        if samples is not None:
            result["profile_top"] = profiling.top(samples)
        print(json.dumps(result), flush=True)  # kept in the log whatever the stop below meets
        try:
            operator.stop()
        except subprocess.TimeoutExpired:  # a loaded machine: the figures are taken, the operator goes anyway
            operator.stop(signal.SIGKILL)
        return result
    finally:
        bed.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--resync", type=float, default=20.0, help="operator resync interval during the run")
    parser.add_argument("--profile", type=Path, help="py-spy the operator into DIR")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="sharedcore-bench-") as tmp:
        for n in args.sizes:
            print(f"measuring N={n} ...", flush=True)
            results.append(measure(n, args.resync, Path(tmp), args.profile))
            for frame, share in results[-1].get("profile_top", []):
                print(f"  {share:5.1f} %  {frame}", flush=True)
    columns = (
        "N",
        "reconciled s",
        "op. CPU s",
        "ms/service",
        "apiserver s",
        "ratio",
        "Ready s",
        "writes",
        "reads",
        "idle writes",
        "RSS MiB",
        "load",
    )
    print("\n" + "  ".join(f"{c:>12}" for c in columns))
    for r in results:
        writes = sum(v for k, v in r["requests_until_ready"].items() if k in WRITES)
        reads = sum(v for k, v in r["requests_until_ready"].items() if k not in WRITES)
        row = (
            r["services"],
            r["reconciled_seconds"],
            r["operator_cpu_seconds_until_reconciled"],
            r["operator_cpu_ms_per_service"],
            r["apiserver_cpu_seconds_until_reconciled"],
            round(
                r["apiserver_cpu_seconds_until_reconciled"]
                / max(r["operator_cpu_seconds_until_reconciled"], 0.1),
                2,
            ),
            r["ready_seconds"],
            writes,
            reads,
            r["idle_writes"],
            r["peak_rss_mib"],
            r["load_average"],
        )
        print("  ".join(f"{v!s:>12}" for v in row))
    out = results_file.write("reconcile", results)
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
