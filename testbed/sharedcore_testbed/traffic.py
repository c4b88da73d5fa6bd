"""A service's database under continuous writes while sharedcore moves it: the writer following the service's
DNS record, the sampler watching both sites, and after each move the checker's count next to what sharedcore
recorded. Used by the real-database tests, `bench/failover.py --real` and `make demo` with a real database.

    with Traffic(ServiceDatabase(sites, namespace, "opendata", ingress=ADDRESSES)) as traffic:
        since = time.time()
        ...a switchover or a failover, its Failover's status in `status`...
        move = traffic.after_move(status, primary="quangnam", since=since)
        assert move.lost == 0 and not traffic.sampler.two_writable()
"""

import datetime
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from sharedcore_testbed.checker import Report, check, read_rows
from sharedcore_testbed.sampler import PrimarySampler
from sharedcore_testbed.targets import ServiceDatabase
from sharedcore_testbed.writer import Writer


def _step_seconds(status: Mapping[str, Any], name: str) -> float | None:
    """How long a Failover's step took, from its recorded times."""
    step = next((s for s in status.get("steps") or [] if s.get("name") == name), None)
    if not step or not step.get("startTime") or not step.get("completionTime"):
        return None
    start, end = (datetime.datetime.fromisoformat(step[key]) for key in ("startTime", "completionTime"))
    return round((end - start).total_seconds(), 2)


@dataclass(frozen=True)
class Move:
    """What one move cost, as sharedcore recorded it and as the writer and the checker saw it."""

    report: Report
    lost: int  # acknowledged writes lost by this move
    outside_window: int  # of them, acknowledged before the recorded data-loss window began
    rto_recorded: float | None  # the Failover's status.rtoSeconds
    window_recorded: float | None  # its dataLossWindowSeconds
    fence_seconds: float | None  # its FenceSource step: the source fenced, its databases demoted by CNPG
    promote_seconds: float | None  # its Promote step: the epoch claimed, CloudNativePG promoting the target

    def figures(self) -> dict[str, float | int | None]:
        return {
            "rto_recorded_s": self.rto_recorded,
            "rto_writer_s": None if self.report.writer_rto is None else round(self.report.writer_rto, 2),
            "acknowledged_lost": self.lost,
            "lost_outside_window": self.outside_window,
            "window_recorded_s": self.window_recorded,
            "fence_s": self.fence_seconds,
            "promote_s": self.promote_seconds,
        }


class Traffic:
    def __init__(self, database: ServiceDatabase) -> None:
        self.database = database
        self.writer = Writer(database.service, database.located)
        self.sampler = PrimarySampler({site: self._at(site) for site in database.sites})
        self._missing: set[int] = set()  # acknowledged numbers lost by earlier moves

    def _at(self, site: str) -> Any:
        return lambda: self.database.at(site)

    def __enter__(self) -> Self:
        self.sampler.start()
        self.writer.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.writer.stop()
        self.sampler.stop()

    def rows(self, primary: str, timeout: float = 240) -> dict[str, Any]:
        """Each site's rows (None where its database does not answer), once the primary's could be read
        (a just-promoted primary may still be starting)."""
        deadline = time.monotonic() + timeout
        while True:
            found: dict[str, Any] = {}
            for site in self.database.sites:
                target = self.database.at(site)
                try:
                    found[site] = read_rows(target.conninfo) if target else None
                except Exception:  # a site that is down, or not serving for a moment
                    found[site] = None
            if found.get(primary) is not None or time.monotonic() > deadline:
                return found
            time.sleep(1)

    def writing_at(self, site: str, count: int = 10, timeout: float = 120) -> None:
        """Until `count` writes were acknowledged at `site` after now."""
        since = time.time()
        deadline = time.monotonic() + timeout
        while len([a for a in self.writer.acknowledged_since(since) if a.site == site]) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {count} writes acknowledged at {site}: {self.writer.last_error}")
            time.sleep(0.1)

    def baseline(self, primary: str) -> None:
        """Take what is lost now as lost before the next move (moves this Traffic did not check)."""
        self.writing_at(primary)
        acks = list(self.writer.acks)
        self._missing = set(
            check(acks, self.rows(primary), writer=self.writer.name, primary=primary, since=0).missing
        )

    def after_move(self, status: Mapping[str, Any], *, primary: str, since: float) -> Move:
        """Check the databases once `primary` serves the writer again after a move begun at `since`."""
        self.writing_at(primary)
        acks = list(self.writer.acks)
        report = check(acks, self.rows(primary), writer=self.writer.name, primary=primary, since=since)
        lost = [seq for seq in report.missing if seq not in self._missing]
        self._missing.update(lost)
        window = status.get("dataLossWindowSeconds")
        outside = 0
        if report.last_before is not None and lost:
            # Lost, yet acknowledged more than the recorded window before the old primary's last answer.
            begins = report.last_before.at - float(window or 0.0)
            acked = {ack.seq: ack.at for ack in acks}
            outside = len([seq for seq in lost if acked[seq] < begins])
        return Move(
            report=report,
            lost=len(lost),
            outside_window=outside,
            rto_recorded=status.get("rtoSeconds"),
            window_recorded=window,
            fence_seconds=_step_seconds(status, "FenceSource"),
            promote_seconds=_step_seconds(status, "Promote"),
        )
