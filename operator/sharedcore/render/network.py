"""Traffic: a NetworkPolicy per component, the Ingress, and the DNS record that points users at a site."""

from __future__ import annotations

import ipaddress
from typing import Any

from sharedcore.api import Role
from sharedcore.render import names
from sharedcore.render.context import Manifest, RenderContext
from sharedcore.render.profile import Component
from sharedcore.render.workloads import POSTGRES_PORT

INGRESS_COMPONENT = "ingress"
ANYWHERE_CIDRS = ("0.0.0.0/0", "::/0")


def network_policies(ctx: RenderContext) -> list[Manifest]:
    return [network_policy(ctx, component) for component in ctx.components]


def network_policy(ctx: RenderContext, component: Component) -> Manifest:
    if component.web_facing or component.external:
        # The ingress controller's namespace differs between sites, and SIP carriers are outside the
        # cluster: open the component's own ports to any source.
        ingress: list[dict[str, Any]] = [{"ports": _ports(component)}]
    else:
        # Every component of this service may talk to every other; nothing else in the namespace may.
        ingress = [{"from": _same_service(ctx), "ports": _ports(component)}]
    egress: list[dict[str, Any]] = [_dns_egress(), {"to": _same_service(ctx)}]
    if component.database and ctx.service.spec.database.enabled:
        cluster = names.database_cluster(ctx.name, ctx.site.name)
        egress.append(
            {
                "to": [{"podSelector": {"matchLabels": {"cnpg.io/cluster": cluster}}}],
                "ports": [{"port": POSTGRES_PORT, "protocol": "TCP"}],
            }
        )
    if component.egress:
        egress.append(
            {
                "to": [{"ipBlock": {"cidr": cidr}} for cidr in ANYWHERE_CIDRS],
                "ports": [{"port": rule.port, "protocol": rule.protocol} for rule in component.egress],
            }
        )
    spec = {
        "podSelector": {"matchLabels": ctx.selector(component.name)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": ingress,
        "egress": egress,
    }
    name = names.component(ctx.name, component.name)
    return ctx.manifest(
        "networking.k8s.io/v1", "NetworkPolicy", name, component.name, by_role=False, spec=spec
    )


def job_network_policy(ctx: RenderContext, component: str, egress_ports: list[int]) -> Manifest:
    """A job's pods: no traffic in; out only to DNS, this service's pods, and `egress_ports` anywhere."""
    anywhere = {
        "to": [{"ipBlock": {"cidr": cidr}} for cidr in ANYWHERE_CIDRS],
        "ports": [{"port": port, "protocol": "TCP"} for port in egress_ports],
    }
    spec = {
        "podSelector": {"matchLabels": ctx.selector(component)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [],
        "egress": [_dns_egress(), {"to": _same_service(ctx)}, anywhere],
    }
    name = names.component(ctx.name, component)
    return ctx.manifest("networking.k8s.io/v1", "NetworkPolicy", name, component, by_role=False, spec=spec)


def _ports(component: Component) -> list[dict[str, Any]]:
    return [{"port": port.name, "protocol": port.protocol} for port in component.ports]


def _same_service(ctx: RenderContext) -> list[dict[str, Any]]:
    return [{"podSelector": {"matchLabels": ctx.instance_selector()}}]


def _dns_egress() -> dict[str, Any]:
    return {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }


def ingresses(ctx: RenderContext) -> list[Manifest]:
    """The web-facing component's Ingress, at both sites: failover moves DNS, not the Ingress."""
    spec_ingress = ctx.service.spec.ingress
    if spec_ingress is None:
        return []
    web = ctx.profile.web_component
    backend = {
        "service": {
            "name": names.component(ctx.name, web.name),
            "port": {"name": web.ports[0].name},
        }
    }
    hosts = [spec_ingress.host, *([ctx.standby_host] if ctx.standby_host else [])]
    spec: dict[str, Any] = {}
    if spec_ingress.class_name is not None:
        spec["ingressClassName"] = spec_ingress.class_name
    if spec_ingress.tls_secret_name is not None:
        spec["tls"] = [{"hosts": hosts, "secretName": spec_ingress.tls_secret_name}]
    spec["rules"] = [
        {"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
        for host in hosts
    ]
    name = names.ingress(ctx.name)
    return [
        ctx.manifest("networking.k8s.io/v1", "Ingress", name, INGRESS_COMPONENT, by_role=False, spec=spec)
    ]


def dns_endpoints(ctx: RenderContext) -> list[Manifest]:
    """The public name, published only by the active site and only once it knows its ingress address; the
    profile's standby host (read-only look-ups), published only by the standby site."""
    spec_ingress = ctx.service.spec.ingress
    address = ctx.site.ingress_address
    if spec_ingress is None or address is None:
        return []
    if ctx.site.role is Role.ACTIVE:
        return [_dns_endpoint(ctx, names.ingress(ctx.name), spec_ingress.host, address)]
    if ctx.site.role is Role.STANDBY and ctx.standby_host:
        return [_dns_endpoint(ctx, names.standby_record(ctx.name), ctx.standby_host, address)]
    return []


def _dns_endpoint(ctx: RenderContext, name: str, host: str, address: str) -> Manifest:
    endpoint = {
        "dnsName": host,
        "recordType": record_type(address),
        "recordTTL": record_ttl(ctx),
        "targets": [address],
    }
    spec = {"endpoints": [endpoint]}
    return ctx.manifest("externaldns.k8s.io/v1alpha1", "DNSEndpoint", name, INGRESS_COMPONENT, spec=spec)


def record_ttl(ctx: RenderContext) -> int:
    """The service's own TTL, else the Topology's but never above the service's RTO: resolvers keep an
    address that long."""
    spec = ctx.service.spec
    own = spec.ingress.ttl_seconds if spec.ingress else None
    return own or min(ctx.site.record_ttl_seconds, spec.objectives.rto_seconds)


def record_type(address: str) -> str:
    """A for an IPv4 address, AAAA for IPv6, CNAME for a host name (a load balancer's, say)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "CNAME"
    return "A" if ip.version == 4 else "AAAA"
