"""The pure parts of replication: what is copied and when a copy needs a write; lag samples; the verdict."""

import copy
import datetime
from typing import Any

import pytest

from sharedcore.api import Role, SharedService
from sharedcore.kube.cache import key_of
from sharedcore.kube.patches import merge_patch
from sharedcore.render import PeerSite, SiteContext, render
from sharedcore.replication import content, data
from sharedcore.replication.lag import LAG, RECEIPT, RECEIVER_UP, LagTable, parse
from tests.support import samples

SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "type": "Opaque",
    "metadata": {
        "name": "smtp",
        "namespace": "e-office",
        "labels": {content.REPLICATE_LABEL: "true", "team": "mail"},
        "annotations": {"argocd.argoproj.io/tracking-id": "danang-app"},
        "resourceVersion": "10",
    },
    "data": {"password": "c2VjcmV0", "user": "dXNlcg=="},
}


def as_stored(created: dict[str, Any], version: str = "3") -> dict[str, Any]:
    """A copy as the standby's API server returns it."""
    stored = copy.deepcopy(created)
    stored["metadata"] |= {"resourceVersion": version, "uid": "u-standby"}
    return stored


def test_only_labelled_configuration_and_every_service_are_sources() -> None:
    assert content.is_source(SECRET, "sharedcore-system")
    unlabelled = copy.deepcopy(SECRET)
    del unlabelled["metadata"]["labels"][content.REPLICATE_LABEL]
    assert not content.is_source(unlabelled, "sharedcore-system")
    rendered = copy.deepcopy(SECRET)
    rendered["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "sharedcore"
    assert not content.is_source(rendered, "sharedcore-system"), "rendered objects belong to their site"
    deleting = copy.deepcopy(SECRET)
    deleting["metadata"]["deletionTimestamp"] = "2026-11-24T08:00:00Z"
    assert not content.is_source(deleting, "sharedcore-system")
    assert not content.is_source(SECRET, "e-office"), "the operator's own namespace stays put"
    service = samples.service("open-data", "portal") | {"apiVersion": "x/v1", "kind": "SharedService"}
    assert content.is_source(service, "sharedcore-system")


def test_a_copy_carries_content_labels_and_origin_but_not_the_sources_annotations() -> None:
    created = content.copy_of(SECRET, "danang", 1)
    assert created["data"] == SECRET["data"] and created["type"] == "Opaque"
    assert created["metadata"]["labels"] == SECRET["metadata"]["labels"]
    annotations = created["metadata"]["annotations"]
    assert "argocd.argoproj.io/tracking-id" not in annotations
    assert annotations[content.ORIGIN_SITE] == "danang" and annotations[content.ORIGIN_EPOCH] == "1"
    assert content.update(SECRET, as_stored(created), "danang", 1) is None, "a faithful copy costs nothing"


def test_the_same_manifest_applied_at_both_sites_needs_no_write() -> None:
    applied_by_gitops = as_stored(SECRET)  # no replication annotations at all
    applied_by_gitops["metadata"]["labels"]["argocd.argoproj.io/instance"] = "quangnam-apps"
    assert content.update(SECRET, applied_by_gitops, "danang", 1) is None


def test_a_change_at_the_source_updates_and_an_edit_at_the_standby_is_reverted() -> None:
    stored = as_stored(content.copy_of(SECRET, "danang", 1))
    changed = copy.deepcopy(SECRET)
    changed["data"] = {"password": "bmV3"}  # user removed, password changed
    update = content.update(changed, stored, "danang", 1)
    assert update and update.action == "update" and update.edited is None
    assert update.patch["data"] == {"password": "bmV3", "user": None}
    assert update.patch["metadata"]["resourceVersion"] == "3"

    edited = copy.deepcopy(stored)
    edited["data"]["password"] = "aGFja2Vk"
    revert = content.update(SECRET, edited, "danang", 1)
    assert revert and revert.action == "revert" and revert.edited == ".data.password"
    assert revert.patch["data"] == {"password": SECRET["data"]["password"]}
    assert "c2VjcmV0" not in (revert.edited or ""), "the report names the field, never the value"


def test_merge_patch_turns_one_object_into_the_other() -> None:
    have = {"spec": {"a": 1, "b": {"c": 2, "d": 3}, "gone": [1]}}
    want = {"spec": {"a": 1, "b": {"c": 5}, "new": {"x": 1}}}
    patch = merge_patch(have, want)
    assert patch == {"spec": {"b": {"c": 5, "d": None}, "gone": None, "new": {"x": 1}}}


def test_copies_from_a_later_epoch_or_made_by_others_are_not_deleted() -> None:
    ours = as_stored(content.copy_of(SECRET, "danang", 1))
    assert content.orphaned(ours, epoch=1)
    assert not content.orphaned(ours, epoch=0)
    assert not content.orphaned(as_stored(SECRET), epoch=1), "not written by replication: someone else's"


def test_fingerprint_ignores_status_and_bookkeeping() -> None:
    service = samples.service("smart-city", "app") | {"apiVersion": "x/v1", "kind": "SharedService"}
    written = copy.deepcopy(service)
    written["status"] = {"observedGeneration": 2}
    written["metadata"]["annotations"] = {"kopf": "state"}
    assert content.fingerprint(service) == content.fingerprint(written)
    written["spec"]["replicas"] = 9
    assert content.fingerprint(service) != content.fingerprint(written)


def test_lag_samples_from_prometheus_and_a_receiver_that_stopped() -> None:
    def answer(lag: float, up: float) -> dict[str, Any]:
        labels = {"namespace": "app", "pod": "svc-db-quangnam-1"}
        return {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [
                    {"metric": {"__name__": LAG, **labels}, "value": [1000.0, str(lag)]},
                    {"metric": {"__name__": RECEIVER_UP, **labels}, "value": [1000.0, str(up)]},
                    {"metric": {"__name__": LAG}, "value": [1000.0, "1"]},  # no pod: not ours to read
                ],
            },
        }

    table = LagTable()
    assert table.update(parse(answer(2.4, 1))) is None, "the first answer replaces 'not asked yet'"
    sample = table.sample("app", "svc-db-quangnam-1")
    assert sample and sample.lag_seconds == 2.4 and sample.complete_at == pytest.approx(997.6)
    assert table.update(parse(answer(2.2, 1))) == set(), "the same whole seconds: nothing to reconcile"
    assert table.update(parse(answer(0.0, 0))) == {"app"}
    stopped = table.sample("app", "svc-db-quangnam-1")
    assert stopped and stopped.lag_seconds is None and stopped.complete_at == pytest.approx(997.8)
    assert table.fail("Prometheus at http://p did not answer") is None
    assert table.sample("app", "svc-db-quangnam-1") is None
    # A scrape that failed, or Prometheus not answering, does not make the past unknown: once the replica is
    # seen again with its receiver still down, it is complete up to where it was last seen streaming.
    table.update(parse({"status": "success", "data": {"resultType": "vector", "result": []}}))
    table.update(parse(answer(0.0, 0)))
    again = table.sample("app", "svc-db-quangnam-1")
    assert again and again.lag_seconds is None and again.complete_at == pytest.approx(997.8)


