"""The city DNS on real sites: ExternalDNS at each site publishing sharedcore's DNSEndpoints into the city's
authoritative server, and clients finding the active site through it.

One pair on the real-node sites serves every check, in order: the host resolves to danang; a partition
between danang and the city DNS is reported and moves nothing; danang is stopped, quangnam fails over by
itself, its Redirect step waits for the city DNS to answer with quangnam, danang's record is gone from the
city DNS, and a citizen's prober sees the switch about a TTL after sharedcore does; danang comes back, and a
switchover back to it never lets the city DNS answer with both sites.
"""

import datetime
import ipaddress
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubernetes import client

from sharedcore_testbed import citydns
from sharedcore_testbed import pair as two_sites
from sharedcore_testbed.prober import Prober
from tests.cluster.test_failover import automatic_failovers, ended, request
from tests.cluster.test_operator import condition, get
from tests.cluster.test_two_sites import create_active, standby_ready
from tests.conftest import Sites
from tests.support import samples
from tests.support.cluster import Site, eventually
from tests.support.operator import CRD_DIRS
from tests.support.pair import Pair, metric, opt_in, topology_condition

pytestmark = [pytest.mark.cluster, pytest.mark.nodes]

HEARTBEAT, LEASE, RESYNC = 1, 6, 4.0
TTL = 5  # the record's: short, so the prober's lag behind sharedcore stays a few seconds
VERSION = "1.0.0"  # the stand-in images' tag
VIP_PORT = 80
EVERY = 0.1  # the DNS sampler's period


@dataclass
class CityDnsPair:
    pair: Pair
    namespace: str
    host: str
    addresses: dict[str, str]  # site → its ingress address (a Service IP the host routes to)
    resolver: str  # the city DNS, as clients ask it (UDP, port 53)


def ingress_address(site: Site) -> str:
    """An address of the site's Service range, which the host routes into the site: where its ingress
    controller's load balancer would answer."""
    network = ipaddress.ip_network(site.bed.service_cidr(site.name))
    return str(network[250])


def ingress_vip(site: Site, namespace: str, name: str, address: str) -> None:
    """What an ingress controller's load balancer gives: a fixed address answering for the web front end."""
    body = client.V1Service(
        metadata=client.V1ObjectMeta(name="ingress-vip", namespace=namespace),
        spec=client.V1ServiceSpec(
            cluster_ip=address,
            selector={
                "app.kubernetes.io/name": "open-data",
                "app.kubernetes.io/instance": name,
                "app.kubernetes.io/component": "portal",
            },
            ports=[client.V1ServicePort(port=VIP_PORT, target_port=5000, protocol="TCP")],
        ),
    )
    site.core.create_namespaced_service(namespace, body)


def answers(resolver: str, host: str) -> list[str]:
    return citydns.resolve(host, server=resolver)


