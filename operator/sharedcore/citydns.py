"""Asking the city's DNS servers what they answer for a name: the only DNS client sharedcore has.

Redirect waits until every server the Topology names (`spec.dns.servers`) answers a service's host with the
new site's address, and each site reports whether it reaches them. A query is one A (or AAAA) question over
TCP (RFC 7766: every DNS server answers TCP), so a cut link shows as a timeout or a refused connection, not
as a lost datagram retried for seconds. The wire format is RFC 1035's, encoded and decoded here: the answer
sections of an authoritative server need no more.
"""

import asyncio
import ipaddress
import random
import struct
from dataclasses import dataclass

DNS_PORT = 53
QTYPE_A, QTYPE_AAAA, QTYPE_CNAME = 1, 28, 5
CLASS_IN = 1
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class DnsError(Exception):
    """The server could not be asked, or its answer could not be read."""


@dataclass(frozen=True)
class Answer:
    """What a server answered for one name: the addresses (empty for NXDOMAIN or no record) and the
    smallest TTL among them (None without addresses)."""

    rcode: str
    addresses: frozenset[str]
    ttl: int | None

    def __str__(self) -> str:
        if self.addresses:
            return f"{', '.join(sorted(self.addresses))} (TTL {self.ttl}s)"
        return "no address" if self.rcode == "NOERROR" else self.rcode


def split_server(server: str) -> tuple[str, int]:
    """'10.0.0.53', '10.0.0.53:5353', 'ns1.danang.gov.vn', '[fd00::53]:53' → (host, port)."""
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else DNS_PORT
    host, colon, port = server.rpartition(":")
    if colon and port.isdigit() and ":" not in host:
        return host, int(port)
    return server, DNS_PORT


def encode_query(name: str, qtype: int, query_id: int) -> bytes:
    header = struct.pack("!HHHHHH", query_id, 0, 1, 0, 0, 0)  # no recursion: the server is authoritative
    labels = b"".join(
        bytes([len(part)]) + part.encode("ascii") for part in name.rstrip(".").split(".") if part
    )
    return header + labels + b"\0" + struct.pack("!HH", qtype, CLASS_IN)


def _skip_name(message: bytes, offset: int) -> int:
    while True:
        if offset >= len(message):
            raise DnsError("truncated name")
        length = message[offset]
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def decode_response(message: bytes, query_id: int) -> Answer:
    """The A and AAAA records in the answer section (after any CNAME the server followed)."""
    if len(message) < 12:
        raise DnsError("answer shorter than a DNS header")
    answer_id, flags, questions, answers = struct.unpack("!HHHH", message[:8])
    if answer_id != query_id:
        raise DnsError("answer to another query")
    rcode = RCODES.get(flags & 0xF, f"RCODE{flags & 0xF}")
    offset = 12
    for _ in range(questions):
        offset = _skip_name(message, offset) + 4
    addresses: set[str] = set()
    ttls: list[int] = []
    for _ in range(answers):
        offset = _skip_name(message, offset)
        if offset + 10 > len(message):
            raise DnsError("truncated record")
        rtype, _, ttl, length = struct.unpack("!HHIH", message[offset : offset + 10])
        data = message[offset + 10 : offset + 10 + length]
        offset += 10 + length
        if rtype in (QTYPE_A, QTYPE_AAAA) and len(data) in (4, 16):
            addresses.add(str(ipaddress.ip_address(data)))
            ttls.append(ttl)
    return Answer(rcode, frozenset(addresses), min(ttls) if ttls else None)


def qtype_for(address: str) -> int:
    """The question whose answer would hold `address`: AAAA for IPv6, else A."""
    try:
        return QTYPE_AAAA if ipaddress.ip_address(address).version == 6 else QTYPE_A
    except ValueError:
        return QTYPE_A


async def ask(server: str, name: str, qtype: int = QTYPE_A, timeout: float = 2.0) -> Answer:
    """One question to one server over TCP; DnsError when it cannot be asked within `timeout`."""
    host, port = split_server(server)
    query_id = random.randrange(1 << 16)
    query = encode_query(name, qtype, query_id)
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(struct.pack("!H", len(query)) + query)
                await writer.drain()
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                return decode_response(await reader.readexactly(length), query_id)
            finally:
                writer.close()
    except TimeoutError as error:
        raise DnsError(f"{server} did not answer within {timeout:.0f}s") from error
    except (OSError, asyncio.IncompleteReadError) as error:
        raise DnsError(f"{server}: {getattr(error, 'strerror', None) or error}") from error
