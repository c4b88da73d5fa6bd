"""Injecting the nemesis's faults into two sites and a witness on the testbed, and healing them.

Each fault runs in its own thread (sleep until due, inject, hold, heal), so that the faults of an episode
overlap as drawn. Changes to the testbed are serialized (its state file is read, changed and written per
call). An operator is down while any fault holds it down (a kill until its restart, a site stopped with
its operator) and restarted when the last one lets go, with the wall-clock offset in force then. A fault
whose site or link another fault already holds (roles move during an episode) is skipped, and says so.
"""

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from sharedcore import API_GROUP, API_VERSION
from sharedcore_testbed.clients import SiteClients, as_object
from sharedcore_testbed.nemesis.convergence import ERRORS
from sharedcore_testbed.nemesis.schedule import ACTIVE, REQUESTS, STANDBY, STEPS, WITNESS, Fault
from sharedcore_testbed.nemesis.timeline import Timeline
from sharedcore_testbed.pair import Pair
from sharedcore_testbed.plane import PlaneError

FAILOVERS = (API_GROUP, API_VERSION, "failovers")
STEP_WAIT = 30.0  # seconds a kill waits for its Failover to reach the step drawn
HEAL_ATTEMPTS = 3


@dataclass
class Injected:
    """What the nemesis did: one entry of `faults` in its results."""

    kind: str
    time: float  # seconds since the run started
    episode: int
    targets: tuple[str, ...]  # site names, resolved from roles
    detail: dict[str, Any]
    healed: float | None = None
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Episode:
    """What the faults of one episode share: the Failover it requested, if any (site, name, target)."""

    index: int
    request: tuple[str, str, str] | None = None
    requested: threading.Event = field(default_factory=threading.Event)


def current_step(site: SiteClients, name: str) -> str | None:
    """The first step of a Failover not yet done; "done" once it ended or is gone; None while unreadable or
    not planned yet."""
    try:
        body = as_object(site.custom.get_cluster_custom_object(*FAILOVERS, name, _request_timeout=5))
    except client.ApiException as error:
        return "done" if error.status == 404 else None
    except ERRORS:
        return None
    status = body.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed", "Planned"):
        return "done"
    steps = status.get("steps") or []
    return next((s["name"] for s in steps if s["state"] not in ("Succeeded", "Skipped")), None)


