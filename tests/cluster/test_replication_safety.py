"""Replication cannot hurt the copy, and writes only where it was invited (issue 11, rules 8 and 10).

On the real planes: both operators as their ServiceAccounts, each reaching the other only through the link
proxies. Rule 8: a deletion at the active site (a SharedService with deletionPolicy Delete, a Secret) never
removes the standby's data, which stays labelled as a retained copy until `kubectl sharedcore release-copy`
at the standby. Rule 10: only namespaces invited at both sites are written to, never created; Secrets with
powers elsewhere, and services whose image or host the Topology's allow-lists refuse, are not copied.
"""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from kubernetes import client

from sharedcore import API_GROUP, API_VERSION
from sharedcore.plugin import cli
from sharedcore.render import names
from sharedcore.replication import retained
from sharedcore.replication.content import ORIGIN_EPOCH, ORIGIN_SITE, REPLICATE_LABEL
from tests.cluster.test_operator import PLURAL, condition, create, get
from tests.cluster.test_two_sites import create_active, labelled_secret, secret_value, standby_ready, try_get
from tests.conftest import Sites
from tests.support import samples
from tests.support.cluster import Site, eventually
from tests.support.operator import OPERATOR_USER, WRITE_VERBS, audit_requests
from tests.support.pair import RESYNC, Pair, opt_in, running_pair

pytestmark = [pytest.mark.cluster, pytest.mark.workloads]
TOPOLOGY = (API_GROUP, API_VERSION, "topologies", "default")


