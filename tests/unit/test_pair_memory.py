"""Issue 11, rules 1 and 3, the pure parts: the remembered pair, the state and form of a site without a
usable Topology, and a site that has not decided its role yet."""

from typing import Any, cast

import pytest

from sharedcore.api import Role
from sharedcore.render import PeerSite, render
from sharedcore.sites import pair_memory, topology_status
from sharedcore.sites.controller import SiteController
from sharedcore.sites.pair_memory import (
    PairMemory,
    UnreadableError,
    context,
    parse,
    peer_changed,
    unusable,
    without_topology,
)
from sharedcore.sites.state import Claim, fenced
from sharedcore_testbed.pair import topology
from tests.golden.samples import SERVICE_DOMAIN, sample

MEMORY = PairMemory("quangnam", "danang", SERVICE_DOMAIN, "203.0.113.20", Claim(3, "danang"))
WHERE = "ConfigMap sharedcore-system/sharedcore-pair"


def stored(**data: str) -> dict[str, Any]:
    return {"metadata": {"name": pair_memory.CONFIG_MAP, "namespace": "sharedcore-system"}, "data": data}


def test_the_remembered_pair_reads_back_as_written() -> None:
    assert parse(MEMORY.config_map("sharedcore-system"), "quangnam") == MEMORY
    bare = PairMemory("quangnam", "danang", SERVICE_DOMAIN)  # before any epoch was recorded
    assert parse(bare.config_map("sharedcore-system"), "quangnam") == bare


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"site": "quangnam", "peerServiceDomain": SERVICE_DOMAIN}, "peer is missing"),
        ({"site": "danang", "peer": "quangnam", "peerServiceDomain": SERVICE_DOMAIN}, "danang's"),
        ({"site": "quangnam", "peer": "quangnam", "peerServiceDomain": SERVICE_DOMAIN}, "its own peer"),
        (
            {"site": "quangnam", "peer": "danang", "peerServiceDomain": SERVICE_DOMAIN, "epoch": "x"},
            "positive integer",
        ),
        (
            {"site": "quangnam", "peer": "danang", "peerServiceDomain": SERVICE_DOMAIN, "role": "Active"},
            "unknown keys role",
        ),
    ],
)
def test_a_remembered_pair_that_says_too_little_or_too_much_is_unreadable(
    data: dict[str, str], problem: str
) -> None:
    with pytest.raises(UnreadableError, match=problem):
        parse(stored(**data), "quangnam")


def test_without_a_topology_a_pair_member_stays_fenced_at_its_epoch_even_with_single_site() -> None:
    for single_site in (False, True):
        state = without_topology("quangnam", MEMORY, None, deleted=True, single_site=single_site, where=WHERE)
        assert (state.role, state.reason, state.epoch, state.active_site) == (
            Role.FENCED,
            "TopologyDeleted",
            3,
            "danang",
        )
    state = without_topology("quangnam", MEMORY, None, deleted=False, single_site=False, where=WHERE)
    assert (state.role, state.reason) == (Role.FENCED, "TopologyMissing")  # a restart without it


def test_running_as_a_single_site_is_an_explicit_choice() -> None:
    state = without_topology("danang", None, None, deleted=False, single_site=True, where=WHERE)
    assert (state.role, state.epoch) == (Role.ACTIVE, 0)
    state = without_topology("danang", None, None, deleted=False, single_site=False, where=WHERE)
    assert (state.role, state.reason) == (Role.FENCED, "NoTopology")
    assert "--single-site" in state.message
    state = without_topology("danang", None, "peer is missing", deleted=False, single_site=True, where=WHERE)
    assert (state.role, state.reason) == (Role.FENCED, "PairMemoryUnreadable")
    assert WHERE in state.message and "peer is missing" in state.message


