"""`sharedcore-testbed …`: start, break and inspect local control planes (a development tool, not shipped)."""

from collections.abc import Callable
from pathlib import Path

import click

from sharedcore_testbed import PlaneError, Testbed
from sharedcore_testbed.binaries import MissingBinaryError, bin_dir

DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".testbed"),
    show_default=True,
    help="Where the planes keep their data, certificates, kubeconfigs and logs.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Real Kubernetes control planes as local processes, with site outages and partitions."""


def _run(action: str, fn: Callable[..., object], *args: object) -> None:
    """Call fn; turn the testbed's expected failures into one clear error line."""
    try:
        fn(*args)
    except (PlaneError, MissingBinaryError, KeyError, ValueError) as error:
        raise click.ClickException(f"{action}: {error}") from error


@main.command("bin-dir")
def bin_dir_command() -> None:
    """Print the directory holding the built binaries (put it on PATH)."""
    _run("bin-dir", lambda: click.echo(bin_dir()))


@main.command()
@DIR_OPTION
@click.option("--workloads", is_flag=True, help="Also run controller-manager, scheduler and kwok fake nodes.")
@click.option(
    "--bare", multiple=True, metavar="NAME", help="With --workloads: a site that gets none (a witness)."
)
@click.argument("names", nargs=-1, required=True)
def up(directory: Path, workloads: bool, bare: tuple[str, ...], names: tuple[str, ...]) -> None:
    """Start one control plane per NAME; return when every apiserver is ready."""
    bed = Testbed(directory)
    _run("up", bed.up, list(names), {n for n in names if workloads and n not in bare})
    for name in names:
        click.echo(f"{name}: export KUBECONFIG={bed.kubeconfig(name)}")


@main.command()
@DIR_OPTION
def down(directory: Path) -> None:
    """Stop everything the testbed started."""
    _run("down", Testbed(directory).down)


def _site_command(name: str, help_text: str) -> None:
    @main.command(name=name, help=help_text)
    @DIR_OPTION
    @click.argument("site")
    def command(directory: Path, site: str) -> None:
        _run(f"{name} {site}", getattr(Testbed(directory), name), site)


_site_command("stop", "Kill SITE's processes (a site outage); its data stays.")
_site_command("start", "Bring SITE back with the same data and ports.")
_site_command("pause", "SIGSTOP SITE: connections hang instead of failing.")
_site_command("resume", "SIGCONT a paused SITE.")


@main.command()
@DIR_OPTION
@click.option("--one-way", is_flag=True, help="Only connections opened by A towards B are cut.")
@click.argument("a")
@click.argument("b")
def partition(directory: Path, one_way: bool, a: str, b: str) -> None:
    """Cut the network between sites A and B."""
    _run(f"partition {a} {b}", Testbed(directory).partition, a, b, one_way)


@main.command()
@DIR_OPTION
@click.argument("a")
@click.argument("b")
def heal(directory: Path, a: str, b: str) -> None:
    """Restore the network between sites A and B, both ways."""
    _run(f"heal {a} {b}", Testbed(directory).heal, a, b)


@main.command()
@DIR_OPTION
def status(directory: Path) -> None:
    """A table of sites, ports, process states and partitions."""
    rows = [("SITE", "APISERVER", "ETCD", "WORKLOADS", "PROCESSES", "CANNOT REACH")]
    for plane in Testbed(directory).status():
        states = " ".join(f"{name}={state}" for name, state in plane.processes.items())
        rows.append(
            (
                plane.name,
                f"127.0.0.1:{plane.apiserver_port}",
                str(plane.etcd_port),
                "yes" if plane.workloads else "no",
                states,
                ",".join(plane.unreachable) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