def test_a_replica_is_complete_only_up_to_when_it_last_received_wal() -> None:
    """CloudNativePG reports a lag of 0 whenever everything received is replayed, and its WAL receiver stays
    up for wal_receiver_timeout after the stream stopped: the replica's last receipt bounds what it holds."""

    def answer(taken: float, receipt: float | None, up: float = 1) -> dict[str, Any]:
        labels = {"namespace": "app", "pod": "svc-db-quangnam-1"}
        series = [(LAG, 0.0), (RECEIVER_UP, up)] + ([(RECEIPT, receipt)] if receipt is not None else [])
        result = [{"metric": {"__name__": n, **labels}, "value": [taken, str(v)]} for n, v in series]
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    table = LagTable()
    table.update(parse(answer(1000.0, 999.9)))  # streaming: received a moment ago
    assert (sample := table.sample("app", "svc-db-quangnam-1")) and sample.complete_at == pytest.approx(999.9)
    table.update(parse(answer(1004.0, 1000.5)))  # the stream stopped at 1000.5; the receiver not timed out
    assert (sample := table.sample("app", "svc-db-quangnam-1")) and sample.complete_at == pytest.approx(
        1000.5
    )
    table.update(parse(answer(1008.0, None, up=0)))  # the receiver gave up: no row, no receipt
    stopped = table.sample("app", "svc-db-quangnam-1")
    assert stopped and stopped.lag_seconds is None and stopped.complete_at == pytest.approx(1000.5)


NOW = datetime.datetime(2026, 11, 24, 8, 0, 0, tzinfo=datetime.UTC)


def standby_render(rpo: int = 300) -> tuple[SharedService, SiteContext, list[dict[str, Any]]]:
    service = SharedService.model_validate(
        samples.service("hotline-1022", "hotline", objectives={"rpoSeconds": rpo, "rtoSeconds": 300})
    )
    site = SiteContext("quangnam", Role.STANDBY, 1, peer=PeerSite("danang", "svc.clusterset.local"))
    return service, site, render(service, site)


def live_status(desired: list[dict[str, Any]], statuses: dict[str, dict[str, Any]]) -> Any:
    by_key = {
        key_of(obj): {**obj, "status": statuses[obj["kind"]]} for obj in desired if obj["kind"] in statuses
    }
    return by_key.get


def lag_table(lag: float | None) -> LagTable:
    table = LagTable()
    if lag is not None:
        pod = {"namespace": "hotline", "pod": "hotline-1022-db-quangnam-1"}
        now = NOW.timestamp()
        table.update(
            parse({"data": {"result": [{"metric": {"__name__": LAG, **pod}, "value": [now, str(lag)]}]}})
        )
    return table