@pytest.fixture(scope="module")
def pair(sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with running_pair(sites, tmp_path_factory.mktemp("replication-safety")) as running:
        yield running


def pvc(site: Site, namespace: str, name: str) -> dict[str, Any] | None:
    """The metadata of a PersistentVolumeClaim, None if there is none."""
    try:
        found = site.core.read_namespaced_persistent_volume_claim(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    meta: dict[str, Any] = site.core.api_client.sanitize_for_serialization(found.metadata)
    return meta


def database(site: Site, namespace: str, name: str) -> dict[str, Any] | None:
    """The metadata of a CloudNativePG Cluster, None if there is none."""
    try:
        found = site.custom.get_namespaced_custom_object(
            "postgresql.cnpg.io", "v1", namespace, "clusters", name
        )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    meta: dict[str, Any] = found["metadata"]
    return meta


def events(site: Site, namespace: str, name: str, reason: str) -> list[str]:
    return [
        e.message
        for e in site.core.list_namespaced_event(namespace).items
        if e.reason == reason and e.involved_object.name == name
    ]


def release_copy(site: Site, service: str, *flags: str) -> Any:
    args = ["release-copy", service, "--kubeconfig", str(site.kubeconfig), *flags]
    return CliRunner().invoke(cli.main, args)


def operator_writes_at(site: Site, since: float, namespaces: set[str]) -> list[tuple[str, str]]:
    """What the other site's operator wrote at `site` in (or creating) `namespaces`, per the audit log."""
    return [
        (event["verb"], event["requestURI"])
        for event in audit_requests(site, OPERATOR_USER, since, WRITE_VERBS)
        if not event.get("userAgent", "").startswith(f"sharedcore/{site.name}")
        and (
            event["objectRef"].get("namespace") in namespaces
            or (
                event["objectRef"]["resource"] == "namespaces"
                and event["objectRef"].get("name") in namespaces
            )
            or (event["objectRef"]["resource"] == "namespaces" and event["verb"] == "create")
        )
    ]


# --- rule 8: deleting at the active site never deletes the copy ----------------------------------------


def standing_by(pair: Pair, namespace: str, slug: str) -> str:
    """A service with deletionPolicy Delete, created at danang and standing by at quangnam; its name."""
    body = samples.service(slug, namespace, deletionPolicy="Delete")
    create_active(pair.danang, body)
    standby_ready(pair.quangnam, namespace, body["metadata"]["name"])
    return str(body["metadata"]["name"])


def kept_data(site: Site, namespace: str, name: str) -> list[dict[str, Any]]:
    """The metadata of a service's database Cluster and files volume at `site`, which must both exist."""
    base = names.base(name)
    found = [
        pvc(site, namespace, names.files_volume(base)),
        database(site, namespace, names.database_cluster(base, site.name)),
    ]
    assert None not in found, f"the data of {namespace}/{name} must still be at {site.name}: {found}"
    return [meta for meta in found if meta is not None]


def test_deleting_a_service_at_the_active_site_keeps_the_standbys_data(pair: Pair, namespace: str) -> None:
    danang, quangnam = pair.danang, pair.quangnam
    name = standing_by(pair, namespace, "document-management")
    base = names.base(name)
    files, copy = names.files_volume(base), names.database_cluster(base, "quangnam")
    kept_data(quangnam, namespace, name)

    danang.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name)
    deleted = time.monotonic()
    eventually(
        lambda: try_get(quangnam, namespace, name) is None, timeout=60, message="the copy's service gone"
    )
    print(f"the copy's SharedService went {time.monotonic() - deleted:.1f}s after the deletion at danang")
    eventually(
        lambda: (
            pvc(danang, namespace, files) is None
            and database(danang, namespace, names.database_cluster(base, "danang")) is None
        ),
        timeout=60,
        message="deletionPolicy Delete applied at the active site",
    )
    time.sleep(max(0.0, 2 * RESYNC - (time.monotonic() - deleted)))  # the copy went within seconds before
    for kept in kept_data(quangnam, namespace, name):
        assert kept["labels"][retained.LABEL] == "true"
        assert kept["annotations"][retained.SINCE]
        because = kept["annotations"][retained.BECAUSE]
        assert f"{namespace}/{name} deleted at quangnam" in because and "Standby" in because, because
        assert not kept.get("ownerReferences"), "no garbage collection can take it any more"
    told = events(quangnam, namespace, name, "CopyRetained")
    assert told and files in told[0] and f"release-copy {namespace}/{name} --confirm" in told[0], told

    dry = release_copy(quangnam, f"{namespace}/{name}")
    print(dry.output)
    assert dry.exit_code == 0, dry.output
    assert files in dry.output and copy in dry.output and "Dry run: nothing deleted" in dry.output
    assert pvc(quangnam, namespace, files) and database(quangnam, namespace, copy)

    done = release_copy(quangnam, f"{namespace}/{name}", "--confirm")
    assert done.exit_code == 0, done.output
    assert f"deleted PersistentVolumeClaim {files}" in done.output
    eventually(
        lambda: pvc(quangnam, namespace, files) is None and database(quangnam, namespace, copy) is None,
        timeout=60,
        message="the retained copy released",
    )
    again = release_copy(quangnam, f"{namespace}/{name}")
    assert again.exit_code == 1 and "no retained copy" in again.output


def test_deleting_the_namespace_at_the_active_site_keeps_the_standbys_data(pair: Pair) -> None:
    namespace = f"t-namespace-deleted-{uuid.uuid4().hex[:6]}"
    for site in pair.sites:
        opt_in(site, namespace)
    try:
        name = standing_by(pair, namespace, "smart-city")
        pair.danang.core.delete_namespace(namespace)
        eventually(
            lambda: namespace not in {n.metadata.name for n in pair.danang.core.list_namespace().items},
            timeout=120,
            message="the namespace gone at danang",
        )
        time.sleep(2 * RESYNC)
        kept = kept_data(pair.quangnam, namespace, name)
        # Whether replication saw the services go before the namespace: the copy stays, or its data does.
        assert try_get(pair.quangnam, namespace, name) or all(retained.LABEL in k["labels"] for k in kept)
    finally:
        pair.quangnam.core.delete_namespace(namespace)


def test_deleting_at_the_standby_a_service_the_active_site_has_not_keeps_the_data(
    pair: Pair, namespace: str
) -> None:
    """Applied at the standby alone (say, by its GitOps) and deleted there: still the only copy there is."""
    body = samples.service("open-data", namespace, deletionPolicy="Delete")
    name = body["metadata"]["name"]
    create(pair.quangnam, body)
    standby_ready(pair.quangnam, namespace, name)
    pair.quangnam.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name)
    eventually(lambda: try_get(pair.quangnam, namespace, name) is None, timeout=60, message="deleted")
    for kept in kept_data(pair.quangnam, namespace, name):
        assert kept["labels"][retained.LABEL] == "true"


def test_a_recreated_service_does_not_adopt_a_retained_copy(pair: Pair, namespace: str) -> None:
    """The new service at the active site starts empty: pushing it over the kept copy would lose it."""
    danang, quangnam = pair.danang, pair.quangnam
    name = standing_by(pair, namespace, "open-data")
    files = names.files_volume(names.base(name))
    danang.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name)
    eventually(
        lambda: ((pvc(quangnam, namespace, files) or {}).get("labels") or {}).get(retained.LABEL),
        timeout=60,
        message="the standby's files kept as a retained copy",
    )
    eventually(
        lambda: pvc(danang, namespace, files) is None and try_get(danang, namespace, name) is None,
        timeout=60,
        message="gone at danang",
    )
    create_active(danang, samples.service("open-data", namespace, deletionPolicy="Delete"))
    stalled = eventually(
        lambda: (
            (found := try_get(quangnam, namespace, name))
            and condition(found, "Stalled").get("reason") == "RetainedCopyInTheWay"
            and condition(found, "Stalled")
        ),
        timeout=60,
        message="the new copy stalls on the retained one",
    )
    assert "release-copy" in stalled["message"], stalled["message"]
    assert retained.LABEL in (pvc(quangnam, namespace, files) or {})["labels"]
    result = release_copy(quangnam, f"{namespace}/{name}", "--confirm")
    assert result.exit_code == 0, result.output
    standby_ready(quangnam, namespace, name)


