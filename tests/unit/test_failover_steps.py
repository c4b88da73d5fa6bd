"""The steps of a Failover are a table: every StepName has its Step, in the order the steps run."""

import pytest

from sharedcore.api import FailoverType, StepName, StepState
from sharedcore.failover import steps
from sharedcore.failover.steps import BY_NAME, PLANNING, STEPS, Step, initial_steps


def test_every_step_name_has_one_step() -> None:
    """A StepName added without its Step would be planned and then never taken (it used to fall through
    to Verify's judgement)."""
    assert [PLANNING, *(step.name for step in STEPS)] == list(StepName)
    assert len(BY_NAME) == len(STEPS)


@pytest.mark.parametrize("failover_type", list(FailoverType))
def test_every_failover_plans_every_step_in_order(failover_type: FailoverType) -> None:
    assert [status.name for status in initial_steps(failover_type)] == list(StepName)


def test_a_skipped_step_says_its_own_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any skipped step used to be recorded with FinalSync's reason."""
    redirect = BY_NAME[StepName.REDIRECT]
    without_dns = Step(
        redirect.name, redirect.observe, redirect.judge, skipped={FailoverType.FAILOVER: "no DNS here"}
    )
    monkeypatch.setattr(steps, "STEPS", tuple(without_dns if s is redirect else s for s in STEPS))
    skipped = {
        status.name: status.message
        for status in initial_steps(FailoverType.FAILOVER)
        if status.state is StepState.SKIPPED
    }
    assert skipped == {
        StepName.FINAL_SYNC: "not applicable to a failover: the source is not there to sync from",
        StepName.REDIRECT: "no DNS here",
    }
    assert all(s.state is StepState.PENDING for s in initial_steps(FailoverType.SWITCHOVER))
