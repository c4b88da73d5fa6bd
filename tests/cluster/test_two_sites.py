"""Two sites in steady state: roles and epochs, heartbeats, configuration replication and a live standby.

One operator process per site, each authenticated as its own ServiceAccount at its own site, reaching the
other site and the witness only through the testbed's link proxies (so partitions and outages apply), with
kubeconfigs it reads from Secrets the Topology names. CloudNativePG and VolSync are played by
`tests.support.dataplane`.
"""

import base64
import datetime
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from kubernetes import client

from sharedcore import API_GROUP, API_VERSION
from sharedcore.api import Role, SharedService
from sharedcore.render import PeerSite, SiteContext, names, render
from sharedcore.replication.content import REPLICATE_LABEL
from sharedcore_testbed.operators import peer_user
from sharedcore_testbed.previous_system import PreviousSystem, reconcile
from tests.cluster.test_operator import PLURAL, condition, create, get, wait_ready
from tests.conftest import Sites
from tests.support import samples
from tests.support.cluster import Site, eventually
from tests.support.operator import (
    OPERATOR_USER,
    WRITE_VERBS,
    audit_requests,
)
from tests.support.pair import (
    ADDRESSES,
    HEARTBEAT,
    LEASE,
    RESYNC,
    SERVICE_DOMAIN,
    Pair,
    lease,
    metric,
    peer_secret,
    put_secret,
    running_pair,
    site_entry,
    topology_condition,
    topology_status,
)

pytestmark = [pytest.mark.cluster, pytest.mark.workloads]


