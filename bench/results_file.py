"""Where the benchmarks keep their figures: bench/results/<name>.json, with the machine they ran on."""

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write(name: str, results: list[dict[str, Any]] | dict[str, Any]) -> Path:
    """A list goes under "results"; a mapping's keys sit beside "machine"."""
    RESULTS.mkdir(exist_ok=True)
    machine = {
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    out = RESULTS / f"{name}.json"
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    found = results if isinstance(results, dict) else {"results": results}
    body = {"machine": machine, "date": date} | found
    out.write_text(json.dumps(body, indent=2) + "\n")
    return out
