"""What every reconcile shares: the client, the caches, the queue, the event recorder, the site and the
replicas' lag."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sharedcore.api import ReplicationPolicy, TopologySpec
from sharedcore.kube.cache import ObjectCache, ObjectKey
from sharedcore.kube.client import KubeClient
from sharedcore.kube.events import EventRecorder
from sharedcore.kube.workqueue import WorkQueue
from sharedcore.render import SiteContext
from sharedcore.replication.lag import LagTable

ServiceKey = tuple[str, str]  # (namespace, name)


@dataclass
class Runtime:
    client: KubeClient
    recorder: EventRecorder
    site: Callable[[], SiteContext]
    resync_seconds: float
    cache: ObjectCache = field(default_factory=ObjectCache)
    services: dict[ServiceKey, dict[str, Any]] = field(default_factory=dict)
    queue: WorkQueue[ServiceKey] = field(default_factory=WorkQueue)
    # The body we last applied per object: tells a hand edit (drift) from a change of the service's spec.
    applied: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    # The live resourceVersion at which that body was last found in sync: the same pair again is not compared.
    in_sync: dict[ObjectKey, str] = field(default_factory=dict)
    deleting: set[ServiceKey] = field(default_factory=set)
    provisioned: set[ServiceKey] = field(default_factory=set)  # database credentials known to exist here
    secrets: set[tuple[str, str]] = field(default_factory=set)  # (namespace, name): Secrets the watch saw
    # Cluster uid: when its CloudNativePG demotion was first seen in progress, or last moved on.
    demoting: dict[str, float] = field(default_factory=dict)
    lag: LagTable = field(default_factory=LagTable)  # CloudNativePG replicas' lag, as last polled
    policy: Callable[[], ReplicationPolicy] = ReplicationPolicy  # what copies from the peer may hold
    topology: Callable[[], TopologySpec | None] = lambda: None  # the sites' capacities and links
    report_capacity: Callable[[list[dict[str, Any]]], None] = lambda _: None  # to Topology.status.capacity
    peer: Callable[[], KubeClient | None] = lambda: None  # the other site, as its peer identity there
