"""The operator in tests: `sharedcore_testbed.operators` with the tests' Site handles."""

from pathlib import Path
from typing import Any

from sharedcore_testbed import operators
from sharedcore_testbed.operators import OPERATOR_USER
from tests.support.cluster import Site

__all__ = [
    "CRD_DIRS",
    "OPERATOR_USER",
    "WRITE_VERBS",
    "OperatorProcess",
    "audit_requests",
    "install_crds",
    "service_account_kubeconfig",
]

ROOT = Path(__file__).resolve().parents[2]
CRD_DIRS = (ROOT / "crds", *operators.data_plane_crds())
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def install_crds(site: Site) -> None:
    """sharedcore's CRDs, CloudNativePG's and ExternalDNS's, and minimal ones for VolSync and monitoring."""
    operators.install_crds(site.kubeconfig, *CRD_DIRS)


def service_account_kubeconfig(site: Site, directory: Path) -> Path:
    """A kubeconfig for the operator's ServiceAccount, bound to rbac.cluster_role() and nothing more."""
    return operators.service_account_kubeconfig(
        site.bed, site.name, directory / f"{site.name}-operator.kubeconfig"
    )


class OperatorProcess(operators.OperatorProcess):
    """Started for a Site; readiness, metrics and the rest are the package's."""

    def __init__(self, site: Site, kubeconfig: Path, log_path: Path, args: tuple[str, ...] = ()) -> None:
        super().__init__(site.name, kubeconfig, log_path, args)


def audit_requests(
    site: Site, user: str, since: float, verbs: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """The API server's own record of `user`'s completed requests after `since` (epoch seconds)."""
    return [
        event
        for event in operators.audit_events(site.audit_log, user, since)
        if verbs is None or event["verb"] in verbs
    ]
