"""A CloudNativePG demotion that cannot end by itself, and how the operator ends it.

CloudNativePG (1.28) demotes a primary Cluster into a replica one in steps: it fences every instance
(annotation `cnpg.io/fencedInstances: ["*"]`) and sets `status.switchReplicaClusterStatus.inProgress`; once
fenced, the instance manager makes the instance a designated primary (`standby.signal` written) and reports it
(condition `ReplicaClusterDesignatedPrimaryTransition` True); the operator then takes the shutdown checkpoint
from `pg_controldata` as the demotion token, lifts the fence and clears `inProgress`. It takes about a second.
Until it ends, its webhook refuses any change of the Cluster's replica role.

A site lost in that second (every process, the API server's too) can come back with the demotion stuck for
good. Seen on real nodes (`tests/cluster/test_real_database.py`): the instance made the transition but its
report never reached the API server, so the instance (no longer a primary) never makes it again and
CloudNativePG waits for it forever, fenced. The operator ends it the way a person would, each step only once
the demotion has stood still for a while:
- it reports the transition the instance made (the instance reports itself not primary) — only at the
  active site, about to make the Cluster a primary again: were the report wrong, the fence lifted after the
  demotion would start a writable primary, which only the active site may have;
- a transition reported but no token coming means PostgreSQL did not stop cleanly (its control file says "in
  production", and nothing starts a fenced instance to recover it): it lifts the fence (PostgreSQL starts, as
  a standby, and recovers) and restores it a little later (PostgreSQL shuts down cleanly), which is what
  CloudNativePG waited for.
"""

import enum

from sharedcore import API_GROUP, Body
from sharedcore.kube import conditions

FENCED_INSTANCES = "cnpg.io/fencedInstances"
ALL_INSTANCES = '["*"]'
TRANSITION = "ReplicaClusterDesignatedPrimaryTransition"
# Set with the fence lifted, removed with it put back: the cycle survives an operator restart.
RESTARTED = f"{API_GROUP}/demotion-restarted"
REPORTED = "TransitionCompleted"  # the instance manager's reason, with a message that says who reported it
# A demotion takes a second or so (a fast shutdown, the control file read every 10 s at most); one that has
# stood still this long is taken for one that cannot end.
STUCK_SECONDS = 30.0
# The fence goes back this long after it was lifted. The instance manager starts PostgreSQL when it sees the
# fence lifted and stops it when it sees it back, in that order, whenever the second change comes: the wait
# only has to outlast the first change's way to it (CloudNativePG's status says nothing meanwhile).
REFENCE_SECONDS = 15.0


class Step(enum.Enum):
    NONE = "none"  # no demotion in progress
    WAIT = "wait"  # under way: CloudNativePG goes on
    REPORT = "report"  # the transition made but never reported: report it, as the instance manager would have
    UNFENCE = "unfence"  # stuck: lift the fence, PostgreSQL starts and recovers
    REFENCE = "refence"  # the fence lifted a while ago: restore it, PostgreSQL shuts down cleanly


def in_progress(cluster: Body) -> bool:
    status = cluster.get("status") or {}
    return bool((status.get("switchReplicaClusterStatus") or {}).get("inProgress"))


def step(cluster: Body, *, stuck_for: float, active: bool) -> Step:
    """What to do about the Cluster's demotion, `stuck_for` seconds after this operator first saw it in
    progress or last took a step; `active`: whether this site is the active one."""
    if not in_progress(cluster):
        return Step.NONE
    annotations = cluster["metadata"].get("annotations") or {}
    fenced = annotations.get(FENCED_INSTANCES)
    if RESTARTED in annotations:
        return Step.REFENCE if fenced is None and stuck_for >= REFENCE_SECONDS else Step.WAIT
    if fenced != ALL_INSTANCES or stuck_for < STUCK_SECONDS:
        return Step.WAIT
    status = cluster.get("status") or {}
    if conditions.is_true(status.get("conditions"), TRANSITION):
        return Step.UNFENCE
    instance = (status.get("instancesReportedState") or {}).get(status.get("currentPrimary")) or {}
    return Step.REPORT if active and instance.get("isPrimary") is False else Step.WAIT


def write(action: Step, cluster: Body, now: str) -> tuple[str | None, Body]:
    """The write that takes a step: (subresource, merge patch)."""
    if action is Step.REPORT:
        return "status", _transition_reported(cluster, now)
    if action is Step.UNFENCE:
        return None, {"metadata": {"annotations": {FENCED_INSTANCES: None, RESTARTED: now}}}
    return None, {"metadata": {"annotations": {FENCED_INSTANCES: ALL_INSTANCES, RESTARTED: None}}}


def _transition_reported(cluster: Body, now: str) -> Body:
    """The conditions are a list, replaced whole: the resourceVersion makes the patch fail rather than
    overwrite a change made meanwhile."""
    status = cluster.get("status") or {}
    kept = [c for c in status.get("conditions") or [] if c.get("type") != TRANSITION]
    reported = {
        "type": TRANSITION,
        "status": "True",
        "reason": REPORTED,
        "message": "reported by sharedcore: the instance is no longer a primary, its own report was lost",
        "lastTransitionTime": now,
    }
    return {
        "metadata": {"resourceVersion": cluster["metadata"]["resourceVersion"]},
        "status": {"conditions": [*kept, reported]},
    }


def is_primary(cluster: Body) -> bool:
    """Whether the Cluster's spec makes it the primary of the pair (no pair: `replica` unset, it is)."""
    replica = (cluster.get("spec") or {}).get("replica") or {}
    return bool(replica.get("primary") == replica.get("self"))


def changes_role(desired: Body, live: Body) -> bool:
    """Whether applying `desired` moves the Cluster between primary and replica (refused mid-demotion)."""
    return is_primary(desired) != is_primary(live)
