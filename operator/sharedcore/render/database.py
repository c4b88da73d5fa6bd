"""The service's PostgreSQL: a CloudNativePG Cluster per site, joined in CNPG's distributed topology.

Each site owns a Cluster named `<service>-db-<site>`. Both carry the same `externalClusters` (both sites)
and `replica.self`/`replica.source`; only `replica.primary` says which one writes. A switchover is
therefore one field flipped at each site (plus CNPG's demotion/promotion token, which the operator
handles), never a rebuilt Cluster.

Each site reaches the other's read-write Service, `<service>-db-<site>-rw`, as
`<service>-db-<site>-rw.<namespace>.<peer.service_domain>` (e.g. a Multi-Cluster Services export),
authenticating as `streaming_replica` with the client certificate CNPG issues locally
(`<cluster>-replication`). That works across sites because both sites' Clusters are given the same
server and client CAs (`<service>-db-server-ca`, `<service>-db-client-ca`, with keys, provisioned at both
sites), and each server certificate also names the host the peer uses (sslmode verify-full).
The application owner's credentials (`<service>-db-app`) are likewise one Secret present at both sites,
so they do not change on promotion.

Each Cluster also runs one monitoring query of sharedcore's (ConfigMap `<service>-db-monitoring`), beside
CloudNativePG's own: when its replica last received anything from the source
(`cnpg_sharedcore_wal_receiver_last_msg_receipt_time`), which bounds the data-loss window of a failover
(CloudNativePG's lag reads 0 for a while after the stream stopped; see `replication.lag`).

WAL archiving is off (`cnpg.io/skipWalArchiving`): sharedcore configures no WAL archive, and with archiving on
CloudNativePG restarts every newly promoted primary to turn `archive_mode` from `always` (replica) to `on`, a
second outage for the service's clients after each move, up to its smart shutdown timeout (180 s) long.
"""

from __future__ import annotations

from typing import Any

from sharedcore.api import Role
from sharedcore.render import names
from sharedcore.render.context import Manifest, RenderContext
from sharedcore.render.site import PeerSite

DATABASE_COMPONENT = "database"
REPLICATION_USER = "streaming_replica"
MONITORING_KEY = "queries"
SKIP_WAL_ARCHIVING = "cnpg.io/skipWalArchiving"
# CloudNativePG names each metric cnpg_<query>_<column>: cnpg_sharedcore_wal_receiver_last_msg_receipt_time.
MONITORING_QUERIES = """\
sharedcore_wal_receiver:
  query: "SELECT EXTRACT(EPOCH FROM last_msg_receipt_time) AS last_msg_receipt_time
    FROM pg_catalog.pg_stat_wal_receiver WHERE last_msg_receipt_time IS NOT NULL"
  metrics:
    - last_msg_receipt_time:
        usage: GAUGE
        description: "When the WAL receiver last received anything from its source (epoch seconds)"
"""


def database_clusters(ctx: RenderContext) -> list[Manifest]:
    database = ctx.service.spec.database
    if not database.enabled:
        return []
    storage: dict[str, Any] = {"size": str(database.storage)}
    if database.storage_class_name is not None:
        storage["storageClass"] = database.storage_class_name
    own = names.database_cluster(ctx.name, ctx.site.name)
    monitoring = names.database_monitoring(ctx.name)
    spec: dict[str, Any] = {
        "instances": database.instances,
        "storage": storage,
        "monitoring": {"customQueriesConfigMap": [{"name": monitoring, "key": MONITORING_KEY}]},
    }
    spec.update(_topology(ctx, ctx.site.peer) if ctx.site.peer else {"bootstrap": {"initdb": _owner(ctx)}})
    cluster = ctx.manifest("postgresql.cnpg.io/v1", "Cluster", own, DATABASE_COMPONENT, spec=spec)
    cluster["metadata"]["annotations"][SKIP_WAL_ARCHIVING] = "enabled"
    return [
        ctx.manifest(
            "v1",
            "ConfigMap",
            monitoring,
            DATABASE_COMPONENT,
            by_role=False,
            data={MONITORING_KEY: MONITORING_QUERIES},
        ),
        cluster,
    ]


def _owner(ctx: RenderContext) -> dict[str, Any]:
    database = ctx.profile.database.name
    return {"database": database, "owner": database, "secret": {"name": names.database_app_secret(ctx.name)}}


def _topology(ctx: RenderContext, peer: PeerSite) -> dict[str, Any]:
    own = names.database_cluster(ctx.name, ctx.site.name)
    other = names.database_cluster(ctx.name, peer.name)
    if ctx.site.role is Role.ACTIVE:
        bootstrap = {"initdb": _owner(ctx)}
    else:
        # A standby (or fenced) site starts as a copy of the peer; once it exists CNPG ignores bootstrap.
        bootstrap = {"pg_basebackup": {"source": other, **_owner(ctx)}}
    primary = own if ctx.site.role is Role.ACTIVE else other
    replica = {"primary": primary, "self": own, "source": other}
    token = ctx.site.failover.promotion_token(ctx.namespace, own)
    if ctx.site.role is Role.ACTIVE and token:
        replica["promotionToken"] = token
    sites = sorted((ctx.site.name, peer.name))
    return {
        "bootstrap": bootstrap,
        "replica": replica,
        "certificates": {
            "serverCASecret": names.database_server_ca(ctx.name),
            "clientCASecret": names.database_client_ca(ctx.name),
            "serverAltDNSNames": [_peer_visible_host(ctx, peer, ctx.site.name)],
        },
        "externalClusters": [_external_cluster(ctx, peer, site) for site in sites],
    }


def _peer_visible_host(ctx: RenderContext, peer: PeerSite, site: str) -> str:
    """How a site's read-write Service is addressed across sites (one DNS suffix for the pair)."""
    return f"{names.database_rw_service(ctx.name, site)}.{ctx.namespace}.{peer.service_domain}"


def _external_cluster(ctx: RenderContext, peer: PeerSite, site: str) -> dict[str, Any]:
    replication_secret = names.database_replication_secret(ctx.name, ctx.site.name)
    return {
        "name": names.database_cluster(ctx.name, site),
        "connectionParameters": {
            "host": _peer_visible_host(ctx, peer, site),
            "user": REPLICATION_USER,
            "dbname": "postgres",
            "sslmode": "verify-full",
        },
        "sslKey": {"name": replication_secret, "key": "tls.key"},
        "sslCert": {"name": replication_secret, "key": "tls.crt"},
        "sslRootCert": {"name": names.database_server_ca(ctx.name), "key": "ca.crt"},
    }
