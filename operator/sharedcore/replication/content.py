"""What configuration replication copies, and how a copy at the standby compares with its source.

Copied: a SharedService's spec, a Secret's data (and type, on creation), a ConfigMap's data and binaryData,
and their labels. Annotations stay with their site (GitOps tools keep per-cluster bookkeeping there), apart
from the three that replication writes: the origin site, its epoch, and a digest of the content written.
A copy that already holds its source's content is left alone, whoever put it there: GitOps applying the same
manifests at both sites causes no write. A copy that no longer matches the digest written with it was edited
at the standby: it is overwritten, and the caller reports the edit.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from sharedcore import API_GROUP, Body
from sharedcore.kube.patches import merge_patch
from sharedcore.kube.resources import MANAGED_BY
from sharedcore.replication import retained

REPLICATE_LABEL = f"{API_GROUP}/replicate"
OPT_IN = {REPLICATE_LABEL: "true"}  # on a Namespace, at both sites: replication may write there
ORIGIN_SITE = f"{API_GROUP}/origin-site"
ORIGIN_EPOCH = f"{API_GROUP}/origin-epoch"
DIGEST = f"{API_GROUP}/replicated-digest"
ORIGIN_UID = f"{API_GROUP}/origin-uid"  # which object at the active site a copy was made from
COMPARED = {"SharedService": ("spec",), "Secret": ("data",), "ConfigMap": ("data", "binaryData")}
CREATED_WITH = {"Secret": ("type",)}  # immutable once created
_MISSING = object()


def is_source(obj: Body, excluded_namespace: str) -> bool:
    """Whether `obj`, at the active site, is replicated."""
    meta = obj["metadata"]
    if meta.get("deletionTimestamp") or meta.get("namespace") == excluded_namespace:
        return False
    if obj["kind"] == "SharedService":
        return True
    labels = meta.get("labels") or {}
    # What the operator renders exists at each site already: never copied.
    return labels.get(REPLICATE_LABEL) == "true" and not MANAGED_BY.items() <= labels.items()


def content(obj: Body) -> Body:
    return {field: obj[field] for field in COMPARED[obj["kind"]] if field in obj}


def digest(value: Body) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:32]


def fingerprint(obj: Body) -> str:
    """Changes exactly when what replication copies changes (not on status or bookkeeping writes)."""
    return digest({"content": content(obj), "labels": obj["metadata"].get("labels") or {}})


def _marks(site: str, epoch: int, copied: Body, source: Body) -> dict[str, str]:
    uid = source["metadata"].get("uid")
    return {ORIGIN_SITE: site, ORIGIN_EPOCH: str(epoch), DIGEST: digest(copied)} | (
        {ORIGIN_UID: uid} if uid else {}
    )


def origin_uid(obj: Body) -> str | None:
    return (obj["metadata"].get("annotations") or {}).get(ORIGIN_UID)


def replaced(source: Body, copy: Body) -> bool:
    """Whether `copy` was made from an earlier object of the same name: deleted and created again at the
    active site, perhaps with new, empty data. Such a copy is not updated in place."""
    made_from, uid = origin_uid(copy), source["metadata"].get("uid")
    return bool(made_from and uid and made_from != uid)


def copy_of(source: Body, site: str, epoch: int) -> Body:
    """The object to create at the standby."""
    meta = source["metadata"]
    copied = content(source)
    extra = {field: source[field] for field in CREATED_WITH.get(source["kind"], ()) if field in source}
    metadata = {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "annotations": _marks(site, epoch, copied, source),
    }
    if meta.get("labels"):
        metadata["labels"] = meta["labels"]
    kind = {"apiVersion": source["apiVersion"], "kind": source["kind"]}
    return {**kind, "metadata": metadata, **extra, **copied}


def origin_epoch(copy: Body) -> int:
    value = (copy["metadata"].get("annotations") or {}).get(ORIGIN_EPOCH, "")
    return int(value) if value.isdigit() else 0


def orphaned(copy: Body, epoch: int) -> bool:
    """Whether a copy without a source is replication's to delete: written by replication (from either
    site), and not under a later epoch. Objects created at the standby by anyone else stay."""
    return ORIGIN_SITE in (copy["metadata"].get("annotations") or {}) and origin_epoch(copy) <= epoch


@dataclass(frozen=True)
class Update:
    """A merge patch bringing a copy back to its source; `edited` names a field changed at the standby."""

    patch: Body
    action: Literal["update", "revert"]
    edited: str | None


def update(source: Body, copy: Body, site: str, epoch: int) -> Update | None:
    """What to write to `copy` so that it holds `source`'s content; None if it already does."""
    want, have = content(source), content(copy)
    labels = source["metadata"].get("labels") or {}
    have_labels = copy["metadata"].get("labels") or {}
    missing_labels = {key: value for key, value in labels.items() if have_labels.get(key) != value}
    revived = retained.is_retained(copy)  # its source is back: no longer a retained copy
    if want == have and not missing_labels and not revived:
        return None
    written = (copy["metadata"].get("annotations") or {}).get(DIGEST)
    edited = written is not None and written != digest(have)
    unmarked = retained.unmarks() if revived else {"labels": {}, "annotations": {}}
    patch: Body = {
        "metadata": {
            "resourceVersion": copy["metadata"]["resourceVersion"],
            "labels": {**unmarked["labels"], **missing_labels},
            "annotations": {**unmarked["annotations"], **_marks(site, epoch, want, source)},
        },
        **merge_patch(have, want),
    }
    return Update(patch, "revert" if edited else "update", first_difference(want, have) if edited else None)


def first_difference(want: Any, have: Any, path: str = "") -> str | None:
    """The first path (e.g. ".spec.replicas") where the two differ; values are never shown (Secrets)."""
    if isinstance(want, dict) and isinstance(have, dict):
        for key in sorted(set(want) | set(have)):
            found = first_difference(want.get(key, _MISSING), have.get(key, _MISSING), f"{path}.{key}")
            if found is not None:
                return found
        return None
    return None if want == have else path or "."
