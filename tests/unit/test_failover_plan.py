"""The pure failover planner and step machine."""

import dataclasses
import datetime

import pytest

from sharedcore.api import (
    MAX_FAILOVER_SERVICES,
    FailoverPhase,
    FailoverStatus,
    FailoverType,
    StepName,
    StepState,
)
from sharedcore.failover.machine import Outcome, next_step, record
from sharedcore.failover.plan import ServiceReplica, Situation, make_plan
from sharedcore.failover.preconditions import planned
from sharedcore.failover.steps import initial_steps

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
) -> Situation:
    return Situation(
        target=target,
        sites=("danang", "quangnam"),
        active_site=active,
        epoch=4,
        source_reachable=reachable,
        source_last_seen=last_seen,
        services=services,
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
    assert "AlreadyActive" in [
        p.reason for p in make_plan(FailoverType.SWITCHOVER, False, situation(active="quangnam")).problems
    ]


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
    situation = Situation("quangnam", ("danang", "quangnam"), "danang", 3, False, now, services)
    plan = make_plan(FailoverType.FAILOVER, False, situation)
    assert [p.reason for p in plan.problems] == ["TooManyServices", "DataLossNotAccepted"]
    assert "egov/svc-00003, egov/svc-00004 and 1196 more: set acceptDataLoss" in plan.problems[1].message
    status = planned(plan, False, now)
    assert status.phase is FailoverPhase.FAILED and len(status.services) == MAX_FAILOVER_SERVICES
    assert status.message is not None and len(status.message) < 1000
