"""Failovers on two sites and a witness: planning (dry run), refusal, and the moves themselves.

The same two operator processes and data-plane doubles as `test_two_sites` (`tests.support.pair`); each
Failover is created at its target site, whose operator executes it. Every scenario that moves roles runs
under a `RoleSampler` (both operators' roles every 100 ms), which fails the test if any sample shows two
Active sites. The scenarios follow on from each other: each starts from whichever site is active.
"""

import json
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sharedcore import API_GROUP, API_VERSION
from sharedcore.render.names import base, database_cluster
from sharedcore_testbed.roles import RoleSampler, role_of
from sharedcore_testbed.targets import CLUSTERS
from tests.cluster.test_operator import condition, get
from tests.cluster.test_two_sites import create_active, standby_ready, try_get
from tests.conftest import Sites
from tests.support import samples
from tests.support.cluster import Site, eventually
from tests.support.dataplane import token_cluster
from tests.support.operator import OPERATOR_USER, WRITE_VERBS, audit_requests
from tests.support.packaging import kubectl_with_plugin
from tests.support.pair import (
    ADDRESSES,
    LEASE,
    RESYNC,
    Pair,
    lease,
    metric,
    running_pair,
    site_entry,
    topology_status,
)
from tests.support.pods import PodSampler

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
    # The data plane keeps copying the files meanwhile: a copy is no news to write.
    time.sleep(RESYNC)  # let the last status writes land
    since = time.time()
    failover = request(pair.quangnam, "quangnam", "Switchover", dryRun=True)
    status = ended(pair.quangnam, failover)
    time.sleep(RESYNC)  # room for anything the dry run might wrongly set off
    for site in (pair.danang, pair.quangnam, pair.witness):
        writes = audit_requests(site, OPERATOR_USER, since, WRITE_VERBS)
        others = [(w["verb"], w["requestURI"]) for w in writes if w["objectRef"]["resource"] not in UNAUDITED]
        assert others == [], f"writes at {site.name}: {others}"
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
    # The other site never executes a Failover that does not target it: it ends it, WrongSite.
    elsewhere = request(pair.danang, "quangnam", "Switchover", dryRun=True)
    assert "WrongSite" in ended(pair.danang, elsewhere)["message"]


