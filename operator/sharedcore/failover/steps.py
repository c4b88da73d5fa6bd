"""The steps of a Failover as a table: for each `StepName`, one `Step`, in the order they run.

A step has an action (idempotent: re-issued on every pass), an observation (the I/O that gathers what its
judgement needs) and a pure judgement (`failover.progress`), and says for which failover types it does not
apply and why (recorded as Skipped, for the audit trail). The executor (`failover.controller`) takes the
step `machine.next_step` names; CheckPreconditions is the plan itself, taken when the Failover is first seen
(`failover.preconditions`).

Adding a step: a `StepName` member, a `Step` here, at its place in `STEPS`, and its judgement in
`failover.progress` (tests/unit/test_failover_steps.py checks that every name has its step).
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from sharedcore import Body, citydns
from sharedcore.api import FailoverType, StepName, StepState, StepStatus, Topology
from sharedcore.failover import progress
from sharedcore.failover.machine import Outcome, ServiceKey
from sharedcore.kube.client import KubeClient
from sharedcore.kube.resources import CLUSTERS, DNS_ENDPOINTS, MANAGED_BY, REPLICATION_SOURCES, Resource
from sharedcore.sites.peers import REMOTE_ERRORS, describe
from sharedcore.sites.views import PairObservation

Seen = TypeVar("Seen")
CITY_DNS_TIMEOUT = 2.0


class Handles(Protocol):
    """What the executor lends a step for its I/O."""

    @property
    def client(self) -> KubeClient: ...

    def peer_client(self) -> KubeClient | None: ...

    def managed(self, resource: Resource) -> list[Body]:
        """This site's objects of `resource` that sharedcore manages, as its watch cache holds them (a
        step polled twice a second reads them there, not with a list of every one at the API server)."""

    def promote(self, epoch: int, tokens: Mapping[ServiceKey, str]) -> None:
        """Claim `epoch` for this site, and promote each database with its service's token."""


@dataclass(frozen=True)
class CityDnsCheck:
    """The city's DNS servers (as this site reaches them) and the address they must answer with: this
    site's ingress address."""

    servers: tuple[str, ...]
    address: str


def city_dns(topology: Topology | None, address: str | None) -> CityDnsCheck | None:
    dns = topology.spec.dns if topology else None
    return CityDnsCheck(tuple(dns.servers), address) if dns and address else None


@dataclass(frozen=True)
class Attempt:
    """One pass at a step: the Failover, as recorded, and the pair and the services as they are now."""

    name: str
    type: FailoverType
    site: str  # this site: the target
    source: str
    epoch: int  # the epoch this Failover makes this site active at
    view: PairObservation
    services: list[progress.ServiceParts]  # the services it moves
    bodies: list[Body]  # and their SharedServices, as last seen
    promotion_tokens: Mapping[ServiceKey, str] = field(default_factory=dict)  # recorded by FinalSync
    city_dns: CityDnsCheck | None = None  # what Redirect also waits for, with spec.dns in the Topology


def _nothing(_: Handles, __: Attempt) -> None:
    return None


@dataclass(frozen=True)
class Step(Generic[Seen]):
    name: StepName
    observe: Callable[[Handles, Attempt], Awaitable[Seen]]
    judge: Callable[[Attempt, Seen], Outcome]
    act: Callable[[Handles, Attempt], None] = _nothing
    skipped: Mapping[FailoverType, str] = field(default_factory=dict)  # where it does not apply, and why

    async def take(self, handles: Handles, attempt: Attempt) -> Outcome:
        self.act(handles, attempt)
        return self.judge(attempt, await self.observe(handles, attempt))


# --- observations -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unreachable:
    """The source could not be asked; why."""

    message: str


async def _source_plane(handles: Handles, _: Attempt) -> progress.SourcePlane | None:
    """The source's database Clusters and DNS records; None when it cannot be asked."""
    client = handles.peer_client()
    if client is None:
        return None
    try:
        clusters = await client.list(CLUSTERS, labels=MANAGED_BY)
        records = await client.list(DNS_ENDPOINTS, labels=MANAGED_BY)
    except REMOTE_ERRORS:
        return None  # a source that cannot be asked publishes nothing it could be asked to withdraw
    return progress.SourcePlane(progress.by_key(clusters), progress.by_key(records))


async def _final_sync_there(handles: Handles, attempt: Attempt) -> progress.SourcePlane | Unreachable:
    """The source's file ReplicationSources (as `records`) and database Clusters."""
    client = handles.peer_client()
    if client is None:
        return Unreachable(f"no way to reach {attempt.source} yet")
    try:
        sources = await client.list(REPLICATION_SOURCES, labels=MANAGED_BY)
        clusters = await client.list(CLUSTERS, labels=MANAGED_BY)
    except REMOTE_ERRORS as error:
        return Unreachable(f"cannot read the final sync at {attempt.source}: {describe(error)}")
    return progress.SourcePlane(progress.by_key(clusters), progress.by_key(sources))


