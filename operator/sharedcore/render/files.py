"""The service's files: a PVC at each site, copied from the active site to the other by VolSync.

The active site pushes with a ReplicationSource (rsync over TLS) to the ReplicationDestination of the
other site, which writes into its own copy of the PVC. The destination is reached through the Service
VolSync creates for it, `volsync-rsync-tls-dst-<name>`, under the peer's service domain. Both sides share
the pre-shared key Secret `<service>-files-volsync`, provisioned at both sites.
"""

from __future__ import annotations

from typing import Any

from sharedcore.api import Role
from sharedcore.render import names
from sharedcore.render.context import Manifest, RenderContext
from sharedcore.render.site import PeerSite
from sharedcore.render.workloads import APP_UID

FILES_COMPONENT = "files"
VOLSYNC_API = "volsync.backube/v1alpha1"
_MINUTE_STEPS = tuple(step for step in range(1, 60) if 60 % step == 0)
_HOUR_STEPS = tuple(step for step in range(1, 24) if 24 % step == 0)


def files(ctx: RenderContext) -> list[Manifest]:
    spec_files = ctx.service.spec.files
    if not spec_files.enabled:
        return []
    claim: dict[str, Any] = {
        "accessModes": [ctx.profile.files.access_mode],
        "resources": {"requests": {"storage": str(spec_files.size)}},
    }
    if spec_files.storage_class_name is not None:
        claim["storageClassName"] = spec_files.storage_class_name
    volume = names.files_volume(ctx.name)
    objects = [
        ctx.manifest("v1", "PersistentVolumeClaim", volume, FILES_COMPONENT, by_role=False, spec=claim)
    ]
    peer = ctx.site.peer
    if peer is not None:
        if ctx.site.role is Role.ACTIVE or ctx.site.failover.final_sync:
            objects.append(_replication_source(ctx, peer))
        else:
            objects.append(_replication_destination(ctx))
    return objects


def sync_schedule(interval_seconds: int) -> str:
    """A cron schedule for syncing every `interval_seconds`.

    Cron counts whole minutes, and `*/7` would fire at :56 and again at :00, so the interval is rounded
    down to one that divides the hour (or, past an hour, the day) evenly. Rounding down keeps the
    recovery point no older than asked.
    """
    minutes = max(interval_seconds // 60, 1)
    if minutes < 60:
        return f"*/{max(step for step in _MINUTE_STEPS if step <= minutes)} * * * *"
    hours = minutes // 60
    if hours < 24:
        return f"0 */{max(step for step in _HOUR_STEPS if step <= hours)} * * *"
    return "0 0 * * *"


def _mover_security_context() -> dict[str, Any]:
    # The same user as the application, so the unprivileged mover can read and write its files.
    return {
        "runAsNonRoot": True,
        "runAsUser": APP_UID,
        "runAsGroup": APP_UID,
        "fsGroup": APP_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _replication_source(ctx: RenderContext, peer: PeerSite) -> Manifest:
    address = f"{names.files_replication_service(ctx.name)}.{ctx.namespace}.{peer.service_domain}"
    spec = {
        "sourcePVC": names.files_volume(ctx.name),
        "trigger": {"manual": final_sync}
        if (final_sync := ctx.site.failover.final_sync)
        else {"schedule": sync_schedule(ctx.service.spec.files.sync_interval_seconds)},
        "rsyncTLS": {
            "keySecret": names.files_key_secret(ctx.name),
            "address": address,
            "copyMethod": "Snapshot",
            "moverSecurityContext": _mover_security_context(),
        },
    }
    name = names.files_replication(ctx.name)
    return ctx.manifest(VOLSYNC_API, "ReplicationSource", name, FILES_COMPONENT, spec=spec)


def _replication_destination(ctx: RenderContext) -> Manifest:
    spec = {
        "rsyncTLS": {
            "keySecret": names.files_key_secret(ctx.name),
            "copyMethod": "Snapshot",
            "destinationPVC": names.files_volume(ctx.name),
            "serviceType": "ClusterIP",
            "moverSecurityContext": _mover_security_context(),
        },
    }
    name = names.files_replication(ctx.name)
    return ctx.manifest(VOLSYNC_API, "ReplicationDestination", name, FILES_COMPONENT, spec=spec)
