"""The I/O shells against an API server in memory (tests/support/fake_api.py): the SharedService reconcile,
the site's tick and the Failover executor's pass, each in seconds rather than after a control plane's start.
"""

import asyncio
import dataclasses
import datetime
import time
from typing import Any, cast

import yaml

from sharedcore.api import Role, SharedService, StepName
from sharedcore.failover.controller import FailoverController
from sharedcore.failover.machine import Outcome
from sharedcore.kube.events import EventRecorder
from sharedcore.kube.resources import CLUSTERS, PERSISTENT_VOLUME_CLAIMS, SECRETS
from sharedcore.render import KIND_ORDER, render
from sharedcore.replication import credentials, demotion
from sharedcore.replication.diverged import EPOCH_LABEL, ROLE_LABEL
from sharedcore.services import drift, rebuild, reconcile
from sharedcore.services.controller import SharedServiceController
from sharedcore.services.runtime import Runtime
from sharedcore.sites import leases, pair_memory
from sharedcore.sites.controller import SiteController
from sharedcore.sites.peers import Peers
from sharedcore.sites.state import HANDING_OVER, Claim, Handover, SiteState
from tests.golden.samples import INPUTS_DIR, site
from tests.support.fake_api import FakeApi

SYSTEM = "sharedcore-system"
Body = dict[str, Any]


def sample_body(slug: str) -> Body:
    body: Body = yaml.safe_load((INPUTS_DIR / f"{slug}.yaml").read_text())
    return body


def topology() -> Body:
    ref = {"name": "peer", "namespace": SYSTEM}
    return {
        "apiVersion": "sharedcore.danang.gov.vn/v1alpha1",
        "kind": "Topology",
        "metadata": {"name": "default"},
        "spec": {
            "sites": [
                {"name": name, "kubeconfigSecretRef": ref, "ingressAddress": f"203.0.113.{i}"}
                for i, name in enumerate(("danang", "quangnam"), start=10)
            ],
            "preferredPrimary": "danang",
            "failover": {"heartbeatIntervalSeconds": 2, "leaseDurationSeconds": 15},
        },
    }


def site_controller(api: FakeApi, name: str = "danang", **options: Any) -> SiteController:
    client = cast(Any, api)
    peers = Peers(client, timeout=1.0, observer=lambda _: lambda verb, code: None, user_agent="test")
    return SiteController(
        name, client, recorder=EventRecorder(client, name), peers=peers, namespace=SYSTEM, **options
    )


def active_open_data(api: FakeApi) -> tuple[Runtime, tuple[str, str], Body]:
    """An open-data service at the active danang, not reconciled yet."""
    body = api.add(sample_body("open-data"))
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    rt = Runtime(cast(Any, api), EventRecorder(cast(Any, api), "danang"), lambda: site(Role.ACTIVE), 60)
    rt.services[key] = body
    return rt, key, body


def test_a_reconcile_applies_the_render_reports_it_and_then_writes_nothing() -> None:
    api = FakeApi()
    rt, key, body = active_open_data(api)

    asyncio.run(reconcile.reconcile(rt, key))
    rendered = render(SharedService.model_validate(body), site(Role.ACTIVE))
    assert {(o["kind"], o["metadata"]["name"]) for o in rendered} == {
        (kind, name) for verb, kind, name in api.writes if verb == "apply"
    }
    status = (api.find("SharedService", key[1], key[0]) or {})["status"]
    assert (status["site"], status["role"]) == ("danang", "Active")
    assert {c["type"] for c in status["conditions"]} >= {"Ready", "Reconciling", "Stalled"}

    writes = len(api.writes)
    asyncio.run(reconcile.reconcile(rt, key))
    assert api.writes[writes:] == [], "an unchanged service costs no write"


