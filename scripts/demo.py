"""`make demo`: sharedcore on two sites and a witness, on real local control planes, narrated.

Builds nothing itself (the Makefile built the binaries), starts the testbed, installs the CRDs, runs the
operator as its ServiceAccount, creates one SharedService per platform and shows what happens. Every step
checks its outcome: the demo exits non-zero if anything does not happen as narrated.
Leaves nothing running unless --keep.
"""

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

from sharedcore.testbed import Testbed
from sharedcore.testbed.operators import OperatorProcess, install_crds, kubectl, service_account_kubeconfig

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "golden" / "inputs"
ENGINE_CRDS = ROOT / "tests" / "fixtures" / "crds"  # stand-ins for CloudNativePG, VolSync, ExternalDNS
T = TypeVar("T")
STARTED = time.monotonic()


class DemoError(RuntimeError):
    """A step did not happen as narrated."""


def say(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {text}", flush=True)


def show(text: str) -> None:
    for line in text.rstrip().splitlines():
        print(f"          {line}")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := probe():
            return result
        time.sleep(0.5)
    raise DemoError(f"{what}: not within {timeout:.0f}s")


def samples() -> list[dict[str, object]]:
    return [yaml.safe_load(path.read_text()) for path in sorted(SAMPLES.glob("*.yaml"))]


def ensure_tls_secrets(kubeconfig: Path, services: list[dict[str, object]]) -> None:
    """The samples' namespaces and the TLS secrets they name (placeholders for what cert-manager issues)."""
    objects: list[dict[str, object]] = []
    for service in services:
        meta, spec = service["metadata"], service["spec"]
        assert isinstance(meta, dict) and isinstance(spec, dict)
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": meta["namespace"]}})
        if secret := (spec.get("ingress") or {}).get("tlsSecretName"):
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "kubernetes.io/tls",
                    "metadata": {"name": secret, "namespace": meta["namespace"]},
                    "data": {"tls.crt": "", "tls.key": ""},
                }
            )
    kubectl(kubeconfig, "apply", "-f", "-", stdin="---\n".join(yaml.safe_dump(obj) for obj in objects))


def run(directory: Path) -> None:
    bed = Testbed(directory / "testbed")
    say("Starting three control planes (danang, quangnam with fake nodes; witness bare) ...")
    bed.up(["danang", "quangnam", "witness"], workloads={"danang", "quangnam"})
    for status in bed.status():
        say(f"  {status.name}: kube-apiserver on 127.0.0.1:{status.apiserver_port}")
    danang = bed.kubeconfig("danang")
    say("Installing sharedcore's CRDs (and stand-in CRDs for CloudNativePG, VolSync, ExternalDNS) at danang")
    install_crds(danang, ROOT / "crds", ENGINE_CRDS)
    operator = OperatorProcess(
        "danang",
        service_account_kubeconfig(bed, "danang", directory / "danang-operator.kubeconfig"),
        directory / "danang-operator.log",
        args=("--all-namespaces", "--resync-seconds", "10"),
    )
    say("Starting the operator at danang, as its ServiceAccount with the least-privilege ClusterRole")
    operator.start()
    try:
        wait_for("operator ready", operator.ready, 60)
        services = samples()
        ensure_tls_secrets(danang, services)
        say(f"Creating one SharedService per platform ({len(services)})")
        kubectl(danang, "apply", "-f", "-", stdin="---\n".join(yaml.safe_dump(s) for s in services))
        started = time.monotonic()
        kubectl(danang, "wait", "--for=condition=Ready", "shs", "--all", "--all-namespaces", "--timeout=180s")
        say(f"All {len(services)} services Ready at danang in {time.monotonic() - started:.1f}s:")
        show(kubectl(danang, "get", "shs", "--all-namespaces"))
        say("Someone deletes the document-management API Deployment by hand ...")
        kubectl(danang, "delete", "deployment", "vanban-api", "-n", "e-office")
        wait_for(
            "vanban-api restored",
            lambda: "vanban-api" in kubectl(danang, "get", "deployment", "-n", "e-office", "-o", "name"),
            30,
        )
        say("... the operator restored it:")
        show(kubectl(danang, "get", "events", "-n", "e-office", "--field-selector", "reason=DriftRepaired"))
        kubectl(danang, "wait", "--for=condition=Ready", "shs/vanban", "-n", "e-office", "--timeout=60s")
        say("What Prometheus scrapes from the operator:")
        show(
            "\n".join(
                line
                for line in operator.metrics_text().splitlines()
                if line.startswith(("sharedcore_service_ready", "sharedcore_reconcile_total"))
            )
        )
    finally:
        operator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", action="store_true", help="leave the testbed running (sharedcore testbed down)"
    )
    parser.add_argument("--dir", type=Path, help="where to keep the testbed (default: a temporary directory)")
    args = parser.parse_args()
    directory = (args.dir or Path(tempfile.mkdtemp(prefix="sharedcore-demo-"))).resolve()
    bed = Testbed(directory / "testbed")
    try:
        run(directory)
    except DemoError as error:
        say(f"DEMO FAILED: {error}")
        return 1
    finally:
        if args.keep:
            say(f"Testbed kept: sharedcore testbed status --dir {bed.directory}")
        else:
            bed.down()
            say("Testbed stopped; nothing left running.")
    say("Demo complete.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
