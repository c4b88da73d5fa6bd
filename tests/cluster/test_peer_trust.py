"""What one site may do at the other and at the witness, and what happens when that link is broken or
misconfigured: reported (condition, Event, metric), never fatal; Failovers created where they cannot run end
at once with the reason."""

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from sharedcore import API_GROUP, API_VERSION, rbac
from sharedcore.render.output import to_yaml
from sharedcore_testbed import Testbed, operators
from sharedcore_testbed.operators import OPERATOR_NAMESPACE, peer_user
from sharedcore_testbed.pair import WITNESS_LEASE
from tests.cluster.test_failover import ensure_active, replicated, switchover
from tests.cluster.test_two_sites import labelled_secret, secret_value
from tests.conftest import Sites
from tests.support.cluster import Site, eventually
from tests.support.pair import (
    WITNESS_SECRET,
    Pair,
    metric,
    peer_secret,
    put_secret,
    running_pair,
    site_entry,
    topology,
    topology_condition,
)

pytestmark = [pytest.mark.cluster, pytest.mark.workloads]


@pytest.fixture(scope="module")
def pair(sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with running_pair(sites, tmp_path_factory.mktemp("peer-trust")) as running:
        yield running


def topology_events(site: Site, reason: str) -> list[str]:
    found = site.core.list_namespaced_event("default", field_selector=f"reason={reason}").items
    return [event.message for event in found if event.involved_object.kind == "Topology"]


def alive(pair: Pair) -> None:
    for name, process in pair.operators.items():
        assert process.process is not None and process.process.poll() is None, (
            f"the operator at {name} exited:\n{process.log_tail()}"
        )


def holder(witness: Site) -> str | None:
    try:
        found = witness.coordination.read_namespaced_lease(WITNESS_LEASE, OPERATOR_NAMESPACE)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return str(found.spec.holder_identity or "") or None


def request(site: Site, target: str) -> str:
    name = f"to-{target}-{int(time.time() * 1000)}"
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "Failover",
        "metadata": {"name": name},
        "spec": {"targetSite": target, "type": "Switchover", "reason": "test"},
    }
    site.custom.create_cluster_custom_object(API_GROUP, API_VERSION, "failovers", body)
    return name


@pytest.mark.parametrize(("target", "reason"), [("quangnam", "WrongSite"), ("hoian", "UnknownSite")])
def test_a_failover_created_where_it_cannot_run_fails_at_once_with_the_reason(
    pair: Pair, target: str, reason: str
) -> None:
    eventually(lambda: site_entry(pair.danang, "danang").get("role") == "Active", message="danang Active")
    name = request(pair.danang, target)

    def failed() -> dict[str, Any] | None:
        body = pair.danang.custom.get_cluster_custom_object(API_GROUP, API_VERSION, "failovers", name)
        status: dict[str, Any] = body.get("status") or {}
        return status if status.get("phase") == "Failed" else None

    status = eventually(failed, timeout=10, message=f"Failover {name} at danang failed")
    assert f"{reason}: " in status["message"]
    events = eventually(
        lambda: (
            pair.danang.core.list_namespaced_event(
                "default", field_selector=f"involvedObject.name={name}"
            ).items
        ),
        timeout=10,
        message="the Event posted",
    )
    assert [(e.reason, reason in e.message) for e in events] == [("FailoverFailed", True)]
    assert site_entry(pair.danang, "danang").get("role") == "Active", "nothing moved"


def test_a_malformed_kubeconfig_secret_is_refused_and_the_working_link_kept(pair: Pair) -> None:
    good = pair.links[("quangnam", "danang")]
    config = yaml.safe_load(good)
    config["users"][0]["user"] = {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}
    for broken in (yaml.safe_dump(config), "- just\n- a list\n", "{{ not yaml"):
        put_secret(pair.quangnam, peer_secret("danang"), broken)
        refused = eventually(
            lambda: (
                topology_condition(pair.quangnam, "PeerConnected").get("reason") == "KubeconfigRejected"
                and topology_condition(pair.quangnam, "PeerConnected")
            ),
            timeout=20,
            message="quangnam refuses the malformed kubeconfig",
        )
        assert "still using the kubeconfig read before" in refused["message"]
        assert site_entry(pair.quangnam, "danang").get("reachable") is True, "the last good client goes on"
        assert metric(pair.operators["quangnam"], "sharedcore_peer_kubeconfig_rejected", peer="danang") == 1
        put_secret(pair.quangnam, peer_secret("danang"), good)
        eventually(
            lambda: topology_condition(pair.quangnam, "PeerConnected").get("status") == "True",
            timeout=20,
            message="quangnam accepts the good kubeconfig again",
        )
    assert any("tokenFile" in m for m in topology_events(pair.quangnam, "KubeconfigRejected"))
    alive(pair)


def restart_from_scratch(pair: Pair, witness_kubeconfigs: dict[str, str]) -> None:
    """Both operators started anew on sites without Topology status, heartbeats or Leases: a first install."""
    for process in pair.operators.values():
        process.stop(signal.SIGKILL)
    pair.forget()
    for site in pair.sites:
        put_secret(site, WITNESS_SECRET, witness_kubeconfigs[site.name])
        site.custom.create_cluster_custom_object(API_GROUP, API_VERSION, "topologies", topology())
    for process in pair.operators.values():
        process.start()


