"""`sharedcore render`: print what a SharedService becomes at one site, without a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from sharedcore.api import Role, SharedService
from sharedcore.render import PeerSite, RenderError, SiteContext, render
from sharedcore.render.output import to_yaml

DEFAULT_PEER_DOMAIN = "svc.clusterset.local"


class InputError(click.ClickException):
    """Bad input: one line on stderr and exit code 2, like click's own usage errors."""

    exit_code = 2


def load_service(path: Path) -> SharedService:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read: {_one_line(str(error))}") from None
    try:
        document: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not YAML: {_one_line(str(error))}") from None
    if not isinstance(document, dict):
        raise InputError(f"{path}: expected one SharedService object")
    try:
        return SharedService.model_validate(document)
    except ValidationError as error:
        raise InputError(f"{path}: invalid SharedService: {describe(error)}") from None


def describe(error: ValidationError) -> str:
    """The first problem of a validation error, on one line, with how many more there are."""
    problems = error.errors()
    first = problems[0]
    where = ".".join(str(part) for part in first["loc"]) or "(object)"
    text = f"{where}: {first['msg']}"
    if len(problems) > 1:
        text += f" (and {len(problems) - 1} more)"
    return _one_line(text)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@click.command("render")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="SharedService YAML file.",
)
@click.option("--site", required=True, help="Name of the site to render for, e.g. danang.")
@click.option(
    "--role",
    required=True,
    type=click.Choice([str(role) for role in Role], case_sensitive=False),
    help="Role of that site.",
)
@click.option("--epoch", default=1, show_default=True, type=click.IntRange(min=0), help="Failover epoch.")
@click.option("--peer", help="Name of the other site; without it the service is single-site.")
@click.option(
    "--peer-domain",
    default=DEFAULT_PEER_DOMAIN,
    show_default=True,
    help="DNS suffix under which the peer's Services are reachable.",
)
@click.option("--ingress-address", help="Address of this site's ingress (IP or host name), for DNS.")
def render_command(
    *,
    path: Path,
    site: str,
    role: str,
    epoch: int,
    peer: str | None,
    peer_domain: str,
    ingress_address: str | None,
) -> None:
    """Print the Kubernetes objects of a SharedService at one site, as a YAML stream."""
    service = load_service(path)
    context = SiteContext(
        name=site,
        role=Role(role),
        epoch=epoch,
        ingress_address=ingress_address,
        peer=PeerSite(peer, peer_domain) if peer else None,
    )
    try:
        objects = render(service, context)
    except RenderError as error:
        raise InputError(f"{path}: {error}") from None
    click.echo(to_yaml(objects), nl=False)
