"""Reading both sites as their administrator: whether the pair has converged, and every Failover's course.

Converged: one site Active and the other Standby (by their operators), both Topologies and the witness
Lease naming the active site at the same epoch, no Failover unfinished at either site, and every service
Active and Ready at the active site, in standby form, Ready and with its replication healthy at the other.
"""

import contextlib
import datetime
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes import client

from sharedcore import API_GROUP, API_VERSION
from sharedcore_testbed.clients import SiteClients, as_object, items
from sharedcore_testbed.nemesis.timeline import Timeline
from sharedcore_testbed.pair import WITNESS_LEASE, Pair
from sharedcore_testbed.roles import RoleSampler
from sharedcore_testbed.targets import CLUSTERS

TERMINAL = frozenset({"Succeeded", "Failed", "Planned"})
ERRORS = (client.ApiException, urllib3.exceptions.HTTPError, OSError, ValueError)  # a site down or cut off


def _condition(body: dict[str, Any], type_: str) -> str | None:
    conditions = (body.get("status") or {}).get("conditions") or []
    return next((c.get("status") for c in conditions if c.get("type") == type_), None)


def services(site: SiteClients) -> list[dict[str, Any]]:
    return items(
        site.custom.list_cluster_custom_object(API_GROUP, API_VERSION, "sharedservices", _request_timeout=5)
    )


def failovers(site: SiteClients) -> list[dict[str, Any]]:
    return items(
        site.custom.list_cluster_custom_object(API_GROUP, API_VERSION, "failovers", _request_timeout=5)
    )


def topology(site: SiteClients) -> dict[str, Any]:
    body = site.custom.get_cluster_custom_object(
        API_GROUP, API_VERSION, "topologies", "default", _request_timeout=5
    )
    return dict(as_object(body).get("status") or {})


def unconverged(pair: Pair[SiteClients], roles: dict[str, str | None]) -> str | None:
    """Why the pair has not converged (None: it has)."""
    actives = [site for site in pair.sites if roles.get(site.name) == "Active"]
    standbys = [site for site in pair.sites if roles.get(site.name) == "Standby"]
    if len(actives) != 1 or len(standbys) != 1:
        return f"roles {roles}"
    try:
        return _claims_problem(pair, actives[0]) or _services_problem(actives[0], standbys[0])
    except ERRORS as error:
        return f"a site does not answer: {type(error).__name__}"


def _claims_problem(pair: Pair[SiteClients], active: SiteClients) -> str | None:
    """Both Topologies and the witness Lease name the active site at one epoch; no Failover unfinished."""
    claims = {site.name: topology(site) for site in pair.sites}
    epoch = claims[active.name].get("epoch")
    for name, status in claims.items():
        if (status.get("activeSite"), status.get("epoch")) != (active.name, epoch):
            return f"{name}'s Topology names {status.get('activeSite')} at epoch {status.get('epoch')}"
    lease = pair.witness.coordination.read_namespaced_lease(
        WITNESS_LEASE, "sharedcore-system", _request_timeout=5
    )
    holder = lease.spec.holder_identity if lease.spec else None
    held = (
        holder,
        ((lease.metadata.annotations if lease.metadata else None) or {}).get(f"{API_GROUP}/epoch"),
    )
    if held != (active.name, str(epoch)):
        return f"the witness Lease is held by {held[0]} for epoch {held[1]}"
    for site in pair.sites:
        running = [f["metadata"]["name"] for f in failovers(site) if _phase(f) not in TERMINAL]
        if running:
            return f"Failovers unfinished at {site.name}: {', '.join(running)}"
    return None


def _services_problem(active: SiteClients, standby: SiteClients) -> str | None:
    """The standby has every service of the active site and no other, each in its role at the epoch."""
    epoch = topology(active).get("epoch")
    found = {site.name: services(site) for site in (active, standby)}
    names = {
        site: {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in found[site]} for site in found
    }
    here, there = names[active.name], names[standby.name]
    if not here or here != there:
        return f"{len(here)} services at {active.name}, {len(there)} at {standby.name}"
    for site, role in ((active, "Active"), (standby, "Standby")):
        for body in found[site.name]:
            if problem := _service_problem(body, role, epoch):
                meta = body["metadata"]
                return f"{site.name}: {meta['namespace']}/{meta['name']} {problem}"
    return None


