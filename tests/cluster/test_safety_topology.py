"""Issue 11, rules 1 and 3 on the real planes: a site acts only once it knows its role, and no unusable
Topology, restart or missing object ever makes the standby's copy writable.

Both operators run as their ServiceAccounts, reaching each other only through the link proxies, under a
`RoleSampler` (no sample may show two Active sites). A `replica_watch` records every version of the standby's
CloudNativePG Clusters (the testbed's stand-in CRD) that the API server stores, so that even a moment without
`spec.replica` would be seen.
"""

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from sharedcore import API_GROUP, API_VERSION
from sharedcore.render import names
from sharedcore_testbed.operators import peer_user
from sharedcore_testbed.roles import RoleSampler, role_of
from tests.cluster.test_failover import objects, replicated, sites_by_role
from tests.cluster.test_operator import PLURAL, get
from tests.conftest import Sites
from tests.support import samples
from tests.support.cluster import Site, eventually
from tests.support.dataplane import CNPG, is_primary
from tests.support.operator import OPERATOR_USER, WRITE_VERBS, audit_requests
from tests.support.pair import RESYNC, Pair, running_pair, topology, topology_condition

pytestmark = [pytest.mark.cluster, pytest.mark.workloads]
TOPOLOGY = (API_GROUP, API_VERSION, "topologies")
# What a site writes at its peer as routine: heartbeats and Events about the pair.
ROUTINE = frozenset({"leases", "events"})


