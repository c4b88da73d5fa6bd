"""The shape of the operator's periodic loops: do one pass, then wait for a wake-up or the interval; and of
the reads a loop waits for at startup, retried until the API server answers.

A pass that fails is logged and the loop goes on: one bad round (a peer answering garbage, a bug met once)
never stops a site coordinating or a poller polling.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


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


async def until_done(
    step: Callable[[], Awaitable[T]], errors: tuple[type[BaseException], ...], what: str
) -> T:
    """What `step` returns once it succeeds: after one of `errors` (the API server not answering yet, at
    startup), it is tried again 0.5 s later, then twice as long each time, up to 30 s."""
    delay = 0.5
    while True:
        try:
            return await step()
        except errors as error:
            log.warning("%s: not yet (%s); retrying in %.1fs", what, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
