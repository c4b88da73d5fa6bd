"""Kubernetes API clients for the testbed's sites, as their administrator (the `kubernetes` library).

`SiteClients(name, bed)` is built from what the testbed records: the site's admin kubeconfig, and the
kubeconfigs through the link proxies by which it reaches the other sites. The tests' `Site` handles, the
two-site machinery (`sharedcore_testbed.pair`) and `make demo` all use it.
"""

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from kubernetes import client, config

from sharedcore_testbed import Testbed


def api_client(kubeconfig: Path, retries: int | None = None) -> client.ApiClient:
    """A client for one kubeconfig; retries=0 when the caller times how fast a failure surfaces."""
    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
    if retries is not None:
        configuration.retries = retries
    return client.ApiClient(configuration)


def as_object(response: object) -> dict[str, Any]:
    """A custom object as the client returns it (typed `object`): a JSON object."""
    if not isinstance(response, dict):
        raise TypeError(f"expected a JSON object, got {type(response).__name__}")
    return response


def items(response: object) -> list[dict[str, Any]]:
    """The objects of a custom-object list."""
    found: list[dict[str, Any]] = as_object(response)["items"]
    return found


@dataclass
class SiteClients:
    """One site of a testbed: its API clients, and the outages it can suffer."""

    name: str
    bed: Testbed = field(repr=False)

    @property
    def kubeconfig(self) -> Path:
        return self.bed.kubeconfig(self.name)

    def peer_kubeconfig(self, peer: str) -> Path:
        """How this site reaches `peer`: through the link proxy, so partitions apply."""
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
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)

    @cached_property
    def networking(self) -> client.NetworkingV1Api:
        return client.NetworkingV1Api(self.api)

    @cached_property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @cached_property
    def coordination(self) -> client.CoordinationV1Api:
        return client.CoordinationV1Api(self.api)

    @cached_property
    def extensions(self) -> client.ApiextensionsV1Api:
        return client.ApiextensionsV1Api(self.api)

    def stop(self) -> None:
        """The site's control plane goes away (its etcd data stays)."""
        self.bed.stop(self.name)

    def start(self) -> None:
        self.bed.start(self.name)
