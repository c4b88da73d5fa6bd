"""Configuration replication: while this site is active, its SharedServices and the Secrets and ConfigMaps
labelled `sharedcore.danang.gov.vn/replicate: "true"` are copied to the standby site.

Only into namespaces invited at both sites: a Namespace labelled `sharedcore.danang.gov.vn/replicate: "true"`
here and at the standby, where this site's peer identity is bound (`sharedcore peer-identity --namespace`).
Replication never creates a namespace, never copies what `admission` refuses (and says so in an Event on the
source), and never deletes data: a Secret whose source was deleted is kept at the
standby as a retained copy, and a deleted SharedService's copy goes while the standby keeps its data.

Level-based, like the reconciler: each pass lists the copies at the standby and makes them match this
site's sources (create, update, revert an edit made there, delete what no longer has a source). A pass runs
shortly after a source's copied content changes, and every resync (which is how edits made at the standby
and namespaces newly invited are found). The standby never pushes anything back: only the active site runs
passes, and it leaves alone copies written under a later epoch than its own.
"""

import asyncio
import datetime
import logging
from collections.abc import Callable, Collection
from typing import Any

from sharedcore import Body
from sharedcore.api import ReplicationPolicy
from sharedcore.kube.client import ApiError, KubeClient
from sharedcore.kube.events import EventRecorder
from sharedcore.kube.resources import CONFIG_MAPS, NAMESPACES, SECRETS, SHARED_SERVICES, Resource
from sharedcore.metrics import REPLICATION_WRITES
from sharedcore.replication import admission, content, retained
from sharedcore.sites.peers import REMOTE_ERRORS, describe

log = logging.getLogger(__name__)
Key = tuple[str, str, str]  # (kind, namespace, name)
KINDS = (SECRETS, CONFIG_MAPS, SHARED_SERVICES)  # what services refer to goes first
DEBOUNCE_SECONDS = 0.2
RETRY_SECONDS = 2.0


def _revision(obj: Body) -> int:
    version = str(obj["metadata"].get("resourceVersion", "0"))
    return int(version) if version.isdigit() else 0


class SupersededError(Exception):
    """The site stopped being the active one during a pass."""


def _typed(obj: Body, resource: Resource) -> Body:
    """List items come without apiVersion and kind."""
    obj.setdefault("apiVersion", resource.api_version)
    obj.setdefault("kind", resource.kind)
    return obj