@pytest.fixture(scope="module")
def pair(sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with running_pair(sites, tmp_path_factory.mktemp("safety-topology")) as running:
        yield running


@contextlib.contextmanager
def replica_watch(site: Site, namespace: str) -> Iterator[list[tuple[str, dict[str, Any] | None]]]:
    """Every stored version of the Clusters in one namespace at one site, as (name, spec.replica)."""
    seen: list[tuple[str, dict[str, Any] | None]] = []
    stop = threading.Event()
    group, version, plural = CNPG

    def follow() -> None:
        listed = site.custom.list_namespaced_custom_object(group, version, namespace, plural)
        seen.extend((obj["metadata"]["name"], obj["spec"].get("replica")) for obj in listed["items"])
        revision = listed["metadata"]["resourceVersion"]
        while not stop.is_set():
            for event in watch.Watch().stream(
                site.custom.list_namespaced_custom_object,
                group,
                version,
                namespace,
                plural,
                resource_version=revision,
                timeout_seconds=2,
            ):
                obj = event["object"]
                revision = obj["metadata"]["resourceVersion"]
                if event["type"] in ("ADDED", "MODIFIED"):
                    seen.append((obj["metadata"]["name"], obj["spec"].get("replica")))

    thread = threading.Thread(target=follow, name="replica-watch", daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=10)


def standby_replica(service: str) -> dict[str, str]:
    base = names.base(service)
    danang, quangnam = names.database_cluster(base, "danang"), names.database_cluster(base, "quangnam")
    return {"primary": danang, "self": quangnam, "source": danang}


def kept_in_standby_form(pair: Pair, namespace: str, service: str) -> None:
    """After a resync (every service re-rendered): the Cluster follows danang, the files still arrive."""
    time.sleep(RESYNC + 1)
    base = names.base(service)
    cluster = objects(pair.quangnam, "clusters", namespace)[names.database_cluster(base, "quangnam")]
    assert cluster["spec"].get("replica") == standby_replica(service)
    destinations = objects(pair.quangnam, "replicationdestinations", namespace, "volsync.backube", "v1alpha1")
    assert names.files_replication(base) in destinations


def fenced(pair: Pair, site: str) -> None:
    eventually(lambda: role_of(pair.operators[site]) == "Fenced", timeout=30, message=f"{site} Fenced")


def topology_events(site: Site) -> set[str]:
    found = site.core.list_namespaced_event(
        "default", field_selector="involvedObject.kind=Topology,involvedObject.name=default"
    )
    return {event.reason for event in found.items}


def replace_topology(site: Site, body: dict[str, Any]) -> None:
    try:
        site.custom.delete_cluster_custom_object(*TOPOLOGY, "default")
    except client.ApiException as error:
        if error.status != 404:
            raise
    eventually(lambda: not site.custom.list_cluster_custom_object(*TOPOLOGY)["items"], message="deleted")
    site.custom.create_cluster_custom_object(*TOPOLOGY, body)


def the_mistakes(pair: Pair, namespace: str, service: str) -> None:
    # (a) The Topology deleted at the standby (a person, a GitOps prune, a CRD reinstall).
    pair.quangnam.custom.delete_cluster_custom_object(*TOPOLOGY, "default")
    fenced(pair, "quangnam")
    kept_in_standby_form(pair, namespace, service)
    assert "TopologyDeleted" in topology_events(pair.quangnam)

    # (b) The standby's operator restarted without a Topology: it remembers its pair.
    pair.operators["quangnam"].stop()
    pair.operators["quangnam"].start()
    pair.operators["quangnam"].wait_ready()
    fenced(pair, "quangnam")
    kept_in_standby_form(pair, namespace, service)

    # (c) A Topology that does not name this site.
    stranger = topology()
    stranger["spec"]["sites"][1]["name"] = "hoian"
    pair.quangnam.custom.create_cluster_custom_object(*TOPOLOGY, stranger)
    eventually(
        lambda: topology_condition(pair.quangnam, "Ready").get("reason") == "SiteNotInTopology",
        message="quangnam says why it is fenced",
    )
    assert role_of(pair.operators["quangnam"]) == "Fenced"
    kept_in_standby_form(pair, namespace, service)

    # (d) A Topology naming another peer (a typo of danang's name): no site its databases ever copied.
    renamed = topology()
    renamed["spec"]["sites"][0]["name"] = renamed["spec"]["preferredPrimary"] = "danag"
    replace_topology(pair.quangnam, renamed)
    kept_in_standby_form(pair, namespace, service)
    assert topology_condition(pair.quangnam, "Ready").get("reason") == "PeerChanged"


def test_an_unusable_topology_never_makes_the_standby_writable(pair: Pair, namespace: str) -> None:
    active, standby = sites_by_role(pair)
    assert (active.name, standby.name) == ("danang", "quangnam")
    service = replicated(pair, namespace, "open-data")
    kept_in_standby_form(pair, namespace, service)
    try:
        with RoleSampler(pair.operators) as sampler, replica_watch(pair.quangnam, namespace) as replicas:
            the_mistakes(pair, namespace, service)
    finally:
        # The right Topology again (a later test needs the pair): quangnam stands by, as before.
        replace_topology(pair.quangnam, topology())
        eventually(
            lambda: role_of(pair.operators["quangnam"]) == "Standby", timeout=60, message="Standby again"
        )
    assert "Active" not in sampler.roles("quangnam")
    assert replicas, "the watch saw no Cluster"
    assert {replica == standby_replica(service) for _, replica in replicas} == {True}, replicas


def test_the_active_sites_topology_deleted_fences_its_writers_and_moves_nothing(
    pair: Pair, namespace: str
) -> None:
    """At the active site the same mistake is an outage of that site, not a second primary: its databases
    follow the standby's, which stays a copy; restored, the Topology gives danang its role back."""
    active, _ = sites_by_role(pair)
    assert active.name == "danang"
    service = replicated(pair, namespace, "smart-city")
    own = names.database_cluster(names.base(service), "danang")
    try:
        with RoleSampler(pair.operators) as sampler, replica_watch(pair.quangnam, namespace) as replicas:
            pair.danang.custom.delete_cluster_custom_object(*TOPOLOGY, "default")
            fenced(pair, "danang")
            eventually(
                lambda: not is_primary(objects(pair.danang, "clusters", namespace)[own]),
                timeout=RESYNC * 3,
                message="danang's database no longer the primary",
            )
            assert "TopologyDeleted" in topology_events(pair.danang)
            kept_in_standby_form(pair, namespace, service)
            assert role_of(pair.operators["quangnam"]) == "Standby"
        assert "Active" not in sampler.roles("quangnam")
        assert {replica == standby_replica(service) for _, replica in replicas} == {True}, replicas
    finally:
        replace_topology(pair.danang, topology())
    sites_by_role(pair)  # danang Active again, quangnam its standby
    eventually(
        lambda: is_primary(objects(pair.danang, "clusters", namespace)[own]),
        timeout=RESYNC * 3,
        message="danang's database the primary again",
    )


def test_a_restarting_standby_never_pushes_its_stale_copies(pair: Pair, namespace: str) -> None:
    """quangnam's operator restarts while its copies are stale (danang cannot reach it to update them) and
    while it cannot reach the witness (so it takes a while to decide its role): it must not act as the
    active site meanwhile, and so must not replicate its stale copies over danang's objects."""
    active, _ = sites_by_role(pair)
    assert active.name == "danang"
    body = samples.service("hotline-1022", namespace)
    service = replicated(pair, namespace, "hotline-1022")
    original = body["spec"]["version"]
    bed = pair.danang.bed
    bed.partition("danang", "quangnam", one_way=True)  # danang's replication cannot reach quangnam
    try:
        pair.danang.custom.patch_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, PLURAL, service, {"spec": {"version": "9.9.9"}}
        )
        time.sleep(RESYNC)
        assert get(pair.quangnam, namespace, service)["spec"]["version"] == original  # stale now
        with RoleSampler(pair.operators) as sampler:
            pair.operators["quangnam"].stop()
            bed.partition("quangnam", "witness", one_way=True)
            since = time.time()
            pair.operators["quangnam"].start()
            pair.operators["quangnam"].wait_ready()
            eventually(
                lambda: role_of(pair.operators["quangnam"]) in ("Standby", "Fenced"),
                timeout=30,
                message="quangnam decided",
            )
            time.sleep(RESYNC + 1)  # a replication pass, had quangnam thought itself active
            assert get(pair.danang, namespace, service)["spec"]["version"] == "9.9.9"
            pushed = [
                (w["verb"], w["requestURI"])
                for w in audit_requests(pair.danang, peer_user("quangnam"), since, WRITE_VERBS)
                if w.get("userAgent") == "sharedcore/quangnam" and w["objectRef"]["resource"] not in ROUTINE
            ]
            assert pushed == []
            # Nor did it render itself Active at home: a DNS record is what only the active form has.
            records = [
                w["requestURI"]
                for w in audit_requests(pair.quangnam, OPERATOR_USER, since, WRITE_VERBS)
                if w["objectRef"]["resource"] == "dnsendpoints"
            ]
            assert records == []
        assert "Active" not in sampler.roles("quangnam")
    finally:
        bed.heal("quangnam", "witness")
        bed.heal("danang", "quangnam")
    eventually(
        lambda: get(pair.quangnam, namespace, service)["spec"]["version"] == "9.9.9",
        timeout=60,
        message="danang's version copied once the link is back",
    )
    eventually(lambda: role_of(pair.operators["quangnam"]) == "Standby", timeout=60, message="Standby")
