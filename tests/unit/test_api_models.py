"""The models accept the valid corpus, reject each invalid case with its message, and fill in the defaults."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sharedcore import API_GROUP, API_VERSION
from sharedcore.api import (
    ApiVersion,
    Database,
    DeletionPolicy,
    DocumentManagementSettings,
    FailbackMode,
    Failover,
    FailoverMode,
    Hotline1022Settings,
    Objectives,
    OpenDataSettings,
    OperationsCenterSettings,
    PlatformSettings,
    PushProvider,
    Resource,
    SharedService,
    SignatureProvider,
    SipTransport,
    SipTrunk,
    SmartCitySettings,
    StandbyMode,
    Topology,
    kube_errors,
    validate_manifest,
)
from tests.cases.corpus import InvalidCase, ValidObject, invalid_cases, valid_object, valid_objects

INVALID = invalid_cases()
VALID = valid_objects()


def dump(obj: Resource) -> dict[str, Any]:
    return obj.model_dump(by_alias=True, exclude_none=True, mode="json")


def rejection(manifest: dict[str, Any], previous: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        validate_manifest(manifest, previous)
    return kube_errors(raised.value)


def contains(whole: Any, part: Any) -> bool:
    """Whether every field of `part` is in `whole` with the same value."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and contains(whole[k], v) for k, v in part.items())
    if isinstance(part, list):
        return isinstance(whole, list) and len(whole) == len(part) and all(map(contains, whole, part))
    return bool(whole == part)


def test_api_version_literal_matches_the_package_constants() -> None:
    assert get_args(ApiVersion) == (f"{API_GROUP}/{API_VERSION}",)


def test_the_corpus_covers_enough_cases() -> None:
    assert len(INVALID) >= 32
    assert {valid.object["kind"] for valid in VALID} == {"SharedService", "Topology", "Failover"}


@pytest.mark.parametrize("case", INVALID, ids=lambda case: case.name)
def test_invalid_case_is_rejected_with_its_message(case: InvalidCase) -> None:
    messages = rejection(case.object, case.previous)
    assert any(case.expect_model in message for message in messages), messages


@pytest.mark.parametrize("case", [c for c in INVALID if c.previous], ids=lambda case: case.name)
def test_update_case_is_only_wrong_as_an_update(case: InvalidCase) -> None:
    assert case.previous is not None
    validate_manifest(case.previous)
    validate_manifest(case.object)


@pytest.mark.parametrize("valid", VALID, ids=lambda valid: valid.name)
def test_valid_object_is_accepted_and_round_trips(valid: ValidObject) -> None:
    obj = validate_manifest(valid.object)
    dumped = dump(obj)
    assert contains(dumped, valid.object), "the dump lost or changed a field of the manifest"
    again = validate_manifest(dumped)
    assert again == obj
    assert dump(again) == dumped


def test_defaults_fill_in_a_minimal_service() -> None:
    spec = SharedService.model_validate(valid_object("sharedservice-minimal")).spec
    assert spec.standby.mode is StandbyMode.WARM
    assert spec.database == Database(enabled=True, instances=2, storage="10Gi")
    assert (spec.files.enabled, spec.files.size, spec.files.sync_interval_seconds) == (True, "20Gi", 300)
    assert spec.objectives == Objectives(rpo_seconds=300, rto_seconds=600)
    assert spec.settings == PlatformSettings()
    assert (spec.replicas, spec.image, spec.ingress) == (None, None, None)
    assert spec.paused is False
    assert spec.deletion_policy is DeletionPolicy.RETAIN


def test_platform_settings_defaults() -> None:
    assert DocumentManagementSettings() == DocumentManagementSettings(
        ocr_workers=2, signature_provider=SignatureProvider.VGCA, max_upload_megabytes=100, retention_years=10
    )
    assert SmartCitySettings().push_providers == [PushProvider.FCM, PushProvider.APNS]
    assert (SmartCitySettings().push_workers, SmartCitySettings().rate_limit_per_minute) == (2, 600)
    assert OpenDataSettings() == OpenDataSettings(
        harvest_schedule="0 2 * * *", harvest_sources=[], default_license="CC-BY-4.0"
    )
    assert OperationsCenterSettings() == OperationsCenterSettings(
        stream_ingestors=2, retention_days=90, alert_webhook_url=None
    )
    hotline = Hotline1022Settings(sip_trunks=[SipTrunk(name="vnpt", host="sip.vnpt-danang.vn")])
    assert (hotline.sip_trunks[0].port, hotline.sip_trunks[0].transport) == (5060, SipTransport.UDP)
    assert (hotline.agent_seats, hotline.call_recording, hotline.recording_retention_days) == (30, True, 365)


