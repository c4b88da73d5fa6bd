"""Kubeconfig Secrets for the peer and the witness: refused with a reason when malformed, never fatal, and the
last good client kept."""

import asyncio
import base64
from typing import Any

import pytest
import yaml

from sharedcore.api import KubeconfigSecretRef, Role
from sharedcore.kube.credentials import CredentialsError, from_kubeconfig
from sharedcore.sites import topology_status
from sharedcore.sites.peers import Peers
from sharedcore.sites.state import SiteState, WitnessView

REF = KubeconfigSecretRef(name="sharedcore-peer-quangnam", namespace="sharedcore-system")


def kubeconfig(cluster: dict[str, Any] | None = None, user: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "peer",
        "clusters": [
            {"name": "quangnam", "cluster": {"server": "https://192.0.2.20:6443", **(cluster or {})}}
        ],
        "users": [{"name": "peer", "user": {"token": "s3cret-token", **(user or {})}}],
        "contexts": [{"name": "peer", "context": {"cluster": "quangnam", "user": "peer"}}],
    }


def secret(text: str | bytes, key: str = "kubeconfig") -> dict[str, Any]:
    raw = text.encode() if isinstance(text, str) else text
    return {
        "metadata": {"name": REF.name, "namespace": REF.namespace},
        "data": {key: base64.b64encode(raw).decode()},
    }


GOOD = yaml.safe_dump(kubeconfig())
MALFORMED = {
    "not YAML": ("clusters: [unclosed", "not YAML"),
    "a list": ("- a\n- b\n", "not a YAML mapping"),
    "no contexts": (yaml.safe_dump({"clusters": [], "users": []}), "no list `contexts`"),
    "no such context": (GOOD.replace("current-context: peer", "current-context: other"), "no context"),
    "server a number": (yaml.safe_dump(kubeconfig({"server": 6443})), "`server` is not a string"),
    "no server": (yaml.safe_dump(kubeconfig({"server": ""})), "no server"),
    "token a list": (yaml.safe_dump(kubeconfig(user={"token": ["a"]})), "`token` is not a string"),
    "contexts a mapping": (
        yaml.safe_dump({**kubeconfig(), "contexts": {"peer": {}}}),
        "no list `contexts`",
    ),
    "tokenFile": (
        yaml.safe_dump(kubeconfig(user={"tokenFile": "/var/run/token"})),
        "names files (tokenFile)",
    ),
    "CA path": (
        yaml.safe_dump(kubeconfig({"certificate-authority": "/etc/ca.crt"})),
        "names files (certificate-authority)",
    ),
    "client certificate path": (
        yaml.safe_dump(kubeconfig(user={"client-certificate": "c.crt", "client-key": "c.key"})),
        "names files (client-certificate, client-key)",
    ),
    "insecure": (
        yaml.safe_dump(kubeconfig({"insecure-skip-tls-verify": True})),
        "insecure-skip-tls-verify",
    ),
    "insecure as a string": (
        yaml.safe_dump(kubeconfig({"insecure-skip-tls-verify": "yes"})),
        "not true or false",
    ),
    "plain http": (yaml.safe_dump(kubeconfig({"server": "http://192.0.2.20:8080"})), "not an https"),
    "CA not base64": (
        yaml.safe_dump(kubeconfig({"certificate-authority-data": "!!!"})),
        "not base64",
    ),
    "exec plugin": (yaml.safe_dump(kubeconfig(user={"exec": {"command": "aws"}})), "exec/auth-provider"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_secret_kubeconfig_is_refused_in_our_own_words(case: str) -> None:
    text, reason = MALFORMED[case]
    with pytest.raises(CredentialsError) as refused:
        from_kubeconfig(text, self_contained=True)
    assert reason in str(refused.value)
    assert "s3cret-token" not in str(refused.value)


def test_a_local_kubeconfig_may_still_name_files(tmp_path: Any) -> None:
    (tmp_path / "token").write_text("t0ken\n")
    config = kubeconfig()
    config["users"][0]["user"] = {"tokenFile": str(tmp_path / "token")}
    creds = from_kubeconfig(yaml.safe_dump(config))
    assert creds.bearer() == "t0ken"


class NoLocal:
    async def get(self, *_: object) -> None:
        return None


def peers() -> Peers:
    return Peers(NoLocal(), timeout=1, observer=lambda _: lambda *__: None, user_agent="test")  # type: ignore[arg-type]


async def _follow(found: Peers, *updates: dict[str, Any] | None) -> None:
    await found.configure({"quangnam": REF})
    for body in updates:
        await found.on_secret("DELETED" if body is None else "MODIFIED", body or secret(""))


@pytest.mark.parametrize("case", ["not YAML", "tokenFile", "insecure", "no key", "deleted"])
def test_a_refused_secret_keeps_the_last_good_client_and_says_why(case: str) -> None:
    found = peers()
    bad = (
        {"no key": secret(GOOD, key="other"), "deleted": None}[case]
        if case in ("no key", "deleted")
        else (secret(MALFORMED[case][0]))
    )
    asyncio.run(_follow(found, secret(GOOD)))
    good = found.client("quangnam")
    assert good is not None and found.rejected("quangnam") is None
    asyncio.run(_follow(found, bad))
    assert found.client("quangnam") is good
    rejected = found.rejected("quangnam")
    assert rejected is not None and "still using the kubeconfig read before" in rejected
    assert "sharedcore-system/sharedcore-peer-quangnam" in rejected
    asyncio.run(_follow(found, secret(GOOD.replace("s3cret-token", "new-token"))))
    assert found.rejected("quangnam") is None and found.client("quangnam") is not good


def test_a_refused_first_secret_leaves_no_client_and_the_reason() -> None:
    found = peers()
    asyncio.run(_follow(found, secret(MALFORMED["insecure"][0])))
    assert found.client("quangnam") is None
    assert "insecure-skip-tls-verify" in (found.problem("quangnam") or "")


def test_a_refused_kubeconfig_is_the_reason_of_the_conditions() -> None:
    peer = topology_status.PeerView("quangnam", True, None, True, None, None, None, rejected="bad: tokenFile")
    topology = {"metadata": {"generation": 1}, "spec": {"sites": [{"name": "danang"}, {"name": "quangnam"}]}}
    built = topology_status.build(
        topology,
        "danang",
        SiteState(Role.ACTIVE, 1, "danang", "Active", "active"),
        recorded=None,
        peer=peer,
        witness=(WitnessView(True, None), None, "bad: insecure"),
        now="2026-01-01T00:00:00Z",
    )
    reasons = {c["type"]: (c["status"], c["reason"], c["message"]) for c in built["conditions"]}
    assert reasons["PeerConnected"] == ("False", "KubeconfigRejected", "bad: tokenFile")
    assert reasons["WitnessReachable"] == ("False", "KubeconfigRejected", "bad: insecure")
