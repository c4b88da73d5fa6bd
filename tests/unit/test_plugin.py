"""`kubectl sharedcore status` and `render`, from objects as the operators write them (no cluster here; the
real kubectl runs the plugin against the testbed in tests/cluster/test_packaging.py)."""

import copy
import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sharedcore.cli import main as sharedcore_main
from sharedcore.plugin import cli
from sharedcore.plugin import report as status_report
from sharedcore.plugin.kube import Connection

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "manifests" / "samples"
NOW = datetime.datetime(2025, 6, 14, 2, 10, tzinfo=datetime.UTC)
Body = dict[str, Any]


def ago(seconds: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def topology() -> Body:
    body: Body = yaml.safe_load((SAMPLES / "topology.yaml").read_text())
    body["status"] = {
        "observedGeneration": 1,
        "activeSite": "quangnam",
        "epoch": 4,
        "sites": [
            {
                "name": "danang",
                "reachable": False,
                "lastHeartbeatTime": ago(95),
                "role": "Fenced",
                "epoch": 3,
            },
            {
                "name": "quangnam",
                "reachable": True,
                "lastHeartbeatTime": ago(1.5),
                "role": "Active",
                "epoch": 4,
            },
        ],
        "lastFailover": {"name": "failover-auto-1", "completionTime": ago(300), "rtoSeconds": 18.2},
        "capacity": [
            {
                "site": name,
                "storage": "100Ti",
                "committed": "85.4Ti",
                "committedBytes": 93898260359578,
                "usedPercent": 85.4,
                "services": 6,
                "refused": ["archive/luutru-2"],
            }
            for name in ("danang", "quangnam")
        ],
    }
    return body


def service(sample: str, **status_fields: Any) -> Body:
    body: Body = yaml.safe_load((SAMPLES / "sharedservices" / f"{sample}.yaml").read_text())
    ready = status_fields.pop("ready", "True")
    body["status"] = {
        "site": "quangnam",
        "role": "Standby",
        "epoch": 4,
        "conditions": [{"type": "Ready", "status": ready, "reason": "R", "message": f"ready is {ready}"}],
        **status_fields,
    }
    return body


def failover(name: str, created: str, **status_fields: Any) -> Body:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"targetSite": "quangnam", "type": "Failover", "reason": "test"},
        "status": status_fields,
    }


class FakeCluster:
    def __init__(self, topology: Body | None, services: list[Body], failovers: list[Body]) -> None:
        self._topology, self._services, self._failovers = topology, services, failovers

    def topology(self) -> Body | None:
        return copy.deepcopy(self._topology)

    def services(self, namespace: str | None) -> list[Body]:
        return [s for s in self._services if namespace in (None, s["metadata"]["namespace"])]

    def failovers(self) -> list[Body]:
        return self._failovers

    def file_copies(self, namespace: str | None) -> list[Body]:
        return [c for c in COPIES if namespace in (None, c["metadata"]["namespace"])]


def copy_of_files(namespace: str, service: str, synced: str) -> Body:
    """A service's ReplicationDestination as VolSync reports its last copy."""
    labels = {"sharedcore.danang.gov.vn/service": service}
    return {
        "kind": "ReplicationDestination",
        "metadata": {"name": f"{service}-files", "namespace": namespace, "labels": labels},
        "status": {"lastSyncTime": synced},
    }


COPIES = [copy_of_files("egov", "qlvb", ago(90))]
SERVICES = [
    # database 2 s behind, files copied 90 s ago: the worst, 90 s, against an RPO of 120 s.
    service("document-management", replication={"databaseLagSeconds": 2.0}),
    # 75 s behind an RPO of 60 s.
    service("hotline-1022", replication={"databaseLagSeconds": 75.0}),
    service("operations-center", ready="False"),
]


def report(**changes: Any) -> status_report.Report:
    source = FakeCluster(
        changes.get("topology", topology()), changes.get("services", SERVICES), changes.get("failovers", [])
    )
    return status_report.collect(source, changes.get("namespace"), NOW)


