"""Alert rules and dashboard: valid PromQL (promtool), every alert tested firing and quiet, a runbook section
and link per alert, and only metric names the operator exports or the two-site issues promise."""

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from sharedcore.manifests import DASHBOARD, MONITORING, RULES, RUNBOOK_BASE_URL
from sharedcore.metrics import REGISTRY
from tests.support.packaging import ROOT, run

ALERT_TESTS = sorted((ROOT / "tests" / "alerts").glob("*.yaml"))
RUNBOOK = ROOT / "docs" / "runbook.md"
RULE_GROUPS: list[dict[str, Any]] = yaml.safe_load((ROOT / RULES).read_text())["groups"]
ALERTS = [rule for group in RULE_GROUPS for rule in group["rules"] if "alert" in rule]
NAMES = (
    "SharedcoreSiteUnreachable",
    "SharedcoreNoActiveSite",
    "SharedcoreTwoActiveSites",
    "SharedcoreReplicationLagAboveObjective",
    "SharedcoreFailoverFailed",
    "SharedcoreServiceNotReady",
    "SharedcoreWitnessUnreachable",
    "SharedcoreOperatorDown",
    "SharedcoreSettingsMismatch",
    "SharedcoreAutomaticFailoverNotReady",
    "SharedcoreTopologyUnusable",  # issue 11, rule 1
    "SharedcoreStorageAbove80Percent",  # issue 15
    "SharedcoreReplicationInfeasible",  # issue 15
    "SharedcoreParallelRunPreviousSystemDown",  # issue 15
    "SharedcoreParallelRunDossiersMissing",  # issue 15
    "SharedcoreParallelRunEnding",  # issue 15
    "SharedcoreCityDNSUnreachable",  # issue 14
)
# Metrics the alerts and dashboard use before the operator exports them: promised by the two-sites issue (5)
# and the failover issue (6), and the per-service objective the RPO alert compares with.
PROMISED = frozenset(
    {
        "sharedcore_peer_heartbeat_age_seconds",  # {peer}: the other site, and "witness"
        "sharedcore_site_role",  # {site, role}: 1 for the site's current role, 0 for the others
        "sharedcore_epoch",
        "sharedcore_replication_lag_seconds",  # {namespace, name, kind}
        "sharedcore_last_sync_timestamp_seconds",  # {namespace, name, kind}
        "sharedcore_failovers_total",  # {type, result}: result is the Failover's final phase
        "sharedcore_failover_duration_seconds",  # of the last completed failover
        "sharedcore_data_loss_window_seconds",  # of the last completed failover
        "sharedcore_service_rpo_seconds",  # {namespace, name}: spec.objectives.rpoSeconds
    }
)
PROMETHEUS = frozenset({"up"})


