"""The testbed's Prometheus job is the shipped PodMonitor (sharedcore_testbed.prometheus), and its pod
discovery labels pods as kubernetes_sd_configs does (sharedcore_testbed.pod_discovery)."""

from pathlib import Path

import pytest
import yaml

from sharedcore_testbed.pod_discovery import target_groups
from sharedcore_testbed.prometheus import PODMONITOR, scrape_job
from tests.support.packaging import ROOT, run


@pytest.mark.tools
def test_the_scrape_job_keeps_what_the_podmonitor_selects_and_promtool_accepts_it(tmp_path: Path) -> None:
    podmonitor = yaml.safe_load((ROOT / PODMONITOR).read_text())
    job = scrape_job(podmonitor, "http://127.0.0.1:1/")
    keep = {
        tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"
    }
    assert keep == {
        ("__meta_kubernetes_pod_label_cnpg_io_podRole",): "instance",
        ("__meta_kubernetes_pod_container_port_name",): "metrics",
    }
    targets = {r["target_label"]: r["source_labels"] for r in job["relabel_configs"] if "target_label" in r}
    assert targets["namespace"] == ["__meta_kubernetes_namespace"]
    assert targets["pod"] == ["__meta_kubernetes_pod_name"]
    narrowed = podmonitor | {"spec": podmonitor["spec"] | {"namespaceSelector": {"matchNames": ["egov"]}}}
    assert {
        "source_labels": ["__meta_kubernetes_namespace"],
        "regex": "egov",
        "action": "keep",
    } in scrape_job(narrowed, "http://127.0.0.1:1/")["relabel_configs"]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [job]}))
    assert "SUCCESS" in run("promtool", "check", "config", str(config)).stdout


def test_pod_discovery_gives_one_target_per_declared_port_of_each_pod_with_an_address() -> None:
    pods = [
        {
            "metadata": {"namespace": "egov", "name": "db-1", "labels": {"cnpg.io/podRole": "instance"}},
            "spec": {
                "nodeName": "n0",
                "containers": [
                    {
                        "name": "postgres",
                        "ports": [
                            {"name": "postgresql", "containerPort": 5432},
                            {"name": "metrics", "containerPort": 9187},
                        ],
                    }
                ],
            },
            "status": {
                "podIP": "10.0.0.5",
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        },
        {"metadata": {"namespace": "egov", "name": "pending"}, "spec": {"containers": [{"name": "c"}]}},
    ]
    groups = target_groups(pods)
    assert [g["targets"] for g in groups] == [["10.0.0.5:5432"], ["10.0.0.5:9187"]]
    labels = groups[1]["labels"]
    assert labels["__meta_kubernetes_pod_label_cnpg_io_podRole"] == "instance"
    assert labels["__meta_kubernetes_pod_container_port_name"] == "metrics"
    assert (labels["__meta_kubernetes_namespace"], labels["__meta_kubernetes_pod_name"]) == ("egov", "db-1")
    assert labels["__meta_kubernetes_pod_ready"] == "true"
