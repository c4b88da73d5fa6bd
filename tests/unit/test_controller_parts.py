"""The controller's pure parts: drift detection, conditions, the work queue, the object cache, status."""

import asyncio
import copy

from sharedcore.api import Role
from sharedcore.kube import conditions
from sharedcore.kube.cache import ObjectCache, key_of
from sharedcore.kube.workqueue import WorkQueue
from sharedcore.render import SiteContext
from sharedcore.services import status
from sharedcore.services.drift import drifted_field

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "e-office",
        "labels": {"sharedcore.danang.gov.vn/service": "vb"},
    },
    "spec": {
        "replicas": 2,
        "template": {"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80}]}]}},
    },
}


def live_version(desired: dict) -> dict:
    """What the API server returns: our fields plus defaults, metadata and status."""
    live = copy.deepcopy(desired)
    live["metadata"] |= {"uid": "u1", "resourceVersion": "7", "generation": 3, "managedFields": []}
    container = live["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicy"] = "IfNotPresent"
    container["ports"][0]["protocol"] = "TCP"
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    live["status"] = {"availableReplicas": 2, "observedGeneration": 3}
    return live


def test_defaults_and_foreign_fields_are_not_drift() -> None:
    assert drifted_field(DEPLOYMENT, live_version(DEPLOYMENT)) is None


def test_changed_owned_field_is_drift_with_its_path() -> None:
    live = live_version(DEPLOYMENT)
    live["spec"]["replicas"] = 5
    assert drifted_field(DEPLOYMENT, live) == ".spec.replicas"
    live = live_version(DEPLOYMENT)
    live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 81
    assert drifted_field(DEPLOYMENT, live) == ".spec.template.spec.containers[0].ports[0].containerPort"


def test_an_empty_value_the_api_server_omits_is_not_drift() -> None:
    """A deny-all NetworkPolicy renders `ingress: []`, which the API server drops: comparing it as missing
    repaired the policy forever (16 000 DriftRepaired events in a minute, the operator never ready)."""
    policy = {"kind": "NetworkPolicy", "spec": {"policyTypes": ["Ingress"], "ingress": []}}
    assert drifted_field(policy, {"kind": "NetworkPolicy", "spec": {"policyTypes": ["Ingress"]}}) is None
    opened = {"kind": "NetworkPolicy", "spec": {"policyTypes": ["Ingress"], "ingress": [{}]}}
    assert drifted_field(policy, opened) == ".spec.ingress"


def test_missing_and_extra_list_elements_are_drift() -> None:
    assert drifted_field(DEPLOYMENT, None) == "(missing)"
    live = live_version(DEPLOYMENT)
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar"})
    assert drifted_field(DEPLOYMENT, live) == ".spec.template.spec.containers"


def test_condition_transition_time_moves_only_on_flip() -> None:
    first = conditions.merge([], [conditions.Want("Ready", False, "ComponentsNotReady", "waiting")], 1, "t1")
    same = conditions.merge(
        first, [conditions.Want("Ready", False, "ComponentsNotReady", "still waiting")], 2, "t2"
    )
    flipped = conditions.merge(same, [conditions.Want("Ready", True, "Available", "ok")], 2, "t3")
    assert first[0]["lastTransitionTime"] == same[0]["lastTransitionTime"] == "t1"
    assert same[0]["observedGeneration"] == 2 and same[0]["message"] == "still waiting"
    assert flipped[0]["lastTransitionTime"] == "t3" and flipped[0]["status"] == "True"
    assert conditions.is_true(flipped, "Ready") and not conditions.is_true(first, "Ready")


def test_workqueue_deduplicates_and_requeues_keys_added_while_active() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        for key in ("a", "b", "a", "a"):
            queue.add(key)
        assert len(queue) == 2
        seen = [await queue.get()]
        queue.add("a")  # while "a" is being worked on: not queued twice, but not lost
        assert len(queue) == 1
        queue.done("a")
        seen += [await queue.get(), await queue.get()]
        queue.done("b")
        queue.done("a")
        queue.add_after("c", 0.05)
        queue.add_after("c", 10)  # a later requeue does not postpone the earlier one
        seen.append(await asyncio.wait_for(queue.get(), 1))
        return seen

    assert asyncio.run(scenario()) == ["a", "b", "a", "c"]


