"""The witness Lease's takeover rules, against an in-memory Lease store with the API server's optimistic
concurrency (a write carrying a stale resourceVersion is a 409) and a controllable clock."""

import asyncio
import copy
from typing import Any

import pytest

from sharedcore.kube.client import ApiError
from sharedcore.sites import witness
from sharedcore.sites.leases import witness_claim
from sharedcore.sites.state import Claim
from sharedcore.sites.witness import WitnessLease

DURATION = 6


class Store:
    """Just enough of a Lease endpoint: get, create, merge patch."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0

    async def get(self, *_: Any) -> dict[str, Any] | None:
        return copy.deepcopy(self.lease)

    async def create(self, _: Any, body: dict[str, Any]) -> dict[str, Any]:
        if self.lease is not None:
            raise ApiError(409, "AlreadyExists", "exists")
        self.lease = copy.deepcopy(body)
        return self._stamp()

    async def patch(self, _r: Any, _n: str, _ns: str, patch: dict[str, Any]) -> dict[str, Any]:
        assert self.lease is not None
        if patch["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        for part in ("metadata", "spec"):
            for key, value in patch.get(part, {}).items():
                if key == "resourceVersion":
                    continue
                if value is None:
                    self.lease[part].pop(key, None)
                elif isinstance(value, dict):
                    self.lease[part].setdefault(key, {}).update(value)
                else:
                    self.lease[part][key] = value
        return self._stamp()

    def _stamp(self) -> dict[str, Any]:
        assert self.lease is not None
        self.version += 1
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(witness.time, "monotonic", lambda: now[0])
    return now


def visit(lease: WitnessLease, store: Store, hold: Claim | None = None, release: Claim | None = None) -> None:
    asyncio.run(lease.visit(store, None, hold, DURATION, release=release))  # type: ignore[arg-type]


def test_a_current_lease_of_the_peer_is_taken_over_only_for_a_later_epoch_once_it_lapsed(
    clock: list[float],
) -> None:
    store = Store()
    danang, quangnam = WitnessLease("danang", "ns"), WitnessLease("quangnam", "ns")
    visit(danang, store, hold=Claim(1, "danang"))
    assert witness_claim(store.lease) == Claim(1, "danang")
    visit(quangnam, store, hold=Claim(1, "quangnam"))  # the same epoch: never
    visit(quangnam, store, hold=Claim(2, "quangnam"))  # a later one, but danang's is current
    assert witness_claim(store.lease) == Claim(1, "danang")
    assert not quangnam.lapsed(clock[0], DURATION)
    clock[0] += DURATION - 1
    visit(danang, store, hold=Claim(1, "danang"))  # renewed: quangnam sees it change, the count restarts
    visit(quangnam, store)
    clock[0] += DURATION - 1
    visit(quangnam, store, hold=Claim(2, "quangnam"))
    assert witness_claim(store.lease) == Claim(1, "danang")
    clock[0] += 1  # a whole duration without a renewal, by quangnam's clock
    assert quangnam.lapsed(clock[0], DURATION)
    visit(quangnam, store, hold=Claim(2, "quangnam"))
    assert witness_claim(store.lease) == Claim(2, "quangnam")
    assert store.lease is not None and store.lease["spec"]["leaseTransitions"] == 1
    assert quangnam.view(clock[0]).held
    # danang, back, cannot take it back at its old epoch, whatever it waits.
    clock[0] += 10 * DURATION
    visit(danang, store, hold=Claim(1, "danang"))
    assert witness_claim(store.lease) == Claim(2, "quangnam")


def test_a_released_lease_is_free_at_once_for_the_same_or_a_later_epoch_only(clock: list[float]) -> None:
    store = Store()
    danang, quangnam = WitnessLease("danang", "ns"), WitnessLease("quangnam", "ns")
    visit(danang, store, hold=Claim(3, "danang"))
    visit(danang, store, release=Claim(3, "danang"))
    assert store.lease is not None and "holderIdentity" not in store.lease["spec"]
    assert not danang.view(clock[0]).held
    visit(quangnam, store)
    assert quangnam.lapsed(clock[0], DURATION)
    visit(quangnam, store, hold=Claim(2, "quangnam"))  # an older epoch than the one released
    assert witness_claim(store.lease) is None
    visit(quangnam, store, hold=Claim(4, "quangnam"))
    assert witness_claim(store.lease) == Claim(4, "quangnam")


def test_a_renewal_that_lost_the_race_is_not_counted_as_holding(clock: list[float]) -> None:
    store = Store()
    danang = WitnessLease("danang", "ns")
    visit(danang, store, hold=Claim(1, "danang"))
    stale = asyncio.run(store.get())
    assert stale is not None
    asyncio.run(
        store.patch(None, "", "", {"metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]}})
    )
    clock[0] += DURATION  # past the renew deadline of the first renewal
    held_before = danang.view(clock[0]).held

    class Racing(Store):
        async def get(self, *_: Any) -> dict[str, Any] | None:
            return stale  # what danang read, one write behind

    racing = Racing()
    racing.lease, racing.version = store.lease, store.version
    visit(danang, racing, hold=Claim(1, "danang"))
    assert not held_before and not danang.view(clock[0]).held


def test_a_lease_renewed_for_a_longer_duration_than_this_sites_is_judged_by_the_longer_one(
    clock: list[float],
) -> None:
    """Rule 2: the sites' Topologies may disagree; the holder fences itself by its own duration, which the
    Lease records, so the other site waits for the longer of the two before taking it over."""
    store = Store()
    danang, quangnam = WitnessLease("danang", "ns"), WitnessLease("quangnam", "ns")
    asyncio.run(danang.visit(store, None, Claim(1, "danang"), 3 * DURATION))  # type: ignore[arg-type]
    assert store.lease is not None and store.lease["spec"]["leaseDurationSeconds"] == 3 * DURATION
    visit(quangnam, store)
    clock[0] += DURATION + 1  # past quangnam's own duration, not past danang's
    visit(quangnam, store)
    assert not quangnam.lapsed(clock[0], DURATION)
    visit(quangnam, store, hold=Claim(2, "quangnam"))
    assert witness_claim(store.lease) == Claim(1, "danang")
    clock[0] += 2 * DURATION
    assert quangnam.lapsed(clock[0], DURATION)
    visit(quangnam, store, hold=Claim(2, "quangnam"))
    assert witness_claim(store.lease) == Claim(2, "quangnam")


def test_a_lapse_waits_on_top_for_the_holders_measured_fencing_time(clock: list[float]) -> None:
    """Rule 5: the holder stops acting at two thirds of the Lease; its databases and DNS records follow in the
    fencing time last measured (a switchover from it), which the other site waits on top of the Lease."""
    store = Store()
    danang, quangnam = WitnessLease("danang", "ns"), WitnessLease("quangnam", "ns")
    visit(danang, store, hold=Claim(1, "danang"))
    quangnam.grace = 4.0
    visit(quangnam, store)
    clock[0] += DURATION + 1
    assert not quangnam.lapsed(clock[0], DURATION)
    visit(quangnam, store, hold=Claim(2, "quangnam"))
    assert witness_claim(store.lease) == Claim(1, "danang")
    clock[0] += 3
    assert quangnam.lapsed(clock[0], DURATION)


def test_a_read_older_than_the_epoch_a_site_knows_shows_nobody_holding_only_after_a_whole_duration(
    clock: list[float],
) -> None:
    """A pair's bootstrap: quangnam read the witness before danang created its Lease, then learned epoch 1
    from danang's heartbeat. That read is older than epoch 1 (whose active site held the Lease to be active
    at it): it shows nobody holding the Lease only if nothing changes for a whole Lease duration (the Lease
    deleted by hand while danang is down, say), not at once as a release of the epoch would."""
    store = Store()
    danang, quangnam = WitnessLease("danang", "ns"), WitnessLease("quangnam", "ns")
    visit(quangnam, store)  # no Lease yet
    visit(danang, store, hold=Claim(1, "danang"))
    assert quangnam.lapsed(clock[0], DURATION), "knowing no epoch, no Lease is nobody holding it"
    assert not quangnam.lapsed(clock[0], DURATION, epoch=1)
    visit(quangnam, store)
    assert not quangnam.lapsed(clock[0], DURATION, epoch=1)
    store.lease = None  # deleted by hand
    visit(quangnam, store)
    clock[0] += DURATION - 1
    assert not quangnam.lapsed(clock[0], DURATION, epoch=1)
    clock[0] += 1
    assert quangnam.lapsed(clock[0], DURATION, epoch=1)
    visit(danang, store, hold=Claim(1, "danang"))  # created again: released at that epoch, free at once
    visit(danang, store, release=Claim(1, "danang"))
    visit(quangnam, store)
    assert quangnam.lapsed(clock[0], DURATION, epoch=1)
