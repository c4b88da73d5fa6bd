"""Whether a standby's database can follow the new primary where it stands, or must be copied anew.

CloudNativePG (1.28) moves the primary between sites without a new copy only through its handshake: the
demoted primary's `demotionToken` becomes the new primary's `promotionToken`, the new primary promotes once it
has replayed up to it, and the old one follows from there. A Cluster promoted without that token (a failover)
starts a new timeline at whatever it had replayed; the old primary may hold writes past that point, and
CloudNativePG does not `pg_rewind` a primary demoted into a replica cluster (only an old primary inside one
Cluster), so PostgreSQL refuses to follow ("new timeline forked off current database system timeline before
current recovery point") and the replica stays behind for good, while CloudNativePG reports it healthy.

So at a site that is now Standby, a Cluster last rendered here as Active or Fenced at an earlier epoch but
epoch 0 (it was, or may have been, a writable primary) follows in place only if the peer's primary was
promoted with this Cluster's demotion token. Otherwise it is copied anew (`services.rebuild`), its volumes
kept for people.
The labels the render puts on every object say the role and epoch a Cluster was last rendered for.
"""

import enum
from typing import Any

from sharedcore import API_GROUP
from sharedcore.api import Role

Body = dict[str, Any]
ROLE_LABEL = f"{API_GROUP}/role"
EPOCH_LABEL = f"{API_GROUP}/epoch"


class Verdict(enum.Enum):
    FOLLOWS = "follows"  # nothing to decide, or the handshake was made: render and apply as usual
    UNKNOWN = "unknown"  # cannot tell yet (the peer's primary not seen): leave the Cluster as it is
    DIVERGED = "diverged"  # copy it anew, keeping its volumes


def _was_primary(own: Body, role: Role, epoch: int) -> str | None:
    """How this site last rendered its Cluster, if as a (possible) primary before the current epoch."""
    labels = own["metadata"].get("labels") or {}
    rendered, rendered_epoch = labels.get(ROLE_LABEL), labels.get(EPOCH_LABEL, "")
    if role is not Role.STANDBY or rendered not in (Role.ACTIVE, Role.FENCED) or not rendered_epoch.isdigit():
        return None
    # Epoch 0 is before the pair first agreed on an active site: nothing was primary then (a site starts
    # Fenced, its Cluster a replica).
    if not 0 < int(rendered_epoch) < epoch:
        return None
    return f"{own['metadata']['name']} was {rendered} at epoch {rendered_epoch}"


def verdict(own: Body | None, peer: Body | None, role: Role, epoch: int) -> tuple[Verdict, str]:
    """`own`: this site's Cluster as it is; `peer`: the peer's Cluster (None: it could not be read);
    `role`, `epoch`: this site's now."""
    was = _was_primary(own, role, epoch) if own else None
    if own is None or was is None:
        return Verdict.FOLLOWS, ""
    if peer is None:
        return Verdict.UNKNOWN, f"{was}: the peer's Cluster is unread"
    replica = (peer.get("spec") or {}).get("replica") or {}
    if replica.get("primary") != peer["metadata"]["name"]:
        return Verdict.UNKNOWN, f"{was}: the peer's Cluster is not primary yet"
    token = (own.get("status") or {}).get("demotionToken")
    if token and token in {
        replica.get("promotionToken"),
        (peer.get("status") or {}).get("lastPromotionToken"),
    }:
        return Verdict.FOLLOWS, ""
    return Verdict.DIVERGED, (
        f"{was} and {peer['metadata']['name']} was promoted without its demotion token (a failover): "
        "it may hold writes the new primary never had"
    )