def test_a_witness_without_the_system_namespace_is_reported_not_fatal(
    pair: Pair, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The README's first steps with a witness cluster nobody prepared: both operators start, say why the
    witness cannot be used and what to do, and no site becomes active without the Lease."""
    empty = Testbed(tmp_path_factory.mktemp("empty-witness"))
    empty.up(["witness"])
    try:
        bare = empty.kubeconfig("witness").read_text()
        restart_from_scratch(pair, {site.name: bare for site in pair.sites})
        time.sleep(8)
        alive(pair)
        # danang, the preferred primary, tries to take the Lease: creating it is what the missing namespace
        # refuses (quangnam only reads, and a Lease that cannot be read is just not there yet).
        reported = eventually(
            lambda: (
                "sharedcore-system" in topology_condition(pair.danang, "WitnessReachable").get("message", "")
                and topology_condition(pair.danang, "WitnessReachable")
            ),
            timeout=30,
            message="danang reports the witness's missing namespace",
        )
        assert reported["status"] == "False" and "sharedcore peer-identity" in reported["message"]
        assert "Active" not in [site_entry(site, site.name).get("role") for site in pair.sites]
        alive(pair)
    finally:
        restart_from_scratch(pair, {site.name: pair.links[(site.name, "witness")] for site in pair.sites})
        empty.down()
    for process in pair.operators.values():
        process.wait_ready(timeout=60)
    eventually(
        lambda: all(topology_condition(s, "WitnessReachable").get("status") == "True" for s in pair.sites),
        timeout=60,
        message="both sites reach the real witness again",
    )
    alive(pair)


def test_each_site_uses_only_the_shipped_peer_identity_at_the_other_site_and_the_witness(
    pair: Pair, namespace: str
) -> None:
    """Steady state, replication of a service and a labelled Secret, a switchover there and back: at each
    cluster the other site acts only as its `sharedcore peer-identity` ServiceAccount, is never denied, and
    touches no namespace but the system namespace and the one it was invited to."""
    since = time.time()
    ensure_active(pair, pair.danang)
    replicated(pair, namespace, "open-data")
    pair.danang.core.create_namespaced_secret(namespace, labelled_secret(namespace, "portal", replicate=True))
    eventually(lambda: secret_value(pair.quangnam, namespace, "portal"), timeout=30, message="Secret copied")
    switchover(pair, pair.quangnam)
    switchover(pair, pair.danang)
    time.sleep(3)  # the audit log is written as requests complete
    for site in (pair.danang, pair.quangnam, pair.witness):
        for other in (s for s in pair.sites if s is not site):
            user = peer_user(other.name)
            requests = operators.audit_events(site.audit_log, user, since)
            assert requests, f"{other.name} reached {site.name} as {user}"
            denied = [
                (r["verb"], r["requestURI"]) for r in requests if r["responseStatus"]["code"] in (401, 403)
            ]
            assert denied == [], f"{other.name} was denied at {site.name}"
            elsewhere = {
                r["objectRef"]["namespace"]
                for r in requests
                if r.get("objectRef", {}).get("namespace") not in (None, OPERATOR_NAMESPACE, namespace)
            }
            assert elsewhere == set(), f"{other.name} reached into {elsewhere} at {site.name}"
            by_agent = {
                r["user"]["username"]
                for r in operators.audit_events(site.audit_log, None, since)
                if r.get("userAgent") == f"sharedcore/{other.name}"
            }
            assert by_agent == {user}, (
                f"{other.name}'s operator acts at {site.name} only as its peer identity"
            )


def test_a_refused_identity_and_a_deleted_lease_are_reported_not_fatal(pair: Pair) -> None:
    """danang takes quangnam's identity's rights away (403 at every visit), and someone deletes the witness
    Lease: both operators keep running, quangnam says what to do, and the Lease is taken again."""
    binding = rbac.peer_account("quangnam")
    pair.danang.kubectl("delete", "rolebinding", binding, "-n", OPERATOR_NAMESPACE)
    pair.danang.kubectl("delete", "clusterrolebinding", binding)
    try:
        refused = eventually(
            lambda: (
                "forbidden" in topology_condition(pair.quangnam, "PeerConnected").get("message", "").lower()
                and topology_condition(pair.quangnam, "PeerConnected")
            ),
            timeout=30,
            message="quangnam reports the refusal",
        )
        assert refused["status"] == "False" and "sharedcore peer-identity --site danang" in refused["message"]
        assert topology_events(pair.quangnam, refused["reason"]), "an Event says so"
        alive(pair)
    finally:
        pair.danang.kubectl(
            "apply", "--server-side", "-f", "-", stdin=to_yaml(rbac.peer_identity("danang", "quangnam"))
        )
    eventually(
        lambda: topology_condition(pair.quangnam, "PeerConnected").get("status") == "True",
        timeout=30,
        message="quangnam reaches danang again",
    )
    pair.witness.coordination.delete_namespaced_lease(WITNESS_LEASE, OPERATOR_NAMESPACE)
    eventually(lambda: holder(pair.witness), timeout=30, message="the witness Lease taken again")
    alive(pair)
