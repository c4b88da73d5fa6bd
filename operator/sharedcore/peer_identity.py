"""`sharedcore peer-identity`: what an administrator applies once at each site, and at the witness, so
that the other site's operator may do there exactly what it needs; and the kubeconfig it keeps in its Secret.

    sharedcore peer-identity --site danang --for quangnam --namespace egov \\
        | kubectl --context danang apply --server-side -f -
    kubectl --context danang -n sharedcore-system create token sharedcore-peer-quangnam --duration=8760h >t
    sharedcore peer-identity --site danang --for quangnam --server https://api.danang.example:6443 \\
        --certificate-authority danang-ca.crt --token-file t > danang.kubeconfig
"""

from typing import IO

import click
import yaml

from sharedcore import rbac
from sharedcore.render.output import to_yaml


@click.command("peer-identity")
@click.option("--site", "at", required=True, help="The cluster reached: the other site, or `witness`.")
@click.option("--for", "site", required=True, help="The site whose operator uses this identity there.")
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    help="A namespace invited to replication (repeatable): the identity may write its copies there.",
)
@click.option(
    "--server",
    help="Print the kubeconfig instead: the API server's https:// URL, as the other site reaches it.",
)
@click.option(
    "--certificate-authority", type=click.File("rb"), help="With --server: the API server's CA certificate."
)
@click.option(
    "--token-file",
    type=click.File("r"),
    help="With --server: the identity's token (`-`: standard input), e.g. from kubectl create token.",
)
def peer_identity_command(
    *,
    at: str,
    site: str,
    namespaces: tuple[str, ...],
    server: str | None,
    certificate_authority: IO[bytes] | None,
    token_file: IO[str] | None,
) -> None:
    """The RBAC objects (or, with --server, the kubeconfig) of SITE's operator at another cluster."""
    if at == site:
        raise click.UsageError("--site is the cluster reached, --for the site reaching it: they differ")
    if at == rbac.WITNESS and namespaces:
        raise click.UsageError("nothing is replicated to the witness: --namespace is for the other site")
    if server is None:
        click.echo(to_yaml(rbac.peer_identity(at, site, namespaces)), nl=False)
        return
    if not server.startswith("https://") or certificate_authority is None or token_file is None:
        raise click.UsageError(
            "a kubeconfig needs an https:// --server, --certificate-authority and --token-file"
        )
    token = token_file.read().strip()
    config = rbac.peer_kubeconfig(at, site, server, certificate_authority.read(), token)
    click.echo(yaml.safe_dump(config, sort_keys=False), nl=False)
