"""kubectl sharedcore switchover/failover/drill: the request they create and how they follow it."""

import datetime
from typing import Any

import pytest
from click.testing import CliRunner

from sharedcore.api import Failover
from sharedcore.plugin import moves
from sharedcore.plugin.cli import main
from sharedcore.plugin.kube import PluginError

NOW = datetime.datetime(2026, 11, 24, 8, 30, 5, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("Switchover", "quangnam", "maintenance IT-42"), {"type": "Switchover", "dryRun": False}),
        (("Failover", "quangnam", "incident 1022"), {"type": "Failover", "acceptDataLoss": False}),
    ],
)
def test_requests_are_valid_failovers(args: tuple[str, str, str], expect: dict[str, Any]) -> None:
    body = moves.request(*args, now=NOW)
    parsed = Failover.model_validate(body)
    assert parsed.spec.target_site == "quangnam" and parsed.spec.reason == args[2]
    assert body["metadata"]["name"] == f"{args[0].lower()}-to-quangnam-20261124-083005"
    assert expect.items() <= body["spec"].items()


def test_drill_is_a_dry_run() -> None:
    body = moves.request("Failover", "danang", "quarterly drill", dry_run=True, now=NOW)
    assert body["spec"]["dryRun"] is True and body["metadata"]["name"].startswith("drill-to-danang-")
    Failover.model_validate(body)


class FakeCluster:
    """Returns a scripted sequence of Failover statuses, one per read."""

    def __init__(self, statuses: list[dict[str, Any]]) -> None:
        self.statuses = statuses

    def failover(self, name: str) -> dict[str, Any] | None:
        return {"metadata": {"name": name}, "status": self.statuses.pop(0)} if self.statuses else None


def step(name: str, state: str, message: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "state": state,
        "message": message,
        "startTime": "2026-11-24T08:30:05+00:00",
        "completionTime": "2026-11-24T08:30:07+00:00" if state == "Succeeded" else None,
    }


def test_follow_prints_each_step_change_once_and_returns_the_outcome() -> None:
    statuses = [
        {"phase": "Pending"},
        {
            "phase": "Running",
            "steps": [step("CheckPreconditions", "Succeeded", "2 services"), step("FenceSource", "Running")],
        },
        {
            "phase": "Running",
            "steps": [step("CheckPreconditions", "Succeeded", "2 services"), step("FenceSource", "Running")],
        },
        {
            "phase": "Succeeded",
            "rtoSeconds": 12.5,
            "fromSite": "danang",
            "toSite": "quangnam",
            "steps": [
                step("CheckPreconditions", "Succeeded", "2 services"),
                step("FenceSource", "Succeeded"),
            ],
        },
    ]
    lines: list[str] = []
    final = moves.follow(FakeCluster(statuses), "fo", lines.append, timeout=10, sleep=lambda _: None)  # type: ignore[arg-type]
    assert lines == ["  ✓ CheckPreconditions (2.0s): 2 services", "  … FenceSource", "  ✓ FenceSource (2.0s)"]
    assert "RTO 12.5s" in moves.describe_outcome(final) and "danang → quangnam" in moves.describe_outcome(
        final
    )


def test_follow_gives_up_when_the_failover_disappears() -> None:
    with pytest.raises(PluginError, match="disappeared"):
        moves.follow(FakeCluster([]), "fo", print, timeout=10, sleep=lambda _: None)  # type: ignore[arg-type]


def test_commands_are_registered_with_their_options() -> None:
    runner = CliRunner()
    for command, option in (("switchover", "--to"), ("failover", "--accept-data-loss"), ("drill", "--type")):
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0 and option in result.output
    refused = runner.invoke(main, ["failover", "--to", "quangnam"])
    assert refused.exit_code == 2 and "--reason" in refused.output


def topology(site: str | None, sites: tuple[str, ...] = ("danang", "quangnam")) -> dict[str, Any]:
    status = {"site": site} if site else {}
    return {"spec": {"sites": [{"name": name} for name in sites]}, "status": status}


@pytest.mark.parametrize(
    ("found", "target", "refusal"),
    [
        (topology("danang"), "quangnam", "this context reaches danang"),
        (topology("danang"), "hoian", "hoian is not a site of the Topology (danang, quangnam)"),
        (topology(None), "danang", "cannot tell which site this context reaches"),
        (None, "danang", "cannot tell which site this context reaches"),
    ],
)
def test_a_move_is_refused_before_anything_is_created_at_the_wrong_site(
    found: dict[str, Any] | None, target: str, refusal: str
) -> None:
    with pytest.raises(PluginError) as refused:
        moves.check_site(found, target)
    assert refusal in refused.value.message


def test_a_move_at_its_target_site_is_allowed() -> None:
    moves.check_site(topology("quangnam"), "quangnam")
