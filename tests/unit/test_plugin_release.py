"""`kubectl sharedcore release-copy`: a dry run unless --confirm, and only retained copies of the service."""

from typing import Any

import pytest
from click.testing import CliRunner

from sharedcore.plugin import cli
from sharedcore.plugin.kube import Connection
from sharedcore.replication import retained

Body = dict[str, Any]
BECAUSE = "SharedService egov/qlvb deleted at quangnam (Standby, epoch 2): a copy is kept whatever its policy"


class FakeCluster:
    def __init__(self, kept: list[Body]) -> None:
        self.kept, self.asked, self.deleted = kept, [], []

    def retained_copies(self, namespace: str, service: str) -> list[Body]:
        self.asked.append((namespace, service))
        return self.kept

    def delete(self, obj: Body) -> None:
        self.deleted.append(f"{obj['kind']} {obj['metadata']['name']}")


def kept(kind: str, name: str) -> Body:
    annotations = {retained.SINCE: "2026-11-28T09:00:00Z", retained.BECAUSE: BECAUSE}
    return {"kind": kind, "metadata": {"name": name, "namespace": "egov", "annotations": annotations}}


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster([kept("PersistentVolumeClaim", "qlvb-files"), kept("Cluster", "qlvb-db-quangnam")])
    monkeypatch.setattr(Connection, "cluster", lambda self: fake)
    return fake


def test_without_confirm_it_lists_and_deletes_nothing(cluster: FakeCluster) -> None:
    result = CliRunner().invoke(cli.main, ["release-copy", "egov/qlvb", "--context", "quangnam"])
    assert result.exit_code == 0, result.output
    assert cluster.asked == [("egov", "qlvb")] and cluster.deleted == []
    assert (
        "PersistentVolumeClaim qlvb-files: kept since 2026-11-28T09:00:00Z, SharedService egov/qlvb"
        in result.output
    )
    assert "Cluster qlvb-db-quangnam" in result.output and "Dry run: nothing deleted" in result.output


def test_with_confirm_it_deletes_each_and_says_so(cluster: FakeCluster) -> None:
    result = CliRunner().invoke(cli.main, ["release-copy", "egov/qlvb", "--confirm"])
    assert result.exit_code == 0, result.output
    assert cluster.deleted == ["PersistentVolumeClaim qlvb-files", "Cluster qlvb-db-quangnam"]
    assert "deleted Cluster qlvb-db-quangnam" in result.output


def test_nothing_kept_is_an_error(cluster: FakeCluster) -> None:
    cluster.kept = []
    result = CliRunner().invoke(cli.main, ["release-copy", "egov/qlvb", "--confirm"])
    assert result.exit_code == 1 and "no retained copy of egov/qlvb here" in result.output


@pytest.mark.parametrize("bad", ["qlvb", "egov/", "/qlvb", "a/b/c"])
def test_the_argument_is_namespace_slash_service(cluster: FakeCluster, bad: str) -> None:
    result = CliRunner().invoke(cli.main, ["release-copy", bad])
    assert result.exit_code == 2 and "NAMESPACE/SERVICE" in result.output and cluster.asked == []
