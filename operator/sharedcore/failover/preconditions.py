"""The CheckPreconditions step: a plan becomes the Failover's first recorded status.

A dry run ends here, Planned, with the plan and every precondition that would fail; a real run fails here
when any precondition does (the first problem's reason is the step's), and otherwise goes on to FenceSource.
A Failover found at a site it does not target is not planned at all: it fails at once (`misplaced`).
A real run requested while the pair is still settling from a previous move (`PairSettling`) is not judged
from that passing view: it waits, phase Pending, its CheckPreconditions step Running and saying why, and is
planned again on each pass, until the pair has settled or `settle_seconds` have passed since it was first
taken up; only then does it fail, with the reason.
"""

import dataclasses
import datetime
from collections.abc import Sequence

from sharedcore.api import (
    MAX_FAILOVER_SERVICES,
    FailoverPhase,
    FailoverStatus,
    ServiceFailoverStatus,
    StepName,
    StepStatus,
)
from sharedcore.failover.machine import Outcome, record
from sharedcore.failover.plan import SETTLING, Plan, Problem
from sharedcore.failover.steps import initial_steps

# The least time a Failover waits for the pair to settle: after a move each site takes in the other's claim
# from its next heartbeat, seconds later; a Lease duration (at least three heartbeats) when that is longer.
SETTLE_SECONDS = 60.0


def settle_seconds(lease_duration_seconds: float) -> float:
    return max(SETTLE_SECONDS, lease_duration_seconds)


def _problems(plan: Plan) -> str:
    return "; ".join(f"{p.reason}: {p.message}" for p in plan.problems)


def _summary(plan: Plan) -> str:
    window = plan.data_loss_window_seconds
    loss = "unknown" if window is None else f"{window:.0f}s"
    return (
        f"{plan.source or 'no site'} → {plan.target} at epoch {plan.to_epoch}, "
        f"{len(plan.services)} services, data-loss window {loss}"
    )


def planned(
    plan: Plan,
    dry_run: bool,
    now: datetime.datetime,
    since: datetime.datetime | None = None,
    settle: float = SETTLE_SECONDS,
) -> FailoverStatus:
    """The status after CheckPreconditions, first taken at `since` (now if not before): Pending while the pair
    settles, for at most `settle` seconds."""
    started = since or now
    settling = next((p for p in plan.problems if p.reason == SETTLING), None)
    if settling is not None and not dry_run:
        if (now - started).total_seconds() < settle:
            return _waiting(plan, settling, started, settle, now)
        waited = Problem(
            SETTLING,
            f"{settling.message}; waited {settle:.0f}s for it: once one site is Active and the other "
            "Standby (kubectl sharedcore status), create the Failover again",
        )
        plan = dataclasses.replace(
            plan, problems=tuple(waited if p is settling else p for p in plan.problems)
        )
    status = FailoverStatus(
        phase=FailoverPhase.RUNNING,
        from_site=plan.source,
        to_site=plan.target,
        from_epoch=plan.from_epoch,
        to_epoch=plan.to_epoch,
        steps=initial_steps(plan.type),
        services=[
            ServiceFailoverStatus(
                namespace=s.namespace, name=s.name, data_loss_window_seconds=s.data_loss_window_seconds
            )
            for s in plan.services[:MAX_FAILOVER_SERVICES]  # more fail the plan: TooManyServices
        ],
        start_time=started,
        source_last_seen_time=plan.source_last_seen,
        source_last_active_time=plan.source_last_active,
        data_loss_window_seconds=plan.data_loss_window_seconds,
    )
    if dry_run:
        verdict = f"would fail: {_problems(plan)}" if plan.problems else "preconditions hold"
        return status.model_copy(
            update={
                "phase": FailoverPhase.PLANNED,
                "completion_time": now,
                "message": f"dry run: {_summary(plan)}; {verdict}",
            }
        )
    status = _first_taken(status, started)
    if plan.problems:
        first = plan.problems[0]
        return record(
            status, StepName.CHECK_PRECONDITIONS, Outcome.failed(first.reason, _problems(plan)), now
        )
    return record(status, StepName.CHECK_PRECONDITIONS, Outcome.done(_summary(plan)), now)


def _first_taken(status: FailoverStatus, started: datetime.datetime) -> FailoverStatus:
    """CheckPreconditions as started when it was first taken."""
    steps = [
        step.model_copy(update={"start_time": started}) if step.name is StepName.CHECK_PRECONDITIONS else step
        for step in status.steps
    ]
    return status.model_copy(update={"steps": steps})


def _waiting(
    plan: Plan, settling: Problem, started: datetime.datetime, settle: float, now: datetime.datetime
) -> FailoverStatus:
    """Nothing from a plan made of a passing view is recorded: neither source nor epochs, nor windows."""
    status = FailoverStatus(
        phase=FailoverPhase.RUNNING, to_site=plan.target, steps=initial_steps(plan.type), start_time=started
    )
    message = f"{SETTLING}: {settling.message}: planned once it has settled (waiting up to {settle:.0f}s)"
    waiting = record(
        _first_taken(status, started), StepName.CHECK_PRECONDITIONS, Outcome.waiting(message), now
    )
    return waiting.model_copy(update={"phase": FailoverPhase.PENDING, "message": message})


def misplaced(target: str, here: str, sites: Sequence[str], now: datetime.datetime) -> FailoverStatus | None:
    """A Failover is executed by its target's operator, so it must be created at its target, a site of the
    Topology; None when it is. Left waiting anywhere else it would look accepted and never run."""
    if target == here:
        return None
    if target in sites:
        reason = "WrongSite"
        message = (
            f"this Failover is at {here}, but it targets {target}, whose operator alone executes it: "
            f"create it at {target} (kubectl --context <{target}>); delete this one"
        )
    else:
        reason = "UnknownSite"
        message = f"{target} is not a site of the Topology ({', '.join(sites)}); delete this Failover"
    status = FailoverStatus(
        phase=FailoverPhase.RUNNING, steps=[StepStatus(name=StepName.CHECK_PRECONDITIONS)], start_time=now
    )
    return record(status, StepName.CHECK_PRECONDITIONS, Outcome.failed(reason, f"{reason}: {message}"), now)
