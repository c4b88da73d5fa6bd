"""RBAC, written once: the operator's least-privilege ClusterRole at its own site, and the identities each
site uses at the other site and at the witness (`sharedcore peer-identity`).

The tests' ServiceAccounts are bound to exactly these rules; the chart and kustomize base are made from them.
"""

import base64
from collections.abc import Sequence
from typing import Any

from sharedcore import API_GROUP, SYSTEM_NAMESPACE
from sharedcore.kube.resources import CLUSTERS, DNS_ENDPOINTS, RENDERED, REPLICATION_SOURCES
from sharedcore.sites.leases import ACTIVE_LEASE, heartbeat_name

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


# What the operator does in the namespaces it watches (and in its own: kubeconfig Secrets, heartbeat Leases):
# cluster-wide when it watches every namespace; with `--namespace`, bound in each of those by a RoleBinding.
NAMESPACED_RULES: list[dict[str, Any]] = [
    # SharedServices: read, keep finalizers, write status. Specs belong to people and GitOps (the copies at
    # the standby are written by the active site's peer identity there, not by this ServiceAccount).
    {"apiGroups": [API_GROUP], "resources": ["sharedservices"], "verbs": [*READ, "patch", "update"]},
    {"apiGroups": [API_GROUP], "resources": ["sharedservices/status"], "verbs": ["get", "patch", "update"]},
    {"apiGroups": [API_GROUP], "resources": ["sharedservices/finalizers"], "verbs": ["update"]},
    # What the renderer produces, and nothing else.
    *_rendered_rules(),
    # Secrets: the peers' kubeconfigs, referenced TLS secrets, and those labelled for replication (written at
    # the standby by the peer identity) are read; a database's CAs and credentials are created at the active
    # site, never updated or deleted. (ConfigMaps are among the rendered kinds; the system namespace also
    # holds the pair each site remembers, `sites.pair_memory`.)
    {"apiGroups": [""], "resources": ["secrets"], "verbs": [*READ, "create"]},
    # This site's heartbeat, and the peer's that it renews here.
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": [*READ, "create", "patch"]},
]
# Cluster-scoped kinds, and what is cluster-wide whatever the operator watches.
CLUSTER_RULES: list[dict[str, Any]] = [
    {"apiGroups": [API_GROUP], "resources": ["topologies"], "verbs": [*READ, "patch", "update"]},
    # Failovers: automatic failover and failback create them at their target site, like a person would.
    {"apiGroups": [API_GROUP], "resources": ["failovers"], "verbs": [*READ, "create", "patch", "update"]},
    {
        "apiGroups": [API_GROUP],
        "resources": ["topologies/status", "failovers/status"],
        "verbs": ["get", "patch", "update"],
    },
    # Events about SharedServices go to their namespaces, those about the Topology and Failovers to default.
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    # A CloudNativePG demotion whose instance's report was lost with its site is reported for it
    # (replication.demotion).
    {"apiGroups": ["postgresql.cnpg.io"], "resources": ["clusters/status"], "verbs": ["patch"]},
    # A diverged database's volumes are kept: set to Retain, bound to claims of their own (services.rebuild).
    {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["get", "patch"]},
    # Replication reads which namespaces opted in to it; it never creates one.
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": READ},
    # Kopf notices CRDs installed after it started (CloudNativePG, VolSync, ExternalDNS).
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": READ},
]
RULES = [*NAMESPACED_RULES, *CLUSTER_RULES]  # watching every namespace


def cluster_role(name: str = CLUSTER_ROLE_NAME, rules: list[dict[str, Any]] = RULES) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "sharedcore-operator"}},
        "rules": rules,
    }


# --- what one site may do at the other site and at the witness (`sharedcore peer-identity`) ---------------
#
# Each site reaches the others as an identity of its own there (a ServiceAccount named after it), never as
# that cluster's operator. The rules list only what the operator's code calls there.
PEER_ROLE = "sharedcore-peer"
PEER_REPLICATION_ROLE = "sharedcore-peer-replication"
WITNESS_ROLE = "sharedcore-witness"
WITNESS = "witness"
RBAC_API = "rbac.authorization.k8s.io/v1"

