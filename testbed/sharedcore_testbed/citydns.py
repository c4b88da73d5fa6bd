"""The city's DNS on the testbed: the authoritative server for the services' public names, outside both sites
(like the witness), which each site's ExternalDNS updates and every client asks.

- **The server**: CoreDNS (the testbed's own build) with its etcd plugin, serving every name from an etcd of
  its own, on port 53 of a loopback address of its own (`DIR/dns/resolv.conf` names it). It has no
  forwarder: a name it does not hold is NXDOMAIN, so no question ever leaves the machine.
- **ExternalDNS** v0.19 (built from its Go module) beside each workload site's plane, as the site's own
  process (stopped, paused and restarted with the site): `--source=crd` reads sharedcore's DNSEndpoints at
  the site, `--provider=coredns` writes them into the city's etcd, and nothing else is configured, so no
  provider can call out. Ownership is the pair's (`--registry=txt --txt-owner-id=sharedcore`, the same at
  both sites) and the policy is upsert-only: the site that becomes active replaces the other's record,
  also when that site is dead and cannot withdraw it, and a standby or fenced site never deletes a record
  (README, "The city DNS").
- **Links**: a site reaches the city's etcd (its ExternalDNS) and the server's TCP port (its operator's
  questions, `Topology.spec.dns.servers`) through the testbed's link proxy, so `partition SITE city` cuts
  both, as a broken link between a data center and the city's DNS would.
"""

import base64
import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sharedcore.citydns import QTYPE_A, decode_response, encode_query
from sharedcore_testbed import processes
from sharedcore_testbed.binaries import binary
from sharedcore_testbed.plane import PlaneError, kubeconfig_path
from sharedcore_testbed.state import CityState, LinkState, PlaneState, ProcessRecord

CITY = "city"  # its name in links and partitions
OWNER = "sharedcore"  # ExternalDNS's TXT owner: the pair's, at both sites
PATH = "/skydns"
CRD = "externaldns-dnsendpoints.yaml"  # ExternalDNS's own CRD, copied from its module by testbed-bin.sh
CRD_NAME = "dnsendpoints.externaldns.k8s.io"
SYNC_SECONDS = 1  # ExternalDNS's --interval: the testbed's clients should not wait a minute
READY_TIMEOUT = 30.0
LOOPBACK_CANDIDATES = [f"127.53.{third}.{fourth}" for third in range(4) for fourth in range(1, 255)]


def directory(root: Path) -> Path:
    return root / "dns"


def resolv_conf(root: Path) -> Path:
    return directory(root) / "resolv.conf"


def free_address() -> str:
    """A loopback address whose port 53 nobody uses (each testbed gets its own server)."""
    for address in LOOPBACK_CANDIDATES:
        with contextlib.ExitStack() as stack:
            try:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    stack.enter_context(socket.socket(socket.AF_INET, kind)).bind((address, 53))
            except OSError:
                continue
            return address
    raise PlaneError("no loopback address with a free port 53 for the city DNS")


def links(sites: list[PlaneState], city: CityState, ports: Iterator[int]) -> list[LinkState]:
    """Per workload site: a link to the city's etcd, then one to its DNS port (TCP)."""
    found = []
    for site in sites:
        found.append(
            LinkState(site.name, CITY, next(ports), bind=site.address, target_port=city.etcd_client_port)
        )
        found.append(
            LinkState(
                site.name, CITY, next(ports), bind=site.address, target_address=city.address, target_port=53
            )
        )
    return found


def _etcd_link(all_links: list[LinkState], site: str) -> LinkState:
    return next(link for link in all_links if (link.source, link.target) == (site, CITY))


def server_for(all_links: list[LinkState], site: str) -> str:
    """The city DNS as `site` reaches it (through its link): what its Topology's spec.dns.servers names."""
    link = [link for link in all_links if (link.source, link.target) == (site, CITY)][1]
    return f"{link.bind}:{link.port}"


def _corefile(city: CityState) -> str:
    return (
        ".:53 {\n"
        f"    bind {city.address}\n"
        f"    etcd {{\n        path {PATH}\n"
        f"        endpoint http://127.0.0.1:{city.etcd_client_port}\n    }}\n"
        "    errors\n"
        "}\n"
    )


def _start(root: Path, city: CityState, name: str, argv: list[str]) -> None:
    record = city.processes.get(name)
    if record and processes.alive(record):
        return
    city.processes[name] = processes.spawn(name, argv, directory(root) / "logs" / f"{name}.log")


