"""A citizen's view of a failover: a plain HTTP client of a platform's web front end that finds it through the
city DNS, as a browser behind a caching resolver does.

It resolves the service's host at the city DNS, keeps the answer for the record's TTL (not a moment longer,
not shorter: what a stub resolver's cache does), and GETs `http://<address>:<port>/` with the host as `Host`
every `every` seconds. Each attempt is recorded with the site that answered (the stand-ins answer with their
site and role). Its RTO is what a citizen sees: from the last answer of the old site to the first of the new
one; it differs from sharedcore's by up to the TTL, the time the old address stays cached.

    with Prober(host, server) as prober:
        ...
    prober.rto("danang", "quangnam")

Sites without real pods (kwok) have no front end to ask: `FrontEnd(site, address, port)` stands in for one
(the testbed's stand-in images answer the same way), to be stopped with its site.
"""

import http.server
import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from types import TracebackType

from sharedcore_testbed import json_http
from sharedcore_testbed.citydns import query


@dataclass(frozen=True)
class Attempt:
    at: float  # monotonic
    address: str | None  # as resolved (from the cache or the server)
    site: str | None  # the site that answered, None on failure
    error: str | None = None


class Prober:
    def __init__(self, host: str, server: str, *, port: int = 80, every: float = 0.1, timeout: float = 1.0):
        self.host, self.server, self.port, self.every, self.timeout = host, server, port, every, timeout
        self.attempts: list[Attempt] = []
        self.resolutions: list[tuple[float, list[str], int | None]] = []  # (when, addresses, TTL)
        self._cached: tuple[str | None, float] = (None, 0.0)  # (address, monotonic expiry)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prober", daemon=True)

    def _address(self) -> str | None:
        address, expires = self._cached
        now = time.monotonic()
        if now < expires:
            return address
        try:
            answer = query(self.server, self.host, timeout=self.timeout)
        except OSError:
            return None  # the resolver retries at the next attempt
        self.resolutions.append((now, answer.addresses, answer.ttl))
        address = answer.addresses[0] if answer.addresses else None
        self._cached = (address, now + (answer.ttl or 0))
        return address

    def attempt(self) -> Attempt:
        """Resolve (or use the cached answer) and GET the front end once."""
        at = time.monotonic()
        address = self._address()
        if address is None:
            return Attempt(at, None, None, "no address")
        request = urllib.request.Request(f"http://{address}:{self.port}/", headers={"Host": self.host})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                site = json.loads(response.read()).get("site")
        except (OSError, ValueError) as error:
            return Attempt(at, address, None, str(error))
        return Attempt(at, address, str(site))

    def _run(self) -> None:
        while not self._stop.is_set():
            attempt = self.attempt()
            self.attempts.append(attempt)
            self._stop.wait(max(self.every - (time.monotonic() - attempt.at), 0))

    def __enter__(self) -> "Prober":
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def first_success(self, site: str, after: float = 0.0) -> float | None:
        return next((a.at for a in self.attempts if a.at >= after and a.site == site), None)

    def last_success(self, site: str, before: float) -> float | None:
        return next((a.at for a in reversed(self.attempts) if a.at < before and a.site == site), None)

    def rto(self, old: str, new: str, after: float = 0.0) -> float | None:
        """Seconds from the last answer of `old` to the first of `new` (after `after`): a citizen's RTO."""
        first = self.first_success(new, after)
        last = None if first is None else self.last_success(old, first)
        return None if first is None or last is None else first - last


class FrontEnd:
    """A site's web front end where the site has no real pods: answers every GET with its site's name."""

    def __init__(self, site: str, address: str, port: int) -> None:
        self.site, self.address, self.port = site, address, port
        self._server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> None:
        answer = {"site": self.site}
        self._server = http.server.ThreadingHTTPServer(
            (self.address, self.port), json_http.handler(lambda _: answer)
        )
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
