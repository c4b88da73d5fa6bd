"""Typed handles on the testbed's sites for tests: clients, kubectl, and the faults a site can suffer."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess
from typing import TypeVar

from sharedcore_testbed import waiting
from sharedcore_testbed.clients import SiteClients, api_client
from sharedcore_testbed.operators import run_tool

__all__ = ["Site", "api_client", "eventually"]

T = TypeVar("T")


@dataclass
class Site(SiteClients):
    """One control plane of the shared test session (clients, stop and start: `SiteClients`)."""

    @property
    def audit_log(self) -> Path:
        return self.bed.directory / self.name / "audit.log"

    def run(
        self, tool: str, *args: str, check: bool = True, stdin: str | None = None
    ) -> CompletedProcess[str]:
        """Run a testbed binary (kubectl, helm) against this site; with check, a failure shows its stderr."""
        result = run_tool(tool, self.kubeconfig, *args, stdin=stdin)
        if check and result.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> CompletedProcess[str]:
        return self.run("kubectl", *args, check=check, stdin=stdin)


def eventually(
    probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25, message: str = "condition"
) -> T:
    """Poll until probe returns something truthy; fail the test with the last value seen."""
    return waiting.eventually(probe, timeout, interval, message, error=AssertionError)
