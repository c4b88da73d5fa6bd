"""Reconcile one SharedService at this site: render, converge with server-side apply, prune, report.

Level-based: the same function runs for creation, updates, watch events of owned objects and periodic resyncs.
It writes only what differs from the cache, so an unchanged service costs the API server nothing.
"""

import asyncio
import datetime
import logging
import time
from collections.abc import Sequence

from pydantic import ValidationError

from sharedcore import API_GROUP, Body
from sharedcore.api import DeletionPolicy, Role, SharedService, SharedServiceSpec
from sharedcore.kube import conditions
from sharedcore.kube.cache import ObjectKey, key_of
from sharedcore.kube.client import ApiError, namespace_terminating
from sharedcore.kube.patches import merge_patch
from sharedcore.kube.resources import CLUSTERS, MANAGED_BY, SECRETS, SHARED_SERVICES, for_object
from sharedcore.kube.times import rfc3339
from sharedcore.metrics import FEASIBILITY, OBJECT_WRITES, PARALLEL_RUN, REPLICATION, SERVICES, STORAGE
from sharedcore.render import KIND_ORDER, SiteContext, names, render
from sharedcore.replication import (
    admission,
    capacity,
    content,
    credentials,
    data,
    demotion,
    diverged,
    feasibility,
    retained,
)
from sharedcore.services import parallel, rebuild, role_first, status
from sharedcore.services.drift import drifted_field
from sharedcore.services.runtime import Runtime, ServiceKey

log = logging.getLogger(__name__)
ORPHANED_LABEL = f"{API_GROUP}/orphaned"
DATA_KINDS = frozenset({"PersistentVolumeClaim", "Cluster"})  # what deletionPolicy: Retain keeps
STALLED_RETRY_SECONDS = 10.0
DEMOTION_RECHECK_SECONDS = 5.0  # a stuck demotion changes nothing that a watch would see
# The model's, for a deleted service whose stored spec (not necessarily valid any more) leaves it out.
DEFAULT_DELETION_POLICY = SharedServiceSpec.model_fields["deletion_policy"].default


def now() -> str:
    return rfc3339()


