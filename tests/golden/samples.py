"""The sample SharedServices under inputs/ and the sites the golden files are rendered for."""

from __future__ import annotations

from pathlib import Path

import yaml

from sharedcore.api import Role, SharedService
from sharedcore.render import PeerSite, SiteContext

GOLDEN_DIR = Path(__file__).parent
INPUTS_DIR = GOLDEN_DIR / "inputs"
SLUGS = tuple(sorted(path.stem for path in INPUTS_DIR.glob("*.yaml")))
PRIMARY, SECONDARY = "danang", "quangnam"
SERVICE_DOMAIN = "svc.clusterset.local"
INGRESS_ADDRESS = "203.0.113.10"  # TEST-NET-3: documentation only


def sample(slug: str) -> SharedService:
    return SharedService.model_validate(yaml.safe_load((INPUTS_DIR / f"{slug}.yaml").read_text()))


def site(role: Role, *, epoch: int = 7, peered: bool = True) -> SiteContext:
    """danang when active, quangnam otherwise, each the other's peer."""
    name, peer = (PRIMARY, SECONDARY) if role == Role.ACTIVE else (SECONDARY, PRIMARY)
    return SiteContext(
        name=name,
        role=role,
        epoch=epoch,
        ingress_address=INGRESS_ADDRESS,
        peer=PeerSite(peer, SERVICE_DOMAIN) if peered else None,
    )


def golden_path(slug: str, role: Role) -> Path:
    return GOLDEN_DIR / f"{slug}-{str(role).lower()}.yaml"
