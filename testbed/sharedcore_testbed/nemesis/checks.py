"""What the nemesis holds the system to, between faults and at the end.

The role half: never two Active sites (`OneActive`, from the role sampler's 100 ms samples), nothing
leaked at either site (`NoLeaks`: no rendered object without its service, none left in another role or
epoch than its site's), operator memory flat (`FlatMemory`), and operators that neither crash nor meet an
exception they did not expect (`CleanOperators`). Convergence and the end of every Failover are
what the runner waits for when it settles (`sharedcore_testbed.nemesis.convergence`).

The data half, on real nodes (never two writable primaries; no acknowledged write lost outside a recorded
data-loss window, no row at two primaries), is two more `Invariant`s: `sharedcore_testbed.nemesis.database`.
"""

import json
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sharedcore import API_GROUP
from sharedcore.kube.resources import MANAGED_BY, RENDERED
from sharedcore.render.names import label_value
from sharedcore.replication import retained
from sharedcore_testbed.clients import SiteClients
from sharedcore_testbed.operators import OperatorProcess, kubectl
from sharedcore_testbed.roles import RoleSampler

SERVICE, ROLE, EPOCH = (f"{API_GROUP}/{key}" for key in ("service", "role", "epoch"))
# A SIGTERM ends an operator with 0, or by the signal itself when it comes before the operator has set up
# its handlers (starting, it imports for seconds on a loaded machine): neither leaves anything half done.
CLEAN_EXITS = (0, -signal.SIGTERM)


@dataclass(frozen=True)
class Violation:
    invariant: str
    time: float  # seconds since the run started
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"invariant": self.invariant, "time": self.time, "detail": self.detail}


@dataclass(frozen=True)
class Settled:
    """The system after a settle: converged at `epoch` with `active` serving, and when (run seconds)."""

    at: float
    active: str
    epoch: int
    sites: dict[str, SiteClients]  # by name: both workload sites
    services: dict[str, set[tuple[str, str]]]  # by site: (namespace, name) of each SharedService


class Invariant(Protocol):
    """One invariant: started with the run, asked after each settle and at the end, then stopped."""

    name: str

    def start(self) -> None: ...

    def settled(self, state: Settled) -> list[Violation]: ...

    def final(self, at: float) -> list[Violation]: ...

    def stop(self) -> None: ...

    def figures(self) -> dict[str, Any]: ...


class OneActive:
    """Never two Active sites, by the operators' own roles every 100 ms."""

    name = "one-active"

    def __init__(self, sampler: RoleSampler, since_start: float) -> None:
        self.sampler = sampler
        self._origin = since_start  # the monotonic time run seconds count from
        self._checked = 0
        self.found: list[Violation] = []

    def start(self) -> None:
        self.sampler.start()

    def new(self) -> list[Violation]:
        """Each run of samples with two Active sites since the last call (one violation per run)."""
        samples = self.sampler.samples[self._checked :]
        self._checked += len(samples)
        found = []
        run: list[float] = []
        for at, roles in [*samples, (float("inf"), {})]:
            if list(roles.values()).count("Active") > 1:
                run.append(at)
                continue
            if run:
                found.append(
                    Violation(
                        self.name,
                        round(run[0] - self._origin, 2),
                        f"two Active sites in {len(run)} samples over {run[-1] - run[0] + 0.1:.1f}s",
                    )
                )
                run = []
        self.found += found
        return found

    def settled(self, state: Settled) -> list[Violation]:
        return []  # reported as they happen (`new`), by the runner's observer

    def final(self, at: float) -> list[Violation]:
        return []

    def stop(self) -> None:
        self.sampler.stop()

    def figures(self) -> dict[str, Any]:
        return {
            "samples": len(self.sampler.samples),
            "samples_two_active": sum(
                list(roles.values()).count("Active") > 1 for _, roles in self.sampler.samples
            ),
        }


class NoLeaks:
    """After each settle, at each site: every object the operator rendered belongs to an existing service
    (or is a copy kept on purpose, rule 8) and, where its form depends on the role, was rendered for the
    site's current role and epoch."""

    name = "no-leaks"

    def __init__(self) -> None:
        self.checked = 0
        self.unanswered = 0  # listings a site did not answer (a loaded machine): not checked

    def start(self) -> None:
        return

    def settled(self, state: Settled) -> list[Violation]:
        found = []
        for name, site in state.sites.items():
            role = "Active" if name == state.active else "Standby"
            try:
                problems = leaked(site, role, state.epoch, state.services[name])
            except (RuntimeError, subprocess.TimeoutExpired):  # kubectl failed: the site stopped answering
                self.unanswered += 1
                continue
            found += [Violation(self.name, state.at, f"{name}: {problem}") for problem in problems]
        self.checked += 1
        return found

    def final(self, at: float) -> list[Violation]:
        return []

    def stop(self) -> None:
        return

    def figures(self) -> dict[str, Any]:
        return {"leak_checks": self.checked, "leak_listings_unanswered": self.unanswered}


