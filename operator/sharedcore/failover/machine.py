"""The step machine of a running Failover: which step is next, and how a step's outcome is recorded.

Steps are recorded in `status.steps[]` as they go; a restarted operator resumes at the first step that is
neither Succeeded nor Skipped, and every step's action is idempotent, so re-running it is safe.
"""

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field

from sharedcore.api import FailoverPhase, FailoverStatus, StepName, StepState

ServiceKey = tuple[str, str]  # (namespace, name)
DONE = frozenset({StepState.SUCCEEDED, StepState.SKIPPED})


@dataclass(frozen=True)
class Outcome:
    """What one attempt at a step achieved: finished, failed (with a reason), or still under way."""

    state: StepState
    message: str
    reason: str | None = None  # CamelCase, when failed
    # FinalSync done: the source's demotion token per service, which Promote hands to each database.
    promotion_tokens: Mapping[ServiceKey, str] = field(default_factory=dict)

    @classmethod
    def done(cls, message: str, promotion_tokens: Mapping[ServiceKey, str] | None = None) -> "Outcome":
        return cls(StepState.SUCCEEDED, message, promotion_tokens=promotion_tokens or {})

    @classmethod
    def waiting(cls, message: str) -> "Outcome":
        return cls(StepState.RUNNING, message)

    @classmethod
    def failed(cls, reason: str, message: str) -> "Outcome":
        return cls(StepState.FAILED, message, reason)


def next_step(status: FailoverStatus) -> StepName | None:
    """The step to work on: the first one not done; None when all are."""
    return next((step.name for step in status.steps if step.state not in DONE), None)


def record(
    status: FailoverStatus, step: StepName, outcome: Outcome, now: datetime.datetime
) -> FailoverStatus:
    """The status after one attempt at `step`; the phase follows (Failed, or Succeeded after the end)."""
    ended = outcome.state in (*DONE, StepState.FAILED)
    steps = [
        current.model_copy(
            update={
                "state": outcome.state,
                "message": outcome.message,
                "start_time": current.start_time or now,
                "completion_time": now if ended else None,
            }
        )
        if current.name == step
        else current
        for current in status.steps
    ]
    updated = status.model_copy(update={"steps": steps})
    if tokens := outcome.promotion_tokens:
        services = [
            s.model_copy(update={"promotion_token": tokens.get((s.namespace, s.name))})
            for s in status.services
        ]
        updated = updated.model_copy(update={"services": services})
    if outcome.state == StepState.FAILED:
        return updated.model_copy(
            update={
                "phase": FailoverPhase.FAILED,
                "completion_time": now,
                "message": f"{step}: {outcome.message}",
            }
        )
    if next_step(updated) is None:
        return updated.model_copy(update={"phase": FailoverPhase.SUCCEEDED, "completion_time": now})
    return updated.model_copy(update={"phase": FailoverPhase.RUNNING})
