"""What the resources share: the base models, the enums, metadata, conditions and secret references."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from sharedcore import Body
from sharedcore.api.formats import DnsLabel, DnsSubdomain, SecretKey
from sharedcore.api.validation import VALIDATIONS, Rule, check_rules, keyed_by, rules_of, transition_errors

ApiVersion = Literal["sharedcore.danang.gov.vn/v1alpha1"]  # f"{API_GROUP}/{API_VERSION}", as a type

M = TypeVar("M", bound=BaseModel)


class Model(BaseModel):
    """Base of every model: snake_case in Python, camelCase in YAML, unknown fields rejected.

    Attribute docstrings become the schema descriptions that `kubectl explain` shows.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        ignored_types=(Rule,),
    )

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        check_rules(self)
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler, /
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        rules = [declared.cel.schema() for declared in rules_of(cls)]
        if rules:
            handler.resolve_ref_schema(schema)[VALIDATIONS] = rules
        return schema


def dump(model: BaseModel) -> Body:
    """A model as the API server holds it: camelCase, unset optional fields left out."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def defaulted(factory: Callable[[], M]) -> Any:
    """A nested object that defaults to its model's defaults, in the CRD too. Spelt out in full rather than
    `{}`, because the API server checks a default against the object's CEL rules before filling it in."""
    default = dump(factory())
    return Field(default_factory=factory, json_schema_extra={"default": default})


class Platform(enum.StrEnum):
    """A shared platform of the city."""

    DOCUMENT_MANAGEMENT = "DocumentManagement"
    SMART_CITY = "SmartCity"
    OPEN_DATA = "OpenData"
    OPERATIONS_CENTER = "OperationsCenter"
    HOTLINE_1022 = "Hotline1022"
    E_ARCHIVE = "EArchive"
    PUBLIC_SERVICE_PORTAL = "PublicServicePortal"


class StandbyMode(enum.StrEnum):
    """How ready the standby site is to take over."""

    HOT = "Hot"
    WARM = "Warm"
    COLD = "Cold"


class Role(enum.StrEnum):
    """What a site does for a service."""

    ACTIVE = "Active"
    STANDBY = "Standby"
    FENCED = "Fenced"


class DeletionPolicy(enum.StrEnum):
    """What happens to a service's data when the SharedService is deleted."""

    RETAIN = "Retain"
    DELETE = "Delete"


class ConditionStatus(enum.StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Model):
    """One aspect of the object's current state, in the shape of the Kubernetes metav1.Condition."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    """Type of condition in CamelCase, e.g. Ready."""
    status: ConditionStatus
    """Status of the condition: True, False or Unknown."""
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    """Programmatic identifier of the reason for the last transition, in CamelCase."""
    message: str = Field(default="", max_length=32768)
    """Human-readable details about the last transition; may be empty."""
    last_transition_time: AwareDatetime
    """When the condition last changed status."""
    observed_generation: StrictInt | None = Field(default=None, ge=0)
    """The .metadata.generation that the condition was set from."""


Conditions = Annotated[list[Condition], Field(max_length=32), keyed_by("type")]


class OwnerReference(Model):
    """An object that owns this one (the API server's OwnerReference)."""

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(Model):
    """Standard object metadata. The CRDs leave it to the API server, so fields not modelled here are kept."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: AwareDatetime | None = None
    deletion_timestamp: AwareDatetime | None = None
    finalizers: list[str] | None = None
    owner_references: list[OwnerReference] | None = None


class SecretKeyRef(Model):
    """A key of a Secret."""

    name: DnsSubdomain
    """Name of the Secret."""
    namespace: DnsLabel
    """Namespace of the Secret."""
    key: SecretKey
    """Key in the Secret's data."""


@dataclass(frozen=True)
class PrinterColumn:
    """A column of `kubectl get`; an Age column is added to every resource."""

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"


@dataclass(frozen=True)
class CrdInfo:
    """How a resource is named and shown; the group, version and category are common to all of them."""

    plural: str
    short_name: str
    namespaced: bool
    columns: tuple[PrinterColumn, ...]


class Resource(Model):
    """Base of the top-level objects."""

    crd: ClassVar[CrdInfo]

    api_version: ApiVersion = "sharedcore.danang.gov.vn/v1alpha1"
    kind: str
    metadata: ObjectMeta

    def validate_update(self, old: Self) -> None:
        """Raise a ValidationError if this object may not replace `old`: the transition rules (immutable
        fields) that the API server checks on update."""
        errors = list(transition_errors(self, old))
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