PEER_RULES: list[dict[str, Any]] = [
    # Which namespaces there are in use: replication writes only into those.
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]},
    # The failover checks: the source's final syncs, its demoted databases, the DNS records it withdraws.
    *(
        {"apiGroups": [resource.group], "resources": [resource.plural], "verbs": ["list"]}
        for resource in (REPLICATION_SOURCES, CLUSTERS, DNS_ENDPOINTS)
    ),
]
# Bound by a RoleBinding in each namespace replicated into, by the administrator who invites it.
PEER_REPLICATION_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [API_GROUP],
        "resources": ["sharedservices"],
        "verbs": ["list", "create", "patch", "delete"],
    },
    {
        "apiGroups": [""],
        "resources": ["secrets", "configmaps"],
        "verbs": ["list", "create", "patch", "delete"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},  # an edit reverted there
]
WITNESS_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "patch"],
        "resourceNames": [ACTIVE_LEASE],
    },
    # RBAC cannot limit a create to a name (the name is in the body): whichever site comes first creates the
    # Lease, again if someone deleted it. So this identity may create other Leases here, never read or change
    # them.
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
]


def peer_account(site: str) -> str:
    """The ServiceAccount `site`'s operator is at the other site and at the witness."""
    return f"sharedcore-peer-{site}"


def heartbeat_rules(at: str, site: str) -> list[dict[str, Any]]:
    """`site` renews its own heartbeat at `at` (server-side apply: create, patch, by name), reads `at`'s."""
    lease = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"]}
    return [
        {**lease, "verbs": ["create", "patch"], "resourceNames": [heartbeat_name(site)]},
        {**lease, "verbs": ["get"], "resourceNames": [heartbeat_name(at)]},
    ]


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "sharedcore"}}
    return meta | ({"namespace": namespace} if namespace else {})


def _binding(kind: str, role_kind: str, role: str, site: str, namespace: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": RBAC_API,
        "kind": kind,
        "metadata": _meta(peer_account(site), namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": peer_account(site), "namespace": SYSTEM_NAMESPACE}],
    }


def replication_binding(site: str, namespace: str) -> dict[str, Any]:
    """Lets `site`'s operator write its copies in `namespace` (applied where they are written)."""
    return _binding("RoleBinding", "ClusterRole", PEER_REPLICATION_ROLE, site, namespace)


def peer_identity(at: str, site: str, namespaces: Sequence[str] = ()) -> list[dict[str, Any]]:
    """What an administrator applies at `at` (the other site, or `witness`) so that `site`'s operator may do
    there what it needs, and nothing else; `namespaces`: those invited to replication (RoleBindings there)."""
    account = peer_account(site)
    objects: list[dict[str, Any]] = []
    if at == WITNESS:  # nothing else is installed there
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(SYSTEM_NAMESPACE)})
    objects.append(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(account, SYSTEM_NAMESPACE)}
    )
    if at == WITNESS:
        return [
            *objects,
            {
                "apiVersion": RBAC_API,
                "kind": "Role",
                "metadata": _meta(WITNESS_ROLE, SYSTEM_NAMESPACE),
                "rules": WITNESS_RULES,
            },
            _binding("RoleBinding", "Role", WITNESS_ROLE, site, SYSTEM_NAMESPACE),
        ]
    return [
        *objects,
        {"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": _meta(PEER_ROLE), "rules": PEER_RULES},
        _binding("ClusterRoleBinding", "ClusterRole", PEER_ROLE, site),
        {
            "apiVersion": RBAC_API,
            "kind": "Role",
            "metadata": _meta(account, SYSTEM_NAMESPACE),
            "rules": heartbeat_rules(at, site),
        },
        _binding("RoleBinding", "Role", account, site, SYSTEM_NAMESPACE),
        {
            "apiVersion": RBAC_API,
            "kind": "ClusterRole",
            "metadata": _meta(PEER_REPLICATION_ROLE),
            "rules": PEER_REPLICATION_RULES,
        },
        *(replication_binding(site, namespace) for namespace in namespaces),
    ]


def peer_kubeconfig(at: str, site: str, server: str, ca_data: bytes, token: str) -> dict[str, Any]:
    """A self-contained kubeconfig for `site`'s identity at `at`: what the Secret at `site` holds."""
    user = f"{peer_account(site)}@{at}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": user,
        "clusters": [
            {
                "name": at,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_data).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": at, "user": user}}],
    }
