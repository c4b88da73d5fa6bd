"""The operator at one site, running as its ServiceAccount against a real control plane with workloads."""

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from sharedcore import API_GROUP, API_VERSION
from sharedcore.kube import credentials
from sharedcore_testbed import operators
from sharedcore_testbed.operators import OPERATOR_NAMESPACE
from tests.conftest import Sites
from tests.support import samples
from tests.support.cluster import Site, eventually
from tests.support.operator import (
    OPERATOR_USER,
    WRITE_VERBS,
    OperatorProcess,
    audit_requests,
    install_crds,
    service_account_kubeconfig,
)
from tests.support.starting_api import StartingApi

pytestmark = [pytest.mark.cluster, pytest.mark.workloads]
RESYNC = 4.0
PLURAL = "sharedservices"


@pytest.fixture(scope="module")
def operator(sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    site = sites.danang
    install_crds(site)
    directory = tmp_path_factory.mktemp("operator")
    process = OperatorProcess(
        site,
        service_account_kubeconfig(site, directory),
        directory / "operator.log",
        args=("--all-namespaces", "--single-site", "--resync-seconds", str(RESYNC)),
    )
    process.start()
    process.wait_ready()
    yield process
    process.stop()


def create(site: Site, body: dict[str, Any]) -> None:
    spec = body["spec"]
    namespace = body["metadata"]["namespace"]
    tls = (spec.get("ingress") or {}).get("tlsSecretName")
    if tls:
        try:
            site.core.create_namespaced_secret(namespace, samples.tls_secret(namespace, tls))
        except client.ApiException as error:
            if error.status != 409:  # services of one platform share the sample's certificate
                raise
    site.custom.create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, body)


def get(site: Site, namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = site.custom.get_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, name
    )
    return body


def condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def wait_ready(site: Site, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        body = get(site, namespace, name)
        current = (
            body["status"]["observedGeneration"] == body["metadata"]["generation"]
            if body.get("status")
            else False
        )
        return body if current and condition(body, "Ready").get("status") == "True" else None

    return eventually(ready, timeout=timeout, message=f"{namespace}/{name} Ready")


def deployments(site: Site, namespace: str, service: str) -> dict[str, client.V1Deployment]:
    items = site.apps.list_namespaced_deployment(
        namespace, label_selector=f"{API_GROUP}/service={service}"
    ).items
    return {d.metadata.name: d for d in items}


def events(site: Site, namespace: str, reason: str) -> list[client.CoreV1Event]:
    return [e for e in site.core.list_namespaced_event(namespace).items if e.reason == reason]


def test_every_platform_becomes_ready(sites: Sites, operator: OperatorProcess, namespace: str) -> None:
    site = sites.danang
    for slug in samples.SLUGS:
        create(site, samples.service(slug, namespace))
    names = [samples.service(slug, namespace)["metadata"]["name"] for slug in samples.SLUGS]
    for name in names:
        body = wait_ready(site, namespace, name)
        assert body["status"]["role"] == "Active" and body["status"]["site"] == "danang"
        assert body["status"]["epoch"] == 0
        assert all(
            row["readyReplicas"] == row["replicas"]
            for row in body["status"]["components"]
            if row["kind"] == "Deployment"
        )
        assert condition(body, "Stalled")["status"] == "False"
        assert condition(body, "Reconciling")["status"] == "False"
    site.kubectl("wait", "--for=condition=Ready", "shs", "--all", "-n", namespace, "--timeout=30s")
    table = site.kubectl("get", "shs", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "PLATFORM", "ROLE", "READY", "LAG", "AGE"]
    assert all(" Active " in row and " True " in row for row in table[1:]) and len(table) == 1 + len(names)
    assert events(site, namespace, "Ready"), "becoming Ready is announced"


def test_spec_change_converges_and_drift_is_repaired(
    sites: Sites, operator: OperatorProcess, namespace: str
) -> None:
    site = sites.danang
    body = samples.service("smart-city", namespace, replicas=2)
    create(site, body)
    name = body["metadata"]["name"]
    wait_ready(site, namespace, name)
    api = next(d for d in deployments(site, namespace, name).values() if d.spec.replicas == 2)

    site.custom.patch_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, name, {"spec": {"replicas": 3}}
    )
    eventually(
        lambda: site.apps.read_namespaced_deployment(api.metadata.name, namespace).spec.replicas == 3,
        timeout=30,
        message="replicas converge to 3",
    )
    wait_ready(site, namespace, name)

    # Someone else's annotation on a rendered object is kept: the operator owns only the fields it renders.
    site.kubectl(
        "annotate", "deployment", api.metadata.name, "-n", namespace, "ops.danang.gov.vn/ticket=IT-1022"
    )
    site.kubectl("scale", "deployment", api.metadata.name, "-n", namespace, "--replicas=7")
    eventually(
        lambda: site.apps.read_namespaced_deployment(api.metadata.name, namespace).spec.replicas == 3,
        timeout=3 * RESYNC,
        message="hand-scaled replicas restored",
    )
    site.apps.delete_namespaced_deployment(api.metadata.name, namespace)
    restored = eventually(
        lambda: deployments(site, namespace, name).get(api.metadata.name),
        timeout=3 * RESYNC,
        message="deleted Deployment restored",
    )
    assert restored.metadata.uid != api.metadata.uid
    assert restored.spec.replicas == 3
    time.sleep(RESYNC)
    annotations = (
        site.apps.read_namespaced_deployment(api.metadata.name, namespace).metadata.annotations or {}
    )
    assert annotations.get("ops.danang.gov.vn/ticket") is None, "a recreated object starts clean"
    messages = [e.message for e in events(site, namespace, "DriftRepaired")]
    assert any(".spec.replicas" in m for m in messages) and any("deleted" in m for m in messages), messages


