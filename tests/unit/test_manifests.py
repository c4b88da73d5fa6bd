"""The generated packaging files are current, and every kustomize tree builds into what the chart installs."""

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner

from sharedcore import rbac
from sharedcore.api import Platform, validate_manifest
from sharedcore.cli import main
from sharedcore.manifests import ARGOCD, DASHBOARD, HEALTH_CHECKS, RULES, generated, stale, write
from tests.support.packaging import (
    CHART,
    KUSTOMIZATIONS,
    MANIFESTS,
    NAMESPACE,
    ROOT,
    SITES,
    by_kind,
    helm_template,
    kustomize,
    one,
)

# What `sharedcore manifests` reads besides the package: copied into a scratch checkout for the write tests.
INPUTS = (RULES, DASHBOARD, HEALTH_CHECKS)


def test_generated_files_are_up_to_date() -> None:
    assert not stale(ROOT), f"stale: {', '.join(map(str, stale(ROOT)))}: run `make manifests`"


def test_chart_crds_are_the_top_level_crds() -> None:
    top = {path.name: path.read_bytes() for path in (ROOT / "crds").glob("*.yaml")}
    for directory in (CHART / "crds", MANIFESTS / "operator" / "crds"):
        copies = {path.name: path.read_bytes() for path in directory.glob("sharedcore*.yaml")}
        assert copies == top, f"{directory.relative_to(ROOT)} differs from crds/: run `make manifests`"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for relative in INPUTS:
        source, target = ROOT / relative, tmp_path / relative
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    return tmp_path


def test_command_writes_then_finds_nothing_stale(checkout: Path) -> None:
    runner = CliRunner()
    written = runner.invoke(main, ["manifests", "--root", str(checkout)])
    assert written.exit_code == 0, written.output
    assert sorted(written.output.split()) == sorted(str(path) for path in generated(checkout))
    again = runner.invoke(main, ["manifests", "--root", str(checkout), "--check"])
    assert again.exit_code == 0 and again.output == ""


def test_check_names_an_edited_rule_and_a_leftover_crd(checkout: Path) -> None:
    write(checkout)
    rules = checkout / RULES
    rules.write_text(rules.read_text().replace("for: 5m", "for: 6m", 1))
    leftover = checkout / CHART.relative_to(ROOT) / "crds" / "sharedcore.danang.gov.vn_retired.yaml"
    leftover.write_text("stale\n")
    result = CliRunner().invoke(main, ["manifests", "--root", str(checkout), "--check"])
    assert result.exit_code == 1
    assert "charts/sharedcore-operator/files/prometheus-rules.yaml" in result.output
    assert "manifests/monitoring/prometheusrule.yaml" in result.output
    assert "sharedcore.danang.gov.vn_retired.yaml" in result.output
    write(checkout)
    assert not leftover.exists() and not stale(checkout)


