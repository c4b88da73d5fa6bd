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
    # Our own kinds: read, keep finalizers, write status. Specs belong to people and GitOps; the active
    # site's operator also copies SharedServices to the standby's cluster (create, patch, delete there).
    {
        "apiGroups": [API_GROUP],
        "resources": ["sharedservices"],
        "verbs": [*READ, "create", "patch", "update", "delete"],
    },
    {"apiGroups": [API_GROUP], "resources": ["topologies"], "verbs": [*READ, "patch", "update"]},
    # Failovers: automatic failover and failback create them at their target site, like a person would.
    {"apiGroups": [API_GROUP], "resources": ["failovers"], "verbs": [*READ, "create", "patch", "update"]},
    {
        "apiGroups": [API_GROUP],
        "resources": ["sharedservices/status", "topologies/status", "failovers/status"],
        "verbs": ["get", "patch", "update"],
    },
    {"apiGroups": [API_GROUP], "resources": ["sharedservices/finalizers"], "verbs": ["update"]},
    # What the renderer produces, and nothing else.
    *_rendered_rules(),
    # Secrets: the peers' kubeconfigs, referenced TLS secrets, and those labelled for replication, which
    # the active site copies to the standby's cluster. (ConfigMaps are among the rendered kinds; the system
    # namespace also holds the pair each site remembers, `sites.pair_memory`.)
    {"apiGroups": [""], "resources": ["secrets"], "verbs": [*READ, "create", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    # Replication reads which namespaces opted in to it; it never creates one.
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": READ},
    # Heartbeats (at both sites) and, at the witness, the Lease naming the active site.
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": [*READ, "create", "patch"]},
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
