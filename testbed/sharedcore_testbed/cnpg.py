"""CloudNativePG for real at a testbed site: its operator built from the pinned Go module, installed from the
module's own release manifest (CRDs, RBAC, Deployment, admission webhooks), running PostgreSQL from an image
built from Debian's packages (`sharedcore_testbed.images`).

The release manifest is applied as published, with three changes a site without a registry needs: the
operator image is the local one (and never pulled), and the PostgreSQL image CloudNativePG uses by default is
the local one too (`POSTGRES_IMAGE_NAME`, as an administrator sets it). The API server reaches the admission
webhooks through the webhook Service's ClusterIP: the host routes each site's Service range into the site's
network namespace, where kube-proxy forwards it to the operator's pod.
"""

import copy
import json
import os
import subprocess
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from sharedcore_testbed.binaries import bin_dir, binary, read_versions, source_root

MODULE = "github.com/cloudnative-pg/cloudnative-pg"
NAMESPACE = "cnpg-system"
DEPLOYMENT = "cnpg-controller-manager"
POSTGRES_MAJOR = 15  # Debian bookworm's PostgreSQL
# CloudNativePG reads the PostgreSQL major version from the image tag.
POSTGRES_IMAGE = f"sharedcore-testbed/postgresql:{POSTGRES_MAJOR}"
CLUSTER_CRD = "postgresql.cnpg.io_clusters.yaml"
FIXED_PARAMETER = "Can't set fixed configuration parameter"  # the webhook's refusal of webhook_answer's probe


def version() -> str:
    return read_versions()["CNPG_VERSION"]


def operator_image() -> str:
    return f"sharedcore-testbed/cloudnative-pg:{version().removeprefix('v')}"


def manager_binary() -> Path:
    """Built by scripts/testbed-bin.sh (operator and instance manager are one binary)."""
    return bin_dir() / f"cnpg-manager-{version()}"


@cache
def module_dir() -> Path:
    """The pinned module's source (downloaded by scripts/testbed-bin.sh's build)."""
    out = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", MODULE],
        cwd=source_root() / "tests" / "controlplane" / "cloudnative-pg",
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"},
    )
    return Path(out.stdout.strip())


def cluster_crd() -> Path:
    """CloudNativePG's own `Cluster` CRD (the real schema, with its CEL rules): what sharedcore renders is
    validated against it at every site, also where no CloudNativePG runs (kwok sites, dry runs)."""
    return module_dir() / "config" / "crd" / "bases" / CLUSTER_CRD


def release_manifest() -> list[dict[str, Any]]:
    """The module's release manifest, made to run from the local images."""
    path = module_dir() / "releases" / f"cnpg-{version().removeprefix('v')}.yaml"
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return [_local(doc) for doc in documents]


def _local(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] != "Deployment" or doc["metadata"]["name"] != DEPLOYMENT:
        return doc
    doc = copy.deepcopy(doc)
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["image"] = operator_image()
    container["imagePullPolicy"] = "IfNotPresent"
    env = [e for e in container["env"] if e["name"] not in ("OPERATOR_IMAGE_NAME", "POSTGRES_IMAGE_NAME")]
    # The instance pods copy the manager out of OPERATOR_IMAGE_NAME: the local image as well.
    env += [
        {"name": "OPERATOR_IMAGE_NAME", "value": operator_image()},
        {"name": "POSTGRES_IMAGE_NAME", "value": POSTGRES_IMAGE},
    ]
    container["env"] = env
    return doc


def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    """Not operators.kubectl: that module imports the planes, which import this one through the images."""
    result = subprocess.run(
        [str(binary("kubectl")), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args[:3])}: {result.stderr.strip()}")
    return result.stdout


def uninstall(kubeconfig: Path) -> None:
    """Remove what runs of the release (its CRDs stay): the namespace, and the admission webhooks, named
    since the release labels them with nothing. A webhook left without its Service refuses every Cluster
    (a later module's chart test saw `service "cnpg-webhook-service" not found` on each apply)."""
    for doc in release_manifest():
        if doc["kind"] in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            _kubectl(kubeconfig, "delete", doc["kind"].lower(), doc["metadata"]["name"], "--ignore-not-found")
    _kubectl(kubeconfig, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false")


def install(kubeconfig: Path, timeout: float = 180) -> None:
    """Apply the release at one real-node site; return once the operator is available and its webhooks
    answer (a Cluster the CRD schema accepts but CloudNativePG does not is refused by the API server)."""
    manifest = "\n---\n".join(json.dumps(doc) for doc in release_manifest())
    _kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=manifest)
    _kubectl(
        kubeconfig,
        "rollout",
        "status",
        "-n",
        NAMESPACE,
        f"deployment/{DEPLOYMENT}",
        f"--timeout={int(timeout)}s",
    )
    deadline = time.monotonic() + timeout
    while (answer := webhook_answer(kubeconfig)) is None or FIXED_PARAMETER not in answer:
        if time.monotonic() > deadline:
            raise RuntimeError(f"CloudNativePG's webhooks did not answer in {timeout:.0f}s: {answer}")
        time.sleep(1)


def webhook_answer(kubeconfig: Path) -> str | None:
    """What the API server says of a server-side dry run of a Cluster only the webhook refuses (one
    setting a parameter CloudNativePG fixes itself); None when it accepted it."""
    probe = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "webhook-probe", "namespace": "default"},
        "spec": {
            "instances": 1,
            "storage": {"size": "1Gi"},
            "postgresql": {"parameters": {"port": "5433"}},
        },
    }
    try:
        _kubectl(kubeconfig, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(probe))
    except RuntimeError as error:
        return str(error)
    return None


def instance_pods(kubeconfig: Path, namespace: str, cluster: str) -> Iterator[str]:
    out = _kubectl(
        kubeconfig, "get", "pods", "-n", namespace, "-l", f"cnpg.io/cluster={cluster}", "-o", "name"
    )
    return (line.removeprefix("pod/") for line in out.split())


def psql(kubeconfig: Path, namespace: str, pod: str, sql: str, database: str = "postgres") -> str:
    """Run SQL in an instance's container as the superuser, through its local socket; unaligned output."""
    return _kubectl(
        kubeconfig,
        "exec",
        "-n",
        namespace,
        pod,
        "-c",
        "postgres",
        "--",
        "psql",
        "-XAtq",
        "-d",
        database,
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        sql,
    ).strip()
