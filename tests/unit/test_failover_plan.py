"""The pure failover planner and step machine."""

import dataclasses
import datetime

import pytest

from sharedcore.api import (
    MAX_FAILOVER_SERVICES,
    FailoverPhase,
    FailoverStatus,
    FailoverType,
    Role,
    StepName,
    StepState,
)
from sharedcore.failover.machine import Outcome, next_step, record
from sharedcore.failover.plan import ServiceReplica, Situation, make_plan
from sharedcore.failover.preconditions import planned
from sharedcore.failover.steps import initial_steps
from sharedcore.sites.state import Handover

NOW = datetime.datetime(2026, 11, 24, 8, 0, tzinfo=datetime.UTC)


def replica(
    name: str, lag: float | None = 5.0, synced_ago: float | None = 60.0, rpo: float = 300
) -> ServiceReplica:
    return ServiceReplica(
        "e-office",
        name,
        rpo,
        lag,
        None if synced_ago is None else NOW - datetime.timedelta(seconds=synced_ago),
    )


def situation(
    *services: ServiceReplica,
    reachable: bool = True,
    last_seen: datetime.datetime = NOW,
    active: str | None = "danang",
    target: str = "quangnam",
    role: Role = Role.STANDBY,
) -> Situation:
    return Situation(
        target=target,
        sites=("danang", "quangnam"),
        active_site=active,
        epoch=4,
        source_reachable=reachable,
        source_last_seen=last_seen,
        services=services,
        target_role=role,
        target_why=f"{target} is {role}",
    )


def test_switchover_plans_every_step_with_no_data_loss() -> None:
    plan = make_plan(FailoverType.SWITCHOVER, False, situation(replica("vanban", synced_ago=900)))
    assert plan.feasible and plan.source == "danang" and (plan.from_epoch, plan.to_epoch) == (4, 5)
    steps = initial_steps(plan.type)
    assert [s.name for s in steps] == list(StepName) and steps[0].name == StepName.CHECK_PRECONDITIONS
    assert all(s.state == StepState.PENDING for s in steps)
    assert plan.data_loss_window_seconds == 0.0


def test_switchover_needs_the_source() -> None:
    plan = make_plan(FailoverType.SWITCHOVER, False, situation(replica("vanban"), reachable=False))
    assert [p.reason for p in plan.problems] == ["SourceUnreachable"]


def test_failover_window_is_measured_to_when_the_source_was_last_seen() -> None:
    died = NOW - datetime.timedelta(seconds=100)
    plan = make_plan(
        FailoverType.FAILOVER,
        False,
        situation(replica("vanban", lag=3, synced_ago=160), reachable=False, last_seen=died),
    )
    assert plan.feasible
    assert plan.services[0].data_loss_window_seconds == pytest.approx(60.0)
    skipped = [s for s in initial_steps(plan.type) if s.state == StepState.SKIPPED]
    assert [s.name for s in skipped] == [StepName.FINAL_SYNC]
    assert "the source is not there to sync from" in (skipped[0].message or "")


def test_a_database_no_longer_streaming_counts_from_where_it_is_complete() -> None:
    died = NOW - datetime.timedelta(seconds=100)
    stopped = dataclasses.replace(
        replica("vanban", lag=None, synced_ago=110),
        database_complete_at=died - datetime.timedelta(seconds=25),
    )
    plan = make_plan(FailoverType.FAILOVER, False, situation(stopped, reachable=False, last_seen=died))
    assert plan.feasible
    assert plan.services[0].data_loss_window_seconds == pytest.approx(25.0)  # the files lost only 10 s


@pytest.mark.parametrize(
    ("lag", "synced_ago", "accept", "feasible"),
    [
        (None, 60, False, False),  # database lag unknown
        (5, None, False, False),  # files never synced
        (5, 400, False, False),  # above the 300 s objective
        (5, 400, True, True),  # accepted by a person
        (None, None, True, True),
        (5, 200, False, True),  # within the objective
    ],
)
def test_failover_refuses_unknown_or_excessive_data_loss(
    lag: float | None, synced_ago: float | None, accept: bool, feasible: bool
) -> None:
    plan = make_plan(
        FailoverType.FAILOVER, accept, situation(replica("vanban", lag, synced_ago), reachable=False)
    )
    assert plan.feasible is feasible
    if not feasible:
        assert {p.reason for p in plan.problems} == {"DataLossNotAccepted"}
        assert "e-office/vanban" in plan.problems[0].message


def test_services_without_database_or_files_lose_nothing_there() -> None:
    stateless = ServiceReplica("ioc", "dash", 60, database_enabled=False, files_enabled=False)
    plan = make_plan(FailoverType.FAILOVER, False, situation(stateless, reachable=False))
    assert plan.feasible and plan.data_loss_window_seconds == 0.0


def test_unknown_or_active_target_is_refused() -> None:
    assert [
        p.reason for p in make_plan(FailoverType.SWITCHOVER, False, situation(target="hue")).problems
    ] == ["UnknownSite"]
    active = situation(active="quangnam", role=Role.ACTIVE)
    assert "AlreadyActive" in [p.reason for p in make_plan(FailoverType.SWITCHOVER, False, active).problems]


