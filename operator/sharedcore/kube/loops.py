"""The shape of the operator's periodic loops: do one pass, then wait for a wake-up or the interval.

A pass that fails is logged and the loop goes on: one bad round (a peer answering garbage, a bug met once)
never stops a site coordinating or a poller polling.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def attempt(step: Callable[[], Awaitable[None]], what: str) -> None:
    try:
        await step()
    except Exception:  # keep looping, whatever one round met
        log.exception("%s: %s failed", what, getattr(step, "__name__", "a pass"))


async def repeat(
    step: Callable[[], Awaitable[None]],
    *,
    interval: Callable[[], float],
    what: str,
    wake: asyncio.Event | None = None,
) -> None:
    """Run `step` every `interval()` seconds, and at once whenever `wake` is set."""
    wake = wake or asyncio.Event()
    while True:
        await attempt(step, what)
        try:
            await asyncio.wait_for(wake.wait(), interval())
        except TimeoutError:
            continue
        wake.clear()
