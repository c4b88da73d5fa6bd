"""The pure parts of issue 11's rules 8 and 10: what replication refuses to carry, what a deletion keeps
where, and how a retained copy becomes an ordinary one again."""

import copy
import datetime
from typing import Any

import pytest
import yaml

from sharedcore.api import DeletionPolicy, ReplicationPolicy, Role, SharedService, Topology
from sharedcore.render import PeerSite, SiteContext, render
from sharedcore.replication import admission, content, data, retained
from sharedcore.replication.lag import LagTable
from sharedcore.services.reconcile import ORPHANED_LABEL, _kept_with
from tests.golden.samples import INPUTS_DIR as GOLDEN_INPUTS
from tests.support import samples

REPLICATE = {content.REPLICATE_LABEL: "true"}
NOW = datetime.datetime(2026, 11, 28, 9, 0, tzinfo=datetime.UTC)


def secret(type_: str = "Opaque", **labels: str) -> dict[str, Any]:
    return {
        "kind": "Secret",
        "type": type_,
        "metadata": {"name": "s", "namespace": "egov", "labels": REPLICATE | labels},
    }


def service(**spec: Any) -> dict[str, Any]:
    body = samples.service("open-data", "portal") | {"apiVersion": "x/v1", "kind": "SharedService"}
    body["spec"].update(spec)
    return body


@pytest.mark.parametrize(
    ("obj", "why"),
    [
        (secret("kubernetes.io/service-account-token"), "kubernetes.io/service-account-token"),
        (secret("bootstrap.kubernetes.io/token"), "bootstrap.kubernetes.io/token"),
        (secret(**{"argocd.argoproj.io/secret-type": "repository"}), "Argo CD"),
        (secret(**{"kustomize.toolkit.fluxcd.io/name": "apps"}), "Flux"),
        (secret(**{"toolkit.fluxcd.io/tenant": "city"}), "Flux"),
    ],
)
def test_secrets_with_powers_elsewhere_are_refused(obj: dict[str, Any], why: str) -> None:
    refused = admission.refusal(obj, ReplicationPolicy())
    assert refused is not None and why in refused


def test_ordinary_secrets_and_config_maps_pass() -> None:
    assert admission.refusal(secret(), ReplicationPolicy()) is None
    assert admission.refusal(secret("kubernetes.io/tls", team="mail"), ReplicationPolicy()) is None
    assert admission.refusal(secret(**{"argocd.argoproj.io/instance": "egov"}), ReplicationPolicy()) is None
    config_map = {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "egov"}}
    assert admission.refusal(config_map, ReplicationPolicy()) is None


def test_empty_allow_lists_allow_anything() -> None:
    assert admission.refusal(service(image="anywhere.example/x"), ReplicationPolicy()) is None


def test_images_must_be_an_allowed_repository_or_below_one() -> None:
    policy = ReplicationPolicy(allowed_image_repositories=["registry.danang.gov.vn/sharedcore"])
    assert admission.refusal(service(image="registry.danang.gov.vn/sharedcore"), policy) is None
    assert admission.refusal(service(image="registry.danang.gov.vn/sharedcore/mirror"), policy) is None
    assert admission.refusal(service(), policy) is None, "the platform's own images"
    for image in ("registry.danang.gov.vn/sharedcore-evil", "registry.danang.gov.vn", "evil.example/miner"):
        refused = admission.refusal(service(image=image), policy)
        assert refused is not None and f"spec.image {image} " in refused


def test_hosts_must_match_a_name_or_a_wildcard_domain() -> None:
    policy = ReplicationPolicy(allowed_ingress_hosts=["*.danang.gov.vn", "1022.vn"])
    ingress = service()["spec"]["ingress"]
    for host in ("opendata.danang.gov.vn", "a.b.danang.gov.vn", "1022.vn"):
        assert admission.refusal(service(ingress=ingress | {"host": host}), policy) is None, host
    for host in ("danang.gov.vn", "evil-danang.gov.vn", "x.1022.vn", "login.example.com"):
        refused = admission.refusal(service(ingress=ingress | {"host": host}), policy)
        assert refused is not None and f"spec.ingress.host {host} " in refused, host
    assert admission.refusal(service(ingress=None), policy) is None


def test_an_archives_read_only_host_is_held_to_the_same_list() -> None:
    """The standby publishes a DNS record for it: a copy may not bring a host the standby did not allow."""
    policy = ReplicationPolicy(allowed_ingress_hosts=["*.danang.gov.vn"])
    archive = yaml.safe_load((GOLDEN_INPUTS / "e-archive.yaml").read_text())
    assert admission.refusal(archive, policy) is None
    archive["spec"]["settings"]["eArchive"]["readOnlyHost"] = "tracuu.example.com"
    refused = admission.refusal(archive, policy)
    assert refused is not None and "spec.settings.eArchive.readOnlyHost tracuu.example.com " in refused


