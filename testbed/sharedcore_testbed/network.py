"""The real-node testbed's network: a network namespace per site, a WAN namespace between sites, nothing else.

Every testbed takes a free slot s (0-63) and with it 10.(192+s).0.0/16; site i (in the order of `up`) has

    pods      10.(192+s).(16i).0/20      the CNI bridge of its node (bridge address .1)
    services  10.(192+s).(128+4i).0/22   its --service-cluster-ip-range
    host link 10.(192+s).(200+i).0/30    host end .1 (its kube-apiserver binds there), node end .2
    WAN link  10.(192+s).(220+i).0/30    WAN end .1, node end .2

The host routes only the site's pod and service ranges into the site; a site routes the other sites' ranges
into the WAN namespace and has no default route, so nothing a pod sends can leave the machine. Partitions of
the data plane are iptables rules in the WAN namespace (`conntrack --ctdir ORIGINAL`: a one-way cut stops the
connections one side opens, as the API link proxies do). No rule or sysctl is set in the host's namespace:
deleting the namespaces takes every interface, route and rule with them.
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


@dataclass(frozen=True)
class SiteNet:
    slot: int
    index: int
    site: str

    def _ip(self, third: int, fourth: int) -> str:
        return f"10.{192 + self.slot}.{third}.{fourth}"

    @property
    def testbed_range(self) -> str:
        return f"10.{192 + self.slot}.0.0/16"

    @property
    def pod_cidr(self) -> str:
        return f"{self._ip(16 * self.index, 0)}/20"

    @property
    def bridge_ip(self) -> str:
        return self._ip(16 * self.index, 1)

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

    @property
    def node_ip(self) -> str:
        return self._ip(200 + self.index, 2)

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
    _run(["ip", "addr", "add", f"{net.host_ip}/30", "dev", net.host_if])
    _run(["ip", "link", "set", net.host_if, "up"])
    _run(["ip", "-n", ns, "addr", "add", f"{net.node_ip}/30", "dev", "eth0"])
    _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
    for cidr in (net.pod_cidr, net.service_cidr):
        _run(["ip", "route", "add", cidr, "via", net.node_ip, "dev", net.host_if])
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


def _cut_rule(source: SiteNet, target: SiteNet) -> list[str]:
    return [
        "FORWARD",
        "-i",
        source.wan_if,
        "-o",
        target.wan_if,
        "-m",
        "conntrack",
        "--ctdir",
        "ORIGINAL",
        "-j",
        "DROP",
    ]


def set_cut(source: SiteNet, target: SiteNet, cut: bool) -> None:
    """Drop (or let through again) the packets of every connection `source` opens towards `target`."""
    wan = wan_netns(source.slot)
    rule = _cut_rule(source, target)
    present = (
        subprocess.run(
            in_netns(wan, ["iptables", "-w", "-C", *rule]), check=False, capture_output=True
        ).returncode
        == 0
    )
    if cut and not present:
        # Packets of connections already open are dropped too: they are cut, not only new ones.
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
