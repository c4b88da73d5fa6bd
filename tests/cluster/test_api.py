"""The API at a real API server: the generated CRDs install, explain well, and refuse every bad input."""

import base64
import datetime
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from sharedcore import API_GROUP, API_VERSION
from sharedcore.api import MAX_FAILOVER_SERVICES, FailoverType, Role, SharedService, StandbyMode
from sharedcore.failover.plan import ServiceReplica, Situation, make_plan
from sharedcore.failover.preconditions import planned
from sharedcore.render import PeerSite, SiteContext, render
from tests.cases.corpus import InvalidCase, invalid_cases, valid_objects
from tests.conftest import Sites
from tests.support import samples
from tests.support.cluster import Site, eventually
from tests.support.operator import install_crds

pytestmark = pytest.mark.cluster
MAX_OBJECT_BYTES = 1572864  # etcd's default --max-request-bytes, which the API server's writes must fit


@pytest.fixture(scope="module")
def api_site(sites: Sites) -> Site:
    """The witness plane: bare (no controllers), so nothing but the API server looks at what we create."""
    install_crds(sites.witness)
    return sites.witness


def _placed(manifest: dict[str, Any], namespace: str) -> dict[str, Any]:
    if manifest["kind"] == "SharedService":
        manifest = {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}}
    return manifest


def _yaml(manifest: dict[str, Any]) -> str:
    return yaml.safe_dump(manifest, sort_keys=False)


@pytest.fixture
def cleanup(api_site: Site) -> Iterator[list[dict[str, Any]]]:
    """Cluster-scoped objects a test created (Topology, Failover) are deleted after it."""
    created: list[dict[str, Any]] = []
    yield created
    for manifest in created:
        if manifest["kind"] != "SharedService":
            api_site.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", stdin=_yaml(manifest))


def test_crds_are_established_and_explained(api_site: Site) -> None:
    names = api_site.kubectl("get", "crd", "-o", "name").stdout.split()
    for plural in ("sharedservices", "topologies", "failovers"):
        assert f"customresourcedefinition.apiextensions.k8s.io/{plural}.sharedcore.danang.gov.vn" in names
    # The API server publishes a new CRD's OpenAPI a moment after it is Established.
    explained = eventually(
        lambda: api_site.kubectl("explain", "sharedservice.spec.database", check=False).stdout,
        timeout=30,
        message="sharedservice.spec.database explained",
    )
    assert "CloudNativePG" in explained
    for field in ("instances", "storage", "storageClassName", "enabled"):
        assert f"{field}\t" in explained or f"{field} " in explained, field
    assert (
        "categories" not in api_site.kubectl("api-resources", "--categories=sharedcore", "-o", "name").stderr
    )
    kinds = api_site.kubectl("api-resources", "--categories=sharedcore", "-o", "name").stdout.split()
    assert sorted(kinds) == sorted(
        f"{p}.sharedcore.danang.gov.vn" for p in ("sharedservices", "topologies", "failovers")
    )


def test_valid_objects_are_stored_with_the_models_defaults(
    api_site: Site, namespace: str, cleanup: list[dict[str, Any]]
) -> None:
    for valid in valid_objects():
        manifest = _placed(valid.object, namespace)
        cleanup.append(manifest)
        stored = yaml.safe_load(
            api_site.kubectl("create", "-o", "yaml", "-f", "-", stdin=_yaml(manifest)).stdout
        )
        model_class = {"SharedService": SharedService}.get(manifest["kind"])
        if model_class:
            expected = model_class.model_validate(manifest).model_dump(
                by_alias=True, exclude_none=True, mode="json"
            )
            assert stored["spec"] == expected["spec"], valid.name


@pytest.mark.parametrize("case", invalid_cases(), ids=lambda case: case.name)
def test_invalid_input_is_refused_with_a_clear_message(
    api_site: Site, namespace: str, case: InvalidCase, cleanup: list[dict[str, Any]]
) -> None:
    manifest = _placed(case.object, namespace)
    if case.previous:
        previous = _placed(case.previous, namespace)
        cleanup.append(previous)
        api_site.kubectl("create", "-f", "-", stdin=_yaml(previous))
        result = api_site.kubectl("replace", "-f", "-", stdin=_yaml(manifest), check=False)
    else:
        cleanup.append(manifest)
        result = api_site.kubectl("create", "-f", "-", stdin=_yaml(manifest), check=False)
    assert result.returncode != 0, f"{case.description}: accepted by the API server"
    assert case.expect_apiserver in result.stderr, result.stderr


