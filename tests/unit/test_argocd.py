"""Argo CD health checks: each health.lua run, as Argo CD runs it, against its health_test.yaml cases.

Argo CD runs these scripts in gopher-lua, a Lua 5.1 (numbers are doubles: tostring(0.0) is "0"), with `obj`
set to the live object and no os/io; lupa's Lua 5.1 with those libraries removed is the same language.
"""

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa.lua51 import LuaRuntime

from sharedcore.api import validate_manifest
from sharedcore.manifests import HEALTH_CHECKS
from tests.support.packaging import ROOT

KINDS = sorted((ROOT / HEALTH_CHECKS / "sharedcore.danang.gov.vn").iterdir())
CASES = [
    pytest.param(kind, case, id=f"{kind.name}-{Path(case['inputPath']).stem}")
    for kind in KINDS
    for case in yaml.safe_load((kind / "health_test.yaml").read_text())["tests"]
]


def health(script: str, obj: dict[str, Any]) -> dict[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    for unavailable in ("os", "io", "require", "dofile", "loadfile"):
        lua.globals()[unavailable] = None
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    return {"status": result["status"], "message": result["message"]}


def test_one_check_per_kind() -> None:
    assert [kind.name for kind in KINDS] == ["Failover", "SharedService", "Topology"]


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_health_check(kind: Path, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((kind / case["inputPath"]).read_text())
    assert health((kind / "health.lua").read_text(), obj) == case["healthStatus"]


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_sample_is_a_valid_object(kind: Path, case: dict[str, Any]) -> None:
    """The statuses tested are ones the operator can write: they pass the API's own models."""
    obj = yaml.safe_load((kind / case["inputPath"]).read_text())
    assert obj["kind"] == kind.name
    validate_manifest(obj)


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_every_kind_is_tested_healthy_progressing_and_degraded(kind: Path) -> None:
    statuses = {
        case["healthStatus"]["status"]
        for case in yaml.safe_load((kind / "health_test.yaml").read_text())["tests"]
    }
    assert {"Healthy", "Progressing", "Degraded"} <= statuses