def test_a_reconcile_again_compares_only_what_changed_since_it_was_last_found_in_sync() -> None:
    """Every watch event of one of a service's objects (a Deployment's status, say) reconciles the whole
    service again: the objects that did not change since they were last found in sync are not compared field
    by field (issue 17: that comparison was the largest single cost of a reconcile); what changed is."""
    api = FakeApi()
    rt, key, _ = active_open_data(api)
    asyncio.run(reconcile.reconcile(rt, key))
    asyncio.run(reconcile.reconcile(rt, key))  # the applied objects as they came back: found in sync once
    compared: list[str] = []
    contains = drift._contains

    def counted(desired: Any, live: Any, path: str) -> str | None:
        if path == "" and isinstance(live, dict) and "apiVersion" in live:  # a whole object
            compared.append(live["kind"])
        return contains(desired, live, path)

    drift._contains = counted  # type: ignore[assignment]
    try:
        asyncio.run(reconcile.reconcile(rt, key))
        assert compared == [], "nothing changed, nothing compared"
        deployment = next(o for o in api.of_kind("Deployment") if o["metadata"]["namespace"] == key[0])
        edited = api.add(deployment | {"spec": {**deployment["spec"], "replicas": 9}})  # a hand edit
        rt.cache.upsert(edited)
        writes = len(api.writes)
        asyncio.run(reconcile.reconcile(rt, key))
    finally:
        drift._contains = contains  # type: ignore[assignment]
    assert compared == ["Deployment"], "only what changed is compared"
    applied = [w for w in api.writes[writes:] if w[0] == "apply"]
    assert applied == [("apply", "Deployment", deployment["metadata"]["name"])], "and repaired"


class RoundTrips(FakeApi):
    """Counts the round trips applies take: an apply that starts while none is under way starts a new one;
    and remembers, for each apply, the kinds whose applies had not answered yet when it started."""

    def __init__(self) -> None:
        super().__init__()
        self.rounds = 0
        self.pending: list[str] = []
        self.started: list[tuple[str, list[str]]] = []

    async def apply(self, obj: Body, *, dry_run: bool = False) -> Body:
        if not self.pending:
            self.rounds += 1
        self.started.append((obj["kind"], list(self.pending)))
        self.pending.append(obj["kind"])
        await asyncio.sleep(0)  # a request on the wire: others may start meanwhile
        try:
            return await super().apply(obj, dry_run=dry_run)
        finally:
            self.pending.remove(obj["kind"])


def test_a_promotion_applies_what_it_changes_at_once_and_a_creation_in_dependency_order() -> None:
    api = RoundTrips()
    body = api.add(sample_body("open-data"))
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    here = site(Role.STANDBY)
    rt = Runtime(cast(Any, api), EventRecorder(cast(Any, api), "quangnam"), lambda: here, 60)
    rt.services[key] = body
    asyncio.run(reconcile.reconcile(rt, key))
    order = list(KIND_ORDER)
    for kind, unanswered in api.started:  # created: whatever an object may refer to exists before it
        assert all(order.index(other) >= order.index(kind) for other in unanswered), (kind, unanswered)

    api.rounds, api.started = 0, []
    here = dataclasses.replace(here, role=Role.ACTIVE, epoch=here.epoch + 1)
    asyncio.run(reconcile.reconcile(rt, key))  # what a Failover waits for, alone (services.role_first)
    assert {kind for kind, _ in api.started} == {"ConfigMap", "Cluster", "DNSEndpoint"}, api.started
    assert api.rounds == 1 and rt.queue.busy(key), "one round trip, the rest of the pass queued"
    api.rounds, api.started = 0, []
    asyncio.run(reconcile.reconcile(rt, key))
    changed = [kind for kind, _ in api.started]
    assert {"Deployment", "ReplicationSource"} <= set(changed) and "Cluster" not in changed
    # The updates at once, then what the promotion creates: not one round trip per object.
    assert api.rounds <= 3 < len(changed), (api.rounds, changed)


def services_at(api: FakeApi, rt: Runtime, count: int) -> list[tuple[str, str]]:
    keys = []
    for i in range(count):
        body = api.add(sample_body("open-data") | {"metadata": {"name": f"s{i}", "namespace": "city"}})
        keys.append((body["metadata"]["namespace"], body["metadata"]["name"]))
        rt.services[keys[-1]] = body
    return keys


