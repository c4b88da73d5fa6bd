"""What render() must do for each role: replicas, DNS, the replica database, labels, policies."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from sharedcore import API_GROUP
from sharedcore.api import Role, SharedService, StandbyMode
from sharedcore.render import (
    KIND_ORDER,
    ClusterKey,
    FailoverForm,
    Manifest,
    PeerSite,
    RenderError,
    SiteContext,
    render,
)
from sharedcore.render.context import RenderContext
from tests.golden.samples import SERVICE_DOMAIN, SLUGS, sample, site

ROLES = (Role.ACTIVE, Role.STANDBY, Role.FENCED)


def with_spec(slug: str, **changes: Any) -> SharedService:
    """A sample with parts of its spec replaced (camelCase keys, as in YAML)."""
    document = sample(slug).model_dump(mode="json", by_alias=True, exclude_none=True)
    document["spec"].update(changes)
    return SharedService.model_validate(document)


def with_settings(slug: str, **changes: Any) -> SharedService:
    """A sample with some of its platform's settings replaced (camelCase keys)."""
    document = sample(slug).model_dump(mode="json", by_alias=True, exclude_none=True)
    (platform_settings,) = document["spec"]["settings"].values()
    platform_settings.update(changes)
    return SharedService.model_validate(document)


def of_kind(objects: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def only(objects: list[Manifest], kind: str) -> Manifest:
    (obj,) = of_kind(objects, kind).values()
    return obj


def pod_template(objects: list[Manifest], deployment: str) -> dict[str, Any]:
    template: dict[str, Any] = of_kind(objects, "Deployment")[deployment]["spec"]["template"]
    return template


def replicas(objects: list[Manifest]) -> dict[str, int]:
    return {
        obj["metadata"]["labels"]["app.kubernetes.io/component"]: obj["spec"]["replicas"]
        for obj in of_kind(objects, "Deployment").values()
    }


# vanban: spec.replicas 3 for web and api, ocrWorkers 4 for the OCR workers.
ACTIVE_REPLICAS = {"web": 3, "api": 3, "ocr-worker": 4}


@pytest.mark.parametrize(
    ("role", "mode", "expected"),
    [
        (Role.ACTIVE, StandbyMode.WARM, ACTIVE_REPLICAS),
        (Role.ACTIVE, StandbyMode.COLD, ACTIVE_REPLICAS),
        (Role.STANDBY, StandbyMode.HOT, ACTIVE_REPLICAS),
        (Role.STANDBY, StandbyMode.WARM, {"web": 1, "api": 1, "ocr-worker": 1}),
        (Role.STANDBY, StandbyMode.COLD, {"web": 0, "api": 0, "ocr-worker": 0}),
        (Role.FENCED, StandbyMode.HOT, {"web": 0, "api": 0, "ocr-worker": 0}),
        (Role.FENCED, StandbyMode.WARM, {"web": 0, "api": 0, "ocr-worker": 0}),
    ],
)
def test_replicas_follow_role_and_standby_mode(
    role: Role, mode: StandbyMode, expected: dict[str, int]
) -> None:
    service = with_spec("document-management", standby={"mode": str(mode)})
    assert replicas(render(service, site(role))) == expected


@pytest.mark.parametrize("mode", list(StandbyMode))
@pytest.mark.parametrize("read_only_standby", [True, False])
def test_archive_ingests_only_at_the_active_site_and_serves_look_ups_at_the_standby(
    mode: StandbyMode, read_only_standby: bool
) -> None:
    """No batch is ever half-ingested at two sites: the ingest worker runs at the active site alone, in every
    standby mode; with readOnlyStandby the standby's search front end runs in full, whatever the mode."""
    document = with_spec("e-archive", standby={"mode": str(mode)}).model_dump(by_alias=True, mode="json")
    document["spec"]["settings"]["eArchive"] = {"ingestWorkers": 3, "readOnlyStandby": read_only_standby}
    service = SharedService.model_validate(document)
    assert replicas(render(service, site(Role.ACTIVE))) == {"web": 2, "ingest-worker": 3}
    web_at_standby = 2 if read_only_standby else {"Hot": 2, "Warm": 1, "Cold": 0}[str(mode)]
    assert replicas(render(service, site(Role.STANDBY))) == {"web": web_at_standby, "ingest-worker": 0}
    assert replicas(render(service, site(Role.FENCED))) == {"web": 0, "ingest-worker": 0}


def test_archive_read_only_host_is_routed_at_both_sites() -> None:
    """The Ingress answers both hosts at each site (DNS decides which site each name reaches), with one
    certificate."""
    for role in ROLES:
        spec = only(render(sample("e-archive"), site(role)), "Ingress")["spec"]
        hosts = ["luutru.danang.gov.vn", "tracuu-luutru.danang.gov.vn"]
        assert [rule["host"] for rule in spec["rules"]] == hosts
        assert spec["tls"] == [{"hosts": hosts, "secretName": "luutru-danang-gov-vn-tls"}]


def test_a_parallel_run_routes_its_paths_to_the_previous_system_and_runs_its_job_at_the_active_site() -> None:
    service = sample("public-service-portal")
    active = render(service, site(Role.ACTIVE))
    previous = of_kind(active, "Service")["dichvucong-previous"]["spec"]
    assert previous == {
        "type": "ExternalName",
        "externalName": "motcua.quangnam.gov.vn",
        "ports": [{"name": "https", "port": 443}],
    }
    ingress = of_kind(active, "Ingress")["dichvucong-previous"]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "dichvucong.danang.gov.vn"
    assert [p["path"] for p in rule["http"]["paths"]] == ["/tra-cuu/ho-so-cu", "/api/v1/ho-so-cu"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS"
    assert annotations["nginx.ingress.kubernetes.io/proxy-ssl-secret"] == "dichvucong/motcua-quangnam-ca"
    job = of_kind(active, "CronJob")["dichvucong-parallel-run"]["spec"]
    assert job["schedule"] == "*/15 * * * *" and job["concurrencyPolicy"] == "Forbid"
    [rule_of_job] = of_kind(active, "Role")["dichvucong-parallel-run"]["rules"]
    assert rule_of_job["resourceNames"] == ["dichvucong-parallel-run"]  # its results, nothing else
    assert "data" not in of_kind(active, "ConfigMap")["dichvucong-parallel-run"]  # the job's to write
    for role in (Role.STANDBY, Role.FENCED):
        objects = render(service, site(role))
        assert not of_kind(objects, "CronJob") and "dichvucong-previous" not in of_kind(objects, "Ingress")


def test_a_parallel_run_beside_a_hosted_portal_asks_the_hosted_portal() -> None:
    def new_system(service: SharedService) -> str:
        job = of_kind(render(service, site(Role.ACTIVE)), "CronJob")["dichvucong-parallel-run"]["spec"]
        [container] = job["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        return next(e["value"] for e in container["env"] if e["name"] == "NEW_SYSTEM_URL")

    run = sample("public-service-portal").model_dump(mode="json", by_alias=True)["spec"]["parallelRun"]
    hosted = with_spec(
        "public-service-portal", parallelRun={**run, "newSystemUrl": "https://dvc.hosted.example"}
    )
    assert new_system(sample("public-service-portal")) == "http://dichvucong-portal.dichvucong.svc:8080"
    assert new_system(hosted) == "https://dvc.hosted.example"


def test_profile_default_replicas_without_spec_replicas() -> None:
    service = with_spec("document-management", replicas=None)
    assert replicas(render(service, site(Role.ACTIVE))) == {"web": 2, "api": 2, "ocr-worker": 4}


def test_warm_standby_keeps_zero_at_zero() -> None:
    service = with_settings("document-management", ocrWorkers=0)
    assert replicas(render(service, site(Role.ACTIVE)))["ocr-worker"] == 0
    assert replicas(render(service, site(Role.STANDBY)))["ocr-worker"] == 0


def test_unset_settings_take_the_model_defaults() -> None:
    service = with_spec("document-management", settings={})
    objects = render(service, site(Role.ACTIVE))
    assert replicas(objects)["ocr-worker"] == 2
    assert of_kind(objects, "ConfigMap")["vanban-settings"]["data"]["SIGNATURE_PROVIDER"]


@pytest.mark.parametrize("slug", SLUGS)
def test_dns_endpoint_only_at_the_active_site(slug: str) -> None:
    """The public name only at the active site; a profile's standby host (read-only look-ups) only at the
    standby, under its own name, so the failover's checks of the public record never mistake it."""
    service = sample(slug)
    for role in ROLES:
        endpoints = of_kind(render(service, site(role)), "DNSEndpoint")
        hosts = {e["spec"]["endpoints"][0]["dnsName"]: name for name, e in endpoints.items()}
        public = {service.spec.ingress.host: service.metadata.name} if service.spec.ingress else {}
        expected = public if role == Role.ACTIVE else {}
        if role == Role.STANDBY and (host := RenderContext.build(service, site(role)).standby_host):
            expected = {host: f"{service.metadata.name}-standby"}
        assert hosts == expected, role


@pytest.mark.parametrize(
    ("address", "record"),
    [("203.0.113.10", "A"), ("2001:db8::10", "AAAA"), ("lb.danang.gov.vn", "CNAME")],
)
def test_dns_endpoint_record(address: str, record: str) -> None:
    context = SiteContext("danang", Role.ACTIVE, 1, ingress_address=address)
    endpoint = only(render(sample("document-management"), context), "DNSEndpoint")
    assert endpoint["spec"]["endpoints"] == [
        {"dnsName": "vanban.danang.gov.vn", "recordType": record, "recordTTL": 30, "targets": [address]}
    ]


@pytest.mark.parametrize(
    ("own", "topology", "rto", "expected"),
    [
        (None, 30, 600, 30),  # the Topology's default
        (None, 120, 600, 120),
        (None, 120, 45, 45),  # never above the service's RTO
        (5, 120, 600, 5),  # the service's own (the schema keeps it within the RTO)
    ],
)
def test_dns_record_ttl_comes_from_the_service_or_the_topology_within_the_rto(
    own: int | None, topology: int, rto: int, expected: int
) -> None:
    service = sample("document-management")
    assert service.spec.ingress is not None
    service.spec.ingress.ttl_seconds = own
    service.spec.objectives.rto_seconds = rto
    context = SiteContext(
        "danang", Role.ACTIVE, 1, ingress_address="203.0.113.10", record_ttl_seconds=topology
    )
    endpoint = only(render(service, context), "DNSEndpoint")
    assert endpoint["spec"]["endpoints"][0]["recordTTL"] == expected


def test_no_dns_endpoint_without_an_ingress_address() -> None:
    context = SiteContext("danang", Role.ACTIVE, 1)
    assert not of_kind(render(sample("document-management"), context), "DNSEndpoint")


@pytest.mark.parametrize("role", [Role.STANDBY, Role.FENCED])
def test_standby_database_is_a_replica_of_the_peer(role: Role) -> None:
    cluster = only(render(sample("document-management"), site(role)), "Cluster")
    spec = cluster["spec"]
    assert cluster["metadata"]["name"] == "vanban-db-quangnam"
    assert spec["replica"] == {
        "primary": "vanban-db-danang",
        "self": "vanban-db-quangnam",
        "source": "vanban-db-danang",
    }
    assert spec["bootstrap"]["pg_basebackup"]["source"] == "vanban-db-danang"
    assert "initdb" not in spec["bootstrap"]
    peer = {entry["name"]: entry for entry in spec["externalClusters"]}["vanban-db-danang"]
    assert peer["connectionParameters"] == {
        "host": f"vanban-db-danang-rw.e-office.{SERVICE_DOMAIN}",
        "user": "streaming_replica",
        "dbname": "postgres",
        "sslmode": "verify-full",
    }
    assert {peer[key]["name"] for key in ("sslKey", "sslCert")} == {"vanban-db-quangnam-replication"}
    assert peer["sslRootCert"] == {"name": "vanban-db-server-ca", "key": "ca.crt"}


def test_active_database_is_the_primary_of_the_pair() -> None:
    spec = only(render(sample("document-management"), site(Role.ACTIVE)), "Cluster")["spec"]
    assert spec["replica"] == {
        "primary": "vanban-db-danang",
        "self": "vanban-db-danang",
        "source": "vanban-db-quangnam",
    }
    assert spec["bootstrap"] == {
        "initdb": {"database": "vanban", "owner": "vanban", "secret": {"name": "vanban-db-app"}}
    }
    assert spec["instances"] == 3
    assert spec["storage"] == {"size": "50Gi", "storageClass": "ceph-rbd"}


def test_both_sites_describe_the_same_topology() -> None:
    """A switchover flips replica.primary only: everything else about the topology already agrees."""
    active = only(render(sample("open-data"), site(Role.ACTIVE)), "Cluster")["spec"]
    standby = only(render(sample("open-data"), site(Role.STANDBY)), "Cluster")["spec"]
    assert [entry["name"] for entry in active["externalClusters"]] == [
        "opendata-db-danang",
        "opendata-db-quangnam",
    ]
    for left, right in zip(active["externalClusters"], standby["externalClusters"], strict=True):
        assert left["connectionParameters"] == right["connectionParameters"]
    assert active["replica"]["primary"] == standby["replica"]["primary"]


@pytest.mark.parametrize("slug", SLUGS)
def test_pods_do_not_change_with_role_or_epoch(slug: str) -> None:
    """Selectors and pod templates carry no role or epoch: a failover must not roll or orphan pods."""
    seen = []
    for role, epoch in [(Role.ACTIVE, 1), (Role.STANDBY, 2), (Role.FENCED, 3)]:
        context = SiteContext("danang", role, epoch, peer=PeerSite("quangnam", SERVICE_DOMAIN))
        objects = render(sample(slug), context)
        deployments = of_kind(objects, "Deployment")
        services = of_kind(objects, "Service")
        seen.append(
            (
                {
                    name: (obj["spec"]["selector"], obj["spec"]["template"])
                    for name, obj in deployments.items()
                },
                # Not the ExternalName Service of a parallel run: it leads out of the cluster, to no pod.
                {
                    name: obj["spec"]["selector"]
                    for name, obj in services.items()
                    if "selector" in obj["spec"]
                },
            )
        )
        for name, budget in of_kind(objects, "PodDisruptionBudget").items():
            assert budget["spec"]["selector"] == deployments[name]["spec"]["selector"]
        for obj in deployments.values():
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert obj["spec"]["selector"]["matchLabels"].items() <= labels.items()
            assert not {f"{API_GROUP}/role", f"{API_GROUP}/epoch"} & labels.keys()
    assert seen[0] == seen[1] == seen[2]


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("role", ROLES)
def test_every_object_is_labelled(slug: str, role: Role) -> None:
    service = sample(slug)
    for obj in render(service, site(role, epoch=12)):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == slug
        assert labels["app.kubernetes.io/instance"] == service.metadata.name
        assert labels["app.kubernetes.io/component"]
        assert labels["app.kubernetes.io/managed-by"] == "sharedcore"
        assert labels["app.kubernetes.io/part-of"] == "sharedcore"
        assert labels[f"{API_GROUP}/service"] == service.metadata.name
        assert labels[f"{API_GROUP}/platform"] == str(service.spec.platform)
        if {f"{API_GROUP}/role", f"{API_GROUP}/epoch"} & labels.keys():
            assert (labels[f"{API_GROUP}/role"], labels[f"{API_GROUP}/epoch"]) == (str(role), "12")
        assert obj["metadata"]["namespace"] == service.metadata.namespace
        assert "ownerReferences" not in obj["metadata"]
    # The database's labels tell a diverged primary (replication.diverged), the site ConfigMap's the pods.
    for obj in render(service, site(role, epoch=12)):
        if obj["kind"] == "Cluster" or obj["metadata"]["name"].endswith("-site"):
            assert obj["metadata"]["labels"][f"{API_GROUP}/role"] == str(role)


ROLE_LABELS = (f"{API_GROUP}/role", f"{API_GROUP}/epoch")


def _without_role_labels(obj: Manifest) -> Manifest:
    labels = {k: v for k, v in obj["metadata"]["labels"].items() if k not in ROLE_LABELS}
    return {**obj, "metadata": {**obj["metadata"], "labels": labels}}


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("mode", list(StandbyMode))
def test_promotion_rewrites_only_what_it_changes(slug: str, mode: StandbyMode) -> None:
    """Promoted (Standby at epoch 7 → Active at 8, at the same site), an object that reads the same but for
    its role and epoch labels is not rewritten: its form does not depend on the role, so it carries none."""
    service = with_spec(slug, standby={"mode": str(mode)})
    here = site(Role.STANDBY, epoch=7)
    standby = {(o["kind"], o["metadata"]["name"]): o for o in render(service, here)}
    promoted = dataclasses.replace(here, role=Role.ACTIVE, epoch=8)
    active = {(o["kind"], o["metadata"]["name"]): o for o in render(service, promoted)}
    relabelled_only = [
        f"{kind} {name}"
        for (kind, name), obj in active.items()
        if (kind, name) in standby
        and obj != standby[kind, name]
        and _without_role_labels(obj) == _without_role_labels(standby[kind, name])
    ]
    assert not relabelled_only


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("role", ROLES)
def test_disruption_budget_only_for_more_than_one_replica(slug: str, role: Role) -> None:
    objects = render(sample(slug), site(role))
    budgets = of_kind(objects, "PodDisruptionBudget")
    for name, deployment in of_kind(objects, "Deployment").items():
        assert (name in budgets) == (deployment["spec"]["replicas"] > 1), name


def test_settings_reach_the_config_map_and_roll_the_pods() -> None:
    objects = render(sample("hotline-1022"), site(Role.ACTIVE))
    data = of_kind(objects, "ConfigMap")["hotline-1022-settings"]["data"]
    assert data["AGENT_SEATS"] == "40"
    assert data["CALL_RECORDING"] == "true"
    trunks = yaml.safe_load(data["sip-trunks.yaml"])
    assert trunks["trunks"][1] == {
        "name": "viettel",
        "host": "trunk.viettel-danang.vn",
        "port": 5061,
        "transport": "TLS",
    }

    changed = with_settings("hotline-1022", agentSeats=60)
    before = pod_template(objects, "hotline-1022-sip-gateway")
    after = pod_template(render(changed, site(Role.ACTIVE)), "hotline-1022-sip-gateway")
    assert before["metadata"]["annotations"] != after["metadata"]["annotations"]


def test_settings_are_passed_to_the_containers_that_use_them() -> None:
    objects = render(sample("document-management"), site(Role.ACTIVE))
    container = pod_template(objects, "vanban-api")["spec"]["containers"][0]
    env = {entry["name"]: entry for entry in container["env"]}
    assert env["SIGNATURE_PROVIDER"]["valueFrom"]["configMapKeyRef"] == {
        "name": "vanban-settings",
        "key": "SIGNATURE_PROVIDER",
    }
    assert of_kind(objects, "ConfigMap")["vanban-settings"]["data"]["SIGNATURE_PROVIDER"] == "VGCA"
    assert env["DATABASE_HOST"]["value"] == "vanban-db-danang-rw"


def test_site_config_map_carries_the_role() -> None:
    objects = render(sample("smart-city"), site(Role.STANDBY, epoch=9))
    data = of_kind(objects, "ConfigMap")["smartcity-site"]["data"]
    assert data == {
        "SHAREDCORE_SITE": "quangnam",
        "SHAREDCORE_ROLE": "Standby",
        "SHAREDCORE_EPOCH": "9",
        "SHAREDCORE_PEER_SITE": "danang",
    }


def test_call_recorder_only_with_call_recording() -> None:
    def components(recording: bool) -> set[str]:
        objects = render(with_settings("hotline-1022", callRecording=recording), site(Role.ACTIVE))
        return {obj["metadata"]["labels"]["app.kubernetes.io/component"] for obj in objects}

    assert "call-recorder" in components(True)
    assert "call-recorder" not in components(False)


@pytest.mark.parametrize("role", ROLES)
def test_no_peer_means_no_replication(role: Role) -> None:
    objects = render(sample("document-management"), site(role, peered=False))
    assert not of_kind(objects, "ReplicationSource")
    assert not of_kind(objects, "ReplicationDestination")
    spec = only(objects, "Cluster")["spec"]
    assert "externalClusters" not in spec
    assert "replica" not in spec
    assert "initdb" in spec["bootstrap"]
    assert "SHAREDCORE_PEER_SITE" not in of_kind(objects, "ConfigMap")["vanban-site"]["data"]


def test_files_are_pushed_from_the_active_site_to_the_other() -> None:
    source = only(render(sample("smart-city"), site(Role.ACTIVE)), "ReplicationSource")
    assert source["metadata"]["name"] == "smartcity-files"
    assert source["spec"]["sourcePVC"] == "smartcity-files"
    assert source["spec"]["trigger"] == {"schedule": "*/6 * * * *"}  # 420 s rounded down to divide the hour
    tls = source["spec"]["rsyncTLS"]
    assert tls["keySecret"] == "smartcity-files-volsync"
    assert tls["address"] == f"volsync-rsync-tls-dst-smartcity-files.smart-city.{SERVICE_DOMAIN}"
    assert tls["copyMethod"] == "Snapshot"

    for role in (Role.STANDBY, Role.FENCED):
        objects = render(sample("smart-city"), site(role))
        assert not of_kind(objects, "ReplicationSource")
        destination = only(objects, "ReplicationDestination")["spec"]["rsyncTLS"]
        assert destination["destinationPVC"] == "smartcity-files"
        assert destination["keySecret"] == "smartcity-files-volsync"
        assert destination["serviceType"] == "ClusterIP"
        assert destination["copyMethod"] == "Snapshot"


def test_a_source_handing_over_keeps_pushing_files_for_the_final_sync() -> None:
    fenced = dataclasses.replace(site(Role.FENCED), failover=FailoverForm(final_sync="switchover-1"))
    objects = render(sample("smart-city"), fenced)
    assert not of_kind(objects, "ReplicationDestination")
    assert only(objects, "ReplicationSource")["spec"]["trigger"] == {"manual": "switchover-1"}
    # Its database is demoted all the same: it follows the target.
    assert only(objects, "Cluster")["spec"]["replica"]["primary"] == "smartcity-db-danang"
    assert not of_kind(objects, "DNSEndpoint")


def test_a_target_promotes_with_the_sources_demotion_token_and_only_then() -> None:
    token = "eyJzeXN0ZW1JRCI6IjcifQ=="
    service = sample("open-data")
    namespace = service.metadata.namespace
    for role in Role:
        own = only(render(service, site(role)), "Cluster")["metadata"]["name"]
        tokens = {ClusterKey(namespace, own): token, ClusterKey(namespace, "another-db-danang"): "other"}
        context = dataclasses.replace(site(role), failover=FailoverForm(promotion_tokens=tokens))
        replica = only(render(service, context), "Cluster")["spec"]["replica"]
        assert replica.get("promotionToken") == (token if role is Role.ACTIVE else None)
        if role is Role.ACTIVE:
            assert replica["primary"] == replica["self"] == own


def test_disabled_database_and_files_render_nothing_for_them() -> None:
    service = with_spec("document-management", database={"enabled": False}, files={"enabled": False})
    objects = render(service, site(Role.ACTIVE))
    kinds = {obj["kind"] for obj in objects}
    assert not kinds & {"Cluster", "PersistentVolumeClaim", "ReplicationSource"}
    for deployment in of_kind(objects, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert "files" not in {volume["name"] for volume in pod["volumes"]}
        assert not any(entry["name"].startswith("DATABASE_") for entry in pod["containers"][0]["env"])


def test_ingress_routes_the_web_facing_component() -> None:
    objects = render(sample("document-management"), site(Role.STANDBY))
    ingress = only(objects, "Ingress")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"hosts": ["vanban.danang.gov.vn"], "secretName": "vanban-danang-gov-vn-tls"}]
    (path,) = ingress["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": "vanban-web", "port": {"name": "http"}}
    assert not of_kind(render(with_spec("document-management", ingress=None), site(Role.ACTIVE)), "Ingress")


def test_pods_run_restricted() -> None:
    for deployment in of_kind(render(sample("hotline-1022"), site(Role.ACTIVE)), "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        assert container["securityContext"] == {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert container["image"].startswith("registry.danang.gov.vn/sharedcore/hotline-1022/")
        assert container["image"].endswith(":3.1.0")


def test_image_override_is_a_repository_prefix() -> None:
    service = with_spec("open-data", image="harbor.danang.gov.vn/opendata")
    images = {
        name: deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        for name, deployment in of_kind(render(service, site(Role.ACTIVE)), "Deployment").items()
    }
    assert images == {
        "opendata-portal": "harbor.danang.gov.vn/opendata/portal:2.10.4",
        "opendata-harvester": "harbor.danang.gov.vn/opendata/harvester:2.10.4",
    }


def test_network_policy_opens_the_web_facing_component_only() -> None:
    policies = of_kind(render(sample("smart-city"), site(Role.ACTIVE)), "NetworkPolicy")
    api, worker = policies["smartcity-api"]["spec"], policies["smartcity-push-worker"]["spec"]
    everyone = {"ports": [{"port": "http", "protocol": "TCP"}, {"port": "metrics", "protocol": "TCP"}]}
    assert api["ingress"] == [everyone]
    assert all("from" in rule for rule in worker["ingress"])
    database = {"podSelector": {"matchLabels": {"cnpg.io/cluster": "smartcity-db-danang"}}}
    assert any(rule.get("to") == [database] for rule in worker["egress"])


@pytest.mark.parametrize("slug", SLUGS)
def test_objects_come_in_kind_then_name_order(slug: str) -> None:
    objects = render(sample(slug), site(Role.ACTIVE))
    keys = [(KIND_ORDER.index(obj["kind"]), obj["metadata"]["name"]) for obj in objects]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_names_the_api_server_accepts_still_make_valid_object_names() -> None:
    """A leading digit or dots are fine in a SharedService name but not in a Service or Cluster name."""
    document = sample("hotline-1022").model_dump(mode="json", by_alias=True, exclude_none=True)
    document["metadata"]["name"] = "1022.v2"
    objects = render(SharedService.model_validate(document), site(Role.ACTIVE))
    for obj in objects:
        assert obj["metadata"]["name"].startswith("s-1022-v2-"), obj["metadata"]["name"]
        assert obj["metadata"]["labels"][f"{API_GROUP}/service"] == "1022.v2"


def test_a_service_without_namespace_cannot_be_rendered() -> None:
    document = sample("open-data").model_dump(mode="json", by_alias=True, exclude_none=True)
    del document["metadata"]["namespace"]
    with pytest.raises(RenderError, match="namespace"):
        render(SharedService.model_validate(document), site(Role.ACTIVE))
