"""What every builder needs: the service, the site, the platform's profile and settings, and the labels."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from sharedcore import API_GROUP
from sharedcore.api import SETTINGS_FIELDS, PlatformSettings, SharedService, SharedServiceSpec
from sharedcore.render import names
from sharedcore.render.profile import Component, Profile, profile_for
from sharedcore.render.site import SiteContext

Manifest = dict[str, Any]

MANAGER = "sharedcore"
SITE_ANNOTATION = f"{API_GROUP}/site"


class RenderError(ValueError):
    """A SharedService that the models accept but that cannot be rendered."""


@dataclass(frozen=True)
class RenderContext:
    service: SharedService
    site: SiteContext
    profile: Profile
    settings: dict[str, Any]  # the platform's settings as in YAML (camelCase), defaults filled in
    name: str  # the base of object names (see names.base)
    namespace: str

    @classmethod
    def build(cls, service: SharedService, site: SiteContext) -> RenderContext:
        namespace = service.metadata.namespace
        if not namespace:
            raise RenderError(f"SharedService {service.metadata.name}: metadata.namespace is required")
        return cls(
            service=service,
            site=site,
            profile=profile_for(service.spec.platform),
            settings=platform_settings(service.spec),
            name=names.base(service.metadata.name),
            namespace=namespace,
        )

    @property
    def components(self) -> list[Component]:
        """The profile's components this service runs: those whose `enabledWhen` setting is on."""
        return [
            component
            for component in self.profile.components
            if component.enabled_when is None or bool(self.settings[component.enabled_when])
        ]

    @property
    def standby_host(self) -> str | None:
        """The second host the profile names by a setting (an archive's read-only look-ups), if set."""
        key = self.profile.standby_host
        host = self.settings[key] if key is not None else None
        return str(host) if host else None

    def instance_selector(self) -> dict[str, str]:
        """The labels that select all of this service's pods."""
        return {
            "app.kubernetes.io/name": self.profile.slug,
            "app.kubernetes.io/instance": names.label_value(self.service.metadata.name),
        }

    def selector(self, component: str) -> dict[str, str]:
        """The labels that select a component's pods: never role or epoch, which change on failover."""
        return {**self.instance_selector(), "app.kubernetes.io/component": component}

    def stable_labels(self, component: str) -> dict[str, str]:
        """Labels that never change for a component at a site, so a pod template can carry them."""
        return {
            **self.selector(component),
            "app.kubernetes.io/managed-by": MANAGER,
            "app.kubernetes.io/part-of": MANAGER,
            f"{API_GROUP}/service": names.label_value(self.service.metadata.name),
            f"{API_GROUP}/platform": str(self.service.spec.platform),
        }

    def labels(self, component: str) -> dict[str, str]:
        return {
            **self.stable_labels(component),
            f"{API_GROUP}/role": str(self.site.role),
            f"{API_GROUP}/epoch": str(self.site.epoch),
        }

    def manifest(
        self, api_version: str, kind: str, name: str, component: str, *, by_role: bool = True, **body: Any
    ) -> Manifest:
        """An object of this service, with the common metadata; `body` holds spec, data and the like.

        Only an object whose form depends on the site's role (`by_role`) carries the role and epoch labels:
        one that reads the same at every role stays untouched when the site changes role, so a promotion
        writes only what it changes."""
        metadata = {
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels(component) if by_role else self.stable_labels(component),
            "annotations": {SITE_ANNOTATION: self.site.name},
        }
        return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def platform_settings(spec: SharedServiceSpec) -> dict[str, Any]:
    """The platform's own settings, or its settings model's defaults when unset."""
    field = SETTINGS_FIELDS[spec.platform]
    value = getattr(spec.settings, field)
    if value is None:
        value = _model_type(PlatformSettings.model_fields[field].annotation)()
    dumped: dict[str, Any] = value.model_dump(mode="json", by_alias=True)
    return dumped


def _model_type(annotation: Any) -> type[BaseModel]:
    """The model in an optional annotation such as `DocumentManagementSettings | None`."""
    (model,) = (
        candidate
        for candidate in typing.get_args(annotation)
        if isinstance(candidate, type) and issubclass(candidate, BaseModel)
    )
    return model
