"""A client that writes numbered rows into a service's database every ~20 ms and records each acknowledged
commit, following the database the way a real client does: through a lookup of where the service is now.

    writer = Writer("w1", locate)          # locate() → Target (site, connection string) or None
    writer.start(); ...; writer.stop()
    writer.acks                             # [Ack(seq, site, at)], in order

Each row is (writer, seq, origin, at): `origin` is the PostgreSQL `cluster_name` of the server that committed
it (CloudNativePG sets it to the Cluster's name, so the row itself says which site's primary took it) and `at`
the server's clock. A row counts as acknowledged only once its COMMIT returned; a failure of any kind (no
answer, a demoted server refusing writes, a lost connection) drops the connection, asks `locate` again and
moves on to the next number (the failed one may or may not have been committed: it was not acknowledged).
The checker (sharedcore_testbed.checker) compares these records with what the databases hold.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

TABLE = "sharedcore_writes"
SCHEMA = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    writer text NOT NULL,
    seq bigint NOT NULL,
    origin text NOT NULL DEFAULT current_setting('cluster_name'),
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (writer, seq)
)"""
INTERVAL = 0.02
# A partition black-holes packets: a client must give up on its own, as real ones do with these settings.
CONNECT_OPTIONS = {"connect_timeout": 2, "tcp_user_timeout": 2000, "keepalives_idle": 1}


@dataclass(frozen=True)
class Target:
    """Where to write now: the site the lookup named, and how to reach its read-write Service."""

    site: str
    conninfo: str


@dataclass(frozen=True)
class Ack:
    seq: int
    site: str
    at: float  # epoch seconds at which the commit was acknowledged


Locate = Callable[[], Target | None]


def connect(conninfo: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(conninfo, autocommit=True, **CONNECT_OPTIONS)  # type: ignore[arg-type]


class Writer:
    def __init__(
        self, name: str, locate: Locate, *, interval: float = INTERVAL, relocate: float = 1.0
    ) -> None:
        """`relocate`: how often (seconds) a working writer asks `locate` again, as a client honouring a
        short DNS TTL does; after any failure it asks at once."""
        self.name = name
        self.acks: list[Ack] = []
        self.failures = 0
        self.last_error = ""
        self._locate, self._interval, self._relocate = locate, interval, relocate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"writer-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def acknowledged_since(self, since: float) -> list[Ack]:
        return [ack for ack in list(self.acks) if ack.at >= since]

    def wait_for_acks(self, count: int, timeout: float, since: float = 0.0) -> None:
        """Until `count` writes after `since` were acknowledged (or fail with the last error)."""
        deadline = time.monotonic() + timeout
        while len(self.acknowledged_since(since)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"writer {self.name}: {len(self.acknowledged_since(since))} of {count} writes "
                    f"acknowledged in {timeout:.0f} s; last error: {self.last_error or 'none'}"
                )
            time.sleep(0.05)

    def _run(self) -> None:
        seq, connection, target, located = 0, None, None, 0.0
        next_write = time.monotonic()
        while not self._stop.is_set():
            next_write += self._interval
            try:
                if target is None or time.monotonic() - located > self._relocate:
                    found, located = self._locate(), time.monotonic()
                    if found != target and connection is not None:
                        connection.close()
                        connection = None
                    target = found
                if target is not None:
                    if connection is None:
                        connection = connect(target.conninfo)
                        connection.execute(SCHEMA)
                    seq += 1
                    connection.execute(f"INSERT INTO {TABLE} (writer, seq) VALUES (%s, %s)", (self.name, seq))
                    self.acks.append(Ack(seq, target.site, time.time()))
            except Exception as error:
                self.failures += 1
                self.last_error = f"{type(error).__name__}: {error}".strip()
                if connection is not None:
                    connection.close()
                connection, target = None, None
            self._stop.wait(max(0.0, next_write - time.monotonic()))
            next_write = max(next_write, time.monotonic())
        if connection is not None:
            connection.close()
