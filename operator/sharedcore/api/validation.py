"""Validation that the API server and the models enforce alike, each declared once.

- `@rule(...)` declares a CEL rule on the method that is its Python twin: the CRD generator emits the rule as
  an `x-kubernetes-validations` entry of the model's schema, and the models' validator runs the method.
- `Immutable` marks a field `self == oldSelf`; transition rules only apply to updates, which
  `transition_errors` checks against the previous object.
- `ListType` is `x-kubernetes-list-type`: the API server rejects duplicate items of a set or a map-list,
  and so do the models.

The pydantic errors carry the CEL message, field path and reason so that `errors.kube_errors` can word them
as the API server does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema

RULE_ERROR = "cel"
DUPLICATE_ERROR = "duplicate"
VALIDATIONS = "x-kubernetes-validations"

# The default reason, FieldValueInvalid, is left out of the CRDs.
Reason = Literal["FieldValueForbidden", "FieldValueRequired"]


@dataclass(frozen=True)
class Cel:
    """One `x-kubernetes-validations` entry."""

    rule: str
    message: str
    message_expression: str | None = None
    field_path: str | None = None
    reason: Reason | None = None

    def schema(self) -> dict[str, str]:
        entry = {
            "rule": self.rule,
            "message": self.message,
            "messageExpression": self.message_expression,
            "fieldPath": self.field_path,
            "reason": self.reason,
        }
        return {key: value for key, value in entry.items() if value is not None}

    def error(self, message: str | None = None) -> PydanticCustomError:
        """The pydantic error for a failure of this rule; `message` is the evaluated message expression."""
        context = {
            "message": message or self.message,
            "field_path": self.field_path or "",
            "reason": self.reason,
        }
        return PydanticCustomError(RULE_ERROR, "{message}", context)


@dataclass(frozen=True)
class Rule:
    """A validation rule declared with `@rule`: its CEL and the method that checks the same in Python."""

    cel: Cel
    check: Callable[[Any], bool]
    explain: Callable[[Any], str] | None  # the Python twin of cel.message_expression

    def __post_init__(self) -> None:
        if (self.explain is None) != (self.cel.message_expression is None):
            raise ValueError(f"{self.cel.rule!r}: a message expression needs its Python twin, and only then")


def rule(
    cel: str,
    *,
    message: str,
    message_expression: str | None = None,
    explain: Callable[[Any], str] | None = None,
    field_path: str | None = None,
    reason: Reason | None = None,
) -> Callable[[Callable[[Any], bool]], Rule]:
    """Declare the decorated method, which returns whether the object is valid, as the twin of `cel`."""

    def declare(check: Callable[[Any], bool]) -> Rule:
        return Rule(Cel(cel, message, message_expression, field_path, reason), check, explain)

    return declare


@cache
def rules_of(model: type[BaseModel]) -> tuple[Rule, ...]:
    """The rules declared on `model` and its bases, in declaration order."""
    return tuple(
        member
        for klass in reversed(model.__mro__)
        for member in vars(klass).values()
        if isinstance(member, Rule)
    )


def check_rules(obj: BaseModel) -> None:
    """Raise the error of the first rule of `obj`'s model that `obj` breaks."""
    for declared in rules_of(type(obj)):
        if not declared.check(obj):
            raise declared.cel.error(declared.explain(obj) if declared.explain else None)


@dataclass(frozen=True)
class Immutable:
    """Field metadata: the field keeps its first value (a transition rule, so it only applies to updates)."""

    message: str

    @property
    def cel(self) -> Cel:
        return Cel("self == oldSelf", self.message)

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        field_schema = handler(schema)
        return {**field_schema, VALIDATIONS: [*field_schema.get(VALIDATIONS, []), self.cel.schema()]}


def transition_errors(
    new: BaseModel, old: BaseModel, loc: tuple[str, ...] = ()
) -> Iterator[InitErrorDetails]:
    """The `Immutable` fields that differ between `old` and `new`, at any depth but not inside lists (where
    the API server only correlates items of map-lists, and no transition rule lives)."""
    for name, field in type(new).model_fields.items():
        value, previous = getattr(new, name), getattr(old, name)
        if value is None or previous is None:  # the API server skips transition rules without an oldSelf
            continue
        here = (*loc, field.alias or name)
        for meta in field.metadata:
            if isinstance(meta, Immutable) and value != previous:
                yield InitErrorDetails(type=meta.cel.error(), loc=here, input=value)
        if isinstance(value, BaseModel) and isinstance(previous, BaseModel):
            yield from transition_errors(value, previous, here)


@dataclass(frozen=True)
class ListType:
    """Field metadata for a list: a set of unique scalars, or a map-list whose items are unique by `keys`
    (attribute names). Map-lists merge by key under server-side apply instead of being replaced whole."""

    keys: tuple[str, ...] = ()

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if not self.keys:
            return {**handler(schema), "x-kubernetes-list-type": "set"}
        keys = [to_camel(key) for key in self.keys]
        return {**handler(schema), "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": keys}

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._unique, handler(source))

    def _unique(self, items: list[Any]) -> list[Any]:
        seen: set[Any] = set()
        for index, item in enumerate(items):
            key = tuple(getattr(item, name) for name in self.keys) if self.keys else item
            if key in seen:
                shown = (
                    dict(zip((to_camel(name) for name in self.keys), key, strict=True)) if self.keys else item
                )
                raise PydanticCustomError(
                    DUPLICATE_ERROR,
                    "Duplicate value: {value}",
                    {"value": json.dumps(shown, separators=(",", ":")), "index": index},
                )
            seen.add(key)
        return items


AS_SET = ListType()


def keyed_by(*keys: str) -> ListType:
    return ListType(keys)
