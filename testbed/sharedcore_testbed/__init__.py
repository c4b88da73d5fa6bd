"""Real Kubernetes control planes as local processes: several independent sites, with fault injection.

`Testbed(DIR)` drives the planes recorded in DIR/testbed.json; the `sharedcore testbed` CLI, the pytest
fixtures and the demo all go through it.
"""

import contextlib
import signal
import socket
import sys
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sharedcore_testbed import pki, processes, proxy
from sharedcore_testbed import plane as planes
from sharedcore_testbed import state as testbed_state
from sharedcore_testbed.plane import PlaneError
from sharedcore_testbed.state import LinkState, PlaneState, TestbedState

__all__ = ["PlaneError", "PlaneStatus", "Testbed"]

PROXY_ACK_TIMEOUT = 10.0


@dataclass(frozen=True)
class PlaneStatus:
    name: str
    apiserver_port: int
    etcd_port: int
    workloads: bool
    processes: dict[str, str]
    unreachable: tuple[str, ...]  # sites this one cannot open connections to


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


class Testbed:
    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()

    def _load(self) -> TestbedState:
        return testbed_state.load(self.directory)

    @contextlib.contextmanager
    def _editing(self) -> Iterator[TestbedState]:
        current = self._load()
        try:
            yield current
        finally:
            testbed_state.save(self.directory, current)

    def _plane(self, current: TestbedState, name: str) -> PlaneState:
        if name not in current.planes:
            raise KeyError(
                f"no site {name!r} in {self.directory} (sites: {', '.join(current.planes) or 'none'})"
            )
        return current.planes[name]

    # --- lifecycle -------------------------------------------------------------------------------------

    def up(self, names: Sequence[str], workloads: Collection[str] = ()) -> None:
        """Start one plane per name, one after another (2 cores), then the link proxies. Replaces any
        testbed already in the directory."""
        if len(set(names)) != len(names) or not names:
            raise ValueError("give one or more distinct site names")
        self.down()
        ports = iter(_free_ports(3 * len(names) + len(names) * (len(names) - 1)))
        current = TestbedState()
        for name in names:
            current.planes[name] = PlaneState(name, next(ports), next(ports), next(ports), name in workloads)
        current.links = [LinkState(a, b, next(ports)) for a in names for b in names if a != b]
        testbed_state.save(self.directory, current)
        try:
            for name in names:
                with self._editing() as editing:
                    planes.prepare(self.directory, editing.planes[name])
                    planes.start(self.directory, editing.planes[name])
            self._start_proxy()
        except BaseException:
            self.down()
            raise

    def _start_proxy(self) -> None:
        with self._editing() as current:
            (self.directory / proxy.ACK_FILE).unlink(missing_ok=True)
            current.proxy = processes.spawn(
                "proxy",
                [sys.executable, "-m", "sharedcore_testbed.proxy", str(self.directory)],
                self.directory / "proxy.log",
            )
            for link in current.links:
                keys = pki.PlanePki(planes.plane_dir(self.directory, link.target) / "pki")
                server = f"https://127.0.0.1:{link.port}"
                planes.write_yaml(
                    planes.peer_kubeconfig_path(self.directory, link.source, link.target),
                    planes.kubeconfig(link.target, server, keys),
                )
        self._await_proxy(current)

    def _await_proxy(self, current: TestbedState) -> None:
        ack = self.directory / proxy.ACK_FILE
        deadline = time.monotonic() + PROXY_ACK_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if int(ack.read_text()) >= current.generation:
                    return
            assert current.proxy is not None
            if not processes.alive(current.proxy):
                raise PlaneError(f"link proxy exited:\n{processes.log_tail(current.proxy)}")
            time.sleep(0.02)
        raise PlaneError(f"link proxy did not apply generation {current.generation} in {PROXY_ACK_TIMEOUT}s")

    def down(self) -> None:
        """Stop every process the testbed started; the directory keeps logs and data for a post-mortem."""
        current = self._load()
        if current.proxy:
            processes.terminate(current.proxy, grace=2)
        for plane in current.planes.values():
            planes.stop(plane)

    # --- faults ----------------------------------------------------------------------------------------

    def stop(self, name: str) -> None:
        """Kill a site's processes, as in a site outage; its etcd data stays for `start`."""
        with self._editing() as current:
            planes.stop(self._plane(current, name))

    def start(self, name: str) -> None:
        """Bring a stopped site back with the same ports and etcd data."""
        with self._editing() as current:
            planes.start(self.directory, self._plane(current, name))

    def pause(self, name: str) -> None:
        """SIGSTOP a site: it holds connections but answers nothing (a hung site, not a dead one)."""
        self._signal(name, signal.SIGSTOP, paused=True)

    def resume(self, name: str) -> None:
        self._signal(name, signal.SIGCONT, paused=False)

    def _signal(self, name: str, sig: signal.Signals, paused: bool) -> None:
        with self._editing() as current:
            plane = self._plane(current, name)
            for record in plane.processes.values():
                processes.signal_group(record, sig)
            plane.paused = paused

    def partition(self, a: str, b: str, one_way: bool = False) -> None:
        """Cut the link a -> b (and b -> a unless one_way): connections that side opens go nowhere."""
        self._set_links([(a, b)] if one_way else [(a, b), (b, a)], blocked=True)

    def heal(self, a: str, b: str) -> None:
        self._set_links([(a, b), (b, a)], blocked=False)

    def _set_links(self, pairs: list[tuple[str, str]], blocked: bool) -> None:
        with self._editing() as current:
            for source, target in pairs:
                current.link(source, target).blocked = blocked
            current.generation += 1
        if current.proxy is None:
            raise PlaneError("the testbed is not up")
        processes.signal_group(current.proxy, signal.SIGHUP)
        self._await_proxy(current)

    # --- inspection ------------------------------------------------------------------------------------

    def sites(self) -> list[str]:
        return list(self._load().planes)

    def kubeconfig(self, name: str) -> Path:
        self._plane(self._load(), name)
        return planes.kubeconfig_path(self.directory, name)

    def peer_kubeconfig(self, site: str, peer: str) -> Path:
        """How `site` reaches `peer`: through the link proxy, so partitions apply."""
        return planes.peer_kubeconfig_path(self.directory, site, peer)

    def get(self, name: str, path: str) -> bytes:
        return planes.request(self.directory, self._plane(self._load(), name), path)

    def status(self) -> list[PlaneStatus]:
        current = self._load()
        return [
            PlaneStatus(
                name=plane.name,
                apiserver_port=plane.apiserver_port,
                etcd_port=plane.etcd_client_port,
                workloads=plane.workloads,
                processes=planes.process_states(plane),
                unreachable=tuple(
                    link.target for link in current.links if link.source == plane.name and link.blocked
                ),
            )
            for plane in current.planes.values()
        ]

    def pids(self) -> list[int]:
        """Every pid the testbed recorded that is still alive (for the 'nothing left behind' check)."""
        current = self._load()
        records = [r for plane in current.planes.values() for r in plane.processes.values()]
        records += [current.proxy] if current.proxy else []
        return [record.pid for record in records if processes.alive(record)]