def test_a_change_of_role_writes_every_services_database_and_record_before_the_rest() -> None:
    """Through a bounded pool of workers, the last service's database waited for every other service's whole
    reconcile: 50 services through 8 workers took 10 s and more to promote every database (bench)."""
    api = FakeApi()
    here = site(Role.STANDBY)
    rt = Runtime(cast(Any, api), EventRecorder(cast(Any, api), "quangnam"), lambda: here, 60)
    keys = services_at(api, rt, 6)
    for key in keys:
        asyncio.run(reconcile.reconcile(rt, key))
    api.writes.clear()
    here = dataclasses.replace(here, role=Role.ACTIVE, epoch=here.epoch + 1)
    controller = SharedServiceController(rt, (), workers=2)

    async def promote() -> None:
        workers = [asyncio.create_task(controller._worker()) for _ in range(2)]
        controller.requeue()
        while len(rt.queue) or any(rt.queue.busy(key) for key in keys):
            await asyncio.sleep(0.01)
        for worker in workers:
            worker.cancel()

    asyncio.run(promote())
    kinds = [kind for verb, kind, _ in api.writes if verb == "apply"]
    last_first = max(i for i, kind in enumerate(kinds) if kind in ("Cluster", "DNSEndpoint"))
    assert kinds.count("Cluster") == 6 and "Deployment" not in kinds[:last_first], kinds


def test_the_first_full_sync_is_done_once_every_service_was_reconciled_however_busy_they_stay() -> None:
    """Readiness waited for an instant at which no service was queued or being reconciled: a returning site
    with 50 services, whose Clusters' statuses kept changing (each change queues its service again), was
    never ready (bench/failover.py timed out waiting for it after 320 s)."""
    api = FakeApi()
    keys = []
    for name in ("a", "b"):
        body = api.add(sample_body("open-data") | {"metadata": {"name": name, "namespace": "x"}})
        keys.append((body["metadata"]["namespace"], body["metadata"]["name"]))
    rt = Runtime(cast(Any, api), EventRecorder(cast(Any, api), "danang"), lambda: site(Role.ACTIVE), 60)
    controller = SharedServiceController(rt, (), workers=2)

    async def busy_site() -> bool:
        running = asyncio.create_task(controller.run())
        for _ in range(2000):  # events keep coming: one service or the other is always queued again
            for key in keys:
                rt.queue.add(key)
            await asyncio.sleep(0)
            if controller.health.synced:
                break
        running.cancel()
        return controller.health.synced

    assert asyncio.run(busy_site())


class Reads(FakeApi):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    async def get(self, resource: Any, name: str, namespace: str | None = None) -> Body | None:
        self.reads.append(f"{resource.kind} {name}")
        return await super().get(resource, name, namespace)


def test_a_reconcile_asks_for_no_secret_the_watch_has_seen() -> None:
    """Each pass read the service's TLS Secret: at an idle site with 50 services, ~4 reads a second."""
    api = Reads()
    body = api.add(sample_body("document-management"))
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    name = body["spec"]["ingress"]["tlsSecretName"]
    tls: Body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": key[0]}}
    api.add(tls)
    rt = Runtime(cast(Any, api), EventRecorder(cast(Any, api), "danang"), lambda: site(Role.ACTIVE), 60)
    rt.services[key] = body
    SharedServiceController(rt, (), workers=1).on_secret_event("ADDED", tls)
    asyncio.run(reconcile.reconcile(rt, key))
    api.reads.clear()
    asyncio.run(reconcile.reconcile(rt, key))
    assert api.reads == []


def synced_again(rt: Runtime, kind: str, seconds_ago: float) -> None:
    """The data plane completed a copy of the files: VolSync's object says when, and the watch brings it."""
    obj = next(o for o in rt.cache.of_kind("volsync.backube/v1alpha1", kind))
    at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds_ago)
    obj = obj | {"status": {"lastSyncTime": at.isoformat()}}
    obj["metadata"] = obj["metadata"] | {"resourceVersion": str(int(obj["metadata"]["resourceVersion"]) + 1)}
    rt.cache.upsert(obj)


def test_a_copy_of_the_files_costs_no_status_write_at_either_site() -> None:
    """Each completed copy rewrote every service's status (its last sync time) at both sites: with the
    testbed's VolSync copying every 5 s, 10 status patches a second at each idle site with 50 services."""
    for role, kind in ((Role.STANDBY, "ReplicationDestination"), (Role.ACTIVE, "ReplicationSource")):
        api = FakeApi()
        body = api.add(sample_body("open-data"))
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        rt = Runtime(cast(Any, api), EventRecorder(cast(Any, api), "x"), lambda r=role: site(r), 60)
        rt.services[key] = body
        asyncio.run(reconcile.reconcile(rt, key))
        synced_again(rt, kind, 20)
        asyncio.run(reconcile.reconcile(rt, key))
        writes = len(api.writes)
        synced_again(rt, kind, 1)
        asyncio.run(reconcile.reconcile(rt, key))
        assert api.writes[writes:] == [], f"{role}: a copy changed nothing a status says"


