"""A standby's database that diverged (`replication.diverged`) is copied anew from the new primary, its old
volumes kept: the cheapest safe path CloudNativePG 1.28 leaves (it cannot rewind a demoted primary of a
replica cluster, and a Cluster whose instances lost their volumes is unrecoverable: the Cluster itself is
made again).

1. Each of the Cluster's volumes moves to a claim of its own, `<claim>-diverged-e<epoch>` (the epoch it was
   last rendered for), labelled as a retained copy: its PersistentVolume is set to Retain, then bound to the
   new claim. Nothing deletes it but a person (README: Failover, switchover, failback).
2. The Cluster and its old claims are deleted, at once (not in the foreground: that leaves the Cluster to the
   garbage collector, which after a control plane's restart took minutes to let it go).
3. Once no claim of the old Cluster is left (`leftovers`: CloudNativePG names claims after the Cluster, and
   would meet them), the next render creates it again, in standby form: CloudNativePG copies the new
   primary with pg_basebackup across the link.
Every step is idempotent: an operator killed in between does the rest on its next pass.
"""

import datetime
from typing import Any

from sharedcore import API_GROUP
from sharedcore.kube.client import ApiError
from sharedcore.kube.resources import CLUSTERS, PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES
from sharedcore.render.names import bounded
from sharedcore.replication import retained
from sharedcore.replication.diverged import EPOCH_LABEL
from sharedcore.services.runtime import Runtime

Body = dict[str, Any]
CNPG_CLUSTER_LABEL = "cnpg.io/cluster"
DIVERGED_FROM = f"{API_GROUP}/diverged-from"  # on a kept claim: the claim it held the volume for


def kept_claim_name(claim: str, epoch: str) -> str:
    return bounded(f"{claim}-diverged-e{epoch}")


def _kept_claim(claim: Body, name: str, because: str) -> Body:
    spec = claim["spec"]
    marks = retained.marks(because, datetime.datetime.now(datetime.UTC))
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "namespace": claim["metadata"]["namespace"],
            "labels": marks["labels"],
            "annotations": {**marks["annotations"], DIVERGED_FROM: claim["metadata"]["name"]},
        },
        "spec": {
            key: spec[key]
            for key in ("accessModes", "resources", "storageClassName", "volumeMode", "volumeName")
            if key in spec
        },
    }


async def _keep(rt: Runtime, claim: Body, epoch: str, because: str) -> str:
    """Move one claim's volume to a kept claim of its own; its name."""
    meta, volume = claim["metadata"], claim["spec"].get("volumeName")
    name = kept_claim_name(meta["name"], epoch)
    if not volume:
        return name  # never bound: no data to keep
    await rt.client.patch(
        PERSISTENT_VOLUMES, volume, None, {"spec": {"persistentVolumeReclaimPolicy": "Retain"}}
    )
    kept = await rt.client.get(PERSISTENT_VOLUME_CLAIMS, name, meta["namespace"])
    if kept is None:
        try:
            kept = await rt.client.create(PERSISTENT_VOLUME_CLAIMS, _kept_claim(claim, name, because))
        except ApiError as error:
            if error.status != 409:
                raise
            kept = await rt.client.get(PERSISTENT_VOLUME_CLAIMS, name, meta["namespace"])
    if kept is not None:
        reference = {"namespace": meta["namespace"], "name": name, "uid": kept["metadata"]["uid"]}
        claim_ref = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "resourceVersion": None}
        claim_ref |= reference
        await rt.client.patch(PERSISTENT_VOLUMES, volume, None, {"spec": {"claimRef": claim_ref}})
    return name


async def _claims(rt: Runtime, namespace: str, cluster: str) -> list[Body]:
    """The claims CloudNativePG made for a Cluster of this name."""
    return await rt.client.list(PERSISTENT_VOLUME_CLAIMS, namespace, labels={CNPG_CLUSTER_LABEL: cluster})


async def leftovers(rt: Runtime, namespace: str, cluster: str) -> list[str]:
    """The claims a deleted Cluster of this name left, still terminating."""
    return sorted(claim["metadata"]["name"] for claim in await _claims(rt, namespace, cluster))


async def rebuild(rt: Runtime, service: Body, cluster: Body, because: str) -> list[str]:
    """Keep the diverged Cluster's volumes and delete it; returns the kept claims."""
    meta = cluster["metadata"]
    epoch = (meta.get("labels") or {}).get(EPOCH_LABEL, "0")
    claims = await _claims(rt, meta["namespace"], meta["name"])
    where = f"{rt.site().name}: {because}"
    kept = [await _keep(rt, claim, epoch, where) for claim in claims]
    if not meta.get("deletionTimestamp"):
        await rt.client.delete(CLUSTERS, meta["name"], meta["namespace"])
        rt.cache.remove(cluster)
        for claim in claims:  # their volumes are the kept claims' now
            await rt.client.delete(PERSISTENT_VOLUME_CLAIMS, claim["metadata"]["name"], meta["namespace"])
        message = (
            f"{because}. Copying it anew from the new primary; its volumes are kept as "
            f"{', '.join(kept) or 'nothing (none was bound)'}: delete them once their data is not needed"
        )
        await rt.recorder.record(service, "Warning", "DatabaseDiverged", message)
    return kept
