"""One nemesis run: the schedule's episodes against a running pair, each followed by a settle and the checks.

A settle starts when the episode's last fault is healed and ends when the pair has converged
(`convergence.unconverged`); every Failover must have ended within `Bounds.failover_s` of that moment and
the pair converged within `Bounds.converge_s`, else a violation is recorded and the run goes on. After the
last episode (once `duration` has passed) everything is healed and the pair settles a last time.
"""

import collections
import itertools
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sharedcore_testbed.clients import SiteClients
from sharedcore_testbed.nemesis import convergence
from sharedcore_testbed.nemesis.checks import (
    CleanOperators,
    FlatMemory,
    Invariant,
    NoLeaks,
    OneActive,
    Settled,
    Violation,
)
from sharedcore_testbed.nemesis.convergence import Observer
from sharedcore_testbed.nemesis.database import NoLostWrites, OneWritable
from sharedcore_testbed.nemesis.faults import Injected, Injector
from sharedcore_testbed.nemesis.schedule import episode
from sharedcore_testbed.nemesis.timeline import Timeline
from sharedcore_testbed.operators import OperatorProcess
from sharedcore_testbed.pair import Pair
from sharedcore_testbed.roles import RoleSampler
from sharedcore_testbed.traffic import Traffic

RECHECKS = 3
OPERATOR_START_S = 120.0
SLOW_SETTLE_S = 30.0


@dataclass(frozen=True)
class Bounds:
    """What the nemesis allows, in seconds after an episode's faults are healed (and memory growth)."""

    failover_s: float = 60.0  # every Failover Succeeded, Failed (with its reason) or Planned, or deleted
    converge_s: float = 90.0  # one Active, one Standby, every service serving or standing by, healthy
    memory_growth_mib: float = 48.0  # over one operator process's life


# A real database moves slower: a diverged one is copied anew before its site stands by again (73 s measured
# alone), on nodes that start again with their site.
REAL_BOUNDS = Bounds(failover_s=180.0, converge_s=300.0)