def test_a_fenced_pair_member_renders_its_standby_form() -> None:
    state = unusable(MEMORY, "SiteNotInTopology", "does not name quangnam among its sites")
    site = context("quangnam", state, MEMORY)
    assert site.peer == PeerSite("danang", SERVICE_DOMAIN)
    objects = render(sample("document-management"), site)
    (cluster,) = [obj for obj in objects if obj["kind"] == "Cluster"]
    assert cluster["spec"]["replica"] == {
        "primary": "vanban-db-danang",
        "self": "vanban-db-quangnam",
        "source": "vanban-db-danang",
    }
    assert {obj["kind"] for obj in objects} >= {"ReplicationDestination"}
    assert "ReplicationSource" not in {obj["kind"] for obj in objects}
    # A single site has no peer to keep.
    single = without_topology("danang", None, None, deleted=False, single_site=True, where=WHERE)
    assert context("danang", single, None).peer is None


def test_an_unusable_topology_says_why_in_its_ready_condition_and_keeps_the_rest() -> None:
    body = topology()
    body["metadata"]["generation"] = 4
    body["status"] = {
        "activeSite": "danang",
        "epoch": 3,
        "conditions": [
            {
                "type": "PeerConnected",
                "status": "True",
                "reason": "Connected",
                "message": "ok",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    }
    state = unusable(MEMORY, "TopologyInvalid", "is invalid at spec.sites: too short")
    status = topology_status.unusable(body, state, now="2026-01-01T00:00:00Z")
    assert (status["activeSite"], status["epoch"], status["observedGeneration"]) == ("danang", 3, 4)
    ready, peer = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "TopologyInvalid")
    assert peer["type"] == "PeerConnected"


def test_a_starting_site_is_fenced_and_not_active_before_its_first_decision() -> None:
    none = cast(Any, None)  # nothing is called before `run`
    site = SiteController("danang", none, recorder=none, peers=none, namespace="sharedcore-system")
    assert site.state == fenced("Starting", "deciding this site's role")
    assert site.context().role is Role.FENCED and not site.active()
    body = topology()
    body["metadata"]["resourceVersion"] = "1"
    site.on_topology("ADDED", body)  # known, but no decision taken on it yet: still nothing to replicate
    assert not site.active()


def test_deleting_the_remembered_pair_is_how_a_site_leaves_it() -> None:
    none = cast(Any, None)
    site = SiteController(
        "quangnam", none, recorder=none, peers=none, namespace="sharedcore-system", single_site=True
    )
    site.on_config_map("ADDED", MEMORY.config_map("sharedcore-system"))
    assert site._pairing is None and site._unpaired == unusable(MEMORY, "TopologyMissing", "does not exist")
    other = MEMORY.config_map("sharedcore-system") | {"metadata": {"name": "x", "namespace": "y"}}
    site.on_config_map("DELETED", other)  # not the remembered pair: ignored
    assert site._pairing is None and site._unpaired == unusable(MEMORY, "TopologyMissing", "does not exist")
    site.on_config_map("DELETED", MEMORY.config_map("sharedcore-system"))
    assert site._pairing is None and site._unpaired == without_topology(
        "quangnam", None, None, deleted=False, single_site=True, where=WHERE
    )


def test_a_topology_naming_another_peer_leaves_the_site_fenced_in_its_old_pair() -> None:
    none = cast(Any, None)
    site = SiteController("quangnam", none, recorder=none, peers=none, namespace="sharedcore-system")
    site.on_config_map("ADDED", MEMORY.config_map("sharedcore-system"))
    body = topology()
    body["metadata"]["resourceVersion"] = "1"
    body["spec"]["sites"][0]["name"] = body["spec"]["preferredPrimary"] = "hoian"  # a typo of danang's name
    site.on_topology("ADDED", body)
    assert site._pairing is None
    state = site._unpaired
    assert state == peer_changed(MEMORY, "hoian", WHERE)
    assert (state.reason, state.epoch) == ("PeerChanged", 3) and WHERE in state.message
    assert context("quangnam", state, MEMORY).peer == PeerSite("danang", SERVICE_DOMAIN)
    site.on_config_map("DELETED", MEMORY.config_map("sharedcore-system"))  # a person: the pair changed
    assert site._pairing is not None
