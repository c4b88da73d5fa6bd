"""The rendered YAML of every sample at every role, compared with tests/golden/.

`make golden` (SHAREDCORE_UPDATE_GOLDEN=1) rewrites the files; review their diff like code.
"""

from __future__ import annotations

import os

import pytest

from sharedcore.api import Role
from sharedcore.render import render
from sharedcore.render.output import to_yaml
from tests.golden.samples import SLUGS, golden_path, sample, site

UPDATE = os.environ.get("SHAREDCORE_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("role", [Role.ACTIVE, Role.STANDBY, Role.FENCED])
@pytest.mark.parametrize("slug", SLUGS)
def test_golden(slug: str, role: Role) -> None:
    rendered = to_yaml(render(sample(slug), site(role)))
    path = golden_path(slug, role)
    if UPDATE:
        path.write_text(rendered, encoding="utf-8")
        return
    assert path.is_file(), f"{path.name} is missing: run `make golden`"
    assert rendered == path.read_text(encoding="utf-8"), f"{path.name} differs: run `make golden` and review"
