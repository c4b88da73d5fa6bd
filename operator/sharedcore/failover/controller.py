"""Executes the Failovers that target this site, one step at a time, from their recorded `status.steps`.

Only the target site's operator acts on a Failover (the source may be gone); others ignore it. The Kopf
handler only feeds the queue; one worker advances one Failover at a time (roles must not move twice at
once), and each pass starts again from what the status records, so an operator restart resumes where it was:
every step's action (announce the handover, promote) is idempotent and re-issued on each pass. A step that
waits is looked at again every POLL_SECONDS, and its status written only when its message changes.
Deleting a running Failover before its Promote step withdraws the handover: the source takes up its role
again.

The automatic decisions (`failover.triggers`) create Failovers like anyone else would, at this site.
"""

import asyncio
import datetime
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from sharedcore import Body
from sharedcore.api import (
    Failover,
    FailoverPhase,
    FailoverStatus,
    FailoverType,
    LastFailover,
    StepName,
    StepState,
    Topology,
    dump,
)
from sharedcore.failover import progress, readiness, triggers
from sharedcore.failover.machine import Outcome, ServiceKey, next_step, record
from sharedcore.failover.plan import make_plan
from sharedcore.failover.preconditions import misplaced, planned, settle_seconds
from sharedcore.failover.situation import situation
from sharedcore.failover.steps import BY_NAME, Attempt, city_dns
from sharedcore.kube.client import ApiError, KubeClient
from sharedcore.kube.events import EventRecorder
from sharedcore.kube.patches import merge_patch
from sharedcore.kube.resources import (
    FAILOVERS,
    TOPOLOGIES,
    Resource,
)
from sharedcore.kube.workqueue import WorkQueue
from sharedcore.metrics import (
    DATA_LOSS_WINDOW,
    FAILOVER_DURATION,
    FAILOVER_FENCING,
    FAILOVER_RTO,
    FAILOVERS_TOTAL,
)
from sharedcore.render import ClusterKey
from sharedcore.render.names import database_cluster
from sharedcore.replication import data
from sharedcore.sites.controller import TOPOLOGY_NAME, SiteController
from sharedcore.sites.peers import REMOTE_ERRORS, describe
from sharedcore.sites.state import Claim, Handover
from sharedcore.sites.witness import RENEW_DEADLINE

log = logging.getLogger(__name__)
RESTORED_UNSEEN_SECONDS = 30.0  # the watch delivers every Failover within seconds of its start
ENDED = frozenset({FailoverPhase.SUCCEEDED, FailoverPhase.FAILED, FailoverPhase.PLANNED})
RETRY_SECONDS = 2.0  # the first retry of a pass that failed; each next one waits twice as long
MAX_RETRY_SECONDS = 60.0
POLL_SECONDS = 0.5
SETTLE_POLL_SECONDS = 1.0  # a Failover waiting for the pair to settle is planned again this often
TRIGGER_POLL_SECONDS = 0.5


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _running(body: Body) -> bool:
    status = body.get("status") or {}
    return bool(status.get("steps")) and status.get("phase") not in ENDED