@pytest.fixture(scope="module")
def pair(sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with running_pair(sites, tmp_path_factory.mktemp("two-sites")) as running:
        yield running


# --- reading the sites ---------------------------------------------------------------------------------


def renew_times(site: Site, name: str, seconds: float) -> list[datetime.datetime]:
    """The distinct renewTimes of a Lease seen over `seconds`."""
    seen: list[datetime.datetime] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        renewed = lease(site, name).spec.renew_time
        if not seen or renewed != seen[-1]:
            seen.append(renewed)
        time.sleep(0.2)
    return seen


def try_get(site: Site, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return get(site, namespace, name)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def standby_ready(site: Site, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        body = try_get(site, namespace, name)
        status = (body or {}).get("status") or {}
        current = body and status.get("observedGeneration") == body["metadata"]["generation"]
        if current and status.get("role") == "Standby" and condition(body, "Ready").get("status") == "True":
            return body
        return None

    return eventually(ready, timeout=timeout, message=f"{namespace}/{name} Ready in standby form")


def copied(site: Site, namespace: str, name: str, timeout: float = 60) -> dict[str, Any]:
    return eventually(
        lambda: try_get(site, namespace, name), timeout=timeout, message=f"{namespace}/{name} copied"
    )


def labelled_secret(namespace: str, name: str, replicate: bool, value: str = "s3cret") -> dict[str, Any]:
    labels = {REPLICATE_LABEL: "true"} if replicate else {}
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"password": base64.b64encode(value.encode()).decode()},
    }


def create_active(site: Site, body: dict[str, Any]) -> None:
    """Create a service at the active site, with its TLS Secret (as cert-manager would issue it there)
    labelled to follow it to the standby."""
    tls = (body["spec"].get("ingress") or {}).get("tlsSecretName")
    if tls:
        namespace = body["metadata"]["namespace"]
        secret = samples.tls_secret(namespace, tls)
        secret["metadata"]["labels"] = {REPLICATE_LABEL: "true"}
        try:
            site.core.create_namespaced_secret(namespace, secret)
        except client.ApiException as error:
            if error.status != 409:
                raise
    create(site, body)


def secret_value(site: Site, namespace: str, name: str) -> str | None:
    try:
        secret = site.core.read_namespaced_secret(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return base64.b64decode(secret.data["password"]).decode()


def standby_context() -> SiteContext:
    return SiteContext(
        "quangnam",
        Role.STANDBY,
        1,
        ingress_address=ADDRESSES["quangnam"],
        peer=PeerSite("danang", SERVICE_DOMAIN),
    )


# --- the scenarios -------------------------------------------------------------------------------------


def test_bootstrap_makes_danang_active_and_quangnam_standby_at_epoch_1(pair: Pair) -> None:
    for site in (pair.danang, pair.quangnam):
        eventually(
            lambda site=site: (
                (s := topology_status(site)).get("activeSite") == "danang" and s.get("epoch") == 1
            ),
            timeout=60,
            message=f"{site.name} agrees: danang active at epoch 1",
        )
        print(f"{site.name} agrees {time.monotonic() - pair.started:.1f}s after the operators started")
        eventually(
            lambda site=site: topology_condition(site, "PeerConnected").get("status") == "True",
            timeout=30,
            message=f"{site.name} connected to its peer",
        )
    ready = {site.name: topology_condition(site, "Ready") for site in (pair.danang, pair.quangnam)}
    assert (ready["danang"]["status"], ready["danang"]["reason"]) == ("True", "Active")
    assert (ready["quangnam"]["status"], ready["quangnam"]["reason"]) == ("True", "Standby")
    # Each site's status shows the other as its heartbeats describe it.
    seen = eventually(
        lambda: (entry := site_entry(pair.danang, "quangnam")).get("role") == "Standby" and entry,
        timeout=30,
        message="danang sees quangnam as Standby",
    )
    assert seen["reachable"] is True and seen["epoch"] == 1 and seen["lastHeartbeatTime"]
    eventually(
        lambda: site_entry(pair.quangnam, "danang").get("role") == "Active",
        timeout=30,
        message="quangnam sees danang as Active",
    )
    assert topology_condition(pair.danang, "WitnessReachable")["status"] == "True"

    active = lease(pair.witness, "sharedcore-active")
    assert active.spec.holder_identity == "danang"
    assert active.metadata.annotations[f"{API_GROUP}/epoch"] == "1"
    danang, quangnam = pair.operators["danang"], pair.operators["quangnam"]
    assert metric(danang, "sharedcore_site_role", site="danang", role="Active") == 1
    assert metric(danang, "sharedcore_site_role", site="danang", role="Fenced") == 0
    assert metric(quangnam, "sharedcore_site_role", site="quangnam", role="Standby") == 1
    assert metric(danang, "sharedcore_epoch") == metric(quangnam, "sharedcore_epoch") == 1
    age = metric(danang, "sharedcore_peer_heartbeat_age_seconds", peer="quangnam")
    assert age is not None and age < LEASE

    # Each site renews its heartbeat in both clusters, every heartbeatIntervalSeconds.
    for where in (pair.danang, pair.quangnam):
        for whose in ("danang", "quangnam"):
            renewals = renew_times(where, f"sharedcore-heartbeat-{whose}", 4 * HEARTBEAT)
            gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(renewals)]
            print(f"heartbeat of {whose} seen at {where.name}: gaps {[round(g, 2) for g in gaps]}")
            assert len(renewals) >= 3, f"{whose}'s heartbeat at {where.name} is renewed"


def test_every_platform_is_copied_and_runs_in_standby_form(pair: Pair, namespace: str) -> None:
    danang, quangnam = pair.danang, pair.quangnam
    bodies = [samples.service(slug, namespace) for slug in samples.SLUGS]
    danang.core.create_namespaced_secret(namespace, labelled_secret(namespace, "smtp", replicate=True))
    danang.core.create_namespaced_secret(namespace, labelled_secret(namespace, "local-only", replicate=False))
    started = time.monotonic()
    for body in bodies:
        create_active(danang, body)
    arrivals = {}
    for body in bodies:
        name = body["metadata"]["name"]
        copy = copied(quangnam, namespace, name)
        arrivals[name] = round(time.monotonic() - started, 2)
        annotations = copy["metadata"]["annotations"]
        assert annotations[f"{API_GROUP}/origin-site"] == "danang"
        assert annotations[f"{API_GROUP}/origin-epoch"] == "1"
        assert copy["spec"] == get(danang, namespace, name)["spec"]
    print(f"seconds from creation at danang to the copy at quangnam: {arrivals}")

    for body in bodies:
        name = body["metadata"]["name"]
        status = standby_ready(quangnam, namespace, name)["status"]
        assert (status["site"], status["role"], status["epoch"]) == ("quangnam", "Standby", 1)
        expected = render(SharedService.model_validate(get(danang, namespace, name)), standby_context())
        deployments = {
            d.metadata.name: d.spec.replicas
            for d in quangnam.apps.list_namespaced_deployment(namespace).items
        }
        for obj in expected:
            if obj["kind"] == "Deployment":
                assert deployments[obj["metadata"]["name"]] == obj["spec"]["replicas"], (
                    "replicas by standby mode"
                )
        base = names.base(name)
        db = quangnam.custom.get_namespaced_custom_object(
            "postgresql.cnpg.io", "v1", namespace, "clusters", names.database_cluster(base, "quangnam")
        )
        assert db["spec"]["replica"]["primary"] == names.database_cluster(base, "danang"), "a replica cluster"
        files = names.files_replication(base)
        quangnam.custom.get_namespaced_custom_object(
            "volsync.backube", "v1alpha1", namespace, "replicationdestinations", files
        )
        danang.custom.get_namespaced_custom_object(
            "volsync.backube", "v1alpha1", namespace, "replicationsources", files
        )
    dns = quangnam.custom.list_namespaced_custom_object(
        "externaldns.k8s.io", "v1alpha1", namespace, "dnsendpoints"
    )
    records = {item["metadata"]["name"] for item in dns["items"]}
    read_only = {
        b["metadata"]["name"] for b in bodies if b["spec"]["settings"].get("eArchive", {}).get("readOnlyHost")
    }
    assert records == {f"{name}-standby" for name in read_only}, "only read-only look-ups at the standby"
    assert danang.custom.list_namespaced_custom_object(
        "externaldns.k8s.io", "v1alpha1", namespace, "dnsendpoints"
    )["items"], "the active site publishes its services"
    assert secret_value(quangnam, namespace, "smtp") == "s3cret"
    assert secret_value(quangnam, namespace, "local-only") is None, "an unlabelled Secret stays at its site"

    # Updates and deletions follow.
    changed, gone = bodies[0]["metadata"]["name"], bodies[1]["metadata"]["name"]
    version = "9.9.9"
    danang.custom.patch_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, changed, {"spec": {"version": version}}
    )
    danang.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, gone)
    danang.core.replace_namespaced_secret(
        "smtp", namespace, labelled_secret(namespace, "smtp", True, "rotated")
    )
    eventually(
        lambda: get(quangnam, namespace, changed)["spec"]["version"] == version,
        timeout=30,
        message="update copied",
    )
    eventually(lambda: try_get(quangnam, namespace, gone) is None, timeout=60, message="deletion copied")
    eventually(
        lambda: secret_value(quangnam, namespace, "smtp") == "rotated", timeout=30, message="Secret update"
    )


