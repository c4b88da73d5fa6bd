"""How many pods each component runs, by site role and standby mode."""

from __future__ import annotations

from typing import Any

from sharedcore.api import Role, StandbyMode
from sharedcore.render.profile import Component, ComponentRole


def active_replicas(component: Component, spec_replicas: int | None, settings: dict[str, Any]) -> int:
    """Replicas at the active site: a worker's driving setting, else spec.replicas for serving components,
    else the profile's default."""
    if component.replicas_from is not None:
        return int(settings[component.replicas_from])
    if component.role is ComponentRole.SERVING and spec_replicas is not None:
        return spec_replicas
    return component.replicas


def component_site_replicas(
    component: Component, active: int, role: Role, standby: StandbyMode, settings: dict[str, Any]
) -> int:
    """Replicas of `component` at a site of `role`: an active-only component (one that writes, such as an
    archive's ingest) runs nowhere but at the active site, and one serving the standby's own traffic (its
    setting on) runs there in full, whatever the standby mode."""
    if role is Role.STANDBY:
        if component.active_only:
            return 0
        if component.serves_standby_when is not None and settings[component.serves_standby_when]:
            return active
    return site_replicas(active, role, standby)


def site_replicas(active: int, role: Role, standby: StandbyMode) -> int:
    """Replicas at a site of `role`, given the active count.

    A Warm standby keeps one pod of each component that runs at all (so its images are pulled and its
    configuration proven) and a Cold one none. A fenced site runs nothing: it must not write.
    """
    if role is Role.ACTIVE:
        return active
    if role is Role.FENCED:
        return 0
    if standby is StandbyMode.HOT:
        return active
    if standby is StandbyMode.WARM:
        return min(active, 1)
    return 0