def exported() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(
            family.type, ("",)
        )
        names |= {family.name + suffix for suffix in suffixes}
    return names


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bsharedcore_[a-z0-9_]+", expr)) | set(re.findall(r"\bup\b(?=\s*\{)", expr))


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((ROOT / DASHBOARD).read_text())
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    return [target["expr"] for panel in panels for target in panel["targets"]] + [
        annotation["expr"] for annotation in dashboard["annotations"]["list"]
    ]


@pytest.mark.tools
def test_rules_check() -> None:
    assert "SUCCESS" in run("promtool", "check", "rules", str(ROOT / RULES)).stdout


@pytest.mark.tools
def test_rules_unit_tests_pass() -> None:
    result = run("promtool", "test", "rules", *map(str, ALERT_TESTS), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerts_are_those_the_issues_ask_for() -> None:
    assert sorted({rule["alert"] for rule in ALERTS}) == sorted(NAMES)


@pytest.mark.parametrize("rule", ALERTS, ids=lambda rule: f"{rule['alert']}-{rule['labels']['severity']}")
def test_alert_is_complete(rule: dict[str, Any]) -> None:
    assert "for" in rule
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert annotations["summary"] and annotations["description"]
    # Where the runbook is served is each deployment's own: the packaging adds the links.
    assert "runbook_url" not in annotations


def test_every_alert_has_a_runbook_section() -> None:
    headings = {line[3:].strip() for line in RUNBOOK.read_text().splitlines() if line.startswith("## ")}
    assert set(NAMES) <= headings


def test_the_prometheus_rule_links_every_alert_to_its_runbook_section() -> None:
    """The kustomize PrometheusRule is the rules file plus `runbook_url: <RUNBOOK_BASE_URL>#<alert, lower
    case>` (the anchor of the alert's `## <Alert>` heading), and the base is an obvious placeholder: the
    project has no public home, so it must not look like a real address."""
    document = yaml.safe_load((ROOT / MONITORING / "prometheusrule.yaml").read_text())
    packaged = [rule for group in document["spec"]["groups"] for rule in group["rules"] if "alert" in rule]
    assert [rule["alert"] for rule in packaged] == [rule["alert"] for rule in ALERTS]
    for source, shipped in zip(ALERTS, packaged, strict=True):
        url = shipped["annotations"].pop("runbook_url")
        assert url == f"{RUNBOOK_BASE_URL}#{source['alert'].lower()}"
        assert shipped == source
    assert RUNBOOK_BASE_URL.startswith("https://") and RUNBOOK_BASE_URL.endswith("/docs/runbook.md")
    assert (urlsplit(RUNBOOK_BASE_URL).hostname or "").endswith(
        ".example"
    )  # RFC 2606: reserved, never resolves


def test_every_alert_and_severity_is_tested_firing_and_quiet() -> None:
    fired: dict[str, set[str]] = defaultdict(set)
    quiet: set[str] = set()
    for path in ALERT_TESTS:
        suite = yaml.safe_load(path.read_text())
        assert suite["rule_files"] == [str(Path("../..") / RULES)]
        for test in suite["tests"]:
            for case in test["alert_rule_test"]:
                if case["exp_alerts"]:
                    fired[case["alertname"]] |= {
                        alert["exp_labels"]["severity"] for alert in case["exp_alerts"]
                    }
                else:
                    quiet.add(case["alertname"])
    severities: dict[str, set[str]] = defaultdict(set)
    for rule in ALERTS:
        severities[rule["alert"]].add(rule["labels"]["severity"])
    assert dict(fired) == dict(severities)
    assert quiet == set(NAMES)


def test_rules_and_dashboard_use_only_known_metrics() -> None:
    known = exported() | PROMISED | PROMETHEUS
    used = set().union(
        *(metric_names(rule["expr"]) for rule in ALERTS), *map(metric_names, dashboard_exprs())
    )
    assert used <= known, f"unknown metrics: {sorted(used - known)}"
    assert used >= PROMISED  # nothing promised for nothing


@pytest.mark.tools
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses the dashboard's queries as recording rules (Grafana's $__range made concrete)."""
    rules = [
        {"record": f"dashboard:query{index}", "expr": expr.replace("$__range", "1h")}
        for index, expr in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert "SUCCESS" in run("promtool", "check", "rules", str(path)).stdout


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    dashboard = json.loads((ROOT / DASHBOARD).read_text())
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["title"] and panel["description"]
    used = set().union(*map(metric_names, dashboard_exprs()))
    # per-site role, epoch, heartbeat age, lag against RPO, services Ready, failovers, duration, data loss
    assert {
        "sharedcore_site_role",
        "sharedcore_epoch",
        "sharedcore_peer_heartbeat_age_seconds",
        "sharedcore_replication_lag_seconds",
        "sharedcore_service_rpo_seconds",
        "sharedcore_service_ready",
        "sharedcore_failovers_total",
        "sharedcore_failover_duration_seconds",
        "sharedcore_data_loss_window_seconds",
    } <= used
