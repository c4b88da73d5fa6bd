"""Real nodes: pods run in containers at each site, across a WAN the testbed can cut; outages are real."""

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharedcore_testbed import Testbed, images
from tests.conftest import REAL_NODES, Sites
from tests.support.cluster import Site, eventually

pytestmark = [pytest.mark.cluster, pytest.mark.nodes]

# A stand-in image every node has: a small HTTP server on the platform's ports (8080, 9090).
IMAGE = f"registry.danang.gov.vn/sharedcore/smart-city/api:{images.STANDIN_VERSIONS[0]}"
FETCH = (
    "import sys, urllib.request; "
    "print(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read().decode())"
)


def pod(name: str, *, volume_claim: str | None = None) -> dict[str, Any]:
    """A stand-in pod under the restricted Pod Security Standard, labelled app=<name>."""
    spec: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "web",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
        "terminationGracePeriodSeconds": 1,
    }
    if volume_claim:
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": volume_claim}}]
        spec["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": spec,
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 8080, "targetPort": 8080}]},
    }


def apply(site: Site, namespace: str, *objects: dict[str, Any]) -> None:
    site.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(objects))


def wait_ready(site: Site, namespace: str, *pods: str, timeout: str = "90s") -> None:
    site.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", f"--timeout={timeout}", *(f"pod/{p}" for p in pods)
    )


def fetch(
    site: Site, namespace: str, client_pod: str, url: str, timeout: float = 3
) -> subprocess.CompletedProcess[str]:
    """GET url from inside a pod (its own network, its own DNS)."""
    return site.kubectl(
        "exec", "-n", namespace, client_pod, "--", "python3", "-c", FETCH, url, str(timeout), check=False
    )


