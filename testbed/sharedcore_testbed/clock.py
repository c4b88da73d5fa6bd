"""A wall clock set off from the machine's, for one process: Debian's libfaketime, preloaded.

Only the wall clock moves (what `time.time()` and `datetime.now()` read, and what TLS checks certificates
against); the monotonic clock is left alone, as between two machines whose clocks disagree. Installed by
`make testbed-packages` (package `faketime`).
"""

from pathlib import Path

LIBRARIES = "/usr/lib/*/faketime/libfaketimeMT.so.1"  # the variant for threaded programs


def skewed_environment(offset: float) -> dict[str, str]:
    """Environment variables that run a process with its wall clock `offset` seconds off."""
    found = sorted(Path("/").glob(LIBRARIES.lstrip("/")))
    if not found:
        raise FileNotFoundError(
            f"a skewed clock needs libfaketime ({LIBRARIES}): "
            "install Debian's package faketime (make testbed-packages)"
        )
    return {
        "LD_PRELOAD": str(found[0]),
        "FAKETIME": f"{offset:+.3f}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
