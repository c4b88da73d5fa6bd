"""Where the benchmarks keep their figures: bench/results/<name>.json, with the machine they ran on."""

import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write(name: str, results: list[dict[str, Any]]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    machine = {
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    return out
