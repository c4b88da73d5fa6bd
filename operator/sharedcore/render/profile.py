"""Platform profiles: the packaged `profiles/<slug>/` folders, read once and validated.

A profile is a `profile.yaml` descriptor plus optional `*.yaml.j2` config templates. The renderer finds a
platform's profile by scanning the folders and matching `platform`, so adding a platform is adding a folder.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Annotated, Any, Literal, Self

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from sharedcore.api import Platform

PROFILE_FILE = "profile.yaml"
TEMPLATE_SUFFIX = ".j2"

_DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, StringConstraints(pattern=_DNS_1035_LABEL, max_length=30)]
PgIdentifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=63)]
PortName = Annotated[
    str, StringConstraints(pattern=_DNS_1035_LABEL, max_length=15)
]  # IANA service name limit
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]


class _Descriptor(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ComponentRole(StrEnum):
    SERVING = "serving"  # answers requests; replicas follow spec.replicas
    WORKER = "worker"  # background work; replicas follow a setting or the profile default


class Port(_Descriptor):
    name: PortName
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP"] = "TCP"


class Probe(_Descriptor):
    """One health check used for startup, readiness and liveness: HTTP GET when `path` is set, else TCP."""

    port: PortName
    path: str | None = None


class EgressRule(_Descriptor):
    """Traffic a component sends outside the cluster (push gateways, harvest sources, SIP carriers…)."""

    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP"] = "TCP"


class Component(_Descriptor):
    name: Name
    role: ComponentRole
    web_facing: bool = False  # the Ingress backend; admits traffic from anywhere on its ports
    external: bool = False  # takes non-HTTP traffic from outside (e.g. SIP trunks): a LoadBalancer Service
    replicas: int = Field(default=1, ge=0)  # active replicas when neither spec.replicas nor a setting applies
    replicas_from: str | None = None  # setting (camelCase) that sets an active worker's replica count
    enabled_when: str | None = None  # boolean setting (camelCase) without which the component is not rendered
    active_only: bool = False  # runs only at the active site: no replicas in any standby mode (e.g. ingest)
    serves_standby_when: str | None = None  # boolean setting under which it serves at the standby too
    ports: tuple[Port, ...]  # at least the probe's, so every component has a Service
    probe: Probe
    resources: dict[Literal["requests", "limits"], dict[str, str]]
    env: tuple[EnvName, ...] = ()  # keys of the settings ConfigMap passed to the container
    database: bool = False  # connects to the service's PostgreSQL
    files_mount: str | None = None  # where the service's files volume is mounted, if at all
    egress: tuple[EgressRule, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        port_names = [port.name for port in self.ports]
        if len(set(port_names)) != len(port_names):
            raise ValueError(f"component {self.name}: duplicate port names")
        if self.probe.port not in port_names:
            raise ValueError(f"component {self.name}: probe port {self.probe.port!r} is not one of its ports")
        if self.replicas_from is not None:
            if self.role is not ComponentRole.WORKER:
                raise ValueError(f"component {self.name}: only workers take replicas from a setting")
            if "replicas" in self.model_fields_set:
                raise ValueError(f"component {self.name}: replicas and replicasFrom are exclusive")
        if self.web_facing and self.role is not ComponentRole.SERVING:
            raise ValueError(f"component {self.name}: a web-facing component must be serving")
        if self.active_only and self.serves_standby_when is not None:
            raise ValueError(f"component {self.name}: activeOnly and servesStandbyWhen are exclusive")
        return self


class Database(_Descriptor):
    name: PgIdentifier  # the application database, also its owner role


class Files(_Descriptor):
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = "ReadWriteOnce"


class Profile(_Descriptor):
    platform: Platform
    slug: Name  # the folder name; set by the loader
    image: str  # default image repository; each component's image is <image>/<component>:<version>
    database: Database
    files: Files = Files()
    env: dict[EnvName, str] = {}  # settings ConfigMap entries, each a Jinja expression over `settings`
    components: tuple[Component, ...]
    # Setting (camelCase) naming a second host that the standby site publishes, for what it serves there
    standby_host: str | None = None
    templates: dict[str, str] = {}  # ConfigMap key -> Jinja source; set by the loader from *.j2 files

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = [component.name for component in self.components]
        if len(set(names)) != len(names):
            raise ValueError(f"profile {self.slug}: duplicate component names")
        if sum(component.web_facing for component in self.components) != 1:
            raise ValueError(f"profile {self.slug}: exactly one component must be web-facing")
        for component in self.components:
            unknown = set(component.env) - set(self.env)
            if unknown:
                raise ValueError(
                    f"component {component.name}: env {sorted(unknown)} not in the profile's env"
                )
        return self

    @property
    def web_component(self) -> Component:
        return next(component for component in self.components if component.web_facing)


class ProfileError(Exception):
    """No profile, or a broken one, for a platform."""


def _read_profile(folder: Traversable) -> Profile:
    descriptor: dict[str, Any] = yaml.safe_load((folder / PROFILE_FILE).read_text(encoding="utf-8"))
    templates = {
        entry.name.removesuffix(TEMPLATE_SUFFIX): entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if entry.name.endswith(TEMPLATE_SUFFIX)
    }
    try:
        return Profile.model_validate({**descriptor, "slug": folder.name, "templates": templates})
    except ValueError as error:
        raise ProfileError(f"profile {folder.name}: {error}") from error


@functools.cache
def profiles() -> dict[Platform, Profile]:
    """Every packaged profile, by platform value."""
    root = resources.files("sharedcore") / "profiles"
    found: dict[Platform, Profile] = {}
    for folder in sorted(root.iterdir(), key=lambda entry: entry.name):
        if not (folder / PROFILE_FILE).is_file():
            continue
        profile = _read_profile(folder)
        if profile.platform in found:
            raise ProfileError(f"platform {profile.platform} has two profiles")
        found[profile.platform] = profile
    return found


def profile_for(platform: str) -> Profile:
    try:
        return profiles()[Platform(platform)]
    except (KeyError, ValueError):
        raise ProfileError(f"no profile for platform {platform!r}") from None


_JINJA = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # renders YAML and plain values, never HTML
)


@functools.cache
def _compile(source: str) -> jinja2.Template:
    return _JINJA.from_string(source)


def render_template(source: str, variables: dict[str, Any]) -> str:
    return _compile(source).render(variables)