def test_fields_the_operator_does_not_own_are_kept(
    sites: Sites, operator: OperatorProcess, namespace: str
) -> None:
    site = sites.danang
    body = samples.service("open-data", namespace)
    create(site, body)
    name = body["metadata"]["name"]
    wait_ready(site, namespace, name)
    deployment = next(iter(deployments(site, namespace, name)))
    site.kubectl("annotate", "deployment", deployment, "-n", namespace, "ops.danang.gov.vn/owner=team-a")
    site.kubectl("label", "deployment", deployment, "-n", namespace, "cost-center=open-data")
    time.sleep(2.5 * RESYNC)
    kept = site.apps.read_namespaced_deployment(deployment, namespace).metadata
    assert kept.annotations["ops.danang.gov.vn/owner"] == "team-a"
    assert kept.labels["cost-center"] == "open-data"


def test_an_idle_operator_writes_nothing(sites: Sites, operator: OperatorProcess, namespace: str) -> None:
    site = sites.danang
    for slug in ("document-management", "hotline-1022"):
        create(site, samples.service(slug, namespace))
    for slug in ("document-management", "hotline-1022"):
        wait_ready(site, namespace, samples.service(slug, namespace)["metadata"]["name"])
    # Nothing else may be changing: earlier tests' namespaces must be gone (their teardown is not idle).
    eventually(
        lambda: not [ns for ns in site.core.list_namespace().items if ns.status.phase == "Terminating"],
        timeout=120,
        message="no namespace terminating",
    )
    time.sleep(RESYNC)  # let the last status writes and watch events settle
    since = time.time()
    requests_before = operator.metrics()
    time.sleep(3 * RESYNC + 1)
    writes = audit_requests(site, OPERATOR_USER, since, WRITE_VERBS)
    assert writes == [], [(w["verb"], w["requestURI"]) for w in writes]
    reads = audit_requests(site, OPERATOR_USER, since)
    assert all(r["verb"] in ("get", "list", "watch") for r in reads)
    after = operator.metrics()
    resyncs = sum(
        v
        for (n, labels), v in after.items()
        if n == "sharedcore_reconcile_total" and dict(labels)["result"] == "success"
    ) - sum(
        v
        for (n, labels), v in requests_before.items()
        if n == "sharedcore_reconcile_total" and dict(labels)["result"] == "success"
    )
    assert resyncs >= 3 * 2, "the services were reconciled during the idle window (writes would show)"


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_deletion_policy(sites: Sites, operator: OperatorProcess, namespace: str, policy: str) -> None:
    site = sites.danang
    body = samples.service("document-management", namespace, deletionPolicy=policy)
    create(site, body)
    name = body["metadata"]["name"]
    wait_ready(site, namespace, name)
    assert deployments(site, namespace, name)
    site.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name)
    eventually(
        lambda: (
            not site.custom.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL)["items"]
        ),
        timeout=60,
        message="SharedService gone (finalizer done)",
    )
    eventually(lambda: not deployments(site, namespace, name), timeout=60, message="Deployments removed")
    pvcs = site.core.list_namespaced_persistent_volume_claim(namespace).items
    clusters = site.custom.list_namespaced_custom_object("postgresql.cnpg.io", "v1", namespace, "clusters")[
        "items"
    ]
    if policy == "Retain":
        time.sleep(2)  # the garbage collector would have removed still-owned objects by now
        pvcs = site.core.list_namespaced_persistent_volume_claim(namespace).items
        clusters = site.custom.list_namespaced_custom_object(
            "postgresql.cnpg.io", "v1", namespace, "clusters"
        )["items"]
        assert [p.metadata.labels[f"{API_GROUP}/orphaned"] for p in pvcs] == ["true"]
        assert [c["metadata"]["labels"][f"{API_GROUP}/orphaned"] for c in clusters] == ["true"]
        assert not pvcs[0].metadata.owner_references
    else:
        eventually(
            lambda: not site.core.list_namespaced_persistent_volume_claim(namespace).items,
            timeout=30,
            message="PVC deleted",
        )
        assert not site.custom.list_namespaced_custom_object(
            "postgresql.cnpg.io", "v1", namespace, "clusters"
        )["items"]


