"""The real-node testbed's network: a network namespace per site, a WAN namespace between sites, nothing else.

Every testbed takes a free slot s (0-63) and with it 10.(192+s).0.0/16; site i (in the order of `up`) has

    pods      10.(192+s).(16i).0/20      node k's CNI bridge has 10.(192+s).(16i+k).0/24 (bridge address .1)
    services  10.(192+s).(128+4i).0/22   its --service-cluster-ip-range
    host link 10.(192+s).(200+i).0/28    host end .1 (its kube-apiserver binds there), node k .(2+k)
    WAN link  10.(192+s).(220+i).0/30    WAN end .1, site end .2

A site's nodes share its namespace: each has its own address, bridge, containerd and kubelet; one kube-proxy
and one CoreDNS serve them all (kube-proxy's rules are the namespace's).

The host routes only the site's pod and service ranges into the site; a site routes the other sites' ranges
into the WAN namespace and has no default route, so nothing a pod sends can leave the machine. Partitions of
the data plane are iptables rules in the WAN namespace (`conntrack --ctdir`: a one-way cut stops the
connections one side opens, as the API link proxies do; and the packets conntrack calls invalid, see
`_cut_rules`). No rule or sysctl is set in the host's namespace: deleting the namespaces takes every
interface, route and rule with them.
"""

import contextlib
import ipaddress
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

NETNS_DIR = Path("/run/netns")
SLOTS = 64
PREFIX = "sctb"
MAX_NODES = 13  # node addresses .2-.14 of the host link's /28


@dataclass(frozen=True)
class SiteNet:
    slot: int
    index: int
    site: str
    nodes: int = 1

    def _ip(self, third: int, fourth: int) -> str:
        return f"10.{192 + self.slot}.{third}.{fourth}"

    @property
    def testbed_range(self) -> str:
        return f"10.{192 + self.slot}.0.0/16"

    @property
    def pod_cidr(self) -> str:
        return f"{self._ip(16 * self.index, 0)}/20"

    def node_pod_cidr(self, node: int) -> str:
        return f"{self._ip(16 * self.index + node, 0)}/24"

    def bridge_ip(self, node: int) -> str:
        return self._ip(16 * self.index + node, 1)

    @property
    def service_cidr(self) -> str:
        return f"{self._ip(128 + 4 * self.index, 0)}/22"

    @property
    def kubernetes_service_ip(self) -> str:
        return self._ip(128 + 4 * self.index, 1)

    @property
    def host_ip(self) -> str:
        """The host end of the site's link: its kube-apiserver and its link proxies listen here."""
        return self._ip(200 + self.index, 1)

    def node_ip(self, node: int) -> str:
        return self._ip(200 + self.index, 2 + node)

    @property
    def dns_ip(self) -> str:
        """The site's cluster DNS server (and kube-proxy) listen on its first node's address."""
        return self.node_ip(0)

    @property
    def wan_ip(self) -> str:
        """The WAN namespace's end of the site's WAN link."""
        return self._ip(220 + self.index, 1)

    @property
    def wan_node_ip(self) -> str:
        """The site's address on the WAN: other sites' DNS servers ask its DNS server here."""
        return self._ip(220 + self.index, 2)

    @property
    def wan_link(self) -> str:
        return f"{self._ip(220 + self.index, 0)}/30"

    @property
    def netns(self) -> str:
        return f"{PREFIX}{self.slot}-{self.site}"

    @property
    def host_if(self) -> str:
        return f"{PREFIX}{self.slot}h{self.index}"

    @property
    def wan_if(self) -> str:
        """The site's interface in the WAN namespace."""
        return f"s{self.index}"


def wan_netns(slot: int) -> str:
    return f"{PREFIX}{slot}-wan"


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def in_netns(name: str, argv: list[str]) -> list[str]:
    """Run argv in a namespace's network only (not `ip netns exec`, which also remounts /sys)."""
    return ["nsenter", f"--net={netns_path(name)}", "--", *argv]


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


def _run_quiet(argv: list[str]) -> None:
    subprocess.run(argv, check=False, capture_output=True)


def used_slots() -> set[int]:
    names = [path.name for path in NETNS_DIR.glob(f"{PREFIX}*-*")] if NETNS_DIR.exists() else []
    return {int(name[len(PREFIX) :].split("-", 1)[0]) for name in names if name[len(PREFIX)].isdigit()}


def free_slot() -> int:
    used = used_slots()
    for slot in range(SLOTS):
        if slot not in used:
            return slot
    raise RuntimeError(f"all {SLOTS} testbed network slots are in use (ip netns list)")


def create_wan(slot: int) -> None:
    name = wan_netns(slot)
    _run(["ip", "netns", "add", name])
    _run(["ip", "-n", name, "link", "set", "lo", "up"])
    _run(in_netns(name, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))