def test_the_sites_tick_records_its_decision_and_then_renews_only_its_heartbeat() -> None:
    api = FakeApi()
    api.add(topology())
    controller = site_controller(api)

    async def ticks() -> None:
        await controller._prime()  # the Topology read, and a first decision
        await controller._tick()

    asyncio.run(ticks())
    assert controller.settled.is_set() and controller.peer_name() == "quangnam"
    recorded = (api.find("Topology", "default") or {})["status"]
    assert any(s["name"] == "danang" for s in recorded["sites"])
    assert api.find("Lease", leases.heartbeat_name("danang"), SYSTEM) is not None
    assert controller.context().peer is not None and controller.context().name == "danang"
    assert controller.state.role is Role.FENCED, "not Active before hearing its peer"
    remembered = api.find("ConfigMap", pair_memory.CONFIG_MAP, SYSTEM) or {}
    assert remembered["data"]["peer"] == "quangnam", "the pair is remembered"

    writes = len(api.writes)
    asyncio.run(controller._tick())
    assert api.writes[writes:] == [("apply", "Lease", leases.heartbeat_name("danang"))]


def test_the_source_of_a_switchover_learns_of_it_from_the_announcing_heartbeat_at_once() -> None:
    """The target announces a handover in its heartbeat, which it renews in the source's cluster at once: the
    source, watching that heartbeat, fences itself for the handover then, not at its next tick up to a
    heartbeat interval (2 s) later (issue 17: most of the wait of a switchover's source)."""
    api = FakeApi()
    api.add({**topology(), "status": {"activeSite": "quangnam", "epoch": 2}})
    source = site_controller(api, "quangnam")
    ticks: list[float] = []
    tick = source._tick

    async def counted() -> None:
        ticks.append(time.monotonic())
        await tick()

    source._tick = counted  # type: ignore[method-assign]

    async def announced() -> float:
        running = asyncio.create_task(source.run())
        while len(ticks) < 2:  # the first decision, and the loop's first round
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        announcement = leases.heartbeat(
            "danang",
            SYSTEM,
            Role.STANDBY,
            Claim(2, "quangnam"),
            duration=15,
            now=datetime.datetime.now(datetime.UTC),
            handover=Handover(3, "danang", "switchover-here"),
        )
        api.add(announcement)
        announced_at = time.monotonic()
        while source.state.reason != HANDING_OVER and time.monotonic() - announced_at < 1.5:
            await asyncio.sleep(0.01)
        running.cancel()
        return time.monotonic() - announced_at

    took = asyncio.run(announced())
    assert source.state.reason == HANDING_OVER and source.state.final_sync == "switchover-here"
    assert took < 1.0, f"the source fenced {took:.1f} s after the announcement, at its next tick"


def test_a_single_site_without_a_topology_is_active_at_epoch_zero() -> None:
    api = FakeApi()
    controller = site_controller(api, single_site=True)
    asyncio.run(controller._prime())
    assert (controller.state.role, controller.state.epoch) == (Role.ACTIVE, 0)
    assert controller.topology() is None and not controller.active()


def failover_body(name: str, target: str, **spec: Any) -> Body:
    return {
        "apiVersion": "sharedcore.danang.gov.vn/v1alpha1",
        "kind": "Failover",
        "metadata": {"name": name},
        "spec": {"targetSite": target, "type": "Switchover", "reason": "test", **spec},
    }


def executor(api: FakeApi, site: SiteController) -> FailoverController:
    client = cast(Any, api)
    return FailoverController(
        client,
        recorder=EventRecorder(client, site.name),
        site=site,
        peer_client=lambda: None,
        services=list,
        managed=lambda resource: api.of_kind(resource.kind),
        owned=lambda *_: [],
    )


def test_a_failover_created_at_the_wrong_site_fails_its_first_step_saying_where_to_create_it() -> None:
    api = FakeApi()
    api.add(topology())
    site = site_controller(api, "danang")
    failovers = executor(api, site)
    failover = api.add(failover_body("switchover-1", "quangnam"))

    async def advance() -> None:
        await site._prime()
        failovers.on_event("ADDED", failover)
        await failovers._advance("switchover-1")

    asyncio.run(advance())
    status = (api.find("Failover", "switchover-1") or {})["status"]
    assert status["phase"] == "Failed" and "WrongSite" in status["message"]
    assert "create it at quangnam" in status["message"]
    assert [e["reason"] for e in api.of_kind("Event") if e["involvedObject"]["kind"] == "Failover"] == [
        "FailoverFailed"
    ]


