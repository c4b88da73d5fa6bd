"""A Failover created at the wrong site, or naming an unknown site, ends Failed at once with the reason."""

import datetime

import pytest

from sharedcore.api import FailoverPhase, StepName, StepState
from sharedcore.failover.preconditions import misplaced

NOW = datetime.datetime(2026, 11, 24, 8, 30, 5, tzinfo=datetime.UTC)
SITES = ("danang", "quangnam")


@pytest.mark.parametrize(
    ("target", "reason", "words"),
    [
        ("quangnam", "WrongSite", "create it at quangnam"),
        ("hoian", "UnknownSite", "hoian is not a site of the Topology (danang, quangnam)"),
    ],
)
def test_a_misplaced_failover_fails_its_first_step_with_the_reason(
    target: str, reason: str, words: str
) -> None:
    status = misplaced(target, "danang", SITES, NOW)
    assert status is not None
    assert status.phase is FailoverPhase.FAILED and status.completion_time == NOW
    (step,) = status.steps
    assert (step.name, step.state) == (StepName.CHECK_PRECONDITIONS, StepState.FAILED)
    assert status.message is not None and f"{reason}: " in status.message and words in status.message


def test_a_failover_at_its_target_is_not_misplaced() -> None:
    assert misplaced("danang", "danang", SITES, NOW) is None