def _sites(role: Role) -> SiteContext:
    name, peer = ("danang", "quangnam") if role == Role.ACTIVE else ("quangnam", "danang")
    return SiteContext(
        name, role, epoch=3, ingress_address="203.0.113.10", peer=PeerSite(peer, "svc.clusterset.local")
    )


def test_every_render_passes_server_side_dry_run(api_site: Site, namespace: str) -> None:
    """Every platform x role x standby mode: the API server (with the engines' CRDs) accepts every object."""
    checked = 0
    for slug, role, mode in itertools.product(samples.SLUGS, Role, StandbyMode):
        body = samples.service(slug, namespace, standby={"mode": str(mode)})
        objects = render(SharedService.model_validate(body), _sites(role))
        stream = "---\n".join(_yaml(obj) for obj in objects)
        result = api_site.kubectl(
            "create", "--dry-run=server", "-o", "name", "-f", "-", stdin=stream, check=False
        )
        assert result.returncode == 0, f"{slug} {role} {mode}: {result.stderr}"
        assert len(result.stdout.split()) == len(objects)
        checked += len(objects)
    assert checked > 5 * 3 * 3 * 8


def failover_of(count: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Failover of `count` services, and the largest status it can come to: an emergency failover refused
    at CheckPreconditions because every window is unknown (the message names the services), every service
    holding a promotion token the size of CloudNativePG's."""
    now = datetime.datetime(2026, 11, 28, 9, 0, tzinfo=datetime.UTC)
    services = tuple(
        ServiceReplica(f"district-{i % 20:02d}", f"{samples.SLUGS[i % len(samples.SLUGS)]}-{i:05d}", 60.0)
        for i in range(count)
    )
    situation = Situation(
        "quangnam",
        ("danang", "quangnam"),
        "danang",
        7,
        False,
        now,
        services,
        target_role=Role.STANDBY,
        target_why="danang is active at epoch 7",
    )
    status = planned(make_plan(FailoverType.FAILOVER, False, situation), False, now)
    token = base64.b64encode(json.dumps(CNPG_TOKEN).encode()).decode()
    status = status.model_copy(
        update={"services": [s.model_copy(update={"promotion_token": token}) for s in status.services]}
    )
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "Failover",
        "metadata": {"name": f"failover-of-{count}"},
        "spec": {"targetSite": "quangnam", "type": "Failover", "reason": "size"},
    }
    return body, status.model_dump(mode="json", by_alias=True, exclude_none=True)


CNPG_TOKEN = {  # what CloudNativePG 1.25 publishes as status.demotionToken, decoded
    "latestCheckpointTimelineID": "1",
    "redoWALFile": "000000010000000000000004",
    "databaseSystemIdentifier": "7341559938720681999",
    "latestCheckpointREDOLocation": "0/4000028",
    "timeOfLatestCheckpoint": "Fri Nov 28 08:59:58 2026",
    "operatorVersion": "1.25.0",
}


@pytest.mark.parametrize("count", [1000, MAX_FAILOVER_SERVICES])
def test_the_status_of_a_failover_of_many_services_stays_writable(
    api_site: Site, cleanup: list[dict[str, Any]], count: int
) -> None:
    body, status = failover_of(count)
    cleanup.append(body)
    api_site.custom.create_cluster_custom_object(API_GROUP, API_VERSION, "failovers", body)
    api_site.custom.patch_cluster_custom_object_status(
        API_GROUP, API_VERSION, "failovers", body["metadata"]["name"], {"status": status}
    )
    stored = api_site.custom.get_cluster_custom_object(
        API_GROUP, API_VERSION, "failovers", body["metadata"]["name"]
    )
    assert len(stored["status"]["services"]) == count
    size = len(json.dumps(stored))
    print(f"Failover of {count} services: {size} bytes stored (managedFields included)")
    assert size < MAX_OBJECT_BYTES / 2, "half of what etcd takes in one request, for margin"
