"""The kinds sharedcore reads and writes, with their REST paths: a fixed table instead of discovery calls."""

from dataclasses import dataclass

from sharedcore import API_GROUP, API_VERSION


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


SHARED_SERVICES = Resource(API_GROUP, API_VERSION, "sharedservices", "SharedService")
TOPOLOGIES = Resource(API_GROUP, API_VERSION, "topologies", "Topology", namespaced=False)
FAILOVERS = Resource(API_GROUP, API_VERSION, "failovers", "Failover", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
SECRETS = Resource("", "v1", "secrets", "Secret")
EVENTS = Resource("", "v1", "events", "Event")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")

# The label on everything the renderer produces: what this operator lists, watches and never replicates.
MANAGED_BY = {"app.kubernetes.io/managed-by": "sharedcore"}

# Everything the renderer may produce, in the order objects are created (dependencies first).
RENDERED = (
    Resource("", "v1", "serviceaccounts", "ServiceAccount"),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    Resource("", "v1", "configmaps", "ConfigMap"),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    Resource("postgresql.cnpg.io", "v1", "clusters", "Cluster"),
    Resource("volsync.backube", "v1alpha1", "replicationdestinations", "ReplicationDestination"),
    Resource("volsync.backube", "v1alpha1", "replicationsources", "ReplicationSource"),
    Resource("", "v1", "services", "Service"),
    Resource("apps", "v1", "deployments", "Deployment"),
    Resource("batch", "v1", "cronjobs", "CronJob"),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress"),
    Resource("externaldns.k8s.io", "v1alpha1", "dnsendpoints", "DNSEndpoint"),
)
DEPLOYMENTS = next(r for r in RENDERED if r.kind == "Deployment")
CLUSTERS = next(r for r in RENDERED if r.kind == "Cluster")
PERSISTENT_VOLUME_CLAIMS = next(r for r in RENDERED if r.kind == "PersistentVolumeClaim")
REPLICATION_SOURCES = next(r for r in RENDERED if r.kind == "ReplicationSource")
REPLICATION_DESTINATIONS = next(r for r in RENDERED if r.kind == "ReplicationDestination")
DNS_ENDPOINTS = next(r for r in RENDERED if r.kind == "DNSEndpoint")
# Never rendered: a diverged database's volumes are moved to claims of their own (services.rebuild).
PERSISTENT_VOLUMES = Resource("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False)
CONFIG_MAPS = next(r for r in RENDERED if r.kind == "ConfigMap")
BY_KIND = {
    (r.api_version, r.kind): r
    for r in (*RENDERED, SHARED_SERVICES, TOPOLOGIES, FAILOVERS, NAMESPACES, SECRETS, EVENTS, LEASES)
}


def for_object(obj: dict[str, object]) -> Resource:
    try:
        return BY_KIND[(str(obj["apiVersion"]), str(obj["kind"]))]
    except KeyError:
        raise KeyError(f"sharedcore does not manage {obj.get('apiVersion')} {obj.get('kind')}") from None
