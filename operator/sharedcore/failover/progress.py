"""How far each step of a running Failover has got, judged purely from what the target site observes.

The controller gathers the observations (the pair, the source's and the target's data-plane objects, the
services' statuses) and records the `Outcome`; the actions themselves are the target's announcement and
promotion (`sites.controller`) and what the renderer makes of them at both sites:
- FenceSource: the source has fenced itself for the announced handover (its heartbeat says Fenced) and, with
  a witness, nobody holds the witness Lease any more (released, or lapsed). A failover whose source is gone
  cannot hear from it: the lapsed Lease is the proof; without a witness, its silence for a whole Lease (it
  fences itself after two thirds of one without hearing this site). Where the source can still be asked,
  also its databases report demoted and its DNS records are gone (a fence is a fence, not a decision).
- FinalSync (switchover): every file ReplicationSource at the source completed the manual sync named after
  the Failover, and every database Cluster there, demoted, published its demotion token.
- Promote: this site is Active at the new epoch, and every database Cluster here is the primary (promoted
  with the source's token, for a switchover).
- Redirect: every public name is published by this site's DNSEndpoint, and no longer by the source's; with
  the city's DNS servers named in the Topology, each of them answers every name with this site's address.
- Verify: every service reports Ready and Active at the new epoch from this site.
"""

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sharedcore import Body
from sharedcore.api import FailoverStatus, FailoverType, Role, StepName, StepState
from sharedcore.citydns import Answer
from sharedcore.failover.machine import Outcome
from sharedcore.failover.plan import listing
from sharedcore.failover.situation import enabled
from sharedcore.kube import conditions
from sharedcore.render import names
from sharedcore.sites.views import PairObservation

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class ServiceParts:
    """What a service has that a failover moves."""

    namespace: str
    name: str
    database: bool
    files: bool
    host: str | None  # its public name, when it has an ingress (and so a DNS record)

    @property
    def public(self) -> bool:
        return self.host is not None

    @property
    def key(self) -> Key:
        return self.namespace, self.name

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def parts(service: Body) -> ServiceParts:
    spec = service.get("spec") or {}
    return ServiceParts(
        namespace=service["metadata"]["namespace"],
        name=service["metadata"]["name"],
        database=enabled(spec, "database"),
        files=enabled(spec, "files"),
        host=(spec.get("ingress") or {}).get("host"),
    )


def moving(services: Iterable[Body]) -> list[Body]:
    """The services a Failover moves: not those on their way out (their objects may be gone already)."""
    return [s for s in services if not s["metadata"].get("deletionTimestamp")]


def by_key(objects: Iterable[Body]) -> dict[Key, Body]:
    return {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}


def _waiting_for(pending: list[str], what: str) -> Outcome:
    return Outcome.waiting(f"waiting for {what}: {listing(pending)}")


@dataclass(frozen=True)
class SourcePlane:
    """The source's database Clusters and DNSEndpoints, as listed at the source just now."""

    clusters: Mapping[Key, Body]
    records: Mapping[Key, Body]


def fence_source(
    failover_type: FailoverType,
    source: str,
    epoch: int,
    view: PairObservation,
    *,
    services: Iterable[ServiceParts] = (),
    there: SourcePlane | None = None,
) -> Outcome:
    """Whether the source can no longer act as Active: it fenced itself, or (a failover) it provably cannot
    act any more; and, where it can still be asked (`there`), its databases report demoted and its DNS
    records are gone: a site that stopped acting may still be writing until its data plane follows."""
    if failover_type is FailoverType.SWITCHOVER:
        outcome = _fence_for_switchover(source, epoch, view)
    else:
        outcome = _fence_for_failover(source, epoch, view)
    if outcome.state is not StepState.SUCCEEDED or there is None:
        return outcome
    pending = _still_serving(source, services, there)
    if pending:
        return _waiting_for(pending, f"{source}'s data plane to follow its fence")
    return Outcome.done(f"{outcome.message}; its databases are demoted and its DNS records withdrawn")


def _still_serving(source: str, services: Iterable[ServiceParts], there: SourcePlane) -> list[str]:
    pending = []
    for service in services:
        if service.database:
            name = names.database_cluster(service.name, source)
            cluster = there.clusters.get((service.namespace, name)) or {}
            replica = (cluster.get("spec") or {}).get("replica") or {}
            if cluster and replica.get("primary") in (None, replica.get("self", name)):
                pending.append(f"{service} database (still primary)")
            elif cluster and not (cluster.get("status") or {}).get("demotionToken"):
                pending.append(f"{service} database (demotion not reported yet)")
        if service.public and (service.namespace, names.ingress(service.name)) in there.records:
            pending.append(f"{service} DNS record")
    return pending


