"""What a Failover would do, and whether it may: computed purely from what the target site observes.

The same plan serves a dry run (recorded, nothing changed: phase Planned) and the CheckPreconditions step.

Data-loss window of a service: how much of its history the target does not have. The source wrote until it
was last seen (its last heartbeat, or now while it is still up); the target holds everything up to its last
successful sync. So the window is `last_seen - last_sync` for files (VolSync) and, for the database
(CloudNativePG), the replication lag while it streams (plus, when the source cannot be reached, the time it
may have written since this site last saw it), or `last_seen - complete_at` once its WAL receiver stopped
(complete up to when WAL last arrived, see `replication.lag`); the larger of the two; unknown if either is
unknown. A switchover's final sync closes the window to 0.
"""

import datetime
from dataclasses import dataclass, field

from sharedcore.api import MAX_FAILOVER_SERVICES, FailoverType, Role
from sharedcore.sites.state import Handover

SETTLING = "PairSettling"


@dataclass(frozen=True)
class ServiceReplica:
    """What the target site knows of one service's replicated state."""

    namespace: str
    name: str
    rpo_seconds: float
    database_lag_seconds: float | None = None  # None: unknown or not streaming (see database_complete_at)
    files_last_sync: datetime.datetime | None = None
    database_enabled: bool = True
    files_enabled: bool = True
    database_complete_at: datetime.datetime | None = None  # not streaming: complete up to here, if known

    def data_loss_window(self, source_last_seen: datetime.datetime, source_unseen: float) -> float | None:
        windows = []
        if self.database_enabled:
            if self.database_lag_seconds is not None:
                windows.append(self.database_lag_seconds + source_unseen)
            elif self.database_complete_at is not None:
                windows.append((source_last_seen - self.database_complete_at).total_seconds())
            else:
                return None
        if self.files_enabled:
            if self.files_last_sync is None:
                return None
            windows.append((source_last_seen - self.files_last_sync).total_seconds())
        return round(max(0.0, *windows), 3) if windows else 0.0


@dataclass(frozen=True)
class Situation:
    """The world as the target site sees it when the Failover is planned."""

    target: str
    sites: tuple[str, ...]
    active_site: str | None
    epoch: int
    source_reachable: bool
    source_last_seen: datetime.datetime  # until when the source may have written
    services: tuple[ServiceReplica, ...]
    running: tuple[str, ...] = ()  # other Failovers under way at the target
    source_unseen_seconds: float = 0.0  # of that, how long after this site last saw it
    # When this site last saw the source Active (now if it answers; None if never): its clients' outage
    # began there, detection included, so a failover's RTO counts from it.
    source_last_active: datetime.datetime | None = None
    # The target's own role now, and why (its state's message): `active_site` is the claim it recorded,
    # which lags behind its role for a moment after each move.
    target_role: Role = field(kw_only=True)
    target_why: str = field(kw_only=True)
    peer_handover: Handover | None = None  # a Failover the other site announces it is executing


@dataclass(frozen=True)
class Problem:
    """A failed precondition: `reason` is the CamelCase word automation matches on."""

    reason: str
    message: str


@dataclass(frozen=True)
class ServicePlan:
    namespace: str
    name: str
    data_loss_window_seconds: float | None


@dataclass(frozen=True)
class Plan:
    type: FailoverType
    source: str | None
    target: str
    from_epoch: int
    to_epoch: int
    services: tuple[ServicePlan, ...]
    problems: tuple[Problem, ...]
    source_last_seen: datetime.datetime
    source_last_active: datetime.datetime | None

    @property
    def data_loss_window_seconds(self) -> float | None:
        """The worst window over all services; None if any is unknown."""
        windows = [s.data_loss_window_seconds for s in self.services]
        if any(w is None for w in windows):
            return None
        return max((w for w in windows if w is not None), default=0.0)

    @property
    def feasible(self) -> bool:
        return not self.problems


def _source(situation: Situation) -> str | None:
    others = [site for site in situation.sites if site != situation.target]
    return (
        situation.active_site
        if situation.active_site != situation.target
        else (others[0] if others else None)
    )


