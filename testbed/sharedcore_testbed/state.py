"""The testbed's persisted state: DIR/testbed.json, so every CLI call (and the tests) sees the same planes."""

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "testbed.json"


@dataclass
class ProcessRecord:
    name: str
    pid: int
    # The kernel's start time of the pid (/proc/PID/stat field 22): tells our process from a reused pid.
    start_ticks: int
    argv: list[str]
    log: str


@dataclass
class PlaneState:
    name: str
    etcd_client_port: int
    etcd_peer_port: int
    apiserver_port: int
    workloads: bool
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    paused: bool = False
    # Where its apiserver listens: loopback, or for a site with a real node the host end of the site's link.
    address: str = "127.0.0.1"
    # A site with a real node: its index in the testbed's address plan (sharedcore_testbed.network).
    node_index: int | None = None
    node_count: int = 0
    service_cidr: str = "10.96.0.0/16"
    # A real site's Prometheus (sharedcore_testbed.prometheus): where it listens, beside its apiserver, and
    # where its pod discovery listens (on loopback).
    prometheus_port: int | None = None
    discovery_port: int | None = None


@dataclass
class LinkState:
    """A directed link: connections that `source` opens to `target` pass through a proxy on `port`."""

    source: str
    target: str
    port: int
    blocked: bool = False
    # A degraded WAN rather than a cut one: delay added to each direction, and the share of segments lost.
    delay_ms: int = 0
    loss: float = 0.0
    # Where the proxy listens: the source's apiserver address, so pods of a real site reach it too.
    bind: str = "127.0.0.1"
    # Where it leads when the target is not a plane (the city DNS): otherwise the target's apiserver.
    target_address: str | None = None
    target_port: int | None = None


@dataclass
class CityState:
    """The city DNS (sharedcore_testbed.citydns): its address, its etcd's ports, its processes, and the
    metrics port of each site's ExternalDNS."""

    address: str
    etcd_client_port: int
    etcd_peer_port: int
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)


@dataclass
class TestbedState:
    planes: dict[str, PlaneState] = field(default_factory=dict)
    links: list[LinkState] = field(default_factory=list)
    proxy: ProcessRecord | None = None
    # Bumped on every partition change; the proxy acknowledges the generation it has applied.
    generation: int = 0
    # The network slot of a testbed with real nodes (sharedcore_testbed.network).
    slot: int | None = None
    city: CityState | None = None

    def link(self, source: str, target: str) -> LinkState:
        return self.links_between(source, target)[0]

    def links_between(self, source: str, target: str) -> list[LinkState]:
        """The links from `source` to `target` (two to the city DNS: its etcd and its DNS port)."""
        found = [link for link in self.links if (link.source, link.target) == (source, target)]
        if not found:
            raise KeyError(f"no link {source} -> {target}")
        return found


def load(directory: Path) -> TestbedState:
    path = directory / STATE_FILE
    if not path.exists():
        return TestbedState()
    raw = json.loads(path.read_text())
    planes = {
        name: PlaneState(
            **{**plane, "processes": {k: ProcessRecord(**v) for k, v in plane["processes"].items()}}
        )
        for name, plane in raw["planes"].items()
    }
    proxy = ProcessRecord(**raw["proxy"]) if raw.get("proxy") else None
    links = [LinkState(**link) for link in raw["links"]]
    city = raw.get("city")
    if city:
        city = CityState(
            **{**city, "processes": {k: ProcessRecord(**v) for k, v in city["processes"].items()}}
        )
    return TestbedState(planes, links, proxy, raw["generation"], raw.get("slot"), city)


def save(directory: Path, state: TestbedState) -> None:
    """Write atomically: the proxy daemon may read the file at any moment."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(asdict(state), indent=2, sort_keys=True))
    os.replace(tmp, directory / STATE_FILE)
