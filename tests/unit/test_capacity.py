"""What the sites can hold: quantities, each service's storage, and which services are admitted."""

from __future__ import annotations

import pytest

from sharedcore.api import Site
from sharedcore.replication.capacity import (
    Admission,
    Claim,
    admit,
    quantity_bytes,
    readable,
    report,
    storage_bytes,
)

TI = 2**40


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("10Gi", 10 * 2**30), ("100Ti", 100 * TI), ("1.5T", 1_500_000_000_000), ("5e3", 5000), ("500m", 1)],
)
def test_quantities(quantity: str, expected: int) -> None:
    assert quantity_bytes(quantity) == expected


def test_readable_sizes() -> None:
    assert [readable(n) for n in (512, 20 * TI, 85 * TI + TI // 2, 3 * 2**30)] == [
        "512",
        "20Ti",
        "85.5Ti",
        "3Gi",
    ]


def test_a_service_counts_its_database_instances_and_its_files() -> None:
    spec = {"database": {"instances": 2, "storage": "200Gi"}, "files": {"size": "20Ti"}}
    assert storage_bytes(spec) == 2 * 200 * 2**30 + 20 * TI
    assert storage_bytes({}) == 2 * 10 * 2**30 + 20 * 2**30  # the API's defaults
    off = {"database": {"enabled": False}, "files": {"enabled": False, "size": "1Ti"}}
    assert storage_bytes(off) == 0


def claim(name: str, tib: int, created: str, rendered: bool = False) -> Claim:
    return Claim(("ns", name), tib * TI, created, rendered)


def test_the_service_that_would_overflow_a_site_is_refused_with_the_figures() -> None:
    claims = [claim("c", 30, "3"), claim("a", 40, "1"), claim("b", 40, "2"), claim("d", 20, "4")]
    admission = admit(claims, {"danang": 100 * TI, "quangnam": 120 * TI})
    assert set(admission.refused) == {("ns", "c")}  # d still fits after c is left out
    assert admission.committed == 100 * TI and admission.counted == 3
    message = admission.refused[("ns", "c")]
    assert "needs 30Ti" in message and "danang can hold 100Ti" in message
    assert "2 services commit 80Ti (20Ti free)" in message


def test_rendered_services_always_count_and_are_never_refused() -> None:
    claims = [claim("old", 90, "9", rendered=True), claim("new", 20, "1")]
    admission = admit(claims, {"danang": 80 * TI})
    assert admission.refused.keys() == {("ns", "new")}
    assert admission.committed == 90 * TI  # over capacity: reported, nothing taken away


def test_without_capacities_everything_is_admitted() -> None:
    assert admit([claim("a", 500, "1")], {}).refused == {}


def test_the_report_gives_each_site_its_share() -> None:
    sites = [
        Site.model_validate(
            {
                "name": name,
                "kubeconfigSecretRef": {"name": name, "namespace": "sharedcore-system"},
                "ingressAddress": "203.0.113.10",
                **({"capacity": {"storage": "100Ti"}} if name == "danang" else {}),
            }
        )
        for name in ("danang", "quangnam")
    ]
    entries = report(Admission(85 * TI, 4, {("ns", "e"): "…"}), sites)
    assert entries == [
        {
            "site": "danang",
            "storage": "100Ti",
            "committed": "85Ti",
            "committedBytes": 85 * TI,
            "usedPercent": 85.0,
            "services": 4,
            "refused": ["ns/e"],
        },
        {
            "site": "quangnam",
            "committed": "85Ti",
            "committedBytes": 85 * TI,
            "services": 4,
            "refused": ["ns/e"],
        },
    ]