def test_sites_as_this_site_sees_them() -> None:
    result = report()
    assert (result.active_site, result.epoch, result.mode, result.witness) == (
        "quangnam",
        4,
        "Automatic",
        "configured",
    )
    danang, quangnam = result.sites
    assert (danang.name, danang.role, danang.epoch, danang.reachable, danang.preferred, danang.active) == (
        "danang",
        "Fenced",
        3,
        False,
        True,
        False,
    )
    assert danang.heartbeat_age_seconds == 95
    assert quangnam.active and quangnam.heartbeat_age_seconds == 1.5


def test_witness_as_the_operator_reports_it() -> None:
    reported = topology()
    reported["status"]["conditions"] = [
        {"type": "WitnessReachable", "status": "False", "reason": "Timeout", "message": "no answer for 40s"}
    ]
    assert report(topology=reported).witness == "unreachable: no answer for 40s"
    del reported["spec"]["witness"]
    assert report(topology=reported).witness == "not configured"


def test_city_dns_as_the_operator_reports_it() -> None:
    reported = topology()
    assert report(topology=reported).city_dns is None, "no city DNS servers named: nothing to report"
    reported["spec"]["dns"] = {"servers": ["10.0.0.53:53"]}
    assert report(topology=reported).city_dns == "configured"
    reported["status"]["conditions"] = [
        {
            "type": "CityDNSReachable",
            "status": "False",
            "reason": "Unanswered",
            "message": "10.0.0.53:53: timeout",
        }
    ]
    assert report(topology=reported).city_dns == "unreachable: 10.0.0.53:53: timeout"
    assert "City DNS: unreachable: 10.0.0.53:53: timeout" in status_report.as_text(report(topology=reported))
    reported["status"]["conditions"][0]["status"] = "True"
    assert report(topology=reported).city_dns == "reachable"


def test_services_with_lag_against_their_own_objective() -> None:
    rows = {row.name: row for row in report().services}
    assert list(rows) == ["qlvb", "tongdai-1022", "ioc"]  # by namespace, then name
    assert (rows["qlvb"].lag_seconds, rows["qlvb"].rpo_seconds, rows["qlvb"].within_objective) == (
        90,
        120,
        True,
    )
    assert (rows["tongdai-1022"].lag_seconds, rows["tongdai-1022"].within_objective) == (75, False)
    assert rows["ioc"].lag_seconds is None and rows["ioc"].within_objective is None
    assert rows["ioc"].ready == "False"
    assert [row.name for row in report(namespace="hotline").services] == ["tongdai-1022"]


def test_last_failover_is_the_newest_object_else_the_topologys_record() -> None:
    running = failover(
        "switchover-2",
        "2025-06-14T02:05:00Z",
        phase="Running",
        steps=[{"name": "FenceSource", "state": "Running"}],
    )
    older = failover("failover-1", "2025-06-14T01:00:00Z", phase="Succeeded", rtoSeconds=18.2)
    last = report(failovers=[older, running]).last_failover
    assert last is not None and (last.name, last.phase) == ("switchover-2", "Running")
    remembered = report().last_failover
    assert remembered is not None
    assert (remembered.name, remembered.phase, remembered.rto_seconds) == (
        "failover-auto-1",
        "Succeeded",
        18.2,
    )
    assert report(topology=None).last_failover is None


