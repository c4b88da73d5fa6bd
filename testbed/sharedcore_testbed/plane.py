"""One control plane: etcd + kube-apiserver; with workloads also controller-manager, scheduler and kwok.

Flags follow controller-runtime's envtest, plus an audit log (tests count the operator's writes from it) and a
service CIDR large enough for the benchmarks.
"""

import base64
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from sharedcore_testbed import pki, processes
from sharedcore_testbed.binaries import binary
from sharedcore_testbed.state import PlaneState

READY_TIMEOUT = 120.0
COMPANIONS = ("kube-controller-manager", "kube-scheduler", "kwok", "provisioner")
# Beside a real node: no kwok, no fake nodes.
REAL_COMPANIONS = ("kube-controller-manager", "kube-scheduler", "provisioner")
USERS = ("admin", *COMPANIONS)
FAKE_NODES = 3
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        # The companions are the testbed's own machinery: keep them out of what tests count.
        {"level": "None", "users": list(COMPANIONS)},
        {"level": "None", "nonResourceURLs": ["/readyz*", "/healthz*", "/livez*", "/metrics", "/version"]},
        {"level": "Metadata"},
    ],
}


class PlaneError(RuntimeError):
    """A process of a plane failed to start or become ready; the message names it and tails its log."""


def plane_dir(root: Path, name: str) -> Path:
    return root / name


def kubeconfig_path(root: Path, name: str, user: str = "admin") -> Path:
    return plane_dir(root, name) / ("kubeconfig" if user == "admin" else f"{user}.kubeconfig")


def peer_kubeconfig_path(root: Path, site: str, peer: str) -> Path:
    return plane_dir(root, site) / "peers" / f"{peer}.kubeconfig"


def kubeconfig(name: str, server: str, keys: pki.PlanePki, user: str = "admin") -> dict[str, Any]:
    """A self-contained kubeconfig (certificates inline), so it can be copied into a Secret as is."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": b64(keys.ca_cert)}}
        ],
        "users": [
            {
                "name": f"{user}@{name}",
                "user": {
                    "client-certificate-data": b64(keys.client_cert(user)),
                    "client-key-data": b64(keys.client_key(user)),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{user}@{name}"}}],
        "current-context": name,
    }


def write_yaml(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    path.chmod(0o600)


def prepare(root: Path, plane: PlaneState, addresses: tuple[str, ...] = ()) -> None:
    """Create the plane's certificates, kubeconfigs and audit policy (once; a restart keeps them).

    `addresses`: where else clients reach the apiserver (its own address, the link proxies' addresses, the
    in-cluster `kubernetes` Service): its serving certificate names them.
    """
    directory = plane_dir(root, plane.name)
    keys = pki.create(directory / "pki", plane.name, USERS, addresses)
    server = f"https://{plane.address}:{plane.apiserver_port}"
    for user in USERS:
        write_yaml(kubeconfig_path(root, plane.name, user), kubeconfig(plane.name, server, keys, user))
    write_yaml(directory / "audit-policy.yaml", AUDIT_POLICY)


def _etcd_argv(root: Path, plane: PlaneState) -> list[str]:
    peer = f"http://127.0.0.1:{plane.etcd_peer_port}"
    client = f"http://127.0.0.1:{plane.etcd_client_port}"
    return [
        str(binary("etcd")),
        f"--name={plane.name}",
        f"--data-dir={plane_dir(root, plane.name) / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster={plane.name}={peer}",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def _apiserver_argv(root: Path, plane: PlaneState) -> list[str]:
    directory = plane_dir(root, plane.name)
    keys = pki.PlanePki(directory / "pki")
    port = plane.apiserver_port
    return [
        str(binary("kube-apiserver")),
        *_node_facing_flags(plane, keys),
        f"--service-cluster-ip-range={plane.service_cidr}",
        f"--etcd-servers=http://127.0.0.1:{plane.etcd_client_port}",
        f"--cert-dir={directory / 'pki'}",
        f"--tls-cert-file={keys.serving_cert}",
        f"--tls-private-key-file={keys.serving_key}",
        f"--client-ca-file={keys.ca_cert}",
        f"--secure-port={port}",
        f"--bind-address={plane.address}",
        f"--advertise-address={plane.address}",
        "--allow-privileged=true",
        f"--service-account-issuer=https://{plane.address}:{port}/",
        f"--service-account-key-file={keys.sa_public_key}",
        f"--service-account-signing-key-file={keys.sa_private_key}",
        f"--audit-policy-file={directory / 'audit-policy.yaml'}",
        f"--audit-log-path={directory / 'audit.log'}",
        "--audit-log-format=json",
        "--audit-log-maxsize=200",
        "--audit-log-maxbackup=2",
    ]


def _node_facing_flags(plane: PlaneState, keys: pki.PlanePki) -> list[str]:
    """Flags that differ beside a real node: node identities (Node authorizer, NodeRestriction), service
    account tokens for pods, and kubelets reached by IP with the apiserver's client certificate. Without a
    node: envtest's settings."""
    if plane.node_index is None:
        return ["--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount"]
    return [
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-client-certificate={keys.client_cert('kubelet-client')}",
        f"--kubelet-client-key={keys.client_key('kubelet-client')}",
    ]