def test_a_dry_run_is_planned_and_changes_nothing_else() -> None:
    api = FakeApi()
    api.add(topology())
    site = site_controller(api, "quangnam")
    failovers = executor(api, site)
    failover = api.add(failover_body("drill-1", "quangnam", dryRun=True))

    async def advance() -> None:
        await site._prime()
        failovers.on_event("ADDED", failover)
        writes = len(api.writes)
        await failovers._advance("drill-1")
        written = [(verb, kind) for verb, kind, _ in api.writes[writes:]]
        assert sorted(written) == [("create", "Event"), ("patch status", "Failover")]

    asyncio.run(advance())
    status = (api.find("Failover", "drill-1") or {})["status"]
    assert status["phase"] == "Planned" and status["message"].startswith("dry run:")
    assert [s["name"] for s in status["steps"]][:2] == ["CheckPreconditions", "FenceSource"]


def test_a_service_created_again_after_its_delete_gets_its_database_credentials_again() -> None:
    """Per-service state goes with the service: the credentials provisioned for a deleted service were
    remembered, so a namesake (its namespace re-created, the Secrets gone with it) got none until the
    operator restarted, and its database could not start."""
    api = FakeApi()
    body = api.add(sample_body("open-data"))
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    rt = Runtime(cast(Any, api), EventRecorder(cast(Any, api), "danang"), lambda: site(Role.ACTIVE), 60)
    services = SharedServiceController(rt, (), workers=1)
    wanted = {c.name for c in credentials.needed(SharedService.model_validate(body))}

    def secrets() -> set[str]:
        return {s["metadata"]["name"] for s in api.of_kind("Secret") if s["metadata"]["namespace"] == key[0]}

    services.on_service_event("ADDED", body)
    asyncio.run(reconcile.reconcile(rt, key))
    assert wanted and wanted <= secrets()
    for name in secrets():
        asyncio.run(api.delete(SECRETS, name, key[0]))
    services.on_service_event("DELETED", body)
    services.on_service_event("ADDED", body)
    asyncio.run(reconcile.reconcile(rt, key))
    assert wanted <= secrets()


def standby_with_cluster(api: FakeApi) -> tuple[Runtime, tuple[str, str], Body]:
    """A standby's open-data service and the database Cluster it renders (not yet created)."""
    body = api.add(sample_body("open-data"))
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    here = site(Role.STANDBY)
    rt = Runtime(cast(Any, api), EventRecorder(cast(Any, api), here.name), lambda: here, 60)
    rt.services[key] = body
    cluster = next(o for o in render(SharedService.model_validate(body), here) if o["kind"] == "Cluster")
    return rt, key, cluster


def cnpg_claim(cluster: Body, name: str, volume: str | None) -> Body:
    meta = cluster["metadata"]
    spec: Body = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {rebuild.CNPG_CLUSTER_LABEL: meta["name"]},
        },
        "spec": spec | ({"volumeName": volume} if volume else {}),
    }