def create_site(net: SiteNet, peers: Iterable[SiteNet]) -> None:
    """The site's namespace, its links to the host and to the WAN, and the routes between them."""
    ns, wan = net.netns, wan_netns(net.slot)
    _run(["ip", "netns", "add", ns])
    _run(["ip", "-n", ns, "link", "set", "lo", "up"])
    _run(["ip", "link", "add", net.host_if, "type", "veth", "peer", "name", "eth0", "netns", ns])
    _run(["ip", "addr", "add", f"{net.host_ip}/28", "dev", net.host_if])
    _run(["ip", "link", "set", net.host_if, "up"])
    for node in range(net.nodes):
        _run(["ip", "-n", ns, "addr", "add", f"{net.node_ip(node)}/28", "dev", "eth0"])
    _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
    for cidr in (net.pod_cidr, net.service_cidr):
        _run(["ip", "route", "add", cidr, "via", net.dns_ip, "dev", net.host_if])
    _run(["ip", "-n", wan, "link", "add", net.wan_if, "type", "veth", "peer", "name", "wan0", "netns", ns])
    _run(["ip", "-n", wan, "addr", "add", f"{net.wan_ip}/30", "dev", net.wan_if])
    _run(["ip", "-n", wan, "link", "set", net.wan_if, "up"])
    _run(["ip", "-n", ns, "addr", "add", f"{net.wan_node_ip}/30", "dev", "wan0"])
    _run(["ip", "-n", ns, "link", "set", "wan0", "up"])
    for cidr in (net.pod_cidr, net.service_cidr):
        _run(["ip", "-n", wan, "route", "add", cidr, "via", net.wan_node_ip])
    for peer in peers:
        for cidr in (peer.pod_cidr, peer.service_cidr, peer.wan_link):
            _run(["ip", "-n", ns, "route", "add", cidr, "via", net.wan_ip])
    for setting in (
        "net.ipv4.ip_forward=1",
        # Bridged pod-to-pod traffic passes kube-proxy's rules (a Service whose endpoint shares the bridge).
        "net.bridge.bridge-nf-call-iptables=1",
    ):
        _run(in_netns(ns, ["sysctl", "-qw", setting]))
    # Only the testbed's own ranges are forwarded, whatever routes a pod or a plugin might add.
    _run(in_netns(ns, ["iptables", "-w", "-A", "FORWARD", "!", "-d", net.testbed_range, "-j", "DROP"]))


def _cut_rules(source: SiteNet, target: SiteNet) -> list[list[str]]:
    """Both directions of every connection `source` opens towards `target`: its packets there, and the
    answers back (the answers alone let a stream the peer opened before the cut deliver what fits in a TCP
    window: a row written after the partition still reached the replica). And, both ways, the packets
    conntrack calls invalid, which no --ctdir rule matches: a FIN with no entry, as when a killed process's
    socket closes on a connection whose every packet since the cut was dropped (no entry is confirmed for a
    dropped packet), with its unacknowledged data retransmitted in the same segment: a row written after the
    cut reached quangnam so when danang was stopped. (A connection `target` opens keeps its entry, made by
    its SYN, so its FIN stays valid and passes.) Each rule names its cut, so one cut's removal leaves the
    other's."""
    tag = ["-m", "comment", "--comment", f"cut {source.site}>{target.site}", "-m", "conntrack"]
    return [
        ["FORWARD", "-i", inbound.wan_if, "-o", outbound.wan_if, *tag, *match, "-j", "DROP"]
        for inbound, outbound, match in (
            (source, target, ["--ctdir", "ORIGINAL"]),
            (target, source, ["--ctdir", "REPLY"]),
            (source, target, ["--ctstate", "INVALID"]),
            (target, source, ["--ctstate", "INVALID"]),
        )
    ]


def set_cut(source: SiteNet, target: SiteNet, cut: bool) -> None:
    """Drop (or let through again) the packets of every connection `source` opens towards `target`,
    connections already open included: they are cut, not only new ones."""
    wan = wan_netns(source.slot)
    for rule in _cut_rules(source, target):
        present = (
            subprocess.run(
                in_netns(wan, ["iptables", "-w", "-C", *rule]), check=False, capture_output=True
            ).returncode
            == 0
        )
        if cut and not present:
            _run(in_netns(wan, ["iptables", "-w", "-I", *rule]))
        if not cut and present:
            _run(in_netns(wan, ["iptables", "-w", "-D", *rule]))


def delete(slot: int) -> None:
    """Delete every namespace of a slot: their interfaces, routes and rules go with them."""
    for path in sorted(NETNS_DIR.glob(f"{PREFIX}{slot}-*")) if NETNS_DIR.exists() else []:
        _run_quiet(["ip", "netns", "delete", path.name])
    # A host end whose namespace is gone disappears with it; one left by a half-made link does not.
    links = subprocess.run(["ip", "-o", "link", "show"], check=False, capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(f"{PREFIX}{slot}h"):
            _run_quiet(["ip", "link", "delete", name])


def leftovers(slot: int) -> list[str]:
    """Namespaces and links of a slot still present (the 'down leaves nothing' check)."""
    found = [f"netns {p.name}" for p in NETNS_DIR.glob(f"{PREFIX}{slot}-*")] if NETNS_DIR.exists() else []
    links = subprocess.run(["ip", "-o", "link", "show"], check=False, capture_output=True, text=True).stdout
    found += [
        f"link {line.split(':')[1].strip()}" for line in links.splitlines() if f" {PREFIX}{slot}h" in line
    ]
    routes = subprocess.run(["ip", "route", "show"], check=False, capture_output=True, text=True).stdout
    network = ipaddress.IPv4Network(f"10.{192 + slot}.0.0/16")
    for line in routes.splitlines():
        with contextlib.suppress(ValueError):
            if ipaddress.IPv4Network(line.split()[0]).subnet_of(network):
                found.append(f"route {line}")
    return found
