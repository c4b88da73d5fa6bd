"""The workers' loops: failed work is retried later and later; a deleted object leaves nothing behind."""

import asyncio
from typing import Any, cast

import pytest

from sharedcore.api import Role
from sharedcore.failover.controller import FailoverController
from sharedcore.kube import loops
from sharedcore.kube.workqueue import WorkQueue
from sharedcore.render import SiteContext
from sharedcore.services import reconcile
from sharedcore.services.controller import SharedServiceController
from sharedcore.services.runtime import Runtime

NONE = cast(Any, None)


def recording(monkeypatch: pytest.MonkeyPatch, queue: WorkQueue[Any], times: int = 7) -> list[float]:
    """The delays `queue` is asked to requeue after; the key is requeued at once instead, `times` times."""
    delays: list[float] = []

    def add_after(key: Any, delay: float) -> None:
        delays.append(delay)
        if len(delays) < times:
            queue.add(key)

    monkeypatch.setattr(queue, "add_after", add_after)
    return delays


async def broken(*_: Any) -> Any:
    raise RuntimeError("a bug")


def test_a_failing_service_backs_off_and_a_deleted_one_starts_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service deleted after failures and created again used to inherit their backoff (its failure count
    was kept forever, one entry per deleted service)."""
    rt = Runtime(NONE, NONE, lambda: SiteContext("danang", Role.ACTIVE, 0), resync_seconds=60)
    controller = SharedServiceController(rt, (), workers=1)
    delays = recording(monkeypatch, rt.queue)
    monkeypatch.setattr(reconcile, "reconcile", broken)
    body = {"metadata": {"namespace": "city", "name": "vanban"}}
    key = ("city", "vanban")

    async def scenario() -> None:
        controller.on_service_event("ADDED", body)
        for _ in range(3):
            await controller._reconcile_one(key)
        controller.on_service_event("DELETED", body)
        controller.on_service_event("ADDED", body)
        await controller._reconcile_one(key)

    asyncio.run(scenario())
    assert delays == [1.0, 2.0, 4.0, 1.0]


def test_a_broken_failover_is_retried_less_and_less_often(monkeypatch: pytest.MonkeyPatch) -> None:
    """It used to be retried every 2 s forever."""
    controller = FailoverController(
        NONE,
        recorder=NONE,
        site=NONE,
        peer_client=lambda: None,
        services=list,
        managed=lambda _: [],
        owned=lambda *_: [],
    )
    delays = recording(monkeypatch, controller._queue)
    monkeypatch.setattr(controller, "_advance", broken)

    async def scenario() -> None:
        controller.on_event("ADDED", {"metadata": {"name": "switchover-1"}})
        task = asyncio.create_task(controller.run(asyncio.sleep(0)))
        while len(delays) < 7:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(scenario())
    assert delays[:7] == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_retries_double_up_to_a_bound_and_success_or_forgetting_resets_them() -> None:
    async def scenario() -> list[float]:
        queue: WorkQueue[str] = WorkQueue(base_delay=1, max_delay=5)
        delays = [queue.retry("a") for _ in range(4)]
        queue.succeeded("a")
        delays.append(queue.retry("a"))
        queue.forget("a")
        delays.append(queue.retry("a"))
        queue.forget("a")
        return delays

    assert asyncio.run(scenario()) == [2, 4, 5, 5, 2, 2]


def test_a_periodic_loop_survives_a_failing_pass_and_runs_at_once_when_woken() -> None:
    """The shape of the site's loops and the lag poller (`kube.loops.repeat`)."""
    passes: list[int] = []

    async def step() -> None:
        passes.append(len(passes))
        if len(passes) == 1:
            raise RuntimeError("a bug met once")

    async def scenario() -> None:
        wake = asyncio.Event()
        task = asyncio.create_task(loops.repeat(step, interval=lambda: 3600.0, what="test", wake=wake))
        await asyncio.sleep(0.05)
        wake.set()
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(scenario())
    assert passes == [0, 1], "the failed first pass did not stop the loop, and the wake-up ran the second"


def test_a_startup_read_is_retried_until_the_api_server_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shape of the controllers' first reads (`kube.loops.until_done`): 0.5 s, then doubling."""
    waits: list[float] = []
    answers = iter([OSError("refused"), TimeoutError(), "listed"])

    async def read() -> str:
        answer = next(answers)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(loops.asyncio, "sleep", sleep)
    assert asyncio.run(loops.until_done(read, (OSError, TimeoutError), "reading")) == "listed"
    assert waits == [0.5, 1.0]
