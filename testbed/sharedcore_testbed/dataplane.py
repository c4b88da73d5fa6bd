"""Stand-ins for CloudNativePG and VolSync at one testbed site, and for the Prometheus scraping CloudNativePG.
Used by the two-site tests, `make demo` and the benchmarks (`sharedcore_testbed.pair` starts one per site).

Neither runs in the testbed (no containers), so this double publishes what they would, through their
documented interfaces only, and the operator reads it exactly as it reads the real thing:
- CloudNativePG `Cluster` status: instances, readyInstances, instanceNames, currentPrimary, targetPrimary,
  phase. Each instance's metrics (`cnpg_pg_replication_lag`, `cnpg_pg_replication_is_wal_receiver_up`,
  on the designated primary of a replica cluster: one whose spec.replica.primary is not spec.replica.self)
  are served the way Prometheus returns them to an instant query, labelled with namespace and pod.
- VolSync `ReplicationSource` and `ReplicationDestination` status: a sync completes every `sync_every`
  seconds (their cron schedule, compressed for tests): lastSyncTime, lastSyncDuration, nextSyncTime (source)
  and the Synchronizing condition.
A test sets a replica's lag (`set_lag`) or stops its WAL receiver, as a slow or broken link would, or plays
the source site gone (`lose_source`), or Prometheus without samples of the replicas (`lose_metrics`).
"""

import base64
import datetime
import json
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import urllib3
from kubernetes import client

from sharedcore_testbed.clients import SiteClients, items

CNPG = ("postgresql.cnpg.io", "v1", "clusters")
VOLSYNC = "volsync.backube", "v1alpha1"
VOLSYNC_KINDS = ("replicationsources", "replicationdestinations")
HEALTHY = "Cluster in healthy state"
PATCHERS = 8  # status writes at once (the client's connection pool holds 10)
SLOW_PASS_S = 5.0  # a pass this long is said: the controllers it plays lag by as much
# (group, version), namespace, plural, name, the status patch
Patch = tuple[tuple[str, str], str, str, str, dict[str, Any]]


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def demotion_token(cluster: str) -> str:
    """A stand-in for CloudNativePG's token (base64 JSON of the demoted primary's last checkpoint): it names
    the demoted cluster, so the double promoting the other site can check where a token came from."""
    return base64.b64encode(json.dumps({"cluster": cluster, "timeline": 1}).encode()).decode()


def token_cluster(token: str) -> str | None:
    try:
        return str(json.loads(base64.b64decode(token))["cluster"])
    except (ValueError, KeyError, TypeError):
        return None


def is_primary(cluster: dict[str, Any]) -> bool:
    """Whether a Cluster is (to be) the writable primary: not a replica of another cluster."""
    replica = cluster["spec"].get("replica") or {}
    return replica.get("primary") in (None, replica.get("self", cluster["metadata"]["name"]))


def cnpg_status(cluster: dict[str, Any], was_primary: bool) -> dict[str, Any]:
    """What CloudNativePG reports of a cluster whose instances all came up.

    Its documented switchover handshake: a primary demoted to a replica (spec.replica.primary no longer
    itself) publishes status.demotionToken; a replica made primary with spec.replica.promotionToken waits
    until it has replayed up to that token, then promotes (here at once, if the token is the source's)."""
    name, instances = cluster["metadata"]["name"], cluster["spec"].get("instances", 1)
    pods = [f"{name}-{index}" for index in range(1, instances + 1)]
    status: dict[str, Any] = {
        "instances": instances,
        "readyInstances": instances,
        "instanceNames": pods,
        "currentPrimary": pods[0],
        "targetPrimary": pods[0],
        "phase": HEALTHY,
    }
    replica = cluster["spec"].get("replica") or {}
    primary = is_primary(cluster)
    if not primary and was_primary:
        status["demotionToken"] = demotion_token(name)
    token = replica.get("promotionToken")
    if primary and token and token_cluster(token) == replica.get("source"):
        status["lastPromotionToken"] = token
    return status


def volsync_status(kind: str, synced: datetime.datetime, every: float, sent: int = 4096) -> dict[str, Any]:
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
        # What VolSync keeps of its rsync mover's output: the summary lines.
        logs = f"sent {sent:,} bytes  received 35 bytes  {sent / 1.5:,.2f} bytes/sec\nrsync completed in 1.5s"
        status["latestMoverStatus"] = {"result": "Successful", "logs": logs}
    return status


