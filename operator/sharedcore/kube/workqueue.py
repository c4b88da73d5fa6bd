"""A deduplicating work queue with delayed requeues, as client-go's: a key is never worked on twice at once.

Watch events, resyncs and retries only add keys; however many arrive while a key waits, it is reconciled once,
and a key added while it is being worked on is reconciled again afterwards (nothing is lost, nothing doubles).
"""

import asyncio
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """`retry` requeues a key whose work failed after an exponential backoff (base_delay * 2**failures, at
    most max_delay); `succeeded` and `forget` reset it."""

    def __init__(self, *, base_delay: float = 0.5, max_delay: float = 300.0) -> None:
        self._base_delay, self._max_delay = base_delay, max_delay
        self._failures: dict[K, int] = {}
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._waiting: set[K] = set()
        self._active: set[K] = set()
        self._dirty: set[K] = set()  # added while active: queue again when done
        self._timers: dict[K, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, key: K) -> None:
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._waiting:
            self._waiting.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Add later; an earlier pending requeue of the same key wins."""
        loop = asyncio.get_running_loop()
        timer = self._timers.get(key)
        if timer and timer.when() <= loop.time() + delay:
            return
        if timer:
            timer.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def forget(self, key: K) -> None:
        """Drop a pending delayed requeue and the failures counted (the object is gone)."""
        self._failures.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer:
            timer.cancel()

    def retry(self, key: K) -> float:
        """Work on `key` failed: add it again after a backoff that doubles with each failure in a row."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay: float = min(self._max_delay, self._base_delay * 2.0**failures)
        self.add_after(key, delay)
        return delay

    def succeeded(self, key: K) -> None:
        self._failures.pop(key, None)

    async def get(self) -> K:
        key = await self._queue.get()
        self._waiting.discard(key)
        self._active.add(key)
        return key

    def done(self, key: K) -> None:
        self._active.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def busy(self, key: K) -> bool:
        return key in self._active or key in self._waiting
