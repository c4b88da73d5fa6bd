"""ReplicationFeasible: the first full copy's time, and whether each copy fits the RPO on the links."""

from __future__ import annotations

from typing import Any

import pytest

from sharedcore.api import Link
from sharedcore.replication.feasibility import assess, bandwidth_bps, budget_bps, sent_bytes
from tests.golden.samples import sample

TEN_GBPS_AT_90 = [Link(name="wan-1", bandwidth="10Gbps", replication_percent=90)]


def source(logs: str) -> dict[str, Any]:
    return {"status": {"latestMoverStatus": {"result": "Successful", "logs": logs}}}


def test_links_give_their_share() -> None:
    assert bandwidth_bps("10Gbps") == 10**10 and bandwidth_bps("500Mbps") == 5 * 10**8
    two = [*TEN_GBPS_AT_90, Link(name="wan-2", bandwidth="10Gbps", replication_percent=50)]
    assert budget_bps(two) == 14 * 10**9


@pytest.mark.parametrize(
    ("logs", "expected"),
    [
        ("sent 1.23G bytes  received 35 bytes  2.54M bytes/sec\ntotal size is 20.00T", 1_230_000_000),
        ("sent 4,096 bytes  received 35 bytes  1,234.00 bytes/sec", 4096),
        ("rsync completed in 1.5s", None),
    ],
)
def test_the_bytes_a_copy_sent_come_from_rsyncs_summary(logs: str, expected: int | None) -> None:
    assert sent_bytes(source(logs)) == expected


def test_the_archives_first_copy_is_said_up_front() -> None:
    """20Ti of scans and a 200Gi catalogue on one 10 Gbps link at 90 %: about 5.5 hours."""
    verdict = assess(sample("e-archive"), TEN_GBPS_AT_90, None)
    assert verdict is not None and verdict.feasible
    assert 5.4 * 3600 < verdict.initial_copy_seconds < 5.6 * 3600
    assert verdict.condition.reason == "Estimated"
    assert "the first full copy (20.2Ti) takes about 5.5 h on 9 Gbps (wan-1)" in verdict.condition.message


def test_a_change_rate_the_links_cannot_carry_within_the_rpo_is_infeasible() -> None:
    """The archive copies hourly with an RPO of two hours: 3 TB a copy (~45 min at 9 Gbps) fits, 5 TB does
    not."""
    fits = assess(sample("e-archive"), TEN_GBPS_AT_90, source("sent 3.00T bytes  received 35 bytes"))
    assert fits is not None and fits.feasible and fits.condition.reason == "Feasible"
    verdict = assess(sample("e-archive"), TEN_GBPS_AT_90, source("sent 5.00T bytes  received 35 bytes"))
    assert verdict is not None and not verdict.feasible
    assert verdict.condition.reason == "ChangeRateAboveLinks"
    message = verdict.condition.message
    assert "each copy of the files sends 4.5Ti (the last one), 74 min on the links" in message
    assert "a failover may lose 8044 s, above rpoSeconds 7200" in message


def test_without_links_nothing_is_judged() -> None:
    assert assess(sample("e-archive"), [], None) is None
