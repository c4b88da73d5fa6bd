"""The testbed gives real, independent control planes, and breaks them on request."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from sharedcore_testbed import PlaneError, Testbed
from tests.conftest import Sites
from tests.support.cluster import api_client, eventually

pytestmark = pytest.mark.cluster

CEL_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.testbed.example.org}
spec:
  group: testbed.example.org
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              min: {type: integer}
              max: {type: integer}
            x-kubernetes-validations:
            - rule: self.min <= self.max
              message: min must not exceed max
"""


def test_three_independent_planes_report_v1_35(sites: Sites, namespace: str) -> None:
    for site in sites:
        version = json.loads(sites.bed.get(site.name, "/version"))
        assert version["gitVersion"].startswith("v1.35."), version
    sites.danang.core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="only-here"), data={"k": "v"})
    )
    assert sites.danang.core.read_namespaced_config_map("only-here", namespace).data == {"k": "v"}
    for other in (sites.quangnam, sites.witness):
        with pytest.raises(ApiException) as error:
            other.core.read_namespaced_config_map("only-here", namespace)
        assert error.value.status == 404


def test_cel_rule_rejects_with_its_message(sites: Sites, namespace: str) -> None:
    site = sites.witness
    site.kubectl("apply", "-f", "-", stdin=CEL_CRD)
    site.kubectl("wait", "--for=condition=Established", "crd/widgets.testbed.example.org", "--timeout=30s")
    good = (
        "apiVersion: testbed.example.org/v1\nkind: Widget\nmetadata: {name: good}\nspec: {min: 1, max: 2}\n"
    )
    bad = good.replace("good", "bad").replace("min: 1", "min: 3")
    site.kubectl("apply", "-n", namespace, "-f", "-", stdin=good)
    rejected = site.kubectl("apply", "-n", namespace, "-f", "-", stdin=bad, check=False)
    assert rejected.returncode != 0
    assert "min must not exceed max" in rejected.stderr


def test_deployment_becomes_available_through_kwok(sites: Sites, namespace: str) -> None:
    site = sites.danang
    site.kubectl("create", "deployment", "web", "-n", namespace, "--image=nginx:1.27", "--replicas=2")
    deployment = eventually(
        lambda: (
            (d := site.apps.read_namespaced_deployment("web", namespace)).status.available_replicas == 2 and d
        ),
        timeout=90,
        message="2 available replicas",
    )
    assert deployment.status.ready_replicas == 2
    pods = site.core.list_namespaced_pod(namespace).items
    assert len(pods) == 2 and all(pod.spec.node_name.startswith("kwok-danang-") for pod in pods)


def _fails_within(api: client.CoreV1Api, timeout: float) -> float:
    """How long a request that must fail takes to fail (the client retries nothing)."""
    started = time.monotonic()
    with pytest.raises((HTTPError, OSError)):
        api.list_namespace(_request_timeout=timeout)
    return time.monotonic() - started


def _no_retry_client(kubeconfig: Path) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(kubeconfig, retries=0))


def test_stop_and_start_keep_the_data(sites: Sites, namespace: str) -> None:
    site = sites.witness
    site.core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="survivor"), data={"k": "v"})
    )
    site.stop()
    try:
        assert _fails_within(_no_retry_client(site.kubeconfig), timeout=3) < 3.5
        status = {plane.name: plane for plane in sites.bed.status()}
        assert status[site.name].processes["kube-apiserver"] == "exited"
    finally:
        site.start()
    assert site.core.read_namespaced_config_map("survivor", namespace).data == {"k": "v"}


def test_partition_cuts_only_the_proxied_link(sites: Sites) -> None:
    bed = sites.bed
    # A client at quangnam that reaches danang through the link proxy, as the operator will.
    proxied = _no_retry_client(bed.peer_kubeconfig("quangnam", "danang"))
    assert proxied.list_namespace(_request_timeout=5).items
    bed.partition("danang", "quangnam")
    try:
        assert _fails_within(proxied, timeout=2) < 3.5, "a partitioned client is bounded by its own timeout"
        assert sites.danang.core.list_namespace(_request_timeout=5).items, "direct access still works"
        status = {s.name: s.unreachable for s in bed.status()}
        assert status["quangnam"] == ("danang",) and status["danang"] == ("quangnam",)
    finally:
        bed.heal("danang", "quangnam")
    assert proxied.list_namespace(_request_timeout=5).items


def test_one_way_partition(sites: Sites) -> None:
    bed = sites.bed
    q_to_d = _no_retry_client(bed.peer_kubeconfig("quangnam", "danang"))
    d_to_q = _no_retry_client(bed.peer_kubeconfig("danang", "quangnam"))
    bed.partition("quangnam", "danang", one_way=True)
    try:
        _fails_within(q_to_d, timeout=2)
        assert d_to_q.list_namespace(_request_timeout=5).items
    finally:
        bed.heal("quangnam", "danang")


def _testbed_processes(directory: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(directory) in cmdline:
                found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def test_down_leaves_nothing_running(tmp_path: Path) -> None:
    bed = Testbed(tmp_path / "bed")
    bed.up(["solo"])
    assert len(bed.pids()) == 3  # etcd, kube-apiserver, the link proxy
    bed.pause("solo")  # a paused plane must still go down
    bed.down()
    assert bed.pids() == []
    assert _testbed_processes(tmp_path) == []


def test_failed_start_names_the_process_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "assets"
    fake.mkdir()
    (fake / "kube-apiserver").write_text(
        "#!/bin/sh\necho 'flag provided but not defined: --nonsense' >&2\nexit 1\n"
    )
    (fake / "kube-apiserver").chmod(0o755)
    real_etcd = (
        Path(
            subprocess.run(
                [sys.executable, "-m", "sharedcore_testbed", "bin-dir"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        / "etcd"
    )
    os.symlink(real_etcd, fake / "etcd")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(fake))
    bed = Testbed(tmp_path / "bed")
    with pytest.raises(PlaneError, match=r"(?s)kube-apiserver exited.*flag provided but not defined"):
        bed.up(["broken"])
    assert _testbed_processes(tmp_path / "bed") == []


def test_interrupted_session_leaves_nothing(tmp_path: Path) -> None:
    """A CLI `up` killed by Ctrl-C tears down what it had started."""
    directory = tmp_path / "bed"
    process = subprocess.Popen(
        [sys.executable, "-m", "sharedcore_testbed", "up", "--dir", str(directory), "one", "two"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    eventually(
        (directory / "one" / "logs" / "kube-apiserver.log").exists,
        timeout=60,
        message="first apiserver started",
    )
    # The log is opened just before the process is forked and recorded: interrupted in that instant, the
    # command could not know its apiserver (CI, once). Interrupt it while it waits for the apiserver instead.
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    assert process.returncode != 0
    assert _testbed_processes(directory) == []
