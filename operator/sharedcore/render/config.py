"""The two ConfigMaps of a service: its settings, and the site it runs at.

They are split because they change for different reasons. A settings change must roll the pods (their
template carries a checksum of it); a role change must not, so the site ConfigMap is mounted as a volume
whose files the kubelet refreshes in place, and the application watches them.
"""

from __future__ import annotations

import hashlib
import json

from sharedcore.render import names
from sharedcore.render.context import Manifest, RenderContext
from sharedcore.render.profile import render_template

CONFIG_COMPONENT = "config"


def settings_data(ctx: RenderContext) -> dict[str, str]:
    """The profile's env entries and config files, rendered from the platform's settings."""
    variables = {
        "settings": ctx.settings,
        "service": {"name": ctx.name, "namespace": ctx.namespace},
    }
    data = {key: render_template(expression, variables) for key, expression in ctx.profile.env.items()}
    data.update((key, render_template(source, variables)) for key, source in ctx.profile.templates.items())
    return dict(sorted(data.items()))


def checksum(data: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def site_data(ctx: RenderContext) -> dict[str, str]:
    data = {
        "SHAREDCORE_SITE": ctx.site.name,
        "SHAREDCORE_ROLE": str(ctx.site.role),
        "SHAREDCORE_EPOCH": str(ctx.site.epoch),
    }
    if ctx.site.peer is not None:
        data["SHAREDCORE_PEER_SITE"] = ctx.site.peer.name
    return data


def config_maps(ctx: RenderContext, settings: dict[str, str]) -> list[Manifest]:
    return [
        ctx.manifest(
            "v1", "ConfigMap", names.settings_config(ctx.name), CONFIG_COMPONENT, by_role=False, data=settings
        ),
        ctx.manifest("v1", "ConfigMap", names.site_config(ctx.name), CONFIG_COMPONENT, data=site_data(ctx)),
    ]
