"""`kubectl sharedcore switchover|failover|drill`: create a Failover request and follow its steps live.

The plugin never moves anything itself: the operator at the target site executes the Failover, and the
Failover stays as the audit record. Create it at the target site (`--context`), where it is executed: the
plugin checks which site its context reaches (the Topology status names it) before creating anything.
"""

from __future__ import annotations

import datetime
import getpass
import time
from collections.abc import Callable
from pathlib import Path

import click

from sharedcore import API_GROUP, API_VERSION, Body
from sharedcore.plugin.kube import Cluster, Connection, PluginError, connection_options

TERMINAL = {"Succeeded", "Failed", "Planned"}
POLL_SECONDS = 0.5
MARKS = {"Succeeded": "✓", "Skipped": "-", "Failed": "✗", "Running": "…", "Pending": " "}


def request(
    type_: str,
    target: str,
    reason: str,
    *,
    dry_run: bool = False,
    accept_data_loss: bool = False,
    now: datetime.datetime | None = None,
) -> Body:
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%d-%H%M%S")
    kind = "drill" if dry_run else type_.lower()
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "Failover",
        "metadata": {"name": f"{kind}-to-{target}-{stamp}"},
        "spec": {
            "targetSite": target,
            "type": type_,
            "reason": reason,
            "dryRun": dry_run,
            "acceptDataLoss": accept_data_loss,
        },
    }


def describe_step(step: Body) -> str:
    took = ""
    if step.get("startTime") and step.get("completionTime"):
        started = datetime.datetime.fromisoformat(step["startTime"])
        took = (
            f" ({(datetime.datetime.fromisoformat(step['completionTime']) - started).total_seconds():.1f}s)"
        )
    message = f": {step['message']}" if step.get("message") else ""
    return f"  {MARKS.get(step.get('state', 'Pending'), '?')} {step['name']}{took}{message}"


def describe_outcome(status: Body) -> str:
    lines = [
        f"{status.get('phase')}: {status.get('fromSite', '?')} → {status.get('toSite', '?')}, "
        f"epoch {status.get('fromEpoch', '?')} → {status.get('toEpoch', '?')}"
    ]
    if status.get("rtoSeconds") is not None:
        lines.append(f"  RTO {status['rtoSeconds']:.1f}s")
    if status.get("dataLossWindowSeconds") is not None:
        lines.append(f"  data-loss window {status['dataLossWindowSeconds']:.1f}s (worst service)")
    for service in status.get("services", []):
        window = service.get("dataLossWindowSeconds")
        lines.append(
            f"  {service['namespace']}/{service['name']}: {service.get('state', '?')}"
            + (f", data-loss window {window:.1f}s" if window is not None else ", data-loss window unknown")
        )
    if status.get("message"):
        lines.append(f"  {status['message']}")
    return "\n".join(lines)


def follow(
    cluster: Cluster,
    name: str,
    echo: Callable[[str], None],
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Body:
    """Print each step as it changes until the Failover ends; returns its final status."""
    shown: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        failover = cluster.failover(name)
        if failover is None:
            raise PluginError(f"Failover {name} disappeared")
        status = failover.get("status") or {}
        for step in status.get("steps", []):
            line = describe_step(step)
            if shown.get(step["name"]) != line and step.get("state") != "Pending":
                shown[step["name"]] = line
                echo(line)
        if status.get("phase") in TERMINAL:
            return status
        sleep(POLL_SECONDS)
    raise PluginError(
        f"Failover {name} did not finish within {timeout:.0f}s (it goes on: kubectl get fo {name})"
    )


def check_site(topology: Body | None, target: str) -> None:
    """Refuse to create a Failover anywhere but at its target site: elsewhere it is never executed."""
    sites = [site.get("name") for site in ((topology or {}).get("spec") or {}).get("sites") or []]
    here = ((topology or {}).get("status") or {}).get("site")
    if sites and target not in sites:
        raise PluginError(f"{target} is not a site of the Topology ({', '.join(map(str, sites))})")
    if not here:
        raise PluginError(
            "cannot tell which site this context reaches: its Topology status names no site (is sharedcore's "
            "operator running there?). Give the target site's context with --context"
        )
    if here != target:
        raise PluginError(
            f"this context reaches {here}; a Failover to {target} is executed by {target}'s operator: "
            f"run this again with --context <{target}'s context>"
        )


def _run(kubeconfig: Path | None, context: str | None, body: Body, wait: bool, timeout: float) -> None:
    cluster = Connection(kubeconfig, context).cluster()
    check_site(cluster.topology(), body["spec"]["targetSite"])
    created = cluster.create_failover(body)
    name = created["metadata"]["name"]
    click.echo(f"failover.{API_GROUP}/{name} created: {body['spec']['type']} to {body['spec']['targetSite']}")
    if not wait:
        click.echo(f"follow it with: kubectl get fo {name} -w")
        return
    status = follow(cluster, name, click.echo, timeout)
    click.echo(describe_outcome(status))
    if status.get("phase") == "Failed":
        raise SystemExit(1)


def _default_reason(what: str) -> str:
    return f"{what} requested by {getpass.getuser()} with kubectl sharedcore"


WAIT = click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Follow the steps until it ends."
)
TIMEOUT = click.option(
    "--timeout", default=900.0, show_default=True, help="Seconds to follow it with --wait."
)
TARGET = click.option("--to", "target", required=True, help="The site that becomes active.")


@click.command("switchover")
@connection_options
@TARGET
@click.option("--reason", help="For the record (default: who asked, and how).")
@WAIT
@TIMEOUT
def switchover_command(
    *,
    kubeconfig: Path | None,
    context: str | None,
    target: str,
    reason: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Planned switchover to SITE, both sites up: fence, final sync, promote, redirect. Nothing is lost."""
    body = request("Switchover", target, reason or _default_reason("planned switchover"))
    _run(kubeconfig, context, body, wait, timeout)


@click.command("failover")
@connection_options
@TARGET
@click.option("--reason", required=True, help="Why (an incident number): the Failover is the audit record.")
@click.option(
    "--accept-data-loss", is_flag=True, help="Proceed even if a service would lose more than its RPO."
)
@WAIT
@TIMEOUT
def failover_command(
    *,
    kubeconfig: Path | None,
    context: str | None,
    target: str,
    reason: str,
    accept_data_loss: bool,
    wait: bool,
    timeout: float,
) -> None:
    """Emergency failover to SITE from the last replicated state (the active site is down or unreachable)."""
    body = request("Failover", target, reason, accept_data_loss=accept_data_loss)
    _run(kubeconfig, context, body, wait, timeout)


@click.command("drill")
@connection_options
@TARGET
@click.option(
    "--type", "type_", type=click.Choice(["Switchover", "Failover"]), default="Failover", show_default=True
)
@TIMEOUT
def drill_command(
    *, kubeconfig: Path | None, context: str | None, target: str, type_: str, timeout: float
) -> None:
    """Plan a failover to SITE without changing anything: steps, data-loss windows, failing preconditions."""
    body = request(type_, target, _default_reason(f"{type_.lower()} drill"), dry_run=True)
    _run(kubeconfig, context, body, True, timeout)
