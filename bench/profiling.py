"""py-spy on a benchmark's operator: its samples recorded (collapsed stacks) and the busiest functions."""

import contextlib
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

RATE = 20  # samples a second: little enough for the shared cores


@contextlib.contextmanager
def recording(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy samples `pid` into `out` while the block runs (nothing without `out`); --nonblocking, so the
    operator is never paused and its CPU figures stay its own."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed (make venv installs it with the dev dependencies)")
    out.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [spy, "record", "--nonblocking", "-r", str(RATE), "-f", "raw", "-o", str(out), "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        process.wait(timeout=60)


# What a sample's innermost frame is while its thread waits (this py-spy cannot tell idle threads apart here).
WAITS = ("select (selectors.py", "poll (selectors.py", "wait (threading.py", "_wait_for_tstate_lock (")


# Whose functions are listed: sharedcore's and the libraries its time goes to, not the entry points (in every
# sample).
OURS = ("sharedcore/", "kopf/_core/", "kopf/_cogs/clients/", "json/", "aiohttp/client.py", "yaml/")
ENTRY = ("sharedcore/__main__.py", "sharedcore/runner.py")


def top(out: Path, entries: int = 25) -> list[tuple[str, float]]:
    """The functions of OURS found in the most busy samples (counted once per sample, wherever on the stack),
    as a share of the busy samples (those not waiting in WAITS)."""
    inclusive: Counter[str] = Counter()
    busy = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(wait in frames[-1] for wait in WAITS):
            continue
        busy += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    ours = [
        (frame, n)
        for frame, n in inclusive.most_common()
        if (where := frame.split(" (")[-1]).startswith(OURS) and not where.startswith(ENTRY)
    ]
    return [(frame, round(100 * n / max(busy, 1), 1)) for frame, n in ours[:entries]]