class FailoverController:
    def __init__(
        self,
        client: KubeClient,
        *,
        recorder: EventRecorder,
        site: SiteController,
        peer_client: Callable[[], KubeClient | None],
        services: Callable[[], Iterable[Body]],
        managed: Callable[[Resource], list[Body]],
        owned: Callable[[str, str], list[Body]],
    ) -> None:
        self._client, self._recorder, self._site = client, recorder, site
        self._peer_client, self._all_services, self._managed = peer_client, services, managed
        self._owned = owned
        self._bodies: dict[str, Body] = {}
        self._queue: WorkQueue[str] = WorkQueue(base_delay=RETRY_SECONDS / 2, max_delay=MAX_RETRY_SECONDS)
        self._announced: str | None = None  # the Failover whose handover this site announces
        self._restored: str | None = None  # announced again at start, not delivered by the watch since
        self._failback = triggers.HealthyClock()
        self._recommended: int | None = None  # the epoch a manual failover was last recommended at
        # The handover this site drives: its Promote step's tokens, by database Cluster here.
        self._promotions: dict[ClusterKey, str] = {}
        self._listeners: list[Callable[[], None]] = []

    def on_event(self, event_type: str | None, body: Body) -> None:
        name = body["metadata"]["name"]
        if event_type == "DELETED":
            self._bodies.pop(name, None)
            self._queue.forget(name)
            if name == self._announced:
                self._withdraw(f"Failover {name} was deleted")
            return
        self._bodies[name] = body
        if name == self._restored:
            self._restored = None
        self._queue.add(name)

    async def handover_in_flight(self) -> Handover | None:
        """The handover of a Failover executing here that is past its preconditions and still Running, as it
        was announced before this operator (re)started: the site announces it again at once."""
        for body in await self._client.list(FAILOVERS):
            try:
                failover = Failover.model_validate(body)
            except ValidationError:
                continue
            status = failover.status or FailoverStatus()
            if (status.phase, status.to_site) != (
                FailoverPhase.RUNNING,
                self._site.name,
            ) or status.to_epoch is None:
                continue
            if failover.spec.dry_run or next_step(status) in (None, StepName.CHECK_PRECONDITIONS):
                continue
            self._announced = self._restored = failover.metadata.name
            return Handover(status.to_epoch, self._site.name, failover.metadata.name)
        return None

    def _unconfirmed(self) -> None:
        """A restored handover whose Failover the watch has not delivered since (deleted meanwhile) would keep
        the source fenced for good: withdrawn."""
        if self._restored is not None and self._restored == self._announced:
            self._withdraw(f"Failover {self._restored} was not seen again since this operator started")

    async def run(self, site_settled: Any) -> None:
        """Plan nothing before this site knows its role and epoch."""
        await site_settled
        asyncio.get_running_loop().call_later(RESTORED_UNSEEN_SECONDS, self._unconfirmed)
        while True:
            name = await self._queue.get()
            try:
                await self._advance(name)
            except REMOTE_ERRORS as error:
                delay = self._queue.retry(name)
                log.warning("failover %s: %s; retrying in %.0fs", name, describe(error), delay)
            except Exception:  # one broken Failover must not stop the others
                delay = self._queue.retry(name)
                log.exception("failover %s failed unexpectedly; retrying in %.0fs", name, delay)
            else:
                self._queue.succeeded(name)
            finally:
                self._queue.done(name)

    def _services(self) -> list[Body]:
        return progress.moving(self._all_services())

    def _files_synced(self, namespace: str, name: str) -> datetime.datetime | None:
        return data.files_synced(self._owned(namespace, name))

    # --- one pass over one Failover -------------------------------------------------------------------------

    async def _advance(self, name: str) -> None:
        body = self._bodies.get(name)
        if body is None:
            return
        try:
            failover = Failover.model_validate(body)
        except ValidationError as error:  # the API server's schema makes this unlikely; never guess
            log.warning("failover %s is invalid, ignored: %s", name, error.errors()[0]["msg"])
            return
        status = failover.status or FailoverStatus()
        if status.phase in ENDED:
            return
        if not status.steps or next_step(status) is StepName.CHECK_PRECONDITIONS:
            status = await self._check_preconditions(body, failover, status)
            if status.phase is FailoverPhase.PENDING:  # the pair is settling: plan again shortly
                self._queue.add_after(name, SETTLE_POLL_SECONDS)
            if status.phase is not FailoverPhase.RUNNING:
                return
        step = next_step(status)
        assert step is not None  # a Running status has a step left
        outcome = await self._attempt(step, failover, status)
        now = _now()
        updated = record(status, step, outcome, now)
        if step is StepName.FENCE_SOURCE and outcome.state is StepState.SUCCEEDED:
            updated = _fenced(updated)
        if updated.phase is FailoverPhase.SUCCEEDED:
            updated = _completed(failover.spec.type, updated, now)
        await self._write(name, updated)
        await self._after(name, failover, step, outcome, updated)

    async def _attempt(self, step: StepName, failover: Failover, status: FailoverStatus) -> Outcome:
        """Take `step` (again: every action is idempotent) and judge how far it got."""
        name, site, epoch = failover.metadata.name, self._site.name, status.to_epoch or 0
        view = self._site.observation()
        if (later := progress.superseded(site, epoch, view)) is not None:
            return later
        self._announced = name
        self._site.announce(Handover(epoch, site, name))
        bodies = self._services()
        attempt = Attempt(
            name=name,
            type=failover.spec.type,
            site=site,
            source=status.from_site or "",
            epoch=epoch,
            view=view,
            services=[progress.parts(s) for s in bodies],
            bodies=bodies,
            promotion_tokens={
                (s.namespace, s.name): s.promotion_token for s in status.services if s.promotion_token
            },
            city_dns=city_dns(self._site.topology(), self._site.context().ingress_address),
        )
        return await BY_NAME[step].take(self, attempt)

    # --- what the steps use (`failover.steps.Handles`) ------------------------------------------------------

    @property
    def client(self) -> KubeClient:
        return self._client

    def peer_client(self) -> KubeClient | None:
        return self._peer_client()

    def managed(self, resource: Resource) -> list[Body]:
        return self._managed(resource)

    def promote(self, epoch: int, tokens: Mapping[ServiceKey, str]) -> None:
        """Claim `epoch` for this site; each database Cluster here is promoted with its service's token."""
        site = self._site.name
        self._set_promotions(
            {
                ClusterKey(ns, database_cluster(service, site)): token
                for (ns, service), token in tokens.items()
            }
        )
        self._site.promote(Claim(epoch, site))

    def promotion_tokens(self) -> Mapping[ClusterKey, str]:
        """The tokens the databases here are promoted with, while a Failover to this site promotes them."""
        return self._promotions

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever the promotion tokens change (the services render them)."""
        self._listeners.append(listener)

    def _set_promotions(self, promotions: dict[ClusterKey, str]) -> None:
        if promotions != self._promotions:
            self._promotions = promotions
            for listener in self._listeners:
                listener()

    async def _after(
        self, name: str, failover: Failover, step: StepName, outcome: Outcome, status: FailoverStatus
    ) -> None:
        """Events, metrics and the record at the Topology once a step or the Failover ends; else poll."""
        # Deleted since this pass read it: named by what was read of it.
        body = self._bodies.get(name) or failover.model_dump(mode="json", by_alias=True, exclude_none=True)
        if outcome.state is StepState.RUNNING:
            self._queue.add_after(name, POLL_SECONDS)
            return
        if step is StepName.FENCE_SOURCE and outcome.state is StepState.SUCCEEDED:
            await self._recorder.record(body, "Normal", "SiteFenced", outcome.message)
            await self._measured_fencing(body, failover.spec.type, status.fencing_seconds)
        if step is StepName.PROMOTE and outcome.state is StepState.SUCCEEDED:
            await self._recorder.record(body, "Normal", "SitePromoted", outcome.message)
        if status.phase is FailoverPhase.RUNNING:
            self._queue.add(name)
            return
        kind = str(failover.spec.type)
        FAILOVERS_TOTAL.labels(kind, str(status.phase)).inc()
        self._withdraw(f"Failover {name} ended {status.phase}")
        if status.phase is FailoverPhase.FAILED:
            await self._recorder.record(body, "Warning", "FailoverFailed", status.message or "")
            return
        if status.start_time and status.completion_time:
            FAILOVER_DURATION.labels(kind).set((status.completion_time - status.start_time).total_seconds())
        if status.rto_seconds is not None:
            FAILOVER_RTO.labels(kind).set(status.rto_seconds)
        if status.data_loss_window_seconds is not None:
            DATA_LOSS_WINDOW.labels(kind).set(status.data_loss_window_seconds)
        if status.fencing_seconds is not None:
            FAILOVER_FENCING.labels(kind).set(status.fencing_seconds)
        await self._recorder.record(body, "Normal", "FailoverCompleted", status.message or "")
        last = LastFailover(
            name=name,
            completion_time=status.completion_time,
            rto_seconds=status.rto_seconds,
            data_loss_window_seconds=status.data_loss_window_seconds,
        )
        patch = {"status": {"lastFailover": dump(last)}}
        await self._client.patch(TOPOLOGIES, TOPOLOGY_NAME, None, patch, "status")

    async def _measured_fencing(self, body: Body, kind: FailoverType, fencing: float | None) -> None:
        """A switchover measures how long the source takes to fence its data plane once it stops acting. An
        active site cut off from the witness stops acting a third of the Lease before the Lease lapses; when
        its fencing takes longer than that margin, this site, taking over from it, waits the difference on
        top (it records the measurement in the Topology status, which the site's Lease judgement reads)."""
        topology = self._site.topology()
        if kind is not FailoverType.SWITCHOVER or fencing is None or topology is None:
            return
        patch = {"status": {"peerFencingSeconds": fencing}}
        await self._client.patch(TOPOLOGIES, TOPOLOGY_NAME, None, patch, "status")
        lease = topology.spec.failover.lease_duration_seconds
        margin = lease * (1 - RENEW_DEADLINE)
        if fencing > margin:
            message = (
                f"fencing the source took {fencing:.1f}s, more than the {margin:.1f}s margin between an "
                f"active site ceasing to act and its Lease lapsing (a third of leaseDurationSeconds "
                f"{lease}): this site now waits {fencing:.1f}s beyond a lapsed Lease before taking over; "
                f"a leaseDurationSeconds of {3 * fencing:.0f}s or more at both sites would cover it"
            )
            await self._recorder.record(body, "Warning", "FencingSlowerThanMargin", message)

    def _withdraw(self, why: str) -> None:
        if self._announced is not None:
            log.info("handover %s withdrawn: %s", self._announced, why)
        self._announced = None
        self._set_promotions({})
        self._site.announce(None)

    async def _check_preconditions(
        self, body: Body, failover: Failover, previous: FailoverStatus
    ) -> FailoverStatus:
        """Plan the Failover; again on each pass while it waits for the pair to settle (`previous`)."""
        spec, now = failover.spec, _now().replace(microsecond=0)
        name = failover.metadata.name
        pair = self._site.pair()
        status = misplaced(spec.target_site, self._site.name, pair.sites, now)
        if status is None:
            running = [other for other, b in self._bodies.items() if other != name and _running(b)]
            facts = situation(pair, self._services(), now, running, files_synced=self._files_synced)
            topology = self._site.topology()
            lease = topology.spec.failover.lease_duration_seconds if topology else 0
            plan = make_plan(spec.type, spec.accept_data_loss, facts)
            status = planned(plan, spec.dry_run, now, previous.start_time, settle_seconds(lease))
            if not previous.steps:
                started = "FailoverPlanned" if spec.dry_run else "FailoverStarted"
                await self._recorder.record(
                    body, "Normal", started, f"{spec.type} to {spec.target_site}: {spec.reason}"
                )
        await self._write(name, status)
        if status.phase in ENDED:
            FAILOVERS_TOTAL.labels(str(spec.type), str(status.phase)).inc()
        if status.phase is FailoverPhase.FAILED:
            await self._recorder.record(body, "Warning", "FailoverFailed", status.message or "")
        return status

    async def _write(self, name: str, status: FailoverStatus) -> None:
        body = self._bodies.get(name)
        if body is None:
            return
        current = body.get("status") or {}
        new = dump(status)
        if new == current:
            return
        patch = {"status": merge_patch(current, new)}
        self._bodies[name] = await self._client.patch(FAILOVERS, name, None, patch, "status")

    # --- deciding by itself ------------------------------------------------------------------------------

    async def watch(self, site_settled: Any) -> None:
        """Automatic failover and failback: look twice a second, create a Failover when due."""
        await site_settled
        while True:
            topology = self._site.topology()
            try:
                if topology is not None:
                    await self._consider(topology)
            except REMOTE_ERRORS as error:
                log.warning("cannot create an automatic Failover: %s", describe(error))
            # It only reads what the site's loops keep current, so looking often costs nothing and shortens
            # the time from a lapsed witness Lease to the Failover.
            await asyncio.sleep(TRIGGER_POLL_SECONDS)

    async def _consider(self, topology: Topology) -> None:
        view = self._site.observation()
        services = list(self._services())
        running = [name for name, body in self._bodies.items() if _running(body)]
        self._site.report_readiness(
            readiness.automatic_failover_ready(
                self._site.name,
                view,
                topology,
                pair=self._site.pair(),
                services=services,
                files_synced=self._files_synced,
                now=_now(),
                running=running,
            )
        )
        if running:
            return
        healthy = triggers.caught_up(self._site.name, view, topology, services)
        due = triggers.automatic_failover(self._site.name, view, topology) or triggers.automatic_failback(
            self._site.name, topology, self._failback.held(healthy, time.monotonic())
        )
        if due is None:
            await self._recommend(triggers.failover_due(self._site.name, view, topology), view.state.epoch)
            return
        body = triggers.attempt(due, self._site.name, view.state.epoch + 1, self._bodies, _now())
        if body is None:
            return  # under way, succeeded, or failed too recently: the names are the epoch's
        try:
            await self._client.create(FAILOVERS, body)
        except ApiError as error:
            if error.status != 409:
                raise
            return
        log.warning("created Failover %s: %s", body["metadata"]["name"], due.reason)

    async def _recommend(self, due: triggers.Due | None, epoch: int) -> None:
        """Manual mode: say once per epoch what automatic mode would have done."""
        if due is None or self._recommended == epoch:
            return
        self._recommended = epoch
        topology: Body = {
            "apiVersion": TOPOLOGIES.api_version,
            "kind": TOPOLOGIES.kind,
            "metadata": {"name": TOPOLOGY_NAME},
        }
        message = (
            f"{due.reason.removeprefix('AutomaticFailover: ')}; failover mode is Manual: to take over, "
            f"kubectl sharedcore failover --to {self._site.name} --reason <incident>"
        )
        await self._recorder.record(topology, "Warning", "FailoverRecommended", message)


def _fenced(status: FailoverStatus) -> FailoverStatus:
    """The status with the time FenceSource took: how long fencing the source takes, measured."""
    step = next(s for s in status.steps if s.name is StepName.FENCE_SOURCE)
    if step.start_time is None or step.completion_time is None:
        return status
    seconds = round((step.completion_time - step.start_time).total_seconds(), 3)
    return status.model_copy(update={"fencing_seconds": seconds})


def _completed(failover_type: FailoverType, status: FailoverStatus, now: datetime.datetime) -> FailoverStatus:
    rto = progress.recovery_seconds(failover_type, status, now)
    services = [s.model_copy(update={"state": StepState.SUCCEEDED}) for s in status.services]
    summary = f"{status.from_site} → {status.to_site} at epoch {status.to_epoch}"
    loss = status.data_loss_window_seconds
    window = "unknown" if loss is None else f"{loss:.0f}s"
    recovery = "unknown" if rto is None else f"{rto}s"
    return status.model_copy(
        update={
            "rto_seconds": rto,
            "services": services,
            "message": f"{summary}: RTO {recovery}, data-loss window {window}",
        }
    )