def _lease_free(epoch: int, view: PairObservation) -> bool:
    witness = view.witness
    return (
        witness is None or view.witness_lapsed or (witness.claim is not None and witness.claim.epoch >= epoch)
    )


def _says_fenced(view: PairObservation) -> bool:
    return view.peer_current and view.peer_role in {Role.FENCED, Role.STANDBY}


def _fence_for_failover(source: str, epoch: int, view: PairObservation) -> Outcome:
    witness = view.witness
    if witness is None:
        return _fence_without_witness(source, epoch, view)
    if not _lease_free(epoch, view):
        holder = witness.claim.active_site if witness.claim else source
        return Outcome.waiting(f"waiting for {holder}'s witness Lease to lapse or be released")
    return Outcome.done(f"{source} cannot act any more: nobody holds the witness Lease")


def _fence_without_witness(source: str, epoch: int, view: PairObservation) -> Outcome:
    if _says_fenced(view):
        return Outcome.done(f"{source} fenced itself for epoch {epoch}")
    if view.peer_current:
        return Outcome.waiting(f"waiting for {source} to fence itself for epoch {epoch}")
    silent = view.peer_silent_seconds
    if silent is None or silent < view.takeover_seconds:
        heard = "not heard from yet" if silent is None else f"silent for {silent:.0f}s"
        return Outcome.waiting(
            f"no witness: waiting until {source} has been silent for a whole Lease "
            f"({view.takeover_seconds:.0f}s; {heard}), by when it has fenced itself"
        )
    return Outcome.done(
        f"no witness: {source} has been silent for {silent:.0f}s, so it fenced itself (unless its "
        f"Topology accepts the risk of split brain); it stands by when it sees epoch {epoch}"
    )


def _fence_for_switchover(source: str, epoch: int, view: PairObservation) -> Outcome:
    if not view.peer_current:
        return Outcome.waiting(
            f"{source} does not answer: a switchover needs it (delete this Failover and create one of "
            "type Failover if it is gone)"
        )
    if not _says_fenced(view):
        return Outcome.waiting(f"waiting for {source} to fence itself for epoch {epoch}")
    if not _lease_free(epoch, view):
        return Outcome.waiting(f"waiting for {source} to release the witness Lease")
    return Outcome.done(f"{source} fenced itself and released the witness Lease")


def final_sync(
    failover: str,
    source: str,
    services: Iterable[ServiceParts],
    replication_sources: Mapping[Key, Body],
    clusters: Mapping[Key, Body],
) -> Outcome:
    """Whether the source pushed its last files and demoted its databases; once done, their tokens by
    service."""
    pending: list[str] = []
    tokens: dict[Key, str] = {}
    for service in services:
        if service.files:
            name = names.files_replication(service.name)
            status = (replication_sources.get((service.namespace, name)) or {}).get("status") or {}
            if status.get("lastManualSync") != failover:
                pending.append(f"{service} files")
        if service.database:
            cluster = names.database_cluster(service.name, source)
            token = ((clusters.get((service.namespace, cluster)) or {}).get("status") or {}).get(
                "demotionToken"
            )
            if token:
                tokens[service.key] = str(token)
            else:
                pending.append(f"{service} database demotion")
    if pending:
        return _waiting_for(pending, f"the final sync at {source}")
    return Outcome.done(f"files synced and {len(tokens)} databases demoted at {source}", tokens)


def promote(
    site: str,
    epoch: int,
    view: PairObservation,
    services: Iterable[ServiceParts],
    *,
    tokens: Mapping[Key, str],
    clusters: Mapping[Key, Body],
) -> Outcome:
    """Whether this site is Active at `epoch` and its databases are primaries."""
    state = view.state
    if (state.role, state.epoch) != (Role.ACTIVE, epoch):
        return Outcome.waiting(f"{site} is {state.role} at epoch {state.epoch}: {state.message}")
    pending = []
    for service in services:
        if not service.database:
            continue
        own = names.database_cluster(service.name, site)
        cluster = clusters.get((service.namespace, own)) or {}
        replica = (cluster.get("spec") or {}).get("replica") or {}
        token = tokens.get(service.key)
        promoted = replica.get("primary") == own and (
            token is None or (cluster.get("status") or {}).get("lastPromotionToken") == token
        )
        if not promoted:
            pending.append(str(service))
    if pending:
        return _waiting_for(pending, "database promotion")
    return Outcome.done(f"{site} is active at epoch {epoch}; its databases are primaries")


