"""The pair as this site last knew it from a usable Topology, kept in a ConfigMap in the system namespace,
and the state and form of a site without a usable Topology.

A standby renders its databases as replicas of the peer's and its files as the peer's VolSync destination;
rendered without the peer, they would become independent primaries. So whatever the peer and the last epoch
were, they outlive the Topology: when it is deleted, invalid or does not name this site, and across operator
restarts, the site stays Fenced in that form until a usable Topology returns or a person deletes this
ConfigMap (leaving the pair on purpose). A ConfigMap rather than the Topology's status: the status goes with
the Topology, which is exactly what may be missing. Written only when it changes (a new peer or epoch).
"""

from dataclasses import dataclass

from sharedcore import API_GROUP, Body
from sharedcore.api import Role
from sharedcore.render import PeerSite, SiteContext
from sharedcore.sites.state import Claim, SiteState, fenced

CONFIG_MAP = "sharedcore-pair"
SINGLE_SITE = "SingleSite"
KEYS = ("site", "peer", "peerServiceDomain", "ingressAddress", "activeSite", "epoch")


class UnreadableError(ValueError):
    """The ConfigMap exists but does not say what this site needs (edited by hand, or another site's)."""


@dataclass(frozen=True)
class PairMemory:
    site: str
    peer: str
    peer_service_domain: str
    ingress_address: str | None = None
    claim: Claim | None = None  # the last claim this site recorded: who was active at which epoch

    def config_map(self, namespace: str) -> Body:
        data = {"site": self.site, "peer": self.peer, "peerServiceDomain": self.peer_service_domain}
        if self.ingress_address is not None:
            data["ingressAddress"] = self.ingress_address
        if self.claim is not None:
            data |= {"activeSite": self.claim.active_site, "epoch": str(self.claim.epoch)}
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CONFIG_MAP,
                "namespace": namespace,
                "labels": {f"{API_GROUP}/pair-memory": "true"},
                "annotations": {
                    f"{API_GROUP}/about": "the pair this site belongs to, kept while its Topology is "
                    "unusable; delete it only to take this site out of the pair"
                },
            },
            "data": data,
        }


@dataclass(frozen=True)
class Remembered:
    """The pair as stored at this site, or why the stored one cannot be read (`problem`)."""

    memory: PairMemory | None = None
    problem: str | None = None


def read(body: Body | None, site: str) -> Remembered:
    """What the ConfigMap `body` (None: there is none) remembers for `site`."""
    if body is None:
        return Remembered()
    try:
        return Remembered(parse(body, site))
    except UnreadableError as error:
        return Remembered(problem=str(error))


def parse(body: Body, site: str) -> PairMemory:
    """The memory in `body`; UnreadableError says what is wrong with it."""
    data = body.get("data") or {}
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise UnreadableError(f"unknown keys {', '.join(unknown)}")
    for key in ("site", "peer", "peerServiceDomain"):
        if not data.get(key):
            raise UnreadableError(f"{key} is missing")
    if data["site"] != site:
        raise UnreadableError(f"it is {data['site']}'s, not {site}'s")
    if data["peer"] == site:
        raise UnreadableError(f"it names {site} as its own peer")
    claim = None
    if "epoch" in data or "activeSite" in data:
        epoch = str(data.get("epoch", ""))
        if not epoch.isdigit() or int(epoch) < 1 or not data.get("activeSite"):
            raise UnreadableError("epoch must be a positive integer, with activeSite")
        claim = Claim(int(epoch), str(data["activeSite"]))
    return PairMemory(
        site=site,
        peer=str(data["peer"]),
        peer_service_domain=str(data["peerServiceDomain"]),
        ingress_address=data.get("ingressAddress") or None,
        claim=claim,
    )


def without_topology(
    site: str,
    memory: PairMemory | None,
    problem: str | None,
    *,
    deleted: bool,
    single_site: bool,
    where: str,
) -> SiteState:
    """The state of a site with no Topology: `problem` says why a stored memory cannot be read, `deleted`
    whether this process saw the Topology go, `where` names the ConfigMap for people."""
    if memory is not None:
        what = "was deleted" if deleted else "does not exist"
        return unusable(memory, "TopologyDeleted" if deleted else "TopologyMissing", what)
    if problem is not None:
        message = (
            f"no Topology, and {where} (the pair this site belongs to) cannot be read: {problem}. "
            f"Create the Topology, or delete the ConfigMap if this site is to leave its pair"
        )
        return fenced("PairMemoryUnreadable", message)
    if single_site:
        return SiteState(Role.ACTIVE, 0, site, SINGLE_SITE, "no Topology: a single active site")
    message = (
        "no Topology names this site: nothing is rendered until one does, or until the operator "
        "runs with --single-site to serve this site alone"
    )
    return fenced("NoTopology", message)


def unusable(memory: PairMemory | None, reason: str, what: str) -> SiteState:
    """Fenced, at the remembered epoch, because the Topology `what` (e.g. "was deleted")."""
    if memory is None:
        return fenced(reason, f"the Topology {what}: fenced until a usable Topology names this site")
    claim = memory.claim
    message = (
        f"the Topology {what}: fenced, still in the standby form of the pair with {memory.peer} (its "
        f"databases follow {memory.peer}'s), until the Topology is restored"
    )
    return fenced(reason, message, claim.epoch if claim else 0, claim.active_site if claim else None)


def peer_changed(memory: PairMemory, peer: str, where: str) -> SiteState:
    """A Topology naming another peer than the remembered one: following it would re-point the databases at a
    site they never copied, so only a person says the pair changed."""
    what = (
        f"names {peer} as this site's peer, but it is paired with {memory.peer}; if the pair really "
        f"changed, delete {where} at this site"
    )
    return unusable(memory, "PeerChanged", what)


def context(site: str, state: SiteState, memory: PairMemory | None) -> SiteContext:
    """What a site without a usable Topology renders for: a fenced pair member keeps its peer (and so its
    databases' replica section and its files' VolSync destination); a single site has none."""
    if memory is None or state.role is not Role.FENCED:
        return SiteContext(site, state.role, state.epoch)
    peer = PeerSite(memory.peer, memory.peer_service_domain)
    return SiteContext(site, state.role, state.epoch, ingress_address=memory.ingress_address, peer=peer)
