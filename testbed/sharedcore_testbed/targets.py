"""Where a SharedService's database is, as its clients find it (for the writer, the checker and the sampler).

A client looks the service's public name up (`Resolve`: a host name → the addresses its DNS record lists now),
takes the site whose ingress address that is, and connects to that site's read-write Service as the
application's owner. The lookup is the one seam between this and DNS:

- `published_records(sites, namespace)`, today's: the `DNSEndpoint` records the sites publish, read from
  their API servers, as an ExternalDNS would serve them (a site that does not answer publishes nothing);
- a resolver asking a real DNS server drops in as another `Resolve`.

The host reaches a site's Service addresses directly: it routes each real site's pod and Service ranges into
the site's network namespace, where kube-proxy forwards them (sharedcore_testbed.network).
"""

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg.conninfo
from kubernetes import client

from sharedcore.render import names
from sharedcore_testbed.clients import SiteClients, as_object, items
from sharedcore_testbed.writer import Target

Resolve = Callable[[str], list[str]]
DNS_ENDPOINTS = ("externaldns.k8s.io", "v1alpha1", "dnsendpoints")
CLUSTERS = ("postgresql.cnpg.io", "v1", "clusters")
SHARED_SERVICES = ("sharedcore.danang.gov.vn", "v1alpha1", "sharedservices")
POSTGRES_PORT = 5432
ASK_TIMEOUT = 2  # seconds: a client does not wait long for a site that is gone
REREAD = 5.0  # seconds a site's read-write Service address is trusted before it is read again


def published_records(sites: Sequence[SiteClients], namespace: str) -> Resolve:
    """The addresses the sites' DNSEndpoint records in `namespace` give a host (sites in the order given)."""

    def resolve(host: str) -> list[str]:
        found: list[str] = []
        for site in sites:
            try:
                records = items(
                    site.custom.list_namespaced_custom_object(
                        *DNS_ENDPOINTS[:2], namespace, DNS_ENDPOINTS[2], _request_timeout=ASK_TIMEOUT
                    )
                )
            except Exception:  # a site gone (refused, timed out, 5xx) publishes nothing
                continue
            for record in records:
                for endpoint in record.get("spec", {}).get("endpoints", []):
                    if endpoint.get("dnsName") == host:
                        found += [t for t in endpoint.get("targets", []) if t not in found]
        return found

    return resolve


def site_of(addresses: Sequence[str], ingress: Mapping[str, str]) -> str | None:
    """The site whose ingress address the lookup gave first (a client takes the first answer)."""
    by_address = {address: site for site, address in ingress.items()}
    return next((by_address[a] for a in addresses if a in by_address), None)


class ServiceDatabase:
    """One SharedService's database at each site: its read-write Service and the application's credentials,
    read again after `REREAD` seconds (a rebuilt database is a new Cluster whose Service has a new address;
    while the site's API does not answer, the last address read is kept)."""

    def __init__(
        self,
        sites: Mapping[str, SiteClients],
        namespace: str,
        service: str,
        *,
        ingress: Mapping[str, str],
        resolve: Resolve | None = None,
    ) -> None:
        """`ingress`: each site's ingress address (the Topology's); `resolve`: the lookup (default: the
        DNSEndpoint records the sites publish)."""
        self.sites, self.namespace, self.service = dict(sites), namespace, service
        self.ingress = dict(ingress)
        self.resolve = resolve or published_records(list(self.sites.values()), namespace)
        self._targets: dict[str, tuple[Target, float]] = {}  # site → (target, when read)
        self._host: str | None = None

    def at(self, site: str) -> Target | None:
        """How to reach `site`'s read-write Service now (None: the site cannot tell yet)."""
        kept = self._targets.get(site)
        if kept is not None and time.monotonic() - kept[1] < REREAD:
            return kept[0]
        try:
            target: Target | None = self._target(self.sites[site])
        except Exception:  # the site's API is gone (its database may not be) or the database not made yet
            target = kept[0] if kept else None
        if target is not None:
            self._targets[site] = (target, time.monotonic())
        return target

    def located(self) -> Target | None:
        """Where the service's DNS record points now (None: nowhere)."""
        site = site_of(self.resolve(self.host()), self.ingress)
        return self.at(site) if site else None

    def host(self) -> str:
        if self._host is None:
            for clients in self.sites.values():
                try:
                    body = self._read(clients, SHARED_SERVICES, self.service)
                except (client.ApiException, OSError):
                    continue
                self._host = str(body["spec"]["ingress"]["host"])
                break
            else:
                raise LookupError(f"no site answers for SharedService {self.namespace}/{self.service}")
        return self._host

    def _read(self, clients: SiteClients, kind: tuple[str, str, str], name: str) -> dict[str, Any]:
        return as_object(
            clients.custom.get_namespaced_custom_object(
                *kind[:2], self.namespace, kind[2], name, _request_timeout=ASK_TIMEOUT
            )
        )

    def _target(self, clients: SiteClients) -> Target:
        service = clients.core.read_namespaced_service(
            names.database_rw_service(self.service, clients.name),
            self.namespace,
            _request_timeout=ASK_TIMEOUT,
        )
        secret = clients.core.read_namespaced_secret(
            names.database_app_secret(self.service), self.namespace, _request_timeout=ASK_TIMEOUT
        )
        cluster = self._read(clients, CLUSTERS, names.database_cluster(self.service, clients.name))
        bootstrap = cluster["spec"]["bootstrap"]
        database = next(iter(bootstrap.values()))["database"]  # initdb or pg_basebackup: the same owner
        data = secret.data or {}
        credentials = {key: base64.b64decode(data[key]).decode() for key in ("username", "password")}
        conninfo = psycopg.conninfo.make_conninfo(
            host=str(service.spec and service.spec.cluster_ip),
            port=POSTGRES_PORT,
            user=credentials["username"],
            password=credentials["password"],
            dbname=database,
        )
        return Target(clients.name, conninfo)
