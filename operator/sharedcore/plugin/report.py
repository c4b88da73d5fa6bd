"""`kubectl sharedcore status`: what one site sees of both sites, every SharedService and the last failover.

Everything comes from status the operators write (Topology, SharedService, Failover), and the files' last
copies from VolSync's objects: the plugin only reads.
`collect` turns the raw objects into a Report (pure, unit-tested); `as_text` and `as_document` present it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Protocol

import yaml
from pydantic.alias_generators import to_camel

from sharedcore import Body
from sharedcore.api import Objectives
from sharedcore.kube.cache import SERVICE_LABEL


class Source(Protocol):
    """Where the objects come from: a cluster (plugin.kube.Cluster), or a test's dictionaries."""

    def topology(self) -> Body | None: ...
    def services(self, namespace: str | None) -> list[Body]: ...
    def failovers(self) -> list[Body]: ...
    def file_copies(self, namespace: str | None) -> list[Body]: ...


@dataclass(frozen=True)
class SiteRow:
    name: str
    role: str | None
    epoch: int | None
    reachable: bool | None
    heartbeat_age_seconds: float | None
    preferred: bool
    active: bool
    storage: str | None = None  # committed against capacity, e.g. "80Ti of 100Ti (80%)"


@dataclass(frozen=True)
class ServiceRow:
    namespace: str
    name: str
    platform: str
    site: str | None
    role: str | None
    ready: str  # the Ready condition's status: True, False or Unknown
    ready_message: str
    lag_seconds: (
        float | None
    )  # worst of database and files; None where nothing replicates to (the active site)
    rpo_seconds: int
    within_objective: bool | None


@dataclass(frozen=True)
class FailoverRow:
    name: str
    type: str
    target_site: str
    phase: str
    dry_run: bool
    start_time: str | None
    completion_time: str | None
    rto_seconds: float | None
    data_loss_window_seconds: float | None
    message: str | None


@dataclass(frozen=True)
class Report:
    topology: bool
    mode: str | None
    preferred_primary: str | None
    active_site: str | None
    epoch: int | None
    witness: str  # "configured", "not configured", or what the operator reports of it
    sites: Sequence[SiteRow]
    services: Sequence[ServiceRow]
    last_failover: FailoverRow | None
    automatic_failover: str | None = None  # the standby's AutomaticFailoverReady, where reported
    city_dns: str | None = None  # None: no city DNS servers named; else like `witness`


DEFAULT_RPO_SECONDS = Objectives().rpo_seconds


