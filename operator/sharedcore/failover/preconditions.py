"""The CheckPreconditions step: a plan becomes the Failover's first recorded status.

A dry run ends here, Planned, with the plan and every precondition that would fail; a real run fails here
when any precondition does (the first problem's reason is the step's), and otherwise goes on to FenceSource.
A Failover found at a site it does not target is not planned at all: it fails at once (`misplaced`).
"""

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
from sharedcore.failover.plan import Plan
from sharedcore.failover.steps import initial_steps


def _problems(plan: Plan) -> str:
    return "; ".join(f"{p.reason}: {p.message}" for p in plan.problems)


def _summary(plan: Plan) -> str:
    window = plan.data_loss_window_seconds
    loss = "unknown" if window is None else f"{window:.0f}s"
    return (
        f"{plan.source or 'no site'} → {plan.target} at epoch {plan.to_epoch}, "
        f"{len(plan.services)} services, data-loss window {loss}"
    )


def planned(plan: Plan, dry_run: bool, now: datetime.datetime) -> FailoverStatus:
    """The status after CheckPreconditions."""
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
        start_time=now,
        source_last_seen_time=plan.source_last_seen,
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
    if plan.problems:
        first = plan.problems[0]
        return record(
            status, StepName.CHECK_PRECONDITIONS, Outcome.failed(first.reason, _problems(plan)), now
        )
    return record(status, StepName.CHECK_PRECONDITIONS, Outcome.done(_summary(plan)), now)


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
