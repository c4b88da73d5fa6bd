"""A Failover deleted while its operator is between recording a step and reporting it (found by the nemesis:
bench/nemesis.py --seed 21, a switchover deleted as its Promote step ended): its events still name it."""

import asyncio
from typing import Any, cast

from sharedcore import API_GROUP, API_VERSION
from sharedcore.api import Failover, FailoverPhase, FailoverStatus, StepName
from sharedcore.failover.controller import FailoverController
from sharedcore.failover.steps import Outcome

NAME = "switchover-to-quangnam"
BODY = {
    "apiVersion": f"{API_GROUP}/{API_VERSION}",
    "kind": "Failover",
    "metadata": {"name": NAME, "uid": "1234"},
    "spec": {"targetSite": "quangnam", "type": "Switchover", "reason": "test"},
}


class Recorder:
    """What the controller asked to post, as an EventRecorder would name the object."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str, str | None, str]] = []

    async def record(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        self.posted.append((obj["apiVersion"], obj["kind"], meta["name"], meta.get("uid"), reason))


def test_a_failover_deleted_as_its_promote_step_ends_is_still_named_in_the_event() -> None:
    recorder = Recorder()
    controller = FailoverController(
        cast(Any, None),
        recorder=cast(Any, recorder),
        site=cast(Any, None),
        peer_client=lambda: None,
        services=lambda: [],
        managed=lambda _: [],
        owned=lambda *_: [],
    )
    controller.on_event("ADDED", BODY)
    controller.on_event("DELETED", BODY)  # between writing the step's outcome and reporting it
    status = FailoverStatus(phase=FailoverPhase.RUNNING)
    promoted = Outcome.done("quangnam is active at epoch 2")
    asyncio.run(controller._after(NAME, Failover.model_validate(BODY), StepName.PROMOTE, promoted, status))
    assert recorder.posted == [(f"{API_GROUP}/{API_VERSION}", "Failover", NAME, "1234", "SitePromoted")]