def test_a_diverged_cluster_goes_at_once_with_its_claims_its_volumes_kept() -> None:
    """The rebuild once deleted the Cluster in the foreground and waited for the garbage collector to remove
    it: after a site's control plane came back, that took over 300 s (the kube-controller-manager's
    collector not yet synced), and the standby's database stayed uncopied. It deletes the Cluster and its
    claims itself."""
    api = FakeApi()
    rt, _, desired = standby_with_cluster(api)
    live = api.add(desired | {"metadata": {**desired["metadata"], "labels": {EPOCH_LABEL: "6"}}})
    api.add(cnpg_claim(desired, f"{desired['metadata']['name']}-1", "pv-1"))
    api.add({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-1"}, "spec": {}})
    kept = asyncio.run(rebuild.rebuild(rt, rt.services[next(iter(rt.services))], live, "diverged"))

    namespace, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
    assert api.find("Cluster", name, namespace) is None
    assert api.find("PersistentVolumeClaim", f"{name}-1", namespace) is None
    assert kept == [f"{name}-1-diverged-e6"] and api.find("PersistentVolumeClaim", kept[0], namespace)
    volume = api.find("PersistentVolume", "pv-1") or {}
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert volume["spec"]["claimRef"]["name"] == kept[0]


class Listed(FakeApi):
    """Counts the objects its lists answer with: what crossed the link."""

    listed = 0

    async def list(self, *args: Any, **kwargs: Any) -> list[Body]:
        found = await super().list(*args, **kwargs)
        self.listed += len(found)
        return found


def test_a_former_primarys_divergence_check_reads_only_its_peers_cluster_across_the_link() -> None:
    """A standby whose database was primary at an earlier epoch asks the peer for the Cluster it follows, at
    every reconcile of every service until the handshake shows: by name (issue 17), not every Cluster of the
    namespace each time (40 per service with 200 services in 5 namespaces)."""
    api, peer = FakeApi(), Listed()
    rt, key, desired = standby_with_cluster(api)
    labels = {**desired["metadata"].get("labels", {}), EPOCH_LABEL: "6", ROLE_LABEL: "Active"}
    live = api.add(desired | {"metadata": {**desired["metadata"], "labels": labels}})
    rt.cache.upsert(live)
    rt.peer = lambda: cast(Any, peer)
    source = desired["spec"]["replica"]["source"]
    not_yet = {**desired["spec"]["replica"], "primary": desired["metadata"]["name"]}  # not promoted yet
    for name in (source, "another-service-db-danang", "a-third-db-danang"):
        peer.add(desired | {"metadata": {**desired["metadata"], "name": name}, "spec": {"replica": not_yet}})
    blocker = asyncio.run(reconcile._diverged_database(rt, rt.services[key], [desired], site(Role.STANDBY)))
    assert blocker is not None and blocker.reason == "DatabaseDivergenceUnknown", blocker
    assert "not primary yet" in blocker.message and live["metadata"]["labels"][EPOCH_LABEL] == "6"
    assert peer.listed == 1, f"{peer.listed} Clusters read across the link for one"


def test_a_standby_makes_its_cluster_again_only_once_the_old_ones_claims_are_gone() -> None:
    """CloudNativePG names an instance's claim after the Cluster: one made again while the old claims still
    terminate would meet them. The service waits, Stalled, saying which."""
    api = FakeApi()
    rt, key, desired = standby_with_cluster(api)
    leftover = f"{desired['metadata']['name']}-1"
    api.add(
        cnpg_claim(desired, leftover, None)
        | {
            "metadata": {
                **cnpg_claim(desired, leftover, None)["metadata"],
                "deletionTimestamp": "2026-11-28T18:14:15Z",
            }
        }
    )
    asyncio.run(reconcile.reconcile(rt, key))
    assert api.find("Cluster", desired["metadata"]["name"], key[0]) is None
    status = (api.find("SharedService", key[1], key[0]) or {})["status"]
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "DatabaseRebuilding") and leftover in stalled[
        "message"
    ]

    asyncio.run(api.delete(PERSISTENT_VOLUME_CLAIMS, leftover, key[0]))
    asyncio.run(reconcile.reconcile(rt, key))
    assert api.find("Cluster", desired["metadata"]["name"], key[0]) is not None


def test_a_switchover_requested_while_the_pair_settles_waits_and_is_planned_from_the_settled_pair() -> None:
    """Right after a switchover to quangnam, danang is Fenced (handing over) and its recorded claim still
    names itself: a switchover back requested then waits, saying why, instead of failing for good with a
    false AlreadyActive (CI); once danang stands by, it is planned from what the pair then says."""
    api = FakeApi()
    api.add({**topology(), "status": {"activeSite": "danang", "epoch": 2}})
    site = site_controller(api, "danang")
    failovers = executor(api, site)
    failover = api.add(failover_body("switchover-back", "danang"))
    handing_over = SiteState(
        Role.FENCED,
        2,
        "danang",
        HANDING_OVER,
        "handing over to quangnam for epoch 3 (Failover switchover-there)",
        final_sync="switchover-there",
    )

    def status() -> Body:
        return dict((api.find("Failover", "switchover-back") or {})["status"])

    async def requested_while_settling() -> None:
        await site._prime()
        site.heartbeats.reachable = True
        site._publish(handing_over)
        failovers.on_event("ADDED", failover)
        await failovers._advance("switchover-back")

    asyncio.run(requested_while_settling())
    waiting = status()
    assert waiting["phase"] == "Pending", waiting
    assert waiting["message"].startswith("PairSettling: ") and "AlreadyActive" not in waiting["message"]
    assert "danang is Fenced" in waiting["message"] and "handing over to quangnam" in waiting["message"]
    assert (waiting["steps"][0]["name"], waiting["steps"][0]["state"]) == ("CheckPreconditions", "Running")
    assert "fromEpoch" not in waiting, "nothing is planned from an unsettled view"
    events = [e["reason"] for e in api.of_kind("Event") if e["involvedObject"]["kind"] == "Failover"]
    assert events == ["FailoverStarted"]

    attempted: list[StepName] = []

    async def attempt(step: StepName, *_: Any) -> Outcome:
        attempted.append(step)
        return Outcome.waiting("fencing")

    async def settled() -> None:
        settled_topology = dict(api.find("Topology", "default") or {})
        settled_topology["status"] = {**settled_topology["status"], "activeSite": "quangnam", "epoch": 3}
        site.on_topology(None, api.add(settled_topology))
        site._publish(SiteState(Role.STANDBY, 3, "quangnam", "Standby", "quangnam is active at epoch 3"))
        failovers._attempt = attempt  # type: ignore[method-assign]
        failovers.on_event("MODIFIED", api.find("Failover", "switchover-back") or {})
        await failovers._advance("switchover-back")

    asyncio.run(settled())
    running = status()
    assert running["phase"] == "Running", running
    assert (running["fromSite"], running["fromEpoch"], running["toEpoch"]) == ("quangnam", 3, 4)
    assert running["startTime"] == waiting["startTime"], "started when first taken up"
    assert attempted == [StepName.FENCE_SOURCE]


def test_a_target_restarted_mid_handover_announces_it_again_in_its_first_heartbeat() -> None:
    """A target whose operator restarts while its Failover runs (killed at Promote, before it held the witness
    Lease) heartbeated without the handover until its executor resumed: its source, fenced for the handover,
    took that for a withdrawal and was Active again for a moment (seen on real nodes: 0.36 s), demoted again
    with a new token, and so copied its database anew once Standby. The first heartbeat carries it again."""
    api = FakeApi()
    api.add({**topology(), "status": {"activeSite": "danang", "epoch": 2}})
    site = site_controller(api, "quangnam")
    failovers = executor(api, site)
    steps = ["CheckPreconditions", "FenceSource", "FinalSync", "Promote", "Redirect", "Verify"]
    running = failover_body("switchover-1", "quangnam")
    running["status"] = {
        "phase": "Running",
        "fromSite": "danang",
        "toSite": "quangnam",
        "fromEpoch": 2,
        "toEpoch": 3,
        "steps": [{"name": s, "state": "Succeeded" if i < 3 else "Pending"} for i, s in enumerate(steps)],
    }
    api.add(running)
    api.add(
        {**failover_body("switchover-0", "quangnam"), "status": {"phase": "Succeeded", "toSite": "quangnam"}}
    )

    async def first_heartbeat() -> Body | None:
        started = asyncio.create_task(site.run(resume=failovers.handover_in_flight))
        while (lease := api.find("Lease", leases.heartbeat_name("quangnam"), SYSTEM)) is None:
            await asyncio.sleep(0.01)
        started.cancel()
        return lease

    lease = asyncio.run(first_heartbeat())
    assert lease is not None
    assert leases.read_heartbeat(lease).handover == Handover(3, "quangnam", "switchover-1")


def test_a_restored_handover_the_watch_never_delivers_again_is_withdrawn() -> None:
    """Deleted between this operator's start and its watch's first listing, the Failover never comes back as
    an event (nor as a deletion): its restored handover would keep the source fenced for good."""
    api = FakeApi()
    api.add({**topology(), "status": {"activeSite": "danang", "epoch": 2}})
    steps = [
        {"name": "CheckPreconditions", "state": "Succeeded"},
        {"name": "FenceSource", "state": "Running"},
    ]
    status = {"phase": "Running", "toSite": "quangnam", "toEpoch": 3, "steps": steps}
    api.add({**failover_body("switchover-1", "quangnam"), "status": status})
    for delivered in (False, True):
        site = site_controller(api, "quangnam")
        failovers = executor(api, site)
        asyncio.run(site._prime(resume=failovers.handover_in_flight))
        assert site._handover == Handover(3, "quangnam", "switchover-1")
        if delivered:
            failovers.on_event("ADDED", api.find("Failover", "switchover-1") or {})
        failovers._unconfirmed()
        assert (site._handover is not None) is delivered


def test_a_demoted_cluster_keeps_its_role_and_a_demotion_that_stands_still_is_moved_on() -> None:
    """The real-node nemesis's find (seed 26): a switchover withdrawn while its source's Cluster was being
    demoted, that site lost meanwhile. Back and active, the operator applied the Cluster as primary again and
    CloudNativePG's webhook refused it for good: the instance had made its transition, but its report was
    lost with the site. The Cluster keeps its role while demoted (the service says so); a demotion that
    stands still is moved on: the lost report made, then (were PostgreSQL's shutdown unclean) the fence
    lifted so it recovers, and restored a little later so it shuts down cleanly."""
    api = FakeApi()
    rt, key, body = active_open_data(api)
    desired = next(
        o for o in render(SharedService.model_validate(body), site(Role.ACTIVE)) if o["kind"] == "Cluster"
    )
    meta = desired["metadata"]
    demoted = {**desired["spec"]["replica"], "primary": desired["spec"]["replica"]["source"]}
    pod = f"{meta['name']}-1"
    live = api.add(
        desired
        | {
            "metadata": {
                **meta,
                "uid": "c-1",
                "annotations": {**meta["annotations"], demotion.FENCED_INSTANCES: '["*"]'},
            },
            "spec": {**desired["spec"], "replica": demoted},
            "status": {
                "switchReplicaClusterStatus": {"inProgress": True},
                "conditions": [{"type": demotion.TRANSITION, "status": "False"}],
                "currentPrimary": pod,
                "instancesReportedState": {pod: {"isPrimary": False}},
            },
        }
    )
    rt.cache.upsert(live)

    def cluster() -> Body:
        return api.find("Cluster", meta["name"], meta["namespace"]) or {}

    def stalled() -> Body:
        status = (api.find("SharedService", key[1], key[0]) or {})["status"]
        return next(c for c in status["conditions"] if c["type"] == "Stalled")

    assert asyncio.run(reconcile.reconcile(rt, key)) == reconcile.DEMOTION_RECHECK_SECONDS
    assert ("apply", "Cluster", meta["name"]) not in api.writes, "no role change while CloudNativePG demotes"
    assert stalled()["reason"] == "DatabaseDemotionInProgress" and "made a primary" in stalled()["message"]
    assert ("patch status", "Cluster", meta["name"]) not in api.writes, "a demotion under way is left alone"

    rt.demoting["c-1"] -= demotion.STUCK_SECONDS  # stood still
    asyncio.run(reconcile.reconcile(rt, key))
    transition = next(c for c in cluster()["status"]["conditions"] if c["type"] == demotion.TRANSITION)
    assert (transition["status"], transition["reason"]) == ("True", "TransitionCompleted")

    rt.demoting["c-1"] -= demotion.STUCK_SECONDS  # no token came
    asyncio.run(reconcile.reconcile(rt, key))
    annotations = cluster()["metadata"]["annotations"]
    assert demotion.FENCED_INSTANCES not in annotations and demotion.RESTARTED in annotations
    asyncio.run(reconcile.reconcile(rt, key))
    assert demotion.FENCED_INSTANCES not in cluster()["metadata"]["annotations"], (
        "fenced again a little later"
    )

    rt.demoting["c-1"] -= demotion.REFENCE_SECONDS
    asyncio.run(reconcile.reconcile(rt, key))
    annotations = cluster()["metadata"]["annotations"]
    assert annotations[demotion.FENCED_INSTANCES] == '["*"]' and demotion.RESTARTED not in annotations
    reasons = [e["reason"] for e in api.of_kind("Event")]
    assert reasons.count("DatabaseDemotionStuck") == 2 and reasons.count("DatabaseDemotionResumed") == 1

    ended = {"switchReplicaClusterStatus": {"inProgress": False}}
    rt.cache.upsert(asyncio.run(api.patch(CLUSTERS, meta["name"], meta["namespace"], {"status": ended})))
    asyncio.run(reconcile.reconcile(rt, key))
    assert cluster()["spec"]["replica"]["primary"] == meta["name"], "made a primary once the demotion ended"
    assert "c-1" not in rt.demoting
