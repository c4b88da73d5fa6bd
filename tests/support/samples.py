"""Realistic SharedServices (the renderer's golden inputs) placed in a test's namespace."""

import copy
from pathlib import Path
from typing import Any

import yaml

INPUTS = Path(__file__).resolve().parents[1] / "golden" / "inputs"
SLUGS = tuple(sorted(path.stem for path in INPUTS.glob("*.yaml")))


def service(slug: str, namespace: str, name: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(yaml.safe_load((INPUTS / f"{slug}.yaml").read_text()))
    body["metadata"] = {"name": name or body["metadata"]["name"], "namespace": namespace}
    body["spec"].update(spec)
    return body


def tls_secret(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"tls.crt": "", "tls.key": ""},
    }
