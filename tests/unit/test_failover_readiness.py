"""Rule 13: whether an automatic failover would pass its preconditions now, as the standby reports it."""

import dataclasses
import datetime
from typing import Any

from sharedcore.api import Role
from sharedcore.failover import readiness
from sharedcore.sites.settings import FailoverSettings
from sharedcore.sites.state import SiteState, WitnessView
from sharedcore.sites.views import PairView
from tests.unit.test_failover_progress import DANANG_1, topology, view

NOW = datetime.datetime(2026, 11, 24, 8, 0, tzinfo=datetime.UTC)
STANDING_BY = SiteState(Role.STANDBY, 1, "danang", "Standby", "danang is active at epoch 1")
PAIR = PairView("quangnam", ("danang", "quangnam"), "danang", 1, True, NOW, state=STANDING_BY)
UNKNOWN_LAG = "no lag for city/vanban-db-quangnam-1: no Prometheus to read cnpg_pg_replication_lag from"


def service(name: str, replication: dict[str, Any], healthy: str = "ok", **spec: Any) -> dict[str, Any]:
    condition = {"type": "ReplicationHealthy", "status": "True", "reason": "Healthy", "message": healthy}
    return {
        "metadata": {"namespace": "city", "name": name},
        "spec": spec,
        "status": {"replication": replication, "conditions": [condition]},
    }


def stamp(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


HEALTHY = service("vanban", {"databaseLagSeconds": 1.0})


def ready(services: list[dict[str, Any]], **changes: Any) -> Any:
    auto = changes.pop("topology", topology())
    return readiness.automatic_failover_ready(
        "quangnam",
        view(**changes),
        auto,
        pair=PAIR,
        services=services,
        files_synced=lambda *_: NOW - datetime.timedelta(seconds=20),  # every service's files
        now=NOW,
    )


def test_ready_while_an_automatic_failover_would_pass_its_preconditions() -> None:
    want = ready([HEALTHY])
    assert (want.type, want.status, want.reason) == ("AutomaticFailoverReady", True, "Ready")


def test_not_reported_in_manual_mode_nor_at_the_active_site() -> None:
    assert ready([HEALTHY], topology=topology(mode="Manual")) is None
    active = SiteState(Role.ACTIVE, 1, "quangnam", "Active", "")
    assert ready([HEALTHY], state=active) is None


def test_an_unknown_lag_says_why() -> None:
    unknown = service("vanban", {}, healthy=UNKNOWN_LAG)
    want = ready([unknown])
    assert (want.status, want.reason) == (False, "DataLossWindowUnknown")
    assert "city/vanban" in want.message and "no Prometheus" in want.message


def test_a_service_behind_its_objective() -> None:
    behind = service("vanban", {"databaseLagSeconds": 400.0})
    want = ready([behind])
    assert (want.status, want.reason) == (False, "AboveObjective")
    assert "city/vanban" in want.message and "400" not in want.message  # names, not moving figures


def test_the_witness_unreachable_and_settings_that_differ() -> None:
    want = ready([HEALTHY], witness=WitnessView(False, DANANG_1))
    assert (want.status, want.reason) == (False, "WitnessUnreachable")
    ours = FailoverSettings.of(topology())
    # Durations that differ are judged by the longer one (rule 2): automatic failover stays armed.
    assert ready([HEALTHY], peer_settings=dataclasses.replace(ours, lease=30)).status is True
    # A peer without the witness cannot be fenced by its Lease: disarmed.
    want = ready([HEALTHY], peer_settings=dataclasses.replace(ours, witness=False, mode="Manual"))
    assert (want.status, want.reason) == (False, "SettingsMismatch")
    assert "witness true here, false at the peer" in want.message
    assert ready([HEALTHY], peer_settings=ours).status is True
    fenced = SiteState(Role.FENCED, 1, "danang", "PeerUnconfirmed", "cannot confirm")
    want = ready([HEALTHY], state=fenced)
    assert (want.status, want.reason) == (False, "NotStandby")
