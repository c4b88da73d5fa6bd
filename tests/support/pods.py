"""A background sampler of a component's pods at each site, as the API servers list them.

Every 100 ms it counts, at each site, the pods carrying the component's labels, terminating ones included
(their containers may still run). Used as a context manager it stops on the way out; `overlaps` are the
samples where pods existed at more than one site.
"""

import threading
import time
from collections.abc import Sequence
from types import TracebackType

from tests.support.cluster import Site

EVERY = 0.1


class PodSampler:
    def __init__(self, sites: Sequence[Site], namespace: str, selector: str) -> None:
        self._sites, self._namespace, self._selector = sites, namespace, selector
        self.samples: list[tuple[float, dict[str, int]]] = []  # (monotonic time, site → pods)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-sampler", daemon=True)

    def _count(self, site: Site) -> int:
        pods = site.core.list_namespaced_pod(
            self._namespace, label_selector=self._selector, _request_timeout=5
        )
        return len(pods.items)

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic()
            self.samples.append((at, {site.name: self._count(site) for site in self._sites}))
            self._stop.wait(max(EVERY - (time.monotonic() - at), 0))

    def __enter__(self) -> "PodSampler":
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def overlaps(self) -> list[tuple[float, dict[str, int]]]:
        return [(at, counts) for at, counts in self.samples if sum(bool(n) for n in counts.values()) > 1]

    def at(self, site: str) -> list[int]:
        return [counts[site] for _, counts in self.samples]
