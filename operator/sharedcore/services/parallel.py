"""The parallel run's health, from what its reconciliation job wrote (pure).

The job (rendered by `render.parallel`) writes to the ConfigMap `<name>-parallel-run`: `checkedAt` (RFC 3339),
`previousReachable` (true/false), `previousInForce`, `newInForce` and `missing` (dossiers in force at the
previous system that the new one lacks). ParallelRunHealthy is False when the previous system is down, when
dossiers are missing, and once endDate has passed (people decide then: nothing is deleted); True otherwise,
reason EndingSoon in the last 30 days.
"""

import datetime
from dataclasses import dataclass
from typing import Any

from sharedcore.api import ParallelRun
from sharedcore.kube import conditions

CONDITION = "ParallelRunHealthy"
ENDING_SOON_DAYS = 30


@dataclass(frozen=True)
class Assessment:
    condition: conditions.Want
    status: dict[str, Any]  # SharedService status.parallelRun
    previous_up: bool | None
    missing: int | None
    days_left: int


def _count(data: dict[str, str], key: str) -> int | None:
    value = data.get(key, "")
    return int(value) if value.isdigit() else None


def assess(run: ParallelRun, data: dict[str, str] | None, today: datetime.date) -> Assessment:
    data = data or {}
    end = datetime.date.fromisoformat(run.end_date)
    days_left = (end - today).days
    reachable = {"true": True, "false": False}.get(data.get("previousReachable", ""))
    missing = _count(data, "missing")
    status: dict[str, Any] = {"daysLeft": days_left}
    for key, value in (
        ("previousSystemReachable", reachable),
        ("dossiersInForcePrevious", _count(data, "previousInForce")),
        ("dossiersInForce", _count(data, "newInForce")),
        ("dossiersMissing", missing),
        ("lastCheckTime", data.get("checkedAt") or None),
    ):
        if value is not None:
            status[key] = value
    previous = run.previous_system.name
    if days_left < 0:
        want = conditions.Want(
            CONDITION,
            False,
            "Ended",
            f"the parallel run with {previous} ended on {run.end_date}, {-days_left} days ago; nothing was "
            "deleted: decide whether to stop the previous system (then remove spec.parallelRun) or extend "
            "endDate",
        )
    elif not data.get("checkedAt"):
        want = conditions.Want(CONDITION, None, "NotChecked", "the reconciliation job has not reported yet")
    elif reachable is False:
        want = conditions.Want(
            CONDITION,
            False,
            "PreviousSystemUnreachable",
            f"{previous} did not answer at {run.previous_system.url}",
        )
    elif missing:
        want = conditions.Want(
            CONDITION,
            False,
            "DossiersMissing",
            f"{missing} dossiers in force at {previous} are missing from this system",
        )
    elif days_left <= ENDING_SOON_DAYS:
        want = conditions.Want(
            CONDITION, True, "EndingSoon", f"the parallel run with {previous} ends in {days_left} days"
        )
    else:
        want = conditions.Want(
            CONDITION, True, "Healthy", f"{previous} answers and no dossier in force is missing here"
        )
    return Assessment(want, status, reachable, missing, days_left)
