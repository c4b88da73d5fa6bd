"""The writer, the checker and the sampler (sharedcore_testbed.writer/checker/sampler) against two local
PostgreSQL servers on loopback, a primary and a streaming standby playing two sites' databases, moved the
ways a failover moves them: no test here needs a control plane."""

import time
from collections.abc import Iterator

import pytest

from sharedcore_testbed.checker import Row, check, outage, read_rows, two_primaries
from sharedcore_testbed.sampler import PrimarySampler
from sharedcore_testbed.waiting import eventually
from sharedcore_testbed.writer import Ack, Target, Writer
from tests.support.postgres import Server, primary_and_standby


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    with primary_and_standby() as pair:
        yield pair


def target(server: Server) -> Target:
    return Target(server.name, server.conninfo)


def replicated(primary: Server, standby: Server, writer: str) -> float | None:
    """When the standby held every row of `writer` the primary had just before (None: it did not)."""
    asked = time.time()
    count = len([row for row in read_rows(primary.conninfo) if row.writer == writer])
    return (
        asked if len([row for row in read_rows(standby.conninfo) if row.writer == writer]) == count else None
    )


def test_the_longest_silence_between_acknowledged_writes_is_the_outage() -> None:
    acks = [Ack(1, "a", 10.0), Ack(2, "a", 10.02), Ack(3, "b", 14.5), Ack(4, "b", 14.52)]
    assert outage(acks, since=0) == (acks[1], acks[2])
    assert outage(acks, since=14.0) == (acks[1], acks[2]), "a silence under way when the move began"
    assert outage(acks, since=14.51) == (acks[2], acks[3])
    assert outage(acks, since=20.0) == (acks[3], None)
    assert outage([], since=20.0) == (None, None)


def test_rows_of_a_retired_primary_after_its_successor_took_over_are_a_split_brain() -> None:
    clean = [Row("w", 1, "a", 1.0), Row("w", 2, "a", 2.0), Row("w", 3, "b", 3.0), Row("w", 4, "b", 4.0)]
    assert two_primaries(clean, since=0) == []
    late = Row("v", 1, "a", 3.5)  # a second client still writing at a after b had taken over
    assert two_primaries([*clean, late], since=0) == [late]
    twice = Row("w", 2, "b", 2.5)  # one number committed by both servers
    assert two_primaries([*clean, twice], since=0) == [twice]
    # A move back in a later window is no split brain: each check looks from its move's start.
    back = Row("w", 5, "a", 5.0)
    assert two_primaries([*clean, back], since=2.5) == []


def test_every_acknowledged_write_reaches_the_standby_and_the_checker_finds_them(
    servers: tuple[Server, Server],
) -> None:
    primary, standby = servers
    writer = Writer("steady", lambda: target(primary))
    writer.start()
    try:
        writer.wait_for_acks(50, timeout=30)
    finally:
        writer.stop()
    eventually(lambda: replicated(primary, standby, "steady"), timeout=10, message="the standby caught up")
    rows = {primary.name: read_rows(primary.conninfo), standby.name: read_rows(standby.conninfo)}
    report = check(writer.acks, rows, writer="steady", primary=standby.name, since=0)
    assert report.missing == () and report.at_two_primaries == (), report.summary()
    assert report.acknowledged == len(writer.acks) >= 50
    assert {row.origin for row in rows[standby.name]} == {primary.name}  # committed by the primary


def test_a_failover_loses_exactly_the_acknowledged_writes_the_standby_never_received(
    servers: tuple[Server, Server],
) -> None:
    primary, standby = servers
    where = {"now": primary}
    writer = Writer("moved", lambda: target(where["now"]))
    writer.start()
    try:
        writer.wait_for_acks(20, timeout=30)
        caught = eventually(lambda: replicated(primary, standby, "moved"), timeout=10, message="caught up")
        standby.stop()  # the link goes: whatever is acknowledged from now on exists only at the primary
        cut = time.time()
        writer.wait_for_acks(20, timeout=30, since=cut)
        primary.stop("immediate")  # the site is lost
        unreplicated = {ack.seq for ack in writer.acks if ack.at >= cut}
        maybe = {ack.seq for ack in writer.acks if ack.at >= caught}  # the standby may have had these
        standby.start()
        standby.promote()
        where["now"] = standby
        writer.wait_for_acks(20, timeout=30, since=time.time())
    finally:
        writer.stop()
    rows = {primary.name: None, standby.name: read_rows(standby.conninfo)}
    report = check(writer.acks, rows, writer="moved", primary=standby.name, since=cut)
    assert unreplicated <= set(report.missing) <= maybe, report.summary()
    assert report.at_two_primaries == ()
    assert report.last_before is not None and report.first_after is not None
    assert (report.last_before.site, report.first_after.site) == (primary.name, standby.name)
    assert report.writer_rto is not None and report.writer_rto > 0


def test_the_sampler_and_the_checker_catch_two_writable_primaries(servers: tuple[Server, Server]) -> None:
    primary, standby = servers
    sampler = PrimarySampler({primary.name: lambda: target(primary), standby.name: lambda: target(standby)})
    where = {"now": primary}
    stale = Writer("stale", lambda: target(primary))  # a client still sent to the old primary
    follower = Writer("follower", lambda: target(where["now"]))
    sampler.start()
    for writer in (stale, follower):
        writer.start()
    try:
        follower.wait_for_acks(10, timeout=30)
        eventually(lambda: sampler.writable_samples(primary.name) > 3, timeout=10, message="samples")
        assert sampler.two_writable() == []
        since = time.time()
        standby.promote()  # split: the old primary was never fenced
        where["now"] = standby

        def at_new_primary() -> bool:  # the follower looks again within a second (relocate)
            return len([ack for ack in follower.acks if ack.site == standby.name]) >= 10

        eventually(at_new_primary, timeout=10, message="the follower writing at the promoted standby")
        stale.wait_for_acks(10, timeout=30, since=time.time())
        eventually(sampler.two_writable, timeout=10, message="two writable primaries sampled")
    finally:
        for writer in (stale, follower):
            writer.stop()
        sampler.stop()
    rows = {primary.name: read_rows(primary.conninfo), standby.name: read_rows(standby.conninfo)}
    report = check(follower.acks, rows, writer="follower", primary=standby.name, since=since)
    assert report.at_two_primaries, report.summary()
    assert {row.origin for row in report.at_two_primaries} == {primary.name}
