"""kind-config.yaml against kind's v1alpha4 fields; the Dockerfile's essentials (no Docker to build it)."""

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

# kind's v1alpha4 Cluster fields (https://kind.sigs.k8s.io/docs/user/configuration/, whose source of truth is
# sigs.k8s.io/kind/pkg/apis/config/v1alpha4/types.go): an unknown field makes `kind create cluster` fail.
CLUSTER_FIELDS = {
    "kind",
    "apiVersion",
    "name",
    "nodes",
    "networking",
    "featureGates",
    "runtimeConfig",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches",
    "containerdConfigPatchesJSON6902",
}
NODE_FIELDS = {
    "role",
    "image",
    "labels",
    "extraMounts",
    "extraPortMappings",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
}
NODE_ROLES = {"control-plane", "worker"}
PORT_MAPPING_FIELDS = {"containerPort", "hostPort", "listenAddress", "protocol"}
PROTOCOLS = {"TCP", "UDP", "SCTP"}


def test_kind_config_fields() -> None:
    config: dict[str, Any] = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert set(config) <= CLUSTER_FIELDS
    for node in config["nodes"]:
        assert set(node) <= NODE_FIELDS and node["role"] in NODE_ROLES
        for mapping in node.get("extraPortMappings", []):
            assert set(mapping) <= PORT_MAPPING_FIELDS and mapping.get("protocol", "TCP") in PROTOCOLS
            assert all(isinstance(mapping[key], int) for key in ("containerPort", "hostPort"))
        for patch in node.get("kubeadmConfigPatches", []):
            assert isinstance(patch, str) and yaml.safe_load(patch)["kind"]  # kind expects YAML text


def test_kind_config_is_one_ingress_ready_control_plane_and_workers() -> None:
    nodes = yaml.safe_load((ROOT / "kind-config.yaml").read_text())["nodes"]
    control, *workers = nodes
    assert control["role"] == "control-plane" and workers and {n["role"] for n in workers} == {"worker"}
    assert {m["containerPort"]: m["hostPort"] for m in control["extraPortMappings"]} == {80: 80, 443: 443}
    patch = yaml.safe_load(control["kubeadmConfigPatches"][0])
    assert patch["kind"] == "InitConfiguration"
    assert patch["nodeRegistration"]["kubeletExtraArgs"]["node-labels"] == "ingress-ready=true"


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction, args in dockerfile():
        if instruction == "FROM":
            result.append([])
        if result:
            result[-1].append((instruction, args))
    return result


def test_dockerfile_is_multi_stage_wheel_build() -> None:
    build, final = stages()
    assert build[0][1].endswith(" AS build")
    assert any(i == "RUN" and "pip wheel" in a for i, a in build)
    # The final stage gets the wheels from the build stage, installs them offline, and copies no source.
    installs = [a for i, a in final if i == "RUN" and "pip install" in a]
    assert len(installs) == 1 and "from=build" in installs[0] and "--no-index" in installs[0]
    assert "[dev]" not in (ROOT / "Dockerfile").read_text()
    assert not [a for i, a in final if i in {"COPY", "ADD"} and "from=build" not in a]


def test_dockerfile_runs_sharedcore_as_numeric_non_root() -> None:
    final = stages()[-1]
    users = [a for i, a in final if i == "USER"]
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit())
    # The chart's pod runs as that user; runAsNonRoot can only be verified for a numeric one.
    assert (
        f"runAsUser: {uid}"
        in (ROOT / "charts" / "sharedcore-operator" / "templates" / "deployment.yaml").read_text()
    )
    entrypoints = [a for i, a in final if i == "ENTRYPOINT"]
    assert json.loads(entrypoints[-1]) == ["sharedcore", "run"]


def test_docker_context_holds_only_what_the_wheel_needs() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!operator/"]
    copied = {shlex.split(a)[0] for i, a in stages()[0] if i == "COPY"}
    assert copied == {"pyproject.toml", "operator"}
