"""Property: any SharedService the models accept renders, at any role, to the same valid objects twice.

The input strategy is derived from the pydantic models' fields (types, bounds, enums, nested models), with
realistic text for the fields whose format a plain string would not meet (names, hosts, quantities…).
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
from typing import Any

import annotated_types
import yaml
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from sharedcore.api import SETTINGS_FIELDS, Platform, PlatformSettings, Role, SharedService, SharedServiceSpec
from sharedcore.render import Manifest, PeerSite, SiteContext, render

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

dns_labels = st.from_regex(r"\A[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")
short_labels = st.from_regex(r"\A[a-z]([-a-z0-9]{0,14}[a-z0-9])?\Z")
hosts = st.lists(short_labels, min_size=1, max_size=3).map(
    lambda labels: ".".join([*labels, "danang.gov.vn"])
)
urls = hosts.map(lambda host: f"https://{host}/api")
quantities = st.one_of(
    st.integers(min_value=1, max_value=2**40),
    st.builds("{}{}".format, st.integers(min_value=1, max_value=4096), st.sampled_from(["Mi", "Gi", "Ti"])),
)

# Fields whose strings have a format; every other field is drawn from its type alone.
FORMATTED: dict[str, st.SearchStrategy[Any]] = {
    "name": dns_labels,
    "namespace": dns_labels,
    "version": st.from_regex(r"\A[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,3}\Z"),
    "image": st.sampled_from(["harbor.danang.gov.vn/sharedcore", "registry.danang.gov.vn:5000/mirror/city"]),
    "host": hosts,
    "class_name": short_labels,
    "tls_secret_name": dns_labels,
    "storage_class_name": short_labels,
    "storage": quantities,
    "size": quantities,
    "harvest_schedule": st.sampled_from(["0 2 * * *", "*/30 * * * *", "15 1 * * 1"]),
    "harvest_sources": st.lists(urls, max_size=3),
    "alert_webhook_url": urls,
    "default_license": st.sampled_from(["CC-BY-4.0", "ODC-BY-1.0"]),
}


def field_values(name: str, field: FieldInfo) -> st.SearchStrategy[Any]:
    if name in FORMATTED:
        return FORMATTED[name]
    return type_values(field.annotation, field.metadata)


def type_values(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(annotation)
    if origin is not None:
        return generic_values(origin, typing.get_args(annotation), metadata)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from(list(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_values(annotation)
    return scalar_values(annotation, metadata)


def generic_values(origin: Any, args: tuple[Any, ...], metadata: list[Any]) -> st.SearchStrategy[Any]:
    if origin in (typing.Union, types.UnionType):
        return st.one_of([st.none() if arg is type(None) else type_values(arg, metadata) for arg in args])
    if origin is typing.Annotated:
        return type_values(args[0], [*metadata, *args[1:]])
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (list, tuple):
        items = type_values(args[0], [])
        hashable = isinstance(args[0], type) and issubclass(args[0], (str, enum.Enum))
        return st.lists(items, max_size=3, unique=hashable)
    if origin is dict:
        return st.dictionaries(short_labels, short_labels, max_size=2)
    raise TypeError(f"no strategy for {origin!r}{args!r}: add the field to FORMATTED")


def scalar_values(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        bounds = {"min_value": 0, "max_value": 10_000}
        for constraint in metadata:
            if isinstance(constraint, annotated_types.Ge):
                bounds["min_value"] = int(constraint.ge)  # type: ignore[call-overload]
            elif isinstance(constraint, annotated_types.Le):
                bounds["max_value"] = int(constraint.le)  # type: ignore[call-overload]
        return st.integers(**bounds)
    if annotation is str:
        return short_labels
    raise TypeError(f"no strategy for {annotation!r}: add the field to FORMATTED")


@st.composite
def model_values(
    draw: st.DrawFn, model: type[BaseModel], fixed: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A camelCase document for `model`: required fields always, optional ones sometimes."""
    fixed = fixed or {}
    document: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        if name in fixed:
            document[key] = fixed[name]
        elif field.is_required() or draw(st.booleans()):
            document[key] = draw(field_values(name, field))
    return document


def settings_model(field: str) -> type[BaseModel]:
    """The settings model of a PlatformSettings field, through its `X | None`."""
    annotation = PlatformSettings.model_fields[field].annotation
    (model,) = (
        arg for arg in typing.get_args(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel)
    )
    return model


# Any name the API server accepts for a custom resource: a DNS subdomain, up to 253 characters.
object_names = st.one_of(
    dns_labels,
    st.from_regex(r"\A[0-9][a-z0-9]{0,10}\Z"),
    st.lists(short_labels, min_size=2, max_size=20).map(".".join).filter(lambda name: len(name) <= 253),
)


@st.composite
def shared_services(draw: st.DrawFn) -> SharedService:
    platform = draw(st.sampled_from(list(Platform)))
    field = SETTINGS_FIELDS[platform]
    # Only the platform's own settings may be set; the models reject the others.
    platform_settings = draw(st.none() | model_values(settings_model(field)))
    settings = {} if platform_settings is None else {field: platform_settings}
    document = {
        "apiVersion": "sharedcore.danang.gov.vn/v1alpha1",
        "kind": "SharedService",
        "metadata": {"name": draw(object_names), "namespace": draw(dns_labels)},
        "spec": draw(model_values(SharedServiceSpec, {"platform": str(platform), "settings": settings})),
    }
    try:
        return SharedService.model_validate(document)
    except ValidationError:
        reject()


addresses = st.one_of(
    st.none(),
    st.ip_addresses().map(str),
    hosts,
)
sites = st.builds(
    SiteContext,
    name=st.sampled_from(["danang", "quangnam"]) | dns_labels,
    role=st.just(Role.ACTIVE),  # each role in turn, by the test
    epoch=st.integers(min_value=0, max_value=2**31),
    ingress_address=addresses,
    peer=st.none() | st.builds(PeerSite, name=dns_labels, service_domain=st.just("svc.clusterset.local")),
)


def check_valid(obj: Manifest) -> None:
    """What the API server (and CNPG, VolSync) would reject, short of a dry run."""
    metadata = obj["metadata"]
    name = metadata["name"]
    assert len(name) <= 63 and DNS_LABEL.match(name), name
    if obj["kind"] in ("Service", "Cluster"):
        assert DNS_1035.match(name), name
    if obj["kind"] == "Cluster":
        assert len(name) <= 50, name
    if obj["kind"] == "ReplicationDestination":
        assert len(f"volsync-rsync-tls-dst-{name}") <= 63, name
    for value in metadata["labels"].values():
        assert len(value) <= 63 and LABEL_VALUE.match(value), value
    for key, text in obj.get("data", {}).items():
        if key.endswith(".yaml"):
            yaml.safe_load(text)  # settings cannot break a rendered config file


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(service=shared_services(), site=sites)
def test_any_valid_service_renders_the_same_way_twice(service: SharedService, site: SiteContext) -> None:
    for role in Role:
        at = dataclasses.replace(site, role=role)
        first = render(service, at)
        assert first == render(service, at)
        assert first, "a service always has objects"
        for obj in first:
            check_valid(obj)
