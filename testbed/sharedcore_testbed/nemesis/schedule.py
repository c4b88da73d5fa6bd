"""The nemesis's schedule: from a seed, the same episodes of faults in the same order, every time.

An episode is one to three faults, started a few seconds apart and each healed after its own time, so
that they overlap (a partition during a switchover's final sync, a witness restart while the standby catches
up). Episode k depends only on (seed, k): however long the system takes to settle between episodes, a
replay injects the same faults. Faults name sites by role (`active`, `standby`) or as `witness`, resolved
when injected: "the active site" is whichever site is active then.
"""

import random
from dataclasses import dataclass, field
from typing import Any

ACTIVE, STANDBY, WITNESS = "active", "standby", "witness"
SITES = (ACTIVE, STANDBY)
LINKS = ((ACTIVE, STANDBY), (ACTIVE, WITNESS), (STANDBY, WITNESS))
STEPS = ("CheckPreconditions", "FenceSource", "FinalSync", "Promote", "Redirect", "Verify")

# Kinds of faults, and how often an episode draws each (relative weights).
WEIGHTS = {
    "operator-kill": 4,
    "site-stop": 3,
    "site-pause": 2,
    "partition": 4,
    "slow-link": 2,
    "clock-skew": 1,
    "switchover": 3,
    "failover": 2,
    "drill": 1,
    "failover-deleted": 1,
}
REQUESTS = frozenset({"switchover", "failover", "drill", "failover-deleted"})  # Failover requests


@dataclass
class Fault:
    """One fault: `kind` injected `at` seconds into its episode on `targets` (roles, or a link's two ends),
    healed `hold` seconds later (0: nothing to heal, e.g. a Failover request)."""

    kind: str
    at: float
    hold: float
    targets: tuple[str, ...]
    detail: dict[str, Any] = field(default_factory=dict)

    def resources(self) -> set[str]:
        """What the fault occupies while it lasts; two faults of an episode never share one."""
        if self.kind in REQUESTS:
            return {"failover"}
        if self.kind in ("partition", "slow-link"):
            return {"link:" + "-".join(sorted(self.targets))}
        site = self.targets[0]
        if self.kind == "site-stop" and self.detail.get("with_operator"):
            return {f"site:{site}", f"operator:{site}"}
        return {f"{'site' if self.kind.startswith('site-') else 'operator'}:{site}"}

    def describe(self) -> str:
        where = "->".join(self.targets) if self.kind in ("partition", "slow-link") else ",".join(self.targets)
        extra = " ".join(f"{key}={value}" for key, value in sorted(self.detail.items()))
        held = f" for {self.hold:.1f}s" if self.hold else ""
        return f"{self.kind} {where}{held}" + (f" ({extra})" if extra else "")


def _draw(rng: random.Random, kind: str) -> Fault:
    at = round(rng.uniform(0, 12), 1)
    if kind == "operator-kill":
        return Fault(kind, at, round(rng.uniform(0, 8), 1), (rng.choice(SITES),))
    if kind in ("site-stop", "site-pause"):
        site = rng.choice((*SITES, WITNESS))
        hold = round(rng.uniform(3, 25) if kind == "site-stop" else rng.uniform(2, 15), 1)
        stop_operator = kind == "site-stop" and site != WITNESS
        return Fault(kind, at, hold, (site,), {"with_operator": rng.random() < 0.5} if stop_operator else {})
    if kind in ("partition", "slow-link"):
        a, b = rng.choice(LINKS)
        one_way = rng.random() < 0.5
        if one_way and b != WITNESS and rng.random() < 0.5:  # only the sites open connections to the witness
            a, b = b, a
        link: dict[str, Any] = {"one_way": one_way}
        if kind == "slow-link":
            link |= {
                "delay_ms": rng.choice((50, 150, 400, 800, 1500)),
                "loss": round(rng.uniform(0, 0.3), 2),
            }
            return Fault(kind, at, round(rng.uniform(5, 40), 1), (a, b), link)
        return Fault(kind, at, round(rng.uniform(2, 25), 1), (a, b), link)
    if kind == "clock-skew":
        offset = round(rng.uniform(5, 120), 1) * rng.choice((-1, 1))
        return Fault(kind, at, round(rng.uniform(10, 60), 1), (rng.choice(SITES),), {"offset_s": offset})
    # A Failover request, created at its target site (now and then at the wrong one, which must refuse it).
    target = STANDBY if kind != "drill" and rng.random() < 0.85 else rng.choice(SITES)
    detail: dict[str, Any] = {"wrong_site": rng.random() < 0.1}
    if kind == "failover":
        detail["accept_data_loss"] = rng.random() < 0.5
    if kind == "failover-deleted":
        detail["delete_after_s"] = round(rng.uniform(0.3, 6), 1)
    return Fault(kind, at, 0.0, (target,), detail)


def episode(seed: int, index: int) -> list[Fault]:
    """The faults of episode `index` of the schedule `seed`, by start time."""
    rng = random.Random(f"nemesis:{seed}:{index}")
    wanted = rng.choices((1, 2, 3), weights=(5, 3.5, 1.5))[0]
    faults: list[Fault] = []
    taken: set[str] = set()
    for _ in range(10 * wanted):
        if len(faults) == wanted:
            break
        fault = _draw(rng, rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0])
        if not fault.resources() & taken:
            faults.append(fault)
            taken |= fault.resources()
    start = min(fault.at for fault in faults)
    for fault in faults:
        fault.at = round(fault.at - start, 1)
    request = next((f for f in faults if f.kind in REQUESTS and f.kind != "drill"), None)
    if request and "operator:standby" not in taken and rng.random() < 0.5:
        # The executing operator killed inside the Failover's steps: once it reaches a step drawn at random.
        hold = round(rng.uniform(0, 8), 1)
        faults.append(Fault("operator-kill", request.at, hold, (STANDBY,), {"at_step": rng.choice(STEPS)}))
    return sorted(faults, key=lambda f: f.at)
