"""What a Failover is planned from (the target's view), and the status CheckPreconditions records."""

import dataclasses
import datetime
import time
import types
from typing import Any

from sharedcore.api import FailoverPhase, FailoverType, Role, StepName, StepState
from sharedcore.api.formats import micro_time
from sharedcore.failover import progress, triggers
from sharedcore.failover.plan import make_plan
from sharedcore.failover.preconditions import planned
from sharedcore.failover.situation import FilesSynced, situation
from sharedcore.sites import leases
from sharedcore.sites.controller import SiteController
from sharedcore.sites.state import SiteState
from sharedcore.sites.views import PairView

NOW = datetime.datetime(2026, 11, 24, 8, 0, tzinfo=datetime.UTC)
HEARD = NOW - datetime.timedelta(seconds=40)


def service(name: str, replication: dict[str, Any] | None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "e-office", "name": name},
        "spec": spec,
        "status": {"replication": replication} if replication is not None else {},
    }


STANDING_BY = SiteState(Role.STANDBY, 3, "danang", "Standby", "danang is active at epoch 3")


def pair(reachable: bool = True) -> PairView:
    return PairView("quangnam", ("danang", "quangnam"), "danang", 3, reachable, HEARD, state=STANDING_BY)


def stamp(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def synced(**seconds_ago: float) -> FilesSynced:
    """When the target last completed a copy of each named service's files (VolSync's object says)."""
    return lambda _, name: (
        NOW - datetime.timedelta(seconds=seconds_ago[name]) if name in seconds_ago else None
    )


def test_the_situation_reads_each_services_replication_and_objectives() -> None:
    found = situation(
        pair(),
        [
            service("vanban", {"databaseLagSeconds": 2.0}),
            service("hotline", None, objectives={"rpoSeconds": 60}, files={"enabled": False}),
        ],
        NOW,
        files_synced=synced(vanban=30),
    )
    hotline, vanban = found.services
    assert (found.target, found.active_site, found.epoch, found.source_last_seen) == (
        "quangnam",
        "danang",
        3,
        NOW,
    )
    assert (vanban.rpo_seconds, vanban.database_lag_seconds) == (300, 2.0)
    assert vanban.files_last_sync == NOW - datetime.timedelta(seconds=30)
    assert (hotline.rpo_seconds, hotline.database_lag_seconds, hotline.files_enabled) == (60, None, False)


def test_an_unreachable_source_was_last_seen_at_its_last_heartbeat() -> None:
    found = situation(pair(reachable=False), [], NOW, files_synced=synced())
    assert found.source_last_seen == HEARD and not found.source_reachable
    never_heard = dataclasses.replace(pair(reachable=False), peer_last_active=None)
    assert (
        situation(never_heard, [], NOW, files_synced=synced()).source_last_seen == NOW
    )  # overestimates the window, never under


def test_an_unreachable_source_may_have_written_until_it_could_have_fenced_itself() -> None:
    """Cut off from this site but not from its witness, the source goes on taking writes until it fences
    itself: the window runs to its last sign of life plus the time it may act unseen, never beyond now."""
    unseen = dataclasses.replace(pair(reachable=False), peer_may_write_seconds=25)
    found = situation(
        unseen,
        [service("vanban", {"databaseLastReplayTime": stamp(41)}, files={"enabled": False})],
        NOW,
        files_synced=synced(),
    )
    assert found.source_last_seen == HEARD + datetime.timedelta(seconds=25)
    assert make_plan(FailoverType.FAILOVER, True, found).services[0].data_loss_window_seconds == 26.0
    # A replica still reported streaming (its receiver not timed out yet) lags by what it has not seen.
    streaming = situation(
        unseen,
        [service("vanban", {"databaseLagSeconds": 0.0}, files={"enabled": False})],
        NOW,
        files_synced=synced(),
    )
    assert make_plan(FailoverType.FAILOVER, True, streaming).services[0].data_loss_window_seconds == 25.0
    soon = situation(unseen, [], HEARD + datetime.timedelta(seconds=10), files_synced=synced())
    assert soon.source_last_seen == HEARD + datetime.timedelta(seconds=10)  # not beyond now


def test_a_failovers_rto_counts_from_the_sources_last_sight_as_active_not_from_the_end_of_its_window() -> (
    None
):
    """The data-loss window runs to when the unseen source may have stopped writing; its clients' outage began
    at the last sight of it Active (found a lease later: detection is part of the RTO)."""
    unseen = dataclasses.replace(pair(reachable=False), peer_may_write_seconds=25)
    plan = make_plan(FailoverType.FAILOVER, True, situation(unseen, [], NOW, files_synced=synced()))
    status = planned(plan, dry_run=False, now=NOW)
    assert status.source_last_seen_time == HEARD + datetime.timedelta(seconds=25)
    assert status.source_last_active_time == HEARD
    assert progress.recovery_seconds(FailoverType.FAILOVER, status, NOW) == 40.0
    never = dataclasses.replace(unseen, peer_last_active=None)
    unknown = planned(
        make_plan(FailoverType.FAILOVER, True, situation(never, [], NOW, files_synced=synced())), False, NOW
    )
    assert progress.recovery_seconds(FailoverType.FAILOVER, unknown, NOW) is None  # not guessed short


def plan_of(
    failover_type: FailoverType,
    *services: dict[str, Any],
    reachable: bool = True,
    files: FilesSynced | None = None,
) -> Any:
    found = situation(pair(reachable), services, NOW, files_synced=files or synced())
    return make_plan(failover_type, False, found)


def test_a_dry_run_is_planned_with_the_preconditions_that_would_fail() -> None:
    plan = plan_of(FailoverType.FAILOVER, service("vanban", {}), reachable=False)
    status = planned(plan, dry_run=True, now=NOW)
    assert status.phase == FailoverPhase.PLANNED and status.completion_time == NOW
    assert (status.from_site, status.to_site, status.from_epoch, status.to_epoch) == (
        "danang",
        "quangnam",
        3,
        4,
    )
    assert all(step.state in (StepState.PENDING, StepState.SKIPPED) for step in status.steps)
    assert status.message and "would fail: DataLossNotAccepted" in status.message
    assert status.services[0].data_loss_window_seconds is None


def test_a_data_loss_not_accepted_fails_check_preconditions_with_its_reason() -> None:
    plan = plan_of(FailoverType.FAILOVER, service("vanban", {}), reachable=False)
    status = planned(plan, dry_run=False, now=NOW)
    first = status.steps[0]
    assert status.phase == FailoverPhase.FAILED
    assert (first.name, first.state) == (StepName.CHECK_PRECONDITIONS, StepState.FAILED)
    assert status.message and status.message.startswith("CheckPreconditions: DataLossNotAccepted:")
    assert "e-office/vanban" in status.message


def test_preconditions_that_hold_start_the_failover_at_fence_source() -> None:
    replicated = service("vanban", {"databaseLagSeconds": 1.0})
    switchover = plan_of(FailoverType.SWITCHOVER, replicated, files=synced(vanban=10))
    status = planned(switchover, dry_run=False, now=NOW)
    assert status.phase == FailoverPhase.RUNNING and status.data_loss_window_seconds == 0.0
    assert [s.state for s in status.steps[:2]] == [StepState.SUCCEEDED, StepState.PENDING]
    assert status.steps[0].message and "danang → quangnam at epoch 4" in status.steps[0].message


def quangnam_controller(**spec: Any) -> SiteController:
    """quangnam's SiteController, without I/O, given the pair's Topology (`spec` added to its spec)."""
    peers = types.SimpleNamespace(rejected=lambda _: None)  # the peer's kubeconfig is not refused
    site = SiteController("quangnam", None, recorder=None, peers=peers, namespace="sharedcore-system")  # type: ignore[arg-type]
    ref = {"name": "peer", "namespace": "sharedcore-system"}
    sites = [
        {"name": n, "kubeconfigSecretRef": ref, "ingressAddress": f"203.0.113.{i}"}
        for i, n in enumerate(("danang", "quangnam"), start=10)
    ]
    body = {
        "apiVersion": "sharedcore.danang.gov.vn/v1alpha1",
        "kind": "Topology",
        "metadata": {"name": "default", "resourceVersion": "1"},
        "spec": {"sites": sites, "preferredPrimary": "danang", **spec},
    }
    site.on_topology(None, body)
    return site


def hearing_danang_an_hour_behind() -> tuple[SiteController, datetime.datetime]:
    """quangnam's SiteController, having seen two renewals of danang's heartbeat (Active) happen, each
    stamped by danang's clock an hour behind quangnam's."""
    site = quangnam_controller()
    now = datetime.datetime.now(datetime.UTC)
    for seconds in (2, 1):
        skewed = micro_time(now - datetime.timedelta(hours=1, seconds=seconds))
        beat = site.heartbeats.heard(
            "inbound", leases.Heartbeat(Role.ACTIVE, leases.Claim(3, "danang"), skewed)
        )
        site.heartbeats.inbound.observe(beat.renew_time, time.monotonic())
    return site, now


def test_the_window_of_a_source_whose_clock_is_an_hour_behind_comes_from_this_sites_clock() -> None:
    """Rule 7: the source's heartbeats carry its own clock's renewTime; an hour behind, it made the window
    of a service whose files were last copied 30 s ago look like zero."""
    site, now = hearing_danang_an_hour_behind()
    files = {"databaseLagSeconds": 0.0}
    found = situation(
        site.pair(),
        [service("vanban", files)],
        now,
        files_synced=lambda *_: now - datetime.timedelta(seconds=30),
    )
    (window,) = make_plan(FailoverType.FAILOVER, False, found).services
    assert window.data_loss_window_seconds is not None and window.data_loss_window_seconds >= 29
    assert found.source_last_seen >= now - datetime.timedelta(seconds=1)


def test_the_peers_last_heartbeat_is_reported_by_this_sites_clock() -> None:
    """Rule 7: the Topology status (and `kubectl sharedcore status`'s heartbeat age) said danang's last
    heartbeat came an hour ago, by danang's clock, while it had just arrived."""
    site, now = hearing_danang_an_hour_behind()
    pairing = site._pairing
    assert pairing is not None
    reported = site.heartbeats.view(pairing, None).last_heartbeat
    assert reported is not None
    assert abs((reported - now).total_seconds()) < 5


def test_a_standby_that_read_the_witness_before_the_first_epoch_started_does_not_fail_over_at_bootstrap() -> (
    None
):
    """Seen at a pair's bootstrap in Automatic mode (a CI run of the real-database tests): quangnam read the
    witness before danang created its Lease, then danang's heartbeat said epoch 1 while its role still read
    Fenced (acquiring the Lease); quangnam started an automatic failover half a second into epoch 1."""
    ref = {"name": "peer", "namespace": "sharedcore-system"}
    site = quangnam_controller(witness={"kubeconfigSecretRef": ref}, failover={"mode": "Automatic"})
    site.witness._reachable = True
    site.witness._observe(None, time.monotonic())  # no Lease yet
    beat = leases.Heartbeat(
        Role.FENCED, leases.Claim(1, "danang"), micro_time(datetime.datetime.now(datetime.UTC))
    )
    site.heartbeats.heard("inbound", dataclasses.replace(beat, reason="AcquiringWitnessLease"))
    site.state = SiteState(Role.STANDBY, 1, "danang", "Standby", "danang is active at epoch 1")
    topology = site.topology()
    assert topology is not None
    assert triggers.automatic_failover("quangnam", site.observation(), topology) is None