def _companion_argv(root: Path, plane: PlaneState, name: str) -> list[str]:
    keys = pki.PlanePki(plane_dir(root, plane.name) / "pki")
    config = f"--kubeconfig={kubeconfig_path(root, plane.name, name)}"
    if name == "kube-controller-manager":
        return [
            str(binary(name)),
            config,
            f"--root-ca-file={keys.ca_cert}",
            f"--service-account-private-key-file={keys.sa_private_key}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--use-service-account-credentials=false",
            "--controllers=*,-nodeipam",
        ]
    if name == "provisioner":
        return [sys.executable, "-m", "sharedcore_testbed.provisioner", str(root), plane.name]
    if name == "kube-scheduler":
        return [
            str(binary(name)),
            config,
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
        ]
    return [
        str(binary(name)),
        config,
        f"--config={binary('kwok-stages.yaml')}",
        "--node-lease-duration-seconds=40",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr=10.244.0.0/16",
        "--node-ip=10.244.255.1",
    ]


def _tls_context(root: Path, name: str, user: str) -> ssl.SSLContext:
    keys = pki.PlanePki(plane_dir(root, name) / "pki")
    context = ssl.create_default_context(cafile=str(keys.ca_cert))
    context.load_cert_chain(str(keys.client_cert(user)), str(keys.client_key(user)))
    return context


def request(
    root: Path,
    plane: PlaneState,
    path: str,
    body: Any = None,
    *,
    timeout: float = 5.0,
    method: str | None = None,
    user: str = "admin",
) -> bytes:
    """A request to the plane's apiserver: GET, or POST of a JSON body (no client library needed)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"https://{plane.address}:{plane.apiserver_port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data else {},
    )
    with urllib.request.urlopen(
        req, context=_tls_context(root, plane.name, user), timeout=timeout
    ) as response:
        payload: bytes = response.read()
        return payload


def _wait(plane: PlaneState, process: str, probe: Callable[[], bool], deadline: float) -> None:
    """Poll `probe` until True; fail naming the process, with its log tail, if it dies or stalls."""
    record = plane.processes[process]
    while time.monotonic() < deadline:
        if not processes.alive(record):
            raise PlaneError(
                f"{plane.name}: {process} exited\n--- {record.log} ---\n{processes.log_tail(record)}"
            )
        try:
            if probe():
                return
        except (OSError, urllib.error.URLError, ssl.SSLError):
            pass
        time.sleep(0.1)
    raise PlaneError(
        f"{plane.name}: {process} not ready after {READY_TIMEOUT:.0f}s\n--- {record.log} ---\n"
        f"{processes.log_tail(record)}"
    )


def _start_process(root: Path, plane: PlaneState, name: str, argv: list[str]) -> None:
    record = plane.processes.get(name)
    if record and processes.alive(record):
        return
    plane.processes[name] = processes.spawn(name, argv, plane_dir(root, plane.name) / "logs" / f"{name}.log")


def start(root: Path, plane: PlaneState) -> None:
    """Start (or restart with the same data and ports) every process of the plane; return when it serves."""
    deadline = time.monotonic() + READY_TIMEOUT
    _start_process(root, plane, "etcd", _etcd_argv(root, plane))
    etcd_health = f"http://127.0.0.1:{plane.etcd_client_port}/health"

    def etcd_healthy() -> bool:
        with urllib.request.urlopen(etcd_health, timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")

    _wait(plane, "etcd", etcd_healthy, deadline)
    _start_process(root, plane, "kube-apiserver", _apiserver_argv(root, plane))
    _wait(plane, "kube-apiserver", lambda: request(root, plane, "/readyz") == b"ok", deadline)
    if plane.workloads and plane.node_index is not None:
        for name in REAL_COMPANIONS:
            _start_process(root, plane, name, _companion_argv(root, plane, name))
    elif plane.workloads:
        for name in COMPANIONS:
            _start_process(root, plane, name, _companion_argv(root, plane, name))
        _ensure_nodes(root, plane, deadline)
    plane.paused = False


def _ensure_nodes(root: Path, plane: PlaneState, deadline: float) -> None:
    """Fake nodes that kwok plays: pods get scheduled onto them and become Running/Ready."""
    nodes_path = "/api/v1/nodes?labelSelector=type%3Dkwok"
    existing = {node["metadata"]["name"] for node in json.loads(request(root, plane, nodes_path))["items"]}
    capacity = {"cpu": "256", "memory": "1Ti", "pods": "2000"}
    for index in range(FAKE_NODES):
        name = f"kwok-{plane.name}-{index}"
        if name not in existing:
            request(
                root,
                plane,
                "/api/v1/nodes",
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {"kwok.x-k8s.io/node": "fake"},
                        "labels": {"kubernetes.io/hostname": name, "type": "kwok"},
                    },
                    "status": {"allocatable": capacity, "capacity": capacity},
                },
            )

    def nodes_ready() -> bool:
        nodes = json.loads(request(root, plane, nodes_path))["items"]
        return len(nodes) >= FAKE_NODES and all(
            any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in node.get("status", {}).get("conditions", [])
            )
            for node in nodes
        )

    _wait(plane, "kwok", nodes_ready, deadline)


def stop(plane: PlaneState) -> None:
    """Kill the plane's processes, companions first; etcd's data stays on disk for a later start."""
    for name in reversed(list(plane.processes)):
        processes.terminate(plane.processes[name])
    plane.paused = False


def process_states(plane: PlaneState) -> dict[str, str]:
    return {name: processes.state(record) for name, record in plane.processes.items()}