class Nemesis:
    def __init__(
        self,
        pair: Pair[SiteClients],
        *,
        seed: int,
        bounds: Bounds = Bounds(),
        extra: Sequence[Invariant] = (),
        traffic: Traffic | None = None,
        echo: bool = True,
    ) -> None:
        """`traffic`: a writer and a `pg_is_in_recovery()` sampler on a service's real database (real
        nodes), held to the data invariants (`database`)."""
        self.pair, self.seed, self.bounds = pair, seed, bounds
        self.timeline = Timeline(echo=echo)
        self.sampler = RoleSampler(pair.operators)
        self.one_active = OneActive(self.sampler, self.timeline.started)
        self.observer = Observer(pair, self.sampler, self.timeline)
        self.injector = Injector(pair, self.timeline, self.active_site, prefix=f"nemesis-{seed}")
        self.invariants: list[Invariant] = [
            self.one_active,
            NoLeaks(),
            FlatMemory(pair.operators, bounds.memory_growth_mib),
            CleanOperators(pair.operators, self.injector.terminated),
            *extra,
        ]
        if traffic is not None:
            self.invariants += [
                OneWritable(traffic.sampler, self.timeline),
                NoLostWrites(traffic, self.observer, self.timeline),
            ]
        self.violations: list[Violation] = []
        self.convergence: list[float] = []
        self.episodes = 0
        self._active = pair.danang.name

    def active_site(self) -> str:
        """The site last sampled as the only Active one."""
        for _, roles in reversed(self.sampler.samples[-50:]):
            actives = [site for site, role in roles.items() if role == "Active"]
            if len(actives) == 1:
                self._active = actives[0]
                break
        return self._active

    def _violate(self, found: list[Violation]) -> None:
        for violation in found:
            self.violations.append(violation)
            self.timeline.note(f"VIOLATION {violation.invariant}: {violation.detail}", at=violation.time)

    def run(self, duration: float) -> dict[str, Any]:
        for invariant in self.invariants:
            invariant.start()
        self.observer.start()
        try:
            self.settle("start", self.bounds.converge_s * 2)  # the services may be new
            while self.timeline.now() < duration:
                faults = episode(self.seed, self.episodes)
                plan = "; ".join(f"+{f.at:.1f}s {f.describe()}" for f in faults)
                self.timeline.note(f"episode {self.episodes}: {plan}")
                self.injector.run_episode(self.episodes, faults)
                self.episodes += 1
                self.settle(f"episode {self.episodes - 1}")
        finally:
            self.injector.heal_all()
        self.settle("the end")
        at = self.timeline.now()
        self._violate([v for invariant in self.invariants for v in invariant.final(at)])
        self._violate(self._unexplained_failures(at))
        self.observer.stop()
        for invariant in self.invariants:
            invariant.stop()
        self._violate(self.one_active.new())
        return self.results(duration)

    def settle(self, label: str, bound: float | None = None) -> None:
        """Wait for convergence, then check the invariants on the converged pair. A check that fails while
        the pair moved under it (a site fenced itself meanwhile, as a loaded machine makes it do) is made
        again once the pair has converged again (within the bound, counted from the move), up to `RECHECKS`
        times."""
        healed = self._operators_up()
        for attempt in range(RECHECKS + 1):
            state = self._converged(label, healed, bound or self.bounds.converge_s)
            if state is None:
                return
            seen = len(self.sampler.samples)
            found = [v for invariant in self.invariants for v in invariant.settled(state)]
            if not found or attempt == RECHECKS or not self._moved(since=seen):
                self._violate(found)
                return
            self.timeline.note(f"the pair moved during the checks ({len(found)} findings): checking again")
            healed = time.monotonic()  # it must converge again within the bound, counted from now

    def _operators_up(self) -> float:
        """When both operators answer their readiness probe again, which the bounds count from: a restarted
        operator takes its time to start on a loaded machine (half a minute at a load of 20), which is the
        testbed's speed, not sharedcore's behaviour. Waited for `OPERATOR_START_S` at most."""
        started = time.monotonic()
        while time.monotonic() - started < OPERATOR_START_S and not all(
            _ready(operator) for operator in self.pair.operators.values()
        ):
            time.sleep(0.5)
        if (waited := time.monotonic() - started) > 5:
            self.timeline.note(f"the operators answer again after {waited:.1f}s")
        return time.monotonic()

    def _moved(self, since: int) -> bool:
        samples = self.sampler.samples[since - 1 :]
        roles = self.sampler.samples[-1][1] if self.sampler.samples else {}
        changed = any(a[1] != b[1] for a, b in itertools.pairwise(samples))
        return changed or convergence.unconverged(self.pair, roles) is not None

    def _converged(self, label: str, healed: float, bound: float) -> Settled | None:
        """The converged pair, once it is (or None, a violation recorded, if it is not within `bound`)."""
        late: set[tuple[str, str]] = set()
        said = None
        while True:
            self._violate(self.one_active.new())
            roles = self.sampler.samples[-1][1] if self.sampler.samples else {}
            why = convergence.unconverged(self.pair, roles)
            if why is None:
                break
            waited = time.monotonic() - healed
            if why != said and waited > SLOW_SETTLE_S:  # where a long settle's time goes
                self.timeline.note(f"not converged {waited:.0f}s after the heal: {why}")
                said = why
            self._late_failovers(healed, late)
            if waited > bound:
                detail = f"{label}: not converged {bound:.0f}s after the faults healed: {why}"
                self._violate([Violation("convergence", self.timeline.now(), detail)])
                for line in convergence.diagnosis(self.pair):
                    self.timeline.note(f"  {line}")
                return None
            time.sleep(0.5)
        took = round(time.monotonic() - healed, 2)
        self.convergence.append(took)
        active = self.active_site()
        epoch = int(convergence.topology(self._site(active))["epoch"])
        self.timeline.note(f"converged after {label} in {took:.1f}s: {active} Active at epoch {epoch}")
        return Settled(
            self.timeline.now(),
            active,
            epoch,
            {site.name: site for site in self.pair.sites},
            {
                site.name: {
                    (s["metadata"]["namespace"], s["metadata"]["name"]) for s in convergence.services(site)
                }
                for site in self.pair.sites
            },
        )

    def _late_failovers(self, healed: float, late: set[tuple[str, str]]) -> None:
        """Each Failover unfinished `Bounds.failover_s` after the faults healed (or after it appeared)."""
        now = self.timeline.now()
        for course in self.observer.unfinished():
            waited = now - max(self.timeline.at(healed), course.first_seen)
            if waited > self.bounds.failover_s and (course.site, course.name) not in late:
                late.add((course.site, course.name))
                detail = (
                    f"{course.name} at {course.site} still {course.phase} ({course.step}) after {waited:.0f}s"
                )
                self._violate([Violation("failover-ends", now, detail)])

    def _site(self, name: str) -> SiteClients:
        return next(site for site in self.pair.sites if site.name == name)

    def _unexplained_failures(self, at: float) -> list[Violation]:
        return [
            Violation("failover-ends", at, f"{course.name} at {course.site} Failed without a reason")
            for course in self.observer.courses.values()
            if course.phase == "Failed" and not course.message
        ]

    def results(self, duration: float) -> dict[str, Any]:
        counts = collections.Counter(
            _label(fault) for fault in self.injector.injected if not (fault.note or "").startswith("skipped")
        )
        outcomes = collections.Counter(
            f"{c.type} {'deleted' if c.deleted else c.phase}" for c in self.observer.courses.values()
        )
        return {
            "seed": self.seed,
            "duration_s": duration,
            "ran_s": self.timeline.now(),
            "episodes": self.episodes,
            "bounds": asdict(self.bounds),
            "fault_counts": dict(sorted(counts.items())),
            "faults": [fault.as_json() for fault in self.injector.injected],
            "violations": [violation.as_json() for violation in self.violations],
            "failovers": dict(sorted(outcomes.items())),
            "convergence_s": {
                "settles": len(self.convergence),
                "median": statistics.median(self.convergence) if self.convergence else None,
                "max": max(self.convergence, default=None),
            },
            "figures": {invariant.name: invariant.figures() for invariant in self.invariants},
            "timeline": sorted(self.timeline.entries, key=lambda entry: entry["time"]),
        }