class ConfigReplicator:
    def __init__(
        self,
        site: str,
        client: KubeClient,
        *,
        target: Callable[[], tuple[KubeClient, int] | None],
        policy: Callable[[], ReplicationPolicy],
        namespaces: Collection[str],
        excluded_namespace: str,
        resync_seconds: float,
    ) -> None:
        """`target` gives the standby's client and this site's epoch while this site is the active one;
        `policy` the Topology's allow-lists."""
        self._site, self._client, self._target, self._policy = site, client, target, policy
        self._events = EventRecorder(client, site)
        self._refused: dict[Key, str] = {}  # what was reported as not copied, and why
        self._namespaces = list(namespaces)  # empty: all
        self._excluded = excluded_namespace
        self._resync = resync_seconds
        self._sources: dict[Key, Body] = {}
        self._fingerprints: dict[Key, str] = {}
        self._wake = asyncio.Event()

    # --- the sources at this site -------------------------------------------------------------------------

    def observe(self, event_type: str | None, obj: dict[str, Any]) -> None:
        """A watch event for a SharedService, Secret or ConfigMap at this site."""
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        known = self._sources.get(key)
        if known is not None and _revision(obj) < _revision(known):
            return  # a list at startup and the watch may deliver the same object out of order
        if event_type != "DELETED" and content.is_source(obj, self._excluded):
            self._sources[key] = obj
            fingerprint = content.fingerprint(obj)
            changed = self._fingerprints.get(key) != fingerprint
            self._fingerprints[key] = fingerprint
        else:
            changed = self._sources.pop(key, None) is not None
            self._fingerprints.pop(key, None)
            self._refused.pop(key, None)
        if changed:
            self._wake.set()

    def trigger(self) -> None:
        self._wake.set()

    def _scopes(self) -> list[str | None]:
        return [*self._namespaces] or [None]

    async def _prime(self) -> None:
        for resource in KINDS:
            labels = None if resource is SHARED_SERVICES else {content.REPLICATE_LABEL: "true"}
            for namespace in self._scopes():
                for obj in await self._client.list(resource, namespace, labels):
                    self.observe(None, _typed(obj, resource))

    # --- passes -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                await self._prime()
                break
            except REMOTE_ERRORS as error:
                log.warning("cannot list what to replicate yet (%s)", describe(error))
                await asyncio.sleep(RETRY_SECONDS)
        failures = 0
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._resync)
                await asyncio.sleep(DEBOUNCE_SECONDS)  # a burst of changes makes one pass
            except TimeoutError:
                pass
            self._wake.clear()
            target = self._target()
            if target is None:
                continue
            if await self._attempt(*target):
                failures = 0
            else:  # back off up to a resync, and try again
                failures += 1
                await asyncio.sleep(min(RETRY_SECONDS * 2 ** (failures - 1), self._resync))
                self._wake.set()

    async def _attempt(self, standby: KubeClient, epoch: int) -> bool:
        try:
            await self.sync(standby, epoch)
        except SupersededError as stopped:
            log.info("replication pass stopped: %s", stopped)
        except REMOTE_ERRORS as error:
            log.warning("replication to the standby failed (%s); retrying", describe(error))
            return False
        except Exception:  # whatever one pass met, the next one tries again
            log.exception("replication pass failed; retrying")
            return False
        return True

    async def sync(self, standby: KubeClient, epoch: int) -> None:
        """One pass: make the standby's copies match this site's sources, in the namespaces invited."""
        recorder = EventRecorder(standby, self._site)
        here, there = await self._invited(self._client), await self._invited(standby)
        policy = self._policy()
        for resource in KINDS:
            sources = {
                (ns, name): obj for (kind, ns, name), obj in self._sources.items() if kind == resource.kind
            }
            copies, denied = await self._copies(standby, resource, here & there)
            for (namespace, name), source in sources.items():
                if namespace not in here:
                    continue  # this namespace stays at this site
                if namespace not in there:
                    refused: str | None = (
                        f"namespace {namespace} has not opted in at the standby (label "
                        f'{content.REPLICATE_LABEL}="true" on the Namespace there)'
                    )
                else:
                    refused = denied.get(namespace) or admission.refusal(source, policy)
                copy = copies.get((namespace, name))
                if await self._report(resource, source, refused) is not None:
                    continue
                if copy is not None and resource is SHARED_SERVICES and content.replaced(source, copy):
                    # Deleted and created again here: its copy goes first (keeping its data), then a new one.
                    await self._retire(standby, resource, copy, epoch)
                    self._wake.set()
                    continue
                await self._push(standby, recorder, resource, source, copy=copy, epoch=epoch)
            orphans = [
                copy for key, copy in copies.items() if key not in sources and content.orphaned(copy, epoch)
            ]
            for copy in orphans:
                await self._retire(standby, resource, copy, epoch)

    def _confirm(self, epoch: int) -> None:
        """Before each write: this site is still the active one at `epoch`. A pass takes a while, and a site
        fenced or handing over meanwhile must not push what it had as the active site (issue 11, rule 3)."""
        target = self._target()
        if target is None or target[1] != epoch:
            raise SupersededError(f"this site is no longer the active one at epoch {epoch}")

    async def _invited(self, client: KubeClient) -> set[str]:
        """The namespaces that opted in to replication at the site of `client`, within this operator's."""
        found = {
            ns["metadata"]["name"]
            for ns in await client.list(NAMESPACES, None, content.OPT_IN)
            # Deleting a namespace takes the RoleBindings in it away first: nothing to do there any more.
            if (ns.get("status") or {}).get("phase") != "Terminating"
        }
        found.discard(self._excluded)
        return found & set(self._namespaces) if self._namespaces else found

    async def _report(self, resource: Resource, source: Body, refused: str | None) -> str | None:
        """Say once, in an Event on the source, why it is not copied; returns that reason."""
        meta = source["metadata"]
        key = (resource.kind, meta["namespace"], meta["name"])
        if refused is None:
            self._refused.pop(key, None)
        elif self._refused.get(key) != refused:
            self._refused[key] = refused
            REPLICATION_WRITES.labels(resource.kind, "refuse").inc()
            await self._events.record(
                source, "Warning", "NotReplicated", f"not copied to the standby: {refused}"
            )
        return refused

    async def _copies(
        self, standby: KubeClient, resource: Resource, invited: set[str]
    ) -> tuple[dict[tuple[str, str], Body], dict[str, str]]:
        """The copies at the standby, read namespace by namespace: the peer identity may read and write only
        in the namespaces invited there. Also, for each invited namespace it may not read, why."""
        labels = None if resource is SHARED_SERVICES else {content.REPLICATE_LABEL: "true"}
        found: dict[tuple[str, str], Body] = {}
        denied: dict[str, str] = {}
        for namespace in sorted(invited):
            try:
                listed = await standby.list(resource, namespace, labels)
            except ApiError as error:
                if error.status != 403:
                    raise
                denied[namespace] = (
                    f"this site's identity may not use namespace {namespace} at the standby "
                    f"({error.message}): its administrators grant it with `sharedcore peer-identity "
                    f"--namespace {namespace}`"
                )
                continue
            found |= {(namespace, obj["metadata"]["name"]): _typed(obj, resource) for obj in listed}
        return found, denied

    async def _push(
        self,
        standby: KubeClient,
        recorder: EventRecorder,
        resource: Resource,
        source: Body,
        *,
        copy: Body | None,
        epoch: int,
    ) -> None:
        meta = source["metadata"]
        where = f"{resource.kind} {meta['namespace']}/{meta['name']}"
        try:
            if copy is None:
                self._confirm(epoch)
                await standby.create(resource, content.copy_of(source, self._site, epoch))
                REPLICATION_WRITES.labels(resource.kind, "create").inc()
                log.info("replication: created %s at the standby", where)
                return
            if content.origin_epoch(copy) > epoch:
                log.warning("replication: %s at the standby comes from a later epoch: left alone", where)
                return
            change = content.update(source, copy, self._site, epoch)
            if change is None:
                return
            self._confirm(epoch)
            await standby.patch(resource, meta["name"], meta["namespace"], change.patch)
        except ApiError as error:  # this object only: the others still go
            log.warning("replication: cannot write %s at the standby: %s", where, error)
            return
        REPLICATION_WRITES.labels(resource.kind, change.action).inc()
        if change.action == "revert":
            message = (
                f"{where} was changed here ({change.edited}): restored from {self._site}, "
                f"the active site (epoch {epoch})"
            )
            await recorder.record(copy, "Warning", "ReplicaEditReverted", message)
        else:
            log.info("replication: updated %s at the standby", where)

    async def _retire(self, standby: KubeClient, resource: Resource, copy: Body, epoch: int) -> None:
        """A copy whose source is gone: deleted, except a Secret, kept as a retained copy (the standby's
        database may need it, and a deletion at the active site must not reach the copy)."""
        meta = copy["metadata"]
        where = f"{resource.kind} {meta['namespace']}/{meta['name']}"
        try:
            if resource is not SECRETS:
                self._confirm(epoch)
                await standby.delete(resource, meta["name"], meta["namespace"])
                action = "delete"
            elif retained.is_retained(copy):
                return
            else:
                because = f"its source was deleted at {self._site}, the active site (epoch {epoch})"
                patch = {"metadata": retained.marks(because, datetime.datetime.now(datetime.UTC))}
                self._confirm(epoch)
                await standby.patch(resource, meta["name"], meta["namespace"], patch)
                action = "retain"
        except ApiError as error:
            log.warning("replication: cannot remove %s at the standby: %s", where, error)
            return
        REPLICATION_WRITES.labels(resource.kind, action).inc()
        log.info("replication: %s %s at the standby: it has no source any more", action, where)
