"""SharedService status, computed purely from the service, what was rendered and what the cache holds.

kstatus reads it as: observedGeneration behind → InProgress; Reconciling=True → InProgress; Stalled=True →
Failed; otherwise Current, with Ready saying whether every serving component is available.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sharedcore import Body
from sharedcore.api import SharedServiceStatus, dump
from sharedcore.kube import conditions
from sharedcore.kube.cache import ObjectKey, key_of
from sharedcore.render import SiteContext


@dataclass(frozen=True)
class Blocker:
    """Why the operator cannot make progress (a Stalled reason), or why it chose not to (paused)."""

    reason: str
    message: str


def components(desired: list[Body], lookup: Callable[[ObjectKey], Body | None]) -> list[Body]:
    """Deployments (serving and workers) and the database, with replicas as rendered and as observed."""
    rows = []
    for obj in desired:
        live = lookup(key_of(obj)) or {}
        observed = live.get("status", {})
        if obj["kind"] == "Deployment":
            want = obj["spec"].get("replicas", 1)
            ready = observed.get("availableReplicas", 0) if _current(live) else 0
        elif obj["kind"] == "Cluster":
            want, ready = obj["spec"].get("instances", 1), observed.get("readyInstances", 0)
        else:
            continue
        rows.append(
            {"name": obj["metadata"]["name"], "kind": obj["kind"], "replicas": want, "readyReplicas": ready}
        )
    return rows


def _current(live: Body) -> bool:
    """The Deployment controller has seen the latest spec (otherwise its counts describe an older one)."""
    metadata, observed = live.get("metadata", {}), live.get("status", {})
    return bool(live) and observed.get("observedGeneration", 0) >= metadata.get("generation", 0)


def _ready(rows: list[Body]) -> tuple[bool, str]:
    deployments = [row for row in rows if row["kind"] == "Deployment"]
    waiting = [
        f"{row['name']} {row['readyReplicas']}/{row['replicas']}"
        for row in deployments
        if row["readyReplicas"] < row["replicas"]
    ]
    if waiting:
        return False, "waiting for " + ", ".join(waiting)
    return True, f"all {len(deployments)} components available"


def build(
    service: Body,
    site: SiteContext,
    rows: list[Body],
    blocker: Blocker | None,
    *,
    paused: bool,
    replication: conditions.Want,
    replication_status: Body | None = None,
    extra: Sequence[conditions.Want] = (),
    parallel_run: Body | None = None,
    now: str,
) -> Body:
    generation = service["metadata"].get("generation", 0)
    current = service.get("status") or {}
    ready, ready_message = _ready(rows)
    if paused:
        reconciling = conditions.Want(
            "Reconciling", False, "Paused", "spec.paused is true: sharedcore changes nothing for this service"
        )
    elif blocker:
        reconciling = conditions.Want("Reconciling", False, blocker.reason, blocker.message)
    elif not ready:
        reconciling = conditions.Want("Reconciling", True, "Progressing", ready_message)
    else:
        reconciling = conditions.Want("Reconciling", False, "Reconciled", "the service matches its spec")
    stalled = (
        conditions.Want("Stalled", True, blocker.reason, blocker.message)
        if blocker and not paused
        else conditions.Want("Stalled", False, "NotStalled", "nothing blocks reconciliation")
    )
    if blocker and not paused:  # kstatus: a stalled object is not ready, whatever its Deployments say
        readiness = conditions.Want("Ready", False, blocker.reason, blocker.message)
    else:
        readiness = conditions.Want(
            "Ready", ready, "Available" if ready else "ComponentsNotReady", ready_message
        )
    wanted = [
        readiness,
        reconciling,
        stalled,
        replication,
        *extra,
    ]
    status = {
        "observedGeneration": generation,
        "conditions": conditions.merge(current.get("conditions") or [], wanted, generation, now),
        "site": site.name,
        "role": site.role,
        "epoch": site.epoch,
        "components": rows,
        "replication": replication_status,
        "parallelRun": parallel_run,
    }
    return dump(SharedServiceStatus.model_validate(status))  # the model's shape, checked on every write


def differs(current: Body | None, new: Body) -> bool:
    """Whether writing `new` would change anything (timestamps are kept by `conditions.merge`)."""
    return (current or {}) != new
