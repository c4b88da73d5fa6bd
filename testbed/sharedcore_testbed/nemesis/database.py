"""The nemesis's data half, on real nodes: a service's PostgreSQL under the writer of
`sharedcore_testbed.traffic` (a numbered row every 20 ms where the service's DNS record points) and its
`pg_is_in_recovery()` sampler (both sites every 100 ms), held to two invariants:

- `OneWritable`: never two writable primaries in one 100 ms tick;
- `NoLostWrites`: after each settle, once the writer writes at the active site again, every write it had
  acknowledged is in the active site's database, except those lost inside a Failover's recorded data-loss
  window (`windows`); and no row was committed by a server that was not the primary then.

What they find is a fact about the past that no later move explains away: it is noted in the timeline when
found and returned at the end (`final`), not after the settle, whose check the runner makes again, discarding
the first, when the pair moved under it.
"""

import time
from collections.abc import Sequence
from typing import Any

from sharedcore.render import names
from sharedcore_testbed.checker import Row
from sharedcore_testbed.nemesis.checks import Settled, Violation
from sharedcore_testbed.nemesis.convergence import Observer
from sharedcore_testbed.nemesis.timeline import Timeline
from sharedcore_testbed.nemesis.windows import Loss, Move, at_two_primaries, judge, windows
from sharedcore_testbed.sampler import PrimarySampler
from sharedcore_testbed.traffic import Traffic
from sharedcore_testbed.writer import Ack

# After a settle, until the writer writes at the active site: the pair converged, so this is the client's own
# way back (its DNS lookup, its connection to a primary that may still be starting), not a move.
WRITES_RESUME_S = 120.0
OBSERVER_WAIT_S = 10.0
# A Failover deleted while at one of these steps may have promoted its target before it went.
PROMOTING = ("Promote", "Redirect", "Verify")


class OneWritable:
    """Never two writable primaries: `pg_is_in_recovery()` false at both sites in one 100 ms tick."""

    name = "one-writable"

    def __init__(self, sampler: PrimarySampler, timeline: Timeline) -> None:
        self.sampler, self.timeline = sampler, timeline
        self.found: list[Violation] = []
        self._since = self._scanned = 0.0

    def start(self) -> None:
        self._since = self._scanned = self.timeline.wall_started  # the sampler runs already

    def settled(self, state: Settled) -> list[Violation]:
        self._scan(time.time() - 1)  # a tick a second old has every site's answer
        return []

    def final(self, at: float) -> list[Violation]:
        self._scan(time.time())
        return list(self.found)

    def stop(self) -> None:
        return  # the sampler is its Traffic's

    def _scan(self, until: float) -> None:
        ticks = [
            (at, sorted(site for site, writable in found.items() if writable))
            for at, found in self.sampler.samples().items()
            if self._scanned <= at < until
        ]
        self._scanned = max(self._scanned, until)
        for run in _runs([(at, sites) for at, sites in ticks if len(sites) > 1], self.sampler.tick):
            detail = (
                f"two writable primaries ({', '.join(run[0][1])}) in {len(run)} ticks over "
                f"{run[-1][0] - run[0][0] + self.sampler.tick:.1f}s"
            )
            violation = Violation(self.name, self.timeline.of_epoch(run[0][0]), detail)
            self.found.append(violation)
            self.timeline.note(f"found {self.name}: {detail}", at=violation.time)

    def figures(self) -> dict[str, Any]:
        ticks = [found for at, found in self.sampler.samples().items() if at >= self._since]
        sites = sorted({site for found in ticks for site in found})
        return {
            "ticks": len(ticks),
            "ticks_writable": {site: sum(bool(found.get(site)) for found in ticks) for site in sites},
            "ticks_unanswered": {site: sum(found.get(site) is None for found in ticks) for site in sites},
            "ticks_two_writable": sum(sum(bool(w) for w in found.values()) > 1 for found in ticks),
        }


def _runs(ticks: list[tuple[float, list[str]]], tick: float) -> list[list[tuple[float, list[str]]]]:
    """Consecutive ticks, grouped."""
    runs: list[list[tuple[float, list[str]]]] = []
    for entry in ticks:
        if runs and entry[0] - runs[-1][-1][0] <= tick * 1.5:
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


