"""`bench/failover.py --real`: every move on real PostgreSQL under continuous writes
(sharedcore_testbed.realpair: real nodes, CloudNativePG and a Prometheus at both sites, both operators in
Automatic mode, one OpenData service with a one-instance database, the writer writing every 20 ms where its
DNS record points).

Per run: a switchover danang → quangnam and back; danang lost → automatic failover to quangnam; danang back
(the time until its database follows again, and the bytes it copied); a switchover back to
danang. Per move: the RTO sharedcore
records, the RTO the writer saw (last acknowledged write before, first after), acknowledged writes lost, the
data-loss window recorded, and the FenceSource and Promote steps' times (CloudNativePG demoting the source and
promoting the target happen within them).
Prints median (min-max) per move and writes bench/results/failover-real.json.
"""

import statistics
import tempfile
from pathlib import Path
from typing import Any

import results_file

from sharedcore_testbed.realpair import lose_site, real_pair, rejoin, switchover

MOVES = ("switchover", "switchback", "failover", "failback")
FIGURES = (
    "rto_recorded_s",
    "rto_writer_s",
    "acknowledged_lost",
    "window_recorded_s",
    "fence_s",
    "promote_s",
)


def measure(runs: int, workdir: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with real_pair(workdir) as (pair, traffic):
        for number in range(runs):
            run: dict[str, Any] = {
                "switchover": switchover(pair, traffic, pair.quangnam).figures(),
                "switchback": switchover(pair, traffic, pair.danang).figures(),
                "failover": lose_site(pair, traffic).figures(),
                "rejoin_s": (returned := rejoin(pair))[0],
                "rejoin_bytes_copied": returned[1],
                "failback": switchover(pair, traffic, pair.danang).figures(),
            }
            rows.append(run)
            print(f"  run {number + 1}: {run}", flush=True)
        two = len(traffic.sampler.two_writable())
        acknowledged = len(traffic.writer.acks)
    return {"runs": rows, "acknowledged": acknowledged, "ticks_with_two_writable_primaries": two}


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="sctb-real-") as tmp:
        result = measure(runs, Path(tmp))
    print(
        f"\nmedian (min-max) over {runs} runs, seconds; {result['acknowledged']} writes acknowledged; "
        f"100 ms ticks with two writable primaries: {result['ticks_with_two_writable_primaries']}"
    )
    print("move".ljust(12) + "".join(figure.ljust(22) for figure in FIGURES))
    for move in MOVES:
        cells = [
            spread([float(r[move][f]) for r in result["runs"] if r[move][f] is not None]) for f in FIGURES
        ]
        print(move.ljust(12) + "".join(cell.ljust(22) for cell in cells))
    print("rejoin".ljust(12) + spread([float(r["rejoin_s"]) for r in result["runs"]]) + " s")
    print("copied".ljust(12) + spread([r["rejoin_bytes_copied"] / 2**20 for r in result["runs"]]) + " MiB")
    print(f"\nwritten: {results_file.write('failover-real', [result])}")
