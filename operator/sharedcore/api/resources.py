"""The top-level resources, and validating a manifest as the API server would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sharedcore.api.common import Resource
from sharedcore.api.failover import Failover
from sharedcore.api.sharedservice import SharedService
from sharedcore.api.topology import Topology

RESOURCES: tuple[type[Resource], ...] = (SharedService, Topology, Failover)
KINDS: dict[str, type[Resource]] = {resource.model_fields["kind"].default: resource for resource in RESOURCES}


def validate_manifest(manifest: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> Resource:
    """The object of `manifest`, checked as on create or, given `previous`, as an update of it.

    Raises ValidationError (see `kube_errors` for the API server's wording), or ValueError for a kind that
    is not ours.
    """
    resource = KINDS.get(manifest.get("kind", ""))
    if resource is None:
        raise ValueError(f"not a sharedcore kind: {manifest.get('kind')!r}")
    obj = resource.model_validate(manifest)
    if previous is not None:
        obj.validate_update(resource.model_validate(previous))
    return obj