def leaked(site: SiteClients, role: str, epoch: int, services: set[tuple[str, str]]) -> list[str]:
    """What `site` holds that it should not: rendered objects of no service, or of another role or epoch."""
    owners = {(namespace, label_value(name)) for namespace, name in services}
    kinds = ",".join(f"{r.plural}.{r.group}" if r.group else r.plural for r in RENDERED)
    selector = ",".join(f"{key}={value}" for key, value in MANAGED_BY.items())
    listed = json.loads(
        kubectl(site.kubeconfig, "get", kinds, "--all-namespaces", "-l", selector, "-o", "json")
    )
    problems = []
    for item in listed["items"]:
        meta = item["metadata"]
        labels = meta.get("labels") or {}
        what = f"{item['kind']} {meta.get('namespace')}/{meta['name']}"
        if labels.get(retained.LABEL) == "true":
            continue
        if (meta.get("namespace"), labels.get(SERVICE)) not in owners:
            problems.append(f"{what} belongs to no SharedService (orphaned)")
        elif ROLE in labels and (labels[ROLE], labels.get(EPOCH)) != (role, str(epoch)):
            # Only the objects whose form depends on the role carry it (the database, the site ConfigMap,
            # the DNS record, the files' replication): a promotion rewrites only those.
            problems.append(
                f"{what} rendered for {labels.get(ROLE)} at epoch {labels.get(EPOCH)}, "
                f"the site is {role} at {epoch}"
            )
    return problems


def rss_kib(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)


class FlatMemory:
    """Each operator process's resident memory, sampled after every settle: over the life of a process
    (operators are killed and restarted by the faults) it grows by no more than `bound_mib`."""

    name = "flat-memory"

    def __init__(self, operators: dict[str, OperatorProcess], bound_mib: float) -> None:
        self.operators, self.bound_mib = operators, bound_mib
        self.samples: dict[tuple[str, int], list[tuple[float, int]]] = {}  # (site, pid) → (at, KiB)

    def start(self) -> None:
        return

    def settled(self, state: Settled) -> list[Violation]:
        for site, operator in self.operators.items():
            if operator.process is not None and (kib := rss_kib(operator.process.pid)) is not None:
                self.samples.setdefault((site, operator.process.pid), []).append((state.at, kib))
        return []

    def growth(self) -> dict[tuple[str, int], tuple[float, float]]:
        """Per process sampled twice or more: MiB grown from its first sample to its last, seconds between."""
        return {
            key: ((rows[-1][1] - rows[0][1]) / 1024, rows[-1][0] - rows[0][0])
            for key, rows in self.samples.items()
            if len(rows) > 1
        }

    def final(self, at: float) -> list[Violation]:
        return [
            Violation(
                self.name, at, f"the operator at {site} (pid {pid}) grew by {mib:.0f} MiB over {seconds:.0f}s"
            )
            for (site, pid), (mib, seconds) in self.growth().items()
            if mib > self.bound_mib
        ]

    def stop(self) -> None:
        return

    def figures(self) -> dict[str, Any]:
        growth = self.growth()
        longest = max(growth.items(), key=lambda item: item[1][1], default=None)
        return {
            "rss_mib_max": round(
                max((kib for rows in self.samples.values() for _, kib in rows), default=0) / 1024
            ),
            "rss_growth_mib_max": round(max((mib for mib, _ in growth.values()), default=0.0), 1),
            "longest_lived_operator": None
            if longest is None
            else {
                "site": longest[0][0],
                "seconds": round(longest[1][1]),
                "growth_mib": round(longest[1][0], 1),
            },
        }


class CleanOperators:
    """No operator exits unless stopped, a SIGTERM stops it cleanly (exit code 0, as a pod's termination
    should), and its log shows no exception it did not expect (a traceback), whatever the faults."""

    name = "clean-operators"

    def __init__(
        self, operators: dict[str, OperatorProcess], terminated: list[tuple[str, int | None]]
    ) -> None:
        self.operators = operators
        self.terminated = terminated  # (site, exit code) of each SIGTERM the nemesis sent
        self._judged = 0
        self._read: dict[str, int] = {}
        self._crashed: set[int] = set()

    def start(self) -> None:
        self._read = {site: _size(operator.log_path) for site, operator in self.operators.items()}

    def settled(self, state: Settled) -> list[Violation]:
        return self._news(state.at)

    def final(self, at: float) -> list[Violation]:
        return self._news(at)

    def _news(self, at: float) -> list[Violation]:
        found = []
        for site, operator in self.operators.items():
            process = operator.process
            if process is not None and process.poll() is not None and process.pid not in self._crashed:
                self._crashed.add(process.pid)
                found.append(
                    Violation(self.name, at, f"the operator at {site} exited (code {process.returncode})")
                )
        found += [
            Violation(self.name, at, f"the operator at {site} exited with code {code} on SIGTERM")
            for site, code in self.terminated[self._judged :]
            if code not in CLEAN_EXITS
        ]
        self._judged = len(self.terminated)
        for site, operator in self.operators.items():
            try:
                with operator.log_path.open("rb") as log:
                    log.seek(self._read[site])
                    written = log.read().decode(errors="replace")
                    self._read[site] = log.tell()
            except OSError:
                continue
            found += [
                Violation(self.name, at, f"the operator at {site} met an exception: {last}")
                for last in exceptions(written)
            ]
        return found

    def stop(self) -> None:
        return

    def figures(self) -> dict[str, Any]:
        return {"sigterms": len(self.terminated)}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def exceptions(log: str) -> list[str]:
    """The last line of each traceback in a log: the exception."""
    found = []
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last):"):
            rest = lines[index + 1 :]
            end = next((i for i, text in enumerate(rest) if text and not text.startswith(" ")), None)
            found.append(rest[end] if end is not None else "(cut short)")
    return found