def _service_problem(body: dict[str, Any], role: str, epoch: int | None) -> str | None:
    status = body.get("status") or {}
    if status.get("observedGeneration") != body["metadata"].get("generation"):
        return "not observed yet"
    if (status.get("role"), status.get("epoch")) != (role, epoch):
        return f"is {status.get('role')} at epoch {status.get('epoch')}, not {role} at {epoch}"
    if _condition(body, "Ready") != "True":
        return "not Ready"
    if role == "Standby" and _condition(body, "ReplicationHealthy") != "True":
        return "replication not healthy"
    return None


def diagnosis(pair: Pair[SiteClients]) -> list[str]:
    """What an administrator would look at when the pair does not converge: each site's Nodes not Ready, its
    services not Ready with their conditions' messages, and in their namespaces the pods not ready and the
    database Clusters' phases."""
    lines = []
    for site in pair.sites:
        try:
            lines += _site_diagnosis(site)
        except ERRORS as error:
            lines.append(f"{site.name}: does not answer: {type(error).__name__}")
    return lines


def _site_diagnosis(site: SiteClients) -> list[str]:
    def plain(response: Any) -> list[dict[str, Any]]:  # unparsed (_preload_content=False): JSON
        return items(json.loads(response.data))

    lines = [
        f"{site.name}: node {node['metadata']['name']} Ready={ready}"
        for node in plain(site.core.list_node(_request_timeout=5, _preload_content=False))
        if (ready := _condition(node, "Ready")) != "True"
    ]
    for body in services(site):
        if _condition(body, "Ready") == "True":
            continue
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        said = "; ".join(
            f"{c.get('type')}={c.get('status')} {c.get('reason')}: {c.get('message')}"
            for c in (body.get("status") or {}).get("conditions") or []
        )
        lines.append(f"{site.name}: {namespace}/{name}: {said}")
        for pod in plain(
            site.core.list_namespaced_pod(namespace, _request_timeout=5, _preload_content=False)
        ):
            status = pod.get("status") or {}
            containers = status.get("containerStatuses") or []
            if status.get("phase") == "Running" and containers and all(c.get("ready") for c in containers):
                continue
            waits = ", ".join(
                f"{c['name']} ready={c.get('ready')} restarts={c.get('restartCount')} "
                f"{(c.get('state') or {}).get('waiting') or ''}"
                for c in containers
            )
            lines.append(
                f"{site.name}: pod {namespace}/{pod['metadata']['name']} {status.get('phase')} on "
                f"{(pod.get('spec') or {}).get('nodeName')}: {waits or status.get('message')}"
            )
        with contextlib.suppress(client.ApiException):  # no CloudNativePG at a kwok site
            group, version, plural = CLUSTERS
            listed = site.custom.list_namespaced_custom_object(
                group, version, namespace, plural, _request_timeout=5
            )
            for cluster in items(listed):
                status = cluster.get("status") or {}
                lines.append(
                    f"{site.name}: Cluster {namespace}/{cluster['metadata']['name']}: {status.get('phase')} "
                    f"({status.get('phaseReason')}), ready {status.get('readyInstances')}/"
                    f"{status.get('instances')}, primary {status.get('currentPrimary')}"
                )
    return lines


def _phase(body: dict[str, Any]) -> str | None:
    phase: str | None = (body.get("status") or {}).get("phase")
    return phase


