"""What replication never carries to the other site, whatever its labels say.

A user who can write only in one namespace at the active site must not gain more at the standby through
replication: no Secret that would give powers there (service-account and bootstrap tokens, Argo CD's and
Flux's credentials), and no SharedService whose image or public host the Topology's allow-lists do not name.
Pure: the active site asks before copying, and the receiving site before rendering a copy.
"""

from pydantic.alias_generators import to_camel

from sharedcore import Body
from sharedcore.api import SETTINGS_FIELDS, Platform, ReplicationPolicy
from sharedcore.render.profile import profiles

POWERFUL_SECRET_TYPES = frozenset({"kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"})
ARGOCD_SECRET_TYPE = "argocd.argoproj.io/secret-type"  # Argo CD's cluster and repository credentials
FLUX_DOMAIN = "toolkit.fluxcd.io"  # labels of what Flux's controllers own or read


def image_allowed(image: str, allowed: list[str]) -> bool:
    return not allowed or any(
        image == repository or image.startswith(f"{repository}/") for repository in allowed
    )


def host_allowed(host: str, allowed: list[str]) -> bool:
    return not allowed or any(
        host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])) for pattern in allowed
    )


def _secret_refusal(secret: Body) -> str | None:
    if secret.get("type") in POWERFUL_SECRET_TYPES:
        return f"a Secret of type {secret['type']} would give its powers at the other site"
    for label in secret["metadata"].get("labels") or {}:
        if label == ARGOCD_SECRET_TYPE:
            return f"a Secret labelled {label} is an Argo CD credential"
        prefix = label.partition("/")[0] if "/" in label else ""
        if prefix == FLUX_DOMAIN or prefix.endswith(f".{FLUX_DOMAIN}"):
            return f"a Secret labelled {label} belongs to Flux"
    return None


def _service_refusal(service: Body, policy: ReplicationPolicy) -> str | None:
    spec = service.get("spec") or {}
    image = spec.get("image")
    if isinstance(image, str) and not image_allowed(image, policy.allowed_image_repositories):
        return (
            f"spec.image {image} is not in the Topology's replication.allowedImageRepositories "
            f"({', '.join(policy.allowed_image_repositories)})"
        )
    for field, host in _published_hosts(spec):
        if isinstance(host, str) and not host_allowed(host, policy.allowed_ingress_hosts):
            return (
                f"{field} {host} is not in the Topology's replication.allowedIngressHosts "
                f"({', '.join(policy.allowed_ingress_hosts)})"
            )
    return None


def _published_hosts(spec: Body) -> list[tuple[str, object]]:
    """The hosts a service has DNS records for: spec.ingress.host, and the standby host its profile names by
    a setting (an archive's read-only look-ups)."""
    hosts: list[tuple[str, object]] = [("spec.ingress.host", (spec.get("ingress") or {}).get("host"))]
    platform = next((p for p in Platform if p == spec.get("platform")), None)
    profile = profiles().get(platform) if platform else None
    if platform and profile and profile.standby_host:
        key = to_camel(SETTINGS_FIELDS[platform])
        settings = (spec.get("settings") or {}).get(key) or {}
        hosts.append((f"spec.settings.{key}.{profile.standby_host}", settings.get(profile.standby_host)))
    return hosts


def refusal(obj: Body, policy: ReplicationPolicy) -> str | None:
    """Why `obj` may not be copied to (or rendered as a copy at) the other site; None if it may."""
    if obj["kind"] == "Secret":
        return _secret_refusal(obj)
    if obj["kind"] == "SharedService":
        return _service_refusal(obj, policy)
    return None