def test_without_accept_data_loss_a_failover_with_an_unknown_window_is_refused(
    pair: Pair, namespace: str
) -> None:
    name = replicated(pair, namespace, "hotline-1022")
    pair.danang.stop()
    pair.doubles["quangnam"].lose_source(True)
    pair.doubles["quangnam"].lose_metrics(True)  # and no sample ever showed where streaming stopped
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
        eventually(
            lambda: "FailoverRecommended" in event_reasons(pair.quangnam, "default"),
            timeout=30,
            message="quangnam recommends a failover (manual mode)",
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
        # With acceptDataLoss, the same request succeeds: the lapsed witness Lease proves danang cannot act.
        with RoleSampler(pair.operators):
            accepted = request(pair.quangnam, "quangnam", "Failover", acceptDataLoss=True)
            status = ended(pair.quangnam, accepted, timeout=90)
        assert status["phase"] == "Succeeded", status
        assert "dataLossWindowSeconds" not in status  # unknown, and accepted as such
        assert [s["state"] for s in status["steps"]] == [
            "Succeeded",
            "Succeeded",
            "Skipped",
            "Succeeded",
            "Succeeded",
            "Succeeded",
        ]
        here = topology_status(pair.quangnam)
        assert (here["activeSite"], here["epoch"]) == ("quangnam", 2)
        witness = lease(pair.witness, "sharedcore-active")
        assert (witness.spec.holder_identity, witness.metadata.annotations[f"{API_GROUP}/epoch"]) == (
            "quangnam",
            "2",
        )
    finally:
        pair.doubles["quangnam"].lose_source(False)
        pair.doubles["quangnam"].lose_metrics(False)
        pair.danang.start()
    eventually(
        lambda: site_entry(pair.quangnam, "danang").get("reachable") is True,
        timeout=60,
        message="quangnam reaches danang again",
    )
    with RoleSampler(pair.operators) as sampler:
        rejoined = time.monotonic()
        eventually(lambda: claims(pair)["danang"] == ("quangnam", 2), timeout=60, message="danang rejoins")
        eventually(lambda: role_of_site(pair, "danang") == "Standby", timeout=30, message="danang Standby")
    assert "Active" not in sampler.roles("danang", after=rejoined)


# --- moving roles ------------------------------------------------------------------------------------------


def role_of_site(pair: Pair, site: str) -> str | None:
    return role_of(pair.operators[site])


def sites_by_role(pair: Pair) -> tuple[Site, Site]:
    """(active, standby), as danang records it once both agree."""

    def agreed() -> tuple[Site, Site] | None:
        roles = {site.name: role_of_site(pair, site.name) for site in (pair.danang, pair.quangnam)}
        if sorted(roles.values(), key=str) != ["Active", "Standby"]:
            return None
        return (pair.danang, pair.quangnam) if roles["danang"] == "Active" else (pair.quangnam, pair.danang)

    return eventually(agreed, timeout=60, message="one site Active, the other Standby")


def switchover(pair: Pair, to: Site, timeout: float = 90) -> dict[str, Any]:
    name = request(to, to.name, "Switchover")
    status = ended(to, name, timeout=timeout)
    assert status["phase"] == "Succeeded", status
    status["name"] = name
    return status


def ensure_active(pair: Pair, site: Site) -> None:
    active, _ = sites_by_role(pair)
    if active is not site:
        switchover(pair, site)
    sites_by_role(pair)


def set_policy(pair: Pair, **policy: Any) -> None:
    for site in (pair.danang, pair.quangnam):
        patch = {"spec": {"failover": policy}}
        site.custom.patch_cluster_custom_object(API_GROUP, API_VERSION, "topologies", "default", patch)


def objects(
    site: Site, plural: str, namespace: str, group: str = "postgresql.cnpg.io", version: str = "v1"
) -> dict[str, Any]:
    found = site.custom.list_namespaced_custom_object(group, version, namespace, plural)["items"]
    return {o["metadata"]["name"]: o for o in found}


def dns_records(site: Site, namespace: str) -> set[str]:
    return set(objects(site, "dnsendpoints", namespace, "externaldns.k8s.io", "v1alpha1"))


def serving_at(site: Site, namespace: str, names: list[str], epoch: int) -> bool:
    for name in names:
        status = get(site, namespace, name).get("status") or {}
        if (status.get("role"), status.get("epoch")) != ("Active", epoch):
            return False
    return True


def test_a_switchover_there_and_back_loses_nothing_and_hands_over_the_tokens(
    pair: Pair, namespace: str
) -> None:
    ensure_active(pair, pair.danang)
    names = [replicated(pair, namespace, slug) for slug in samples.SLUGS]
    epoch = topology_status(pair.danang)["epoch"]
    with RoleSampler(pair.operators):
        status = switchover(pair, pair.quangnam)
    assert (status["fromSite"], status["toSite"], status["fromEpoch"], status["toEpoch"]) == (
        "danang",
        "quangnam",
        epoch,
        epoch + 1,
    )
    assert status["dataLossWindowSeconds"] == 0.0
    assert all(s["state"] == "Succeeded" and s["startTime"] and s["completionTime"] for s in status["steps"])
    # Rule 5: fenced means its databases demoted and its records withdrawn; how long that took is recorded.
    fence = next(s for s in status["steps"] if s["name"] == "FenceSource")
    assert "databases are demoted and its DNS records withdrawn" in fence["message"]
    print(f"fencing took {status['fencingSeconds']}s (lease {LEASE}s, margin {LEASE / 3:.1f}s)")
    assert status["fencingSeconds"] > 0
    assert topology_status(pair.quangnam)["peerFencingSeconds"] == status["fencingSeconds"]
    assert status["rtoSeconds"] > 0
    # CloudNativePG's handshake, done by the operator: danang's demotion token promoted quangnam's Cluster.
    clusters = objects(pair.quangnam, "clusters", namespace)
    by_service = {s["name"]: s for s in status["services"] if s["namespace"] == namespace}
    for name in names:
        token = by_service[name]["promotionToken"]
        cluster = clusters[f"{name}-db-quangnam"]
        assert cluster["spec"]["replica"]["primary"] == f"{name}-db-quangnam"
        assert cluster["status"]["lastPromotionToken"] == token
        assert token_cluster(token) == f"{name}-db-danang"
        assert by_service[name]["dataLossWindowSeconds"] == 0.0
    public = {n for n in names if get(pair.quangnam, namespace, n)["spec"].get("ingress")}
    assert len(dns_records(pair.quangnam, namespace)) == len(public) > 0
    assert dns_records(pair.danang, namespace) <= {f"{n}-standby" for n in names}  # the archive's look-ups
    assert claims(pair) == {
        "witness": ("quangnam", str(epoch + 1)),
        "danang": ("quangnam", epoch + 1),
        "quangnam": ("quangnam", epoch + 1),
    }
    eventually(lambda: serving_at(pair.quangnam, namespace, names, epoch + 1), timeout=30, message="served")
    reasons = event_reasons(pair.quangnam, status["name"])
    assert {"FailoverStarted", "SiteFenced", "SitePromoted", "FailoverCompleted"} <= reasons
    last = topology_status(pair.quangnam)["lastFailover"]
    assert (last["name"], last["rtoSeconds"], last["dataLossWindowSeconds"]) == (
        status["name"],
        status["rtoSeconds"],
        0.0,
    )
    quangnam = pair.operators["quangnam"]
    assert metric(quangnam, "sharedcore_data_loss_window_seconds", type="Switchover") == 0.0
    assert (metric(quangnam, "sharedcore_failover_duration_seconds", type="Switchover") or 0) > 0
    # What the shipped alerts compare against: each objective, and how long since the witness answered.
    rpo = get(pair.quangnam, namespace, names[0])["spec"]["objectives"]["rpoSeconds"]
    assert metric(quangnam, "sharedcore_service_rpo_seconds", namespace=namespace, name=names[0]) == rpo
    assert (metric(quangnam, "sharedcore_peer_heartbeat_age_seconds", peer="witness") or LEASE) < LEASE
    # danang stands by: its databases follow quangnam's, its files receive.
    for name in names:
        standby_ready(pair.danang, namespace, name, timeout=60)
    with RoleSampler(pair.operators):
        back = switchover(pair, pair.danang)
    assert (back["toSite"], back["toEpoch"], back["dataLossWindowSeconds"]) == ("danang", epoch + 2, 0.0)
    eventually(lambda: serving_at(pair.danang, namespace, names, epoch + 2), timeout=30, message="back")


def test_a_switchover_back_requested_while_the_pair_settles_waits_for_it_and_then_runs(pair: Pair) -> None:
    """CI: requested the moment the switchover to quangnam ended, the switchover back found danang still
    Fenced, handing over, its recorded claim naming itself, and failed for good with a false AlreadyActive.
    Requested here while danang hands over (the moment not left to chance), it waits, Pending with the
    true reason, and then runs from the settled pair."""
    ensure_active(pair, pair.danang)
    epoch = topology_status(pair.danang)["epoch"]

    def status_of(name: str) -> dict[str, Any] | None:
        body = pair.danang.custom.get_cluster_custom_object(API_GROUP, API_VERSION, "failovers", name)
        return body.get("status") or None

    with RoleSampler(pair.operators):
        there = request(pair.quangnam, "quangnam", "Switchover")
        eventually(lambda: role_of_site(pair, "danang") == "Fenced", timeout=30, message="danang hands over")
        back = request(pair.danang, "danang", "Switchover")
        first = eventually(lambda: status_of(back), interval=0.05, message=f"{back} taken up")
        moved = ended(pair.quangnam, there, timeout=90)
        done = ended(pair.danang, back, timeout=90)
    assert moved["phase"] == "Succeeded", moved
    print(f"{back} first: {first['phase']}: {first.get('message')}")
    assert first["phase"] == "Pending", first
    assert first["message"].startswith("PairSettling: the pair has not settled: "), first
    assert "danang is Fenced, not Active" in first["message"], first
    assert done["phase"] == "Succeeded", done
    assert (done["fromSite"], done["fromEpoch"], done["toEpoch"]) == ("quangnam", epoch + 1, epoch + 2)
    assert sites_by_role(pair) == (pair.danang, pair.quangnam)


STEPS = ("FenceSource", "FinalSync", "Promote", "Redirect", "Verify")


def current_step(site: Site, name: str) -> str | None:
    body = site.custom.get_cluster_custom_object(API_GROUP, API_VERSION, "failovers", name)
    steps = (body.get("status") or {}).get("steps") or []
    return next(
        (s["name"] for s in steps if s["state"] not in ("Succeeded", "Skipped")), "done" if steps else None
    )


@pytest.mark.parametrize("step", STEPS)
def test_a_switchover_survives_its_operator_killed_at_each_step(
    pair: Pair, namespace: str, step: str
) -> None:
    replicated_somewhere = samples.service("open-data", namespace)
    active, standby = sites_by_role(pair)
    create_active(active, replicated_somewhere)
    service = replicated_somewhere["metadata"]["name"]
    # Its database reported up as the primary first: a Cluster demoted before it ever ran as one has no
    # demotion token to hand over (nor has the double), and the switchover would wait for it.
    eventually(
        lambda: condition(get(active, namespace, service), "Ready").get("status") == "True",
        timeout=60,
        message=f"{namespace}/{service} Ready at {active.name}",
    )
    # Ready says nothing of the database: in a CI run, a switchover requested 0.5 s after the service was
    # created demoted a Cluster the double had not seen yet, and FenceSource waited past 60 s.
    eventually(
        lambda: reported_primary(active, namespace, service),
        timeout=60,
        message=f"{namespace}/{service}'s database reported up at {active.name}",
    )
    standby_ready(standby, namespace, service)
    target = pair.operators[standby.name]
    with RoleSampler(pair.operators) as sampler:
        name = request(standby, standby.name, "Switchover")
        try:
            reached = eventually(
                lambda: (s := current_step(standby, name)) in (*STEPS[STEPS.index(step) :], "done") and s,
                timeout=60,
                interval=0.02,
                message=f"{name} at {step}",
            )
        except AssertionError as error:
            body = standby.custom.get_cluster_custom_object(API_GROUP, API_VERSION, "failovers", name)
            raise AssertionError(f"{error}; the Failover: {body.get('status')}") from None
        target.stop(signal.SIGKILL)
        down = time.monotonic()
        target.start()
        target.wait_ready(timeout=60)
        down = time.monotonic() - down
        status = ended(standby, name, timeout=90)
    print(
        f"killed at {reached}, down {down:.1f}s; steps: {[(s['name'], s['state']) for s in status['steps']]}"
    )
    if status["phase"] == "Failed" and down >= LEASE and reached in ("FenceSource", "FinalSync", "Promote"):
        # Gone a whole lease before it took the witness Lease: its source took the epoch back (rule 4).
        assert "took epoch" in status["message"], status
        assert sites_by_role(pair) == (active, standby)
        return
    assert status["phase"] == "Succeeded", status
    assert claims(pair)[standby.name] == (standby.name, status["toEpoch"])
    # Fenced for the handover, the source never acts again: its target's restart is not a withdrawal.
    roles = [sample.get(active.name) for _, sample in sampler.samples]
    fenced = roles.index("Fenced") if "Fenced" in roles else len(roles)
    assert "Active" not in roles[fenced:], f"{active.name} Active again during the handover"


def reported_primary(site: Site, namespace: str, service: str) -> bool:
    """Whether the site's data plane reported the service's database Cluster up (the primary it is there)."""
    name = database_cluster(base(service), site.name)
    group, version, plural = CLUSTERS
    cluster = site.custom.get_namespaced_custom_object(group, version, namespace, plural, name)
    return bool((cluster.get("status") or {}).get("currentPrimary"))


def switchover_held_at_final_sync(pair: Pair) -> str:
    """A switchover to quangnam, at its FinalSync with danang fenced for it (danang's double made to lose its
    source first, so that the final sync never completes); its name."""
    name = request(pair.quangnam, "quangnam", "Switchover")
    eventually(lambda: current_step(pair.quangnam, name) == "FinalSync", timeout=60, message="FinalSync")
    eventually(lambda: role_of_site(pair, "danang") == "Fenced", timeout=30, message="danang fenced")
    return name


@pytest.mark.parametrize("mode", ["Manual", "Automatic"])
def test_deleting_a_switchover_before_promote_gives_the_source_its_role_back(
    pair: Pair, namespace: str, mode: str
) -> None:
    """In Automatic mode too (rule 4): the source fenced for the switchover and let go of the witness Lease;
    taking its role back must not look to the standby's automatic trigger like a site that stopped acting."""
    ensure_active(pair, pair.danang)
    replicated(pair, namespace, "open-data")
    set_policy(pair, mode=mode)
    epoch = topology_status(pair.danang)["epoch"]
    before = set(automatic_failovers(pair.quangnam))
    pair.doubles["danang"].lose_source(True)  # the final sync never completes: the switchover waits there
    try:
        with RoleSampler(pair.operators):
            name = switchover_held_at_final_sync(pair)
            pair.quangnam.custom.delete_cluster_custom_object(API_GROUP, API_VERSION, "failovers", name)
            eventually(lambda: role_of_site(pair, "danang") == "Active", timeout=60, message="danang Active")
            time.sleep(LEASE)  # room for a wrong automatic failover
    finally:
        pair.doubles["danang"].lose_source(False)
        set_policy(pair, mode="Manual")
    assert set(automatic_failovers(pair.quangnam)) == before
    assert sites_by_role(pair) == (pair.danang, pair.quangnam)
    assert claims(pair) == {
        "witness": ("danang", str(epoch)),
        "danang": ("danang", epoch),
        "quangnam": ("danang", epoch),
    }


def test_a_source_handing_over_to_a_target_that_falls_silent_takes_its_role_back(
    pair: Pair, namespace: str
) -> None:
    """The target's operator dies during a switchover's final sync, before it took the witness Lease: its
    last heartbeat announces the handover for good, and the source must not stay fenced for it (no site
    would be active). Once the target has not renewed its heartbeat for a lease, the source takes the epoch
    the handover announced, through the witness; the target, back, finds its Failover superseded rather
    than resume it with a final sync the source's writes since have outdated."""
    ensure_active(pair, pair.danang)
    replicated(pair, namespace, "open-data")
    epoch = topology_status(pair.danang)["epoch"]
    target = pair.operators["quangnam"]
    pair.doubles["danang"].lose_source(True)  # the final sync never completes: the switchover waits there
    try:
        with RoleSampler(pair.operators):
            name = switchover_held_at_final_sync(pair)
            target.stop(signal.SIGKILL)
            try:
                silent = time.monotonic()
                eventually(lambda: role_of_site(pair, "danang") == "Active", timeout=60, message="back")
                print(f"danang Active again {time.monotonic() - silent:.1f}s after quangnam fell silent")
                assert claims(pair)["witness"] == ("danang", str(epoch + 1))
            finally:
                target.start()
                target.wait_ready(timeout=60)
            status = ended(pair.quangnam, name, timeout=60)
    finally:
        pair.doubles["danang"].lose_source(False)
    assert status["phase"] == "Failed", status
    assert status["message"].startswith(f"FinalSync: danang took epoch {epoch + 1} while quangnam was silent")
    assert sites_by_role(pair) == (pair.danang, pair.quangnam)
    assert claims(pair) == {
        "witness": ("danang", str(epoch + 1)),
        "danang": ("danang", epoch + 1),
        "quangnam": ("danang", epoch + 1),
    }


def test_a_failover_whose_source_answers_promotes_only_once_its_databases_are_demoted(
    pair: Pair, namespace: str
) -> None:
    """Rule 5: the source fences itself for the Failover and lets go of the witness Lease, but CloudNativePG
    has not demoted its database yet: the target must not promote until it reports demoted."""
    ensure_active(pair, pair.danang)
    name = replicated(pair, namespace, "document-management")
    epoch = topology_status(pair.danang)["epoch"]
    pair.doubles["danang"].hold_demotion(True)
    try:
        with RoleSampler(pair.operators):
            failover = request(pair.quangnam, "quangnam", "Failover", acceptDataLoss=True)
            eventually(lambda: role_of_site(pair, "danang") == "Fenced", timeout=30, message="danang fenced")
            time.sleep(LEASE)  # time enough for a promotion that must not come
            body = pair.quangnam.custom.get_cluster_custom_object(
                API_GROUP, API_VERSION, "failovers", failover
            )
            fence = next(s for s in body["status"]["steps"] if s["name"] == "FenceSource")
            ours = objects(pair.quangnam, "clusters", namespace)[f"{name}-db-quangnam"]
            assert current_step(pair.quangnam, failover) == "FenceSource", body["status"]
            assert f"{namespace}/{name} database (demotion not reported yet)" in fence["message"]
            assert ours["spec"]["replica"]["primary"] == f"{name}-db-danang"
            pair.doubles["danang"].hold_demotion(False)
            status = ended(pair.quangnam, failover, timeout=60)
    finally:
        pair.doubles["danang"].hold_demotion(False)
    assert status["phase"] == "Succeeded", status
    assert claims(pair)["quangnam"] == ("quangnam", epoch + 1)
    assert status["fencingSeconds"] >= LEASE


def automatic_failovers(site: Site) -> dict[str, dict[str, Any]]:
    found = site.custom.list_cluster_custom_object(
        API_GROUP, API_VERSION, "failovers", label_selector=f"{API_GROUP}/automatic"
    )["items"]
    return {f["metadata"]["name"]: f for f in found}


def readiness(pair: Pair, status: str) -> dict[str, Any]:
    """quangnam's AutomaticFailoverReady condition, once it has `status`."""

    def found() -> dict[str, Any] | None:
        current = condition(topology_body(pair.quangnam), "AutomaticFailoverReady")
        return current if current.get("status") == status else None

    return eventually(found, timeout=30, message=f"quangnam: AutomaticFailoverReady {status}")


def readiness_is_reported_at_the_standby(pair: Pair) -> None:
    """Rule 13: quangnam, standing by in Automatic mode, says that an automatic failover would act, and,
    while its replicas' lag is unknown, that it would not and why."""
    readiness(pair, "True")
    assert metric(pair.operators["quangnam"], "sharedcore_automatic_failover_ready", site="quangnam") == 1
    assert not condition(topology_body(pair.danang), "AutomaticFailoverReady"), "only at the standby"
    pair.doubles["quangnam"].lose_metrics(True)
    try:
        unarmed = readiness(pair, "False")
        assert metric(pair.operators["quangnam"], "sharedcore_automatic_failover_ready", site="quangnam") == 0
    finally:
        pair.doubles["quangnam"].lose_metrics(False)
    assert unarmed["reason"] == "DataLossWindowUnknown", unarmed
    assert "no sample" in unarmed["message"] or "Prometheus" in unarmed["message"], unarmed
    readiness(pair, "True")


def copy_of_quangnam(pair: Pair, namespace: str, service: str) -> bool:
    cluster = objects(pair.danang, "clusters", namespace).get(f"{service}-db-danang") or {}
    replica = (cluster.get("spec") or {}).get("replica") or {}
    # The diverged one is deleted with its claims (its volumes moved to kept claims first), then made again.
    return replica.get("primary") == f"{service}-db-quangnam" and not cluster["metadata"].get(
        "deletionTimestamp"
    )


def test_automatic_failover_on_site_loss_then_rejoin_and_automatic_failback(
    pair: Pair, namespace: str
) -> None:
    ensure_active(pair, pair.danang)
    set_policy(pair, mode="Automatic", failback="Manual")
    names = [replicated(pair, namespace, slug) for slug in ("document-management", "smart-city")]
    epoch = topology_status(pair.quangnam)["epoch"]
    before = set(automatic_failovers(pair.quangnam))
    readiness_is_reported_at_the_standby(pair)
    with RoleSampler(pair.operators) as sampler:
        stopped = time.monotonic()
        pair.danang.stop()  # the site's control plane is gone; its operator, cut off from it, runs on
        pair.doubles["quangnam"].lose_source(True)  # quangnam's replicas stop receiving
        try:
            eventually(
                lambda: serving_at(pair.quangnam, namespace, names, epoch + 1),
                timeout=120,
                message="every service Active at quangnam",
            )
            measured = time.monotonic() - stopped
            (name,) = set(automatic_failovers(pair.quangnam)) - before
            status = ended(pair.quangnam, name, timeout=30)
            failover = automatic_failovers(pair.quangnam)[name]
        finally:
            restarted = time.monotonic()
            pair.doubles["quangnam"].lose_source(False)
            pair.danang.start()
        # Rejoin: danang's operator meets the later epoch and stands by, never Active again on its own.
        eventually(lambda: claims(pair)["danang"] == ("quangnam", epoch + 1), timeout=90, message="rejoined")
        eventually(lambda: role_of_site(pair, "danang") == "Standby", timeout=30, message="danang Standby")
        # danang's Clusters were primaries promoted over without their tokens: each is made again as a copy of
        # quangnam's (services.rebuild), so it may be gone for a moment; its service is not Ready until then.
        for service in names:
            eventually(
                lambda service=service: copy_of_quangnam(pair, namespace, service),
                timeout=300,
                message=f"danang's Cluster of {service} made again, following quangnam's",
            )
            standby_ready(pair.danang, namespace, service, timeout=90)
    print(f"RTO measured by the test {measured:.1f}s, recorded {status['rtoSeconds']}s; lease {LEASE}s")
    assert status["phase"] == "Succeeded", status
    assert (failover["spec"]["type"], failover["spec"]["targetSite"]) == ("Failover", "quangnam")
    assert failover["spec"]["reason"].startswith("AutomaticFailover: danang ")
    assert 0 < status["rtoSeconds"] <= measured
    # Known although the WAL receivers stopped: complete up to when they were last seen streaming.
    assert status["dataLossWindowSeconds"] is not None
    fenced = sampler.first("danang", "Fenced", after=stopped)
    promoted = sampler.first("quangnam", "Active", after=stopped)
    assert fenced is not None and promoted is not None and fenced < promoted
    assert "Active" not in sampler.roles("danang", after=restarted)
    assert dns_records(pair.danang, namespace) == set()
    # Automatic failback: once danang has been caught up for the hold time, a Switchover brings it back.
    set_policy(pair, failback="Automatic", failbackHoldSeconds=3)
    with RoleSampler(pair.operators):
        eventually(
            lambda: any(n.startswith("automatic-failback") for n in automatic_failovers(pair.danang)),
            timeout=60,
            message="an automatic failback",
        )
        (back,) = [n for n in automatic_failovers(pair.danang) if n.startswith("automatic-failback")]
        status = ended(pair.danang, back, timeout=90)
    set_policy(pair, mode="Manual", failback="Manual")
    assert status["phase"] == "Succeeded", status
    assert (status["toSite"], status["dataLossWindowSeconds"]) == ("danang", 0.0)
    assert automatic_failovers(pair.danang)[back]["spec"]["reason"].startswith("AutomaticFailback: danang")


def test_a_partition_between_the_sites_alone_moves_nothing(pair: Pair) -> None:
    ensure_active(pair, pair.danang)
    set_policy(pair, mode="Automatic")
    before = set(automatic_failovers(pair.quangnam))
    try:
        with RoleSampler(pair.operators) as sampler:
            cut = time.monotonic()
            pair.danang.bed.partition("danang", "quangnam")
            try:
                eventually(
                    lambda: site_entry(pair.quangnam, "danang").get("reachable") is False,
                    timeout=30,
                    message="quangnam: danang unreachable",
                )
                time.sleep(3 * LEASE)  # well past the lease: the witness still hears from danang
            finally:
                pair.danang.bed.heal("danang", "quangnam")
    finally:
        set_policy(pair, mode="Manual")
    assert set(sampler.roles("danang", after=cut)) == {"Active"}
    assert set(sampler.roles("quangnam", after=cut)) == {"Standby"}
    assert set(automatic_failovers(pair.quangnam)) == before


def quangnam_takes_over(pair: Pair, epoch: int, timeout: float) -> None:
    eventually(
        lambda: claims(pair)["quangnam"] == ("quangnam", epoch + 1),
        timeout=timeout,
        message="quangnam promoted",
    )
    eventually(lambda: role_of_site(pair, "quangnam") == "Active", timeout=30, message="quangnam Active")


def test_cut_off_from_the_witness_the_active_site_fences_itself_before_the_standby_promotes(
    pair: Pair,
) -> None:
    ensure_active(pair, pair.danang)
    set_policy(pair, mode="Automatic")
    epoch = topology_status(pair.danang)["epoch"]
    try:
        with RoleSampler(pair.operators) as sampler:
            cut = time.monotonic()
            pair.danang.bed.partition("danang", "witness")
            try:
                quangnam_takes_over(pair, epoch, timeout=90)
                fenced = sampler.first("danang", "Fenced", after=cut)
            finally:
                pair.danang.bed.heal("danang", "witness")
            eventually(
                lambda: role_of_site(pair, "danang") == "Standby", timeout=60, message="danang Standby"
            )
        (name,) = [n for n in automatic_failovers(pair.quangnam) if n.endswith(f"-epoch-{epoch + 1}")]
        assert ended(pair.quangnam, name, timeout=60)["phase"] == "Succeeded"
    finally:
        set_policy(pair, mode="Manual")
    promoted = sampler.first("quangnam", "Active", after=cut)
    assert fenced is not None and promoted is not None and fenced < promoted
    reasons = [f["spec"]["reason"] for f in automatic_failovers(pair.quangnam).values()]
    assert any(r.startswith("AutomaticFailover: danang reports itself Fenced") for r in reasons), reasons


def set_witness(pair: Pair, witness: dict[str, Any] | None) -> None:
    for site in (pair.danang, pair.quangnam):
        patch = {"spec": {"witness": witness}}
        site.custom.patch_cluster_custom_object(API_GROUP, API_VERSION, "topologies", "default", patch)


def test_without_a_witness_a_partition_fences_the_active_site_before_a_failover_takes_over(
    pair: Pair,
) -> None:
    """Rule 6: Manual mode, no witness, the sites cut off from each other: danang fences itself after two
    thirds of a lease without hearing quangnam, and a Failover at quangnam waits for a whole lease of
    silence, so the two never both act as Active."""
    ensure_active(pair, pair.danang)
    epoch = topology_status(pair.danang)["epoch"]
    witness = topology_body(pair.danang)["spec"]["witness"]
    set_witness(pair, None)
    try:
        eventually(
            lambda: "WitnessReachable" not in str(topology_body(pair.danang)["status"]["conditions"]),
            timeout=30,
            message="danang runs without the witness",
        )
        with RoleSampler(pair.operators) as sampler:
            cut = time.monotonic()
            pair.danang.bed.partition("danang", "quangnam")
            try:
                eventually(lambda: role_of_site(pair, "danang") == "Fenced", timeout=30, message="fenced")
                reason = condition(topology_body(pair.danang), "Ready").get("reason")
                failover = request(pair.quangnam, "quangnam", "Failover", acceptDataLoss=True)
                status = ended(pair.quangnam, failover, timeout=60)
            finally:
                pair.danang.bed.heal("danang", "quangnam")
            eventually(
                lambda: role_of_site(pair, "danang") == "Standby", timeout=60, message="danang Standby"
            )
    finally:
        set_witness(pair, witness)
    assert reason == "PeerSilent"
    assert status["phase"] == "Succeeded", status
    fence = next(s for s in status["steps"] if s["name"] == "FenceSource")
    assert "silent" in fence["message"], fence
    fenced = sampler.first("danang", "Fenced", after=cut)
    promoted = sampler.first("quangnam", "Active", after=cut)
    assert fenced is not None and promoted is not None and fenced < promoted
    assert claims(pair)["quangnam"] == ("quangnam", epoch + 1)
    eventually(
        lambda: role_of_site(pair, "quangnam") == "Active", timeout=60, message="with the witness again"
    )


def set_site_policy(site: Site, **policy: Any) -> None:
    patch = {"spec": {"failover": policy}}
    site.custom.patch_cluster_custom_object(API_GROUP, API_VERSION, "topologies", "default", patch)


def test_sites_with_different_lease_durations_never_both_act_as_active(pair: Pair) -> None:
    """Rule 2: danang (active) runs with a longer lease than quangnam; cut off from both, it fences itself by
    its own lease while quangnam judges the witness Lease by the longer of the two, so they never overlap."""
    ensure_active(pair, pair.danang)
    long_lease = 3 * LEASE
    set_site_policy(pair.quangnam, mode="Automatic")
    set_site_policy(pair.danang, mode="Automatic", leaseDurationSeconds=long_lease)
    epoch = topology_status(pair.danang)["epoch"]
    try:
        # The witness Lease is renewed with danang's duration, which quangnam judges it by.
        eventually(
            lambda: lease(pair.witness, "sharedcore-active").spec.lease_duration_seconds == long_lease,
            timeout=30,
            message="the witness Lease renewed with danang's lease",
        )
        with RoleSampler(pair.operators) as sampler:
            cut = time.monotonic()
            pair.danang.bed.partition("danang", "quangnam")
            pair.danang.bed.partition("danang", "witness")
            try:
                quangnam_takes_over(pair, epoch, timeout=120)
            finally:
                pair.danang.bed.heal("danang", "witness")
                pair.danang.bed.heal("danang", "quangnam")
            eventually(
                lambda: role_of_site(pair, "danang") == "Standby", timeout=60, message="danang Standby"
            )
        for site in (pair.danang, pair.quangnam):
            eventually(
                lambda site=site: (
                    condition(topology_body(site), "SettingsMatch").get("reason") == "SettingsMismatch"
                ),
                timeout=30,
                message=f"{site.name} reports the settings mismatch",
            )
        assert metric(pair.operators["quangnam"], "sharedcore_peer_settings_mismatch", peer="danang") == 1
        assert "SettingsMismatch" in event_reasons(pair.quangnam, "default")
    finally:
        set_site_policy(pair.danang, mode="Manual", leaseDurationSeconds=LEASE)
        set_site_policy(pair.quangnam, mode="Manual")
    fenced = sampler.first("danang", "Fenced", after=cut)
    promoted = sampler.first("quangnam", "Active", after=cut)
    assert fenced is not None and promoted is not None and fenced < promoted
    assert promoted - cut >= long_lease  # the longer lease, not quangnam's own
    eventually(
        lambda: condition(topology_body(pair.quangnam), "SettingsMatch").get("status") == "True",
        timeout=30,
        message="the settings agree again",
    )


def topology_body(site: Site) -> dict[str, Any]:
    body: dict[str, Any] = site.custom.get_cluster_custom_object(
        API_GROUP, API_VERSION, "topologies", "default"
    )
    return body


def test_the_kubectl_plugin_plans_and_follows_a_switchover_and_reports_a_refusal(
    pair: Pair, namespace: str
) -> None:
    ensure_active(pair, pair.danang)
    name = replicated(pair, namespace, "open-data")
    at = {site.name: f"--kubeconfig={site.kubeconfig}" for site in (pair.danang, pair.quangnam)}
    drill = kubectl_with_plugin("sharedcore", "drill", "--to", "quangnam", at["quangnam"]).stdout
    assert "Planned: danang → quangnam" in drill and "preconditions hold" in drill
    with RoleSampler(pair.operators):
        moved = kubectl_with_plugin(
            "sharedcore", "switchover", "--to", "quangnam", "--reason", "CHG-1234", at["quangnam"]
        ).stdout
    print(moved)
    for step in ("FenceSource", "FinalSync", "Promote", "Redirect", "Verify"):
        assert f"✓ {step}" in moved
    assert "Succeeded: danang → quangnam" in moved and "data-loss window 0.0s" in moved
    report = json.loads(
        kubectl_with_plugin("sharedcore", "status", at["quangnam"], "-n", namespace, "-o", "json").stdout
    )
    assert (report["activeSite"], report["lastFailover"]["phase"]) == ("quangnam", "Succeeded")
    assert report["lastFailover"]["name"].startswith("switchover-to-quangnam-")
    assert [s["name"] for s in report["services"]] == [name]
    # Asking the active site to fail over to itself is refused, and the plugin exits non-zero saying why.
    refused = kubectl_with_plugin(
        "sharedcore", "failover", "--to", "quangnam", "--reason", "INC-42", at["quangnam"], check=False
    )
    assert refused.returncode == 1 and "AlreadyActive" in refused.stdout
    with RoleSampler(pair.operators):
        kubectl_with_plugin("sharedcore", "switchover", "--to", "danang", at["danang"])
    assert claims(pair)["danang"][0] == "danang"


def test_an_archive_moves_ingest_whole_keeps_reading_at_the_standby_and_never_deletes_its_files(
    pair: Pair, namespace: str
) -> None:
    """The e-archive: its ingest worker runs at one site at most, sampled through a switchover there and
    back; the read-only host is published by whichever site stands by, whose search front end keeps
    answering throughout; deleting the SharedService leaves its files and catalogue at both sites."""
    ensure_active(pair, pair.danang)
    name = replicated(pair, namespace, "e-archive")
    settings = get(pair.danang, namespace, name)["spec"]["settings"]["eArchive"]

    def read_only_record(site: Site) -> tuple[str, list[str]] | None:
        record = objects(site, "dnsendpoints", namespace, "externaldns.k8s.io", "v1alpha1").get(
            f"{name}-standby"
        )
        if record is None:
            return None
        (endpoint,) = record["spec"]["endpoints"]
        return endpoint["dnsName"], endpoint["targets"]

    def web_ready(site: Site) -> int:
        status = site.apps.read_namespaced_deployment(f"{name}-web", namespace).status
        return status.ready_replicas or 0

    eventually(
        lambda: read_only_record(pair.quangnam) == (settings["readOnlyHost"], [ADDRESSES["quangnam"]]),
        timeout=30,
        message="the read-only host published by the standby",
    )
    assert read_only_record(pair.danang) is None
    eventually(lambda: web_ready(pair.quangnam) == 2, timeout=30, message="look-ups served at the standby")
    ingest = f"app.kubernetes.io/instance={name},app.kubernetes.io/component=ingest-worker"
    sites = (pair.danang, pair.quangnam)
    with PodSampler(sites, namespace, ingest) as pods, RoleSampler(pair.operators):
        switchover(pair, pair.quangnam)
        eventually(lambda: pods.samples[-1][1] == {"danang": 0, "quangnam": 2}, timeout=30, message="moved")
        reading = [web_ready(pair.quangnam)]
        eventually(
            lambda: read_only_record(pair.danang) == (settings["readOnlyHost"], [ADDRESSES["danang"]]),
            timeout=60,
            message="the read-only host follows the new standby",
        )
        standby_ready(pair.danang, namespace, name, timeout=60)
        switchover(pair, pair.danang)
        eventually(lambda: pods.samples[-1][1] == {"danang": 2, "quangnam": 0}, timeout=30, message="back")
    print(f"{len(pods.samples)} samples of the ingest pods, danang {set(pods.at('danang'))}")
    assert pods.overlaps == [], f"ingest at both sites: {pods.overlaps[:3]}"
    assert min(reading) > 0
    # Deleting the archive's SharedService deletes no record: its files and catalogue stay at both sites.
    plural = "sharedservices"
    pair.danang.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, plural, name)
    eventually(lambda: try_get(pair.quangnam, namespace, name) is None, timeout=60, message="the copy gone")
    time.sleep(RESYNC)
    for site in sites:
        claim = site.core.read_namespaced_persistent_volume_claim(f"{name}-files", namespace)
        assert claim.metadata.deletion_timestamp is None and not claim.metadata.owner_references, site.name
        assert f"{name}-db-{site.name}" in objects(site, "clusters", namespace), site.name