def _time(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


def _condition(body: Body, type_: str) -> Body:
    found = (c for c in (body.get("status") or {}).get("conditions") or [] if c.get("type") == type_)
    return next(found, {})


def _sites(topology: Body, now: datetime.datetime) -> list[SiteRow]:
    spec, status = topology.get("spec") or {}, topology.get("status") or {}
    seen = {site["name"]: site for site in status.get("sites") or []}
    storage = {entry["site"]: _storage(entry) for entry in status.get("capacity") or []}
    rows = []
    for site in spec.get("sites") or []:
        name = site["name"]
        observed = seen.get(name, {})
        heartbeat = _time(observed.get("lastHeartbeatTime"))
        rows.append(
            SiteRow(
                name=name,
                role=observed.get("role"),
                epoch=observed.get("epoch"),
                reachable=observed.get("reachable"),
                heartbeat_age_seconds=max(0.0, (now - heartbeat).total_seconds()) if heartbeat else None,
                preferred=name == spec.get("preferredPrimary"),
                active=name == status.get("activeSite"),
                storage=storage.get(name),
            )
        )
    return rows


def _storage(entry: Body) -> str:
    committed = str(entry.get("committed"))
    if "storage" not in entry:
        return committed
    refused = len(entry.get("refused") or [])
    more = f", {refused} refused" if refused else ""
    return f"{committed} of {entry['storage']} ({entry.get('usedPercent')}%{more})"


def _witness(topology: Body) -> str:
    if not (topology.get("spec") or {}).get("witness"):
        return "not configured"
    return _reported(_condition(topology, "WitnessReachable"))


def _reported(condition: Body) -> str:
    """What the operator's reachability condition says, once it has written one."""
    if not condition:
        return "configured"
    return "reachable" if condition.get("status") == "True" else f"unreachable: {condition.get('message')}"


def _city_dns(topology: Body) -> str | None:
    if not ((topology.get("spec") or {}).get("dns") or {}).get("servers"):
        return None
    return _reported(_condition(topology, "CityDNSReachable"))


def _automatic_failover(topology: Body) -> str | None:
    """Whether an automatic failover would act now, as the standby's operator judges it (Automatic mode)."""
    condition = _condition(topology, "AutomaticFailoverReady")
    if not condition:
        return None
    if condition.get("status") == "True":
        return f"ready: {condition.get('message')}"
    return f"NOT READY ({condition.get('reason')}): {condition.get('message')}"


def _synced(copies: Iterable[Body]) -> dict[tuple[str, str], datetime.datetime]:
    """When each service's files were last copied here (pushed, at the active site), by (namespace, name)."""
    found: dict[tuple[str, str], datetime.datetime] = {}
    for obj in copies:
        meta = obj["metadata"]
        service = (meta.get("namespace", ""), (meta.get("labels") or {}).get(SERVICE_LABEL, ""))
        synced = _time((obj.get("status") or {}).get("lastSyncTime"))
        if synced is not None:
            found[service] = min(synced, found.get(service, synced))
    return found


def _lag(replication: Body, synced: datetime.datetime | None, now: datetime.datetime) -> float | None:
    """The worst of the database's replay lag and the files' age since their last copy."""
    lags = []
    if replication.get("databaseLagSeconds") is not None:
        lags.append(float(replication["databaseLagSeconds"]))
    if synced:
        lags.append(max(0.0, (now - synced).total_seconds()))
    return max(lags) if lags else None


def _service(body: Body, synced: datetime.datetime | None, now: datetime.datetime) -> ServiceRow:
    spec, status = body.get("spec") or {}, body.get("status") or {}
    ready = _condition(body, "Ready")
    lag = _lag(status.get("replication") or {}, synced, now)
    rpo = int((spec.get("objectives") or {}).get("rpoSeconds", DEFAULT_RPO_SECONDS))
    return ServiceRow(
        namespace=body["metadata"]["namespace"],
        name=body["metadata"]["name"],
        platform=spec.get("platform", ""),
        site=status.get("site"),
        role=status.get("role"),
        ready=ready.get("status", "Unknown"),
        ready_message=ready.get("message", "not reported yet"),
        lag_seconds=lag,
        rpo_seconds=rpo,
        within_objective=None if lag is None else lag <= rpo,
    )


def _failover(body: Body) -> FailoverRow:
    spec, status = body.get("spec") or {}, body.get("status") or {}
    return FailoverRow(
        name=body["metadata"]["name"],
        type=spec.get("type", ""),
        target_site=spec.get("targetSite", ""),
        phase=status.get("phase") or "Pending",
        dry_run=bool(spec.get("dryRun")),
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        rto_seconds=status.get("rtoSeconds"),
        data_loss_window_seconds=status.get("dataLossWindowSeconds"),
        message=status.get("message"),
    )


def _last_failover(failovers: Iterable[Body], topology: Body) -> FailoverRow | None:
    """The newest Failover object, running or not; else what the Topology remembers of the last one."""
    newest = max(
        failovers,
        key=lambda body: (body["metadata"].get("creationTimestamp", ""), body["metadata"]["name"]),
        default=None,
    )
    if newest is not None:
        return _failover(newest)
    last = (topology.get("status") or {}).get("lastFailover")
    if not last:
        return None
    return FailoverRow(
        name=last["name"],
        type="",
        target_site=(topology.get("status") or {}).get("activeSite") or "",
        phase="Succeeded",
        dry_run=False,
        start_time=None,
        completion_time=last.get("completionTime"),
        rto_seconds=last.get("rtoSeconds"),
        data_loss_window_seconds=last.get("dataLossWindowSeconds"),
        message="the Failover object was deleted; the Topology remembers it",
    )


def collect(source: Source, namespace: str | None, now: datetime.datetime) -> Report:
    topology = source.topology() or {}
    spec, status = topology.get("spec") or {}, topology.get("status") or {}
    synced = _synced(source.file_copies(namespace))
    services = sorted(
        (
            _service(body, synced.get((body["metadata"]["namespace"], body["metadata"]["name"])), now)
            for body in source.services(namespace)
        ),
        key=lambda row: (row.namespace, row.name),
    )
    return Report(
        topology=bool(topology),
        mode=(spec.get("failover") or {}).get("mode"),
        preferred_primary=spec.get("preferredPrimary"),
        active_site=status.get("activeSite"),
        epoch=status.get("epoch"),
        witness=_witness(topology) if topology else "unknown",
        sites=_sites(topology, now),
        services=services,
        last_failover=_last_failover(source.failovers(), topology),
        automatic_failover=_automatic_failover(topology),
        city_dns=_city_dns(topology),
    )


# Presentation.


def as_document(value: Any) -> Any:
    """The report as plain data with camelCase keys, like the Kubernetes objects it comes from."""
    if is_dataclass(value) and not isinstance(value, type):
        return {to_camel(f.name): as_document(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return [as_document(item) for item in value]
    return value


def as_json(report: Report) -> str:
    return json.dumps(as_document(report), indent=2, ensure_ascii=False) + "\n"


def as_yaml(report: Report) -> str:
    return yaml.safe_dump(as_document(report), sort_keys=False, allow_unicode=True)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]


def _lag_cell(row: ServiceRow) -> str:
    if row.lag_seconds is None:
        return "-"
    verdict = "ok" if row.within_objective else "ABOVE RPO"
    return f"{_seconds(row.lag_seconds)} / {row.rpo_seconds}s {verdict}"


def as_text(report: Report) -> str:
    out: list[str] = []
    if not report.topology:
        out.append(
            "No Topology: a single site if its operator runs with --single-site; otherwise it is Fenced "
            "(see `kubectl get events -n default --field-selector involvedObject.kind=Topology`)."
        )
    else:
        epoch = "-" if report.epoch is None else str(report.epoch)
        out.append(
            f"Active site: {report.active_site or 'NONE'}   Epoch: {epoch}"
            f"   Failover: {report.mode}   Witness: {report.witness}"
        )
        if report.city_dns is not None:
            out.append(f"City DNS: {report.city_dns}")
        if report.automatic_failover is not None:
            out.append(f"Automatic failover: {report.automatic_failover}")
        out.append("")
        out.extend(
            _table(
                ("SITE", "ROLE", "EPOCH", "REACHABLE", "HEARTBEAT AGE", "STORAGE"),
                (
                    (
                        site.name + (" (preferred)" if site.preferred else ""),
                        site.role or "-",
                        "-" if site.epoch is None else str(site.epoch),
                        _yes_no(site.reachable),
                        _seconds(site.heartbeat_age_seconds),
                        site.storage or "-",
                    )
                    for site in report.sites
                ),
            )
        )
    out.append("")
    ready = sum(1 for row in report.services if row.ready == "True")
    out.append(f"Shared services: {ready}/{len(report.services)} Ready")
    if report.services:
        out.extend(
            _table(
                ("NAMESPACE", "NAME", "PLATFORM", "SITE", "ROLE", "READY", "LAG / RPO"),
                (
                    (
                        row.namespace,
                        row.name,
                        row.platform,
                        row.site or "-",
                        row.role or "-",
                        row.ready,
                        _lag_cell(row),
                    )
                    for row in report.services
                ),
            )
        )
    out.append("")
    last = report.last_failover
    if last is None:
        out.append("Last failover: none")
    else:
        kind = f"{last.type} (dry run)" if last.dry_run else last.type
        out.append(
            f"Last failover: {last.name}: {kind or 'Failover'} to {last.target_site or '-'}, {last.phase}"
        )
        details = [
            f"started {last.start_time}" if last.start_time else "",
            f"completed {last.completion_time}" if last.completion_time else "",
            f"RTO {_seconds(last.rto_seconds)}" if last.rto_seconds is not None else "",
            f"data-loss window {_seconds(last.data_loss_window_seconds)}"
            if last.data_loss_window_seconds is not None
            else "",
        ]
        if any(details):
            out.append("  " + ", ".join(detail for detail in details if detail))
        if last.message:
            out.append(f"  {last.message}")
    return "\n".join(out) + "\n"