def test_a_database_gets_its_cas_and_credentials_once_and_the_standby_a_copy(
    pair: Pair, namespace: str
) -> None:
    """What both sites' Clusters must share (CAs with keys, the owner's credentials) is made at the active
    site, carried by replication, never logged, never rewritten: a rotation at the active site reaches the
    standby and stays."""
    danang, quangnam = pair.danang, pair.quangnam
    body = samples.service("open-data", namespace)
    base = names.base(body["metadata"]["name"])
    wanted = [names.database_server_ca(base), names.database_client_ca(base), names.database_app_secret(base)]
    create_active(danang, body)

    def both(name: str) -> tuple[Any, Any] | None:
        found = [try_read_secret(site, namespace, name) for site in (danang, quangnam)]
        if None in found or found[0].data != found[1].data:
            return None
        return found[0], found[1]

    made = {
        name: eventually(lambda n=name: both(n), timeout=60, message=f"{name} at both sites")
        for name in wanted
    }
    for name in wanted[:2]:
        cert = x509.load_pem_x509_certificate(base64.b64decode(made[name][0].data["ca.crt"]))
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert base64.b64decode(made[name][0].data["ca.key"]).startswith(b"-----BEGIN EC PRIVATE KEY-----")
    app = made[wanted[2]][0]
    assert app.type == "kubernetes.io/basic-auth"
    assert base64.b64decode(app.data["username"]).decode() == "ckan"  # the OpenData profile's database owner
    password = base64.b64decode(app.data["password"]).decode()
    assert len(password) >= 24
    assert made[wanted[0]][0].data != made[wanted[1]][0].data, "a CA each"
    standby_ready(quangnam, namespace, body["metadata"]["name"])
    clusters = [
        site.custom.get_namespaced_custom_object(
            "postgresql.cnpg.io", "v1", namespace, "clusters", names.database_cluster(base, site.name)
        )
        for site in (danang, quangnam)
    ]
    for cluster in clusters:
        assert cluster["spec"]["certificates"]["serverCASecret"] == wanted[0]
        assert cluster["spec"]["certificates"]["clientCASecret"] == wanted[1]

    # A person rotates the application's password at the active site: it reaches the standby and stays.
    danang.core.patch_namespaced_secret(wanted[2], namespace, {"stringData": {"password": "rotated"}})
    eventually(
        lambda: (
            base64.b64decode(quangnam.core.read_namespaced_secret(wanted[2], namespace).data["password"])
            == b"rotated"
        ),
        timeout=30,
        message="the rotation copied",
    )
    time.sleep(2 * RESYNC)
    for site in (danang, quangnam):
        kept = site.core.read_namespaced_secret(wanted[2], namespace).data["password"]
        assert base64.b64decode(kept) == b"rotated", f"the operator left the rotation alone at {site.name}"
    key = base64.b64decode(made[wanted[0]][0].data["ca.key"]).decode().splitlines()[1]
    for process in pair.operators.values():
        logged = process.log_path.read_text()
        assert password not in logged and key not in logged, f"{process.log_path} holds a credential"