def test_each_real_site_runs_pods_with_logs_exec_services_and_dns(
    real_sites: Sites, real_namespace: str
) -> None:
    for site in (real_sites.danang, real_sites.quangnam):
        nodes = json.loads(site.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        assert [n["metadata"]["name"] for n in nodes] == [f"{site.name}-node-{k}" for k in range(REAL_NODES)]
        for node in nodes:
            info = node["status"]["nodeInfo"]
            assert info["containerRuntimeVersion"].startswith("containerd://1.6"), info
            assert info["kubeletVersion"].startswith("v1.35."), info
    assert json.loads(real_sites.witness.kubectl("get", "nodes", "-o", "json").stdout)["items"] == []

    danang = real_sites.danang
    apply(danang, real_namespace, pod("web"), service("web"), pod("client"))
    wait_ready(danang, real_namespace, "web", "client")
    assert "listening on [8080, 9090]" in danang.kubectl("logs", "-n", real_namespace, "web").stdout
    assert danang.kubectl("exec", "-n", real_namespace, "web", "--", "id", "-u").stdout.strip() == "10001"
    url = f"http://web.{real_namespace}.svc.cluster.local:8080/x"
    # kube-proxy programs a new Service's rules within a second or two (minSyncPeriod 1 s).
    answer = eventually(lambda: fetch(danang, real_namespace, "client", url).stdout or None, timeout=30)
    assert json.loads(answer)["path"] == "/x"
    # Cluster DNS answers only the testbed's names: nothing outside it resolves (a resolver error, EAI_*).
    outside = fetch(danang, real_namespace, "client", "http://example.org/")
    assert outside.returncode != 0 and "urlopen error [Errno -" in outside.stderr, outside.stderr


def test_a_site_reaches_the_other_sites_services_only_across_the_link(
    real_sites: Sites, real_namespace: str
) -> None:
    danang, quangnam = real_sites.danang, real_sites.quangnam
    # Site-specific names, as the render gives databases (<service>-db-<site>-rw).
    apply(danang, real_namespace, pod("web-danang"), service("web-danang"), pod("client"))
    apply(quangnam, real_namespace, pod("web-quangnam"), service("web-quangnam"), pod("client"))
    wait_ready(danang, real_namespace, "web-danang", "client")
    wait_ready(quangnam, real_namespace, "web-quangnam", "client")

    def cluster_ip(site: Site, name: str) -> str:
        jsonpath = "jsonpath={.spec.clusterIP}"
        return site.kubectl("get", "-n", real_namespace, "service", name, "-o", jsonpath).stdout

    # What the render assumes for a peer's database: <service>.<namespace>.svc.clusterset.local.
    by_name = f"http://web-danang.{real_namespace}.svc.clusterset.local:8080/"
    by_ip = f"http://{cluster_ip(danang, 'web-danang')}:8080/"
    to_quangnam = f"http://{cluster_ip(quangnam, 'web-quangnam')}:8080/"

    def reaches(site: Site, url: str) -> bool:
        return fetch(site, real_namespace, "client", url).returncode == 0

    answer = json.loads(eventually(lambda: fetch(quangnam, real_namespace, "client", by_name).stdout or None))
    assert answer["hostname"] == "web-danang"
    assert reaches(quangnam, by_ip)

    bed = real_sites.bed
    bed.partition("danang", "quangnam")
    try:
        assert not reaches(quangnam, by_ip)
        assert not reaches(quangnam, by_name)
        assert not reaches(danang, to_quangnam)
        assert reaches(quangnam, f"http://web-quangnam.{real_namespace}.svc.cluster.local:8080/")
    finally:
        bed.heal("danang", "quangnam")
    eventually(lambda: reaches(quangnam, by_name), timeout=20)

    bed.partition("quangnam", "danang", one_way=True)
    try:
        assert not reaches(quangnam, by_ip)
        assert reaches(danang, to_quangnam)
    finally:
        bed.heal("danang", "quangnam")
    assert reaches(quangnam, by_ip)


def test_a_volume_keeps_its_data_through_a_site_outage(real_sites: Sites, real_namespace: str) -> None:
    danang = real_sites.danang
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    apply(danang, real_namespace, claim, pod("keeper", volume_claim="data"))
    wait_ready(danang, real_namespace, "keeper")
    marker = uuid.uuid4().hex
    danang.kubectl("exec", "-n", real_namespace, "keeper", "--", "sh", "-c", f"echo {marker} > /data/marker")
    container_pids = real_sites.bed.node_pids("danang")
    assert container_pids

    real_sites.bed.stop("danang")
    assert not any(_alive(pid) for pid in container_pids), "every process of the site dies with it"
    real_sites.bed.start("danang")

    # The pod object survived in etcd; the kubelet runs it again, in a new sandbox, with the same volume.
    def marker_read() -> str | None:
        read = danang.kubectl(
            "exec", "-n", real_namespace, "keeper", "--", "cat", "/data/marker", check=False
        )
        return read.stdout.strip() if read.returncode == 0 else None

    assert eventually(marker_read, timeout=120) == marker


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A directory short enough for containerd's socket paths (pytest's tmp_path may not be)."""
    directory = Path(tempfile.mkdtemp(prefix="tb-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _host_rules() -> str:
    """The host's own iptables rules, without counters."""
    saved = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return "\n".join(line.split(" [")[0] for line in saved.splitlines() if not line.startswith("#"))


def test_down_leaves_nothing_even_after_an_interrupted_up(short_tmp: Path) -> None:
    rules = _host_rules()
    directory = short_tmp / "bed"
    bed = Testbed(directory)
    up = [
        sys.executable,
        "-m",
        "sharedcore_testbed",
        "up",
        "--dir",
        str(directory),
        "--nodes",
        "real",
        "solo",
    ]
    interrupted = subprocess.Popen(up, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # Ctrl-C while the node starts: its namespace, cgroups and containerd exist by then.
        eventually((directory / "solo" / "node" / "0" / "containerd" / "containerd.sock").exists, timeout=120)
        interrupted.send_signal(signal.SIGINT)
        assert interrupted.wait(timeout=60) != 0
        assert bed.leftovers() == []

        bed.up(["solo"], real={"solo"})
        solo = Site("solo", bed)
        solo.kubectl("run", "web", f"--image={IMAGE}", "--image-pull-policy=Never")
        solo.kubectl("wait", "--for=condition=Ready", "--timeout=60s", "pod/web")
        assert bed.node_pids("solo")
        bed.down()
        assert bed.leftovers() == []
        assert _host_rules() == rules
    finally:
        interrupted.kill()
        interrupted.wait()
        bed.down()
