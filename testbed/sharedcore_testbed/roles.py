"""A background sampler of both sites' roles, as each operator acts on them (its `sharedcore_site_role`).

Every 100 ms it asks both operators; a sample holds each site's role then (None while an operator does not
answer: killed, restarting). Used as a context manager it fails the test, on the way out, if any sample
showed two Active sites. The tests and the nemesis (`sharedcore_testbed.nemesis`) use it.
"""

import re
import threading
import time
from collections.abc import Mapping
from types import TracebackType

from sharedcore_testbed.operators import OperatorProcess

ROLE = re.compile(r'^sharedcore_site_role\{[^}]*role="(\w+)"[^}]*\} 1(?:\.0)?$', re.MULTILINE)
EVERY = 0.1


def role_of(process: OperatorProcess) -> str | None:
    try:
        found = ROLE.findall(process.metrics_text("sharedcore_site_role"))
    except OSError:
        return None
    return found[0] if len(found) == 1 else None


class RoleSampler:
    def __init__(self, operators: Mapping[str, OperatorProcess]) -> None:
        self._operators = operators
        self.samples: list[tuple[float, dict[str, str | None]]] = []  # (monotonic time, site → role)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="role-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic()
            self.samples.append((at, {site: role_of(p) for site, p in self._operators.items()}))
            self._stop.wait(max(EVERY - (time.monotonic() - at), 0))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> "RoleSampler":
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
        if kind is None:
            self.assert_never_two_active()

    def assert_never_two_active(self) -> None:
        assert self.samples, "the sampler took no sample"
        both = [(at, roles) for at, roles in self.samples if list(roles.values()).count("Active") > 1]
        assert not both, f"{len(both)} of {len(self.samples)} samples show two Active sites, first: {both[0]}"

    def first(self, site: str, role: str, after: float = 0.0) -> float | None:
        """When `site` was first sampled in `role` (after `after`), if ever."""
        return next((at for at, roles in self.samples if at >= after and roles[site] == role), None)

    def roles(self, site: str, after: float = 0.0) -> list[str | None]:
        """The roles `site` went through after `after`, each change once."""
        seen: list[str | None] = []
        for at, roles in self.samples:
            if at >= after and (not seen or seen[-1] != roles[site]):
                seen.append(roles[site])
        return seen