def try_read_secret(site: Site, namespace: str, name: str) -> Any:
    try:
        return site.core.read_namespaced_secret(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def test_an_edit_at_the_standby_is_reverted_and_reported(pair: Pair, namespace: str) -> None:
    body = samples.service("smart-city", namespace)
    name = body["metadata"]["name"]
    create_active(pair.danang, body)
    standby_ready(pair.quangnam, namespace, name)
    pair.quangnam.custom.patch_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, name, {"spec": {"replicas": 7}}
    )
    eventually(
        lambda: get(pair.quangnam, namespace, name)["spec"].get("replicas") == body["spec"].get("replicas"),
        timeout=4 * RESYNC,
        message="the edit at the standby reverted",
    )
    reported = eventually(
        lambda: [
            e
            for e in pair.quangnam.core.list_namespaced_event(namespace).items
            if e.reason == "ReplicaEditReverted"
        ],
        timeout=30,
        message="ReplicaEditReverted event at the standby",
    )
    assert reported[0].type == "Warning" and ".spec.replicas" in reported[0].message
    assert reported[0].involved_object.name == name


def test_the_same_manifests_applied_at_both_sites_cause_no_replication_writes(
    pair: Pair, namespace: str
) -> None:
    body = samples.service("open-data", namespace)
    config = {
        "metadata": {"name": "harvest", "namespace": namespace, "labels": {REPLICATE_LABEL: "true"}},
        "data": {"sources": "https://data.gov.vn"},
    }
    for site in (pair.danang, pair.quangnam):  # as GitOps does, each site from the same repository
        site.core.create_namespaced_config_map(namespace, config)
        create(site, body)
    standby_ready(pair.quangnam, namespace, body["metadata"]["name"])
    # The database's CAs and credentials are made at the active site only (not in Git), so their first copy is
    # a replication write: wait for it.
    base = names.base(body["metadata"]["name"])
    for secret in (
        names.database_server_ca(base),
        names.database_client_ca(base),
        names.database_app_secret(base),
    ):
        eventually(
            lambda s=secret: try_read_secret(pair.quangnam, namespace, s),
            timeout=60,
            message=f"{secret} copied",
        )
    since = time.time()
    time.sleep(3 * RESYNC)  # several replication passes, each comparing every copy
    writes = [
        event
        for event in audit_requests(pair.quangnam, peer_user("danang"), since, WRITE_VERBS)
        if event.get("userAgent", "").startswith("sharedcore/danang")
        and event["objectRef"].get("namespace") == namespace
        and event["objectRef"]["resource"] != "events"
    ]
    assert writes == [], [(w["verb"], w["requestURI"]) for w in writes]
    annotations = get(pair.quangnam, namespace, body["metadata"]["name"])["metadata"].get("annotations") or {}
    assert f"{API_GROUP}/origin-site" not in annotations, "nothing was written to mark it"


def test_an_idle_pair_writes_nothing_but_leases(pair: Pair, namespace: str) -> None:
    body = samples.service("document-management", namespace)
    name = body["metadata"]["name"]
    create_active(pair.danang, body)
    wait_ready(pair.danang, namespace, name)
    standby_ready(pair.quangnam, namespace, name)
    for site in (pair.danang, pair.quangnam):
        eventually(
            lambda site=site: (
                condition(get(site, namespace, name), "ReplicationHealthy").get("status") == "True"
            ),
            timeout=30,
            message=f"files copied and measured at {site.name}",
        )
        # Nothing else may be changing: earlier tests' namespaces must be gone (their teardown is not idle).
        eventually(
            lambda site=site: (
                not [n for n in site.core.list_namespace().items if n.status.phase == "Terminating"]
            ),
            timeout=120,
            message=f"no namespace terminating at {site.name}",
        )
    # The data plane keeps copying the files meanwhile (every few seconds): a copy is no news to write.
    time.sleep(RESYNC)  # let the last status writes land
    since = time.time()
    time.sleep(3 * RESYNC)
    for site in (pair.danang, pair.quangnam, pair.witness):
        # Its own operator, and the others as their peer identities.
        users = [OPERATOR_USER, *(peer_user(other.name) for other in pair.sites if other is not site)]
        writes = [w for user in users for w in audit_requests(site, user, since, WRITE_VERBS)]
        others = [(w["verb"], w["requestURI"]) for w in writes if w["objectRef"]["resource"] != "leases"]
        assert others == [], f"writes at {site.name}: {others}"
        assert writes, f"heartbeats keep going at {site.name}"