class DnsSampler:
    """What the city DNS answers for `host`, every 100 ms, in the background."""

    def __init__(self, resolver: str, host: str) -> None:
        self.resolver, self.host = resolver, host
        self.samples: list[tuple[float, list[str] | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic()
            try:
                self.samples.append((at, answers(self.resolver, self.host)))
            except OSError:
                self.samples.append((at, None))
            self._stop.wait(max(EVERY - (time.monotonic() - at), 0))

    def __enter__(self) -> "DnsSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def tally(self) -> str:
        """How often each answer came, in the order first seen (for a failure's message)."""
        counts: dict[str, int] = {}
        for _, found in self.samples:
            counts[str(found)] = counts.get(str(found), 0) + 1
        return ", ".join(f"{answer}: {count}" for answer, count in counts.items())

    def first(self, address: str) -> float | None:
        return next((at for at, found in self.samples if found == [address]), None)


@pytest.fixture(scope="module")
def city(real_sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CityDnsPair]:
    """Both operators (Automatic mode, 6 s lease) naming the city DNS in their Topology, and an open-data
    service created at danang with a 5 s record TTL, served at each site behind its ingress address."""
    bed = real_sites.bed
    assert bed.city_dns() is not None, "the real-node sites run the city DNS"
    addresses = {site.name: ingress_address(site) for site in (real_sites.danang, real_sites.quangnam)}
    prepared = two_sites.prepare_pair(
        real_sites.danang,
        real_sites.quangnam,
        real_sites.witness,
        tmp_path_factory.mktemp("city-dns"),
        crds=CRD_DIRS,
        topology=two_sites.topology(mode="Automatic", heartbeat=HEARTBEAT, lease=LEASE, addresses=addresses),
        resync=RESYNC,
    )
    namespace = f"t-dns-{uuid.uuid4().hex[:6]}"
    name = "opendata"
    body = samples.service(
        "open-data",
        namespace,
        version=VERSION,
        replicas=1,
        standby={"mode": "Warm"},
        database={"enabled": False},
        files={"enabled": False},
        ingress={"host": f"opendata-{namespace}.danang.gov.vn", "ttlSeconds": TTL},
        objectives={"rpoSeconds": 60, "rtoSeconds": 60},
    )
    with prepared.running() as pair:
        for site in pair.sites:
            opt_in(site, namespace)
            ingress_vip(site, namespace, name, addresses[site.name])
        create_active(pair.danang, body)
        standby_ready(pair.quangnam, namespace, name, timeout=180)
        city = bed.city_dns()
        assert city is not None
        try:
            yield CityDnsPair(pair, namespace, body["spec"]["ingress"]["host"], addresses, city.address)
        finally:
            # A check that failed with danang stopped must not leave the later modules without it.
            states = next(s.processes for s in bed.status() if s.name == "danang")
            if "exited" in states.values():
                bed.start("danang")


def records_for(city: CityDnsPair, address: str) -> list[str]:
    """Keys of the city's etcd that hold `address`: what is stored, not only what is served."""
    state = city.pair.danang.bed.city_dns()
    assert state is not None
    return [key for key, value in citydns.records(state).items() if f'"{address}"' in value]


def test_the_host_resolves_to_the_active_site_with_the_services_ttl(city: CityDnsPair) -> None:
    danang = city.addresses["danang"]
    eventually(lambda: answers(city.resolver, city.host) == [danang], timeout=60, message="danang published")
    answer = citydns.query(city.resolver, city.host)
    assert answer.ttl == TTL, answer
    prober = Prober(city.host, city.resolver)
    eventually(lambda: prober.attempt().site == "danang", timeout=60, message="danang's front end answers")


def test_a_partition_between_danang_and_the_city_dns_is_reported_and_moves_nothing(city: CityDnsPair) -> None:
    pair = city.pair
    bed = pair.danang.bed
    roles = {site.name: get(site, city.namespace, "opendata")["status"]["role"] for site in pair.sites}
    bed.partition("danang", citydns.CITY)
    try:
        reported = eventually(
            lambda: (
                topology_condition(pair.danang, "CityDNSReachable").get("status") == "False"
                and topology_condition(pair.danang, "CityDNSReachable")
            ),
            timeout=30,
            message="danang reports the city DNS unreachable",
        )
        server = bed.city_dns_server("danang")
        assert server in reported["message"], reported
        assert metric(pair.operators["danang"], "sharedcore_city_dns_reachable", server=server) == 0
        assert topology_condition(pair.quangnam, "CityDNSReachable").get("status") == "True"
        time.sleep(LEASE + 2)  # longer than a lease: had anything been going to move, it would have
        for site in pair.sites:
            assert get(site, city.namespace, "opendata")["status"]["role"] == roles[site.name]
        assert not automatic_failovers(pair.quangnam)
        still = [city.addresses["danang"]]
        eventually(lambda: answers(city.resolver, city.host) == still, timeout=10, message="danang's")
    finally:
        bed.heal("danang", citydns.CITY)
    eventually(
        lambda: topology_condition(pair.danang, "CityDNSReachable").get("status") == "True",
        timeout=30,
        message="danang reaches the city DNS again",
    )


def test_danang_lost_quangnam_takes_over_its_name_and_the_prober_follows_a_ttl_later(
    city: CityDnsPair,
) -> None:
    pair = city.pair
    danang, quangnam = city.addresses["danang"], city.addresses["quangnam"]
    eventually(lambda: answers(city.resolver, city.host) == [danang], timeout=30, message="danang's")
    with DnsSampler(city.resolver, city.host) as dns, Prober(city.host, city.resolver) as prober:
        eventually(
            lambda: prober.first_success("danang") is not None, timeout=30, message="prober sees danang"
        )
        stopped = time.monotonic()
        pair.operators["danang"].stop(signal.SIGKILL)
        pair.danang.stop()  # its ExternalDNS too: nobody is left at danang to withdraw its record
        name = eventually(lambda: next(iter(automatic_failovers(pair.quangnam)), None), timeout=60)
        status = ended(pair.quangnam, name, timeout=90)
        eventually(
            lambda: prober.first_success("quangnam", stopped), timeout=TTL + 30, message="prober at quangnam"
        )
    assert status["phase"] == "Succeeded", status
    redirect = next(step for step in status["steps"] if step["name"] == "Redirect")
    assert "city DNS" in redirect["message"], redirect
    switched = dns.first(quangnam)
    assert switched is not None
    # Redirect ended only once the city DNS answered with quangnam (the sampler saw it by then, give or take
    # one 100 ms sample and the clocks' difference).
    redirect_end = _monotonic(redirect["completionTime"])
    assert switched <= redirect_end + 2 * EVERY + 1.0, (switched, redirect_end)
    assert all(found != sorted([danang, quangnam]) for _, found in dns.samples)
    # danang's record is gone, from the server's answers and from its store, though danang never withdrew it
    # (asked until answered: a loaded city etcd makes the server fail a question now and then).
    eventually(lambda: answers(city.resolver, city.host) == [quangnam], timeout=10, message="quangnam's")
    assert records_for(city, danang) == []
    citizen = prober.rto("danang", "quangnam", stopped)
    first_at_quangnam = prober.first_success("quangnam", stopped)
    assert citizen is not None and first_at_quangnam is not None
    print(
        f"RTO: sharedcore recorded {status['rtoSeconds']}s; the prober saw {citizen:.1f}s "
        f"(city DNS switched {switched - stopped:.1f}s after the stop, the prober's first answer from "
        f"quangnam {first_at_quangnam - switched:.1f}s later; TTL {TTL}s)"
    )
    # The citizen's lag behind the city DNS is the cached answer: at most a TTL, plus one probe.
    assert first_at_quangnam - switched <= TTL + 1.5


def _monotonic(timestamp: str) -> float:
    """A status timestamp (wall clock) on this process's monotonic clock."""
    at = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return time.monotonic() - (datetime.datetime.now(datetime.UTC) - at).total_seconds()


def test_danang_back_a_switchover_never_lets_the_city_dns_answer_with_both_sites(city: CityDnsPair) -> None:
    pair = city.pair
    danang, quangnam = city.addresses["danang"], city.addresses["quangnam"]
    pair.danang.start()
    pair.operators["danang"].start()
    pair.operators["danang"].wait_ready(timeout=120)
    standby_ready(pair.danang, city.namespace, "opendata", timeout=180)
    with DnsSampler(city.resolver, city.host) as dns:
        name = request(pair.danang, "danang", "Switchover")
        status = ended(pair.danang, name, timeout=120)
    assert status["phase"] == "Succeeded", status
    assert dns.first(danang) is not None, f"the city DNS never answered with danang: {dns.tally()}"
    both = [found for _, found in dns.samples if found and len(found) > 1]
    assert not both, f"{len(both)} of {len(dns.samples)} answers list both sites: {both[0]}"
    eventually(lambda: answers(city.resolver, city.host) == [danang], timeout=10, message="danang's")
    assert records_for(city, quangnam) == []
    assert condition(get(pair.danang, city.namespace, "opendata"), "Ready").get("status") == "True"
