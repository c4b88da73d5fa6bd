"""The validation corpus, shared by the model tests and the API-server tests.

`valid/*.yaml` holds one manifest each. `invalid/*.yaml` holds one case each:

    description: what is wrong, in a few words
    expect: a substring of the error that the models (worded by `sharedcore.api.kube_errors`) and the API
      server both produce; where the wording must differ, `expect_model` and `expect_apiserver` instead
    previous: (optional) a valid object that `object` updates: create it first, then replace it with object
    object: the manifest

Manifests of namespaced kinds may omit the namespace, or carry one that a test replaces with its own.
Unknown-field cases need the API server's strict field validation (`fieldValidation=Strict`, kubectl's
default), as the API server otherwise drops unknown fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).parent
_KEYS = {"description", "expect", "expect_model", "expect_apiserver", "previous", "object"}

Manifest = dict[str, Any]


@dataclass(frozen=True)
class InvalidCase:
    name: str
    description: str
    object: Manifest
    previous: Manifest | None
    expect_model: str
    expect_apiserver: str


@dataclass(frozen=True)
class ValidObject:
    name: str
    object: Manifest


def _documents(folder: str) -> list[tuple[str, Any]]:
    paths = sorted((CASES_DIR / folder).glob("*.yaml"))
    return [(path.stem, yaml.safe_load(path.read_text(encoding="utf-8"))) for path in paths]


def invalid_cases() -> list[InvalidCase]:
    cases = []
    for name, data in _documents("invalid"):
        if not isinstance(data, dict) or not _KEYS >= data.keys() >= {"description", "object"}:
            raise ValueError(f"invalid/{name}.yaml: expected keys among {sorted(_KEYS)}")
        expect = data.get("expect")
        model, apiserver = data.get("expect_model", expect), data.get("expect_apiserver", expect)
        if not (model and apiserver):
            raise ValueError(f"invalid/{name}.yaml: needs expect, or expect_model and expect_apiserver")
        cases.append(
            InvalidCase(name, data["description"], data["object"], data.get("previous"), model, apiserver)
        )
    return cases


def valid_objects() -> list[ValidObject]:
    return [ValidObject(name, data) for name, data in _documents("valid")]


def valid_object(name: str) -> Manifest:
    """The manifest of valid/<name>.yaml, e.g. "topology"."""
    return next(valid.object for valid in valid_objects() if valid.name == name)
