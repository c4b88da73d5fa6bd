"""Real Kubernetes control planes as local processes: several independent sites, with fault injection.

`Testbed(DIR)` drives the planes recorded in DIR/testbed.json; the `sharedcore-testbed` CLI, the pytest
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

from sharedcore_testbed import citydns, network, node, pki, processes, prometheus, proxy
from sharedcore_testbed import plane as planes
from sharedcore_testbed import state as testbed_state
from sharedcore_testbed.plane import PlaneError
from sharedcore_testbed.state import CityState, LinkState, PlaneState, TestbedState

__all__ = ["PlaneError", "PlaneStatus", "Testbed"]

PROXY_ACK_TIMEOUT = 10.0


@dataclass(frozen=True)
class PlaneStatus:
    name: str
    address: str
    apiserver_port: int
    etcd_port: int
    workloads: bool
    nodes: str  # real, kwok or none
    processes: dict[str, str]
    unreachable: tuple[str, ...]  # sites this one cannot open connections to
    slow: tuple[str, ...]  # sites it reaches over a degraded link, each with the link's delay and loss


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

    def up(
        self,
        names: Sequence[str],
        workloads: Collection[str] = (),
        real: Collection[str] = (),
        node_count: int = 1,
        *,
        monitored: bool = False,
        city_dns: bool = False,
    ) -> None:
        """Start one plane per name, one after another (2 cores), then the link proxies. Replaces any
        testbed already in the directory.

        `workloads`: sites whose pods run, by kwok on fake nodes; `real`: sites whose pods run for real, on a
        node beside the plane (`node_count` of them), each site in its own network namespace
        (sharedcore_testbed.network); `monitored`: each real site also runs a Prometheus scraping
        CloudNativePG's instances (sharedcore_testbed.prometheus); `city_dns`: the city's DNS server, and
        ExternalDNS at every site with workloads (sharedcore_testbed.citydns; as root: it listens on port
        53)."""
        if len(set(names)) != len(names) or not names:
            raise ValueError("give one or more distinct site names")
        if not 1 <= node_count <= network.MAX_NODES:
            raise ValueError(f"a site has 1 to {network.MAX_NODES} nodes")
        self.down()
        if real:
            # The images and the containerd root holding them are made (or found) first: that is not a node's
            # start (it must not eat into the time nodes have to become Ready), and it must not come between
            # choosing a free network slot and taking it (another testbed may start meanwhile).
            node.template_root()
        with_workloads = [name for name in names if name in workloads or name in real]
        city_ports = 2 + 3 * len(with_workloads) if city_dns else 0
        ports = iter(_free_ports(5 * len(names) + len(names) * (len(names) - 1) + city_ports))
        current = TestbedState()
        for name in names:
            current.planes[name] = PlaneState(
                name, next(ports), next(ports), next(ports), name in workloads or name in real
            )
        real_sites = [name for name in names if name in real]
        if real_sites:
            current.slot = network.free_slot()
            for index, name in enumerate(real_sites):
                net = network.SiteNet(current.slot, index, name, node_count)
                plane = current.planes[name]
                plane.node_index, plane.node_count = index, node_count
                plane.address, plane.service_cidr = net.host_ip, net.service_cidr
                if monitored:
                    plane.prometheus_port, plane.discovery_port = next(ports), next(ports)
        current.links = [
            LinkState(a, b, next(ports), bind=current.planes[a].address)
            for a in names
            for b in names
            if a != b
        ]
        if city_dns:
            city = CityState(citydns.free_address(), next(ports), next(ports))
            city.metrics_ports = {name: next(ports) for name in with_workloads}
            current.city = city
            current.links += citydns.links([current.planes[name] for name in with_workloads], city, ports)
        testbed_state.save(self.directory, current)
        try:
            self._create_network(current)
            for name in names:
                with self._editing() as editing:
                    self._start_site(editing, name, prepare=True)
            self._start_proxy()
            if city_dns:
                self._start_city(with_workloads)
        except BaseException:
            self.down()
            raise

    def _nets(self, current: TestbedState) -> dict[str, network.SiteNet]:
        """The real sites' network plans."""
        if current.slot is None:
            return {}
        return {
            plane.name: network.SiteNet(current.slot, plane.node_index, plane.name, plane.node_count)
            for plane in current.planes.values()
            if plane.node_index is not None
        }

    def _create_network(self, current: TestbedState) -> None:
        nets = self._nets(current)
        if current.slot is None:
            return
        network.create_wan(current.slot)
        for name, net in nets.items():
            network.create_site(net, [peer for peer_name, peer in nets.items() if peer_name != name])

    def _start_site(self, current: TestbedState, name: str, prepare: bool = False) -> None:
        plane = current.planes[name]
        nets = self._nets(current)
        if prepare:
            addresses = sorted({p.address for p in current.planes.values()} - {"127.0.0.1"})
            if name in nets:
                addresses.append(nets[name].kubernetes_service_ip)
            planes.prepare(self.directory, plane, tuple(addresses))
            if name in nets:
                node.prepare(self.directory, plane, nets[name], [n for s, n in nets.items() if s != name])
            if plane.prometheus_port is not None:
                prometheus.prepare(self.directory, plane)
        planes.start(self.directory, plane)
        if name in nets:
            deadline = time.monotonic() + planes.READY_TIMEOUT
            node.start(self.directory, plane, nets[name], deadline)
            if plane.prometheus_port is not None:
                prometheus.start(self.directory, plane, deadline)
        if not prepare:  # at `up`, once the city DNS and the link proxies are there
            self._start_external_dns(current, name)

    def _start_city(self, sites: list[str]) -> None:
        """The city DNS, ExternalDNS's CRD at each site, then each site's ExternalDNS."""
        with self._editing() as current:
            assert current.city is not None
            citydns.start(self.directory, current.city)
            for name in sites:
                citydns.install_crd(planes.kubeconfig_path(self.directory, name))
                self._start_external_dns(current, name)

    def _start_external_dns(self, current: TestbedState, name: str) -> None:
        city = current.city
        if city is not None and name in city.metrics_ports:
            plane = current.planes[name]
            citydns.start_external_dns(self.directory, plane, current.links, city.metrics_ports[name])

    def _stop_site(self, current: TestbedState, name: str) -> None:
        plane = current.planes[name]
        net = self._nets(current).get(name)
        if net:
            node.stop(self.directory, plane, net)
        planes.stop(plane)

    def _start_proxy(self) -> None:
        with self._editing() as current:
            (self.directory / proxy.ACK_FILE).unlink(missing_ok=True)
            current.proxy = processes.spawn(
                "proxy",
                [sys.executable, "-m", "sharedcore_testbed.proxy", str(self.directory)],
                self.directory / "proxy.log",
            )
            for link in current.links:
                if link.target_port is not None:  # to the city DNS: no kubeconfig
                    continue
                keys = pki.PlanePki(planes.plane_dir(self.directory, link.target) / "pki")
                server = f"https://{link.bind}:{link.port}"
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
        """Stop every process the testbed started; remove its network namespaces, links, cgroups and mounts.

        The directory keeps logs and data for a post-mortem."""
        current = self._load()
        if current.proxy:
            processes.terminate(current.proxy, grace=2)
        for name in current.planes:
            self._stop_site(current, name)
        if current.city:
            citydns.stop(current.city)
        for net in self._nets(current).values():
            node.remove_cgroups(net)
        if current.slot is not None:
            network.delete(current.slot)
        node.unmount_under(self.directory)

    def leftovers(self) -> list[str]:
        """What `down` should have removed but is still there: processes, mounts, namespaces, links…"""
        current = self._load()
        found = [f"process {pid}" for pid in self.pids()]
        found += [f"mount {mount}" for mount in node.leftover_mounts(self.directory)]
        for net in self._nets(current).values():
            found += [f"cgroup {group}" for group in node.leftover_cgroups(net)]
        if current.slot is not None:
            found += network.leftovers(current.slot)
        return found

    # --- faults ----------------------------------------------------------------------------------------

    def stop(self, name: str) -> None:
        """Kill a site's processes, as in a site outage; its etcd data stays for `start`."""
        with self._editing() as current:
            self._plane(current, name)
            self._stop_site(current, name)

    def start(self, name: str) -> None:
        """Bring a stopped site back with the same ports and etcd data (and its node, with its volumes)."""
        with self._editing() as current:
            self._plane(current, name)
            self._start_site(current, name)

    def pause(self, name: str) -> None:
        """SIGSTOP a site: it holds connections but answers nothing (a hung site, not a dead one)."""
        self._signal(name, signal.SIGSTOP, paused=True)

    def resume(self, name: str) -> None:
        self._signal(name, signal.SIGCONT, paused=False)

    def _signal(self, name: str, sig: signal.Signals, paused: bool) -> None:
        with self._editing() as current:
            plane = self._plane(current, name)
            net = self._nets(current).get(name)
            if net:  # containers and shims too: the node's whole cgroup
                node.freeze(net, paused)
            for record in plane.processes.values():
                processes.signal_group(record, sig)
            plane.paused = paused

    def partition(self, a: str, b: str, one_way: bool = False) -> None:
        """Cut the link a -> b (and b -> a unless one_way): connections that side opens go nowhere."""
        self._set_links([(a, b)] if one_way else [(a, b), (b, a)], blocked=True)

    def slow(self, a: str, b: str, delay_ms: int, loss: float = 0.0, one_way: bool = False) -> None:
        """Degrade the link a -> b (and b -> a unless one_way): `delay_ms` added to each direction of every
        connection, `loss` (0 to 1) of its segments lost and retransmitted. The API links only: between real
        sites the data plane stays as it is."""
        if delay_ms < 0 or not 0 <= loss < 1:
            raise ValueError("a delay of 0 ms or more, and a loss from 0 to below 1")
        self._set_links([(a, b)] if one_way else [(a, b), (b, a)], delay_ms=delay_ms, loss=loss)

    def heal(self, a: str, b: str) -> None:
        """Restore the link between a and b, both ways: neither cut nor slow."""
        self._set_links([(a, b), (b, a)], blocked=False, delay_ms=0, loss=0.0)

    def _set_links(
        self,
        pairs: list[tuple[str, str]],
        blocked: bool | None = None,
        delay_ms: int | None = None,
        loss: float | None = None,
    ) -> None:
        with self._editing() as current:
            nets = self._nets(current)
            for source, target in pairs:
                if source == citydns.CITY:  # the city DNS opens no connections: only the sites' links to it
                    continue
                for link in current.links_between(source, target):
                    link.delay_ms = link.delay_ms if delay_ms is None else delay_ms
                    link.loss = link.loss if loss is None else loss
                    if blocked is not None:
                        link.blocked = blocked
                if (
                    blocked is not None and source in nets and target in nets
                ):  # the data plane between real sites
                    network.set_cut(nets[source], nets[target], blocked)
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

    def service_cidr(self, name: str) -> str:
        """The site's Service range (with real nodes, the host routes it into the site)."""
        return self._plane(self._load(), name).service_cidr

    def city_dns(self) -> CityState | None:
        """The city DNS, if `up` started one."""
        return self._load().city

    def city_dns_server(self, site: str) -> str:
        """host:port of the city DNS as `site` reaches it (through its link, so partitions apply)."""
        return citydns.server_for(self._load().links, site)

    def peer_kubeconfig(self, site: str, peer: str) -> Path:
        """How `site` reaches `peer`: through the link proxy, so partitions apply."""
        return planes.peer_kubeconfig_path(self.directory, site, peer)

    def prometheus_url(self, name: str) -> str:
        """The Prometheus of a site started with `monitored` (give it to the operator: --prometheus-url)."""
        return prometheus.url(self._plane(self._load(), name))

    def get(self, name: str, path: str) -> bytes:
        return planes.request(self.directory, self._plane(self._load(), name), path)

    def status(self) -> list[PlaneStatus]:
        current = self._load()
        return [
            PlaneStatus(
                name=plane.name,
                address=plane.address,
                apiserver_port=plane.apiserver_port,
                etcd_port=plane.etcd_client_port,
                workloads=plane.workloads,
                nodes="real" if plane.node_index is not None else "kwok" if plane.workloads else "none",
                processes=planes.process_states(plane),
                unreachable=tuple(
                    link.target for link in current.links if link.source == plane.name and link.blocked
                ),
                slow=tuple(
                    f"{link.target}({link.delay_ms}ms,{link.loss:.0%})"
                    for link in current.links
                    if link.source == plane.name and (link.delay_ms or link.loss)
                ),
            )
            for plane in current.planes.values()
        ]

    def node_pids(self, name: str) -> list[int]:
        """Every process of a real site's node: its daemons, container shims and containers."""
        current = self._load()
        net = self._nets(current).get(name)
        return sorted(node.cgroup_pids(net)) if net else []

    def node_memory_kib(self, name: str) -> dict[str, int]:
        """Proportional memory of a real site's node: its daemons, and its pods with their shims."""
        return node.memory_kib(self._nets(self._load())[name])

    def pids(self) -> list[int]:
        """Every pid the testbed recorded that is still alive (for the 'nothing left behind' check)."""
        current = self._load()
        records = [r for plane in current.planes.values() for r in plane.processes.values()]
        records += [current.proxy] if current.proxy else []
        records += list(current.city.processes.values()) if current.city else []
        return [record.pid for record in records if processes.alive(record)]