def test_standby_within_objective_then_behind_on_each_count() -> None:
    service, site, desired = standby_render(rpo=300)
    synced = (NOW - datetime.timedelta(seconds=100)).strftime("%Y-%m-%dT%H:%M:%SZ")
    live = live_status(
        desired,
        {
            "Cluster": {"currentPrimary": "hotline-1022-db-quangnam-1"},
            "ReplicationDestination": {"lastSyncTime": synced},
        },
    )
    healthy = data.assess(service, site, desired, live=live, lag=lag_table(2.4), now=NOW)
    assert healthy.condition.status is True and healthy.condition.reason == "WithinObjective"
    # The time of the last copy changes at every copy: a status with it would be written at every copy.
    assert healthy.status == {"sourceSite": "danang", "databaseLagSeconds": 2.0}
    objects = [found for obj in desired if (found := live(key_of(obj)))]
    assert data.files_synced(objects) == NOW - datetime.timedelta(seconds=100), "read from VolSync's object"
    assert healthy.recheck_after == pytest.approx(200.0), "the files fall behind in 200s if nothing syncs"
    assert {s.kind for s in healthy.series} == {"database", "files"}

    lagging = data.assess(service, site, desired, live=live, lag=lag_table(420.0), now=NOW)
    assert (lagging.condition.status, lagging.condition.reason) == (False, "DatabaseLagAboveObjective")
    assert "420s is above rpoSeconds (300)" in lagging.condition.message

    later = NOW + datetime.timedelta(seconds=250)
    stale = data.assess(service, site, desired, live=live, lag=lag_table(1.0), now=later)
    assert (stale.condition.status, stale.condition.reason) == (False, "FilesSyncBehind")


def test_standby_with_unknown_lag_is_not_healthy_and_says_why() -> None:
    service, site, desired = standby_render()
    assert data.files_synced(desired) is None, "no copy completed yet"
    unknown = data.assess(service, site, desired, live=live_status(desired, {}), lag=LagTable(), now=NOW)
    assert (unknown.condition.status, unknown.condition.reason) == (False, "DatabaseLagUnknown")
    assert "no current primary" in unknown.condition.message
    assert "has not completed a sync" in unknown.condition.message
    live = live_status(desired, {"Cluster": {"currentPrimary": "hotline-1022-db-quangnam-1"}})
    unpolled = data.assess(service, site, desired, live=live, lag=LagTable(), now=NOW)
    assert "--prometheus-url" in unpolled.condition.message


def test_active_site_reports_its_pushes_and_a_single_site_nothing() -> None:
    service, _, _ = standby_render()
    active = SiteContext("danang", Role.ACTIVE, 1, peer=PeerSite("quangnam", "svc.clusterset.local"))
    desired = render(service, active)
    pushed = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    live = live_status(desired, {"ReplicationSource": {"lastSyncTime": pushed}})
    verdict = data.assess(service, active, desired, live=live, lag=LagTable(), now=NOW)
    assert verdict.condition.status is True and verdict.status is None
    alone = SiteContext("danang", Role.ACTIVE, 0)
    single = data.assess(service, alone, render(service, alone), live=live, lag=LagTable(), now=NOW)
    assert single.condition.reason == "NoPeerSite" and single.status is None


def test_a_pod_name_reused_is_read_from_its_latest_instance_scraped() -> None:
    """Prometheus restarted (a site back from an outage) writes no staleness markers for what it scraped
    before, so for its lookback (5 min) a pod name CloudNativePG reuses answers twice: the old instance (here
    the primary it was, receiver down) and the new replica. The newest scrape is the pod's; its lag counts
    from then."""
    pod = {"namespace": "app", "pod": "svc-db-danang-1"}
    new, old = {**pod, "instance": "10.1.0.9:9187"}, {**pod, "instance": "10.1.0.5:9187"}
    result = [
        {"metric": {"__name__": LAG, **new}, "value": [1000.0, "1.5"]},
        {"metric": {"__name__": RECEIVER_UP, **new}, "value": [1000.0, "1"]},
        {"metric": {"sharedcore": "scraped", **new}, "value": [1000.0, "995"]},
        {"metric": {"__name__": LAG, **old}, "value": [1000.0, "0"]},
        {"metric": {"__name__": RECEIVER_UP, **old}, "value": [1000.0, "0"]},
        {"metric": {"sharedcore": "scraped", **old}, "value": [1000.0, "700"]},
    ]
    table = LagTable()
    table.update(parse({"status": "success", "data": {"resultType": "vector", "result": result}}))
    sample = table.sample("app", "svc-db-danang-1")
    assert sample and sample.lag_seconds == 1.5 and sample.complete_at == pytest.approx(993.5)