def test_missing_tls_secret_stalls_until_it_appears(
    sites: Sites, operator: OperatorProcess, namespace: str
) -> None:
    site = sites.danang
    body = samples.service("operations-center", namespace)
    secret = body["spec"]["ingress"]["tlsSecretName"]
    site.custom.create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, body)
    name = body["metadata"]["name"]
    stalled = eventually(
        lambda: (b := get(site, namespace, name)) and condition(b, "Stalled").get("status") == "True" and b,
        timeout=30,
        message="Stalled",
    )
    assert condition(stalled, "Stalled")["reason"] == "TLSSecretNotFound"
    assert secret in condition(stalled, "Stalled")["message"]
    generation = stalled["metadata"]["generation"]
    site.core.create_namespaced_secret(namespace, samples.tls_secret(namespace, secret))
    ready = wait_ready(site, namespace, name, timeout=60)
    assert ready["metadata"]["generation"] == generation, "recovered without touching the SharedService"
    assert condition(ready, "Stalled")["status"] == "False"


def test_paused_service_is_left_alone(sites: Sites, operator: OperatorProcess, namespace: str) -> None:
    site = sites.danang
    body = samples.service("smart-city", namespace)
    create(site, body)
    name = body["metadata"]["name"]
    wait_ready(site, namespace, name)
    site.custom.patch_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, name, {"spec": {"paused": True}}
    )
    eventually(
        lambda: condition(get(site, namespace, name), "Reconciling").get("reason") == "Paused",
        timeout=20,
        message="Paused reported",
    )
    victim = next(iter(deployments(site, namespace, name)))
    site.apps.delete_namespaced_deployment(victim, namespace)
    time.sleep(2.5 * RESYNC)
    assert victim not in deployments(site, namespace, name), "a paused service is not repaired"
    site.custom.patch_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, name, {"spec": {"paused": False}}
    )
    eventually(
        lambda: victim in deployments(site, namespace, name), timeout=30, message="repaired after unpause"
    )


def test_sigkill_mid_reconcile_then_restart_converges(
    sites: Sites, operator: OperatorProcess, namespace: str
) -> None:
    site = sites.danang
    bodies = [
        samples.service(samples.SLUGS[i % len(samples.SLUGS)], namespace, name=f"svc-{i:02d}")
        for i in range(20)
    ]
    for body in bodies:
        create(site, body)
    eventually(
        lambda: len(site.apps.list_namespaced_deployment(namespace).items) >= 5,
        timeout=30,
        message="reconciliation under way",
    )
    operator.stop(signal.SIGKILL)
    operator.start()
    operator.wait_ready(timeout=120)
    for body in bodies:
        wait_ready(site, namespace, body["metadata"]["name"], timeout=180)
    uids = {
        b["metadata"]["name"]: get(site, namespace, b["metadata"]["name"])["metadata"]["uid"] for b in bodies
    }
    managed = site.apps.list_namespaced_deployment(
        namespace, label_selector="app.kubernetes.io/managed-by=sharedcore"
    )
    per_service: dict[str, int] = {}
    for deployment in managed.items:
        owner = deployment.metadata.owner_references[0]
        assert owner.uid == uids[owner.name], "no orphan: every Deployment belongs to a live service"
        per_service[owner.name] = per_service.get(owner.name, 0) + 1
    for body in bodies:
        expected = len(
            [
                c
                for c in get(site, namespace, body["metadata"]["name"])["status"]["components"]
                if c["kind"] == "Deployment"
            ]
        )
        assert per_service[body["metadata"]["name"]] == expected, "no duplicates"


def test_sigterm_stops_the_operator_cleanly(operator: OperatorProcess) -> None:
    """A pod's termination is a SIGTERM: the operator stops with exit code 0 and no traceback. Found by the
    nemesis (bench/nemesis.py --seed 21, its clock-skew restarts): Kopf takes the signal for itself and, as it
    stops, cancels the tasks the operator's own loops spawned, which the operator took for a crash."""
    logged = operator.log_path.stat().st_size
    operator.stop()
    try:
        assert operator.process is not None and operator.process.returncode == 0, operator.log_tail()
        after = operator.log_path.read_text(errors="replace")[logged:]
        assert "Traceback" not in after and "unexpectedly" not in after, after
    finally:
        operator.start()
        operator.wait_ready(timeout=120)