def test_default_lists_are_not_shared() -> None:
    first, second = SmartCitySettings(), SmartCitySettings()
    first.push_providers.append(PushProvider.FCM)
    assert second.push_providers == [PushProvider.FCM, PushProvider.APNS]


def test_topology_and_failover_defaults() -> None:
    manifest = valid_object("topology")
    manifest["spec"].pop("failover")
    manifest["spec"]["sites"][0]["kubeconfigSecretRef"].pop("key", None)
    spec = Topology.model_validate(manifest).spec
    policy = spec.failover
    assert (policy.mode, policy.failback) == (FailoverMode.MANUAL, FailbackMode.MANUAL)
    assert (
        policy.heartbeat_interval_seconds,
        policy.lease_duration_seconds,
        policy.failback_hold_seconds,
    ) == (
        2,
        15,
        300,
    )
    assert spec.sites[0].kubeconfig_secret_ref.key == "kubeconfig"
    assert spec.sites[0].service_domain == "svc.clusterset.local"
    failover = Failover.model_validate(valid_object("failover")).spec
    assert (failover.dry_run, failover.accept_data_loss) == (False, False)


def test_quantities_accept_integers_as_the_api_server_does() -> None:
    manifest = valid_object("sharedservice-minimal")
    manifest["spec"]["database"] = {"storage": 10737418240}
    assert SharedService.model_validate(manifest).spec.database.storage == "10737418240"


def test_updates_may_change_everything_but_the_immutable_fields() -> None:
    old = SharedService.model_validate(valid_object("sharedservice-document-management"))
    manifest = valid_object("sharedservice-document-management")
    manifest["spec"].update(replicas=5, version="4.3.0", paused=True)
    manifest["status"] = {"role": "Active", "epoch": 3}
    SharedService.model_validate(manifest).validate_update(old)

    failover = valid_object("failover")
    previous = Failover.model_validate(failover)
    failover["status"] = {"phase": "Succeeded", "rtoSeconds": 42.5}
    Failover.model_validate(failover).validate_update(previous)


@pytest.mark.parametrize(
    ("manifest", "previous", "line"),
    [
        pytest.param(
            {"spec": {"replicas": 0}},
            None,
            "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
            id="minimum",
        ),
        pytest.param(
            {"spec": {"standby": {"mode": "Lukewarm"}}},
            None,
            'spec.standby.mode: Unsupported value: "Lukewarm": supported values: "Hot", "Warm", "Cold"',
            id="enum",
        ),
        pytest.param(
            {"spec": {"settings": {"openData": {}}}},
            None,
            "spec.settings: Invalid value: "
            "spec.platform is DocumentManagement: only settings.documentManagement may be set",
            id="cel-message-expression",
        ),
        pytest.param(
            {"spec": {"platform": "OpenData"}},
            {},
            'spec.platform: Invalid value: "OpenData": '
            "platform is immutable: create another SharedService to run another platform",
            id="cel-transition",
        ),
        pytest.param(
            {"spec": {"replicas": 2, "replica": 3}}, None, 'unknown field "spec.replica"', id="unknown-field"
        ),
    ],
)
def test_errors_are_worded_as_the_api_server_words_them(
    manifest: dict[str, Any], previous: dict[str, Any] | None, line: str
) -> None:
    def service(overrides: dict[str, Any]) -> dict[str, Any]:
        base = valid_object("sharedservice-minimal")
        base["spec"] = {"platform": "DocumentManagement", "version": "4.2.1", **overrides.get("spec", {})}
        return base

    assert rejection(service(manifest), None if previous is None else service(previous)) == [line]


def test_rule_with_reason_and_field_path() -> None:
    manifest = valid_object("topology")
    del manifest["spec"]["witness"]
    [line] = rejection(manifest)
    assert line.startswith("spec.witness: Required value: Automatic failover requires spec.witness")


@given(st.ip_addresses(v=4))
def test_every_ipv4_address_is_a_host(address: Any) -> None:
    SipTrunk(name="trunk", host=str(address))


@given(
    st.tuples(
        st.integers(0, 59), st.integers(0, 23), st.integers(1, 31), st.integers(1, 12), st.integers(0, 7)
    )
)
def test_every_cron_time_is_a_harvest_schedule(fields: tuple[int, ...]) -> None:
    OpenDataSettings(harvest_schedule=" ".join(map(str, fields)))
