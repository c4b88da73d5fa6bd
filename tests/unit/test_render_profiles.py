"""The packaged profiles, the naming scheme and the sync schedule."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from sharedcore.api import Platform
from sharedcore.render import names
from sharedcore.render.context import platform_settings
from sharedcore.render.files import sync_schedule
from sharedcore.render.profile import Profile, ProfileError, profile_for, profiles, render_template
from tests.golden.samples import sample


def test_every_platform_has_one_profile() -> None:
    assert set(profiles()) == {str(platform) for platform in Platform}


def test_unknown_platform() -> None:
    with pytest.raises(ProfileError):
        profile_for("Parking")


@pytest.mark.parametrize("platform", sorted(str(platform) for platform in Platform))
def test_profile_refers_only_to_real_settings(platform: str) -> None:
    profile = profile_for(platform)
    settings = platform_settings(sample(profile.slug).spec)
    for component in profile.components:
        for key in (component.replicas_from, component.enabled_when, component.serves_standby_when):
            assert key is None or key in settings, f"{component.name}: no setting {key}"
    assert profile.standby_host is None or profile.standby_host in settings
    variables = {"settings": settings, "service": {"name": "x", "namespace": "y"}}
    for expression in profile.env.values():
        render_template(expression, variables)  # StrictUndefined: a misspelt setting raises
    for key, source in profile.templates.items():
        assert key.endswith(".yaml")
        assert isinstance(yaml.safe_load(render_template(source, variables)), dict)


def descriptor(**changes: Any) -> dict[str, Any]:
    component = {
        "name": "web",
        "role": "serving",
        "webFacing": True,
        "ports": [{"name": "http", "port": 8080}],
        "probe": {"port": "http", "path": "/healthz"},
        "resources": {"requests": {"cpu": "10m"}},
    }
    base = {
        "platform": "OpenData",
        "slug": "parking",
        "image": "registry.danang.gov.vn/sharedcore/parking",
        "database": {"name": "parking"},
        "components": [component],
    }
    return {**base, **changes}


def test_a_minimal_descriptor_is_valid() -> None:
    assert Profile.model_validate(descriptor()).web_component.name == "web"


@pytest.mark.parametrize(
    "component_changes",
    [
        {"webFacing": False},  # none web-facing
        {"probe": {"port": "grpc"}},  # probe on an undeclared port
        {"role": "worker"},  # a web-facing worker
        {"replicasFrom": "workers"},  # a serving component scaled by a setting
        {"activeOnly": True, "servesStandbyWhen": "readOnly"},  # off and on at the standby at once
        {"env": ["UNDECLARED"]},
        {"ports": [{"name": "http", "port": 8080}, {"name": "http", "port": 8081}]},
    ],
)
def test_broken_descriptors_are_rejected(component_changes: dict[str, Any]) -> None:
    document = descriptor()
    document["components"] = [{**document["components"][0], **component_changes}]
    with pytest.raises(ValidationError):
        Profile.model_validate(document)


@pytest.mark.parametrize(
    ("seconds", "schedule"),
    [
        (60, "*/1 * * * *"),
        (119, "*/1 * * * *"),
        (300, "*/5 * * * *"),
        (420, "*/6 * * * *"),
        (540, "*/6 * * * *"),
        (1800, "*/30 * * * *"),
        (3599, "*/30 * * * *"),
        (3600, "0 */1 * * *"),
        (5 * 3600, "0 */4 * * *"),
        (23 * 3600, "0 */12 * * *"),
        (86400, "0 0 * * *"),
        (7 * 86400, "0 0 * * *"),
    ],
)
def test_sync_schedule_never_syncs_less_often_than_asked(seconds: int, schedule: str) -> None:
    assert sync_schedule(seconds) == schedule


def test_long_names_are_truncated_with_a_hash() -> None:
    service = "so-thong-tin-va-truyen-thong-quan-ly-van-ban-dieu-hanh-lien-thong"[:63]
    cluster = names.database_cluster(service, "quangnam")
    assert len(cluster) <= names.CNPG_CLUSTER_MAX
    assert cluster == names.database_cluster(service, "quangnam")  # both sites derive the same name
    assert cluster != names.database_cluster(service, "danang")
    assert len(names.files_replication_service(service)) <= names.DNS_LABEL_MAX
    assert len(names.component(service, "stream-ingestor")) <= names.DNS_LABEL_MAX
    assert names.component("vanban", "web") == "vanban-web"
