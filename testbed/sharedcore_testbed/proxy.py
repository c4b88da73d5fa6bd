"""The testbed's network: one TCP proxy per directed link between sites (and from each site to the city DNS),
run as one daemon process.

`python -m sharedcore_testbed.proxy DIR` serves every link in DIR/testbed.json and re-reads it on SIGHUP.
A blocked link behaves like a network partition: open connections are cut and new ones are accepted but
never answered (a black hole, so clients meet their own timeouts, as across a real broken WAN link).
A link whose target is down fails fast (connection closed), as a reachable site with a dead apiserver would.
After applying a change the daemon writes the state's generation to DIR/proxy.ack.
"""

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sharedcore_testbed import state as testbed_state

ACK_FILE = "proxy.ack"
CHUNK = 64 * 1024


@dataclass
class Link:
    target_address: str
    target_port: int
    blocked: bool = False
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


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
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
    try:
        upstream_reader, upstream_writer = await asyncio.wait_for(
            asyncio.open_connection(link.target_address, link.target_port), timeout=5
        )
    except (OSError, TimeoutError):
        client_writer.transport.abort()
        return
    link.open_writers.update((client_writer, upstream_writer))
    try:
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))
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
            links[(spec.source, spec.target, spec.port)].set_blocked(spec.blocked)
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
