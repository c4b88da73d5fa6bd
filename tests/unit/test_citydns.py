"""Asking the city DNS (sharedcore.citydns), judging its answers in Redirect, reporting its reachability."""

import asyncio
import contextlib
import dataclasses
import struct
from collections.abc import AsyncIterator, Callable

import pytest

from sharedcore import citydns
from sharedcore.api import CityDns, FailoverType, StepName, StepState
from sharedcore.failover import steps
from sharedcore.failover.progress import ServiceParts, city_dns_answers
from sharedcore.metrics import CITY_DNS_REACHABLE
from sharedcore.sites.citydns import CityDnsProbe

HOST = "opendata.danang.gov.vn"
DANANG, QUANGNAM = "10.1.0.250", "10.2.0.250"


def response(query: bytes, rcode: int = 0, records: tuple[tuple[str, int], ...] = ()) -> bytes:
    """What an authoritative server answers to `query`: its question echoed, A records pointing back at it
    (compressed names, as servers send them)."""
    query_id = struct.unpack("!H", query[:2])[0]
    header = struct.pack("!HHHHHH", query_id, 0x8400 | rcode, 1, len(records), 0, 0)
    answers = b"".join(
        struct.pack("!HHHIH", 0xC00C, citydns.QTYPE_A, 1, ttl, 4) + bytes(map(int, address.split(".")))
        for address, ttl in records
    )
    return header + query[12:] + answers


def test_an_answer_is_decoded_with_its_addresses_and_smallest_ttl() -> None:
    query = citydns.encode_query(HOST, citydns.QTYPE_A, 4242)
    answer = citydns.decode_response(response(query, records=((DANANG, 30), (QUANGNAM, 5))), 4242)
    assert answer == citydns.Answer("NOERROR", frozenset({DANANG, QUANGNAM}), 5)
    assert citydns.decode_response(response(query, rcode=3), 4242) == citydns.Answer(
        "NXDOMAIN", frozenset(), None
    )
    with pytest.raises(citydns.DnsError, match="another query"):
        citydns.decode_response(response(query), 4243)


@pytest.mark.parametrize(
    ("server", "split"),
    [
        ("10.0.0.53", ("10.0.0.53", 53)),
        ("10.0.0.53:5353", ("10.0.0.53", 5353)),
        ("ns1.danang.gov.vn", ("ns1.danang.gov.vn", 53)),
        ("[fd00::53]:53", ("fd00::53", 53)),
    ],
)
def test_a_server_is_an_address_or_name_with_an_optional_port(server: str, split: tuple[str, int]) -> None:
    assert citydns.split_server(server) == split


@contextlib.asynccontextmanager
async def _serve(answer: Callable[[bytes], bytes | None]) -> AsyncIterator[str]:
    """A DNS server over TCP on a free port, answering each query with `answer` (None: never)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        reply = answer(await reader.readexactly(length))
        if reply is None:
            await asyncio.sleep(10)  # a black hole
        else:
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_a_question_is_asked_over_tcp_and_a_silent_server_times_out() -> None:
    async def scenario() -> None:
        async with _serve(lambda query: response(query, records=((QUANGNAM, 5),))) as server:
            assert await citydns.ask(server, HOST) == citydns.Answer("NOERROR", frozenset({QUANGNAM}), 5)
        async with _serve(lambda query: None) as server:
            with pytest.raises(citydns.DnsError, match="did not answer within 0s"):
                await citydns.ask(server, HOST, timeout=0.2)

    asyncio.run(scenario())


SERVICES = [
    ServiceParts("ns", "opendata", database=False, files=False, host=HOST),
    ServiceParts("ns", "worker", database=False, files=False, host=None),
]


def test_redirect_waits_until_every_server_answers_with_the_new_site_alone() -> None:
    def judge(*found: citydns.Answer | str) -> StepState:
        answers = {(f"ns{i}", HOST): answer for i, answer in enumerate(found)}
        return city_dns_answers("quangnam", QUANGNAM, SERVICES, answers).state

    new = citydns.Answer("NOERROR", frozenset({QUANGNAM}), 5)
    old = citydns.Answer("NOERROR", frozenset({DANANG}), 5)
    both = citydns.Answer("NOERROR", frozenset({DANANG, QUANGNAM}), 5)
    assert judge(new, new) is StepState.SUCCEEDED
    assert judge(new, old) is StepState.RUNNING
    assert judge(both) is StepState.RUNNING
    assert judge(citydns.Answer("NXDOMAIN", frozenset(), None)) is StepState.RUNNING
    assert judge(new, "ns1:53 did not answer within 2s") is StepState.RUNNING
    waiting = city_dns_answers("quangnam", QUANGNAM, SERVICES, {("ns0", HOST): old}).message
    assert f"{HOST} at ns0: {DANANG} (TTL 5s)" in waiting


def test_the_probe_reports_an_unreachable_server_and_clears_when_it_answers() -> None:
    probe = CityDnsProbe()

    async def scenario() -> None:
        async with _serve(lambda query: response(query, rcode=5)) as server:  # REFUSED is an answer
            assert await probe.round(CityDns(servers=[server]), timeout=1.0)
            assert probe.want is not None and probe.want.status is True
            assert CITY_DNS_REACHABLE.labels(server)._value.get() == 1
        # The server is gone now: its port refuses.
        assert await probe.round(CityDns(servers=[server]), timeout=0.5)
        assert probe.want is not None and probe.want.status is False
        assert probe.want.reason == "Unreachable" and server in probe.want.message
        assert "nothing moves by itself" in probe.want.message
        assert CITY_DNS_REACHABLE.labels(server)._value.get() == 0
        assert not await probe.round(CityDns(servers=[server]), timeout=0.5)  # unchanged: nothing to write
        assert await probe.round(None, timeout=0.5) and probe.want is None

    asyncio.run(scenario())


def test_redirect_with_the_city_dns_in_the_topology_waits_for_its_answers_too() -> None:
    here: dict[tuple[str, str], dict[str, object]] = {("ns", "opendata"): {}}  # its DNSEndpoint, published
    attempt = steps.Attempt(
        name="f",
        type=FailoverType.FAILOVER,
        site="quangnam",
        source="danang",
        epoch=2,
        view=None,  # type: ignore[arg-type]  # Redirect's judgement does not look at the pair
        services=SERVICES,
        bodies=[],
        city_dns=steps.CityDnsCheck(("ns0",), QUANGNAM),
    )
    old = citydns.Answer("NOERROR", frozenset({DANANG}), 5)
    new = citydns.Answer("NOERROR", frozenset({QUANGNAM}), 5)
    waiting = steps.BY_NAME[StepName.REDIRECT].judge(attempt, steps.Records(here, None, {("ns0", HOST): old}))
    assert waiting.state is StepState.RUNNING and "city DNS" in waiting.message
    done = steps.BY_NAME[StepName.REDIRECT].judge(attempt, steps.Records(here, None, {("ns0", HOST): new}))
    assert done.state is StepState.SUCCEEDED and "1 city DNS servers answer 1 names" in done.message
    without = dataclasses.replace(attempt, city_dns=None)
    assert (
        steps.BY_NAME[StepName.REDIRECT].judge(without, steps.Records(here, None)).state
        is StepState.SUCCEEDED
    )