async def _clusters_here(handles: Handles, _: Attempt) -> dict[progress.Key, Body]:
    return progress.by_key(handles.managed(CLUSTERS))


Answers = Mapping[tuple[str, str], citydns.Answer | str]  # (server, host) → its answer, or why none


@dataclass(frozen=True)
class Records:
    here: dict[progress.Key, Body]
    there: dict[progress.Key, Body] | None  # None: the source cannot be asked
    answers: Answers = field(default_factory=dict)  # the city DNS's, with spec.dns in the Topology


async def _records(handles: Handles, attempt: Attempt) -> Records:
    here = progress.by_key(handles.managed(DNS_ENDPOINTS))
    there = await _source_plane(handles, attempt)
    return Records(here, dict(there.records) if there else None, await _city_dns_answers(attempt))


async def _city_dns_answers(attempt: Attempt) -> Answers:
    """Every city DNS server asked for every public name (over TCP, at once)."""
    check = attempt.city_dns
    hosts = sorted({s.host for s in attempt.services if s.host})
    if check is None or not hosts:
        return {}
    asked = [(server, host) for server in check.servers for host in hosts]
    found = await asyncio.gather(*(_ask(server, host, check.address) for server, host in asked))
    return dict(zip(asked, found, strict=True))


async def _ask(server: str, host: str, address: str) -> citydns.Answer | str:
    try:
        return await citydns.ask(server, host, citydns.qtype_for(address), timeout=CITY_DNS_TIMEOUT)
    except citydns.DnsError as error:
        return str(error)


async def _nothing_more(_: Handles, __: Attempt) -> None:
    return None


# --- judgements ---------------------------------------------------------------------------------------------


def _fenced(attempt: Attempt, there: progress.SourcePlane | None) -> Outcome:
    return progress.fence_source(
        attempt.type, attempt.source, attempt.epoch, attempt.view, services=attempt.services, there=there
    )


def _synced(attempt: Attempt, there: progress.SourcePlane | Unreachable) -> Outcome:
    if isinstance(there, Unreachable):
        return Outcome.waiting(there.message)
    return progress.final_sync(attempt.name, attempt.source, attempt.services, there.records, there.clusters)


def _promoted(attempt: Attempt, clusters: dict[progress.Key, Body]) -> Outcome:
    return progress.promote(
        attempt.site,
        attempt.epoch,
        attempt.view,
        attempt.services,
        tokens=attempt.promotion_tokens,
        clusters=clusters,
    )


def _redirected(attempt: Attempt, records: Records) -> Outcome:
    published = progress.redirect(attempt.site, attempt.source, attempt.services, records.here, records.there)
    if published.state is not StepState.SUCCEEDED or attempt.city_dns is None or not records.answers:
        return published
    answered = progress.city_dns_answers(
        attempt.site, attempt.city_dns.address, attempt.services, records.answers
    )
    if answered.state is not StepState.SUCCEEDED:
        return answered
    return Outcome.done(f"{published.message}; {answered.message}")


def _verified(attempt: Attempt, _: None) -> Outcome:
    return progress.verify(attempt.site, attempt.epoch, attempt.bodies)


# --- actions ------------------------------------------------------------------------------------------------


def _promote(handles: Handles, attempt: Attempt) -> None:
    handles.promote(attempt.epoch, attempt.promotion_tokens)


STEPS: tuple[Step[Any], ...] = (
    Step(StepName.FENCE_SOURCE, _source_plane, _fenced),
    Step(
        StepName.FINAL_SYNC,
        _final_sync_there,
        _synced,
        skipped={FailoverType.FAILOVER: "not applicable to a failover: the source is not there to sync from"},
    ),
    Step(StepName.PROMOTE, _clusters_here, _promoted, act=_promote),
    Step(StepName.REDIRECT, _records, _redirected),
    Step(StepName.VERIFY, _nothing_more, _verified),
)
PLANNING = StepName.CHECK_PRECONDITIONS  # the first step of every Failover: the plan
BY_NAME: dict[StepName, Step[Any]] = {step.name: step for step in STEPS}


def initial_steps(failover_type: FailoverType) -> list[StepStatus]:
    """Every step of a Failover of this type, Pending, or Skipped with the step's own reason."""
    statuses = [StepStatus(name=PLANNING, state=StepState.PENDING)]
    for step in STEPS:
        why = step.skipped.get(failover_type)
        state = StepState.PENDING if why is None else StepState.SKIPPED
        statuses.append(StepStatus(name=step.name, state=state, message=why))
    return statuses
