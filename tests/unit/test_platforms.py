"""Adding a platform is adding a profile folder and a settings model (docs/adding-a-platform.md): everything
else that names the platforms is derived from the folders, or checked against them here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sharedcore.api import SETTINGS_FIELDS, Platform, PlatformSettings, Role
from sharedcore.render.profile import Profile, profiles
from tests.golden.samples import SLUGS as GOLDEN_SLUGS
from tests.golden.samples import golden_path
from tests.support import samples

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "manifests" / "samples"
PROFILES = sorted(profiles().values(), key=lambda profile: profile.slug)


def _readme_platform_rows() -> dict[str, str]:
    """Platform -> profile folder, from the README's `## Platforms` table."""
    section = ROOT.joinpath("README.md").read_text().split("\n## Platforms\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| `([-a-z0-9]+)/` \|", section, flags=re.MULTILINE))


def test_the_enum_the_settings_and_the_folders_agree() -> None:
    assert {profile.platform for profile in PROFILES} == set(Platform)
    assert set(SETTINGS_FIELDS) == set(Platform)
    assert set(SETTINGS_FIELDS.values()) == set(PlatformSettings.model_fields)


def test_golden_inputs_and_the_tests_samples_are_one_per_folder() -> None:
    slugs = tuple(profile.slug for profile in PROFILES)
    assert slugs == GOLDEN_SLUGS
    assert slugs == samples.SLUGS


@pytest.mark.parametrize("profile", PROFILES, ids=lambda profile: profile.slug)
def test_each_folder_has_its_sample_golden_renders_case_and_readme_row(profile: Profile) -> None:
    def platform_of(path: Path) -> str:
        return str(yaml.safe_load(path.read_text())["spec"]["platform"])

    assert platform_of(SAMPLES / "sharedservices" / f"{profile.slug}.yaml") == profile.platform
    assert platform_of(ROOT / "tests" / "cases" / "valid" / f"sharedservice-{profile.slug}.yaml") == (
        profile.platform
    )
    for role in Role:
        assert golden_path(profile.slug, role).is_file()
    assert _readme_platform_rows().get(profile.platform) == profile.slug


def test_the_samples_kustomization_lists_every_sample() -> None:
    listed = yaml.safe_load((SAMPLES / "kustomization.yaml").read_text())["resources"]
    services = sorted(entry for entry in listed if entry.startswith("sharedservices/"))
    assert services == sorted(f"sharedservices/{p.slug}.yaml" for p in PROFILES)


def test_the_readme_table_has_no_other_platform() -> None:
    assert _readme_platform_rows() == {str(p.platform): p.slug for p in PROFILES}