def listing(names: list[str], shown: int = 5) -> str:
    """The first few of `names` and how many more: a message stays short with thousands of services."""
    rest = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {rest} more" if rest > 0 else "")


def _data_loss_problems(
    situation: Situation, windows: dict[tuple[str, str], float | None], accept_data_loss: bool
) -> list[Problem]:
    if accept_data_loss:
        return []
    unknown = [f"{ns}/{name}" for (ns, name), window in windows.items() if window is None]
    over = [
        f"{s.namespace}/{s.name} ({windows[(s.namespace, s.name)]:.0f}s > {s.rpo_seconds:.0f}s)"
        for s in situation.services
        if (w := windows[(s.namespace, s.name)]) is not None and w > s.rpo_seconds
    ]
    problems = []
    if unknown:
        problems.append(
            Problem(
                "DataLossNotAccepted",
                f"data-loss window unknown for {listing(unknown)}: set acceptDataLoss to proceed",
            )
        )
    if over:
        problems.append(
            Problem(
                "DataLossNotAccepted",
                f"data-loss window above the RPO for {listing(over)}: set acceptDataLoss to proceed",
            )
        )
    return problems


def _unsettled(situation: Situation) -> Problem | None:
    """Why the pair has not settled from a previous move, if it has not: a plan made now would start from a
    passing view (a stale epoch), or move the roles while a move executing at the other site still runs."""
    why = []
    if (handover := situation.peer_handover) is not None:
        why.append(
            f"{handover.to_site} is still executing Failover {handover.failover} (to epoch {handover.epoch})"
        )
    if situation.target_role is not Role.ACTIVE and situation.active_site == situation.target:
        # Handing over (a move to the peer under way, or just ended and not taken in here yet), or unable
        # to prove its claim.
        why.append(
            f"{situation.target} is {situation.target_role}, not Active, though its recorded claim names it "
            f"({situation.target_why})"
        )
    return Problem(SETTLING, f"the pair has not settled: {'; '.join(why)}") if why else None


def make_plan(failover_type: FailoverType, accept_data_loss: bool, situation: Situation) -> Plan:
    """The steps, the per-service data-loss windows, and every precondition that fails."""
    problems: list[Problem] = []
    if situation.target not in situation.sites:
        problems.append(
            Problem(
                "UnknownSite",
                f"{situation.target} is not a site of the Topology ({', '.join(situation.sites)})",
            )
        )
    if len(situation.services) > MAX_FAILOVER_SERVICES:
        problems.append(
            Problem(
                "TooManyServices",
                f"{len(situation.services)} services: one Failover moves at most {MAX_FAILOVER_SERVICES} "
                "(its status must stay one object the API server can store)",
            )
        )
    if situation.target_role is Role.ACTIVE:
        problems.append(Problem("AlreadyActive", f"{situation.target} is already the active site"))
    if (unsettled := _unsettled(situation)) is not None:
        problems.append(unsettled)
    if situation.running:
        running = ", ".join(situation.running)
        problems.append(
            Problem("FailoverInProgress", f"Failover {running} is under way: roles move once at a time")
        )
    switchover = failover_type == FailoverType.SWITCHOVER
    if switchover and not situation.source_reachable:
        problems.append(
            Problem(
                "SourceUnreachable",
                f"{_source(situation)} cannot be reached: a switchover needs both sites; use type Failover",
            )
        )
    last_seen = situation.source_last_seen
    windows = {
        (s.namespace, s.name): s.data_loss_window(last_seen, situation.source_unseen_seconds)
        for s in situation.services
    }
    if switchover:
        # The final sync brings the target level with the fenced source: nothing is lost.
        windows = {key: 0.0 for key in windows}
    else:
        problems += _data_loss_problems(situation, windows, accept_data_loss)
    return Plan(
        type=failover_type,
        source=_source(situation),
        target=situation.target,
        from_epoch=situation.epoch,
        to_epoch=situation.epoch + 1,
        services=tuple(
            ServicePlan(s.namespace, s.name, windows[(s.namespace, s.name)]) for s in situation.services
        ),
        problems=tuple(problems),
        source_last_seen=last_seen,
        source_last_active=situation.source_last_active,
    )
