"""The packaging against a real API server: Helm installs the chart, every manifest passes a server-side dry
run, the operator's pod meets the "restricted" Pod Security Standard, and kubectl runs the plugin."""

import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharedcore import API_GROUP
from tests.conftest import Sites
from tests.support.cluster import Site
from tests.support.operator import install_crds
from tests.support.packaging import (
    CHART,
    KUSTOMIZATIONS,
    MANIFESTS,
    ROOT,
    documents,
    helm_template,
    kubectl_with_plugin,
    kustomize,
    one,
)

pytestmark = pytest.mark.cluster
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


@pytest.fixture(scope="module")
def plane(sites: Sites) -> Site:
    """The witness plane: bare, so the API server alone judges what is applied (nothing runs it)."""
    install_crds(sites.witness)  # ours, the data engines' and the Prometheus Operator's (minimal) CRDs
    return sites.witness


def helm(site: Site, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return site.run("helm", *args, check=check)


def ensure_namespace(site: Site, name: str) -> None:
    if site.kubectl("get", "namespace", name, check=False).returncode != 0:
        site.kubectl("create", "namespace", name)


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda path: path.stem)
def test_helm_install(plane: Site, namespace: str, values: Path) -> None:
    """Everything the chart renders is accepted by the API server (no --wait: nothing runs pods here)."""
    release = f"pkg-{values.stem.removesuffix('-values')}"
    for watched in (yaml.safe_load(values.read_text()).get("operator") or {}).get("watchNamespaces", []):
        ensure_namespace(plane, watched)  # the chart binds the operator there: they exist first
    try:
        helm(plane, "install", release, str(CHART), "--namespace", namespace, "-f", str(values))
        rendered = helm_template("-f", str(values), release=release, namespace=namespace)
        for obj in rendered:
            scope = ("-n", obj["metadata"]["namespace"]) if obj["metadata"].get("namespace") else ()
            plane.kubectl("get", obj["kind"], obj["metadata"]["name"], *scope)
        assert (
            json.loads(helm(plane, "status", release, "-n", namespace, "-o", "json").stdout)["info"]["status"]
            == "deployed"
        )
    finally:
        helm(plane, "uninstall", release, "--namespace", namespace, check=False)


def test_helm_install_refuses_bad_values(plane: Site, namespace: str) -> None:
    bad = ROOT / "tests" / "fixtures" / "values" / "bad-values.yaml"
    result = helm(
        plane, "install", "pkg-bad", str(CHART), "--namespace", namespace, "-f", str(bad), check=False
    )
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert "at '/site': 'Da Nang' does not match pattern" in result.stderr
    assert helm(plane, "list", "-n", namespace, "-q").stdout.strip() == ""


def all_manifests() -> list[dict[str, Any]]:
    objects = [obj for directory in KUSTOMIZATIONS for obj in kustomize(directory)]
    for path in [
        *sorted((MANIFESTS / "samples" / "failovers").glob("*.yaml")),
        MANIFESTS / "argocd" / "argocd-cm.yaml",
    ]:
        objects.extend(documents(path.read_text()))
    return objects


def test_every_manifest_passes_a_server_side_dry_run(plane: Site) -> None:
    objects = all_manifests()
    namespaces = {obj["metadata"]["namespace"] for obj in objects if obj["metadata"].get("namespace")}
    for name in sorted(namespaces):  # a dry run cannot create the namespace its objects go in
        ensure_namespace(plane, name)
    stream = yaml.safe_dump_all(objects, sort_keys=False)
    result = plane.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--dry-run=server",
        "--field-manager=sharedcore-packaging-test",
        "-f",
        "-",
        stdin=stream,
    )
    applied = [line for line in result.stdout.splitlines() if "(server dry run)" in line]
    assert len(applied) == len(objects), result.stdout
    assert "Warning" not in result.stderr, result.stderr


def restricted_namespace(site: Site) -> str:
    name = f"t-restricted-{uuid.uuid4().hex[:6]}"
    site.kubectl("create", "namespace", name)
    site.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    return name


def test_operator_pod_meets_restricted_pod_security(plane: Site) -> None:
    """The PodSecurity admission plugin judges the chart's pod (enforce=restricted) and a weakened copy."""
    name = restricted_namespace(plane)
    try:
        template = one(helm_template("--set", "site=danang", namespace=name), "Deployment")["spec"][
            "template"
        ]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator", "namespace": name}} | {
            "spec": template["spec"]
        }
        plane.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod))
        pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
        refused = plane.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False)
        assert refused.returncode != 0 and 'violates PodSecurity "restricted' in refused.stderr
    finally:
        plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


