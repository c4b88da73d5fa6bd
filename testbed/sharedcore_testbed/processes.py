"""Child processes in their own process groups, so stopping one kills everything it started."""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from sharedcore_testbed.state import ProcessRecord


def spawn(name: str, argv: list[str], log: Path, env: Mapping[str, str] | None = None) -> ProcessRecord:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    ticks = _stat(process.pid)
    assert ticks is not None, "a child we just forked has a /proc entry"
    return ProcessRecord(name=name, pid=process.pid, start_ticks=int(ticks[19]), argv=argv, log=str(log))


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (index 0 is the state), or None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far (0 once it is gone)."""
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reap(pid: int) -> None:
    """Collect our own exited children; processes started by an earlier CLI call belong to init."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def state(record: ProcessRecord) -> str:
    """running, paused (SIGSTOPped) or exited; a reused pid counts as exited."""
    _reap(record.pid)
    fields = _stat(record.pid)
    if fields is None or int(fields[19]) != record.start_ticks or fields[0] in ("Z", "X"):
        return "exited"
    return "paused" if fields[0] == "T" else "running"


def alive(record: ProcessRecord) -> bool:
    return state(record) != "exited"


def signal_group(record: ProcessRecord, sig: signal.Signals) -> None:
    if alive(record):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, sig)


def terminate(record: ProcessRecord, grace: float = 10.0) -> None:
    """SIGTERM the group (waking it if paused), SIGKILL after the grace period."""
    signal_group(record, signal.SIGTERM)
    signal_group(record, signal.SIGCONT)
    deadline = time.monotonic() + grace
    while alive(record) and time.monotonic() < deadline:
        time.sleep(0.05)
    signal_group(record, signal.SIGKILL)
    while alive(record):
        time.sleep(0.02)


def log_tail(record: ProcessRecord, lines: int = 25) -> str:
    try:
        return "\n".join(Path(record.log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