def test_text() -> None:
    text = status_report.as_text(
        report(failovers=[failover("drill-1", "2025-06-14T02:00:00Z", phase="Planned")])
    )
    lines = text.splitlines()
    assert lines[0] == "Active site: quangnam   Epoch: 4   Failover: Automatic   Witness: configured"
    assert lines[2].split() == ["SITE", "ROLE", "EPOCH", "REACHABLE", "HEARTBEAT", "AGE", "STORAGE"]
    storage = ["85.4Ti", "of", "100Ti", "(85.4%,", "1", "refused)"]
    assert lines[3].split() == ["danang", "(preferred)", "Fenced", "3", "NO", "95s", *storage]
    assert lines[4].split() == ["quangnam", "Active", "4", "yes", "1.5s", *storage]
    assert "Shared services: 2/3 Ready" in lines
    assert any(
        line.split()[:2] == ["hotline", "tongdai-1022"] and line.endswith("75s / 60s ABOVE RPO")
        for line in lines
    )
    assert any(line.split()[:2] == ["egov", "qlvb"] and line.endswith("90s / 120s ok") for line in lines)
    assert "Last failover: drill-1: Failover to quangnam, Planned" in lines


def test_text_without_topology() -> None:
    text = status_report.as_text(report(topology=None, services=[]))
    assert text.startswith("No Topology")
    assert "Last failover: none" in text


def test_json_and_yaml_carry_the_same_document() -> None:
    result = report()
    document = json.loads(status_report.as_json(result))
    assert document == yaml.safe_load(status_report.as_yaml(result))
    assert document["activeSite"] == "quangnam"
    assert document["sites"][0]["heartbeatAgeSeconds"] == 95
    assert document["services"][1] | {"readyMessage": None} == {
        "namespace": "hotline",
        "name": "tongdai-1022",
        "platform": "Hotline1022",
        "site": "quangnam",
        "role": "Standby",
        "ready": "True",
        "readyMessage": None,
        "lagSeconds": 75.0,
        "rpoSeconds": 60,
        "withinObjective": False,
    }


@pytest.mark.parametrize("output", ["json", "yaml", "text"])
def test_status_command(monkeypatch: pytest.MonkeyPatch, output: str) -> None:
    seen: list[Connection] = []

    def cluster(self: Connection) -> FakeCluster:
        seen.append(self)
        return FakeCluster(topology(), SERVICES, [])

    monkeypatch.setattr(Connection, "cluster", cluster)
    result = CliRunner().invoke(cli.main, ["status", "--context", "quangnam", "-n", "egov", "-o", output])
    assert result.exit_code == 0, result.output
    assert seen == [Connection(None, "quangnam")]
    if output == "text":
        assert "Shared services: 1/1 Ready" in result.output
    else:
        assert [s["name"] for s in yaml.safe_load(result.output)["services"]] == ["qlvb"]


def test_render_is_sharedcores_renderer() -> None:
    args = [
        "render",
        "-f",
        str(SAMPLES / "sharedservices" / "open-data.yaml"),
        "--site",
        "quangnam",
        "--role",
        "Standby",
    ]
    plugin, renderer = CliRunner().invoke(cli.main, args), CliRunner().invoke(sharedcore_main, args)
    assert plugin.exit_code == renderer.exit_code == 0
    assert plugin.output == renderer.output and plugin.output.startswith("---\n")


def test_status_says_whether_automatic_failover_would_act_now() -> None:
    """Rule 13: the standby's AutomaticFailoverReady condition, shown; absent where it is not reported."""
    assert report().automatic_failover is None
    assert "Automatic failover:" not in status_report.as_text(report())
    body = topology()
    body["status"]["conditions"] = [
        {
            "type": "AutomaticFailoverReady",
            "status": "False",
            "reason": "DataLossWindowUnknown",
            "message": "the data-loss window of egov/qlvb is unknown: no lag (no --prometheus-url)",
        }
    ]
    found = report(topology=body)
    assert found.automatic_failover == (
        "NOT READY (DataLossWindowUnknown): the data-loss window of egov/qlvb is unknown: no lag "
        "(no --prometheus-url)"
    )
    assert f"Automatic failover: {found.automatic_failover}" in status_report.as_text(found).splitlines()
    body["status"]["conditions"][0] |= {"status": "True", "reason": "Ready", "message": "would act"}
    assert report(topology=body).automatic_failover == "ready: would act"