def test_replication_lag_above_the_objective_is_reported(pair: Pair, namespace: str) -> None:
    body = samples.service("hotline-1022", namespace)  # rpoSeconds 300
    name = body["metadata"]["name"]
    create_active(pair.danang, body)
    standby_ready(pair.quangnam, namespace, name)

    def replication(expected: str) -> dict[str, Any] | None:
        found = condition(get(pair.quangnam, namespace, name), "ReplicationHealthy")
        return found if found.get("status") == expected else None

    healthy = eventually(lambda: replication("True"), timeout=30, message="ReplicationHealthy")
    assert healthy["reason"] == "WithinObjective"
    cluster = names.database_cluster(names.base(name), "quangnam")
    pair.doubles["quangnam"].set_lag(namespace, cluster, 420.0)
    lagging_since = time.monotonic()
    behind = eventually(lambda: replication("False"), timeout=30, message="ReplicationHealthy=False")
    print(f"lag above the objective reported after {time.monotonic() - lagging_since:.1f}s")
    assert behind["reason"] == "DatabaseLagAboveObjective" and "420s" in behind["message"]
    status = get(pair.quangnam, namespace, name)["status"]["replication"]
    assert status["databaseLagSeconds"] == 420 and status["sourceSite"] == "danang"
    lag = metric(
        pair.operators["quangnam"],
        "sharedcore_replication_lag_seconds",
        namespace=namespace,
        name=name,
        kind="database",
    )
    assert lag == 420.0
    files = metric(
        pair.operators["quangnam"],
        "sharedcore_last_sync_timestamp_seconds",
        namespace=namespace,
        name=name,
        kind="files",
    )
    assert files is not None and time.time() - files < 60
    pair.doubles["quangnam"].set_lag(namespace, cluster, 2.0)
    eventually(lambda: replication("True"), timeout=30, message="ReplicationHealthy again")


def test_one_way_partition_is_reported_as_such(pair: Pair) -> None:
    danang, quangnam = pair.danang, pair.quangnam
    pair.danang.bed.partition(
        "danang", "quangnam", one_way=True
    )  # what danang opens to quangnam goes nowhere
    try:
        at_danang = eventually(
            lambda: (
                (c := topology_condition(danang, "PeerConnected")).get("reason") == "PeerUnreachable" and c
            ),
            timeout=30,
            message="danang: quangnam unreachable, its heartbeats arriving",
        )
        at_quangnam = eventually(
            lambda: (
                (c := topology_condition(quangnam, "PeerConnected")).get("reason") == "HeartbeatsNotArriving"
                and c
            ),
            timeout=30,
            message="quangnam: danang reachable, its heartbeats not arriving",
        )
        print(f"danang says: {at_danang['message']}\nquangnam says: {at_quangnam['message']}")
        assert site_entry(danang, "quangnam")["reachable"] is False
        assert site_entry(quangnam, "danang")["reachable"] is True
        assert len(renew_times(danang, "sharedcore-heartbeat-quangnam", 3 * HEARTBEAT)) >= 2, (
            "quangnam's heartbeats still arrive at danang"
        )
        assert len(renew_times(quangnam, "sharedcore-heartbeat-danang", 3 * HEARTBEAT)) == 1, (
            "danang's heartbeats no longer reach quangnam"
        )
        assert topology_status(danang)["activeSite"] == topology_status(quangnam)["activeSite"] == "danang"
        assert topology_condition(danang, "Ready")["reason"] == "Active"
        assert topology_condition(quangnam, "Ready")["reason"] == "Standby"
    finally:
        pair.danang.bed.heal("danang", "quangnam")
    for site in (danang, quangnam):
        eventually(
            lambda site=site: topology_condition(site, "PeerConnected").get("status") == "True",
            timeout=30,
            message=f"{site.name} connected again",
        )


def test_a_changed_kubeconfig_secret_is_picked_up(pair: Pair) -> None:
    broken = yaml.safe_load(pair.links[("quangnam", "danang")])
    broken["users"][0]["user"]["token"] = "not-a-token"
    put_secret(pair.quangnam, peer_secret("danang"), yaml.safe_dump(broken))
    try:
        # The old client's connections close as it is replaced, so one visit may first report "Server
        # disconnected"; what matters is that the new credentials are the ones refused.
        eventually(
            lambda: (
                site_entry(pair.quangnam, "danang").get("reachable") is False
                and any(
                    word in topology_condition(pair.quangnam, "PeerConnected").get("message", "")
                    for word in ("401", "Unauthorized")
                )
            ),
            timeout=30,
            message="quangnam uses the new (broken) kubeconfig and is refused",
        )
    finally:
        put_secret(pair.quangnam, peer_secret("danang"), pair.links[("quangnam", "danang")])
    eventually(
        lambda: topology_condition(pair.quangnam, "PeerConnected").get("status") == "True",
        timeout=30,
        message="quangnam reaches danang with the restored kubeconfig",
    )
    assert "not-a-token" not in pair.operators["quangnam"].log_tail(5000), "kubeconfigs are never logged"


