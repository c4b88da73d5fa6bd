"""Names of rendered objects, and of the peer's objects they point at.

Every name is derived from the SharedService's `base` name (and a site name where the object exists once
per site), so both sites compute each other's names without talking to each other.
"""

from __future__ import annotations

import hashlib
import re

DNS_LABEL_MAX = 63
# CloudNativePG rejects longer Cluster names: it appends suffixes (-rw, -1, -replication…) to them.
CNPG_CLUSTER_MAX = 50
# VolSync names the destination's Service "volsync-rsync-tls-dst-<ReplicationDestination name>".
VOLSYNC_SERVICE_PREFIX = "volsync-rsync-tls-dst-"
_HASH_LENGTH = 8
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]


def bounded(name: str, limit: int = DNS_LABEL_MAX) -> str:
    """`name` if it fits in `limit`, else a truncation ending in a hash of the whole name (still unique)."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - _HASH_LENGTH - 1].rstrip('-')}-{_digest(name)}"


def base(service: str) -> str:
    """The prefix of the service's object names: its own name when that is a DNS-1035 label, as nearly all
    are. Other names the API server accepts (a leading digit, dots, up to 253 characters) would make invalid
    Service and Cluster names, so they become a readable label plus a hash of the real name."""
    if len(service) <= DNS_LABEL_MAX and _DNS_1035_LABEL.match(service):
        return service
    readable = re.sub(r"[^a-z0-9]+", "-", service.lower()).strip("-")
    if not readable[:1].isalpha():
        readable = f"s-{readable}".rstrip("-")
    return f"{readable[: DNS_LABEL_MAX - _HASH_LENGTH - 1].rstrip('-')}-{_digest(service)}"


def label_value(service: str) -> str:
    """The service's name as a label value: itself whenever it is a valid one (up to 63 characters)."""
    if len(service) <= DNS_LABEL_MAX and _LABEL_VALUE.match(service):
        return service
    return base(service)


def component(service: str, component_name: str) -> str:
    """ServiceAccount, Deployment, Service, PodDisruptionBudget and NetworkPolicy of one component."""
    return bounded(f"{service}-{component_name}")


def settings_config(service: str) -> str:
    return bounded(f"{service}-settings")


def site_config(service: str) -> str:
    return bounded(f"{service}-site")


def database_cluster(service: str, site: str) -> str:
    """One CNPG Cluster per site, so CloudNativePG's replica.primary/self can tell the two apart."""
    return bounded(f"{service}-db-{site}", CNPG_CLUSTER_MAX)


def database_rw_service(service: str, site: str) -> str:
    """The read-write Service CloudNativePG creates for a site's Cluster."""
    return f"{database_cluster(service, site)}-rw"


def database_replication_secret(service: str, site: str) -> str:
    """The streaming_replica client certificate CloudNativePG issues for a site's Cluster."""
    return f"{database_cluster(service, site)}-replication"


def database_app_secret(service: str) -> str:
    """Credentials of the application's database owner, the same at both sites (see database.py)."""
    return bounded(f"{service}-db-app")


def database_server_ca(service: str) -> str:
    return bounded(f"{service}-db-server-ca")


def database_client_ca(service: str) -> str:
    return bounded(f"{service}-db-client-ca")


def database_monitoring(service: str) -> str:
    """The ConfigMap of the monitoring query sharedcore adds to CloudNativePG's (see database.py)."""
    return bounded(f"{service}-db-monitoring")


def files_volume(service: str) -> str:
    return bounded(f"{service}-files")


def files_replication(service: str) -> str:
    """ReplicationSource and ReplicationDestination; short enough for VolSync's derived Service name."""
    return bounded(f"{service}-files", DNS_LABEL_MAX - len(VOLSYNC_SERVICE_PREFIX))


def files_replication_service(service: str) -> str:
    return VOLSYNC_SERVICE_PREFIX + files_replication(service)


def files_key_secret(service: str) -> str:
    """VolSync's TLS pre-shared key, the same Secret at both sites."""
    return bounded(f"{service}-files-volsync")


def ingress(service: str) -> str:
    return bounded(service)


def standby_record(service: str) -> str:
    """The DNSEndpoint of the host the standby site serves (an archive's read-only look-ups)."""
    return bounded(f"{service}-standby")


def previous_system(service: str) -> str:
    """The ExternalName Service and the Ingress that lead to the previous system during a parallel run."""
    return bounded(f"{service}-previous")


def parallel_run_results(service: str) -> str:
    """The ConfigMap where the parallel run's job writes both systems' counts of dossiers in force."""
    return bounded(f"{service}-parallel-run")
