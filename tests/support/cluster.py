"""Typed handles on the testbed's sites for tests: clients, kubectl, and the faults a site can suffer."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any, TypeVar

from kubernetes import client, config

from sharedcore.testbed import Testbed
from sharedcore.testbed.operators import run_tool

T = TypeVar("T")


def api_client(kubeconfig: Path, retries: int | None = None) -> client.ApiClient:
    """A client for one kubeconfig; retries=0 when a test times how fast a failure surfaces."""
    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    if retries is not None:
        configuration.retries = retries
    return client.ApiClient(configuration)


@dataclass
class Site:
    """One control plane of the shared test session."""

    name: str
    bed: Testbed = field(repr=False)

    @property
    def kubeconfig(self) -> Path:
        return self.bed.kubeconfig(self.name)

    @property
    def audit_log(self) -> Path:
        return self.bed.directory / self.name / "audit.log"

    def peer_kubeconfig(self, peer: str) -> Path:
        return self.bed.peer_kubeconfig(self.name, peer)

    @cached_property
    def api(self) -> client.ApiClient:
        return api_client(self.kubeconfig)

    @cached_property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @cached_property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @cached_property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @cached_property
    def extensions(self) -> client.ApiextensionsV1Api:
        return client.ApiextensionsV1Api(self.api)

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

    def stop(self) -> None:
        self.bed.stop(self.name)

    def start(self) -> None:
        self.bed.start(self.name)


def eventually(
    probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25, message: str = "condition"
) -> T:
    """Poll until probe returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message} not reached within {timeout}s (last: {last!r})")
