"""The CustomResourceDefinitions, generated from the models' JSON schemas.

A CRD schema must be structural: every node typed, no references, no `anyOf` for optional fields. The
generator inlines `$defs`, turns `anyOf [X, null]` into `nullable: true`, drops what pydantic adds for
documentation only (titles, `default: null`, `additionalProperties: false`) and collapses descriptions to
one line, which `kubectl explain` wraps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sharedcore import API_GROUP, API_VERSION
from sharedcore.api.common import Resource
from sharedcore.api.resources import RESOURCES
from sharedcore.api.validation import VALIDATIONS

Schema = dict[str, Any]

HEADER = "# Generated from sharedcore.api by `make crds`: do not edit.\n"

# The API server validates apiVersion, kind and metadata itself.
_STANDARD_PROPERTIES: Schema = {
    "apiVersion": {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an object.",
    },
    "kind": {
        "type": "string",
        "description": "Kind is a string value representing the REST resource this object represents.",
    },
    "metadata": {"type": "object"},
}
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def crd_file_name(resource: type[Resource]) -> str:
    return f"{API_GROUP}_{resource.crd.plural}.yaml"


def crd(resource: type[Resource]) -> Schema:
    """The CustomResourceDefinition of `resource`."""
    kind: str = resource.model_fields["kind"].default
    info = resource.crd
    schema = structural(resource.model_json_schema(by_alias=True))
    schema["properties"].update(_STANDARD_PROPERTIES)
    schema["required"] = [name for name in schema["required"] if name not in _STANDARD_PROPERTIES]
    columns = [{"name": c.name, "type": c.type, "jsonPath": c.json_path} for c in info.columns]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info.plural}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": info.plural,
                "singular": kind.lower(),
                "shortNames": [info.short_name],
                "categories": ["sharedcore"],
            },
            "scope": "Namespaced" if info.namespaced else "Cluster",
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [*columns, _AGE],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def structural(schema: Schema) -> Schema:
    """`schema` (a pydantic JSON schema) as a structural OpenAPI v3 schema."""
    definitions: dict[str, Schema] = schema.get("$defs", {})

    def convert(node: Schema) -> Schema:
        node = dict(node)
        if "anyOf" in node:
            node = _merge(_nullable_variant(node.pop("anyOf")), node)
            node["nullable"] = True
        if "$ref" in node:
            node = _merge(definitions[node.pop("$ref").rsplit("/", 1)[-1]], node)
        node.pop("$defs", None)
        node.pop("title", None)
        if node.get("default", ...) is None:
            del node["default"]
        if node.get("additionalProperties") is False:
            del node["additionalProperties"]
        if "description" in node:
            node["description"] = " ".join(node["description"].split())
        if "required" in node:
            node["required"] = sorted(node["required"])
        if "properties" in node:
            node["properties"] = {name: convert(child) for name, child in node["properties"].items()}
        if "items" in node:
            node["items"] = convert(node["items"])
        return node

    return convert(schema)


def _nullable_variant(variants: list[Schema]) -> Schema:
    """The one non-null variant of an optional field's `anyOf`."""
    kept = [variant for variant in variants if variant.get("type") != "null"]
    if len(kept) != 1 or len(variants) != 2:
        raise ValueError(f"only `X | None` unions can be expressed in a CRD, not {variants}")
    return kept[0]


def _merge(base: Schema, override: Schema) -> Schema:
    """`base` (a definition) under the referring node's keys; CEL rules from both apply."""
    merged = {**base, **override}
    if VALIDATIONS in base and VALIDATIONS in override:
        merged[VALIDATIONS] = [*base[VALIDATIONS], *override[VALIDATIONS]]
    return merged


class _Dumper(yaml.SafeDumper):
    """Writes shared definitions out in full at each use: no YAML anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_crds() -> dict[str, str]:
    """File name to YAML text, for every resource."""
    return {
        crd_file_name(resource): HEADER
        + yaml.dump(crd(resource), Dumper=_Dumper, sort_keys=True, allow_unicode=True)
        for resource in RESOURCES
    }


def write_crds(out: Path) -> list[Path]:
    """Write the CRDs into `out`, removing generated files of resources that no longer exist."""
    files = render_crds()
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f"{API_GROUP}_*.yaml"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return [out / name for name in sorted(files)]
