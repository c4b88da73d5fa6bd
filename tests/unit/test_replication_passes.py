"""One replication pass against in-memory sites: only namespaces invited at both sites, nothing created
outside them, refusals said once, a deleted Secret's copy kept (issue 11, rules 8 and 10). The real API's
semantics are tested on the planes (tests/cluster/test_replication_safety.py)."""

import asyncio
import copy
import itertools
from collections.abc import Mapping
from typing import Any

from sharedcore.api import ReplicationPolicy
from sharedcore.kube.client import ApiError
from sharedcore.kube.resources import Resource
from sharedcore.replication import content, retained
from sharedcore.replication.config import ConfigReplicator
from tests.support import samples

Body = dict[str, Any]
OPT_IN = content.OPT_IN
_versions = itertools.count(1)


class Site:
    """A cluster as the replicator uses it: list, create, patch, delete, kept in a dictionary."""

    def __init__(self, namespaces: Mapping[str, bool], forbidden: frozenset[str] = frozenset()) -> None:
        self.forbidden = forbidden  # namespaces where this identity has no RoleBinding
        self.objects: dict[tuple[str, str, str], Body] = {}
        self.writes: list[tuple[str, str, str]] = []
        for name, invited in namespaces.items():
            self.put({"kind": "Namespace", "metadata": {"name": name, "labels": OPT_IN if invited else {}}})

    def put(self, obj: Body) -> Body:
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(next(_versions))
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj
        return obj

    def of(self, kind: str) -> dict[tuple[str, str], Body]:
        return {(ns, name): obj for (k, ns, name), obj in self.objects.items() if k == kind}

    async def list(
        self, resource: Resource, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Body]:
        if namespace in self.forbidden:
            raise ApiError(403, "Forbidden", f"cannot list {resource.plural} in the namespace {namespace}")
        return [
            copy.deepcopy(obj)
            for (kind, ns, _), obj in self.objects.items()
            if kind == resource.kind
            and namespace in (None, ns)
            and (labels or {}).items() <= (obj["metadata"].get("labels") or {}).items()
        ]

    async def create(self, resource: Resource, obj: Body) -> Body:
        self.writes.append(("create", resource.kind, obj["metadata"]["name"]))
        return self.put(obj)

    async def patch(self, resource: Resource, name: str, namespace: str | None, patch: Body) -> Body:
        self.writes.append(("patch", resource.kind, name))
        obj = self.objects[(resource.kind, namespace or "", name)]
        for field in ("labels", "annotations"):
            merged = {**(obj["metadata"].get(field) or {}), **patch["metadata"].get(field, {})}
            obj["metadata"][field] = {k: v for k, v in merged.items() if v is not None}
        return self.put(obj)

    async def delete(self, resource: Resource, name: str, namespace: str | None = None) -> bool:
        self.writes.append(("delete", resource.kind, name))
        return self.objects.pop((resource.kind, namespace or "", name), None) is not None


def secret(namespace: str, name: str, type_: str = "Opaque") -> Body:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": type_,
        "metadata": {"name": name, "namespace": namespace, "labels": OPT_IN, "resourceVersion": "1"},
        "data": {"password": "c2VjcmV0"},
    }


def service(namespace: str) -> Body:
    body = samples.service("open-data", namespace) | {"apiVersion": "sharedcore.danang.gov.vn/v1alpha1"}
    body["kind"] = "SharedService"
    body["metadata"]["resourceVersion"] = "1"
    return body


def replicating(active: Site, standby: Site) -> ConfigReplicator:
    return ConfigReplicator(
        "danang",
        active,  # type: ignore[arg-type]
        target=lambda: (standby, 1),  # active at epoch 1 throughout: each write confirms it
        policy=ReplicationPolicy,
        namespaces=(),
        excluded_namespace="sharedcore-system",
        resync_seconds=60,
    )


def test_a_pass_writes_only_into_namespaces_invited_at_both_sites_and_keeps_deleted_secrets() -> None:
    active = Site({"egov": True, "uninvited": True, "local": False, "absent": True, "ungranted": True})
    standby = Site(
        {"egov": True, "uninvited": False, "local": True, "ungranted": True},
        forbidden=frozenset({"ungranted"}),
    )
    replicator = replicating(active, standby)
    sources = [
        service("egov"),
        secret("egov", "smtp"),
        secret("egov", "robot-token", "kubernetes.io/service-account-token"),
        service("uninvited"),
        service("local"),
        secret("absent", "smtp"),
        service("ungranted"),
    ]
    for source in sources:
        replicator.observe(None, source)

    def events() -> list[str]:
        return sorted(
            f"{e['involvedObject']['namespace']}/{e['involvedObject']['name']}"
            for e in active.of("Event").values()
        )

    asyncio.run(replicator.sync(standby, 1))  # type: ignore[arg-type]
    assert set(standby.of("SharedService")) == {("egov", "opendata")}
    assert set(standby.of("Secret")) == {("egov", "smtp")}
    namespaces = {name for (kind, _, name) in standby.objects if kind == "Namespace"}
    assert namespaces == {"egov", "uninvited", "local", "ungranted"}, "none created"
    reported = ["absent/smtp", "egov/robot-token", "ungranted/opendata", "uninvited/opendata"]
    assert events() == reported, "local stays at its site"
    denied = next(e for e in active.of("Event").values() if e["involvedObject"]["namespace"] == "ungranted")
    assert "peer-identity --namespace ungranted" in denied["message"]
    asyncio.run(replicator.sync(standby, 1))  # type: ignore[arg-type]
    assert len(events()) == 4, "each refusal is said once"

    standby.writes.clear()
    replicator.observe("DELETED", secret("egov", "smtp"))
    replicator.observe("DELETED", service("egov"))
    for _ in range(2):
        asyncio.run(replicator.sync(standby, 1))  # type: ignore[arg-type]
    assert standby.writes == [("patch", "Secret", "smtp"), ("delete", "SharedService", "opendata")]
    kept = standby.of("Secret")[("egov", "smtp")]
    assert (
        retained.is_retained(kept)
        and "deleted at danang" in kept["metadata"]["annotations"][retained.BECAUSE]
    )


def test_a_service_created_again_at_the_active_site_gets_a_new_copy_not_an_update() -> None:
    """Its data at the active site may be new and empty: the old copy goes (its data kept), then a new one."""
    active, standby = Site({"egov": True}), Site({"egov": True})
    replicator = replicating(active, standby)
    first = service("egov") | {"metadata": {"name": "opendata", "namespace": "egov", "uid": "first"}}
    replicator.observe(None, first)
    asyncio.run(replicator.sync(standby, 1))  # type: ignore[arg-type]
    again = copy.deepcopy(first)
    again["metadata"] |= {"uid": "second", "resourceVersion": "7"}
    replicator.observe(None, again)
    standby.writes.clear()
    for _ in range(2):
        asyncio.run(replicator.sync(standby, 1))  # type: ignore[arg-type]
    assert standby.writes == [
        ("delete", "SharedService", "opendata"),
        ("create", "SharedService", "opendata"),
    ]
    assert content.origin_uid(standby.of("SharedService")[("egov", "opendata")]) == "second"
