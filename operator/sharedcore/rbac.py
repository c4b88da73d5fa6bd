"""The operator's least-privilege ClusterRole, written once.

The tests' ServiceAccount is bound to exactly these rules; the chart and kustomize base are made from them.
"""

from typing import Any

from sharedcore import API_GROUP
from sharedcore.kube.resources import RENDERED

READ = ["get", "list", "watch"]
MANAGE = [*READ, "create", "update", "patch", "delete"]
CLUSTER_ROLE_NAME = "sharedcore-operator"


def _rendered_rules() -> list[dict[str, Any]]:
    by_group: dict[str, list[str]] = {}
    for resource in RENDERED:
        by_group.setdefault(resource.group, []).append(resource.plural)
    return [
        {"apiGroups": [group], "resources": sorted(plurals), "verbs": MANAGE}
        for group, plurals in sorted(by_group.items())
    ]


RULES: list[dict[str, Any]] = [
    # Our own kinds: read, keep finalizers, write status. Specs belong to people and GitOps.
    {
        "apiGroups": [API_GROUP],
        "resources": ["sharedservices", "topologies", "failovers"],
        "verbs": [*READ, "patch", "update"],
    },
    {
        "apiGroups": [API_GROUP],
        "resources": ["sharedservices/status", "topologies/status", "failovers/status"],
        "verbs": ["get", "patch", "update"],
    },
    {"apiGroups": [API_GROUP], "resources": ["sharedservices/finalizers"], "verbs": ["update"]},
    # What the renderer produces, and nothing else.
    *_rendered_rules(),
    # Referenced Secrets (an Ingress's TLS secret) are only checked for existence.
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": READ},
    # Kopf notices CRDs installed after it started (CloudNativePG, VolSync, ExternalDNS).
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": READ},
]


def cluster_role() -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": CLUSTER_ROLE_NAME, "labels": {"app.kubernetes.io/name": "sharedcore-operator"}},
        "rules": RULES,
    }