class Injector:
    def __init__(
        self, pair: Pair[SiteClients], timeline: Timeline, active_site: Callable[[], str], prefix: str
    ) -> None:
        self.pair, self.bed, self.timeline, self.prefix = pair, pair.danang.bed, timeline, prefix
        self._active_site = active_site
        self._bed = threading.Lock()
        self._operators = threading.Lock()
        self._holds: dict[str, set[int]] = {name: set() for name in pair.operators}
        self._busy: set[str] = set()  # planes and links a fault holds now
        self._down: dict[str, str] = {}  # site → the fault that took it down: site-stop or site-pause
        self._cut: set[tuple[str, str]] = set()
        self.injected: list[Injected] = []
        self.terminated: list[tuple[str, int | None]] = []  # (site, exit code) of each operator SIGTERMed

    # --- resolving roles -------------------------------------------------------------------------------

    def site(self, role: str) -> str:
        if role == WITNESS:
            return self.pair.witness.name
        active = self._active_site()
        if role == ACTIVE:
            return active
        assert role == STANDBY
        return next(site.name for site in self.pair.sites if site.name != active)

    def _client(self, name: str) -> SiteClients:
        return next(site for site in (*self.pair.sites, self.pair.witness) if site.name == name)

    # --- running an episode ----------------------------------------------------------------------------

    def run_episode(self, index: int, faults: list[Fault]) -> None:
        """Inject every fault of the episode at its time, hold and heal it; return once all are healed."""
        episode, start = Episode(index), time.monotonic()
        threads = [
            threading.Thread(target=self._run, args=(fault, episode, start), daemon=True) for fault in faults
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _run(self, fault: Fault, episode: Episode, start: float) -> None:
        time.sleep(max(start + fault.at - time.monotonic(), 0))
        try:
            heal = self._inject(fault, episode)
        finally:
            if fault.kind in REQUESTS:
                episode.requested.set()
        if heal is None:
            return
        time.sleep(fault.hold)
        record = self._heal(fault, heal)
        record.healed = self.timeline.now()
        self.timeline.note(f"heal {record.kind} {'->'.join(record.targets)}")

    def _heal(self, fault: Fault, heal: Callable[[], Injected]) -> Injected:
        """Heal, again if the testbed failed to (a real node not Ready in time on a loaded machine): a site
        left down would be reported as sharedcore's failure to converge."""
        for attempt in range(1, HEAL_ATTEMPTS):
            try:
                return heal()
            except PlaneError as error:
                first = str(error).splitlines()[0]
                self.timeline.note(f"heal {fault.kind} failed (attempt {attempt}), trying again: {first}")
        return heal()

    def _record(self, fault: Fault, episode: Episode, targets: tuple[str, ...], note: str = "") -> Injected:
        record = Injected(fault.kind, self.timeline.now(), episode.index, targets, dict(fault.detail))
        record.note = note or None
        self.injected.append(record)
        held = f" for {fault.hold:.1f}s" if fault.hold else ""
        extra = " ".join(f"{k}={v}" for k, v in sorted(fault.detail.items()))
        self.timeline.note(
            f"fault {fault.kind} {'->'.join(targets)}{held}"
            + (f" ({extra})" if extra else "")
            + (f": {note}" if note else "")
        )
        return record

    def _inject(self, fault: Fault, episode: Episode) -> Callable[[], Injected] | None:
        if fault.kind in REQUESTS:
            self._request(fault, episode)
            return None
        if fault.kind == "operator-kill":
            return self._kill(fault, episode)
        if fault.kind == "clock-skew":
            return self._skew(fault, episode)
        if fault.kind in ("partition", "slow-link"):
            return self._link(fault, episode)
        return self._plane(fault, episode)

    @contextlib.contextmanager
    def _claim(self, *things: str) -> Iterator[bool]:
        """Whether the planes or links are free (then held by the caller until it frees them)."""
        with self._bed:
            free = not set(things) & self._busy
            if free:
                self._busy |= set(things)
        yield free

    def _free(self, *things: str) -> None:
        with self._bed:
            self._busy -= set(things)

    # --- operators -------------------------------------------------------------------------------------

    def _hold_operator(self, site: str, key: int) -> None:
        with self._operators:
            if not self._holds[site]:
                self.pair.operators[site].stop(signal.SIGKILL)
            self._holds[site].add(key)

    def _release_operator(self, site: str, key: int) -> None:
        with self._operators:
            self._holds[site].discard(key)
            if not self._holds[site]:
                self.pair.operators[site].start()

    def _kill(self, fault: Fault, episode: Episode) -> Callable[[], Injected]:
        site, note = self.site(fault.targets[0]), ""
        step = fault.detail.get("at_step")
        if step:
            episode.requested.wait(timeout=60)
            if episode.request:
                where, name, site = episode.request
                reached = self._wait_for_step(self._client(where), name, step)
                note = f"{name} at {reached}"
        record = self._record(fault, episode, (site,), note)
        key = id(record)
        self._hold_operator(site, key)

        def heal() -> Injected:
            self._release_operator(site, key)
            return record

        return heal

    def _wait_for_step(self, site: SiteClients, name: str, step: str) -> str | None:
        later = (*STEPS[STEPS.index(step) :], "done")
        deadline, reached = time.monotonic() + STEP_WAIT, None
        while time.monotonic() < deadline:
            reached = current_step(site, name)
            if reached in later:
                return reached
            time.sleep(0.02)
        return reached

    def _skew(self, fault: Fault, episode: Episode) -> Callable[[], Injected]:
        site = self.site(fault.targets[0])
        record = self._record(fault, episode, (site,))
        self._set_clock(site, float(fault.detail["offset_s"]))

        def heal() -> Injected:
            self._set_clock(site, 0.0)
            return record

        return heal

    def _set_clock(self, site: str, offset: float) -> None:
        """Restart the site's operator with its wall clock `offset` seconds off (unless held down: then it
        starts so when released)."""
        with self._operators:
            operator = self.pair.operators[site]
            operator.clock_offset = offset
            if not self._holds[site]:
                operator.stop()
                assert operator.process is not None
                self.terminated.append((site, operator.process.returncode))
                operator.start()

    # --- planes and links ------------------------------------------------------------------------------

    def _plane(self, fault: Fault, episode: Episode) -> Callable[[], Injected] | None:
        site = self.site(fault.targets[0])
        with self._claim(f"site:{site}") as free:
            if not free:
                self._record(fault, episode, (site,), "skipped: the site is held by another fault")
                return None
            record = self._record(fault, episode, (site,))
        key, with_operator = id(record), bool(fault.detail.get("with_operator"))
        if with_operator:
            self._hold_operator(site, key)  # first: stopping the plane takes a moment
        with self._bed:
            (self.bed.stop if fault.kind == "site-stop" else self.bed.pause)(site)
            self._down[site] = fault.kind
            self._follow_sources()

        def heal() -> Injected:
            with self._bed:
                (self.bed.start if fault.kind == "site-stop" else self.bed.resume)(site)
                del self._down[site]
                self._follow_sources()
            if with_operator:
                self._release_operator(site, key)
            self._free(f"site:{site}")
            return record

        return heal

    def _link(self, fault: Fault, episode: Episode) -> Callable[[], Injected] | None:
        a, b = (self.site(role) for role in fault.targets)
        link = "link:" + "-".join(sorted((a, b)))
        one_way = bool(fault.detail["one_way"])
        with self._claim(link) as free:
            if not free:
                self._record(fault, episode, (a, b), "skipped: the link is held by another fault")
                return None
            record = self._record(fault, episode, (a, b))
        with self._bed:
            if fault.kind == "partition":
                self.bed.partition(a, b, one_way=one_way)
                self._cut |= {(a, b)} if one_way else {(a, b), (b, a)}
                self._follow_sources()
            else:
                self.bed.slow(a, b, fault.detail["delay_ms"], fault.detail["loss"], one_way=one_way)

        def heal() -> Injected:
            with self._bed:
                self.bed.heal(a, b)
                self._cut -= {(a, b), (b, a)}
                self._follow_sources()
            self._free(link)
            return record

        return heal

    def _follow_sources(self) -> None:
        """The data-plane doubles: a site's replicas stop receiving while the other site is down or cut off
        (a TCP stream breaks whichever way the link is cut)."""
        for name, double in self.pair.doubles.items():
            other = next(site.name for site in self.pair.sites if site.name != name)
            lost = (
                other in self._down or name in self._down or bool({(name, other), (other, name)} & self._cut)
            )
            double.lose_source(lost)

    def heal_all(self) -> None:
        """Whatever may still be broken after an interrupted run: every link, plane and operator."""
        with self._bed:
            names = [site.name for site in (*self.pair.sites, self.pair.witness)]
            for a in names:
                for b in names[names.index(a) + 1 :]:
                    self.bed.heal(a, b)
            for name, kind in self._down.items():
                (self.bed.start if kind == "site-stop" else self.bed.resume)(name)
            self._down.clear()
            self._cut.clear()
            self._follow_sources()
        with self._operators:
            for name, operator in self.pair.operators.items():
                self._holds[name].clear()
                operator.clock_offset = 0.0
                if operator.process is None or operator.process.poll() is not None:
                    operator.start()

    # --- Failover requests -----------------------------------------------------------------------------

    def _request(self, fault: Fault, episode: Episode) -> None:
        target = self.site(fault.targets[0])
        other = next(site.name for site in self.pair.sites if site.name != target)
        where = other if fault.detail.get("wrong_site") else target
        kind = {"failover": "Failover"}.get(fault.kind, "Switchover")
        name = f"{self.prefix}-{episode.index}-{fault.kind}-to-{target}"
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "Failover",
            "metadata": {"name": name},
            "spec": {
                "targetSite": target,
                "type": kind,
                "reason": f"nemesis episode {episode.index}",
                "dryRun": fault.kind == "drill",
                "acceptDataLoss": bool(fault.detail.get("accept_data_loss")),
            },
        }
        site = self._client(where)
        try:
            site.custom.create_cluster_custom_object(*FAILOVERS, body, _request_timeout=5)
        except ERRORS as error:
            self._record(fault, episode, (target,), f"not created at {where}: {_brief(error)}")
            return
        episode.request = (where, name, target)
        self._record(fault, episode, (target,), f"{name} created at {where}")
        if fault.kind == "failover-deleted":
            time.sleep(float(fault.detail["delete_after_s"]))
            step = current_step(site, name)
            try:
                site.custom.delete_cluster_custom_object(*FAILOVERS, name, _request_timeout=5)
                self.timeline.note(f"deleted {name} at {where} (at {step})")
            except ERRORS as error:
                self.timeline.note(f"could not delete {name} at {where}: {_brief(error)}")


def _brief(error: Exception) -> str:
    if isinstance(error, client.ApiException):
        return f"{error.status} {error.reason}"
    return f"{type(error).__name__}: {str(error)[:120]}"
