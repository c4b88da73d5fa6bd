"""The nemesis's data half without a database: which recorded data-loss window a lost write falls in, which
rows a server committed when it was not the primary, two writable primaries sampled, and what the observer
reads of a Failover's move."""

from collections.abc import Mapping

from sharedcore_testbed.checker import Row
from sharedcore_testbed.nemesis.checks import Settled
from sharedcore_testbed.nemesis.convergence import Course, _moves
from sharedcore_testbed.nemesis.database import OneWritable
from sharedcore_testbed.nemesis.timeline import Timeline
from sharedcore_testbed.nemesis.windows import Move, Window, at_two_primaries, judge, windows
from sharedcore_testbed.sampler import PrimarySampler
from sharedcore_testbed.writer import Ack

SERVERS = {"db-a": "a", "db-b": "b"}


def acks_at(site: str, start: float, end: float, first_seq: int) -> list[Ack]:
    """One acknowledged write every half second at `site` from `start` to `end`."""
    count = int((end - start) / 0.5) + 1
    return [Ack(first_seq + i, site, start + i * 0.5) for i in range(count)]


def failover(
    source: str = "a",
    target: str = "b",
    created: float = 25.0,
    ended: float = 40.0,
    window: float | None = 3.0,
) -> Move:
    return Move(f"to-{target}-at-{created:g}", source, target, created, ended, window)


def test_a_failover_forgives_only_the_writes_its_source_acknowledged_inside_its_recorded_window() -> None:
    # a answers until 20 s, is lost; b, promoted by a Failover created at 25 s, takes writes from 41 s.
    acks = acks_at("a", 10, 20, 1) + acks_at("b", 41, 45, 100)
    move = failover(window=3.0)
    (window,) = windows([move], acks)
    assert (window.begins, window.ends) == (17.0, 20.0), "it ends at the old primary's last answer"
    lost = [a for a in acks if a.at in (15.0, 16.5, 17.0, 19.5, 20.0)]
    assert [(loss.ack.at, loss.window) for loss in judge(lost, [window])] == [
        (15.0, None),
        (16.5, None),
        (17.0, window),
        (19.5, window),
        (20.0, window),
    ]
    # A write lost at the target is no write of the source's.
    assert judge([Ack(100, "b", 19.0)], [window])[0].window is None


def test_the_window_ends_before_the_new_primarys_first_write_whatever_the_old_one_answered_after() -> None:
    # a keeps answering after b took its first write at 30 s (two primaries): a's later writes are not the
    # window's, however long the recorded window.
    acks = acks_at("a", 10, 29.5, 1) + acks_at("b", 30, 35, 100) + acks_at("a", 30.25, 33.25, 200)
    (window,) = windows([failover(created=26.0, ended=40.0, window=60.0)], acks)
    assert window.ends == 29.5
    late = [a for a in acks if a.seq >= 200]
    assert all(loss.window is None for loss in judge(late, [window]))


def test_a_switchover_records_no_window_so_any_write_it_loses_is_outside() -> None:
    acks = acks_at("a", 10, 20, 1) + acks_at("b", 22, 25, 100)
    (window,) = windows([failover(created=19.0, ended=23.0, window=0.0)], acks)
    assert (window.begins, window.ends) == (20.0, 20.0)
    assert judge([acks[-7]], [window])[0].window is None  # a's write of 19.5 s lost: outside


def test_an_unknown_window_reaches_back_to_the_previous_move_and_moves_without_writes_have_none() -> None:
    acks = acks_at("a", 10, 20, 1) + acks_at("b", 30, 40, 100) + acks_at("a", 50, 60, 200)
    back_and_forth = [
        failover("a", "b", created=21.0, ended=29.0, window=1.0),
        failover("b", "a", created=41.0, ended=49.0, window=None),  # acceptDataLoss, the lag unknown
        failover("a", "b", created=70.0, ended=71.0, window=2.0),  # a's writes stopped at 60 s: still a's
    ]
    first, unknown, last = windows(back_and_forth, acks)
    assert (first.begins, first.ends) == (19.0, 20.0)
    assert (unknown.begins, unknown.ends) == (29.0, 40.0)
    assert (last.begins, last.ends) == (58.0, 60.0)
    assert windows([failover("b", "a", created=5.0, ended=8.0)], acks) == [], "b had answered nothing"


def rows(*written: tuple[str, float]) -> list[Row]:
    return [Row("w", seq, origin, at) for seq, (origin, at) in enumerate(written, start=1)]


def two(found: list[Row], moves: list[Move], servers: Mapping[str, str] = SERVERS) -> list[int]:
    return [row.seq for row in at_two_primaries(found, moves, servers)]