def test_operator_logs_have_no_permission_errors(pair: Pair) -> None:
    """Both operators ran everything above with the shipped ClusterRole, at their own site and the other's.
    (Checked before the outage: an API server that just restarted denies everything until RBAC is loaded.)"""
    for process in pair.operators.values():
        log = process.log_tail(20000)
        denials = [line for line in log.splitlines() if "forbidden: User" in line and " cannot " in line]
        assert denials == []


def test_a_stopped_standby_catches_up_when_it_returns(pair: Pair, namespace: str) -> None:
    danang, quangnam = pair.danang, pair.quangnam
    kept, removed = samples.service("open-data", namespace), samples.service("smart-city", namespace)
    for body in (kept, removed):
        create_active(danang, body)
        standby_ready(quangnam, namespace, body["metadata"]["name"])
    quangnam.stop()
    try:
        eventually(
            lambda: topology_condition(danang, "PeerConnected").get("reason") == "PeerLost",
            timeout=30,
            message="danang: quangnam lost",
        )
        assert site_entry(danang, "quangnam")["reachable"] is False
        # danang carries on: it stays active and keeps reconciling what changes meanwhile.
        added = samples.service("operations-center", namespace)
        create_active(danang, added)
        danang.custom.patch_namespaced_custom_object(
            API_GROUP,
            API_VERSION,
            namespace,
            PLURAL,
            kept["metadata"]["name"],
            {"spec": {"version": "5.0.0"}},
        )
        danang.custom.delete_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, PLURAL, removed["metadata"]["name"]
        )
        danang.core.create_namespaced_secret(namespace, labelled_secret(namespace, "late", replicate=True))
        eventually(
            lambda: (
                condition(get(danang, namespace, added["metadata"]["name"]), "Ready").get("status") == "True"
            ),
            timeout=120,
            message="danang serves a service created while quangnam is down",
        )
        assert topology_condition(danang, "Ready")["reason"] == "Active"
    finally:
        quangnam.start()
    started = time.monotonic()
    eventually(
        lambda: try_get(quangnam, namespace, added["metadata"]["name"]),
        timeout=120,
        message="new service copied",
    )
    eventually(
        lambda: get(quangnam, namespace, kept["metadata"]["name"])["spec"]["version"] == "5.0.0",
        timeout=60,
        message="update copied",
    )
    eventually(
        lambda: try_get(quangnam, namespace, removed["metadata"]["name"]) is None,
        timeout=60,
        message="deletion copied",
    )
    eventually(
        lambda: secret_value(quangnam, namespace, "late") == "s3cret", timeout=60, message="Secret copied"
    )
    print(f"seconds from quangnam's restart to caught up: {time.monotonic() - started:.1f}")
    standby_ready(quangnam, namespace, added["metadata"]["name"], timeout=180)
    eventually(
        lambda: topology_condition(danang, "PeerConnected").get("status") == "True",
        timeout=60,
        message="danang reaches quangnam again",
    )


def set_capacity(pair: Pair, storage: str | None) -> None:
    """Give each site of both sites' Topology a storage capacity (None: none declared)."""
    for site in (pair.danang, pair.quangnam):
        body = site.custom.get_cluster_custom_object(API_GROUP, API_VERSION, "topologies", "default")
        entries = [{k: v for k, v in entry.items() if k != "capacity"} for entry in body["spec"]["sites"]]
        for entry in entries if storage else []:
            entry["capacity"] = {"storage": storage}
        patch = {"spec": {"sites": entries}}
        site.custom.patch_cluster_custom_object(API_GROUP, API_VERSION, "topologies", "default", patch)


def capacity_of(site: Site, name: str) -> dict[str, Any]:
    """What `site` reports of the storage at site `name`."""
    return next((e for e in topology_status(site).get("capacity") or [] if e["site"] == name), {})


def generations(site: Site, namespace: str, name: str) -> dict[str, int]:
    selector = f"app.kubernetes.io/instance={name}"
    items = site.apps.list_namespaced_deployment(namespace, label_selector=selector).items
    return {d.metadata.name: d.metadata.generation for d in items}


