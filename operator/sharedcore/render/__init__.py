"""The pure renderer: a SharedService and a site in, the Kubernetes objects for that site out.

`render` reads nothing but the packaged profiles and returns plain dicts in a stable order, so the same
input always gives the same objects. Owner references are the operator's to add when it applies them.
"""

from __future__ import annotations

from sharedcore.api import SharedService
from sharedcore.render.config import checksum, config_maps, settings_data
from sharedcore.render.context import Manifest, RenderContext, RenderError
from sharedcore.render.database import database_clusters
from sharedcore.render.files import files
from sharedcore.render.network import dns_endpoints, ingresses, network_policies
from sharedcore.render.parallel import parallel_run
from sharedcore.render.profile import ProfileError
from sharedcore.render.site import ClusterKey, FailoverForm, PeerSite, SiteContext
from sharedcore.render.workloads import workloads

__all__ = [
    "KIND_ORDER",
    "ClusterKey",
    "FailoverForm",
    "Manifest",
    "PeerSite",
    "ProfileError",
    "RenderError",
    "SiteContext",
    "render",
]

# Apply order: what others refer to comes first (accounts and config before pods, storage before its
# replication, Services before the Ingress and DNS that lead to them).
KIND_ORDER = (
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Cluster",
    "ReplicationSource",
    "ReplicationDestination",
    "Service",
    "Deployment",
    "CronJob",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Ingress",
    "DNSEndpoint",
)


def render(service: SharedService, site: SiteContext) -> list[Manifest]:
    """Every object `service` needs at `site`, ordered by KIND_ORDER then name."""
    ctx = RenderContext.build(service, site)
    settings = settings_data(ctx)
    objects = [
        *config_maps(ctx, settings),
        *workloads(ctx, checksum(settings)),
        *network_policies(ctx),
        *ingresses(ctx),
        *dns_endpoints(ctx),
        *database_clusters(ctx),
        *files(ctx),
        *parallel_run(ctx),
    ]
    return sorted(objects, key=lambda obj: (KIND_ORDER.index(obj["kind"]), obj["metadata"]["name"]))
