"""Local PostgreSQL servers on loopback (Debian's postgresql package), for quick tests of the writer, the
checker and the sampler: a primary and a streaming standby play two sites' databases."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from sharedcore_testbed import _free_ports

USER = "postgres"  # PostgreSQL refuses to run as root


def bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _as_postgres(*argv: str) -> subprocess.CompletedProcess[str]:
    command = list(argv) if os.geteuid() != 0 else ["runuser", "-u", USER, "--", *argv]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)


@dataclass
class Server:
    name: str  # its cluster_name, as CloudNativePG sets it to the Cluster's name
    data: Path
    port: int

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres"

    def pg_ctl(self, *args: str) -> None:
        tools = bin_dir()
        assert tools is not None
        _as_postgres(str(tools / "pg_ctl"), "-D", str(self.data), "-w", *args)

    def start(self) -> None:
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 -c cluster_name={self.name} -k {self.data}"
        )
        self.pg_ctl("-o", options, "-l", str(self.data / "log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "stop")

    def promote(self) -> None:
        self.pg_ctl("promote")


@contextmanager
def primary_and_standby() -> Iterator[tuple[Server, Server]]:
    """A primary and a standby streaming from it (trust authentication on loopback); stopped afterwards."""
    tools = bin_dir()
    if tools is None or shutil.which("runuser") is None:
        pytest.skip("needs Debian's postgresql package (scripts/testbed-packages.sh installs it)")
    root = Path(tempfile.mkdtemp(prefix="sctb-pg-"))
    shutil.chown(root, USER)
    ports = _free_ports(2)
    primary = Server("site-a", root / "a", ports[0])
    standby = Server("site-b", root / "b", ports[1])
    try:
        _as_postgres(str(tools / "initdb"), "-D", str(primary.data), "-A", "trust", "-U", USER)
        primary.start()
        _as_postgres(
            str(tools / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            USER,
            "-D",
            str(standby.data),
            "-R",
        )
        standby.start()
        yield primary, standby
    finally:
        for server in (standby, primary):
            if (server.data / "postmaster.pid").exists():
                subprocess.run(
                    [
                        "runuser",
                        "-u",
                        USER,
                        "--",
                        str(tools / "pg_ctl"),
                        "-D",
                        str(server.data),
                        "-m",
                        "immediate",
                        "stop",
                    ],
                    check=False,
                    capture_output=True,
                )
        shutil.rmtree(root, ignore_errors=True)