def _wait(record: ProcessRecord, probe: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not processes.alive(record):
            raise PlaneError(f"city DNS: {record.name} exited:\n{processes.log_tail(record)}")
        with contextlib.suppress(OSError, ValueError):
            if probe():
                return
        time.sleep(0.1)
    raise PlaneError(f"city DNS: {what} not ready in {READY_TIMEOUT:.0f}s:\n{processes.log_tail(record)}")


def _etcd_healthy(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")

    return probe


def _answers(address: str) -> Callable[[], bool]:
    def probe() -> bool:
        query(address, "ready.city.test", timeout=1.0)
        return True

    return probe


def start(root: Path, city: CityState) -> None:
    """The city's etcd and DNS server (again, with the same data, after `down`… `up`)."""
    etcd_dir = directory(root) / "etcd"
    peer, client = f"http://127.0.0.1:{city.etcd_peer_port}", f"http://127.0.0.1:{city.etcd_client_port}"
    _start(
        root,
        city,
        "etcd",
        [
            str(binary("etcd")),
            f"--name={CITY}",
            f"--data-dir={etcd_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={CITY}={peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
    )
    _wait(city.processes["etcd"], _etcd_healthy(city.etcd_client_port), "etcd")
    corefile = directory(root) / "Corefile"
    corefile.write_text(_corefile(city))
    _start(root, city, "coredns", [str(binary("coredns")), "-conf", str(corefile)])
    _wait(city.processes["coredns"], _answers(city.address), "CoreDNS")
    resolv_conf(root).write_text(
        f"# The testbed's city DNS (authoritative for the services' public names; nothing else)\n"
        f"nameserver {city.address}\noptions timeout:1 attempts:1\n"
    )


def stop(city: CityState) -> None:
    for name in reversed(list(city.processes)):
        processes.terminate(city.processes[name], grace=2)


def install_crd(kubeconfig: Path) -> None:
    """ExternalDNS's own DNSEndpoint CRD (of the version built), Established before ExternalDNS watches it."""
    kubectl = [str(binary("kubectl")), f"--kubeconfig={kubeconfig}"]
    subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(binary(CRD))],
        check=True,
        capture_output=True,
    )
    established = '{.status.conditions[?(@.type=="Established")].status}'
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        status = subprocess.run(
            [*kubectl, "get", "crd", CRD_NAME, "-o", f"jsonpath={established}"],
            check=False,
            capture_output=True,
            text=True,
        )
        if status.stdout.strip() == "True":
            return
        time.sleep(0.2)
    raise PlaneError(f"{CRD_NAME} not Established in {READY_TIMEOUT:.0f}s")


def external_dns_argv(root: Path, site: PlaneState, metrics_port: int) -> list[str]:
    return [
        str(binary("external-dns")),
        f"--kubeconfig={kubeconfig_path(root, site.name)}",
        "--source=crd",
        "--crd-source-apiversion=externaldns.k8s.io/v1alpha1",
        "--crd-source-kind=DNSEndpoint",
        "--provider=coredns",
        f"--coredns-prefix={PATH}/",
        "--registry=txt",
        f"--txt-owner-id={OWNER}",
        "--policy=upsert-only",
        f"--interval={SYNC_SECONDS}s",
        "--events",
        "--min-event-sync-interval=1s",
        f"--metrics-address=127.0.0.1:{metrics_port}",
        "--log-level=info",
    ]


def start_external_dns(root: Path, site: PlaneState, all_links: list[LinkState], metrics_port: int) -> None:
    """The site's ExternalDNS, one of the site's own processes (so `stop SITE` kills it), restarted a second
    after it exits, as its Deployment would restart it: it exits when the city's etcd does not answer in
    time (a partition)."""
    record = site.processes.get("external-dns")
    if record and processes.alive(record):
        return
    etcd = _etcd_link(all_links, site.name)
    log = root / site.name / "logs" / "external-dns.log"
    site.processes["external-dns"] = processes.spawn(
        "external-dns",
        [
            "sh",
            "-c",
            'while :; do "$@"; sleep 1; done',
            "external-dns",
            *external_dns_argv(root, site, metrics_port),
        ],
        log,
        env={"ETCD_URLS": f"http://{etcd.bind}:{etcd.port}"},
    )


def query(server: str, name: str, qtype: int = QTYPE_A, timeout: float = 2.0, port: int = 53) -> "Result":
    """One question over UDP, as a stub resolver asks (raises OSError on timeout)."""
    query_id = int.from_bytes(os.urandom(2), "big")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(encode_query(name, qtype, query_id), (server, port))
        message, _ = sock.recvfrom(4096)
    answer = decode_response(message, query_id)
    return Result(sorted(answer.addresses), answer.ttl, answer.rcode)


@dataclass(frozen=True)
class Result:
    addresses: list[str]
    ttl: int | None
    rcode: str


def nameserver(resolv: Path) -> str:
    """The address a resolv.conf names first."""
    for line in resolv.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            return parts[1]
    raise ValueError(f"{resolv} names no nameserver")


def resolve(host: str, resolv: Path | None = None, server: str | None = None) -> list[str]:
    """The addresses the city DNS gives for `host` (the writer's and the prober's way to find the active
    site): `server`, or the one `resolv` (a testbed's DIR/dns/resolv.conf) names; [] for no record."""
    if server is None:
        if resolv is None:
            raise ValueError("give the city DNS server or the testbed's resolv.conf")
        server = nameserver(resolv)
    return query(server, host).addresses


def records(city: CityState) -> dict[str, str]:
    """Every record the city's etcd holds (key → value): what is stored, beside what is served."""
    body = {"key": _b64(PATH), "range_end": _b64(PATH[:-1] + chr(ord(PATH[-1]) + 1))}
    request = urllib.request.Request(
        f"http://127.0.0.1:{city.etcd_client_port}/v3/kv/range", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        kvs = json.loads(response.read()).get("kvs") or []
    return {_unb64(kv["key"]): _unb64(kv.get("value", "")) for kv in kvs}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()
