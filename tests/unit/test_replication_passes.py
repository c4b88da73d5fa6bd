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

    def __init__(self, namespaces: Mapping[str, bool]) -> None:
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


def test_a_pass_writes_only_into_namespaces_invited_at_both_sites_and_keeps_deleted_secrets() -> None:
    active = Site({"egov": True, "uninvited": True, "local": False, "absent": True})
    standby = Site({"egov": True, "uninvited": False, "local": True})
    replicator = ConfigReplicator(
        "danang",
        active,  # type: ignore[arg-type]
        target=lambda: None,
        policy=ReplicationPolicy,
        namespaces=(),
        excluded_namespace="sharedcore-system",
        resync_seconds=60,
    )
    sources = [
        service("egov"),
        secret("egov", "smtp"),
        secret("egov", "robot-token", "kubernetes.io/service-account-token"),
        service("uninvited"),
        service("local"),
        secret("absent", "smtp"),
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
    assert {name for (kind, _, name) in standby.objects if kind == "Namespace"} == {
        "egov",
        "uninvited",
        "local",
    }
    assert events() == ["absent/smtp", "egov/robot-token", "uninvited/opendata"], "local stays at its site"
    asyncio.run(replicator.sync(standby, 1))  # type: ignore[arg-type]
    assert len(events()) == 3, "each refusal is said once"

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


class Unbound(Site):
    """A standby whose administrators opted namespaces in but bound this site's identity only in some."""

    def __init__(self, namespaces: Mapping[str, bool], bound: set[str]) -> None:
        super().__init__(namespaces)
        self.bound = bound

    async def list(
        self, resource: Resource, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Body]:
        if resource.kind != "Namespace" and namespace not in self.bound:
            raise ApiError(403, "Forbidden", f'secrets is forbidden in the namespace "{namespace}"')
        return await super().list(resource, namespace, labels)


def test_a_namespace_opted_in_without_the_peer_identity_bound_is_reported_and_the_others_go_on() -> None:
    active = Site({"egov": True, "hotline": True})
    standby = Unbound({"egov": True, "hotline": True}, bound={"hotline"})
    replicator = ConfigReplicator(
        "danang",
        active,  # type: ignore[arg-type]
        target=lambda: None,
        policy=ReplicationPolicy,
        namespaces=(),
        excluded_namespace="sharedcore-system",
        resync_seconds=60,
    )
    for source in (service("egov"), service("hotline")):
        replicator.observe(None, source)
    asyncio.run(replicator.sync(standby, 1))  # type: ignore[arg-type]
    assert set(standby.of("SharedService")) == {("hotline", "opendata")}
    (refusal,) = [e["message"] for e in active.of("Event").values()]
    assert "sharedcore peer-identity --for danang --namespace egov" in refusal
    standby.bound.add("egov")
    asyncio.run(replicator.sync(standby, 1))  # type: ignore[arg-type]
    assert set(standby.of("SharedService")) == {("egov", "opendata"), ("hotline", "opendata")}