@dataclass
class Course:
    """What the nemesis saw of one Failover."""

    site: str
    name: str
    type: str
    first_seen: float  # run seconds
    phase: str | None = None
    step: str | None = None
    ended: float | None = None
    message: str | None = None
    deleted: bool = False
    # What the data checks need (sharedcore_testbed.nemesis.database): where it moved the data from and to,
    # its recorded data-loss window, when its target's API server created it (epoch seconds), and whether
    # it promoted its target.
    source: str | None = None
    target: str | None = None
    window: float | None = None
    created: float | None = None
    promoted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Observer:
    """A background poll (every half second) of both sites' Failovers, and of the role sampler: each change
    goes to the timeline."""

    pair: Pair[SiteClients]
    sampler: RoleSampler
    timeline: Timeline
    courses: dict[tuple[str, str], Course] = field(default_factory=dict)
    _seen: int = 0
    _roles: dict[str, str | None] = field(default_factory=dict)
    _earlier: set[tuple[str, str]] = field(default_factory=set)
    last_pass: float = 0.0  # when the last complete look at both sites began (monotonic)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Follow the Failovers created from now on (an earlier run's stay out of this one's figures)."""
        for site in self.pair.sites:
            self._earlier |= {(site.name, f["metadata"]["name"]) for f in failovers(site)}
        self._thread = threading.Thread(target=self._run, name="nemesis-observer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            began = time.monotonic()
            self.roles()
            for site in self.pair.sites:
                self._failovers(site)
            self.last_pass = began

    def roles(self) -> None:
        samples = self.sampler.samples[self._seen :]
        self._seen += len(samples)
        for at, roles in samples:
            changed = {site: role for site, role in roles.items() if self._roles.get(site, "") != role}
            if changed:
                self._roles.update(changed)
                described = ", ".join(f"{site} {role or '(no answer)'}" for site, role in changed.items())
                self.timeline.note(f"role {described}", at=self.timeline.at(at))

    def _failovers(self, site: SiteClients) -> None:
        try:
            found = {f["metadata"]["name"]: f for f in failovers(site)}
        except ERRORS:
            return
        now = self.timeline.now()
        for name, body in found.items():
            if (site.name, name) in self._earlier:
                continue
            course = self.courses.get((site.name, name))
            if course is None:
                course = Course(site.name, name, _kind(body), now)
                self.courses[(site.name, name)] = course
            status = body.get("status") or {}
            steps = status.get("steps") or []
            _moves(course, body)
            step = next((s["name"] for s in steps if s["state"] not in ("Succeeded", "Skipped")), None)
            if (status.get("phase"), step) != (course.phase, course.step):
                course.phase, course.step, course.message = status.get("phase"), step, status.get("message")
                where = f" ({step})" if step and course.phase not in TERMINAL else ""
                said = f": {course.message[:160]}" if course.message and course.phase in TERMINAL else ""
                self.timeline.note(f"failover {name} at {site.name}: {course.phase}{where}{said}", at=now)
                if course.phase in TERMINAL and course.ended is None:
                    course.ended = now
        for (where, name), course in self.courses.items():
            if where == site.name and name not in found and not course.deleted and course.ended is None:
                course.deleted, course.ended = True, now
                self.timeline.note(f"failover {name} at {where}: deleted while {course.phase}", at=now)

    def unfinished(self) -> list[Course]:
        return [c for c in self.courses.values() if c.ended is None]


def _moves(course: Course, body: dict[str, Any]) -> None:
    """Record what the Failover says of the data it moves."""
    status = body.get("status") or {}
    if course.created is None and (created := body["metadata"].get("creationTimestamp")):
        course.created = datetime.datetime.fromisoformat(created).timestamp()
    if status.get("fromSite"):
        course.source, course.target = status["fromSite"], status.get("toSite")
    if status.get("dataLossWindowSeconds") is not None:
        course.window = float(status["dataLossWindowSeconds"])
    promote: dict[str, Any] = next((s for s in status.get("steps") or [] if s.get("name") == "Promote"), {})
    course.promoted |= not (body.get("spec") or {}).get("dryRun") and (
        status.get("phase") == "Succeeded" or promote.get("state") == "Succeeded"
    )


def _kind(body: dict[str, Any]) -> str:
    spec = body.get("spec") or {}
    if spec.get("dryRun"):
        return "Drill"
    return f"{spec.get('type')}{'+acceptDataLoss' if spec.get('acceptDataLoss') else ''}"