def _ready(operator: OperatorProcess) -> bool:
    try:
        return operator.ready()
    except RuntimeError:  # exited: the clean-operators check reports it
        return False


def _label(fault: Injected) -> str:
    if fault.kind in ("partition", "slow-link"):
        return f"{fault.kind} {'one-way' if fault.detail.get('one_way') else 'two-way'}"
    if fault.kind == "failover":
        return f"failover{' acceptDataLoss' if fault.detail.get('accept_data_loss') else ''}"
    if fault.kind == "operator-kill" and fault.detail.get("at_step"):
        return "operator-kill in a Failover's step"
    return fault.kind


def summary(results: dict[str, Any]) -> str:
    """The run in a few lines: faults by kind, Failovers by outcome, the invariants' figures, violations."""
    lines = [
        f"seed {results['seed']}: {results['episodes']} episodes, "
        f"{sum(results['fault_counts'].values())} faults in {results['ran_s']:.0f}s",
        "faults: " + ", ".join(f"{kind} {n}" for kind, n in results["fault_counts"].items()),
        "failovers: " + (", ".join(f"{kind} {n}" for kind, n in results["failovers"].items()) or "none"),
        "convergence: {settles} settles, median {median}s, longest {max}s".format(**results["convergence_s"]),
        "figures: " + "; ".join(f"{name} {figures}" for name, figures in results["figures"].items()),
    ]
    violations = results["violations"]
    lines.append(f"violations: {len(violations)}")
    lines += [f"  [{v['time']:.1f}s] {v['invariant']}: {v['detail']}" for v in violations]
    return "\n".join(lines)