def test_a_copy_deleted_at_the_standby_alone_takes_its_data_back(pair: Pair, namespace: str) -> None:
    """By mistake, or with a CRD reinstall there: the active site still has the service, so the copy that
    replication makes again is a copy of the very same object, and takes back the data kept for it."""
    quangnam = pair.quangnam
    name = standing_by(pair, namespace, "open-data")
    before = get(quangnam, namespace, name)["metadata"]["uid"]
    data = [meta["uid"] for meta in kept_data(quangnam, namespace, name)]
    quangnam.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name)
    again = eventually(
        lambda: (
            (found := try_get(quangnam, namespace, name)) and found["metadata"]["uid"] != before and found
        ),
        timeout=60,
        message="copied again",
    )
    assert again["metadata"]["annotations"][ORIGIN_SITE] == "danang"
    standby_ready(quangnam, namespace, name)
    kept = kept_data(quangnam, namespace, name)
    assert [meta["uid"] for meta in kept] == data, "the very same Cluster and volume, not new ones"
    for meta in kept:
        assert retained.LABEL not in (meta.get("labels") or {}), meta
        assert [ref["uid"] for ref in meta.get("ownerReferences") or []] == [again["metadata"]["uid"]]
    adopted = events(quangnam, namespace, name, "CopyAdopted")
    assert len(adopted) == 2, adopted  # the database Cluster and the files volume


def test_a_secret_deleted_at_the_active_site_stays_at_the_standby(pair: Pair, namespace: str) -> None:
    danang, quangnam = pair.danang, pair.quangnam
    danang.core.create_namespaced_secret(
        namespace, labelled_secret(namespace, "db-credentials", replicate=True)
    )
    eventually(
        lambda: secret_value(quangnam, namespace, "db-credentials") == "s3cret", timeout=30, message="copied"
    )
    danang.core.delete_namespaced_secret("db-credentials", namespace)

    def labels() -> dict[str, str]:
        return quangnam.core.read_namespaced_secret("db-credentials", namespace).metadata.labels or {}

    eventually(lambda: labels().get(retained.LABEL) == "true", timeout=30, message="kept as a retained copy")
    time.sleep(RESYNC)
    assert secret_value(quangnam, namespace, "db-credentials") == "s3cret"
    # Its source back: an ordinary copy again.
    danang.core.create_namespaced_secret(
        namespace, labelled_secret(namespace, "db-credentials", replicate=True, value="rotated")
    )
    eventually(
        lambda: (
            secret_value(quangnam, namespace, "db-credentials") == "rotated"
            and retained.LABEL not in labels()
        ),
        timeout=30,
        message="the copy follows its source again",
    )


# --- rule 10: replication writes only where it was invited ----------------------------------------------


def test_a_namespace_not_invited_at_the_standby_gets_nothing(pair: Pair) -> None:
    danang, quangnam = pair.danang, pair.quangnam
    suffix = uuid.uuid4().hex[:6]
    uninvited, absent = f"t-uninvited-{suffix}", f"t-only-at-danang-{suffix}"
    opt_in(danang, uninvited)
    opt_in(danang, absent)
    quangnam.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=uninvited)))
    since = time.time()
    try:
        for namespace in (uninvited, absent):
            danang.core.create_namespaced_secret(
                namespace, labelled_secret(namespace, "smtp", replicate=True)
            )
            create_active(danang, samples.service("open-data", namespace))
        name = samples.service("open-data", uninvited)["metadata"]["name"]
        for namespace in (uninvited, absent):
            reported = eventually(
                lambda namespace=namespace: events(danang, namespace, name, "NotReplicated"),
                timeout=30,
                message=f"danang says why {namespace} is not copied",
            )
            assert "has not opted in at the standby" in reported[0], reported
        time.sleep(2 * RESYNC)
        assert (
            try_get(quangnam, uninvited, name) is None and secret_value(quangnam, uninvited, "smtp") is None
        )
        assert absent not in {n.metadata.name for n in quangnam.core.list_namespace().items}, "never created"
        assert operator_writes_at(quangnam, since, {uninvited, absent}) == []

        # Invited at the standby too: replication follows.
        opt_in(quangnam, uninvited)
        eventually(
            lambda: try_get(quangnam, uninvited, name), timeout=4 * RESYNC, message="copied once invited"
        )
    finally:
        for site in (danang, quangnam):
            for namespace in (uninvited, absent):
                try:
                    site.core.delete_namespace(namespace)
                except client.ApiException as error:
                    if error.status != 404:
                        raise


