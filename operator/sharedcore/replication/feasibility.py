"""Whether the links between the sites can carry a service's copies within its objective: ReplicationFeasible.

Pure. The budget is what the Topology's links may give replication (bandwidth x replicationPercent, summed).
From it and the service's size follows how long the first full copy takes (files.size plus one database
instance's storage, the replica's base backup): until it has completed no failover can be lossless. From the
bytes the last copy of the files sent (VolSync's rsync mover reports them in the ReplicationSource's
status.latestMoverStatus.logs) follows how long each copy keeps the links busy: a failover may lose what was
written since the last copy began, syncIntervalSeconds plus that transfer, which must stay within rpoSeconds.
The database's WAL is not measured here: its lag, measured at the standby, is ReplicationHealthy's.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sharedcore.api import Link, SharedService
from sharedcore.kube import conditions
from sharedcore.replication.capacity import quantity_bytes, readable

CONDITION = "ReplicationFeasible"
_BANDWIDTH = re.compile(r"^([0-9]+)(M|G)bps$")
# rsync's summary, as VolSync keeps it: "sent 1.23G bytes  received 35 bytes ..." (-h: units of 1000)
_SENT = re.compile(r"\bsent ([0-9][0-9,]*(?:\.[0-9]+)?)([KMGTP]?) bytes")
_DECIMAL = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}


def bandwidth_bps(bandwidth: str) -> int:
    match = _BANDWIDTH.match(bandwidth)
    if match is None:
        raise ValueError(f"not a bandwidth: {bandwidth!r}")
    return int(match[1]) * (10**6 if match[2] == "M" else 10**9)


def budget_bps(links: Sequence[Link]) -> float:
    return sum(bandwidth_bps(link.bandwidth) * link.replication_percent / 100 for link in links)


def sent_bytes(source: dict[str, Any] | None) -> int | None:
    """What the last copy of the files sent, from a ReplicationSource's mover logs; None if not reported."""
    logs = (((source or {}).get("status") or {}).get("latestMoverStatus") or {}).get("logs") or ""
    match = _SENT.search(str(logs))
    if match is None:
        return None
    return round(float(match[1].replace(",", "")) * _DECIMAL[match[2]])


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def rate(bps: float) -> str:
    return f"{bps / 10**9:g} Gbps" if bps >= 10**9 else f"{bps / 10**6:g} Mbps"


@dataclass(frozen=True)
class Feasibility:
    condition: conditions.Want
    feasible: bool
    initial_copy_seconds: float


def assess(
    service: SharedService, links: Sequence[Link], source: dict[str, Any] | None
) -> Feasibility | None:
    """None without links (nothing to judge by), else the verdict with its figures."""
    budget = budget_bps(links)
    if not links or budget <= 0:
        return None
    spec = service.spec
    size = (quantity_bytes(spec.files.size) if spec.files.enabled else 0) + (
        quantity_bytes(spec.database.storage) if spec.database.enabled else 0
    )
    initial = size * 8 / budget
    first = (
        f"the first full copy ({readable(size)}) takes about {duration(initial)} on {rate(budget)} "
        f"({', '.join(link.name for link in links)}): no failover is lossless before it completes"
    )
    sent = sent_bytes(source) if spec.files.enabled else None
    if sent is None:
        verdict = "no copy of the files measured here yet" if spec.files.enabled else "no files to copy"
        return Feasibility(
            conditions.Want(CONDITION, True, "Estimated", f"{first}; {verdict}"), True, initial
        )
    transfer = sent * 8 / budget
    window = spec.files.sync_interval_seconds + transfer
    each = f"each copy of the files sends {readable(sent)} (the last one), {duration(transfer)} on the links"
    rpo = spec.objectives.rpo_seconds
    if round(window) <= rpo:
        message = f"{each}: a failover loses at most {window:.0f} s, within rpoSeconds {rpo}; {first}"
        return Feasibility(conditions.Want(CONDITION, True, "Feasible", message), True, initial)
    message = (
        f"{each}: with syncIntervalSeconds {spec.files.sync_interval_seconds} a failover may lose "
        f"{window:.0f} s, above rpoSeconds {rpo}; widen the links' share, raise rpoSeconds, or write less; "
        f"{first}"
    )
    return Feasibility(conditions.Want(CONDITION, False, "ChangeRateAboveLinks", message), False, initial)
