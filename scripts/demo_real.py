"""`make demo REAL=1` (`DEMO_ARGS=--real-database`): the same story with a real database behind one platform.

Real nodes, CloudNativePG and a Prometheus at both sites, both operators in Automatic mode, the OpenData
platform with a one-instance PostgreSQL at danang streaming to quangnam, and a client writing a numbered row
every 20 ms through the site the service's DNS record names (sharedcore_testbed.realpair). Stages: a planned
switchover to quangnam; danang lost and quangnam failing over by itself; danang back, its database following;
a switchover back to danang. Each stage prints the rows written and lost, the data-loss window sharedcore
recorded, and the writer's own RTO next to sharedcore's. Fails (non-zero) if a switchover loses an
acknowledged row, a failover loses one acknowledged before its recorded window, or two primaries were ever
writable at once. Needs root and `make testbed-packages images`; takes a few minutes.
"""

from pathlib import Path

from sharedcore_testbed.realpair import lose_site, real_pair, rejoin, switchover
from sharedcore_testbed.traffic import Move


def say(text: str) -> None:
    print(text, flush=True)


def told(stage: str, move: Move, acknowledged: int) -> list[str]:
    """Print a stage's figures; return what went wrong in it."""
    report, window = move.report, move.window_recorded
    say(
        f"  {stage}: {acknowledged} rows acknowledged so far, {move.lost} lost in this move "
        f"(data-loss window recorded: {window if window is not None else 'none'} s)"
    )
    say(f"    RTO recorded by sharedcore: {move.rto_recorded} s; RTO the writer saw: {report.summary()}")
    say(
        f"    source fenced, its database demoted: {move.fence_seconds} s; promoted: {move.promote_seconds} s"
    )
    problems = (
        [f"{stage}: {len(report.at_two_primaries)} rows at two primaries"] if report.at_two_primaries else []
    )
    if stage.startswith("switchover") and move.lost:
        problems.append(f"{stage}: {move.lost} acknowledged rows lost")
    if move.outside_window:
        problems.append(f"{stage}: {move.outside_window} rows lost outside the recorded window")
    return problems


def run(directory: Path) -> list[str]:
    """The real-database story; returns what went wrong (empty: all as narrated)."""
    say("Starting danang and quangnam on real nodes with CloudNativePG and Prometheus, and the witness ...")
    with real_pair(directory) as (pair, traffic):
        say("OpenData's database streams from danang to quangnam; a client writes a row every 20 ms.")
        problems = told(
            "switchover to quangnam", switchover(pair, traffic, pair.quangnam), len(traffic.writer.acks)
        )
        problems += told(
            "switchover back to danang", switchover(pair, traffic, pair.danang), len(traffic.writer.acks)
        )
        say("Losing danang (operator killed, plane and node stopped) ...")
        problems += told("automatic failover to quangnam", lose_site(pair, traffic), len(traffic.writer.acks))
        seconds, copied = rejoin(pair)
        say(
            f"  danang back: its database follows quangnam again after {seconds} s, "
            f"{copied / 2**20:.0f} MiB copied anew"
        )
        problems += told(
            "switchover back to danang (failback)",
            switchover(pair, traffic, pair.danang),
            len(traffic.writer.acks),
        )
        two = traffic.sampler.two_writable()
        say(
            f"pg_is_in_recovery() sampled every 100 ms at both sites: {len(two)} ticks with two writable "
            "primaries."
        )
        if two:
            problems.append(f"two writable primaries at {two[:3]}")
    return problems
