"""Whether this site reaches the city's DNS servers (`Topology.spec.dns.servers`), asked every heartbeat.

Reported, never acted on: a site cut off from the city's DNS keeps its role (its ExternalDNS cannot update
the records, and a Failover's Redirect waits for the servers' answers, but the sites' roles are decided by
the peer and the witness alone). The condition CityDNSReachable says which servers do not answer, the gauge
`sharedcore_city_dns_reachable{server}` is 1 or 0 per server, and the alert SharedcoreCityDNSUnreachable
fires when one stays unreachable.
"""

import asyncio

from sharedcore import citydns
from sharedcore.api import CityDns
from sharedcore.kube import conditions
from sharedcore.metrics import CITY_DNS_REACHABLE

CONDITION = "CityDNSReachable"
PROBE_NAME = "."  # the root: any answer, even REFUSED, shows the server is there
QTYPE_SOA = 6


class CityDnsProbe:
    def __init__(self) -> None:
        self.want: conditions.Want | None = None
        self._servers: tuple[str, ...] = ()

    async def round(self, dns: CityDns | None, timeout: float) -> bool:
        """Ask every server once; whether the condition changed."""
        servers = tuple(dns.servers) if dns else ()
        if servers != self._servers:
            CITY_DNS_REACHABLE.clear()
            self._servers = servers
        if not servers:
            return self._set(None)
        problems = await asyncio.gather(*(self._ask(server, timeout) for server in servers))
        failing = [
            f"{server}: {problem}" for server, problem in zip(servers, problems, strict=True) if problem
        ]
        if failing:
            message = (
                f"{len(failing)} of {len(servers)} city DNS servers do not answer ({'; '.join(failing)}): "
                "this site's ExternalDNS cannot update its records there either, and a Failover to this site "
                "waits in Redirect; nothing moves by itself"
            )
            return self._set(conditions.Want(CONDITION, False, "Unreachable", message))
        message = f"every city DNS server answers ({', '.join(servers)})"
        return self._set(conditions.Want(CONDITION, True, "Reachable", message))

    @staticmethod
    async def _ask(server: str, timeout: float) -> str | None:
        try:
            await citydns.ask(server, PROBE_NAME, QTYPE_SOA, timeout=timeout)
        except citydns.DnsError as error:
            CITY_DNS_REACHABLE.labels(server).set(0)
            return str(error)
        CITY_DNS_REACHABLE.labels(server).set(1)
        return None

    def _set(self, want: conditions.Want | None) -> bool:
        changed = want != self.want
        self.want = want
        return changed
