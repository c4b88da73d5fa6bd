"""`sharedcore peer-identity`: the RBAC one site gets at the other and at the witness, and its kubeconfig."""

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from sharedcore import rbac
from sharedcore.cli import main
from sharedcore.kube.credentials import from_kubeconfig

WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def test_at_the_other_site_writes_are_confined_to_its_heartbeat_and_the_invited_namespaces() -> None:
    objects = rbac.peer_identity("danang", "quangnam", ["egov"])
    cluster_wide = {obj["metadata"]["name"]: obj for obj in by_kind(objects, "ClusterRole")}
    bound_everywhere = [b["roleRef"]["name"] for b in by_kind(objects, "ClusterRoleBinding")]
    assert bound_everywhere == [rbac.PEER_ROLE]
    for rule in cluster_wide[rbac.PEER_ROLE]["rules"]:
        assert not WRITES & set(rule["verbs"]) and "secrets" not in rule["resources"]
    bindings = {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in by_kind(objects, "RoleBinding")}
    assert bindings == {
        ("sharedcore-system", "sharedcore-peer-quangnam"),
        ("egov", rbac.PEER_REPLICATION_ROLE),
    }
    (heartbeats,) = by_kind(objects, "Role")
    for rule in heartbeats["rules"]:
        expected = (
            ["sharedcore-heartbeat-quangnam"]
            if WRITES & set(rule["verbs"])
            else ["sharedcore-heartbeat-danang"]
        )
        assert rule["resourceNames"] == expected
    assert {s["name"] for b in by_kind(objects, "RoleBinding") for s in b["subjects"]} == {
        "sharedcore-peer-quangnam"
    }


def test_at_the_witness_only_the_active_lease_can_be_read_or_changed() -> None:
    objects = rbac.peer_identity(rbac.WITNESS, "danang")
    assert [obj["kind"] for obj in objects] == ["Namespace", "ServiceAccount", "Role", "RoleBinding"]
    (role,) = by_kind(objects, "Role")
    for rule in role["rules"]:
        assert rule["resources"] == ["leases"]
        assert rule.get("resourceNames") == ["sharedcore-active"] or rule["verbs"] == ["create"]


def test_the_command_prints_the_objects_and_a_kubeconfig_the_operator_accepts(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(
        main, ["peer-identity", "--site", "danang", "--for", "quangnam", "--namespace", "egov"]
    )
    assert printed.exit_code == 0, printed.output
    assert list(yaml.safe_load_all(printed.output)) == rbac.peer_identity("danang", "quangnam", ["egov"])
    (tmp_path / "ca.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "token").write_text("t0ken\n")
    config = runner.invoke(
        main,
        [
            "peer-identity",
            "--site",
            "danang",
            "--for",
            "quangnam",
            "--server",
            "https://192.0.2.10:6443",
            "--certificate-authority",
            str(tmp_path / "ca.crt"),
            "--token-file",
            str(tmp_path / "token"),
        ],
    )
    assert config.exit_code == 0, config.output
    creds = from_kubeconfig(config.output, self_contained=True)
    assert (creds.server, creds.token) == ("https://192.0.2.10:6443", "t0ken")
    refused = runner.invoke(
        main, ["peer-identity", "--site", "witness", "--for", "danang", "--namespace", "egov"]
    )
    assert refused.exit_code != 0 and "nothing is replicated to the witness" in refused.output