def test_a_service_that_would_overflow_the_sites_waits_for_more_capacity(pair: Pair, namespace: str) -> None:
    """100Ti per site and services of 40, 40 and 30Ti: the last is CapacityExceeded with the figures at both
    sites and nothing of it is rendered; the others run untouched; raising the capacity renders it."""
    danang, quangnam = pair.danang, pair.quangnam
    set_capacity(pair, "100Ti")
    try:
        # Services of the module's earlier tests go with their namespaces, at each site in its own time.
        eventually(
            lambda: all(capacity_of(site, site.name).get("services") == 0 for site in (danang, quangnam)),
            timeout=120,
            message="no others at either site",
        )
        for name, size in (("archive-a", "40Ti"), ("archive-b", "40Ti"), ("archive-c", "30Ti")):
            body = samples.service("e-archive", namespace, name=name, database={"enabled": False})
            body["spec"]["files"]["size"] = size
            create_active(danang, body)
            time.sleep(1.1)  # creation order decides, and creationTimestamp counts whole seconds

        def refused(site: Site) -> str | None:
            stalled = condition(try_get(site, namespace, "archive-c") or {}, "Stalled")
            return stalled["message"] if stalled.get("reason") == "CapacityExceeded" else None

        for site in (danang, quangnam):
            message = eventually(
                lambda site=site: refused(site), timeout=60, message=f"refused at {site.name}"
            )
            print(f"{site.name}: {message}")
            assert "needs 30Ti" in message and "can hold 100Ti" in message, message
            assert "2 services commit 80Ti (20Ti free)" in message, message
            assert generations(site, namespace, "archive-c") == {}, "nothing rendered for it"
        for name in ("archive-a", "archive-b"):
            wait_ready(danang, namespace, name)
            standby_ready(quangnam, namespace, name)
        before = {name: generations(danang, namespace, name) for name in ("archive-a", "archive-b")}
        for name in ("danang", "quangnam"):
            entry = capacity_of(danang, name)
            assert (entry["storage"], entry["committed"], entry["usedPercent"]) == ("100Ti", "80Ti", 80.0)
            assert entry["refused"] == [f"{namespace}/archive-c"]
        operator = pair.operators["danang"]
        storage = {
            kind: metric(operator, "sharedcore_site_storage_bytes", site="quangnam", kind=kind)
            for kind in ("capacity", "committed")
        }
        assert storage == {"capacity": 100 * 2**40, "committed": 80 * 2**40}

        set_capacity(pair, "120Ti")
        wait_ready(danang, namespace, "archive-c")
        standby_ready(quangnam, namespace, "archive-c")
        assert capacity_of(danang, "danang")["committed"] == "110Ti"
        assert {name: generations(danang, namespace, name) for name in before} == before, (
            "the others untouched"
        )
    finally:
        set_capacity(pair, None)


def test_a_change_rate_the_links_cannot_carry_within_the_rpo_is_reported(pair: Pair, namespace: str) -> None:
    """With the links declared, each service says how long its first copy takes; once its measured copies
    no longer fit its RPO on them, ReplicationFeasible turns False with the figures."""
    danang = pair.danang
    links = [{"name": "wan-1", "bandwidth": "100Mbps", "replicationPercent": 10}]
    for site in (danang, pair.quangnam):
        patch = {"spec": {"links": links}}
        site.custom.patch_cluster_custom_object(API_GROUP, API_VERSION, "topologies", "default", patch)
    try:
        body = samples.service("document-management", namespace)
        name = body["metadata"]["name"]
        create_active(danang, body)

        def feasible() -> dict[str, Any]:
            return condition(try_get(danang, namespace, name) or {}, "ReplicationFeasible")

        first = eventually(
            lambda: feasible().get("reason") == "Feasible" and feasible(), timeout=60, message="ok"
        )
        assert first["status"] == "True" and "the first full copy (550Gi) takes about" in first["message"]
        pair.doubles["danang"].set_sent_bytes(namespace, names.files_replication(name), 2_000_000_000)
        verdict = eventually(
            lambda: feasible().get("status") == "False" and feasible(), timeout=60, message="no"
        )
        print(verdict["message"])
        assert verdict["reason"] == "ChangeRateAboveLinks"
        assert "each copy of the files sends 1.9Gi (the last one), 27 min on the links" in verdict["message"]
        assert "a failover may lose 1900 s, above rpoSeconds 300" in verdict["message"]
        operator = pair.operators["danang"]
        assert metric(operator, "sharedcore_replication_feasible", namespace=namespace, name=name) == 0
    finally:
        for site in (danang, pair.quangnam):
            patch = {"spec": {"links": None}}
            site.custom.patch_cluster_custom_object(API_GROUP, API_VERSION, "topologies", "default", patch)


