"""A CloudNativePG demotion that cannot end by itself (replication.demotion): when it is moved on."""

from typing import Any

import pytest

from sharedcore.replication import demotion
from sharedcore.replication.demotion import Step

Body = dict[str, Any]
STUCK = demotion.STUCK_SECONDS
POD = "opendata-db-danang-1"


def cluster(
    *,
    in_progress: bool = True,
    fenced: bool = True,
    designated: bool = False,
    restarted: bool = False,
    reports_primary: bool | None = False,
) -> Body:
    annotations = {demotion.FENCED_INSTANCES: demotion.ALL_INSTANCES} if fenced else {}
    if restarted:
        annotations[demotion.RESTARTED] = "2026-11-29T12:00:00Z"
    transition = {"type": demotion.TRANSITION, "status": "True" if designated else "False"}
    reported = {} if reports_primary is None else {POD: {"isPrimary": reports_primary}}
    return {
        "metadata": {"name": "opendata-db-danang", "annotations": annotations, "resourceVersion": "7"},
        "spec": {"replica": {"primary": "opendata-db-quangnam", "self": "opendata-db-danang"}},
        "status": {
            "switchReplicaClusterStatus": {"inProgress": in_progress},
            "conditions": [{"type": "Ready", "status": "True"}, transition],
            "currentPrimary": POD,
            "instancesReportedState": reported,
        },
    }


def test_no_demotion_no_step() -> None:
    assert demotion.step(cluster(in_progress=False), stuck_for=1e6, active=True) is Step.NONE


def test_a_demotion_under_way_is_left_to_cloudnativepg_until_it_stood_still_a_while() -> None:
    assert demotion.step(cluster(designated=True), stuck_for=STUCK - 1, active=True) is Step.WAIT
    assert demotion.step(cluster(designated=True), stuck_for=STUCK, active=True) is Step.UNFENCE


@pytest.mark.parametrize("active", [False, True])
def test_a_transition_made_but_never_reported_is_reported_only_at_the_active_site(active: bool) -> None:
    """Were the report wrong (the instance still a primary), the fence lifted after the demotion would start
    a writable primary: only where this site is the active one."""
    expected = Step.REPORT if active else Step.WAIT
    assert demotion.step(cluster(), stuck_for=STUCK, active=active) is expected


@pytest.mark.parametrize("reports_primary", [True, None])
def test_an_instance_that_reports_itself_primary_or_nothing_is_not_reported_for(
    reports_primary: bool | None,
) -> None:
    stuck = cluster(reports_primary=reports_primary)
    assert demotion.step(stuck, stuck_for=STUCK, active=True) is Step.WAIT


def test_a_demotion_someone_else_unfenced_is_not_touched() -> None:
    assert demotion.step(cluster(fenced=False, designated=True), stuck_for=1e6, active=True) is Step.WAIT


def test_once_unfenced_it_is_fenced_again_a_little_later() -> None:
    lifted = cluster(fenced=False, designated=True, restarted=True)
    assert demotion.step(lifted, stuck_for=demotion.REFENCE_SECONDS - 1, active=True) is Step.WAIT
    assert demotion.step(lifted, stuck_for=demotion.REFENCE_SECONDS, active=False) is Step.REFENCE


def test_each_step_writes_what_it_says() -> None:
    now = "2026-11-29T12:00:00Z"
    subresource, report = demotion.write(Step.REPORT, cluster(), now)
    conditions = report["status"]["conditions"]
    assert subresource == "status" and report["metadata"]["resourceVersion"] == "7"
    assert [(c["type"], c["status"]) for c in conditions] == [
        ("Ready", "True"),
        (demotion.TRANSITION, "True"),
    ]
    assert conditions[1]["reason"] == "TransitionCompleted" and "sharedcore" in conditions[1]["message"]
    lifted = {"metadata": {"annotations": {demotion.FENCED_INSTANCES: None, demotion.RESTARTED: now}}}
    assert demotion.write(Step.UNFENCE, cluster(), now) == (None, lifted)
    restored = {"metadata": {"annotations": {demotion.FENCED_INSTANCES: '["*"]', demotion.RESTARTED: None}}}
    assert demotion.write(Step.REFENCE, cluster(), now) == (None, restored)


def test_a_change_between_primary_and_replica_is_a_change_of_role() -> None:
    live = cluster()
    primary = {**live, "spec": {"replica": {"primary": "opendata-db-danang", "self": "opendata-db-danang"}}}
    assert demotion.changes_role(primary, live) and not demotion.changes_role(live, live)
