"""The `Situation` a Failover is planned from, assembled from what the target site holds: its own view of the
pair (role, epoch, whether the peer answers and when it was last heard from) and each SharedService's
`status.replication` as the target's operator wrote it, and when the target last completed a copy of its
files (VolSync's object, which changes at every copy: not in the status)."""

import datetime
from collections.abc import Callable, Iterable

from sharedcore import Body
from sharedcore.api import Database, Files, Objectives
from sharedcore.failover.plan import ServiceReplica, Situation
from sharedcore.kube.times import parse_time
from sharedcore.sites.views import PairView

# The models' defaults, for a service whose spec leaves them out (read as JSON here: this runs often).
DEFAULT_RPO_SECONDS = Objectives().rpo_seconds
ENABLED = {"database": Database().enabled, "files": Files().enabled}


def enabled(spec: Body, part: str) -> bool:
    """Whether a service has its `database` or `files`."""
    return bool((spec.get(part) or {}).get("enabled", ENABLED[part]))


FilesSynced = Callable[[str, str], datetime.datetime | None]  # (namespace, name) → the last copy's completion


def replica(service: Body, files_synced: FilesSynced) -> ServiceReplica:
    spec, status = service.get("spec") or {}, service.get("status") or {}
    namespace, name = service["metadata"]["namespace"], service["metadata"]["name"]
    replication = status.get("replication") or {}
    lag = replication.get("databaseLagSeconds")
    return ServiceReplica(
        namespace=namespace,
        name=name,
        rpo_seconds=float((spec.get("objectives") or {}).get("rpoSeconds", DEFAULT_RPO_SECONDS)),
        database_lag_seconds=float(lag) if lag is not None else None,
        database_complete_at=parse_time(replication.get("databaseLastReplayTime")),
        files_last_sync=files_synced(namespace, name),
        database_enabled=enabled(spec, "database"),
        files_enabled=enabled(spec, "files"),
    )


def situation(
    pair: PairView,
    services: Iterable[Body],
    now: datetime.datetime,
    running: Iterable[str] = (),
    *,
    files_synced: FilesSynced,
) -> Situation:
    """A reachable source is writing until now. An unreachable one may have gone on writing after this site
    last saw it Active (cut off from this site, not from its clients or the witness) until it fenced itself:
    until then, or now if that is sooner; or, if this site has not seen it since this operator started, until
    now (the window is then overestimated, never underestimated). Every time compared here is by this site's
    clock: `now`, the sight of the source's heartbeat or witness renewal, and the sync and receipt times this
    site's own data plane reports."""
    last_seen, unseen, last_active = now, 0.0, (now if pair.peer_reachable else pair.peer_last_active)
    if not pair.peer_reachable and pair.peer_last_active is not None:
        unseen = max(0.0, min(pair.peer_may_write_seconds, (now - pair.peer_last_active).total_seconds()))
        last_seen = pair.peer_last_active + datetime.timedelta(seconds=unseen)
    return Situation(
        target=pair.site,
        sites=pair.sites,
        active_site=pair.active_site,
        epoch=pair.epoch,
        source_reachable=pair.peer_reachable,
        source_last_seen=last_seen,
        source_unseen_seconds=unseen,
        source_last_active=last_active,
        services=tuple(
            sorted((replica(s, files_synced) for s in services), key=lambda r: (r.namespace, r.name))
        ),
        running=tuple(sorted(running)),
        target_role=pair.state.role,
        target_why=pair.state.message,
        peer_handover=pair.peer_handover,
    )