def test_the_primary_changes_only_as_the_latest_move_made_it_change_once() -> None:
    there_and_back = rows(("db-a", 1), ("db-a", 2), ("db-b", 12), ("db-b", 13), ("db-a", 22))
    moves = [failover("a", "b", created=10, ended=11), failover("b", "a", created=20, ended=21)]
    assert two(there_and_back, moves) == []
    assert two(there_and_back, moves[:1]) == [5], "back at a without a move"
    assert two(there_and_back, []) == [3, 5], "no move at all"
    taking_turns = rows(("db-a", 1), ("db-b", 12), ("db-a", 12.5), ("db-b", 13))
    assert two(taking_turns, moves[:1]) == [3, 4], "one move explains one change"
    early = rows(("db-a", 1), ("db-b", 9), ("db-b", 12))
    assert two(early, moves[:1]) == [2], "b wrote before the move was created"
    wrong_way = rows(("db-b", 1), ("db-a", 12))
    assert two(wrong_way, moves[:1]) == [2], "the move went from a to b"
    # The writer wrote on at a until both moves were made: the latest move, to a, explains no change to b.
    stayed = rows(("db-a", 1), ("db-a", 25), ("db-b", 26))
    assert two(stayed, moves) == [3]


def test_one_number_committed_by_two_servers_is_at_two_primaries() -> None:
    twice = [Row("w", 1, "db-a", 1.0), Row("w", 1, "db-b", 12.0)]
    assert two(twice, [failover("a", "b", created=10, ended=11)]) == [1]


class Ticks(PrimarySampler):
    """A sampler whose ticks are given."""

    def __init__(self, ticks: dict[float, dict[str, bool | None]]) -> None:
        super().__init__({})
        self.ticks = ticks

    def samples(self) -> dict[float, dict[str, bool | None]]:
        return dict(self.ticks)


def test_two_writable_primaries_in_consecutive_ticks_are_one_finding_returned_at_the_end() -> None:
    timeline = Timeline(echo=False)
    timeline.wall_started -= 10  # the run began ten seconds ago
    start = timeline.wall_started
    ticks: dict[float, dict[str, bool | None]] = {
        start + 0.1 * i: {"a": True, "b": False} for i in range(1, 50)
    }
    for i in (10, 11, 12, 30):
        ticks[start + 0.1 * i] = {"a": True, "b": True}
    ticks[start + 0.1 * 31] = {"a": None, "b": True}  # a no answer: not writable
    sampler = Ticks(ticks)
    invariant = OneWritable(sampler, timeline)
    invariant.start()
    assert invariant.settled(Settled(5.0, "a", 1, {}, {})) == [], "kept for the end"
    found = invariant.final(6.0)
    assert [(v.time, v.detail) for v in found] == [
        (1.0, "two writable primaries (a, b) in 3 ticks over 0.3s"),
        (3.0, "two writable primaries (a, b) in 1 ticks over 0.1s"),
    ]
    assert invariant.final(7.0) == found, "found once"
    figures = invariant.figures()
    assert figures["ticks"] == 49 and figures["ticks_two_writable"] == 4
    assert figures["ticks_writable"] == {"a": 48, "b": 5} and figures["ticks_unanswered"] == {"a": 1, "b": 0}


def test_the_observer_reads_where_a_failover_moved_the_data_and_whether_it_promoted() -> None:
    course = Course("b", "automatic-failover-epoch-3", "Failover", first_seen=12.0)
    body = {
        "metadata": {"creationTimestamp": "2026-11-28T22:00:00Z"},
        "spec": {"type": "Failover"},
        "status": {
            "phase": "Running",
            "fromSite": "a",
            "toSite": "b",
            "dataLossWindowSeconds": 16.5,
            "steps": [{"name": "FenceSource", "state": "Succeeded"}, {"name": "Promote", "state": "Running"}],
        },
    }
    _moves(course, body)
    assert (course.source, course.target, course.window, course.promoted) == ("a", "b", 16.5, False)
    assert course.created == 1795903200.0
    body["status"]["steps"][1]["state"] = "Succeeded"  # type: ignore[index]
    _moves(course, body)
    assert course.promoted
    drill = Course("b", "drill", "Drill", first_seen=1.0)
    _moves(drill, {"metadata": {}, "spec": {"dryRun": True}, "status": {"phase": "Succeeded"}})
    assert not drill.promoted and drill.created is None


def test_a_window_holds_writes_of_its_source_only() -> None:
    window = Window(failover(), 17.0, 20.0)
    assert window.holds(Ack(1, "a", 18.0)) and not window.holds(Ack(2, "b", 18.0))
    assert not window.holds(Ack(3, "a", 16.9)) and not window.holds(Ack(4, "a", 20.1))
