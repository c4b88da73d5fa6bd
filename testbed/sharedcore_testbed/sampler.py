"""Samples `pg_is_in_recovery()` at every site every 100 ms: no tick may find two writable primaries.

    sampler = PrimarySampler({"danang": locate_danang, "quangnam": locate_quangnam})
    sampler.start(); ...; sampler.stop()
    assert not sampler.two_writable(), sampler.two_writable()

One thread per site, each with its own connection (a hung site must not stop the other's samples), each
sample filed under its 100 ms tick; an unreachable site is no writer (None), and neither is one in recovery.
"""

import threading
import time
from collections.abc import Callable, Mapping

from sharedcore_testbed.writer import Target, connect

TICK = 0.1


class PrimarySampler:
    def __init__(self, sites: Mapping[str, Callable[[], Target | None]], *, tick: float = TICK) -> None:
        self.tick = tick
        self._locate = dict(sites)
        self._samples: dict[int, dict[str, bool | None]] = {}  # tick → site → writable (None: no answer)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(site,), name=f"sampler-{site}", daemon=True)
            for site in self._locate
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def samples(self) -> dict[float, dict[str, bool | None]]:
        """Each tick's start (epoch seconds) → what each site answered in it."""
        with self._lock:
            return {tick * self.tick: dict(found) for tick, found in sorted(self._samples.items())}

    def writable_samples(self, site: str) -> int:
        with self._lock:
            return sum(1 for found in self._samples.values() if found.get(site))

    def two_writable(self) -> list[tuple[float, list[str]]]:
        """Ticks in which more than one site answered that it was not in recovery."""
        return [
            (at, writable)
            for at, found in self.samples().items()
            if len(writable := sorted(site for site, answer in found.items() if answer)) > 1
        ]

    def _record(self, site: str, writable: bool | None) -> None:
        with self._lock:
            self._samples.setdefault(int(time.time() / self.tick), {})[site] = writable

    def _run(self, site: str) -> None:
        connection = None
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if connection is None:
                    target = self._locate[site]()
                    if target is None:
                        raise LookupError(f"{site}: no database to ask")
                    connection = connect(target.conninfo)
                answer = connection.execute("SELECT pg_is_in_recovery()").fetchone()
                self._record(site, answer is not None and answer[0] is False)
            except Exception:
                self._record(site, None)
                if connection is not None:
                    connection.close()
                connection = None
            self._stop.wait(max(0.0, self.tick - (time.monotonic() - started)))
        if connection is not None:
            connection.close()
