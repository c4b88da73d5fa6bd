"""Executes the Failovers that target this site, one step at a time, from their recorded `status.steps`.

Only the target site's operator acts on a Failover (the source may be gone); others ignore it. The Kopf
handler only feeds the queue; one worker advances one Failover at a time (roles must not move twice at
once), and each pass starts again from what the status records, so an operator restart resumes where it was.
So far the machine runs CheckPreconditions (which ends a dry run, Planned, or a refused one, Failed); the
steps that move roles are not executed yet, and a Failover that passed its preconditions waits at FenceSource.
"""

import datetime
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pydantic import ValidationError

from sharedcore.api import Failover, FailoverPhase, FailoverStatus
from sharedcore.controller.events import EventRecorder
from sharedcore.controller.patches import merge_patch
from sharedcore.controller.workqueue import WorkQueue
from sharedcore.failover.plan import make_plan
from sharedcore.failover.preconditions import planned
from sharedcore.failover.situation import PairView, situation
from sharedcore.failover.steps import next_step
from sharedcore.kube.client import KubeClient
from sharedcore.kube.resources import FAILOVERS
from sharedcore.metrics import FAILOVERS_TOTAL
from sharedcore.sites.peers import REMOTE_ERRORS, describe

log = logging.getLogger(__name__)
Body = dict[str, Any]
ENDED = frozenset({FailoverPhase.SUCCEEDED, FailoverPhase.FAILED, FailoverPhase.PLANNED})
RETRY_SECONDS = 2.0


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _dump(status: FailoverStatus) -> Body:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


class FailoverController:
    def __init__(
        self,
        site: str,
        client: KubeClient,
        *,
        recorder: EventRecorder,
        pair: Callable[[], PairView],
        services: Callable[[], Iterable[Body]],
    ) -> None:
        self._site, self._client, self._recorder = site, client, recorder
        self._pair, self._services = pair, services
        self._bodies: dict[str, Body] = {}
        self._queue: WorkQueue[str] = WorkQueue()

    def on_event(self, event_type: str | None, body: Body) -> None:
        name = body["metadata"]["name"]
        if event_type == "DELETED":
            self._bodies.pop(name, None)
            self._queue.forget(name)
            return
        self._bodies[name] = body
        self._queue.add(name)

    async def run(self, site_settled: Awaitable[object]) -> None:
        """Plan nothing before this site knows its role and epoch."""
        await site_settled
        while True:
            name = await self._queue.get()
            try:
                await self._advance(name)
            except REMOTE_ERRORS as error:
                log.warning("failover %s: %s; retrying in %.0fs", name, describe(error), RETRY_SECONDS)
                self._queue.add_after(name, RETRY_SECONDS)
            except Exception:  # one broken Failover must not stop the others
                log.exception("failover %s failed unexpectedly; retrying in %.0fs", name, RETRY_SECONDS)
                self._queue.add_after(name, RETRY_SECONDS)
            finally:
                self._queue.done(name)

    async def _advance(self, name: str) -> None:
        body = self._bodies.get(name)
        if body is None:
            return
        try:
            failover = Failover.model_validate(body)
        except ValidationError as error:  # the API server's schema makes this unlikely; never guess
            log.warning("failover %s is invalid, ignored: %s", name, error.errors()[0]["msg"])
            return
        if failover.spec.target_site != self._site:
            return
        status = failover.status or FailoverStatus()
        if status.phase in ENDED:
            return
        if status.steps:
            log.info("failover %s waits at %s: not executed by this operator yet", name, next_step(status))
            return
        await self._check_preconditions(body, failover)

    async def _check_preconditions(self, body: Body, failover: Failover) -> None:
        spec, now = failover.spec, _now()
        plan = make_plan(spec.type, spec.accept_data_loss, situation(self._pair(), self._services(), now))
        status = planned(plan, spec.dry_run, now)
        started = "FailoverPlanned" if spec.dry_run else "FailoverStarted"
        await self._recorder.record(
            body, "Normal", started, f"{spec.type} to {spec.target_site}: {spec.reason}"
        )
        await self._write(body, status)
        if status.phase in ENDED:
            FAILOVERS_TOTAL.labels(str(spec.type), str(status.phase)).inc()
        if status.phase is FailoverPhase.FAILED:
            await self._recorder.record(body, "Warning", "FailoverFailed", status.message or "")

    async def _write(self, body: Body, status: FailoverStatus) -> None:
        current = body.get("status") or {}
        new = _dump(status)
        if new == current:
            return
        patch = {"status": merge_patch(current, new)}
        updated = await self._client.patch(FAILOVERS, body["metadata"]["name"], None, patch, "status")
        self._bodies[body["metadata"]["name"]] = updated
