"""`sharedcore crds`: regenerate the CustomResourceDefinitions."""

from pathlib import Path

import click

from sharedcore.api.crdgen import write_crds


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("crds"),
    show_default=True,
    help="Directory to write the CRDs into.",
)
def crds(out: Path) -> None:
    """Write the CustomResourceDefinitions generated from the API models."""
    for path in write_crds(out):
        click.echo(path)