@pytest.mark.tools
def test_rbac_comes_from_sharedcore_rbac() -> None:
    """The chart's and the base's ClusterRole grant exactly the rules the tests' operator runs with."""
    chart_role = one(helm_template("--set", "site=danang"), "ClusterRole")
    base_role = one(kustomize(MANIFESTS / "sites" / "danang"), "ClusterRole")
    assert chart_role["rules"] == base_role["rules"] == rbac.RULES


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda path: str(path.relative_to(MANIFESTS)))
@pytest.mark.tools
def test_kustomization_builds(directory: Path) -> None:
    objects = kustomize(directory)
    assert objects
    for obj in objects:
        assert obj["apiVersion"] and obj["kind"] and obj["metadata"]["name"]


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without what legitimately differs between Helm and kustomize: labels and annotations."""
    return {key: value for key, value in obj.items() if key != "metadata"} | {
        "metadata": {key: obj["metadata"].get(key) for key in ("name", "namespace")}
    }


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


@pytest.mark.parametrize("site", SITES)
@pytest.mark.tools
def test_site_overlay_is_the_chart_with_default_values(site: str) -> None:
    """Same objects, same specs (pod security, probes, args, RBAC): only labels differ; the base adds the
    Namespace (with Pod Security enforcement) that `helm install --create-namespace` would create."""
    chart = helm_template("--set", f"site={site}", "--include-crds")
    base = [obj for obj in kustomize(MANIFESTS / "sites" / site) if obj["kind"] != "Namespace"]
    for obj in chart:  # cluster-scoped objects carry no namespace in either
        if obj["kind"] in {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}:
            obj["metadata"].pop("namespace", None)
    assert sorted(map(_key, chart)) == sorted(map(_key, base))
    charted = {_key(obj): _comparable(obj) for obj in chart}
    for obj in base:
        assert _comparable(obj) == charted[_key(obj)], f"{_key(obj)} differs between the chart and kustomize"
    for obj in base:
        assert obj["metadata"]["labels"]["sharedcore.danang.gov.vn/site"] == site


@pytest.mark.tools
def test_monitoring_base_is_the_charts_monitoring() -> None:
    chart = helm_template(
        "--set",
        "site=danang",
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        "grafanaDashboard.enabled=true",
        "--set",
        "cnpgPodMonitor.enabled=true",
    )
    base = kustomize(MANIFESTS / "monitoring")
    assert one(base, "ServiceMonitor")["spec"] == one(chart, "ServiceMonitor")["spec"]
    # The chart narrows the PodMonitor to operator.watchNamespaces when set; by default both select any.
    assert one(base, "PodMonitor")["spec"] == one(chart, "PodMonitor")["spec"]
    assert one(base, "PodMonitor")["metadata"]["name"] == one(chart, "PodMonitor")["metadata"]["name"]
    assert one(base, "PrometheusRule")["spec"] == one(chart, "PrometheusRule")["spec"]
    dashboards = by_kind(base, "ConfigMap") + by_kind(chart, "ConfigMap")
    assert len(dashboards) == 2
    for config in dashboards:
        assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(config["data"]["sharedcore.json"]) == json.loads((ROOT / DASHBOARD).read_text())
    assert all(obj["metadata"]["namespace"] == NAMESPACE for obj in base)


def test_argocd_config_holds_every_health_check() -> None:
    config = yaml.safe_load((ROOT / ARGOCD / "argocd-cm.yaml").read_text())
    checks = sorted((ROOT / HEALTH_CHECKS).glob("*/*/health.lua"))
    assert len(checks) == 3
    assert config["data"] == {
        f"resource.customizations.health.sharedcore.danang.gov.vn_{path.parent.name}": path.read_text()
        for path in checks
    }


def test_gitops_examples_point_at_kustomizations() -> None:
    appset = yaml.safe_load((MANIFESTS / "argocd" / "applicationset.yaml").read_text())
    sites, parts = (
        generator["list"]["elements"] for generator in appset["spec"]["generators"][0]["matrix"]["generators"]
    )
    paths = {part["path"].replace("{{.site}}", site["site"]) for site in sites for part in parts}
    flux = list(yaml.safe_load_all((MANIFESTS / "flux" / "sharedcore.yaml").read_text()))
    paths |= {
        doc["spec"]["path"].removeprefix("./").replace("${SITE}", site)
        for doc in flux
        if doc["kind"] == "Kustomization"
        for site in SITES
    }
    assert paths == {str(path.relative_to(ROOT)) for path in KUSTOMIZATIONS if path.name != "monitoring"}
    assert {site["site"] for site in sites} == set(SITES)
    # Both read the user's own GitOps repository: one placeholder, on a reserved domain that never resolves.
    [repository] = {doc["spec"]["url"] for doc in flux if doc["kind"] == "GitRepository"}
    assert appset["spec"]["template"]["spec"]["source"]["repoURL"] == repository
    assert (urlsplit(repository).hostname or "").endswith(".example")


def _samples() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((MANIFESTS / "samples").rglob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
    ]


@pytest.mark.tools
def test_samples_are_valid_and_cover_every_platform_and_failover_kind() -> None:
    ours = [doc for doc in _samples() if doc["apiVersion"].startswith("sharedcore.danang.gov.vn/")]
    for doc in ours:
        validate_manifest(doc)
    services = [doc for doc in ours if doc["kind"] == "SharedService"]
    assert sorted(doc["spec"]["platform"] for doc in services) == sorted(map(str, Platform))
    namespaces = {doc["metadata"]["name"] for doc in _samples() if doc["kind"] == "Namespace"}
    assert {doc["metadata"]["namespace"] for doc in services} == namespaces
    failovers = [doc["spec"] for doc in ours if doc["kind"] == "Failover"]
    assert {
        (spec["type"], spec.get("acceptDataLoss", False), spec.get("dryRun", False)) for spec in failovers
    } == {
        ("Switchover", False, False),
        ("Failover", True, False),
        ("Failover", False, True),
    }
    # GitOps applies the Topology and services; Failovers are one-off requests, kept out of the kustomization.
    applied = kustomize(MANIFESTS / "samples")
    assert {obj["kind"] for obj in applied} == {"Namespace", "Topology", "SharedService"}
