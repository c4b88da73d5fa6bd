"""What a usable Topology gives this site to work with (a `Pairing`), or why there is none (`UnpairedError`).

Judged from the Topology as last seen and the pair this site remembers (`sites.pair_memory`): a Topology
that is missing, invalid, does not name this site or names another peer than the remembered one pairs
nothing, and the site is Fenced (in its standby form when it remembers a pair).
"""

from dataclasses import dataclass

from pydantic import ValidationError

from sharedcore import Body
from sharedcore.api import DEFAULT_RECORD_TTL_SECONDS, Site, Topology
from sharedcore.render import FailoverForm, PeerSite, SiteContext
from sharedcore.sites import pair_memory
from sharedcore.sites.pair_memory import PairMemory, Remembered
from sharedcore.sites.settings import FailoverSettings
from sharedcore.sites.state import SiteState


@dataclass(frozen=True)
class Pairing:
    """The parts of a valid Topology this site works with."""

    topology: Topology
    own: Site
    other: Site

    @property
    def peer(self) -> str:
        return self.other.name

    @property
    def interval(self) -> float:
        return float(self.topology.spec.failover.heartbeat_interval_seconds)

    @property
    def duration(self) -> int:
        return self.topology.spec.failover.lease_duration_seconds

    @property
    def settings(self) -> FailoverSettings:
        return FailoverSettings.of(self.topology)

    @property
    def witnessed(self) -> bool:
        return self.topology.spec.witness is not None

    @property
    def memory(self) -> PairMemory:
        """What to remember of it (the claim is added once recorded)."""
        return PairMemory(self.own.name, self.peer, self.other.service_domain, self.own.ingress_address)

    def context(self, state: SiteState) -> SiteContext:
        """What the services render for at this site in `state`."""
        dns = self.topology.spec.dns
        return SiteContext(
            self.own.name,
            state.role,
            state.epoch,
            ingress_address=self.own.ingress_address,
            peer=PeerSite(self.peer, self.other.service_domain),
            record_ttl_seconds=dns.ttl_seconds if dns else DEFAULT_RECORD_TTL_SECONDS,
            failover=FailoverForm(final_sync=state.final_sync),
        )


class UnpairedError(Exception):
    """No usable Topology: `state` is the state to be in, and says why."""

    def __init__(self, state: SiteState) -> None:
        super().__init__(state.message)
        self.state = state


def pairing_of(
    site: str,
    body: Body | None,
    remembered: Remembered,
    *,
    deleted: bool,
    single_site: bool,
    where: str,
) -> Pairing:
    """The pairing the Topology `body` gives `site`; raises UnpairedError. `deleted`: this process saw the
    Topology go; `where` names the remembered pair's ConfigMap for people."""
    memory = remembered.memory
    if body is None:
        raise UnpairedError(
            pair_memory.without_topology(
                site, memory, remembered.problem, deleted=deleted, single_site=single_site, where=where
            )
        )
    try:
        topology = Topology.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        what = f"is invalid at {'.'.join(map(str, first['loc']))}: {first['msg']}"
        raise UnpairedError(pair_memory.unusable(memory, "TopologyInvalid", what)) from None
    sites = {entry.name: entry for entry in topology.spec.sites}
    if site not in sites:
        what = f"does not name {site} among its sites"
        raise UnpairedError(pair_memory.unusable(memory, "SiteNotInTopology", what))
    own = sites.pop(site)
    (other,) = sites.values()
    if memory is not None and memory.peer != other.name:
        raise UnpairedError(pair_memory.peer_changed(memory, other.name, where))
    return Pairing(topology, own, other)
