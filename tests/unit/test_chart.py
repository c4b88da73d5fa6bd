"""The Helm chart: lint, render with every ci/ values file, refuse bad values, and hold its promises."""

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharedcore import rbac
from sharedcore.manifests import RULES, RUNBOOK_BASE_URL, with_runbook_urls
from tests.support.packaging import CHART, ROOT, by_kind, helm_template, one, run

pytestmark = pytest.mark.tools

CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
BAD_VALUES = ROOT / "tests" / "fixtures" / "values" / "bad-values.yaml"
CHART_META = yaml.safe_load((CHART / "Chart.yaml").read_text())
SITE = ("--set", "site=danang")


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert len(spec["containers"]) == 1
    result: dict[str, Any] = spec["containers"][0]
    return result


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda path: path.name if path else "defaults")
def test_lint_strict(values: Path | None) -> None:
    args = ("-f", str(values)) if values else SITE
    result = run("helm", "lint", "--strict", str(CHART), *args)
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda path: path.name)
def test_every_ci_values_file_renders_a_restricted_operator(values: Path) -> None:
    objects = helm_template("-f", str(values))
    site = yaml.safe_load(values.read_text())["site"]
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    main = container(objects)
    security = main["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert main["args"][0] == f"--site={site}"
    ports = {port["name"]: port["containerPort"] for port in main["ports"]}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert f"--health-port={ports['health']}" in main["args"]
    assert f"--metrics-port={ports['metrics']}" in main["args"]
    assert one(objects, "Service")["spec"]["ports"][0]["targetPort"] == "metrics"
    assert {obj["kind"] for obj in objects} >= {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    }


def test_watch_namespaces_become_flags() -> None:
    args = container(helm_template(*SITE, "--set", "operator.watchNamespaces={egov,hotline}"))["args"]
    assert args[-2:] == ["--namespace=egov", "--namespace=hotline"]
    assert "--all-namespaces" in container(helm_template(*SITE))["args"]


def test_watched_namespaces_get_namespaced_rbac() -> None:
    objects = helm_template(*SITE, "--set", "operator.watchNamespaces={egov,hotline}")
    roles = {obj["metadata"]["name"]: obj["rules"] for obj in objects if obj["kind"] == "ClusterRole"}
    assert roles == {
        "sharedcore-operator": rbac.CLUSTER_RULES,
        "sharedcore-operator-namespaced": rbac.NAMESPACED_RULES,
    }
    (cluster_wide,) = [obj for obj in objects if obj["kind"] == "ClusterRoleBinding"]
    assert cluster_wide["roleRef"]["name"] == "sharedcore-operator"
    bound = {
        obj["metadata"]["namespace"]: obj["roleRef"]["name"]
        for obj in objects
        if obj["kind"] == "RoleBinding"
    }
    assert bound == dict.fromkeys(["egov", "hotline", "sharedcore-system"], "sharedcore-operator-namespaced")


def test_single_site_is_off_unless_asked_for() -> None:
    """Without a Topology the operator is a single Active site only when told (issue 11, rule 1)."""
    assert "--single-site" not in container(helm_template(*SITE))["args"]
    assert "--single-site" in container(helm_template(*SITE, "--set", "operator.singleSite=true"))["args"]


def test_image_defaults_to_what_the_dockerfile_builds() -> None:
    """The chart's image is `sharedcore:<appVersion>`, the tag the README's `docker build` gives the image,
    and appVersion is the package's version."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert CHART_META["appVersion"] == version
    assert container(helm_template(*SITE))["image"] == f"sharedcore:{version}"
    assert f"docker build -t sharedcore:{version} ." in (ROOT / "README.md").read_text()
    assert f"docker build -t sharedcore:{version} ." in (ROOT / "Dockerfile").read_text()
    digest = "sha256:" + "ab" * 32
    pinned = helm_template(
        *SITE, "--set", "image.repository=registry.danang.gov.vn/sc", "--set", f"image.digest={digest}"
    )
    assert container(pinned)["image"] == f"registry.danang.gov.vn/sc@{digest}"


def test_site_is_required() -> None:
    result = run("helm", "template", "x", str(CHART), check=False)
    assert result.returncode != 0
    assert "missing property 'site'" in result.stderr


def test_bad_values_are_refused_naming_each_problem() -> None:
    # tests/cluster/test_packaging.py sees `helm install` refuse them too, against an API server.
    result = run("helm", "template", "x", str(CHART), "-f", str(BAD_VALUES), check=False)
    assert result.returncode != 0
    for problem in (
        "at '/site': 'Da Nang' does not match pattern",
        "at '/operator/workers': got string, want integer",
        "additional properties 'watchNamespace' not allowed",
        "at '/image/pullPolicy': value must be one of",
    ):
        assert problem in result.stderr


@pytest.mark.parametrize(
    ("settings", "spec"),
    [
        ((), {"maxUnavailable": 1}),
        (("podDisruptionBudget.minAvailable=1",), {"minAvailable": 1}),
        (("podDisruptionBudget.maxUnavailable=0",), {"maxUnavailable": 0}),
    ],
)
def test_disruption_budget(settings: tuple[str, ...], spec: dict[str, int]) -> None:
    args = [arg for setting in settings for arg in ("--set", setting)]
    budget = one(helm_template(*SITE, *args), "PodDisruptionBudget")["spec"]
    assert {key: value for key, value in budget.items() if key != "selector"} == spec


def test_disruption_budget_refuses_both_bounds() -> None:
    both = ("--set", "podDisruptionBudget.minAvailable=1", "--set", "podDisruptionBudget.maxUnavailable=1")
    result = run("helm", "template", "x", str(CHART), *SITE, *both, check=False)
    assert "set minAvailable or maxUnavailable, not both" in result.stderr


def test_optional_objects_are_off_by_default() -> None:
    kinds = {obj["kind"] for obj in helm_template(*SITE)}
    assert not kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"}
    assert "NetworkPolicy" in kinds, "a security review expects it on"


def test_prometheus_rule_is_the_rules_file_with_runbook_links_under_the_base() -> None:
    base = "https://wiki.danang.gov.vn/sharedcore/runbook"
    rule = one(
        helm_template(
            *SITE, "--set", "prometheusRule.enabled=true", "--set", f"prometheusRule.runbookBaseUrl={base}"
        ),
        "PrometheusRule",
    )
    source = yaml.safe_load((ROOT / RULES).read_text())["groups"]
    assert rule["spec"]["groups"] == with_runbook_urls(source, base)
    assert rule["spec"]["groups"][0]["rules"][0]["annotations"]["runbook_url"] == (
        f"{base}#sharedcoreoperatordown"
    )


def test_runbook_base_defaults_to_the_kustomize_copys() -> None:
    """One placeholder for both: the chart's default is manifests.RUNBOOK_BASE_URL."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["prometheusRule"]["runbookBaseUrl"] == RUNBOOK_BASE_URL


def test_cnpg_pod_monitor_scrapes_every_instance_where_the_services_are() -> None:
    """CloudNativePG labels its instance pods cnpg.io/podRole=instance (its poolers: pooler) and names their
    metrics port `metrics`; the operator matches the lag series by the namespace and pod labels that the
    Prometheus Operator adds, so the monitor must not honor the exporter's own labels."""
    enable = ("--set", "cnpgPodMonitor.enabled=true", "--set", "cnpgPodMonitor.labels.release=kps")
    monitor = one(helm_template(*SITE, *enable), "PodMonitor")
    assert monitor["metadata"]["name"] == "sharedcore-operator-cnpg-instances"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    spec = monitor["spec"]
    assert spec["selector"] == {"matchLabels": {"cnpg.io/podRole": "instance"}}
    assert spec["namespaceSelector"] == {"any": True}
    [endpoint] = spec["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert not endpoint.get("honorLabels", False)
    watching = one(
        helm_template(*SITE, *enable, "--set", "operator.watchNamespaces={egov,hotline}"), "PodMonitor"
    )
    assert watching["spec"]["namespaceSelector"] == {"matchNames": ["egov", "hotline"]}


def test_service_monitor_labels_every_series_with_the_site() -> None:
    objects = helm_template(
        *SITE, "--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=kps"
    )
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["honorLabels"] is True
    # The relabeling reads the Service's site label, which the chart sets from the site value.
    assert service["metadata"]["labels"]["sharedcore.danang.gov.vn/site"] == "danang"
    assert endpoint["relabelings"] == [
        {
            "sourceLabels": ["__meta_kubernetes_service_label_sharedcore_danang_gov_vn_site"],
            "targetLabel": "site",
        }
    ]
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "sharedcore-operator"


def test_network_policy_is_on_by_default_and_limits_egress_to_dns_and_api_servers() -> None:
    policy = one(helm_template(*SITE), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert [rule["ports"][0]["port"] for rule in policy["ingress"]] == ["metrics", "health"]
    dns, api = policy["egress"]
    assert {port["port"] for port in dns["ports"]} == {53} and "to" not in dns
    assert [port["port"] for port in api["ports"]] == [443, 6443]
    with_prometheus = helm_template(
        *SITE, "--set", "operator.prometheusUrl=http://prometheus.monitoring:9090"
    )
    assert one(with_prometheus, "NetworkPolicy")["spec"]["egress"][2]["ports"] == [
        {"port": 9090, "protocol": "TCP"}
    ]


def test_network_policy_takes_the_api_servers_addresses_and_wider_egress() -> None:
    values = CHART / "ci" / "hardened-values.yaml"
    given = yaml.safe_load(values.read_text())["networkPolicy"]
    policy = one(helm_template("-f", str(values)), "NetworkPolicy")["spec"]
    assert policy["egress"][1]["to"] == given["apiServers"]
    assert policy["egress"][2:] == given["egress"]
    assert not [
        obj
        for obj in helm_template(*SITE, "--set", "networkPolicy.enabled=false")
        if obj["kind"] == "NetworkPolicy"
    ]


def test_schema_knows_every_default_value() -> None:
    """values.yaml and values.schema.json describe the same keys: nothing undocumented, nothing unchecked."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def check(value: Any, node: dict[str, Any], path: str) -> None:
        if isinstance(value, dict) and "properties" in node:
            for key, child in value.items():
                assert key in node["properties"], f"{path}.{key} is not in values.schema.json"
                check(child, node["properties"][key], f"{path}.{key}")

    check(values, schema, "")
    assert schema["required"] == ["site", "image"] and "site" not in values


def test_crds_are_documented_as_installed_but_not_upgraded() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "crds/" in readme and "never upgrade" in readme
    assert by_kind(helm_template(*SITE, "--include-crds"), "CustomResourceDefinition")