def test_a_target_whose_recorded_claim_names_it_but_is_not_active_is_settling_not_already_active() -> None:
    """Right after a switchover away from danang, its recorded claim names it for a moment while it is Fenced,
    handing over: a switchover back is not refused as AlreadyActive, and not planned from epoch 4 either."""
    handing_over = dataclasses.replace(
        situation(active="danang", target="danang", role=Role.FENCED),
        target_why="handing over to quangnam for epoch 5 (Failover switchover-1)",
    )
    plan = make_plan(FailoverType.SWITCHOVER, False, handing_over)
    assert [(p.reason, p.message) for p in plan.problems] == [
        (
            "PairSettling",
            "the pair has not settled: danang is Fenced, not Active, though its recorded claim names it "
            "(handing over to quangnam for epoch 5 (Failover switchover-1))",
        )
    ]
    # Standing by, its claim not yet recorded: settling too. Active whatever it recorded: AlreadyActive.
    standing_by = situation(active="danang", target="danang", role=Role.STANDBY)
    assert [p.reason for p in make_plan(FailoverType.SWITCHOVER, False, standing_by).problems] == [
        "PairSettling"
    ]
    active = situation(active="quangnam", target="danang", role=Role.ACTIVE)
    assert [p.reason for p in make_plan(FailoverType.SWITCHOVER, False, active).problems] == ["AlreadyActive"]


def test_a_move_the_peer_still_executes_leaves_the_pair_unsettled() -> None:
    """danang stands by from quangnam's Promote on, but quangnam's switchover still redirects and verifies: a
    switchover back begun then would supersede it (found by the kwok test)."""
    still_moving = dataclasses.replace(
        situation(active="quangnam", target="danang", role=Role.STANDBY),
        peer_handover=Handover(5, "quangnam", "switchover-there"),
    )
    plan = make_plan(FailoverType.SWITCHOVER, False, still_moving)
    assert [(p.reason, p.message) for p in plan.problems] == [
        (
            "PairSettling",
            "the pair has not settled: quangnam is still executing Failover switchover-there (to epoch 5)",
        )
    ]


def test_a_failover_waits_a_bounded_time_for_the_pair_to_settle_and_then_fails_saying_why() -> None:
    settling = make_plan(
        FailoverType.SWITCHOVER, False, situation(active="quangnam", target="quangnam", role=Role.FENCED)
    )
    waiting = planned(settling, False, NOW, since=NOW - datetime.timedelta(seconds=59), settle=60)
    assert waiting.phase is FailoverPhase.PENDING and waiting.completion_time is None
    assert waiting.message and waiting.message.startswith("PairSettling: the pair has not settled")
    assert waiting.message.endswith("planned once it has settled (waiting up to 60s)")
    first = waiting.steps[0]
    assert (first.name, first.state, first.start_time) == (
        StepName.CHECK_PRECONDITIONS,
        StepState.RUNNING,
        NOW - datetime.timedelta(seconds=59),
    )
    assert (waiting.from_site, waiting.from_epoch, waiting.services) == (None, None, [])
    drill = planned(settling, True, NOW)
    assert drill.phase is FailoverPhase.PLANNED and "would fail: PairSettling" in (drill.message or "")

    failed = planned(settling, False, NOW, since=NOW - datetime.timedelta(seconds=60), settle=60)
    assert failed.phase is FailoverPhase.FAILED and failed.start_time == NOW - datetime.timedelta(seconds=60)
    assert failed.message and failed.message.startswith("CheckPreconditions: PairSettling: the pair has not")
    assert "waited 60s for it: once one site is Active and the other Standby" in failed.message


def test_steps_resume_at_the_first_unfinished_one_and_end_the_phase() -> None:
    plan = make_plan(FailoverType.FAILOVER, True, situation(replica("vanban"), reachable=False))
    status = FailoverStatus(phase=FailoverPhase.RUNNING, steps=initial_steps(plan.type))
    assert next_step(status) == StepName.CHECK_PRECONDITIONS
    status = record(status, StepName.CHECK_PRECONDITIONS, Outcome.done("ok"), NOW)
    status = record(status, StepName.FENCE_SOURCE, Outcome.waiting("waiting for the lease"), NOW)
    assert next_step(status) == StepName.FENCE_SOURCE and status.phase == FailoverPhase.RUNNING
    fence = next(s for s in status.steps if s.name == StepName.FENCE_SOURCE)
    assert fence.state == StepState.RUNNING and fence.start_time == NOW and fence.completion_time is None
    later = NOW + datetime.timedelta(seconds=5)
    status = record(status, StepName.FENCE_SOURCE, Outcome.done("fenced"), later)
    assert next_step(status) == StepName.PROMOTE, "FinalSync is skipped for a failover"
    for step in (StepName.PROMOTE, StepName.REDIRECT, StepName.VERIFY):
        status = record(status, step, Outcome.done("ok"), later)
    assert status.phase == FailoverPhase.SUCCEEDED and status.completion_time == later


def test_a_failed_step_fails_the_failover() -> None:
    plan = make_plan(FailoverType.SWITCHOVER, False, situation(replica("vanban")))
    status = FailoverStatus(steps=initial_steps(plan.type))
    status = record(
        status, StepName.CHECK_PRECONDITIONS, Outcome.failed("DataLossNotAccepted", "window unknown"), NOW
    )
    assert status.phase == FailoverPhase.FAILED and "window unknown" in (status.message or "")


def test_a_failover_of_more_services_than_one_status_can_hold_is_refused_and_its_record_bounded() -> None:
    now = datetime.datetime(2026, 11, 28, 9, 0, tzinfo=datetime.UTC)
    services = tuple(ServiceReplica("egov", f"svc-{i:05d}", 60.0) for i in range(MAX_FAILOVER_SERVICES + 1))
    plan = make_plan(FailoverType.FAILOVER, False, situation(*services, reachable=False, last_seen=now))
    assert [p.reason for p in plan.problems] == ["TooManyServices", "DataLossNotAccepted"]
    assert "egov/svc-00003, egov/svc-00004 and 1196 more: set acceptDataLoss" in plan.problems[1].message
    status = planned(plan, False, now)
    assert status.phase is FailoverPhase.FAILED and len(status.services) == MAX_FAILOVER_SERVICES
    assert status.message is not None and len(status.message) < 1000
