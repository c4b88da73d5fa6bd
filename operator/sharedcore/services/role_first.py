"""After a change of role, what a Failover waits for goes out first, for every service, before the rest.

A Failover's steps wait on each service's database and DNS record: FenceSource for the source's databases
demoted and records withdrawn, FinalSync for its file replication triggered, Promote for the target's
databases primaries, Redirect for its records published. A full reconcile writes those among a dozen other
objects, several round trips to an API server; through a bounded pool of workers, the fiftieth service's
database waited for forty-nine whole reconciles (`bench/failover.py`: 50 services, 10 s and more for every
database to be promoted). So a reconcile that finds such objects drifted writes them alone, in one round
trip, and queues its service again behind the others: every service's database and record first, then the
rest of every service. What is written is what the full pass writes, from the same render after the same
checks, one service at a time as always: only the order across services changes.

The objects: those whose form depends on the role (they carry the role label: the database Cluster, the site
ConfigMap, the file replication) where they exist already, updated in place; and the DNS records, created
or withdrawn (a record refers to nothing, and nothing refers to it). Creating the others waits for the full
pass, which creates what they refer to first.
"""

from collections.abc import Callable, Iterable

from sharedcore import Body
from sharedcore.kube.cache import ObjectKey, key_of
from sharedcore.replication import retained
from sharedcore.replication.diverged import ROLE_LABEL
from sharedcore.services.drift import drifted_field

RECORD = "DNSEndpoint"


def _role_dependent(obj: Body) -> bool:
    return ROLE_LABEL in ((obj.get("metadata") or {}).get("labels") or {})


def first(
    desired: Iterable[Body],
    live: Callable[[ObjectKey], Body | None],
    owned: Iterable[Body],
    drift: Callable[[Body, Body | None], str | None] = drifted_field,
) -> tuple[list[tuple[Body, str]], list[Body]]:
    """What to write first (each drifted object with where it drifted, as `drift` finds it) and the records to
    withdraw (`owned`: the service's objects here); nothing unless an object whose form depends on the role
    drifted (a change of role): a new service, say, is created in order by the full pass."""
    desired = list(desired)
    wave: list[tuple[Body, str]] = []
    records: list[tuple[Body, str]] = []
    for obj in desired:
        found = live(key_of(obj))
        if found is not None and retained.is_retained(found):
            continue  # adopting a retained copy is the full pass's
        first_here = obj["kind"] == RECORD or (found is not None and _role_dependent(obj))
        if first_here and (where := drift(obj, found)) is not None:
            (records if obj["kind"] == RECORD else wave).append((obj, where))
    if not wave:
        return [], []
    wanted = {key_of(obj) for obj in desired}
    return wave + records, [obj for obj in owned if obj["kind"] == RECORD and key_of(obj) not in wanted]