def test_the_topology_carries_the_allow_lists_and_refuses_bad_patterns() -> None:
    body = {
        "apiVersion": "sharedcore.danang.gov.vn/v1alpha1",
        "kind": "Topology",
        "metadata": {"name": "default"},
        "spec": {
            "sites": [
                {
                    "name": site,
                    "kubeconfigSecretRef": {"name": site, "namespace": "sharedcore-system"},
                    "ingressAddress": "203.0.113.1",
                }
                for site in ("danang", "quangnam")
            ],
            "preferredPrimary": "danang",
        },
    }
    assert Topology.model_validate(body).spec.replication == ReplicationPolicy()
    body["spec"]["replication"] = {
        "allowedIngressHosts": ["*.danang.gov.vn"],
        "allowedImageRepositories": ["r.vn/x"],
    }
    assert Topology.model_validate(body).spec.replication.allowed_ingress_hosts == ["*.danang.gov.vn"]
    body["spec"]["replication"] = {"allowedIngressHosts": ["a.*.vn"]}
    with pytest.raises(ValueError, match="allowedIngressHosts"):
        Topology.model_validate(body)


def site(role: Role) -> SiteContext:
    return SiteContext("quangnam", role, 3)


def test_only_delete_at_the_active_site_deletes_data() -> None:
    copy = service()
    copy["metadata"]["annotations"] = {content.ORIGIN_UID: "uid-at-danang"}
    assert _kept_with(site(Role.ACTIVE), DeletionPolicy.DELETE, "x", copy) is None
    assert _kept_with(site(Role.ACTIVE), DeletionPolicy.RETAIN, "x", copy) == {
        "labels": {ORPHANED_LABEL: "true"}
    }
    for role in (Role.STANDBY, Role.FENCED):
        for policy in DeletionPolicy:
            kept = _kept_with(site(role), policy, "SharedService egov/qlvb deleted", copy)
            assert kept is not None
            assert kept["labels"] == {ORPHANED_LABEL: "true", retained.LABEL: "true"}
            because = kept["annotations"][retained.BECAUSE]
            assert because.startswith(f"SharedService egov/qlvb deleted at quangnam ({role}, epoch 3)")
            assert kept["annotations"][retained.SINCE].endswith("Z")
            assert kept["annotations"][retained.ORIGIN] == "uid-at-danang", "whose copy it was"


def test_a_retained_copy_whose_source_returns_is_unmarked() -> None:
    source = secret() | {"apiVersion": "v1", "data": {"password": "c2VjcmV0"}}
    source["metadata"]["resourceVersion"] = "5"
    stored = copy.deepcopy(content.copy_of(source, "danang", 1))
    stored["metadata"]["resourceVersion"] = "9"
    assert content.update(source, stored, "danang", 1) is None
    marks = retained.marks("its source was deleted at danang", NOW)
    stored["metadata"]["labels"] |= marks["labels"]
    stored["metadata"]["annotations"] |= marks["annotations"]
    assert retained.is_retained(stored)
    change = content.update(source, stored, "danang", 1)
    assert change is not None and change.action == "update"
    meta = change.patch["metadata"]
    assert meta["labels"] == {retained.LABEL: None}
    assert meta["annotations"][retained.BECAUSE] is None and meta["annotations"][retained.SINCE] is None
    assert marks["annotations"][retained.SINCE] == "2026-11-28T09:00:00Z"


def test_a_service_replication_refuses_is_not_replication_healthy_at_the_active_site() -> None:
    body = service(image="evil.example/miner")
    policy = ReplicationPolicy(allowed_image_repositories=["registry.danang.gov.vn"])
    refused = admission.refusal(body, policy)
    parsed = SharedService.model_validate(body | {"apiVersion": "sharedcore.danang.gov.vn/v1alpha1"})
    active = SiteContext(
        "danang", Role.ACTIVE, 1, "203.0.113.10", PeerSite("quangnam", "svc.clusterset.local")
    )
    found = data.assess(
        parsed, active, render(parsed, active), live=lambda _: None, lag=LagTable(), now=NOW, refused=refused
    )
    assert (found.condition.status, found.condition.reason) == (False, "NotReplicated")
    assert found.condition.message.startswith("not copied to quangnam: spec.image evil.example/miner is not")


def test_a_copy_remembers_its_source_and_a_source_created_again_is_another() -> None:
    source = service() | {"apiVersion": "sharedcore.danang.gov.vn/v1alpha1"}
    source["metadata"]["uid"] = "first"
    made = content.copy_of(source, "danang", 1)
    assert content.origin_uid(made) == "first"
    assert not content.replaced(source, made)
    again = copy.deepcopy(source)
    again["metadata"]["uid"] = "second"
    assert content.replaced(again, made), "deleted and created again at the active site"
    del made["metadata"]["annotations"][content.ORIGIN_UID]
    assert not content.replaced(again, made), "a copy that does not say (GitOps, older operators) is updated"
