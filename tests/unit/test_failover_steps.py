"""The steps of a Failover are a table: every StepName has its Step, in the order the steps run."""

import asyncio
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, cast

import pytest

from sharedcore.api import FailoverType, StepName, StepState
from sharedcore.failover import progress, steps
from sharedcore.failover.machine import ServiceKey
from sharedcore.failover.steps import BY_NAME, PLANNING, STEPS, Attempt, Handles, Step, initial_steps
from sharedcore.kube.resources import Resource
from tests.support.fake_api import FakeApi


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


class _Handles:
    """The executor's loans to a step, over the in-memory API."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api

    @property
    def client(self) -> Any:
        return self.api

    def peer_client(self) -> None:
        return None

    def managed(self, resource: Resource) -> list[dict[str, Any]]:
        return self.api.of_kind(resource.kind)

    def promote(self, epoch: int, tokens: Mapping[ServiceKey, str]) -> None:
        return None


def _cluster(name: str, phase: str, token: str | None, last: str | None = None) -> dict[str, Any]:
    replica = {"primary": name, **({"promotionToken": token} if token else {})}
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": name, "namespace": "app"},
        "spec": {"replica": replica},
        "status": {"phase": phase, **({"lastPromotionToken": last} if last else {})},
    }


def test_promote_asks_cloudnativepg_at_once_to_check_a_token_it_is_still_checking() -> None:
    """CloudNativePG checks a promotion token again only 10 s after a check that found its replica behind; a
    change to the Cluster makes it check at once. Before, Promote waited those 10 s (12-14 s switchovers)."""
    api = FakeApi()
    api.add(_cluster("waiting-db-quangnam", progress.TOKEN_PHASE, "t1"))
    api.add(_cluster("promoted-db-quangnam", "Cluster in healthy state", "t2", last="t2"))
    api.add(_cluster("plain-db-quangnam", progress.TOKEN_PHASE, None))  # a failover: no token to check
    attempt = cast(Attempt, SimpleNamespace(epoch=3, promotion_tokens={}))
    promote = BY_NAME[StepName.PROMOTE]
    asyncio.run(promote.act(cast(Handles, _Handles(api)), attempt))
    assert api.writes == [("patch", "Cluster", "waiting-db-quangnam")]
    asked = api.find("Cluster", "waiting-db-quangnam", "app")
    assert asked and steps.TOKEN_CHECK in asked["metadata"]["annotations"]
    asyncio.run(promote.act(cast(Handles, _Handles(api)), attempt))  # within the same second: no second write
    assert len(api.writes) <= 2
