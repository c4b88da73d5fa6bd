"""CloudNativePG replication lag, where CloudNativePG publishes it: its instances' metrics, via Prometheus.

The lag is not in a CloudNativePG Cluster's status. Each instance exports, on its metrics port, the gauges
`cnpg_pg_replication_lag` (seconds behind its source) and `cnpg_pg_replication_is_wal_receiver_up`, which
Prometheus scrapes with the namespace and pod labels of a PodMonitor. This operator asks its site's
Prometheus for both every poll. CloudNativePG reports a lag of 0 whenever everything received is replayed,
even when nothing arrives any more, and the WAL receiver stays up for `wal_receiver_timeout` (5 s as
CloudNativePG sets it) after the stream stopped: a lag of 0 says nothing of when WAL last arrived. So each
service's Cluster also exports, by a query sharedcore renders (`render.database`), the replica's
`pg_stat_wal_receiver.last_msg_receipt_time`: the replica is complete only up to the earlier of that and
`sample time - lag`. A replica whose WAL receiver is down is reported as not streaming, complete up to where
it was last seen so.

A pod's name outlives its instance (CloudNativePG names them `<cluster>-<n>`), and a Prometheus restarted
with its site writes no staleness markers for what it scraped before, so for its lookback (5 min) one pod may
answer twice: the instance it was and the one it is. The query therefore also asks when each series was
scraped (`timestamp()`, marked with the label `sharedcore="scraped"`); the latest scraped series is the
pod's, and its lag counts from that scrape.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from sharedcore.kube import loops

log = logging.getLogger(__name__)
LAG = "cnpg_pg_replication_lag"
RECEIVER_UP = "cnpg_pg_replication_is_wal_receiver_up"
RECEIPT = "cnpg_sharedcore_wal_receiver_last_msg_receipt_time"
MARK = "sharedcore"  # the label that marks the scrape times' series
QUERY = (
    f'{{__name__=~"{LAG}|{RECEIVER_UP}|{RECEIPT}"}}'
    f' or label_replace(timestamp({RECEIVER_UP}), "{MARK}", "scraped", "", "")'
)
NOT_CONFIGURED = f"no Prometheus to read {LAG} from (sharedcore run --prometheus-url)"
Pod = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class LagSample:
    """A replica instance's lag (None: not streaming) and up to when it is known complete (epoch seconds)."""

    lag_seconds: float | None
    complete_at: float | None

    def verdict(self) -> tuple[bool, float | None]:
        """What a status shows of it (whole seconds): a change here is worth a reconcile."""
        if self.lag_seconds is None:
            return False, self.complete_at
        return True, float(round(self.lag_seconds))


class LagTable:
    """The latest samples, by pod; `problem` says why there are none."""

    def __init__(self) -> None:
        self.problem: str | None = NOT_CONFIGURED
        self._samples: dict[Pod, LagSample] = {}
        # Up to when each replica was last seen complete: kept through polls without its sample (a failed
        # scrape, Prometheus not answering), which say nothing new about the past.
        self._complete: dict[Pod, float] = {}

    def sample(self, namespace: str, pod: str) -> LagSample | None:
        return self._samples.get((namespace, pod))

    def update(self, values: dict[Pod, dict[str, tuple[float, float]]]) -> set[str] | None:
        """Take one poll's values ((timestamp, value) by metric, by pod).

        Returns the namespaces whose verdict changed; None when every one may have (`problem` changed).
        """
        samples = {}
        for pod, metrics in values.items():
            receiver = metrics.get(RECEIVER_UP)
            if LAG in metrics and (receiver is None or receiver[1] > 0):
                taken, lag = metrics[LAG]
                # Without its last receipt (a Cluster rendered before sharedcore exported it), the lag alone.
                complete = min(taken - lag, metrics.get(RECEIPT, (taken, taken))[1])
                self._complete[pod] = complete
                samples[pod] = LagSample(lag, complete)
            else:
                samples[pod] = LagSample(None, self._complete.get(pod))
        return self._replace(samples, None)

    def fail(self, problem: str) -> set[str] | None:
        return self._replace({}, problem)

    def _replace(self, samples: dict[Pod, LagSample], problem: str | None) -> set[str] | None:
        if problem != self.problem:
            self._samples, self.problem = samples, problem
            return None
        changed = {
            namespace
            for namespace, pod in set(samples) | set(self._samples)
            if (old := self._samples.get((namespace, pod))) is None
            or (new := samples.get((namespace, pod))) is None
            or old.verdict() != new.verdict()
        }
        self._samples, self.problem = samples, problem
        return changed


def parse(answer: dict[str, Any]) -> dict[Pod, dict[str, tuple[float, float]]]:
    """A Prometheus instant-query answer (resultType vector) as values by pod and metric, each with when it
    was scraped (else when the query was evaluated); of a pod's several instances, the latest scraped."""
    metrics: dict[frozenset[tuple[str, str]], dict[str, tuple[float, float]]] = {}
    scraped: dict[frozenset[tuple[str, str]], float] = {}
    for result in answer["data"]["result"]:
        labels = dict(result["metric"])
        if "namespace" not in labels or "pod" not in labels:
            continue
        name, marked = labels.pop("__name__", None), labels.pop(MARK, None)
        evaluated, value = (float(v) for v in result["value"])
        series = frozenset(labels.items())
        if marked is not None:
            scraped[series] = value
        elif name is not None:
            metrics.setdefault(series, {})[name] = (evaluated, value)
    values: dict[Pod, dict[str, tuple[float, float]]] = {}
    latest: dict[Pod, float] = {}
    for series, found in metrics.items():
        labels = dict(series)
        pod, at = (labels["namespace"], labels["pod"]), scraped.get(series)
        if pod not in values or (at or 0.0) > latest[pod]:
            values[pod] = {name: (at or evaluated, value) for name, (evaluated, value) in found.items()}
            latest[pod] = at or 0.0
    return values


class PrometheusPoller:
    def __init__(
        self,
        url: str,
        table: LagTable,
        *,
        interval: float,
        wanted: Callable[[], bool],
        on_change: Callable[[set[str] | None], None],
    ) -> None:
        """Polls while `wanted()` (this site holds replicas); `on_change` gets the namespaces affected."""
        self._url = url.rstrip("/")
        self._table, self._interval = table, interval
        self._wanted, self._on_change = wanted, on_change
        table.problem = f"Prometheus at {self._url} not asked yet"

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=max(self._interval, 5.0))
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def poll() -> None:
                if self._wanted():
                    changed = await self._poll(session)
                    if changed is None or changed:
                        self._on_change(changed)

            await loops.repeat(poll, interval=lambda: self._interval, what="lag poller")

    async def _poll(self, session: aiohttp.ClientSession) -> set[str] | None:
        try:
            async with session.get(f"{self._url}/api/v1/query", params={"query": QUERY}) as response:
                response.raise_for_status()
                values = parse(await response.json())
        except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as error:
            problem = f"Prometheus at {self._url} did not answer: {str(error) or type(error).__name__}"
            if problem != self._table.problem:
                log.warning("%s", problem)
            return self._table.fail(problem)
        return self._table.update(values)
