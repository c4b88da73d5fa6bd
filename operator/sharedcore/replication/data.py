"""How far a service's data at this site is behind, from what CloudNativePG and VolSync report.

At the standby site: the database lag of the replica cluster's designated primary (`status.currentPrimary`;
see `replication.lag`), and the last completed copy of the files (ReplicationDestination
`status.lastSyncTime`). At the active site: the last completed push of the files (ReplicationSource
`status.lastSyncTime`); its database is the source and has no lag. ReplicationHealthy is False when either is
unknown or further behind than `objectives.rpoSeconds`.

Status values are ones that change only when the situation does (whole seconds of lag, whether the files are
within the objective), so a steady replication costs no status writes; the metrics carry the live figures.
The time of the files' last copy changes at every copy, so it is not in the status: whoever needs it reads
VolSync's object (`files_synced`; the Failover's plan from the watch cache).
"""

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from sharedcore import Body
from sharedcore.api import Role, SharedService
from sharedcore.kube import conditions
from sharedcore.kube.cache import ObjectKey, key_of
from sharedcore.kube.times import parse_time, rfc3339
from sharedcore.render import SiteContext
from sharedcore.replication.lag import LagTable

CONDITION = "ReplicationHealthy"


@dataclass(frozen=True)
class Series:
    """One metric series: complete up to `complete_at` (epoch seconds); lag as sampled, or (None) growing
    from `complete_at` at scrape time."""

    kind: Literal["database", "files"]
    complete_at: float
    lag: float | None


@dataclass(frozen=True)
class Assessment:
    condition: conditions.Want
    status: Body | None  # SharedService status.replication
    recheck_after: float | None  # seconds until time alone may change the verdict
    series: tuple[Series, ...]


def _timestamp(moment: float) -> str:
    return rfc3339(datetime.datetime.fromtimestamp(moment, datetime.UTC))


def _parse_time(value: object) -> float | None:
    try:
        return datetime.datetime.fromisoformat(str(value)).timestamp() if value else None
    except ValueError:
        return None


@dataclass
class _Findings:
    status: Body
    problems: list[tuple[str, str]]
    healthy: list[str]  # what is within the objective: "database", "files"
    series: list[Series]
    recheck_after: float | None = None


def _database(
    found: _Findings, cluster: Body, live: Body | None, lag: LagTable, *, rpo: int, source: str
) -> None:
    name, namespace = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
    primary = ((live or {}).get("status") or {}).get("currentPrimary")
    sample = lag.sample(namespace, primary) if primary else None
    if primary is None:
        message = f"replica cluster {name} reports no current primary yet"
        found.problems.append(("DatabaseLagUnknown", message))
    elif sample is None:
        message = f"no lag for {namespace}/{primary}: {lag.problem or 'Prometheus has no sample of it'}"
        found.problems.append(("DatabaseLagUnknown", message))
    elif sample.lag_seconds is None:
        complete = (
            f", complete up to {_timestamp(sample.complete_at)}" if sample.complete_at is not None else ""
        )
        found.problems.append(
            ("DatabaseNotStreaming", f"replica cluster {name} receives no WAL from {source}{complete}")
        )
        if sample.complete_at is not None:
            found.status["databaseLastReplayTime"] = _timestamp(sample.complete_at)
            found.series.append(Series("database", sample.complete_at, None))
    else:
        lag_seconds = sample.lag_seconds
        found.status["databaseLagSeconds"] = float(round(lag_seconds))
        if sample.complete_at is not None:
            found.series.append(Series("database", sample.complete_at, lag_seconds))
        if lag_seconds > rpo:
            message = f"database lag {lag_seconds:.0f}s is above rpoSeconds ({rpo})"
            found.problems.append(("DatabaseLagAboveObjective", message))
        else:
            found.healthy.append("database")


def _files(found: _Findings, replication: Body, live: Body | None, rpo: int, now: float) -> None:
    raw = ((live or {}).get("status") or {}).get("lastSyncTime")
    synced = _parse_time(raw)
    what = f"{replication['kind']} {replication['metadata']['name']}"
    if synced is None:
        found.problems.append(("FilesSyncUnknown", f"{what} has not completed a sync yet"))
        return
    found.series.append(Series("files", synced, None))
    if now >= synced + rpo:
        message = f"files last copied at {raw}, more than rpoSeconds ({rpo}) ago ({what})"
        found.problems.append(("FilesSyncBehind", message))
    else:
        found.healthy.append("files")
        found.recheck_after = synced + rpo - now


def files_synced(objects: Iterable[Body]) -> datetime.datetime | None:
    """When this site last completed a copy of a service's files, from the service's objects: its
    ReplicationDestination's `status.lastSyncTime` (the earliest, were there several); None before the first
    copy."""
    times = [
        parse_time((obj.get("status") or {}).get("lastSyncTime"))
        for obj in objects
        if obj.get("kind") == "ReplicationDestination"
    ]
    return None if not times or None in times else min(t for t in times if t is not None)


def assess(
    service: SharedService,
    site: SiteContext,
    desired: list[Body],
    *,
    live: Callable[[ObjectKey], Body | None],
    lag: LagTable,
    now: datetime.datetime,
    refused: str | None = None,
) -> Assessment:
    """How far this site's copy (at the standby) or its pushes (at the active site) are behind; `refused`:
    why replication will not copy the service to the peer at all."""
    if site.peer is None:
        message = "single site: nothing to replicate"
        return Assessment(conditions.Want(CONDITION, True, "NoPeerSite", message), None, None, ())
    rpo = service.spec.objectives.rpo_seconds
    standby = site.role is not Role.ACTIVE
    found = _Findings({"sourceSite": site.peer.name} if standby else {}, [], [], [])
    if refused:
        found.problems.append(("NotReplicated", f"not copied to {site.peer.name}: {refused}"))
    files_kind = "ReplicationDestination" if standby else "ReplicationSource"
    for obj in desired:
        if obj["kind"] == "Cluster" and standby:
            _database(found, obj, live(key_of(obj)), lag, rpo=rpo, source=site.peer.name)
        elif obj["kind"] == files_kind:
            _files(found, obj, live(key_of(obj)), rpo, now.timestamp())
    if found.problems:
        reason = found.problems[0][0]
        message = "; ".join(message for _, message in found.problems)
        found.status["message"] = message
        condition = conditions.Want(CONDITION, False, reason, message)
    else:
        what = " and ".join(found.healthy) or "nothing to replicate"
        role = f"copied from {site.peer.name}" if standby else f"this site is the source for {site.peer.name}"
        message = f"{what} within rpoSeconds ({rpo}); {role}"
        condition = conditions.Want(CONDITION, True, "WithinObjective", message)
    return Assessment(condition, found.status or None, found.recheck_after, tuple(found.series))
