"""Pydantic validation errors worded as the API server words them, so that one expected message fits both.

The API server reports schema violations with kube-openapi's phrases ("in body should be greater than or
equal to 1"), enums as "Unsupported value", unknown fields (under strict field validation) as
`unknown field "spec.x"`, and a CEL rule by its message at its field path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from sharedcore.api.validation import DUPLICATE_ERROR, RULE_ERROR

# By pydantic error type; filled in with the error's context, `value` and `path`.
_SCHEMA_MESSAGES = {
    "missing": "Required value",
    "greater_than_equal": "Invalid value: {value}: {path} in body should be greater than or equal to {ge}",
    "less_than_equal": "Invalid value: {value}: {path} in body should be less than or equal to {le}",
    "string_pattern_mismatch": "Invalid value: {value}: {path} in body should match '{pattern}'",
    "string_too_short": "Invalid value: {value}: {path} in body should be at least {min_length} chars long",
    "string_too_long": "Too long: may not be more than {max_length} bytes",
    "too_short": "Invalid value: {actual_length}: {path} in body should have at least {min_length} items",
    "too_long": "Too many: {actual_length}: must have at most {max_length} items",
    "enum": "Unsupported value: {value}: supported values: {supported}",
}
_JSON_TYPES = {
    "int_type": "integer",
    "bool_type": "boolean",
    "float_type": "number",
    "string_type": "string",
    "list_type": "array",
    "model_type": "object",
    "dict_type": "object",
}
_RULE_REASONS = {"FieldValueRequired": "Required value", "FieldValueForbidden": "Forbidden"}


def kube_errors(error: ValidationError) -> list[str]:
    """One line per error, as the lines of the API server's "is invalid" response."""
    return [_line(details) for details in error.errors(include_url=False)]


def _line(details: ErrorDetails) -> str:
    path = _path(details["loc"])
    kind, ctx, value = details["type"], details.get("ctx", {}), details["input"]
    if kind == "extra_forbidden":
        return f'unknown field "{path}"'
    if kind == RULE_ERROR:
        path = (path + ctx["field_path"]).lstrip(".")
        reason = _RULE_REASONS.get(ctx["reason"] or "")
        # The API server shows a scalar's value, not an object's or a list's.
        shown = f"{_go(value)}: " if isinstance(value, str | int | float) else ""
        body = f"{reason}: {ctx['message']}" if reason else f"Invalid value: {shown}{ctx['message']}"
    elif kind == DUPLICATE_ERROR:
        path, body = f"{path}[{ctx['index']}]", details["msg"]
    else:
        body = _schema_body(kind, ctx, value, path) or details["msg"]
    return f"{path}: {body}" if path else body


def _schema_body(kind: str, ctx: dict[str, Any], value: Any, path: str) -> str | None:
    if kind in _JSON_TYPES:
        actual = _json_type(value)
        return f'Invalid value: "{actual}": {path} in body must be of type {_JSON_TYPES[kind]}: "{actual}"'
    if kind not in _SCHEMA_MESSAGES:
        return None
    supported = ", ".join(f'"{v}"' for v in re.findall(r"'([^']*)'", ctx.get("expected", "")))
    return _SCHEMA_MESSAGES[kind].format(**ctx, value=_go(value), path=path, supported=supported)


def _path(loc: Sequence[int | str]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _json_type(value: Any) -> str:
    for python, name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
    ):
        if isinstance(value, python):
            return name
    return "null" if value is None else "object"


def _go(value: Any) -> str:
    """A scalar as Go's %v/%q shows it in field errors."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value) if isinstance(value, bool) or value is None else str(value)
