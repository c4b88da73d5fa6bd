"""The testbed's network: one TCP proxy per directed link between sites (and from each site to the city DNS),
run as one daemon process.

`python -m sharedcore_testbed.proxy DIR` serves every link in DIR/testbed.json and re-reads it on SIGHUP.
A blocked link behaves like a network partition: open connections are cut and new ones are accepted but
never answered (a black hole, so clients meet their own timeouts, as across a real broken WAN link).
A link whose target is down fails fast (connection closed), as a reachable site with a dead apiserver would.
A slow link delays what it carries, in each direction, and loses a share of it the way TCP shows loss to
an application: a lost segment arrives a retransmission timeout late and holds up what follows it, and a
lost connection request is retried after a second.
After applying a change the daemon writes the state's generation to DIR/proxy.ack.
"""

import asyncio
import contextlib
import random
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sharedcore_testbed import state as testbed_state

ACK_FILE = "proxy.ack"
CHUNK = 64 * 1024
MIN_RTO = 0.2  # Linux's least retransmission timeout, seconds
SYN_RTO = 1.0  # its initial one, for a lost connection request


@dataclass
class Link:
    target_address: str
    target_port: int
    blocked: bool = False
    delay: float = 0.0  # seconds, each direction
    loss: float = 0.0  # share of segments lost
    healed: asyncio.Event = field(default_factory=asyncio.Event)
    open_writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def set_blocked(self, blocked: bool) -> None:
        if blocked and not self.blocked:
            for writer in list(self.open_writers):
                writer.transport.abort()
            self.healed = asyncio.Event()
        if not blocked:
            self.healed.set()
        self.blocked = blocked

    def late(self) -> float:
        """How late a segment sent now arrives: the delay, plus a retransmission timeout if it is lost."""
        lost = random.random() < self.loss
        return self.delay + (max(MIN_RTO, 2 * self.delay) if lost else 0.0)


async def _pipe(link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Forward in order; on a slow link each chunk leaves when due, never before the one ahead of it."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def receive() -> None:
        due = 0.0
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(CHUNK):
                due = max(due, loop.time() + link.late())
                queue.put_nowait((due, data))
        queue.put_nowait((due, b""))

    receiving = asyncio.ensure_future(receive())
    with contextlib.suppress(ConnectionError, OSError):
        while True:
            due, data = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    receiving.cancel()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        writer.close()


async def _serve(
    link: Link, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
) -> None:
    if link.blocked:
        # Black hole until the partition heals or the client gives up; then drop the connection.
        drain = asyncio.ensure_future(_discard(client_reader))
        await asyncio.wait(
            [drain, asyncio.ensure_future(link.healed.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        drain.cancel()
        client_writer.transport.abort()
        return
    if link.loss and random.random() < link.loss:
        await asyncio.sleep(SYN_RTO)
    try:
        upstream_reader, upstream_writer = await asyncio.wait_for(
            asyncio.open_connection(link.target_address, link.target_port), timeout=5
        )
    except (OSError, TimeoutError):
        client_writer.transport.abort()
        return
    link.open_writers.update((client_writer, upstream_writer))
    try:
        await asyncio.gather(
            _pipe(link, client_reader, upstream_writer), _pipe(link, upstream_reader, client_writer)
        )
    finally:
        link.open_writers.difference_update((client_writer, upstream_writer))


async def _discard(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while await reader.read(CHUNK):
            pass


async def run(directory: Path) -> None:
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    stopping = False

    def on_term() -> None:
        nonlocal stopping
        stopping = True
        wake.set()

    loop.add_signal_handler(signal.SIGHUP, wake.set)
    loop.add_signal_handler(signal.SIGTERM, on_term)
    links: dict[tuple[str, str, int], Link] = {}
    servers = []
    initial = testbed_state.load(directory)
    for spec in initial.links:
        if spec.target_port is not None:
            link = Link(spec.target_address or "127.0.0.1", spec.target_port)
        else:
            target = initial.planes[spec.target]
            link = Link(target.address, target.apiserver_port)
        links[(spec.source, spec.target, spec.port)] = link
        servers.append(await asyncio.start_server(handler(link), spec.bind, spec.port, reuse_address=True))
    while not stopping:
        current = testbed_state.load(directory)
        for spec in current.links:
            link = links[(spec.source, spec.target, spec.port)]
            link.set_blocked(spec.blocked)
            link.delay, link.loss = spec.delay_ms / 1000, spec.loss
        (directory / ACK_FILE).write_text(str(current.generation))
        await wake.wait()
        wake.clear()
    for server in servers:
        server.close()


def handler(link: Link) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve(link, reader, writer)

    return handle


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1])))
