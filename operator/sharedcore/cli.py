"""The `sharedcore` command line: one group, each concern's commands registered from its own module."""

import click

from sharedcore.api.cli import crds
from sharedcore.manifests import manifests_command
from sharedcore.peer_identity import peer_identity_command
from sharedcore.render.cli import render_command
from sharedcore.runner import run_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """sharedcore: shared city platforms across two sites."""


main.add_command(crds)
main.add_command(run_command)
main.add_command(render_command)
main.add_command(manifests_command)
main.add_command(peer_identity_command)
