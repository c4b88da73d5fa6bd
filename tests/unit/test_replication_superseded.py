"""Issue 11, rule 3: a replication pass stops writing as soon as the site is no longer the active one at the
pass's epoch (fenced, handing over, or its Topology unusable), rather than finishing the pass."""

import asyncio
from typing import Any, cast

import pytest

from sharedcore.api import ReplicationPolicy
from sharedcore.kube.client import KubeClient
from sharedcore.kube.resources import NAMESPACES, Resource
from sharedcore.replication import content
from sharedcore.replication.config import ConfigReplicator, SupersededError
from tests.support import samples

Body = dict[str, Any]
NAMESPACE = "egov"


class FakeCluster:
    """Just what a pass calls: lists (the opted-in namespace, no copies yet) and creates, recorded."""

    def __init__(self) -> None:
        self.created: list[str] = []

    async def list(self, resource: Resource, namespace: str | None, labels: Any = None) -> list[Body]:
        if resource is NAMESPACES:
            return [{"metadata": {"name": NAMESPACE, "labels": content.OPT_IN}}]
        return []

    async def create(self, resource: Resource, obj: Body) -> Body:
        self.created.append(obj["metadata"]["name"])
        return obj


def test_a_pass_stops_writing_once_the_site_is_no_longer_active_at_its_epoch() -> None:
    here, standby = FakeCluster(), FakeCluster()
    roles = iter([True, False])  # active for the first write only: then fenced, mid-pass

    def target() -> tuple[KubeClient, int] | None:
        return (cast(KubeClient, standby), 4) if next(roles, False) else None

    replicator = ConfigReplicator(
        "danang",
        cast(KubeClient, here),
        target=target,
        policy=ReplicationPolicy,
        namespaces=(),
        excluded_namespace="sharedcore-system",
        resync_seconds=60,
    )
    for name in ("first", "second"):
        body = samples.service("open-data", NAMESPACE, name)
        replicator.observe(
            None, body | {"apiVersion": "sharedcore.danang.gov.vn/v1alpha1", "kind": "SharedService"}
        )
    with pytest.raises(SupersededError, match="no longer the active one at epoch 4"):
        asyncio.run(replicator.sync(cast(KubeClient, standby), 4))
    assert standby.created == ["first"]
