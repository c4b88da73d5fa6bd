"""Failovers on two sites and a witness: planning (dry run), refusal, and the moves themselves.

The same two operator processes and data-plane doubles as `test_two_sites` (`tests.support.pair`); each
Failover is created at its target site, whose operator executes it.
"""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sharedcore import API_GROUP, API_VERSION
from tests.cluster.test_operator import condition, get
from tests.cluster.test_two_sites import create_active, standby_ready
from tests.conftest import Sites
from tests.support import samples
from tests.support.cluster import Site, eventually
from tests.support.operator import OPERATOR_USER, WRITE_VERBS, audit_requests
from tests.support.pair import LEASE, RESYNC, Pair, lease, metric, running_pair, site_entry, topology_status

pytestmark = [pytest.mark.cluster, pytest.mark.workloads]
UNAUDITED = frozenset({"leases", "events", "failovers"})  # heartbeats, and the Failover's own record


@pytest.fixture(scope="module")
def pair(sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with running_pair(sites, tmp_path_factory.mktemp("failover")) as running:
        yield running


def request(site: Site, target: str, type_: str, **spec: Any) -> str:
    name = f"{type_.lower()}-{uuid.uuid4().hex[:6]}"
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "Failover",
        "metadata": {"name": name},
        "spec": {"targetSite": target, "type": type_, "reason": "test", **spec},
    }
    site.custom.create_cluster_custom_object(API_GROUP, API_VERSION, "failovers", body)
    return name


def ended(site: Site, name: str, timeout: float = 30) -> dict[str, Any]:
    def phase() -> dict[str, Any] | None:
        body = site.custom.get_cluster_custom_object(API_GROUP, API_VERSION, "failovers", name)
        status: dict[str, Any] = body.get("status") or {}
        return status if status.get("phase") in ("Planned", "Failed", "Succeeded") else None

    return eventually(phase, timeout=timeout, message=f"Failover {name} ended")


def event_reasons(site: Site, name: str) -> set[str]:
    events = site.core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}")
    return {event.reason for event in events.items}


def claims(pair: Pair) -> dict[str, Any]:
    """Who is active at which epoch, as each site records it and as the witness Lease says."""
    witness = lease(pair.witness, "sharedcore-active")
    found: dict[str, Any] = {
        "witness": (witness.spec.holder_identity, witness.metadata.annotations[f"{API_GROUP}/epoch"])
    }
    for site in (pair.danang, pair.quangnam):
        status = topology_status(site)
        found[site.name] = (status.get("activeSite"), status.get("epoch"))
    return found


def replicated(pair: Pair, namespace: str, slug: str) -> str:
    """A service created at danang and replicating healthily to quangnam; its name."""
    body = samples.service(slug, namespace)
    name: str = body["metadata"]["name"]
    create_active(pair.danang, body)
    standby_ready(pair.quangnam, namespace, name)
    eventually(
        lambda: condition(get(pair.quangnam, namespace, name), "ReplicationHealthy").get("status") == "True",
        timeout=30,
        message="replication measured at quangnam",
    )
    return name


def test_a_dry_run_is_planned_and_changes_nothing_at_either_site(pair: Pair, namespace: str) -> None:
    name = replicated(pair, namespace, "document-management")
    eventually(lambda: claims(pair)["quangnam"] == ("danang", 1), timeout=60, message="epoch 1 everywhere")
    before = claims(pair)
    for double in pair.doubles.values():
        double.pause_syncs(True)  # each completed copy of the files is otherwise news worth a status write
    try:
        time.sleep(RESYNC)  # let the last status writes land
        since = time.time()
        failover = request(pair.quangnam, "quangnam", "Switchover", dryRun=True)
        status = ended(pair.quangnam, failover)
        time.sleep(RESYNC)  # room for anything the dry run might wrongly set off
        for site in (pair.danang, pair.quangnam, pair.witness):
            writes = audit_requests(site, OPERATOR_USER, since, WRITE_VERBS)
            others = [
                (w["verb"], w["requestURI"]) for w in writes if w["objectRef"]["resource"] not in UNAUDITED
            ]
            assert others == [], f"writes at {site.name}: {others}"
    finally:
        for double in pair.doubles.values():
            double.pause_syncs(False)
    assert claims(pair) == before
    assert status["phase"] == "Planned" and "preconditions hold" in status["message"]
    assert (status["fromSite"], status["toSite"], status["fromEpoch"], status["toEpoch"]) == (
        "danang",
        "quangnam",
        1,
        2,
    )
    assert [(s["name"], s["state"]) for s in status["steps"]] == [
        (step, "Pending")
        for step in ("CheckPreconditions", "FenceSource", "FinalSync", "Promote", "Redirect", "Verify")
    ]
    assert {"namespace": namespace, "name": name, "state": "Pending", "dataLossWindowSeconds": 0.0} in status[
        "services"
    ]
    assert status["dataLossWindowSeconds"] == 0.0
    assert "FailoverPlanned" in event_reasons(pair.quangnam, failover)
    counted = metric(
        pair.operators["quangnam"], "sharedcore_failovers_total", type="Switchover", result="Planned"
    )
    assert counted == 1
    # The other site ignores a Failover that does not target it.
    elsewhere = request(pair.danang, "quangnam", "Switchover", dryRun=True)
    time.sleep(2)
    body = pair.danang.custom.get_cluster_custom_object(API_GROUP, API_VERSION, "failovers", elsewhere)
    assert not body.get("status")


def test_without_accept_data_loss_a_failover_with_an_unknown_window_is_refused(
    pair: Pair, namespace: str
) -> None:
    name = replicated(pair, namespace, "hotline-1022")
    pair.danang.stop()
    pair.doubles["quangnam"].lose_source(True)
    try:
        eventually(
            lambda: site_entry(pair.quangnam, "danang").get("reachable") is False,
            timeout=30,
            message="quangnam: danang unreachable",
        )
        eventually(
            lambda: "databaseLagSeconds" not in get(pair.quangnam, namespace, name)["status"]["replication"],
            timeout=30,
            message="quangnam: the database lag is unknown",
        )
        time.sleep(LEASE)  # manual mode: nothing moves by itself, even once danang's lease has lapsed
        assert (topology_status(pair.quangnam)["activeSite"], topology_status(pair.quangnam)["epoch"]) == (
            "danang",
            1,
        )
        failover = request(pair.quangnam, "quangnam", "Failover")
        status = ended(pair.quangnam, failover)
        assert status["phase"] == "Failed"
        assert status["message"].startswith(
            "CheckPreconditions: DataLossNotAccepted: data-loss window unknown"
        )
        assert f"{namespace}/{name}" in status["message"]
        assert status["steps"][0]["state"] == "Failed"
        assert {s["state"] for s in status["steps"][1:]} <= {"Pending", "Skipped"}
        assert "FailoverFailed" in event_reasons(pair.quangnam, failover)
        counted = metric(
            pair.operators["quangnam"], "sharedcore_failovers_total", type="Failover", result="Failed"
        )
        assert counted == 1
        assert topology_status(pair.quangnam)["epoch"] == 1
    finally:
        pair.doubles["quangnam"].lose_source(False)
        pair.danang.start()
    eventually(
        lambda: site_entry(pair.quangnam, "danang").get("reachable") is True,
        timeout=60,
        message="quangnam reaches danang again",
    )
