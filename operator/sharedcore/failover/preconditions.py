"""The CheckPreconditions step: a plan becomes the Failover's first recorded status.

A dry run ends here, Planned, with the plan and every precondition that would fail; a real run fails here
when any precondition does (the first problem's reason is the step's), and otherwise goes on to FenceSource.
"""

import datetime

from sharedcore.api import FailoverPhase, FailoverStatus, ServiceFailoverStatus, StepName
from sharedcore.failover.plan import Plan
from sharedcore.failover.steps import Outcome, initial_steps, record


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
        steps=initial_steps(plan),
        services=[
            ServiceFailoverStatus(
                namespace=s.namespace, name=s.name, data_loss_window_seconds=s.data_loss_window_seconds
            )
            for s in plan.services
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
