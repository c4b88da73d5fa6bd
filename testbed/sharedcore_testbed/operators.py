"""Run the real operator against a testbed site, as it runs in a cluster: authenticated as its ServiceAccount,
bound to the shipped ClusterRole and nothing more. Used by the tests, the benchmarks and `make demo`."""

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from sharedcore import rbac
from sharedcore_testbed import Testbed, citydns, cnpg, processes
from sharedcore_testbed.binaries import bin_dir, binary, source_root
from sharedcore_testbed.clock import skewed_environment
from sharedcore_testbed.waiting import eventually

OPERATOR_NAMESPACE = "sharedcore-system"
OPERATOR_ACCOUNT = "sharedcore-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"


def peer_user(site: str) -> str:
    """Who `site`'s operator is at the other site and at the witness (`sharedcore peer-identity`)."""
    return f"system:serviceaccount:{OPERATOR_NAMESPACE}:{rbac.peer_account(site)}"


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]  # (name, sorted labels) → value


def run_tool(
    tool: str, kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A testbed binary (kubectl, helm) against one site's kubeconfig; the caller judges the exit code."""
    return subprocess.run(
        [str(binary(tool)), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    """The testbed's kubectl; a failure raises with kubectl's own message."""
    result = run_tool("kubectl", kubeconfig, *args, stdin=stdin)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def data_plane_crds() -> tuple[Path, ...]:
    """The CRDs of what the operator renders besides its own: CloudNativePG's `Cluster` and ExternalDNS's real
    ones (of the versions the testbed builds), and minimal stand-ins for VolSync's and monitoring's
    (tests/fixtures/crds)."""
    return (source_root() / "tests" / "fixtures" / "crds", cnpg.cluster_crd(), bin_dir() / citydns.CRD)


def install_crds(kubeconfig: Path, *directories: Path) -> None:
    for directory in directories:
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(directory))
    # Polled rather than `kubectl wait --for=condition=Established crd --all`: that fails outright on a CRD
    # created a moment ago whose status has no conditions yet.
    eventually(lambda: not _unestablished(kubeconfig), timeout=60, message="every CRD Established")


def _unestablished(kubeconfig: Path) -> list[str]:
    crds = json.loads(kubectl(kubeconfig, "get", "crd", "-o", "json"))["items"]
    return [
        crd["metadata"]["name"]
        for crd in crds
        if not any(
            c.get("type") == "Established" and c.get("status") == "True"
            for c in (crd.get("status") or {}).get("conditions") or []
        )
    ]


def _bound(kind: str, name: str, role: str, account: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": OPERATOR_NAMESPACE}],
    }


def service_account_kubeconfig(
    bed: Testbed, site: str, out: Path, *, namespaces: tuple[str, ...] = (), account: str = OPERATOR_ACCOUNT
) -> Path:
    """Create the operator's ServiceAccount and RBAC at `site` as the chart does (watching `namespaces`, or
    every namespace); write a kubeconfig with its token to `out`."""
    admin = bed.kubeconfig(site)
    if namespaces:
        roles = [
            rbac.cluster_role(account, rbac.CLUSTER_RULES),
            rbac.cluster_role(f"{account}-namespaced", rbac.NAMESPACED_RULES),
        ]
        bindings = [
            _bound("ClusterRoleBinding", account, account, account),
            *(
                _bound("RoleBinding", account, f"{account}-namespaced", account, namespace)
                for namespace in dict.fromkeys((*namespaces, OPERATOR_NAMESPACE))
            ),
        ]
    else:
        roles = [rbac.cluster_role()]
        bindings = [_bound("ClusterRoleBinding", account, rbac.CLUSTER_ROLE_NAME, account)]
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": OPERATOR_NAMESPACE},
        },
        *roles,
        *bindings,
    ]
    kubectl(
        admin,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        stdin="---\n".join(yaml.safe_dump(obj) for obj in objects),
    )
    token = kubectl(admin, "create", "token", account, "-n", OPERATOR_NAMESPACE, "--duration=24h").strip()
    cluster = yaml.safe_load(admin.read_text())["clusters"][0]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "operator",
                "clusters": [cluster],
                "users": [{"name": "operator", "user": {"token": token}}],
                "contexts": [
                    {"name": "operator", "context": {"cluster": cluster["name"], "user": "operator"}}
                ],
            }
        )
    )
    out.chmod(0o600)
    return out


def remove_service_account(kubeconfig: Path, account: str = OPERATOR_ACCOUNT) -> None:
    """Undo `service_account_kubeconfig` (every namespace form): a later `helm install` of the chart at the
    same plane would otherwise find objects of the same names it does not own, and refuse."""
    for kind in ("clusterrolebinding", "clusterrole"):
        kubectl(kubeconfig, "delete", kind, account, "--ignore-not-found")
    kubectl(kubeconfig, "delete", "namespace", OPERATOR_NAMESPACE, "--ignore-not-found", "--timeout=120s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class OperatorProcess:
    """`sharedcore run` for one site as a child process: started, stopped or SIGKILLed, probed and scraped;
    started with its wall clock `clock_offset` seconds off the machine's (0: not)."""

    site: str
    kubeconfig: Path
    log_path: Path
    args: tuple[str, ...] = ()
    metrics_port: int = field(default_factory=_free_port)
    health_port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None
    clock_offset: float = 0.0

    def start(self) -> None:
        skew = skewed_environment(self.clock_offset) if self.clock_offset else {}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sharedcore",
                    "run",
                    "--site",
                    self.site,
                    "--metrics-port",
                    str(self.metrics_port),
                    "--health-port",
                    str(self.health_port),
                    *self.args,
                ],
                env={**os.environ, "KUBECONFIG": str(self.kubeconfig), **skew},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def http(self, port: int, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def ready(self) -> bool:
        """Readiness as the kubelet would probe it; an exited process fails loudly with its log."""
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise RuntimeError(f"operator at {self.site} is not running (exit {code}):\n{self.log_tail()}")
        try:
            return self.http(self.health_port, "/readyz")[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        eventually(self.ready, timeout=timeout, message=f"operator at {self.site} ready")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def metrics_text(self, *names: str) -> str:
        """The exposition; of the metric families `names` only, if given."""
        query = urllib.parse.urlencode([("name[]", name) for name in names])
        return self.http(self.metrics_port, f"/metrics?{query}" if query else "/metrics")[1]

    def metrics(self) -> Samples:
        """Samples by (name, sorted labels)."""
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(self.metrics_text())
            for sample in family.samples
        }

    def peak_rss_bytes(self) -> int:
        """The process's high-water mark of resident memory (VmHWM), for benchmarks."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used so far."""
        assert self.process is not None
        return processes.cpu_seconds(self.process.pid)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def metric(process: OperatorProcess, series: str, /, **labels: str) -> float | None:
    """One sample of the operator's metrics, if it has it."""
    return process.metrics().get((series, tuple(sorted(labels.items()))))


def audit_events(audit_log: Path, user: str | None, since: float) -> list[dict[str, Any]]:
    """The API server's own record of `user`'s (None: everyone's) completed requests received after `since`
    (epoch seconds)."""
    events = []
    # kube-apiserver rotates audit.log into audit-<time>.log beside it.
    for path in sorted(audit_log.parent.glob("audit*.log")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written right now
            if event.get("stage") != "ResponseComplete" or user not in (
                None,
                event.get("user", {}).get("username"),
            ):
                continue
            if datetime.datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp() >= since:
                events.append(event)
    return events
