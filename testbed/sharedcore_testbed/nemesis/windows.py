"""Judging what a nemesis run did to the data, from the writer's acknowledgements, the rows the databases hold
and the Failovers seen: which recorded data-loss window each lost write falls in, and which rows a server
committed when it was not the primary. Pure; times are epoch seconds of this machine's clock (the writer's,
PostgreSQL's and the API servers' alike: an operator's skewed clock plays no part).

A Failover that promoted its target (a `Move`) took the data from its source (`status.fromSite`) and recorded
how many seconds of the source's writes the target may lack (`status.dataLossWindowSeconds`). As the
real-database tests judge a single move (`sharedcore_testbed.traffic`), its window ends at the source's last
acknowledged write before the move ended and before the target's first after the move was created (the old
primary's last answer), and reaches back the recorded seconds. A lost write is forgiven only inside such a
window, acknowledged at that source. An unknown window (a failover that accepted data loss without knowing
it) reaches back to the end of the move before it.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sharedcore_testbed.checker import Row
from sharedcore_testbed.writer import Ack


@dataclass(frozen=True)
class Move:
    """A Failover that promoted its target, as the nemesis saw it."""

    name: str
    source: str
    target: str
    created: float  # its creationTimestamp, set by the target's API server
    ended: float  # when the nemesis saw it end (now, while it runs)
    window: float | None  # status.dataLossWindowSeconds; None: unknown (data loss accepted without it)


@dataclass(frozen=True)
class Window:
    move: Move
    begins: float
    ends: float

    def holds(self, ack: Ack) -> bool:
        return ack.site == self.move.source and self.begins <= ack.at <= self.ends


@dataclass(frozen=True)
class Loss:
    ack: Ack
    window: Window | None  # None: outside every recorded window


def windows(moves: Iterable[Move], acks: Sequence[Ack]) -> list[Window]:
    """Each move's data-loss window, placed on the writer's acknowledgements (a move whose source
    acknowledged nothing before it lost nothing, and has none)."""
    found: list[Window] = []
    previous_end = -math.inf
    for move in sorted(moves, key=lambda m: m.ended):
        first_at_target = min(
            (a.at for a in acks if a.site == move.target and a.at >= move.created), default=math.inf
        )
        bound = min(first_at_target, move.ended)
        last = max((a.at for a in acks if a.site == move.source and a.at < bound), default=None)
        if last is not None:
            begins = previous_end if move.window is None else last - move.window
            found.append(Window(move, begins, last))
        previous_end = move.ended
    return found


def judge(lost: Iterable[Ack], found: Sequence[Window]) -> list[Loss]:
    """Each lost write with the window it fell in (the first that holds it), or None."""
    return [Loss(ack, next((w for w in found if w.holds(ack)), None)) for ack in lost]


def at_two_primaries(rows: Iterable[Row], moves: Iterable[Move], sites: Mapping[str, str]) -> list[Row]:
    """Rows committed by a server that was not the primary then: one (writer, number) committed by two
    servers, and each row (in commit order) with which the committing server changed other than as a move
    made it change. A change from A's server to B's must follow the latest move created before it, that
    move must have gone from A to B, and it explains one change only (a server that comes back without a
    move in between, or two that take turns, took writes side by side). `sites`: each server's
    `cluster_name` → its site."""
    found: list[Row] = []
    by_key: dict[tuple[str, int], Row] = {}
    for row in rows:
        if by_key.setdefault((row.writer, row.seq), row).origin != row.origin:
            found.append(row)
    ordered = sorted(moves, key=lambda m: m.created)
    used: set[Move] = set()
    current: str | None = None
    for row in sorted(by_key.values(), key=lambda r: r.at):
        if current is not None and row.origin != current:
            latest = next((m for m in reversed(ordered) if m.created <= row.at), None)
            change = (sites.get(current), sites.get(row.origin))
            if latest is None or latest in used or change != (latest.source, latest.target):
                found.append(row)
            else:
                used.add(latest)
        current = row.origin
    return found
