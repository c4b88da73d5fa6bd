"""Stand-ins for CloudNativePG and VolSync at one testbed site, and for the Prometheus scraping CloudNativePG.

Neither runs in the testbed (no containers), so this double publishes what they would, through their
documented interfaces only, and the operator reads it exactly as it reads the real thing:
- CloudNativePG `Cluster` status: instances, readyInstances, instanceNames, currentPrimary, targetPrimary,
  phase. Each instance's metrics (`cnpg_pg_replication_lag`, `cnpg_pg_replication_is_wal_receiver_up`,
  on the designated primary of a replica cluster: one whose spec.replica.primary is not spec.replica.self)
  are served the way Prometheus returns them to an instant query, labelled with namespace and pod.
- VolSync `ReplicationSource` and `ReplicationDestination` status: a sync completes every `sync_every`
  seconds (their cron schedule, compressed for tests): lastSyncTime, lastSyncDuration, nextSyncTime (source)
  and the Synchronizing condition.
A test sets a replica's lag (`set_lag`) or stops its WAL receiver, as a slow or broken link would.
"""

import datetime
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import urllib3
from kubernetes import client

from tests.support.cluster import Site

CNPG = ("postgresql.cnpg.io", "v1", "clusters")
VOLSYNC = "volsync.backube", "v1alpha1"
VOLSYNC_KINDS = ("replicationsources", "replicationdestinations")
HEALTHY = "Cluster in healthy state"


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def cnpg_status(cluster: dict[str, Any]) -> dict[str, Any]:
    """What CloudNativePG reports of a cluster whose instances all came up."""
    name, instances = cluster["metadata"]["name"], cluster["spec"].get("instances", 1)
    pods = [f"{name}-{index}" for index in range(1, instances + 1)]
    return {
        "instances": instances,
        "readyInstances": instances,
        "instanceNames": pods,
        "currentPrimary": pods[0],
        "targetPrimary": pods[0],
        "phase": HEALTHY,
    }


def volsync_status(kind: str, synced: datetime.datetime, every: float) -> dict[str, Any]:
    status: dict[str, Any] = {
        "lastSyncTime": _stamp(synced),
        "lastSyncDuration": "1.5s",
        "conditions": [
            {
                "type": "Synchronizing",
                "status": "False",
                "reason": "WaitingForSchedule",
                "message": "Waiting for next scheduled synchronization",
                "lastTransitionTime": _stamp(synced),
            }
        ],
    }
    if kind == "replicationsources":
        status["nextSyncTime"] = _stamp(synced + datetime.timedelta(seconds=every))
    return status


class DataPlaneDouble:
    def __init__(self, site: Site, *, sync_every: float = 5.0, default_lag: float = 1.0) -> None:
        self.site = site
        self.sync_every = sync_every
        self.default_lag = default_lag
        self._lags: dict[tuple[str, str], tuple[float, bool]] = {}  # (namespace, cluster) → (lag, streaming)
        self._series: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._syncs_paused = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"dataplane-{site.name}", daemon=True)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._thread.join(timeout=10)

    def pause_syncs(self, paused: bool) -> None:
        """Stop (or resume) completing VolSync syncs, as when the schedule is far off."""
        self._syncs_paused = paused

    def set_lag(self, namespace: str, cluster: str, seconds: float, streaming: bool = True) -> None:
        with self._lock:
            self._lags[(namespace, cluster)] = (seconds, streaming)

    # --- playing the controllers ------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self._play_once()
            except (client.ApiException, urllib3.exceptions.HTTPError, OSError):  # the site may be down
                continue

    def _play_once(self) -> None:
        custom = self.site.custom
        series = []
        for cluster in custom.list_cluster_custom_object(*CNPG, _request_timeout=5)["items"]:
            meta = cluster["metadata"]
            status = cnpg_status(cluster)
            if {k: (cluster.get("status") or {}).get(k) for k in status} != status:
                custom.patch_namespaced_custom_object_status(
                    *CNPG[:2], meta["namespace"], CNPG[2], meta["name"], {"status": status}
                )
            replica = cluster["spec"].get("replica") or {}
            if replica.get("primary") not in (None, replica.get("self", meta["name"])):
                series += list(
                    self._replica_series(meta["namespace"], meta["name"], status["currentPrimary"])
                )
        with self._lock:
            self._series = series
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        for plural in VOLSYNC_KINDS:
            for obj in custom.list_cluster_custom_object(*VOLSYNC, plural, _request_timeout=5)["items"]:
                last = (obj.get("status") or {}).get("lastSyncTime")
                due = last is None or (
                    not self._syncs_paused
                    and (now - datetime.datetime.fromisoformat(last)).total_seconds() >= self.sync_every
                )
                if due:
                    custom.patch_namespaced_custom_object_status(
                        *VOLSYNC,
                        obj["metadata"]["namespace"],
                        plural,
                        obj["metadata"]["name"],
                        {"status": volsync_status(plural, now, self.sync_every)},
                    )

    def _replica_series(self, namespace: str, cluster: str, pod: str) -> Iterator[dict[str, Any]]:
        with self._lock:
            lag, streaming = self._lags.get((namespace, cluster), (self.default_lag, True))
        now = datetime.datetime.now(datetime.UTC).timestamp()
        labels = {"namespace": namespace, "pod": pod, "cnpg_io_cluster": cluster}
        yield {"metric": {"__name__": "cnpg_pg_replication_lag", **labels}, "value": [now, str(lag)]}
        up = "1" if streaming else "0"
        yield {"metric": {"__name__": "cnpg_pg_replication_is_wal_receiver_up", **labels}, "value": [now, up]}

    # --- playing Prometheus -----------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not self.path.startswith("/api/v1/query"):
                    self.send_error(404)
                    return
                with double._lock:
                    result = list(double._series)
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_: Any) -> None:
                return

        return Handler
