"""Running the real operator against a testbed site, authenticated as its ServiceAccount with the shipped
ClusterRole (so a missing permission fails a test), and reading what it and the API server report."""

import base64
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from sharedcore import rbac
from tests.support.cluster import Site, eventually

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "sharedcore-system"
OPERATOR_ACCOUNT = "sharedcore-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
CRD_DIRS = (ROOT / "crds", ROOT / "tests" / "fixtures" / "crds")


def install_crds(site: Site) -> None:
    """sharedcore's CRDs and the minimal CRDs of CloudNativePG, VolSync and ExternalDNS."""
    for directory in CRD_DIRS:
        site.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(directory))
    site.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


def _ensure(create: Any, *args: Any) -> None:
    try:
        create(*args)
    except client.ApiException as error:
        if error.status != 409:
            raise


def service_account_kubeconfig(site: Site, directory: Path) -> Path:
    """A kubeconfig for the operator's ServiceAccount, bound to rbac.cluster_role() — nothing more."""
    core, authz = site.core, client.RbacAuthorizationV1Api(site.api)
    _ensure(core.create_namespace, {"metadata": {"name": OPERATOR_NAMESPACE}})
    _ensure(
        core.create_namespaced_service_account, OPERATOR_NAMESPACE, {"metadata": {"name": OPERATOR_ACCOUNT}}
    )
    role = rbac.cluster_role()
    try:
        authz.replace_cluster_role(role["metadata"]["name"], role)
    except client.ApiException:
        authz.create_cluster_role(role)
    _ensure(
        authz.create_cluster_role_binding,
        {
            "metadata": {"name": rbac.CLUSTER_ROLE_NAME},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": rbac.CLUSTER_ROLE_NAME,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": OPERATOR_ACCOUNT, "namespace": OPERATOR_NAMESPACE}
            ],
        },
    )
    token = core.create_namespaced_service_account_token(
        OPERATOR_ACCOUNT, OPERATOR_NAMESPACE, {"spec": {"expirationSeconds": 86400}}
    ).status.token
    admin = yaml.safe_load(site.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "operator",
        "clusters": [cluster],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": cluster["name"], "user": "operator"}}],
    }
    path = directory / f"{site.name}-operator.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"])
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class OperatorProcess:
    """`sharedcore run` as a child process: started, stopped, SIGKILLed and scraped like the real thing."""

    site: Site
    kubeconfig: Path
    log_path: Path
    args: tuple[str, ...] = ()
    metrics_port: int = field(default_factory=_free_port)
    health_port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sharedcore",
                    "run",
                    "--site",
                    self.site.name,
                    "--metrics-port",
                    str(self.metrics_port),
                    "--health-port",
                    str(self.health_port),
                    *self.args,
                ],
                env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _http(self, port: int, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"operator exited with {self.process.returncode}:\n{self.log_tail()}")
        try:
            return self._http(self.health_port, "/readyz")[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        eventually(self.ready, timeout=timeout, message=f"operator at {self.site.name} ready")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Samples by (name, sorted labels)."""
        _, text = self._http(self.metrics_port, "/metrics")
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def audit_requests(
    site: Site, user: str, since: float, verbs: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """The API server's own record of `user`'s completed requests after `since` (epoch seconds)."""
    events = []
    for line in site.audit_log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line being written right now
        if event.get("user", {}).get("username") != user or event.get("stage") != "ResponseComplete":
            continue
        stamp = datetime.datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp()
        if stamp >= since and (verbs is None or event["verb"] in verbs):
            events.append(event)
    return events


WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
