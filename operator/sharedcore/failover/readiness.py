"""Whether automatic failover is armed: the standby's `AutomaticFailoverReady` condition.

In Automatic mode the standby reports, continuously, whether an automatic failover would pass its
preconditions if the active site were lost now: this site stands by, it reaches the witness, both sites
run with the same failover settings, no Failover is under way, and every service's data-loss window is
known and within its `rpoSeconds` (the plan is the one CheckPreconditions would make). When it would not,
the reason says why, so that nobody learns it only when the site is lost. Messages name services, never
moving figures, so that the condition changes (and is written) only when the verdict does.
"""

import dataclasses
import datetime
from collections.abc import Iterable, Sequence

from sharedcore import Body
from sharedcore.api import FailoverMode, FailoverType, Role, Topology
from sharedcore.failover import triggers
from sharedcore.failover.plan import Situation, make_plan
from sharedcore.failover.situation import FilesSynced, situation
from sharedcore.kube import conditions
from sharedcore.sites.settings import FailoverSettings
from sharedcore.sites.views import PairObservation, PairView

CONDITION = "AutomaticFailoverReady"


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _not_ready(reason: str, message: str) -> conditions.Want:
    return conditions.Want(CONDITION, False, reason, message)


def _why_unknown(services: Iterable[Body], unknown: Sequence[str]) -> str:
    """What the first such service's ReplicationHealthy condition says (e.g. no --prometheus-url)."""
    for service in services:
        meta = service["metadata"]
        if f"{meta['namespace']}/{meta['name']}" == unknown[0]:
            found = conditions.find((service.get("status") or {}).get("conditions"), "ReplicationHealthy")
            if found and found.get("message"):
                return f"{unknown[0]}: {found['message']}"
    return f"{unknown[0]}: its replication is not measured yet"


def automatic_failover_ready(
    site: str,
    view: PairObservation,
    topology: Topology,
    *,
    pair: PairView,
    services: list[Body],
    files_synced: FilesSynced,
    now: datetime.datetime,
    running: Iterable[str] = (),
) -> conditions.Want | None:
    """The condition; None where it does not apply (Manual mode, or this site is the active one)."""
    if topology.spec.failover.mode is not FailoverMode.AUTOMATIC or view.state.active_site == site:
        return None
    # Were the active site lost now, it would have been writing until now.
    facts = situation(
        dataclasses.replace(pair, peer_reachable=True), services, now, running, files_synced=files_synced
    )
    problem = _pair_problem(site, view, topology) or _data_problem(facts, services)
    if problem is not None:
        return problem
    message = f"an automatic failover to {site} would pass its preconditions now ({len(services)} services)"
    return conditions.Want(CONDITION, True, "Ready", message)


def _pair_problem(site: str, view: PairObservation, topology: Topology) -> conditions.Want | None:
    state = view.state
    if state.role is not Role.STANDBY:
        return _not_ready("NotStandby", f"{site} is {state.role}, not standing by: {state.message}")
    if view.witness is None or not view.witness.reachable:
        return _not_ready(
            "WitnessUnreachable", "the witness cannot be reached: a standby never promotes then"
        )
    if view.peer_settings is not None and triggers.peer_without_witness(view):
        # Durations that differ are judged by the longer one; a peer without a witness is not fenced by it.
        differences = "; ".join(FailoverSettings.of(topology).differences(view.peer_settings))
        message = f"the peer runs without the witness, so its Lease cannot fence it ({differences})"
        return _not_ready("SettingsMismatch", message)
    return None


def _data_problem(facts: Situation, services: list[Body]) -> conditions.Want | None:
    plan = make_plan(FailoverType.FAILOVER, False, facts)
    rpo = {(s.namespace, s.name): s.rpo_seconds for s in facts.services}
    windows = {(s.namespace, s.name): s.data_loss_window_seconds for s in plan.services}
    unknown = [f"{ns}/{name}" for (ns, name), window in windows.items() if window is None]
    over = [
        f"{ns}/{name}"
        for (ns, name), window in windows.items()
        if window is not None and window > rpo[ns, name]
    ]
    if unknown:
        message = (
            f"the data-loss window of {_shown(unknown)} is unknown, so an automatic failover would be "
            f"refused: {_why_unknown(services, unknown)}"
        )
        return _not_ready("DataLossWindowUnknown", message)
    if over:
        message = (
            f"{_shown(over)} would lose more than its rpoSeconds: an automatic failover would be refused"
        )
        return _not_ready("AboveObjective", message)
    other = [p for p in plan.problems if p.reason != "DataLossNotAccepted"]
    return _not_ready(other[0].reason, other[0].message) if other else None
