"""The committed CRDs are what the models generate, structural, and agree with the models on defaults."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sharedcore.api import RESOURCES, Resource, validate_manifest
from sharedcore.api.crdgen import crd, crd_file_name
from sharedcore.cli import main
from tests.cases.corpus import ValidObject, valid_objects

CRDS_DIR = Path(__file__).parents[2] / "crds"
Schema = dict[str, Any]


def generate(out: Path) -> dict[str, bytes]:
    result = CliRunner().invoke(main, ["crds", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return {path.name: path.read_bytes() for path in sorted(out.glob("*.yaml"))}


def schema_of(resource: type[Resource]) -> Schema:
    version: Schema = crd(resource)["spec"]["versions"][0]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def nodes(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")


STANDARD = {".apiVersion", ".kind", ".metadata"}  # the API server's own, not generated from the models
ALL_NODES = [
    pytest.param(node, id=f"{resource.__name__}{path}")
    for resource in RESOURCES
    for path, node in nodes(schema_of(resource))
    if path not in STANDARD
]


def test_committed_crds_are_up_to_date(tmp_path: Path) -> None:
    committed = {path.name: path.read_bytes() for path in sorted(CRDS_DIR.glob("*.yaml"))}
    generated = generate(tmp_path)
    stale = sorted(
        name for name in committed.keys() | generated.keys() if committed.get(name) != generated.get(name)
    )
    assert not stale, f"crds/ is stale ({', '.join(stale)}): run `make crds`"


def test_generation_is_idempotent_and_removes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "sharedcore.danang.gov.vn_retired.yaml").write_text("stale\n")
    first = generate(tmp_path)
    assert generate(tmp_path) == first
    assert sorted(first) == sorted(crd_file_name(resource) for resource in RESOURCES)
    assert all(text.endswith(b"\n") for text in first.values())


@pytest.mark.parametrize("node", ALL_NODES)
def test_schema_node_is_structural(node: Schema) -> None:
    assert not {"$ref", "$defs", "anyOf", "allOf", "oneOf", "not", "title"} & node.keys()
    assert "type" in node or node.get("x-kubernetes-int-or-string") is True
    assert node.get("default", ...) is not None
    assert "additionalProperties" not in node
    # Bounded, so that the API server's cost estimate of CEL rules stays low wherever they look.
    if node.get("type") == "array":
        assert "maxItems" in node
    if node.get("type") == "string":
        assert {"maxLength", "enum", "format"} & node.keys()


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda resource: resource.__name__)
def test_every_property_is_described_for_kubectl_explain(resource: type[Resource]) -> None:
    undescribed = [
        path
        for path, node in nodes(schema_of(resource))
        if path not in STANDARD and not path.endswith("[]") and not node.get("description")
    ]
    assert not undescribed


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda resource: resource.__name__)
def test_rules_and_columns_point_at_fields(resource: type[Resource]) -> None:
    schema = schema_of(resource)
    paths = {path for path, _ in nodes(schema)}
    for path, node in nodes(schema):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["rule"] and rule["message"]
            assert "fieldPath" not in rule or path + rule["fieldPath"] in paths
    for column in crd(resource)["spec"]["versions"][0]["additionalPrinterColumns"]:
        path = re.sub(r"\[\?\(.*?\)\]", "[]", column["jsonPath"])
        assert path in paths or path == ".metadata.creationTimestamp"


def apply_defaults(value: Any, schema: Schema) -> Any:
    """The API server's defaulting: absent properties take their default, then defaults apply inside."""
    if isinstance(value, dict) and "properties" in schema:
        for name, child in schema["properties"].items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                apply_defaults(value[name], child)
    if isinstance(value, list) and "items" in schema:
        for item in value:
            apply_defaults(item, schema["items"])
    return value


@pytest.mark.parametrize("valid", valid_objects(), ids=lambda valid: valid.name)
def test_crd_defaults_are_the_models_defaults(valid: ValidObject) -> None:
    obj = validate_manifest(valid.object)
    defaulted = apply_defaults(copy.deepcopy(valid.object), schema_of(type(obj)))
    assert yaml.safe_load(yaml.safe_dump(defaulted)) == obj.model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
