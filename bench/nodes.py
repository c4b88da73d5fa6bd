"""Benchmark: the testbed's real nodes. Times `up` of two sites with real nodes and a bare witness, measures
memory per node (proportional set size of containerd, kubelet, kube-proxy and CoreDNS) and pod start latency:
one pod, then twenty at once (creation to Ready, as the API server records it). Prints the figures and writes
bench/results/nodes.json. Needs root, `make testbed-packages images`.

    .venv/bin/python bench/nodes.py [--node-count 1]
"""

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import results_file
import yaml

from sharedcore_testbed import Testbed, images
from sharedcore_testbed.operators import kubectl

IMAGE = f"registry.danang.gov.vn/sharedcore/smart-city/api:{images.STANDIN_VERSIONS[0]}"


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "nodes"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "web",
                    "image": IMAGE,
                    "imagePullPolicy": "Never",
                    "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                }
            ],
        },
    }


def start_latency(kubeconfig: Path, count: int) -> float:
    """Seconds from creating `count` pods at once until the last is Ready."""
    pods = [pod(f"p{count}-{i}") for i in range(count)]
    kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(pods))
    kubectl(
        kubeconfig,
        "wait",
        "--for=condition=Ready",
        "--timeout=300s",
        *(f"pod/{p['metadata']['name']}" for p in pods),
    )
    listed = json.loads(kubectl(kubeconfig, "get", "pods", "-l", "bench=nodes", "-o", "json"))["items"]
    mine = [p for p in listed if p["metadata"]["name"].startswith(f"p{count}-")]
    created = min(datetime.datetime.fromisoformat(p["metadata"]["creationTimestamp"]) for p in mine)
    ready = max(
        datetime.datetime.fromisoformat(c["lastTransitionTime"])
        for p in mine
        for c in p["status"]["conditions"]
        if c["type"] == "Ready"
    )
    kubectl(kubeconfig, "delete", "pods", "-l", "bench=nodes", "--wait=false")
    return (ready - created).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--node-count", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-nodes-") as tmp:
        bed = Testbed(Path(tmp))
        started = time.monotonic()
        bed.up(["danang", "quangnam", "witness"], real={"danang", "quangnam"}, node_count=args.node_count)
        up_seconds = time.monotonic() - started
        try:
            kubeconfig = bed.kubeconfig("danang")
            one = start_latency(kubeconfig, 1)
            twenty = start_latency(kubeconfig, 20)
            time.sleep(5)
            memory = bed.node_memory_kib("quangnam")  # idle: no pod of its own
        finally:
            bed.down()
    result = {
        "node_count": args.node_count,
        "up_seconds": round(up_seconds, 1),
        "node_daemons_mib_per_site": round(memory["daemons"] / 1024, 1),
        "pod_start_one_seconds": one,
        "pod_start_twenty_seconds": twenty,
    }
    print(json.dumps(result, indent=2))
    print(f"written to {results_file.write('nodes', [result])}")


if __name__ == "__main__":
    main()
