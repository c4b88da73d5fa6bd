"""`kubectl sharedcore release-copy NAMESPACE/SERVICE`: delete the data a site kept of a deleted service.

A site that is not active keeps a deleted SharedService's database Cluster and volumes, whatever its
deletionPolicy, labelled as a retained copy: the copy exists to survive mistakes at the active site. Only
this command (or a person's own `kubectl delete`) removes them, at the site that holds them (`--context`).
Without --confirm it only lists what it would delete.
"""

from __future__ import annotations

from pathlib import Path

import click

from sharedcore.plugin.kube import Connection, PluginError, connection_options
from sharedcore.render import names
from sharedcore.replication import retained


@click.command("release-copy")
@connection_options
@click.argument("service", metavar="NAMESPACE/SERVICE")
@click.option("--confirm", is_flag=True, help="Delete them. Without it: a dry run, nothing is deleted.")
def release_copy_command(kubeconfig: Path | None, context: str | None, service: str, confirm: bool) -> None:
    """Delete the retained copy of SERVICE's data (database Cluster, volumes) kept at the site --context
    names. Lists them first; deletes only with --confirm."""
    namespace, _, name = service.partition("/")
    if not namespace or not name or "/" in name:
        raise click.BadParameter(
            "give NAMESPACE/SERVICE, e.g. egov/document-management", param_hint="SERVICE"
        )
    cluster = Connection(kubeconfig, context).cluster()
    kept = cluster.retained_copies(namespace, names.label_value(name))
    if not kept:
        raise PluginError(f"no retained copy of {namespace}/{name} here (label {retained.LABEL}=true)")
    click.echo(f"Retained copy of {namespace}/{name} at this site:")
    for obj in kept:
        annotations = obj["metadata"].get("annotations") or {}
        click.echo(
            f"  {obj['kind']} {obj['metadata']['name']}: kept since {annotations.get(retained.SINCE, '?')}, "
            f"{annotations.get(retained.BECAUSE, 'reason not recorded')}"
        )
    if not confirm:
        click.echo(
            "Dry run: nothing deleted. Run again with --confirm to delete these objects and their data."
        )
        return
    for obj in kept:
        cluster.delete(obj)
        click.echo(f"deleted {obj['kind']} {obj['metadata']['name']}")