def test_metrics_reflect_the_services(sites: Sites, operator: OperatorProcess, namespace: str) -> None:
    site = sites.danang
    body = samples.service("hotline-1022", namespace)
    create(site, body)
    name = body["metadata"]["name"]
    wait_ready(site, namespace, name)
    metrics = eventually(
        lambda: (
            (m := operator.metrics())
            and m.get(
                (
                    "sharedcore_service_ready",
                    (("name", name), ("namespace", namespace), ("platform", "Hotline1022")),
                )
            )
            == 1
            and m
        ),
        timeout=15,
        message="service_ready metric",
    )
    info = [
        labels
        for (n, labels), v in metrics.items()
        if n == "sharedcore_service_info" and v == 1 and dict(labels)["name"] == name
    ]
    assert info and dict(info[0])["role"] == "Active" and dict(info[0])["version"] == body["spec"]["version"]
    assert metrics[("sharedcore_reconcile_total", (("kind", "SharedService"), ("result", "success")))] > 0
    assert metrics[("sharedcore_reconcile_duration_seconds_count", (("kind", "SharedService"),))] > 0
    site.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name)
    eventually(
        lambda: (
            not any(
                n == "sharedcore_service_ready" and dict(labels).get("name") == name
                for (n, labels) in operator.metrics()
            )
        ),
        timeout=30,
        message="series of a deleted service removed",
    )


def test_operator_log_has_no_permission_errors(operator: OperatorProcess) -> None:
    """Everything above ran with the shipped ClusterRole: an RBAC denial would be logged as `… cannot …`."""
    log = operator.log_tail(5000)
    denials = [line for line in log.splitlines() if "forbidden: User" in line and " cannot " in line]
    assert denials == []


def test_watching_some_namespaces_the_operator_needs_rights_only_there(
    sites: Sites, namespace: str, tmp_path: Path
) -> None:
    """With `--namespace` (the chart's operator.watchNamespaces) the operator is bound as the chart binds it:
    namespaced rights in the watched namespace and its own only. Run at quangnam, where no operator is (and no
    Topology: a single site; it passed without, while a Stalled service still counted as Ready)."""
    site = sites.quangnam
    install_crds(site)
    account = "sharedcore-namespaced"
    kubeconfig = operators.service_account_kubeconfig(
        site.bed, site.name, tmp_path / "operator.kubeconfig", namespaces=(namespace,), account=account
    )
    process = OperatorProcess(
        site,
        kubeconfig,
        tmp_path / "operator.log",
        args=("--namespace", namespace, "--resync-seconds", "4", "--single-site"),
    )
    since = time.time()
    process.start()
    try:
        process.wait_ready()
        body = samples.service("open-data", namespace)
        create(site, body)
        wait_ready(site, namespace, body["metadata"]["name"])
    finally:
        process.stop()
    requests = audit_requests(site, f"system:serviceaccount:{OPERATOR_NAMESPACE}:{account}", since)
    denied = [(r["verb"], r["requestURI"]) for r in requests if r["responseStatus"]["code"] in (401, 403)]
    assert requests and denied == []
    namespaces = {r.get("objectRef", {}).get("namespace") for r in requests}
    assert namespaces <= {None, namespace, OPERATOR_NAMESPACE, "default"}


def test_an_operator_started_while_its_api_server_starts_serves_every_resource(
    sites: Sites, namespace: str, tmp_path: Path
) -> None:
    """Kopf reads the API server's discovery once, as it starts, and serves only what it found then; a
    kube-apiserver still starting lists one API group for its first seconds, its /readyz failing meanwhile.
    Found by the nemesis (bench/nemesis.py --seed 101): quangnam's operator, killed while its site was
    stopped, started again as the site came back and went on without watching SharedServices, Topologies or
    Failovers, the automatic failover it created itself left unexecuted until its next restart. Run at
    quangnam, where no operator is."""
    site = sites.quangnam
    install_crds(site)
    account = operators.service_account_kubeconfig(site.bed, site.name, tmp_path / "account.kubeconfig")
    with StartingApi(credentials.load(account)) as api:
        process = OperatorProcess(
            site,
            api.kubeconfig(tmp_path / "operator.kubeconfig"),
            tmp_path / "operator.log",
            args=("--all-namespaces", "--single-site", "--resync-seconds", "4"),
        )
        process.start()
        try:
            # Until the operator has read the discovery, or asked twice whether the API server is ready.
            eventually(
                lambda: api.asked_while_starting["/apis"] or api.asked_while_starting["/readyz"] > 1,
                timeout=60,
                message="the operator asking the starting API server",
            )
            api.started()
            process.wait_ready()
            body = samples.service("open-data", namespace)
            create(site, body)
            wait_ready(site, namespace, body["metadata"]["name"], timeout=60)
        finally:
            process.stop()
    assert "Unresolved resources" not in process.log_path.read_text(errors="replace")