def test_secrets_that_give_powers_elsewhere_are_not_copied(pair: Pair, namespace: str) -> None:
    danang, quangnam = pair.danang, pair.quangnam
    replicate = {REPLICATE_LABEL: "true"}
    danang.core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="robot"))
    )
    powerful = {
        "robot-token": {
            "type": "kubernetes.io/service-account-token",
            "metadata": {"annotations": {"kubernetes.io/service-account.name": "robot"}, "labels": replicate},
        },
        "prod-cluster": {  # Argo CD's credentials for a cluster it deploys to
            "metadata": {"labels": {**replicate, "argocd.argoproj.io/secret-type": "cluster"}},
            "stringData": {"server": "https://prod.example", "config": "{}"},
        },
        "git-credentials": {  # applied by Flux, which reads it
            "metadata": {"labels": {**replicate, "kustomize.toolkit.fluxcd.io/name": "apps"}},
            "stringData": {"password": "x"},
        },
    }
    for name, secret in powerful.items():
        secret["metadata"] |= {"name": name, "namespace": namespace}
        danang.core.create_namespaced_secret(namespace, secret)
    danang.core.create_namespaced_secret(namespace, labelled_secret(namespace, "smtp", replicate=True))
    eventually(
        lambda: secret_value(quangnam, namespace, "smtp") == "s3cret", timeout=30, message="smtp copied"
    )
    for name in powerful:
        reported = eventually(
            lambda name=name: events(danang, namespace, name, "NotReplicated"),
            timeout=30,
            message=f"danang says why {name} is not copied",
        )
        print(f"{name}: {reported[0]}")
    time.sleep(RESYNC)
    copies = {s.metadata.name for s in quangnam.core.list_namespaced_secret(namespace).items}
    assert not copies & set(powerful), copies


@pytest.fixture
def allow_lists(pair: Pair) -> Iterator[None]:
    policy = {
        "allowedImageRepositories": ["registry.danang.gov.vn/sharedcore"],
        "allowedIngressHosts": ["*.danang.gov.vn"],
    }
    for site in pair.sites:
        site.custom.patch_cluster_custom_object(*TOPOLOGY, {"spec": {"replication": policy}})
    try:
        yield
    finally:
        for site in pair.sites:
            site.custom.patch_cluster_custom_object(*TOPOLOGY, {"spec": {"replication": None}})


def test_images_and_hosts_outside_the_allow_lists_are_not_replicated(
    pair: Pair, namespace: str, allow_lists: None
) -> None:
    danang, quangnam = pair.danang, pair.quangnam
    allowed = samples.service(
        "open-data", namespace, name="allowed", image="registry.danang.gov.vn/sharedcore/mirror"
    )
    image = samples.service("open-data", namespace, name="bad-image", image="evil.example/miner")
    host = samples.service("open-data", namespace, name="bad-host")
    host["spec"]["ingress"]["host"] = "login.example.com"
    for body in (allowed, image, host):
        create_active(danang, body)
    standby_ready(quangnam, namespace, "allowed")
    for name, field in (
        ("bad-image", "spec.image evil.example/miner"),
        ("bad-host", "spec.ingress.host login.example.com"),
    ):
        reported = eventually(
            lambda name=name: events(danang, namespace, name, "NotReplicated"),
            timeout=30,
            message=f"danang says why {name} is not copied",
        )
        assert field in reported[0], reported
        unprotected = eventually(
            lambda name=name: (
                (c := condition(get(danang, namespace, name), "ReplicationHealthy")).get("reason")
                == "NotReplicated"
                and c
            ),
            timeout=30,
            message=f"{name}'s status at danang says it has no copy",
        )
        assert field in unprotected["message"] and unprotected["status"] == "False"
    time.sleep(RESYNC)
    assert (
        try_get(quangnam, namespace, "bad-image") is None and try_get(quangnam, namespace, "bad-host") is None
    )

    # Arriving anyway (written at the standby as if copied): the standby's operator refuses to render it.
    smuggled = samples.service("open-data", namespace, name="smuggled", image="evil.example/miner")
    # (a later epoch than danang's, so that danang's replication, which has no source for it, leaves it be)
    smuggled["metadata"]["annotations"] = {ORIGIN_SITE: "danang", ORIGIN_EPOCH: "99"}
    create(quangnam, smuggled)
    stalled = eventually(
        lambda: (
            (c := condition(get(quangnam, namespace, "smuggled"), "Stalled")).get("reason") == "NotAllowed"
            and c
        ),
        timeout=30,
        message="the standby refuses the smuggled copy",
    )
    assert "evil.example/miner" in stalled["message"]
    deployments = quangnam.apps.list_namespaced_deployment(
        namespace, label_selector=f"{API_GROUP}/service=smuggled"
    )
    assert deployments.items == [], "nothing rendered for it"