def test_cache_keeps_the_newest_revision_and_indexes_by_service() -> None:
    cache = ObjectCache()
    newer = live_version(DEPLOYMENT)
    older = copy.deepcopy(newer)
    older["metadata"]["resourceVersion"] = "5"
    cache.upsert(newer)
    cache.upsert(older)
    assert cache.get(key_of(DEPLOYMENT))["metadata"]["resourceVersion"] == "7"
    assert cache.owned_by("e-office", "vb") == [newer]
    assert cache.owned_by("other", "vb") == []
    relabelled = copy.deepcopy(newer)
    relabelled["metadata"] |= {"resourceVersion": "8", "labels": {"sharedcore.danang.gov.vn/service": "x"}}
    cache.upsert(relabelled)  # the index follows the object's label
    assert (cache.owned_by("e-office", "vb"), cache.owned_by("e-office", "x")) == ([], [relabelled])
    assert cache.of_kind("apps/v1", "Deployment") == [relabelled] and cache.of_kind("v1", "Service") == []
    cache.remove(newer)
    assert len(cache) == 0 and cache.owned_by("e-office", "x") == []


T1, T2 = "2026-11-28T08:00:00Z", "2026-11-28T08:00:05Z"


def test_status_reports_components_and_kstatus_conditions() -> None:
    site = SiteContext(name="danang", role=Role.ACTIVE, epoch=0)
    service = {"metadata": {"generation": 4}, "status": {}}
    live = live_version(DEPLOYMENT)
    live["status"]["availableReplicas"] = 1
    rows = status.components([DEPLOYMENT], lambda key: live)
    assert rows == [{"name": "web", "kind": "Deployment", "replicas": 2, "readyReplicas": 1}]
    replication = conditions.Want("ReplicationHealthy", True, "NoPeerSite", "single site")
    progressing = status.build(service, site, rows, None, paused=False, replication=replication, now=T1)
    assert progressing["observedGeneration"] == 4 and progressing["role"] == "Active"
    assert [c["status"] for c in progressing["conditions"]] == ["False", "True", "False", "True"]

    def build(
        rows: list, blocker: status.Blocker | None = None, current: dict | None = None, now: str = T1
    ) -> dict:
        body = {**service, "status": current or {}}
        return status.build(body, site, rows, blocker, paused=False, replication=replication, now=now)

    stalled = conditions.find(
        build(rows, status.Blocker("TLSSecretNotFound", "Secret x missing"))["conditions"], "Stalled"
    )
    assert stalled and stalled["status"] == "True" and stalled["reason"] == "TLSSecretNotFound"
    live["status"]["availableReplicas"] = 2
    ready = build(status.components([DEPLOYMENT], lambda key: live))
    assert conditions.is_true(ready["conditions"], "Ready")
    again = build(status.components([DEPLOYMENT], lambda key: live), current=ready, now=T2)
    assert not status.differs(ready, again), "an unchanged service produces an identical status: no write"
    # Every Deployment available but the database being copied anew: not ready (a standby that reported Ready
    # here would be taken for one that can take over).
    rebuilding = build(
        status.components([DEPLOYMENT], lambda key: live), status.Blocker("DatabaseRebuilding", "x")
    )
    assert not conditions.is_true(rebuilding["conditions"], "Ready")
    assert (conditions.find(rebuilding["conditions"], "Ready") or {}).get("reason") == "DatabaseRebuilding"


def test_a_role_label_no_longer_rendered_is_drift() -> None:
    """An object rendered with the role and epoch labels by an earlier version keeps them until applied
    again: they would tell a role it no longer has, so their absence from what is rendered is drift."""
    live = live_version(DEPLOYMENT)
    live["metadata"]["labels"] |= {"sharedcore.danang.gov.vn/role": "Standby"}
    assert drifted_field(DEPLOYMENT, live) == ".metadata.labels.sharedcore.danang.gov.vn/role"
    live["metadata"]["labels"] |= {"other.example/role": "Standby"}  # others' labels are theirs
    del live["metadata"]["labels"]["sharedcore.danang.gov.vn/role"]
    assert drifted_field(DEPLOYMENT, live) is None


def test_monitoring_queries_cloudnativepg_adds_are_not_drift() -> None:
    """CloudNativePG's defaulting puts its own monitoring queries first in every Cluster's
    customQueriesConfigMap (where its operator is configured with them): comparing the list as rendered
    repaired every Cluster at every resync (390 DriftRepaired events in two nemesis runs on real nodes)."""
    ours = {"name": "svc-db-monitoring", "key": "queries"}
    cluster = {"kind": "Cluster", "spec": {"monitoring": {"customQueriesConfigMap": [ours]}}}
    defaulted = {"name": "cnpg-default-monitoring", "key": "queries"}
    live = {"kind": "Cluster", "spec": {"monitoring": {"customQueriesConfigMap": [defaulted, ours]}}}
    assert drifted_field(cluster, live) is None
    lost = {"kind": "Cluster", "spec": {"monitoring": {"customQueriesConfigMap": [defaulted]}}}
    assert drifted_field(cluster, lost) == ".spec.monitoring.customQueriesConfigMap"