def owner_reference(service: Body) -> Body:
    metadata = service["metadata"]
    return {
        "apiVersion": service["apiVersion"],
        "kind": service["kind"],
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned(obj: Body, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences", []))


def _kept_with(site: SiteContext, policy: DeletionPolicy, because: str, service: Body) -> Body | None:
    """The metadata that data objects are kept with, or None when they go: only deletionPolicy Delete at the
    active site deletes data. At any other site the data is the copy that must outlive mistakes (or a
    GitOps prune, or a CRD reinstall) at the active site, so it is kept, as a retained copy."""
    if site.role is Role.ACTIVE:
        return {"labels": {ORPHANED_LABEL: "true"}} if policy == DeletionPolicy.RETAIN else None
    where = f"{because} at {site.name} ({site.role}, epoch {site.epoch}): a copy is kept whatever its policy"
    marks = retained.marks(where, datetime.datetime.now(datetime.UTC), content.origin_uid(service))
    return {"labels": {ORPHANED_LABEL: "true", **marks["labels"]}, "annotations": marks["annotations"]}


def assess_capacity(rt: Runtime) -> capacity.Admission | None:
    """Which services fit at both sites, reported in the Topology status and the metrics; None when no site
    declares a capacity. A service counts as rendered once this site has reported it, not refused."""
    topology = rt.topology()
    limits = capacity.capacities(topology.sites) if topology else {}
    if topology is None or not limits:
        STORAGE.set({}, 0, [])
        rt.report_capacity([])
        return None
    here = rt.site().name
    claims = [
        capacity.Claim(
            key,
            capacity.storage_bytes(body.get("spec") or {}),
            str(body["metadata"].get("creationTimestamp", "")),
            _rendered_here(body, here),
        )
        for key, body in rt.services.items()
        if not body["metadata"].get("deletionTimestamp")
    ]
    admitted = capacity.admit(claims, limits)
    STORAGE.set(limits, admitted.committed, [site.name for site in topology.sites])
    rt.report_capacity(capacity.report(admitted, topology.sites))
    return admitted


def _rendered_here(body: Body, here: str) -> bool:
    current = body.get("status") or {}
    stalled = conditions.find(current.get("conditions"), "Stalled") or {}
    return current.get("site") == here and stalled.get("reason") != "CapacityExceeded"


def _feasibility(rt: Runtime, service: SharedService, desired: list[Body]) -> feasibility.Feasibility | None:
    """ReplicationFeasible where the Topology declares links (the files are measured at the active site)."""
    topology = rt.topology()
    if topology is None:
        return None
    source = next((rt.cache.get(key_of(o)) for o in desired if o["kind"] == "ReplicationSource"), None)
    return feasibility.assess(service, topology.links, source)


def _parallel_run(
    rt: Runtime, service: SharedService, desired: list[Body], site: SiteContext
) -> parallel.Assessment | None:
    """At the active site, what the parallel run's reconciliation job last wrote, judged."""
    run = service.spec.parallel_run
    if run is None or site.role is not Role.ACTIVE:
        return None
    results = names.parallel_run_results(names.base(service.metadata.name))
    found = next(
        (
            rt.cache.get(key_of(o))
            for o in desired
            if (o["kind"], o["metadata"]["name"]) == ("ConfigMap", results)
        ),
        None,
    )
    data = (found or {}).get("data") or {}
    return parallel.assess(run, data, datetime.datetime.now(datetime.UTC).date())


def _over_capacity(rt: Runtime, key: ServiceKey) -> status.Blocker | None:
    """A service that does not fit at both sites is not rendered."""
    admitted = assess_capacity(rt)
    refusal = admitted.refused.get(key) if admitted else None
    return status.Blocker("CapacityExceeded", refusal) if refusal else None


def _refused_copy(rt: Runtime, body: Body, site: SiteContext) -> status.Blocker | None:
    """A copy from the other site that this site's allow-lists refuse is not rendered here."""
    origin = (body["metadata"].get("annotations") or {}).get(content.ORIGIN_SITE)
    refused = admission.refusal(body, rt.policy()) if origin not in (None, site.name) else None
    return status.Blocker("NotAllowed", f"copied from {origin}, but {refused}") if refused else None


def _same_origin(kept: Body, service: Body) -> bool:
    """Whether `service` is a copy of the very object whose copy left `kept` behind: the same data."""
    origin = (kept["metadata"].get("annotations") or {}).get(retained.ORIGIN)
    return origin is not None and origin == content.origin_uid(service)


async def _adopt(rt: Runtime, service: Body, kept: Body) -> Body:
    meta = kept["metadata"]
    unmarked = retained.unmarks()
    labels = {**unmarked["labels"], ORPHANED_LABEL: None}
    patch = {"metadata": {**unmarked, "labels": labels, "ownerReferences": [owner_reference(service)]}}
    adopted = await rt.client.patch(for_object(kept), meta["name"], meta["namespace"], patch)
    rt.cache.upsert(adopted)
    message = f"took back the retained copy {kept['kind']} {meta['name']}: a copy of the same object"
    await rt.recorder.record(service, "Normal", "CopyAdopted", message)
    return adopted


def _in_the_way(kept: Body, service: str) -> status.Blocker:
    """A retained copy is never adopted silently: its data may be all that is left of an earlier service."""
    meta = kept["metadata"]
    because = (meta.get("annotations") or {}).get(retained.BECAUSE)
    return status.Blocker(
        "RetainedCopyInTheWay",
        f"{kept['kind']} {meta['name']} is a retained copy ({because}): delete it with "
        f"`kubectl sharedcore release-copy {meta['namespace']}/{service} --confirm`, or reuse it by removing "
        f"its label {retained.LABEL}",
    )


def _role_unknown(site: SiteContext) -> status.Blocker | None:
    """A site fenced without any pair to render for (no Topology, no remembered pair, no --single-site)
    applies nothing: rendered without a peer, a database would be a primary."""
    if site.role is Role.FENCED and site.peer is None:
        message = f"site {site.name} does not know its role or its peer: see its Topology and Events"
        return status.Blocker("SiteRoleUnknown", message)
    return None


async def _exists(rt: Runtime, namespace: str, name: str) -> bool:
    """Whether a Secret exists here: seen by the watch, or else (not seen yet, or deleted) as read now."""
    return (namespace, name) in rt.secrets or await rt.client.get(SECRETS, name, namespace) is not None


async def _missing_references(rt: Runtime, service: SharedService) -> status.Blocker | None:
    """Secrets the rendered objects depend on but nobody created yet (checked on every pass, from the watch
    where it saw them: a read per pass and service cost an idle site requests in proportion to them)."""
    ingress = service.spec.ingress
    if ingress and ingress.tls_secret_name:
        namespace = service.metadata.namespace or ""
        if not await _exists(rt, namespace, ingress.tls_secret_name):
            return status.Blocker(
                "TLSSecretNotFound",
                f"Secret {namespace}/{ingress.tls_secret_name} (spec.ingress.tlsSecretName) does not exist",
            )
    return None


async def _provision_credentials(
    rt: Runtime, key: ServiceKey, service: SharedService, site: SiteContext
) -> None:
    """At the active site, create the database's CAs and application credentials that do not exist yet
    (once per operator run and service: afterwards only replication and people touch them)."""
    if site.role is not Role.ACTIVE or key in rt.provisioned:
        return
    for credential in credentials.needed(service):
        if await _exists(rt, key[0], credential.name):
            continue
        try:
            await rt.client.create(SECRETS, credentials.secret(service, credential))
        except ApiError as error:
            if error.status != 409:  # made meanwhile, by a copy or a person: theirs stays
                raise
            continue
        log.info("created Secret %s/%s for %s", key[0], credential.name, key[1])
        OBJECT_WRITES.labels("Secret", "provision").inc()
    rt.provisioned.add(key)


async def _peer_cluster(rt: Runtime, namespace: str, name: str) -> Body | None:
    """The peer's database Cluster, or None when it cannot be read (the peer unreachable, say). Listed (the
    peer identity may list, not get) by name: not every Cluster of the namespace across the link, for each
    service."""
    client = rt.peer()
    if client is None:
        return None
    try:
        clusters = await client.list(CLUSTERS, namespace, labels=MANAGED_BY, fields={"metadata.name": name})
    except (ApiError, OSError, TimeoutError):
        return None
    return next((c for c in clusters if c["metadata"]["name"] == name), None)


async def _claims_left(rt: Runtime, cluster: Body) -> status.Blocker | None:
    """A Cluster made again after a rebuild waits for the old one's claims to go (services.rebuild)."""
    meta = cluster["metadata"]
    left = await rebuild.leftovers(rt, meta["namespace"], meta["name"])
    if not left:
        return None
    return status.Blocker(
        "DatabaseRebuilding", f"waiting for the diverged Cluster's claims to go: {', '.join(left)}"
    )


async def _diverged_database(
    rt: Runtime, body: Body, desired: list[Body], site: SiteContext
) -> status.Blocker | None:
    """At a standby, a database that was a primary here and cannot follow the new one is copied anew, its
    volumes kept (services.rebuild); nothing of the service is applied while that is undecided or under way,
    so the labels that tell it (the role and epoch it was rendered for) stay as they are."""
    own = next((obj for obj in desired if obj["kind"] == "Cluster"), None)
    live = rt.cache.get(key_of(own)) if own else None
    if own is None or live is None:
        return await _claims_left(rt, own) if own and site.role is Role.STANDBY else None
    meta = live["metadata"]
    if meta.get("deletionTimestamp"):
        return status.Blocker("DatabaseRebuilding", f"waiting for the diverged Cluster {meta['name']} to go")
    verdict, why = diverged.verdict(live, None, site.role, site.epoch)
    if verdict is diverged.Verdict.FOLLOWS:
        return None
    source = own.get("spec", {}).get("replica", {}).get("source", "")  # the peer's Cluster
    peer = await _peer_cluster(rt, meta["namespace"], source)
    verdict, why = diverged.verdict(live, peer, site.role, site.epoch)
    if verdict is diverged.Verdict.FOLLOWS:
        return None
    if verdict is diverged.Verdict.UNKNOWN:
        return status.Blocker("DatabaseDivergenceUnknown", f"cannot tell yet whether it diverged: {why}")
    kept = await rebuild.rebuild(rt, body, live, why)
    kept_as = ", ".join(kept) or "nothing"
    return status.Blocker("DatabaseRebuilding", f"{why}: copying it anew, its old volumes kept as {kept_as}")


async def _demotion(rt: Runtime, body: Body, desired: list[Body], site: SiteContext) -> status.Blocker | None:
    """A database CloudNativePG is demoting (replication.demotion) keeps its replica role meanwhile (its
    webhook refuses a change); a demotion that stands still is moved on."""
    own = next((obj for obj in desired if obj["kind"] == "Cluster"), None)
    live = rt.cache.get(key_of(own)) if own else None
    if own is None or live is None or not demotion.in_progress(live):
        if live is not None:
            rt.demoting.pop(live["metadata"]["uid"], None)
        return None
    meta = live["metadata"]
    since = rt.demoting.setdefault(meta["uid"], time.monotonic())
    action = demotion.step(live, stuck_for=time.monotonic() - since, active=site.role is Role.ACTIVE)
    if action in _DEMOTION_STEPS:
        await _move_demotion_on(rt, body, live, action)
    if not demotion.changes_role(own, live):
        return None
    wanted = "a primary" if demotion.is_primary(own) else "a replica"
    return status.Blocker(
        "DatabaseDemotionInProgress",
        f"CloudNativePG is demoting Cluster {meta['name']}; it is made {wanted} once that ends",
    )


async def _move_demotion_on(rt: Runtime, body: Body, live: Body, action: demotion.Step) -> None:
    meta = live["metadata"]
    subresource, patch = demotion.write(action, live, now())
    try:
        written = await rt.client.patch(CLUSTERS, meta["name"], meta["namespace"], patch, subresource)
    except ApiError as error:
        if error.status != 409:  # changed meanwhile: the next look decides again
            raise
        return
    rt.cache.upsert(written)
    rt.demoting[meta["uid"]] = time.monotonic()
    OBJECT_WRITES.labels("Cluster", "demotion").inc()
    severity, reason, message = _DEMOTION_STEPS[action]
    await rt.recorder.record(body, severity, reason, f"Cluster {meta['name']}: {message}")


_STUCK = f"CloudNativePG's demotion stood still {demotion.STUCK_SECONDS:.0f} s"
_DEMOTION_STEPS = {
    demotion.Step.REPORT: (
        "Warning",
        "DatabaseDemotionStuck",
        f"{_STUCK}, waiting for a report its instance made before the site was lost (the instance is no "
        "longer a primary): reported it",
    ),
    demotion.Step.UNFENCE: (
        "Warning",
        "DatabaseDemotionStuck",
        f"{_STUCK} (its instance stopped uncleanly in it): lifted its fence so PostgreSQL recovers; it is "
        f"fenced again in {demotion.REFENCE_SECONDS:.0f} s",
    ),
    demotion.Step.REFENCE: (
        "Normal",
        "DatabaseDemotionResumed",
        "fenced again: PostgreSQL shuts down cleanly, and the demotion can end",
    ),
}


async def _role_first(rt: Runtime, body: Body, desired: list[Body]) -> bool:
    """Write what a Failover waits for, alone (services.role_first); whether anything was written."""
    meta = body["metadata"]
    owned = [o for o in rt.cache.owned_by(meta["namespace"], meta["name"]) if _owned(o, meta["uid"])]
    wave, stale = role_first.first(desired, rt.cache.get, owned, lambda obj, live: _drift(rt, obj, live))
    if not wave:
        return False
    repaired: list[str] = []
    blocker, removed = await asyncio.gather(
        _apply_wave(rt, wave, repaired), _remove(rt, stale, meta["uid"], None, "prune")
    )
    await _repaired(rt, body, repaired)
    await _pruned(rt, body, removed)
    return blocker is None  # a refusal: the full pass meets it again and reports it


async def _apply_all(rt: Runtime, body: Body, desired: list[Body]) -> status.Blocker | None:
    """Apply what drifted, in dependency order; a refusal by the API server stalls the service.

    What drifted goes out in waves, each at once: a wave ends after the kind in which an object is created,
    so that what others refer to exists first; updates of objects that exist already need no order (a
    promotion changes the database, the Deployments and the site ConfigMap of a service in one round trip)."""
    repaired: list[str] = []
    wave: list[tuple[Body, str]] = []
    creating = False
    for obj in desired:
        if creating and wave and obj["kind"] != wave[-1][0]["kind"]:
            if blocker := await _apply_wave(rt, wave, repaired):
                return blocker
            wave, creating = [], False
        key = key_of(obj)
        live = rt.cache.get(key)
        if live is not None and retained.is_retained(live):
            if not _same_origin(live, body):
                return _in_the_way(live, body["metadata"]["name"])
            live = await _adopt(rt, body, live)
        drift = _drift(rt, obj, live)
        if drift is None:
            continue
        wave.append((obj, drift))
        creating = creating or live is None
    if blocker := await _apply_wave(rt, wave, repaired):
        return blocker
    await _repaired(rt, body, repaired)
    return None


def _drift(rt: Runtime, obj: Body, live: Body | None) -> str | None:
    """Where `live` departs from `obj` (`drift.drifted_field`), without comparing them field by field when
    neither changed since they were last found in sync: every watch event of any of a service's objects (a
    Deployment's status, say) reconciles the whole service again, its other objects unchanged."""
    key = key_of(obj)
    version = live["metadata"].get("resourceVersion") if live is not None else None
    if version is not None and rt.in_sync.get(key) == version and rt.applied.get(key) == obj:
        return None
    drift = drifted_field(obj, live)
    if drift is None and version is not None:
        rt.applied[key], rt.in_sync[key] = obj, version
    return drift


async def _repaired(rt: Runtime, body: Body, repaired: list[str]) -> None:
    if repaired:
        await rt.recorder.record(body, "Normal", "DriftRepaired", "restored " + "; ".join(repaired))


async def _pruned(rt: Runtime, body: Body, removed: list[str]) -> None:
    if removed:
        message = "removed what is no longer rendered: " + ", ".join(removed)
        await rt.recorder.record(body, "Normal", "Pruned", message)


async def _apply_wave(
    rt: Runtime, wave: list[tuple[Body, str]], repaired: list[str]
) -> status.Blocker | None:
    """Apply every object of a wave at once; the first refusal (in apply order) stalls the service, the first
    other failure is raised once all have answered."""
    outcomes = await asyncio.gather(
        *(_apply_one(rt, obj, drift) for obj, drift in wave), return_exceptions=True
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, status.Blocker):
            return outcome
        if outcome is not None:
            repaired.append(outcome)
    return None


async def _apply_one(rt: Runtime, obj: Body, drift: str) -> status.Blocker | str | None:
    """Apply one drifted object; what a person changed in it (a repair), if that is what it was."""
    key = key_of(obj)
    by_hand = rt.applied.get(key) == obj  # we applied this very body before: someone changed it since
    try:
        rt.cache.upsert(await rt.client.apply(obj))
    except ApiError as error:
        if error.status == 404:
            return status.Blocker(
                "MissingDependency",
                f"{obj['apiVersion']} {obj['kind']} is not served here: is its operator "
                f"installed? ({error.message})",
            )
        if error.status in (400, 403, 422) and not namespace_terminating(error):
            return status.Blocker(
                "ApplyRejected", f"{obj['kind']} {obj['metadata']['name']}: {error.message}"
            )
        raise
    rt.applied[key] = obj
    OBJECT_WRITES.labels(obj["kind"], "drift" if by_hand else "render").inc()
    if by_hand:
        return f"{obj['kind']} {obj['metadata']['name']} ({'deleted' if drift == '(missing)' else drift})"
    return None


async def _release(rt: Runtime, obj: Body, uid: str, kept_with: Body) -> None:
    """Keep a data object but cut it loose from the service, labelled so people can find and reclaim it."""
    refs = [ref for ref in obj["metadata"].get("ownerReferences", []) if ref.get("uid") != uid]
    patch = {"metadata": {"ownerReferences": refs or None, **kept_with}}
    meta = obj["metadata"]
    try:
        released = await rt.client.patch(for_object(obj), meta["name"], meta.get("namespace"), patch)
    except ApiError as error:
        if error.status != 404:
            raise
        rt.cache.remove(obj)  # gone already (its namespace is being deleted, say): nothing left to keep
        return
    rt.cache.upsert(released)
    OBJECT_WRITES.labels(obj["kind"], "orphan").inc()


async def _remove(
    rt: Runtime, objects: list[Body], uid: str, kept_with: Body | None, reason: str
) -> list[str]:
    """Delete objects (release data ones, when `kept_with` says how), last-created first; returns what was
    removed."""
    removed = []
    for obj in sorted(
        objects, key=lambda o: KIND_ORDER.index(o["kind"]) if o["kind"] in KIND_ORDER else 0, reverse=True
    ):
        meta = obj["metadata"]
        if kept_with is not None and obj["kind"] in DATA_KINDS:
            if not kept_with["labels"].items() <= (meta.get("labels") or {}).items():
                await _release(rt, obj, uid, kept_with)
            continue
        await rt.client.delete(for_object(obj), meta["name"], meta.get("namespace"))
        rt.cache.remove(obj)
        rt.applied.pop(key_of(obj), None)
        rt.in_sync.pop(key_of(obj), None)
        OBJECT_WRITES.labels(obj["kind"], reason).inc()
        removed.append(f"{obj['kind']} {meta['name']}")
    return removed


async def _prune(
    rt: Runtime, body: Body, desired: list[Body], site: SiteContext, policy: DeletionPolicy
) -> None:
    wanted: set[ObjectKey] = {key_of(obj) for obj in desired}
    meta = body["metadata"]
    kept_with = _kept_with(
        site, policy, f"no longer rendered for SharedService {meta['namespace']}/{meta['name']}", body
    )
    stale = [
        obj
        for obj in rt.cache.owned_by(meta["namespace"], meta["name"])
        if key_of(obj) not in wanted and _owned(obj, meta["uid"])
    ]
    await _pruned(rt, body, await _remove(rt, stale, meta["uid"], kept_with, "prune"))


async def _write_status(rt: Runtime, body: Body, new: Body) -> None:
    current = body.get("status") or {}
    if status.differs(current, new):
        meta = body["metadata"]
        patch = {"status": merge_patch(current, new)}  # also removes what is no longer reported
        updated = await rt.client.patch(SHARED_SERVICES, meta["name"], meta["namespace"], patch, "status")
        rt.services[(meta["namespace"], meta["name"])] = updated


async def _announce(rt: Runtime, body: Body, new: Body) -> None:
    """Events for condition flips only: Ready gained or lost, Stalled entered."""
    old = body.get("status", {}).get("conditions")
    now_ready = conditions.is_true(new["conditions"], "Ready")
    if now_ready != conditions.is_true(old, "Ready") and (old or now_ready):
        ready = conditions.find(new["conditions"], "Ready") or {}
        await rt.recorder.record(
            body,
            "Normal" if now_ready else "Warning",
            "Ready" if now_ready else "NotReady",
            str(ready.get("message")),
        )
    stalled = conditions.find(new["conditions"], "Stalled") or {}
    if stalled.get("status") == "True" and not conditions.is_true(old, "Stalled"):
        await rt.recorder.record(body, "Warning", str(stalled["reason"]), str(stalled["message"]))


async def _parse(rt: Runtime, body: Body, site: SiteContext) -> SharedService | None:
    """The model of the service, or None after reporting why the stored object is unusable."""
    try:
        return SharedService.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        blocker = status.Blocker("InvalidSpec", f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
        unknown = conditions.Want(data.CONDITION, None, "InvalidSpec", "the spec cannot be read")
        await _report(rt, body, site, [], blocker, paused=False, replication=unknown)
        return None


async def reconcile(rt: Runtime, key: ServiceKey) -> float | None:
    """Converge one service; returns seconds until it wants another look (None: only on change/resync)."""
    try:
        return await _reconcile(rt, key)
    except ApiError as error:
        if namespace_terminating(error):
            return None  # the service goes with its namespace; its deletion event follows
        raise


async def _reconcile(rt: Runtime, key: ServiceKey) -> float | None:
    body = rt.services.get(key)
    if body is None or body["metadata"].get("deletionTimestamp") or key in rt.deleting:
        return None
    site = rt.site()
    service = await _parse(rt, body, site)
    if service is None:
        return None
    spec = service.spec
    desired = render(service, site)
    for obj in desired:
        obj["metadata"]["ownerReferences"] = [owner_reference(body)]
    blocker = _refused_copy(rt, body, site) or _over_capacity(rt, key)
    if not spec.paused and blocker is None:
        blocker = _role_unknown(site) or await _missing_references(rt, service)
        if blocker is None:
            await _provision_credentials(rt, key, service, site)
            blocker = await _diverged_database(rt, body, desired, site)
            blocker = blocker or await _demotion(rt, body, desired, site)
            if blocker is None and await _role_first(rt, body, desired):
                rt.queue.add(key)  # the rest of this pass after every other service's first writes
                return None
            blocker = blocker or await _apply_all(rt, body, desired)
        if blocker is None:
            await _prune(rt, body, desired, site, spec.deletion_policy)
    refused = admission.refusal(body, rt.policy()) if site.role is Role.ACTIVE else None
    replication = data.assess(
        service,
        site,
        desired,
        live=rt.cache.get,
        lag=rt.lag,
        now=datetime.datetime.now(datetime.UTC),
        refused=refused,
    )
    feasible = _feasibility(rt, service, desired)
    run = _parallel_run(rt, service, desired, site)
    new = await _report(
        rt,
        body,
        site,
        status.components(desired, rt.cache.get),
        blocker,
        paused=spec.paused,
        replication=replication.condition,
        replication_status=replication.status,
        extra=[c.condition for c in (feasible, run) if c],
        parallel_run=run.status if run else None,
    )
    ready = conditions.is_true(new["conditions"], "Ready")
    SERVICES.set(
        *key,
        platform=spec.platform,
        version=spec.version,
        role=site.role,
        ready=ready,
        rpo=spec.objectives.rpo_seconds,
    )
    REPLICATION.set(*key, {s.kind: (s.complete_at, s.lag) for s in replication.series})
    FEASIBILITY.set(*key, (feasible.feasible, feasible.initial_copy_seconds) if feasible else None)
    PARALLEL_RUN.set(*key, (run.days_left, run.previous_up, run.missing) if run else None)
    delays = [
        STALLED_RETRY_SECONDS if blocker else None,
        DEMOTION_RECHECK_SECONDS if _demoting(rt, desired) else None,
        replication.recheck_after,
    ]
    return min((delay for delay in delays if delay is not None), default=None)


def _demoting(rt: Runtime, desired: list[Body]) -> bool:
    return any(
        demotion.in_progress(live)
        for obj in desired
        if obj["kind"] == "Cluster" and (live := rt.cache.get(key_of(obj))) is not None
    )


async def _report(
    rt: Runtime,
    body: Body,
    site: SiteContext,
    rows: list[Body],
    blocker: status.Blocker | None,
    *,
    paused: bool,
    replication: conditions.Want,
    replication_status: Body | None = None,
    extra: Sequence[conditions.Want] = (),
    parallel_run: Body | None = None,
) -> Body:
    new = status.build(
        body,
        site,
        rows,
        blocker,
        paused=paused,
        replication=replication,
        replication_status=replication_status,
        extra=extra,
        parallel_run=parallel_run,
        now=now(),
    )
    await _announce(rt, body, new)
    await _write_status(rt, body, new)
    return new


async def finalize(rt: Runtime, body: Body) -> None:
    """On deletion: remove what the service rendered, traffic first; keep data unless the policy is Delete
    and this site is the active one."""
    meta = body["metadata"]
    policy = DeletionPolicy((body.get("spec") or {}).get("deletionPolicy", DEFAULT_DELETION_POLICY))
    kept_with = _kept_with(
        rt.site(), policy, f"SharedService {meta['namespace']}/{meta['name']} deleted", body
    )
    retain = kept_with is not None
    owned = [obj for obj in rt.cache.owned_by(meta["namespace"], meta["name"]) if _owned(obj, meta["uid"])]
    removed = await _remove(rt, owned, meta["uid"], kept_with, "delete")
    copies = [f"{o['kind']} {o['metadata']['name']}" for o in owned if o["kind"] in DATA_KINDS]
    if copies and kept_with and retained.LABEL in kept_with["labels"]:
        message = (
            f"kept as a retained copy: {', '.join(copies)}; delete it here with `kubectl sharedcore "
            f"release-copy {meta['namespace']}/{meta['name']} --confirm`"
        )
        await rt.recorder.record(body, "Normal", "CopyRetained", message)
    log.info(
        "SharedService %s/%s deleted: removed %d objects%s",
        meta["namespace"],
        meta["name"],
        len(removed),
        ", data retained" if retain else "",
    )
