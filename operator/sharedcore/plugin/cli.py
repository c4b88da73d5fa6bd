"""The `kubectl-sharedcore` console script: kubectl runs it for `kubectl sharedcore …`.

Each subcommand is a click command taking `connection_options`; the plugin never changes roles by itself: the
commands that move roles (switchover, failover, drill) create a Failover object and follow its steps. The one
command that deletes (release-copy) deletes only retained copies, and only with --confirm.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import click

from sharedcore.plugin import report as status_report
from sharedcore.plugin.kube import Connection, connection_options
from sharedcore.plugin.moves import drill_command, failover_command, switchover_command
from sharedcore.plugin.release import release_copy_command
from sharedcore.render.cli import render_command

FORMATS = {"text": status_report.as_text, "json": status_report.as_json, "yaml": status_report.as_yaml}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """sharedcore's shared services across two sites, from kubectl."""


@main.command("status")
@connection_options
@click.option("-n", "--namespace", help="Only the SharedServices of this namespace; default: all namespaces.")
@click.option("-o", "--output", type=click.Choice(sorted(FORMATS)), default="text", show_default=True)
def status_command(kubeconfig: Path | None, context: str | None, namespace: str | None, output: str) -> None:
    """Both sites (role, epoch, reachability, heartbeat age) as this site sees them, every SharedService
    (role, readiness, replication lag against its RPO) and the last failover.

    Replication lag is measured where the data is copied to: ask the standby site (--context) to see it.
    """
    cluster = Connection(kubeconfig, context).cluster()
    report = status_report.collect(cluster, namespace, datetime.datetime.now(datetime.UTC))
    click.echo(FORMATS[output](report), nl=False)


main.add_command(render_command)
main.add_command(switchover_command)
main.add_command(failover_command)
main.add_command(drill_command)
main.add_command(release_copy_command)
