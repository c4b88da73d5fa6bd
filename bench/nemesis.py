"""The nemesis: a seeded random schedule of faults against two sites and a witness, checked for split brain
and, on real nodes, for lost writes.

On a fresh testbed (danang and quangnam with kwok workloads, a bare witness), both operators with a Topology
in Automatic mode (heartbeat 1 s, lease 6 s, the tests' timings) and the data-plane doubles, N services
created at danang: episodes of faults drawn from the seed (operators SIGKILLed, also inside a Failover's
steps; sites and the witness stopped or paused; links cut one way or both, or slowed; an operator's wall
clock skewed; switchovers, failovers with and without acceptDataLoss, drills, a switchover deleted while it
runs), each followed by a settle and the checks (sharedcore_testbed.nemesis). Prints the timeline and a
summary, writes bench/results/nemesis.json (`--out`), and exits 1 on any violation, naming the command that
replays the same schedule.

With `--nodes real`: the pair of `sharedcore_testbed.realpair` instead (real nodes, CloudNativePG and a
Prometheus at both sites, the Topology's heartbeat 2 s and lease 15 s, one OpenData service with a real
one-instance database) under its writer and `pg_is_in_recovery()` sampler, and the data invariants besides
(`sharedcore_testbed.nemesis.database`), with the longer bounds a real database's moves take (`REAL_BOUNDS`).

    .venv/bin/python bench/nemesis.py --seed 1 --duration 300 [--services 3] [--nodes kwok]
    .venv/bin/python bench/nemesis.py --seed 1 --duration 300 --nodes real
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import failover
import results_file

from sharedcore_testbed.nemesis import REAL_BOUNDS, Nemesis, summary
from sharedcore_testbed.pair import create_services
from sharedcore_testbed.realpair import real_pair

HEARTBEAT, LEASE, RESYNC = 1, 6, 4.0
REAL_RESYNC = 5.0  # the real-database tests' setting


def run(seed: int, duration: float, services: int, workdir: Path) -> dict[str, Any]:
    with failover.running_pair(workdir, heartbeat=HEARTBEAT, lease=LEASE, resync=RESYNC) as pair:
        create_services(pair.danang, pair.quangnam, failover.services(services))
        return Nemesis(pair, seed=seed).run(duration)


def run_real(seed: int, duration: float, workdir: Path) -> dict[str, Any]:
    with real_pair(workdir, resync=REAL_RESYNC) as (pair, traffic):
        return Nemesis(pair, seed=seed, bounds=REAL_BOUNDS, traffic=traffic).run(duration)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument(
        "--duration", type=float, required=True, help="seconds of faults (the last settle follows)"
    )
    parser.add_argument(
        "--services", type=int, default=3, help="kwok only (real nodes: one, with a database)"
    )
    parser.add_argument("--nodes", choices=("kwok", "real"), default="kwok")
    parser.add_argument(
        "--out", help="the results' name under bench/results/ (nemesis, or nemesis-real with --nodes real)"
    )
    parser.add_argument("--keep", type=Path, help="keep the testbed's and operators' files (logs) here")
    args = parser.parse_args()

    def one(workdir: Path) -> dict[str, Any]:
        if args.nodes == "real":
            return run_real(args.seed, args.duration, workdir)
        return run(args.seed, args.duration, args.services, workdir)

    if args.keep:
        results = one(args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="sharedcore-nemesis-") as tmp:
            results = one(Path(tmp))
    results["nodes"] = args.nodes
    print("\n" + summary(results))
    out = results_file.write(args.out or ("nemesis-real" if args.nodes == "real" else "nemesis"), results)
    print(f"written: {out}")
    if results["violations"]:
        replay = f"bench/nemesis.py --seed {args.seed} --duration {args.duration:g} " + (
            "--nodes real" if args.nodes == "real" else f"--services {args.services}"
        )
        print(f"\n{len(results['violations'])} violation(s) with seed {args.seed}; replay: {replay}")
        json.dump(results["violations"], sys.stderr, indent=1)
        sys.exit(1)


if __name__ == "__main__":
    main()