def portal_beside(
    pair: Pair, namespace: str, previous: PreviousSystem, start: datetime.date
) -> dict[str, Any]:
    """A portal at danang, standing by at quangnam, in a 400-day parallel run beside `previous`; its body."""
    ca = {
        "metadata": {"name": "previous-ca", "namespace": namespace},
        "stringData": {"ca.crt": previous.ca_pem},
    }
    pair.danang.core.create_namespaced_secret(namespace, ca)
    run = {
        "previousSystem": {"name": "motcua-quangnam", "url": previous.url, "caSecretName": "previous-ca"},
        "startDate": start.isoformat(),
        "endDate": (start + datetime.timedelta(days=400)).isoformat(),
        "paths": ["/tra-cuu/ho-so-cu"],
    }
    body = samples.service("public-service-portal", namespace, parallelRun=run)
    create_active(pair.danang, body)
    wait_ready(pair.danang, namespace, body["metadata"]["name"])  # every object applied there
    standby_ready(pair.quangnam, namespace, body["metadata"]["name"])
    return body


def test_a_parallel_run_routes_to_the_previous_system_reports_its_dossiers_and_deletes_nothing_at_its_end(
    pair: Pair, namespace: str, tmp_path: Path
) -> None:
    """A portal beside a stand-in previous system: the routing and the job at the active site only; the counts
    the job writes reported, missing dossiers and an unreachable previous system detected (condition and
    metrics, which the alerts read); the end date passing raises the condition and deletes nothing."""
    danang, quangnam = pair.danang, pair.quangnam
    dossiers = {f"QN-2024-{n:05d}" for n in range(1, 8)}
    previous = PreviousSystem(tmp_path, dossiers)
    previous.start()
    try:
        start = datetime.date.today() - datetime.timedelta(days=30)
        body = portal_beside(pair, namespace, previous, start)
        name, run = body["metadata"]["name"], body["spec"]["parallelRun"]
        routed = danang.core.read_namespaced_service(f"{name}-previous", namespace).spec
        assert (routed.type, routed.external_name) == ("ExternalName", "localhost")
        ingress = danang.networking.read_namespaced_ingress(f"{name}-previous", namespace)
        assert [p.path for p in ingress.spec.rules[0].http.paths] == ["/tra-cuu/ho-so-cu"]
        assert danang.batch.read_namespaced_cron_job(f"{name}-parallel-run", namespace).spec.schedule
        assert not quangnam.batch.list_namespaced_cron_job(namespace).items, "the job runs at the active site"

        def reported(reason: str) -> dict[str, Any]:
            def healthy() -> dict[str, Any]:
                return condition(get(danang, namespace, name), "ParallelRunHealthy")

            try:
                return eventually(
                    lambda: healthy().get("reason") == reason and healthy(), timeout=30, message=reason
                )
            except AssertionError as error:
                raise AssertionError(f"{error}; ParallelRunHealthy: {healthy()}") from None

        reported("NotChecked")
        results = f"{name}-parallel-run"
        reconcile(danang, namespace, results, previous, new_in_force=dossiers)
        assert reported("Healthy")["status"] == "True"
        status = get(danang, namespace, name)["status"]["parallelRun"]
        counts = (status["dossiersInForcePrevious"], status["dossiersInForce"], status["dossiersMissing"])
        assert counts == (7, 7, 0) and status["daysLeft"] == 370 and status["previousSystemReachable"]

        reconcile(
            danang, namespace, results, previous, new_in_force=dossiers - {"QN-2024-00003", "QN-2024-00005"}
        )
        assert "2 dossiers in force at motcua-quangnam are missing" in reported("DossiersMissing")["message"]
        labels = {"namespace": namespace, "name": name}
        operator = pair.operators["danang"]
        assert metric(operator, "sharedcore_parallel_run_dossiers_missing", **labels) == 2

        previous.stop()
        reconcile(danang, namespace, results, previous, new_in_force=dossiers)
        reported("PreviousSystemUnreachable")
        assert metric(operator, "sharedcore_parallel_run_previous_system_up", **labels) == 0

        # The end date passes: the condition asks people to decide, and everything stays.
        ended = {
            "startDate": (start - datetime.timedelta(days=400)).isoformat(),
            "endDate": start.isoformat(),
        }
        patch = {"spec": {"parallelRun": {**run, **ended}}}
        danang.custom.patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name, patch)
        assert "30 days ago; nothing was deleted" in reported("Ended")["message"]
        assert metric(operator, "sharedcore_parallel_run_days_left", **labels) == -30
        time.sleep(RESYNC)
        danang.core.read_namespaced_service(f"{name}-previous", namespace)
        danang.networking.read_namespaced_ingress(f"{name}-previous", namespace)
        danang.batch.read_namespaced_cron_job(results, namespace)
        assert danang.core.read_namespaced_config_map(results, namespace).data["missing"] == "2"
    finally:
        previous.stop()
