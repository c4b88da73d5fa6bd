"""ParallelRunHealthy, from what the reconciliation job wrote and the calendar."""

from __future__ import annotations

import datetime

import pytest

from sharedcore.services.parallel import assess
from tests.golden.samples import sample

RUN = sample("public-service-portal").spec.parallel_run
CHECKED = {"checkedAt": "2026-11-28T12:00:00Z", "previousReachable": "true", "previousInForce": "1200"}


@pytest.mark.parametrize(
    ("data", "today", "status", "reason"),
    [
        ({}, "2026-11-28", None, "NotChecked"),
        ({**CHECKED, "newInForce": "1200", "missing": "0"}, "2026-11-28", True, "Healthy"),
        ({**CHECKED, "previousReachable": "false"}, "2026-11-28", False, "PreviousSystemUnreachable"),
        ({**CHECKED, "newInForce": "1193", "missing": "7"}, "2026-11-28", False, "DossiersMissing"),
        ({**CHECKED, "newInForce": "1200", "missing": "0"}, "2027-06-10", True, "EndingSoon"),
        ({**CHECKED, "newInForce": "1200", "missing": "0"}, "2027-07-03", False, "Ended"),
    ],
)
def test_the_condition(data: dict[str, str], today: str, status: bool | None, reason: str) -> None:
    assert RUN is not None
    verdict = assess(RUN, data, datetime.date.fromisoformat(today))
    assert (verdict.condition.status, verdict.condition.reason) == (status, reason)


def test_the_end_passing_asks_people_to_decide_and_the_status_has_the_figures() -> None:
    assert RUN is not None
    data = {**CHECKED, "newInForce": "1193", "missing": "7"}
    verdict = assess(RUN, data, datetime.date(2027, 7, 3))
    assert "ended on 2027-06-30, 3 days ago; nothing was deleted" in verdict.condition.message
    assert verdict.status == {
        "daysLeft": -3,
        "previousSystemReachable": True,
        "dossiersInForcePrevious": 1200,
        "dossiersInForce": 1193,
        "dossiersMissing": 7,
        "lastCheckTime": "2026-11-28T12:00:00Z",
    }
