"""The operator's Prometheus metrics: one `sharedcore_` prefix, base units, bounded labels.

Label values come from a closed set (kinds, verbs, results, roles) or from the SharedServices themselves
(namespace/name/platform: bounded by what the platform team creates, removed when a service goes away).
"""

import contextlib
import time
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    platform_collector,
    process_collector,
)

REGISTRY = CollectorRegistry()
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

RECONCILE_TOTAL = Counter(
    "sharedcore_reconcile_total",
    "Reconciliations by kind and result (success, error, stalled).",
    ["kind", "result"],
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "sharedcore_reconcile_duration_seconds",
    "Time one reconciliation took.",
    ["kind"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SERVICE_READY = Gauge(
    "sharedcore_service_ready",
    "1 when every serving component of the SharedService is available.",
    ["namespace", "name", "platform"],
    registry=REGISTRY,
)
SERVICE_INFO = Gauge(
    "sharedcore_service_info",
    "Always 1; labels describe the SharedService at this site.",
    ["namespace", "name", "platform", "version", "role"],
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "sharedcore_kube_requests_total",
    "Requests sharedcore made to a Kubernetes API server (code 0: no answer).",
    ["cluster", "verb", "code"],
    registry=REGISTRY,
)
OBJECT_WRITES = Counter(
    "sharedcore_object_writes_total",
    "Rendered objects applied or deleted, by kind and why.",
    ["kind", "reason"],
    registry=REGISTRY,
)
SITE_ROLE = Gauge(
    "sharedcore_site_role",
    "1 for the role this site has now (Active, Standby or Fenced), 0 for the others.",
    ["site", "role"],
    registry=REGISTRY,
)
TOPOLOGY_UNUSABLE = Gauge(
    "sharedcore_topology_unusable",
    "1 while this site is Fenced because it cannot use its Topology, labelled with why (NoTopology, "
    "TopologyMissing, TopologyDeleted, TopologyInvalid, SiteNotInTopology, PeerChanged, "
    "PairMemoryUnreadable); 0 otherwise.",
    ["reason"],
    registry=REGISTRY,
)
EPOCH = Gauge(
    "sharedcore_epoch", "Failover epoch this site acts under (0: a single site).", registry=REGISTRY
)
PEER_HEARTBEAT_AGE = Gauge(
    "sharedcore_peer_heartbeat_age_seconds",
    "Seconds since the peer's heartbeat was last seen renewed in this cluster, or for the witness since it "
    "last answered (+Inf: not yet).",
    ["peer"],
    registry=REGISTRY,
)
PEER_SETTINGS_MISMATCH = Gauge(
    "sharedcore_peer_settings_mismatch",
    "1 while the peer's heartbeats publish failover settings that differ from this site's Topology.",
    ["peer"],
    registry=REGISTRY,
)
CITY_DNS_REACHABLE = Gauge(
    "sharedcore_city_dns_reachable",
    "1 while the city DNS server (Topology spec.dns.servers) answers this site, 0 while it does not; "
    "absent without spec.dns.",
    ["server"],
    registry=REGISTRY,
)
AUTOMATIC_FAILOVER_READY = Gauge(
    "sharedcore_automatic_failover_ready",
    "At the standby in Automatic mode: 1 while an automatic failover would pass its preconditions now, 0 "
    "while it would not (the Topology's AutomaticFailoverReady condition says why); absent elsewhere.",
    ["site"],
    registry=REGISTRY,
)
KUBECONFIG_REJECTED = Gauge(
    "sharedcore_peer_kubeconfig_rejected",
    "1 while the kubeconfig Secret for reaching the peer (or the witness) is refused; the last good one, if "
    "any, is still used.",
    ["peer"],
    registry=REGISTRY,
)
REPLICATION_LAG = Gauge(
    "sharedcore_replication_lag_seconds",
    "How far this site's copy of a service's data is behind (kind: database or files).",
    ["namespace", "name", "kind"],
    registry=REGISTRY,
)
LAST_SYNC = Gauge(
    "sharedcore_last_sync_timestamp_seconds",
    "Up to when this site's copy of a service's data is known complete (kind: database or files).",
    ["namespace", "name", "kind"],
    registry=REGISTRY,
)
REPLICATION_WRITES = Counter(
    "sharedcore_replication_writes_total",
    "Objects the active site wrote to the standby site, by kind and action (create, update, revert, delete, "
    "retain), and those it refused to copy (refuse).",
    ["kind", "action"],
    registry=REGISTRY,
)
FAILOVERS_TOTAL = Counter(
    "sharedcore_failovers_total",
    "Failovers this site executed, by type and final phase (Succeeded, Failed, Planned for a dry run).",
    ["type", "result"],
    registry=REGISTRY,
)
FAILOVER_DURATION = Gauge(
    "sharedcore_failover_duration_seconds",
    "Seconds the last Failover this site completed took, from its start to its end, by type.",
    ["type"],
    registry=REGISTRY,
)
FAILOVER_RTO = Gauge(
    "sharedcore_failover_rto_seconds",
    "Recovery time of the last Failover this site completed, by type: from when the services stopped "
    "answering at the source until they all answered here.",
    ["type"],
    registry=REGISTRY,
)
DATA_LOSS_WINDOW = Gauge(
    "sharedcore_data_loss_window_seconds",
    "Seconds of changes the last Failover this site completed may have lost, at worst over its services "
    "(0 for a switchover).",
    ["type"],
    registry=REGISTRY,
)
FAILOVER_FENCING = Gauge(
    "sharedcore_failover_fencing_seconds",
    "Seconds the FenceSource step of the last Failover this site completed took, by type: until the source "
    "stopped acting and its databases and DNS records followed.",
    ["type"],
    registry=REGISTRY,
)
WORKQUEUE_DEPTH = Gauge("sharedcore_workqueue_depth", "Keys waiting to be reconciled.", registry=REGISTRY)
MANAGED_SERVICES = Gauge("sharedcore_services", "SharedServices this operator manages.", registry=REGISTRY)


SERVICE_RPO = Gauge(
    "sharedcore_service_rpo_seconds",
    "A service's recovery point objective (spec.objectives.rpoSeconds), for alerts on replication lag.",
    ["namespace", "name"],
    registry=REGISTRY,
)


class ServiceSeries:
    """The per-service gauges, whose label sets change with version and role: stale series are removed."""

    def __init__(self) -> None:
        self._labels: dict[tuple[str, str], tuple[str, ...]] = {}

    def set(
        self, namespace: str, name: str, *, platform: str, version: str, role: str, ready: bool, rpo: float
    ) -> None:
        info = (namespace, name, platform, version, role)
        previous = self._labels.get((namespace, name))
        if previous and previous != info:
            self.forget(namespace, name)
        self._labels[(namespace, name)] = info
        SERVICE_READY.labels(namespace, name, platform).set(1 if ready else 0)
        SERVICE_INFO.labels(*info).set(1)
        SERVICE_RPO.labels(namespace, name).set(rpo)

    def forget(self, namespace: str, name: str) -> None:
        info = self._labels.pop((namespace, name), None)
        if info:
            SERVICE_READY.remove(*info[:3])
            SERVICE_INFO.remove(*info)
            SERVICE_RPO.remove(namespace, name)


SERVICES = ServiceSeries()


def _seconds_since(moment: float) -> Callable[[], float]:
    return lambda: time.time() - moment


class ReplicationSeries:
    """Per-service lag and last-sync gauges. A lag not given is computed at scrape time from the last sync,
    so it keeps growing while nothing is replicated."""

    def __init__(self) -> None:
        self._kinds: dict[tuple[str, str], set[str]] = {}

    def set(self, namespace: str, name: str, series: dict[str, tuple[float, float | None]]) -> None:
        """`series`: (complete up to, as epoch seconds; lag if sampled) by kind (database, files)."""
        self.forget(namespace, name)  # a gauge computed at scrape time cannot be set again: start afresh
        self._kinds[(namespace, name)] = set(series)
        for kind, (complete_at, lag) in series.items():
            LAST_SYNC.labels(namespace, name, kind).set(complete_at)
            gauge = REPLICATION_LAG.labels(namespace, name, kind)
            if lag is not None:
                gauge.set(lag)
            else:
                gauge.set_function(_seconds_since(complete_at))

    def forget(self, namespace: str, name: str) -> None:
        for kind in self._kinds.pop((namespace, name), set()):
            REPLICATION_LAG.remove(namespace, name, kind)
            LAST_SYNC.remove(namespace, name, kind)


REPLICATION = ReplicationSeries()


SITE_STORAGE = Gauge(
    "sharedcore_site_storage_bytes",
    "Storage at each site: kind capacity (the Topology's capacity.storage) and committed (what the "
    "SharedServices take there, the standby holding a full copy); as this operator counts them.",
    ["site", "kind"],
    registry=REGISTRY,
)


class StorageSeries:
    """Committed storage and capacity per site, where the Topology declares capacities."""

    def set(self, capacities: dict[str, int], committed: int, sites: list[str]) -> None:
        SITE_STORAGE.clear()
        for site in sites:
            SITE_STORAGE.labels(site, "committed").set(committed)
            if site in capacities:
                SITE_STORAGE.labels(site, "capacity").set(capacities[site])


STORAGE = StorageSeries()


REPLICATION_FEASIBLE = Gauge(
    "sharedcore_replication_feasible",
    "1 while the links declared in the Topology can carry a service's copies within its rpoSeconds at the "
    "measured change rate, 0 when they cannot (its ReplicationFeasible condition gives the figures).",
    ["namespace", "name"],
    registry=REGISTRY,
)
INITIAL_COPY = Gauge(
    "sharedcore_initial_copy_seconds",
    "Estimated time of a service's first full copy to the other site on the declared links.",
    ["namespace", "name"],
    registry=REGISTRY,
)


class FeasibilitySeries:
    """Per service, where links are declared: whether replication is feasible, and the first copy's time."""

    def set(self, namespace: str, name: str, verdict: tuple[bool, float] | None) -> None:
        if verdict is None:
            for gauge in (REPLICATION_FEASIBLE, INITIAL_COPY):
                with contextlib.suppress(KeyError):
                    gauge.remove(namespace, name)
            return
        REPLICATION_FEASIBLE.labels(namespace, name).set(1 if verdict[0] else 0)
        INITIAL_COPY.labels(namespace, name).set(verdict[1])


FEASIBILITY = FeasibilitySeries()


PARALLEL_RUN_DAYS_LEFT = Gauge(
    "sharedcore_parallel_run_days_left",
    "Days until a service's spec.parallelRun.endDate, at its active site (negative once it has passed).",
    ["namespace", "name"],
    registry=REGISTRY,
)
PARALLEL_RUN_PREVIOUS_UP = Gauge(
    "sharedcore_parallel_run_previous_system_up",
    "1 when the parallel run's reconciliation job last reached the previous system, 0 when it did not.",
    ["namespace", "name"],
    registry=REGISTRY,
)
PARALLEL_RUN_MISSING = Gauge(
    "sharedcore_parallel_run_dossiers_missing",
    "Dossiers in force at the previous system that the new one does not have, as the job last counted.",
    ["namespace", "name"],
    registry=REGISTRY,
)


class ParallelRunSeries:
    """Per service in a parallel run, at the active site: days left, previous system up, dossiers missing."""

    def set(self, namespace: str, name: str, figures: tuple[int, bool | None, int | None] | None) -> None:
        gauges = (PARALLEL_RUN_DAYS_LEFT, PARALLEL_RUN_PREVIOUS_UP, PARALLEL_RUN_MISSING)
        values = figures or (None, None, None)
        for gauge, value in zip(gauges, values, strict=True):
            if value is None:
                with contextlib.suppress(KeyError):
                    gauge.remove(namespace, name)
            else:
                gauge.labels(namespace, name).set(float(value))


PARALLEL_RUN = ParallelRunSeries()
