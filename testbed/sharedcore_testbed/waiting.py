"""Polling until something holds: the one wait used by the tests, the demo and the testbed's helpers."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    probe: Callable[[], T | None],
    timeout: float = 60.0,
    interval: float = 0.25,
    message: str = "condition",
    error: type[Exception] = TimeoutError,
) -> T:
    """Poll until probe returns something truthy, and return that; else raise `error` with the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise error(f"{message} not reached within {timeout}s (last: {last!r})")