class NoLostWrites:
    """After each settle: no acknowledged write lost outside a recorded data-loss window, and no row
    committed by a server that was not the primary (`windows`)."""

    name = "no-lost-writes"

    def __init__(self, traffic: Traffic, observer: Observer, timeline: Timeline) -> None:
        self.traffic, self.observer, self.timeline = traffic, observer, timeline
        database = traffic.database
        self.servers = {names.database_cluster(database.service, site): site for site in database.sites}
        self.found: list[Violation] = []
        self.losses: list[Loss] = []
        self.checks = self.checked = 0
        self._judged: set[int] = set()
        self._two: set[Row] = set()
        self._since = 0.0
        self._failures = 0

    def start(self) -> None:
        self._since = self.timeline.wall_started  # what was lost before the run is not this run's
        self._failures = self.traffic.writer.failures

    def settled(self, state: Settled) -> list[Violation]:
        self._check(state.active, state.at)
        return []

    def final(self, at: float) -> list[Violation]:
        return list(self.found)

    def stop(self) -> None:
        return  # the writer is its Traffic's

    def _violate(self, at: float, detail: str) -> None:
        self.found.append(Violation(self.name, at, detail))
        self.timeline.note(f"found {self.name}: {detail}", at=at)

    def _check(self, active: str, at: float) -> None:
        try:
            self.traffic.writing_at(active, timeout=WRITES_RESUME_S)
        except TimeoutError as error:
            self._violate(at, f"{error} (the pair converged with {active} active)")
            return
        asked = time.monotonic()
        acks = [ack for ack in list(self.traffic.writer.acks) if ack.at >= self._since]
        rows = self.traffic.rows(active)
        held = rows.get(active)
        if held is None:
            self._violate(at, f"the database at {active}, the active site, could not be read")
            return
        moves = self._moves(asked)
        present = {row.seq for row in held if row.writer == self.traffic.writer.name}
        lost = [ack for ack in acks if ack.seq not in present and ack.seq not in self._judged]
        self._judged |= {ack.seq for ack in lost}
        judged = judge(lost, windows(moves, acks))
        self.losses += judged
        self.checks, self.checked = self.checks + 1, len(acks)
        for window in {loss.window for loss in judged if loss.window is not None}:
            count = sum(loss.window == window for loss in judged)
            self.timeline.note(
                f"{count} acknowledged writes lost inside {window.move.name}'s recorded data-loss window "
                f"({window.move.window}s)"
            )
        if outside := [loss.ack for loss in judged if loss.window is None]:
            self._violate(
                at,
                f"{len(outside)} acknowledged writes lost outside every recorded data-loss window: "
                + self._span(outside),
            )
        readable = [row for found in rows.values() if found for row in found if row.at >= self._since]
        two = [row for row in at_two_primaries(readable, moves, self.servers) if row not in self._two]
        self._two |= set(two)
        if two:
            shown = ", ".join(
                f"{r.seq} by {r.origin} at {self.timeline.of_epoch(r.at):.1f}s" for r in two[:5]
            )
            self._violate(at, f"{len(two)} rows committed by a server that was not the primary: {shown}")

    def _moves(self, asked: float) -> list[Move]:
        """The Failovers that promoted their target (or may have), once the observer has looked since
        `asked`."""
        deadline = asked + OBSERVER_WAIT_S
        while self.observer.last_pass < asked and time.monotonic() < deadline:
            time.sleep(0.1)
        now = time.time()
        return [
            Move(
                c.name,
                c.source,
                c.target,
                c.created,
                now if c.ended is None else self.timeline.epoch(c.ended),
                c.window,
            )
            for c in list(self.observer.courses.values())
            if (c.promoted or (c.deleted and c.step in PROMOTING)) and c.source and c.target and c.created
        ]

    def _span(self, acks: Sequence[Ack]) -> str:
        by_site = sorted({ack.site for ack in acks})
        first, last = min(acks, key=lambda a: a.at), max(acks, key=lambda a: a.at)
        return (
            f"numbers {first.seq}..{last.seq} acknowledged at {', '.join(by_site)} from "
            f"{self.timeline.of_epoch(first.at):.1f}s to {self.timeline.of_epoch(last.at):.1f}s"
        )

    def figures(self) -> dict[str, Any]:
        inside: dict[str, dict[str, Any]] = {}
        for loss in self.losses:
            if loss.window is not None:
                move = loss.window.move
                entry = inside.setdefault(move.name, {"lost": 0, "window_s": move.window})
                entry["lost"] += 1
        return {
            "checks": self.checks,
            "acknowledged": len([a for a in list(self.traffic.writer.acks) if a.at >= self._since]),
            "checked": self.checked,
            "lost": len(self.losses),
            "lost_inside_windows": inside,
            "lost_outside_windows": sum(loss.window is None for loss in self.losses),
            "rows_at_two_primaries": len(self._two),
            "writer_failures": self.traffic.writer.failures - self._failures,
        }
