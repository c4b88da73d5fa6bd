"""How the plugin reads a cluster: the current kubeconfig context, or the one named with --context.

kubectl hands a plugin only the arguments after its name (its own flags may not come before it), so the plugin
takes --kubeconfig and --context itself and reads $KUBECONFIG as kubectl does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from kubernetes import client, config

from sharedcore import API_GROUP, API_VERSION, Body
from sharedcore.kube.cache import SERVICE_LABEL
from sharedcore.kube.resources import (
    CLUSTERS,
    MANAGED_BY,
    PERSISTENT_VOLUME_CLAIMS,
    REPLICATION_DESTINATIONS,
    REPLICATION_SOURCES,
)
from sharedcore.replication import retained

F = TypeVar("F", bound=Callable[..., Any])


class PluginError(click.ClickException):
    """Cannot reach the cluster, or sharedcore is not installed there: one line and exit code 1."""


@dataclass(frozen=True)
class Connection:
    kubeconfig: Path | None
    context: str | None

    def cluster(self) -> Cluster:
        try:
            api = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig) if self.kubeconfig else None, context=self.context
            )
        except (config.ConfigException, OSError) as error:
            raise PluginError(f"cannot load kubeconfig: {error}") from None
        return Cluster(api)


def connection_options(command: F) -> F:
    """--kubeconfig and --context, the same on every subcommand (each builds its Connection from them)."""
    command = click.option(
        "--context", help="Kubeconfig context, i.e. which site to ask; default: the current one."
    )(command)
    return click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Kubeconfig file; default: $KUBECONFIG, then ~/.kube/config.",
    )(command)


class Cluster:
    """sharedcore's objects at one site, read with the user's own credentials."""

    def __init__(self, api: Any) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)

    def _call(self, what: str, call: Callable[[], object], verb: str = "read") -> Body | None:
        try:
            return cast(Body, call())
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise PluginError(f"cannot {verb} {what}: {error.status} {error.reason}") from None
        except OSError as error:  # urllib3's connection errors are OSErrors
            raise PluginError(f"cannot reach the cluster: {error}") from None

    def topology(self) -> Body | None:
        return self._call(
            "the Topology",
            lambda: self._custom.get_cluster_custom_object(API_GROUP, API_VERSION, "topologies", "default"),
        )

    def _list(self, plural: str, namespace: str | None) -> list[Body]:
        def call() -> object:
            if namespace:
                return self._custom.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, plural)
            return self._custom.list_cluster_custom_object(API_GROUP, API_VERSION, plural)

        listing = self._call(plural, call)
        if listing is None:
            raise PluginError(f"sharedcore is not installed in this cluster: no {plural}.{API_GROUP} CRD")
        items: list[Body] = listing.get("items", [])
        return items

    def services(self, namespace: str | None) -> list[Body]:
        return self._list("sharedservices", namespace)

    def failovers(self) -> list[Body]:
        return self._list("failovers", None)

    def file_copies(self, namespace: str | None) -> list[Body]:
        """The VolSync objects sharedcore rendered here: when each service's files were last copied (the
        SharedService status does not carry it, as it changes at every copy). None installed: none."""
        selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
        found = []
        for resource in (REPLICATION_DESTINATIONS, REPLICATION_SOURCES):

            def call(resource: Any = resource) -> object:
                args = (resource.group, resource.version)
                if namespace:
                    return self._custom.list_namespaced_custom_object(
                        *args, namespace, resource.plural, label_selector=selector
                    )
                return self._custom.list_cluster_custom_object(
                    *args, resource.plural, label_selector=selector
                )

            listing = self._call(f"VolSync {resource.plural}", call) or {}
            found += [obj | {"kind": resource.kind} for obj in listing.get("items", [])]
        return found

    def failover(self, name: str) -> Body | None:
        return self._call(
            f"Failover {name}",
            lambda: self._custom.get_cluster_custom_object(API_GROUP, API_VERSION, "failovers", name),
        )

    def create_failover(self, body: Body) -> Body:
        """Create a Failover request; the API server's refusal (schema, CEL) is shown as it words it."""
        try:
            created = self._custom.create_cluster_custom_object(API_GROUP, API_VERSION, "failovers", body)
        except client.ApiException as error:
            raise PluginError(f"Failover refused: {error.status} {error.reason}: {error.body}") from None
        except OSError as error:
            raise PluginError(f"cannot reach the cluster: {error}") from None
        return cast(Body, created)

    def retained_copies(self, namespace: str, service: str) -> list[Body]:
        """The data objects of `service` (its label value) kept at this site as retained copies."""
        selector = f"{retained.LABEL}=true,{SERVICE_LABEL}={service}"
        claims = self._call(
            f"PersistentVolumeClaims in {namespace}",
            lambda: self._api.sanitize_for_serialization(
                self._core.list_namespaced_persistent_volume_claim(namespace, label_selector=selector)
            ),
        )
        clusters = self._call(
            f"CloudNativePG Clusters in {namespace}",
            lambda: self._custom.list_namespaced_custom_object(
                CLUSTERS.group, CLUSTERS.version, namespace, CLUSTERS.plural, label_selector=selector
            ),
        )
        return [
            obj | {"kind": resource.kind}
            for resource, listing in ((PERSISTENT_VOLUME_CLAIMS, claims), (CLUSTERS, clusters))
            for obj in (listing or {}).get("items", [])  # None: CloudNativePG is not installed here
        ]

    def delete(self, obj: Body) -> None:
        meta = obj["metadata"]
        call: Callable[[], object]
        if obj["kind"] == PERSISTENT_VOLUME_CLAIMS.kind:
            call = functools.partial(
                self._core.delete_namespaced_persistent_volume_claim, meta["name"], meta["namespace"]
            )
        else:
            call = functools.partial(
                self._custom.delete_namespaced_custom_object,
                CLUSTERS.group,
                CLUSTERS.version,
                meta["namespace"],
                CLUSTERS.plural,
                meta["name"],
            )
        self._call(f"{obj['kind']} {meta['name']}", call, verb="delete")
