"""The nemesis: a seeded random schedule of faults against two sites and a witness, checked for split brain.

On a fresh testbed (danang and quangnam with kwok workloads, a bare witness), both operators with a Topology
in Automatic mode (heartbeat 1 s, lease 6 s, the tests' timings) and the data-plane doubles, N services
created at danang: episodes of faults drawn from the seed (operators SIGKILLed, also inside a Failover's
steps; sites and the witness stopped or paused; links cut one way or both, or slowed; an operator's wall
clock skewed; switchovers, failovers with and without acceptDataLoss, drills, a switchover deleted while it
runs), each followed by a settle and the checks (sharedcore_testbed.nemesis). Prints the timeline and a
summary, writes bench/results/nemesis.json (`--out`), and exits 1 on any violation, naming the command that
replays the same schedule.

    .venv/bin/python bench/nemesis.py --seed 1 --duration 300 [--services 3] [--nodes kwok]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import failover
import results_file

from sharedcore_testbed.nemesis import Nemesis, summary
from sharedcore_testbed.pair import create_services

HEARTBEAT, LEASE, RESYNC = 1, 6, 4.0
# The data half (a writer, lost writes, two writable primaries) needs real PostgreSQL on real nodes.
REAL_NODES_REFUSAL = (
    "--nodes real is not available yet: its invariants (no acknowledged write lost outside a recorded "
    "data-loss window, no row at two primaries, never two writable primaries by pg_is_in_recovery()) are not "
    "wired in: the writer, the checker and the sampler (sharedcore_testbed.writer, .checker, .sampler) and "
    "CloudNativePG on the testbed's real nodes are there, and join the nemesis as further invariants "
    "(sharedcore_testbed.nemesis.Invariant). Run with --nodes kwok."
)


def run(seed: int, duration: float, services: int, workdir: Path) -> dict[str, Any]:
    with failover.running_pair(workdir, heartbeat=HEARTBEAT, lease=LEASE, resync=RESYNC) as pair:
        create_services(pair.danang, pair.quangnam, failover.services(services))
        return Nemesis(pair, seed=seed).run(duration)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument(
        "--duration", type=float, required=True, help="seconds of faults (the last settle follows)"
    )
    parser.add_argument("--services", type=int, default=3)
    parser.add_argument("--nodes", choices=("kwok", "real"), default="kwok")
    parser.add_argument("--out", default="nemesis", help="the results' name under bench/results/")
    parser.add_argument("--keep", type=Path, help="keep the testbed's and operators' files (logs) here")
    args = parser.parse_args()
    if args.nodes == "real":
        raise SystemExit(REAL_NODES_REFUSAL)
    if args.keep:
        results = run(args.seed, args.duration, args.services, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="sharedcore-nemesis-") as tmp:
            results = run(args.seed, args.duration, args.services, Path(tmp))
    print("\n" + summary(results))
    out = results_file.write(args.out, results)
    print(f"written: {out}")
    if results["violations"]:
        replay = (
            f"bench/nemesis.py --seed {args.seed} --duration {args.duration:g} --services {args.services}"
        )
        print(f"\n{len(results['violations'])} violation(s) with seed {args.seed}; replay: {replay}")
        json.dump(results["violations"], sys.stderr, indent=1)
        sys.exit(1)


if __name__ == "__main__":
    main()
