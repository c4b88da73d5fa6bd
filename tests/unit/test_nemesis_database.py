"""The nemesis's lost-writes invariant on two local PostgreSQL servers on loopback (a primary and a streaming
standby playing two sites' databases, tests/support/postgres), under the writer of
`sharedcore_testbed.traffic`: a failover that loses writes is judged against the window its Failover
recorded."""

import math
import time
from collections.abc import Iterator, Mapping
from typing import Any, cast

import pytest

from sharedcore_testbed.clients import SiteClients
from sharedcore_testbed.nemesis.checks import Settled
from sharedcore_testbed.nemesis.convergence import Course, Observer
from sharedcore_testbed.nemesis.database import NoLostWrites
from sharedcore_testbed.nemesis.timeline import Timeline
from sharedcore_testbed.targets import ServiceDatabase
from sharedcore_testbed.traffic import Traffic
from sharedcore_testbed.writer import Target
from tests.support.postgres import Server, primary_and_standby


class LocalDatabase(ServiceDatabase):
    """A service's database at each site, played by a local server; the writer goes where `now` says."""

    def __init__(self, servers: Mapping[str, Server]) -> None:
        sites = dict.fromkeys(servers, cast(SiteClients, None))
        super().__init__(sites, "nemesis", "svc", ingress={}, resolve=lambda _: [])
        self.servers = dict(servers)
        self.now = next(iter(servers))

    def at(self, site: str) -> Target | None:
        return Target(site, self.servers[site].conninfo)

    def located(self) -> Target | None:
        return self.at(self.now)


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    with primary_and_standby() as pair:
        yield pair


def invariant(traffic: Traffic, timeline: Timeline) -> NoLostWrites:
    observer = Observer(cast(Any, None), cast(Any, None), timeline)
    observer.last_pass = math.inf  # it has looked
    checking = NoLostWrites(traffic, observer, timeline)
    checking.servers = {name: name for name in traffic.database.sites}
    checking.start()
    return checking


def test_writes_lost_by_a_failover_are_forgiven_inside_its_recorded_window_only(
    servers: tuple[Server, Server],
) -> None:
    a, b = servers
    database = LocalDatabase({a.name: a, b.name: b})
    timeline = Timeline(echo=False)
    with Traffic(database) as traffic:
        wide, closed = invariant(traffic, timeline), invariant(traffic, timeline)
        traffic.writing_at(a.name, count=20, timeout=30)
        for checking in (wide, closed):
            checking.settled(Settled(timeline.now(), a.name, 1, {}, {}))
        b.stop()  # the link goes: what a acknowledges from now on, b never gets
        traffic.writing_at(a.name, count=20, timeout=30)
        a.stop("immediate")  # a is lost
        created = time.time()
        b.start()
        b.promote()
        database.now = b.name
        for checking, window in ((wide, 60.0), (closed, 0.0)):
            name = "automatic-failover-epoch-2"
            checking.observer.courses[(b.name, name)] = Course(
                b.name,
                name,
                "Failover",
                first_seen=timeline.of_epoch(created),
                ended=timeline.now(),
                source=a.name,
                target=b.name,
                window=window,
                created=created,
                promoted=True,
            )
            checking.settled(Settled(timeline.now(), b.name, 2, {}, {}))
    lost = wide.figures()
    assert lost["lost"] >= 20 and lost["lost_outside_windows"] == 0, lost
    assert lost["lost_inside_windows"] == {name: {"lost": lost["lost"], "window_s": 60.0}}
    assert lost["checks"] == 2 and lost["rows_at_two_primaries"] == 0
    assert wide.final(timeline.now()) == []
    found = closed.final(timeline.now())
    # A window of 0 s is the old primary's last answer alone (as `Traffic.after_move` judges one move).
    assert closed.figures()["lost_outside_windows"] == lost["lost"] - 1
    assert [v.invariant for v in found] == ["no-lost-writes"]
    outside = f"{lost['lost'] - 1} acknowledged writes lost outside every recorded data-loss window"
    assert outside in found[0].detail