# The plugin, run by kubectl from PATH.


def patch_status(site: Site, resource: str, name: str, status: dict[str, Any], namespace: str = "") -> None:
    scope = ("-n", namespace) if namespace else ()
    site.kubectl(
        "patch",
        resource,
        name,
        *scope,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


@pytest.fixture
def city(plane: Site, namespace: str) -> Iterator[str]:
    """The samples' Topology and two services at the plane, with statuses as operators would write them."""
    failover = f"switchover-packaging-{uuid.uuid4().hex[:6]}"
    topology = yaml.safe_load((MANIFESTS / "samples" / "topology.yaml").read_text())
    plane.kubectl("create", "-f", "-", stdin=json.dumps(topology))
    try:
        patch_status(
            plane,
            "topologies",
            "default",
            {
                "observedGeneration": 1,
                "activeSite": "danang",
                "epoch": 2,
                "sites": [
                    {"name": "danang", "reachable": True, "role": "Active", "epoch": 2},
                    {"name": "quangnam", "reachable": False, "role": "Standby", "epoch": 2},
                ],
            },
        )
        for sample in ("hotline-1022", "open-data"):
            body = yaml.safe_load((MANIFESTS / "samples" / "sharedservices" / f"{sample}.yaml").read_text())
            body["metadata"]["namespace"] = namespace
            plane.kubectl("create", "-f", "-", stdin=json.dumps(body))
            lag = 75.0 if sample == "hotline-1022" else 10.0
            patch_status(
                plane,
                "sharedservices",
                body["metadata"]["name"],
                {
                    "site": "quangnam",
                    "role": "Standby",
                    "epoch": 2,
                    "replication": {"sourceSite": "danang", "databaseLagSeconds": lag},
                },
                namespace,
            )
        spec = yaml.safe_load((MANIFESTS / "samples" / "failovers" / "switchover.yaml").read_text())
        spec["metadata"]["name"] = failover
        plane.kubectl("create", "-f", "-", stdin=json.dumps(spec))
        patch_status(
            plane,
            "failovers",
            failover,
            {"phase": "Succeeded", "rtoSeconds": 21.5, "dataLossWindowSeconds": 0.0},
        )
        yield failover
    finally:
        for kind, name in (("failovers", failover), ("topologies", "default")):
            with contextlib.suppress(AssertionError):
                plane.kubectl("delete", f"{kind}.{API_GROUP}", name, "--wait=false", check=False)


def test_kubectl_finds_the_plugin(plane: Site) -> None:
    listed = kubectl_with_plugin("plugin", "list", "--name-only")
    assert "kubectl-sharedcore" in listed.stdout.split()


def test_kubectl_sharedcore_status(plane: Site, namespace: str, city: str) -> None:
    result = kubectl_with_plugin(
        "sharedcore", "status", f"--kubeconfig={plane.kubeconfig}", "-n", namespace, "-o", "json"
    )
    report = json.loads(result.stdout)
    assert (report["activeSite"], report["epoch"], report["witness"]) == ("danang", 2, "configured")
    assert [(s["name"], s["role"], s["reachable"]) for s in report["sites"]] == [
        ("danang", "Active", True),
        ("quangnam", "Standby", False),
    ]
    services = {s["name"]: s for s in report["services"]}
    assert services["tongdai-1022"]["withinObjective"] is False  # 75 s behind an RPO of 60 s
    assert services["opendata"]["withinObjective"] is True
    assert report["lastFailover"]["name"] == city and report["lastFailover"]["phase"] == "Succeeded"
    text = kubectl_with_plugin("sharedcore", "status", f"--kubeconfig={plane.kubeconfig}", "-n", namespace)
    assert "Active site: danang   Epoch: 2" in text.stdout and "ABOVE RPO" in text.stdout


def test_kubectl_sharedcore_render(plane: Site) -> None:
    sample = MANIFESTS / "samples" / "sharedservices" / "hotline-1022.yaml"
    result = kubectl_with_plugin(
        "sharedcore",
        "render",
        "-f",
        str(sample),
        "--site",
        "danang",
        "--role",
        "Active",
        "--peer",
        "quangnam",
    )
    kinds = {obj["kind"] for obj in documents(result.stdout)}
    assert {"Deployment", "Cluster", "ReplicationSource"} <= kinds
    # What it renders is accepted by the API server, too.
    ensure_namespace(plane, "hotline")
    plane.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=result.stdout)