def redirect(
    site: str,
    source: str,
    services: Iterable[ServiceParts],
    here: Mapping[Key, Body],
    there: Mapping[Key, Body] | None,
) -> Outcome:
    """Whether every public name points here: published by this site, withdrawn at the source (`there`,
    None when the source cannot be asked)."""
    public = [s for s in services if s.public]
    missing = [str(s) for s in public if (s.namespace, names.ingress(s.name)) not in here]
    if missing:
        return _waiting_for(missing, f"DNS records at {site}")
    if there is not None:
        stale = [str(s) for s in public if (s.namespace, names.ingress(s.name)) in there]
        if stale:
            return _waiting_for(stale, f"{source} to withdraw its DNS records")
    withdrawn = "" if there is not None else f" ({source} cannot be asked to withdraw its own)"
    return Outcome.done(f"{len(public)} DNS records point at {site}{withdrawn}")


def city_dns_answers(
    site: str, address: str, services: Iterable[ServiceParts], answers: Mapping[tuple[str, str], str | Answer]
) -> Outcome:
    """Whether every city DNS server answers every public name with `address` alone: `answers` by (server,
    host), an Answer or why the server could not be asked."""
    wrong = []
    hosts = sorted({s.host for s in services if s.host})
    for (server, host), answer in sorted(answers.items()):
        if host in hosts and (not isinstance(answer, Answer) or answer.addresses != {address}):
            wrong.append(f"{host} at {server}: {answer}")
    if wrong:
        return _waiting_for(wrong, f"the city DNS to answer with {site}'s {address}")
    servers = len({server for server, _ in answers})
    return Outcome.done(f"{servers} city DNS servers answer {len(hosts)} names with {site}'s {address}")


def superseded(site: str, epoch: int, view: PairObservation) -> Outcome | None:
    """A later epoch than this Failover's is in force (another Failover moved on), or another site took this
    very epoch (a source whose target fell silent mid-handover takes the epoch it announced: `sites.state`):
    nothing left to do."""
    later = max(view.state.epoch, view.peer_claim.epoch if view.peer_claim else 0)
    if later > epoch:
        return Outcome.failed("Superseded", f"epoch {later} is in force, later than this Failover's {epoch}")
    witness = view.witness.claim if view.witness else None
    taken = next(
        (c for c in (view.peer_claim, witness) if c and c.epoch == epoch and c.active_site != site), None
    )
    if taken is not None:
        return Outcome.failed(
            "Superseded",
            f"{taken.active_site} took epoch {epoch} while {site} was silent during this Failover: create "
            "the Failover again",
        )
    return None


def verify(site: str, epoch: int, services: Iterable[Body]) -> Outcome:
    pending = []
    count = 0
    for service in services:
        count += 1
        status = service.get("status") or {}
        serving = (status.get("site"), status.get("role"), status.get("epoch")) == (
            site,
            str(Role.ACTIVE),
            epoch,
        )
        if not (serving and conditions.is_true(status.get("conditions"), "Ready")):
            pending.append(f"{service['metadata']['namespace']}/{service['metadata']['name']}")
    if pending:
        return _waiting_for(pending, f"services Ready and Active at {site}")
    return Outcome.done(f"{count} services Ready and Active at {site}, epoch {epoch}")


def recovery_seconds(
    failover_type: FailoverType, status: FailoverStatus, now: datetime.datetime
) -> float | None:
    """The RTO: from when the services stopped answering at the source until they all answered here. A
    switchover stops them as it fences the source; a failover's source stopped answering when it was last
    seen Active (not at the end of the time it may have written unseen: the data-loss window's reckoning)."""
    if failover_type is FailoverType.SWITCHOVER:
        start = next((s.start_time for s in status.steps if s.name is StepName.FENCE_SOURCE), None)
    else:
        start = status.source_last_active_time
    return None if start is None else round(max((now - start).total_seconds(), 0.0), 3)
