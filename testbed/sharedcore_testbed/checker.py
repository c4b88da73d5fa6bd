"""What a move cost, counted from the databases themselves: the checker reads the writer's rows at both sites
after a move and compares them with the writer's acknowledgements (sharedcore_testbed.writer).

    rows = {site: read_rows(conninfo) or None for site in sites}     # None: that database is unreachable
    report = check(writer.acks, rows, writer=writer.name, primary="quangnam", since=move_started)

- `missing`: acknowledged writes absent from the primary's database: what the move lost.
- `at_two_primaries`: rows committed by a primary after another one had already taken over within the same
  move (server time, same machine clock), and rows with one number committed by two different servers: a
  split brain at the database level. Always empty in a correct run.
- the outage as the writer saw it: the longest silence between two acknowledged writes after `since`, with
  the last acknowledged write before it and the first after (the RTO a client sees).
"""

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sharedcore_testbed.writer import TABLE, Ack, connect


@dataclass(frozen=True)
class Row:
    writer: str
    seq: int
    origin: str  # the cluster_name of the server that committed it
    at: float  # the server's commit-time clock, epoch seconds


@dataclass(frozen=True)
class Report:
    acknowledged: int
    missing: tuple[int, ...]  # acknowledged numbers the primary lacks
    at_two_primaries: tuple[Row, ...]
    last_before: Ack | None  # the outage as the writer saw it
    first_after: Ack | None
    rows: Mapping[str, int | None] = field(default_factory=dict)  # rows each database holds (None: unread)

    @property
    def writer_rto(self) -> float | None:
        if self.last_before is None or self.first_after is None:
            return None
        return self.first_after.at - self.last_before.at

    def summary(self) -> str:
        rto = f"{self.writer_rto:.2f} s" if self.writer_rto is not None else "n/a"
        return (
            f"{self.acknowledged} acknowledged, {len(self.missing)} lost, "
            f"{len(self.at_two_primaries)} at two primaries, writer's RTO {rto}"
        )


def read_rows(conninfo: str) -> list[Row]:
    """Every row of the writers' table, as the database at `conninfo` holds them now."""
    with connect(conninfo) as connection:
        exists = connection.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()
        if not exists or not exists[0]:
            return []
        found = connection.execute(
            f"SELECT writer, seq, origin, extract(epoch FROM at)::float8 FROM {TABLE}"
        ).fetchall()
    return [Row(str(w), int(str(s)), str(o), float(str(a))) for w, s, o, a in found]


def outage(acks: Sequence[Ack], since: float) -> tuple[Ack | None, Ack | None]:
    """The longest silence between acknowledged writes after `since`, or one already under way then (the
    writer failing before the move began): the last acknowledged before it, the first after."""
    earlier = [ack for ack in acks if ack.at < since]
    window = earlier[-1:] + [ack for ack in acks if ack.at >= since]
    if len(window) < 2:
        return (window[0] if window else None), None
    gaps = itertools.pairwise(window)
    before, after = max(gaps, key=lambda pair: pair[1].at - pair[0].at)
    return before, after


def two_primaries(rows: Iterable[Row], since: float) -> list[Row]:
    """Rows committed after `since` by a server that another one had already succeeded (in commit-time order),
    and rows of one number committed by two servers."""
    found: list[Row] = []
    by_key: dict[tuple[str, int], Row] = {}
    for row in rows:
        seen = by_key.setdefault((row.writer, row.seq), row)
        if seen.origin != row.origin:
            found.append(row)
    current: str | None = None
    retired: set[str] = set()
    for row in sorted((r for r in by_key.values() if r.at >= since), key=lambda r: r.at):
        if row.origin == current:
            continue
        if row.origin in retired:
            found.append(row)
            continue
        if current is not None:
            retired.add(current)
        current = row.origin
    return found


def check(
    acks: Sequence[Ack],
    rows: Mapping[str, Sequence[Row] | None],
    *,
    writer: str,
    primary: str,
    since: float,
) -> Report:
    """Compare `writer`'s acknowledgements (all of them: a write lost in an earlier move stays lost) with the
    rows each site's database holds (None: unreachable); `primary` names the site whose database must hold
    every acknowledged write. Rows at two primaries are looked for among every writer's rows after `since`."""
    held = rows.get(primary)
    if held is None:
        raise ValueError(f"the primary's database ({primary}) could not be read")
    present = {row.seq for row in held if row.writer == writer}
    readable = [row for found in rows.values() if found is not None for row in found]
    return Report(
        acknowledged=len(acks),
        missing=tuple(ack.seq for ack in acks if ack.seq not in present),
        at_two_primaries=tuple(two_primaries(readable, since)),
        last_before=outage(acks, since)[0],
        first_after=outage(acks, since)[1],
        rows={site: None if found is None else len(found) for site, found in rows.items()},
    )
