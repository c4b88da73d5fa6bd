"""The `sharedcore` command line: one group, each concern's commands registered from its own module."""

import click

from sharedcore.testbed.cli import testbed


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """sharedcore: shared city platforms across two sites."""


main.add_command(testbed)
