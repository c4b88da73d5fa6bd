"""`sharedcore-testbed …`: start, break and inspect local control planes (a development tool, not shipped)."""

from collections.abc import Callable
from pathlib import Path

import click

from sharedcore_testbed import PlaneError, Testbed, citydns, playground
from sharedcore_testbed import images as images_module
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
def images() -> None:
    """Build the images real nodes run (pause, base, the operator from its Dockerfile, stand-ins), cached."""
    _run("images", images_module.build_all)


@main.command()
@DIR_OPTION
@click.option(
    "--nodes",
    type=click.Choice(["kwok", "real"]),
    help="Where pods run: kwok fake nodes (fast, nothing runs), or a real node per site (containerd, "
    "kubelet, kube-proxy, CoreDNS; root, Linux) in the site's own network namespace.",
)
@click.option("--workloads", is_flag=True, help="The same as --nodes kwok.")
@click.option(
    "--bare",
    multiple=True,
    metavar="NAME",
    help="A site that gets no nodes (a witness). With --nodes real, a site named witness is bare by default.",
)
@click.option(
    "--node-count",
    default=1,
    show_default=True,
    help="With --nodes real: nodes per site (each its own kubelet).",
)
@click.option(
    "--pair",
    is_flag=True,
    help="With --nodes real and NAMES danang quangnam witness: the whole pair, ready to try by hand (a "
    "Prometheus at each site, the city DNS, both operators from the chart, the Topology in Automatic mode).",
)
@click.option(
    "--city-dns",
    is_flag=True,
    help="Also the city's DNS server (CoreDNS and its etcd, outside the sites; as root: port 53) and "
    "ExternalDNS at every site with nodes; DIR/dns/resolv.conf names the server.",
)
@click.argument("names", nargs=-1, required=True)
def up(
    *,
    directory: Path,
    nodes: str | None,
    workloads: bool,
    bare: tuple[str, ...],
    node_count: int,
    pair: bool,
    city_dns: bool,
    names: tuple[str, ...],
) -> None:
    """Start one control plane per NAME; return when every apiserver (and node) is ready."""
    if pair:
        if nodes != "real" or bare:
            raise click.UsageError("--pair needs --nodes real (and no --bare: the witness is bare)")
        try:
            lines = playground.up(directory, names, node_count)
        except (PlaneError, MissingBinaryError, KeyError, ValueError, RuntimeError) as error:
            raise click.ClickException(f"up --pair: {error}") from error
        click.echo("\n".join(lines))
        return
    mode = nodes or ("kwok" if workloads else None)
    bare_sites = set(bare) or ({"witness"} if mode == "real" else set())
    with_nodes = {name for name in names if mode and name not in bare_sites}
    bed = Testbed(directory)
    kwok_sites, real_sites = (with_nodes, set()) if mode == "kwok" else (set(), with_nodes)
    _run("up", lambda: bed.up(list(names), kwok_sites, real_sites, node_count, city_dns=city_dns))
    for name in names:
        click.echo(f"{name}: export KUBECONFIG={bed.kubeconfig(name)}")
    if city_dns:
        click.echo(f"city DNS: {citydns.resolv_conf(bed.directory)}")


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
    """Cut the network between sites A and B (B may be `city`, the city DNS)."""
    _run(f"partition {a} {b}", Testbed(directory).partition, a, b, one_way)


@main.command()
@DIR_OPTION
@click.option("--delay-ms", type=click.IntRange(min=0), default=0, show_default=True, help="Added each way.")
@click.option("--loss", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--one-way", is_flag=True, help="Only connections opened by A towards B are slowed.")
@click.argument("a")
@click.argument("b")
def slow(*, directory: Path, delay_ms: int, loss: float, one_way: bool, a: str, b: str) -> None:
    """Degrade the network between sites A and B: delay and lost segments (retransmitted late)."""
    _run(f"slow {a} {b}", Testbed(directory).slow, a, b, delay_ms, loss, one_way)


@main.command()
@DIR_OPTION
@click.argument("a")
@click.argument("b")
def heal(directory: Path, a: str, b: str) -> None:
    """Restore the network between sites A and B, both ways (neither cut nor slow)."""
    _run(f"heal {a} {b}", Testbed(directory).heal, a, b)


@main.command()
@DIR_OPTION
def status(directory: Path) -> None:
    """A table of sites, ports, process states and partitions."""
    rows = [("SITE", "APISERVER", "ETCD", "NODES", "PROCESSES", "CANNOT REACH", "SLOW TO")]
    for plane in Testbed(directory).status():
        states = " ".join(f"{name}={state}" for name, state in plane.processes.items())
        rows.append(
            (
                plane.name,
                f"{plane.address}:{plane.apiserver_port}",
                str(plane.etcd_port),
                plane.nodes,
                states,
                ",".join(plane.unreachable) or "-",
                ",".join(plane.slow) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