class DataPlaneDouble:
    def __init__(self, site: SiteClients, *, sync_every: float = 5.0, default_lag: float = 1.0) -> None:
        self.site = site
        self.sync_every = sync_every
        self.default_lag = default_lag
        self._lags: dict[tuple[str, str], tuple[float, bool]] = {}  # (namespace, cluster) → (lag, streaming)
        self._series: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._syncs_paused = False
        self._primaries: set[tuple[str, str]] = set()  # Clusters seen primary: demoted, they publish a token
        self._source_lost = False
        self._metrics_lost = False
        self._demotion_held = False
        self._sent: dict[tuple[str, str], int] = {}  # (namespace, ReplicationSource) → bytes a copy sends
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"dataplane-{site.name}", daemon=True)
        self._pool = ThreadPoolExecutor(PATCHERS, thread_name_prefix=f"dataplane-{site.name}")
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
        self._pool.shutdown(wait=False)

    def pause_syncs(self, paused: bool) -> None:
        """Stop (or resume) completing VolSync syncs, as when the schedule is far off."""
        self._syncs_paused = paused

    def lose_source(self, lost: bool) -> None:
        """Play the source site being gone (or back): no copy of the files completes and every replica
        cluster's WAL receiver is down, its lag no longer measurable."""
        self._source_lost = lost
        self.pause_syncs(lost)

    def lose_metrics(self, lost: bool) -> None:
        """Play Prometheus having no sample of the replicas (or having them again): their lag is unknown."""
        self._metrics_lost = lost

    def hold_demotion(self, held: bool) -> None:
        """Play CloudNativePG slow to demote (or done): a primary told to follow the other site keeps
        reporting as the primary, without a demotion token, until released."""
        self._demotion_held = held

    def set_sent_bytes(self, namespace: str, source: str, sent: int) -> None:
        """Play each copy of the files sending `sent` bytes from then on (the service's change rate)."""
        with self._lock:
            self._sent[(namespace, source)] = sent

    def set_lag(self, namespace: str, cluster: str, seconds: float, streaming: bool = True) -> None:
        with self._lock:
            self._lags[(namespace, cluster)] = (seconds, streaming)

    # --- playing the controllers ------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            began = time.monotonic()
            try:
                self._play_once()
            except (client.ApiException, urllib3.exceptions.HTTPError, OSError):  # the site may be down
                continue
            except Exception:  # anything else is a bug here, but a dead double would stall every later test
                traceback.print_exc()
            finally:
                took = time.monotonic() - began
                if took > SLOW_PASS_S:
                    print(f"{self._thread.name}: a pass took {took:.1f}s", file=sys.stderr, flush=True)

    def _play_once(self) -> None:
        custom = self.site.custom
        series = []
        patches: list[Patch] = []  # CloudNativePG's, then VolSync's, each set written at once
        for cluster in items(custom.list_cluster_custom_object(*CNPG, _request_timeout=5)):
            meta = cluster["metadata"]
            key = (meta["namespace"], meta["name"])
            reported = cluster.get("status") or {}
            demoting = key in self._primaries and not is_primary(cluster) and "demotionToken" not in reported
            if demoting and self._demotion_held:
                continue
            status = cnpg_status(cluster, key in self._primaries or "demotionToken" in reported)
            if is_primary(cluster):
                self._primaries.add(key)
            if "demotionToken" in reported and "demotionToken" not in status:
                status["demotionToken"] = None  # promoted again (failback): the token is spent
            if {k: reported.get(k) for k in status} != status:
                patches.append((CNPG[:2], meta["namespace"], CNPG[2], meta["name"], {"status": status}))
            if not is_primary(cluster):
                series += list(
                    self._replica_series(meta["namespace"], meta["name"], status["currentPrimary"])
                )
        with self._lock:
            self._series = series
        self._patch(patches)
        patches = []
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        for plural in VOLSYNC_KINDS:
            for obj in items(custom.list_cluster_custom_object(*VOLSYNC, plural, _request_timeout=5)):
                reported = obj.get("status") or {}
                last = reported.get("lastSyncTime")
                # A manual trigger syncs once per new value, and only then (VolSync's trigger.manual).
                manual = (obj["spec"].get("trigger") or {}).get("manual")
                due = (
                    manual != reported.get("lastManualSync") and not self._source_lost
                    if manual is not None
                    else last is None
                    or (
                        not self._syncs_paused
                        and (now - datetime.datetime.fromisoformat(last)).total_seconds() >= self.sync_every
                    )
                )
                if due:
                    with self._lock:
                        sent = self._sent.get((obj["metadata"]["namespace"], obj["metadata"]["name"]), 4096)
                    status = volsync_status(plural, now, self.sync_every, sent)
                    if manual is not None:
                        status["lastManualSync"] = manual
                    meta = obj["metadata"]
                    patches.append((VOLSYNC, meta["namespace"], plural, meta["name"], {"status": status}))
        self._patch(patches)

    def _patch(self, patches: list[Patch]) -> None:
        """Write these statuses at once, as the real controllers reconcile their objects side by side (one
        after another, 50 Clusters' promotions took the double 10 s on a loaded testbed)."""
        custom = self.site.custom

        def one(patch: Patch) -> None:
            (group, version), namespace, plural, name, body = patch
            custom.patch_namespaced_custom_object_status(
                group, version, namespace, plural, name, body, _request_timeout=10
            )

        list(self._pool.map(one, patches))  # the first failure is raised, as a sequential write's was

    def _replica_series(self, namespace: str, cluster: str, pod: str) -> Iterator[dict[str, Any]]:
        with self._lock:
            lag, streaming = self._lags.get((namespace, cluster), (self.default_lag, True))
        now = datetime.datetime.now(datetime.UTC).timestamp()
        labels = {"namespace": namespace, "pod": pod, "cnpg_io_cluster": cluster}
        yield {"metric": {"__name__": "cnpg_pg_replication_lag", **labels}, "value": [now, str(lag)]}
        up = "1" if streaming and not self._source_lost else "0"
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
                    result = [] if double._metrics_lost else list(double._series)
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_: Any) -> None:
                return

        return Handler
