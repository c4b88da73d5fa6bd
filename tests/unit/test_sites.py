"""The pure parts of the two-site coordination: roles and epochs, heartbeat Leases, the Topology status."""

import dataclasses
import datetime

import pytest
from pydantic import ValidationError

from sharedcore.api import Role, TopologyStatus, dump
from sharedcore.kube import conditions
from sharedcore.sites import leases, settings, topology_status
from sharedcore.sites.heartbeats import PeerHeartbeats
from sharedcore.sites.state import Claim, Handover, Observations, SiteState, WitnessView, decide, fenced

NOBODY = fenced("Starting", "not decided yet")
DANANG_1 = Claim(1, "danang")


def seen(**changes: object) -> Observations:
    base: dict[str, object] = {
        "own": None,
        "peer": None,
        "peer_seen": True,
        "peer_current": True,
        "witness": None,
    }
    return Observations(**(base | changes))  # type: ignore[arg-type]


def at(
    site: str, observations: Observations, previous: SiteState = NOBODY
) -> tuple[SiteState, object, object]:
    peer = "quangnam" if site == "danang" else "danang"
    decision = decide(site, peer, "danang", observations, previous)
    return decision.state, decision.record, decision.hold


def test_bootstrap_without_witness_starts_epoch_1_at_the_preferred_primary_once_the_peer_runs() -> None:
    state, record, _ = at("danang", seen(peer_seen=False))
    assert (state.role, state.reason, record) == (Role.FENCED, "AwaitingPeer", None)
    state, record, hold = at("danang", seen())
    assert (state.role, state.epoch, record, hold) == (Role.ACTIVE, 1, DANANG_1, None)
    state, record, _ = at("quangnam", seen())
    assert (state.role, state.reason, record) == (Role.FENCED, "AwaitingBootstrap", None)
    state, record, _ = at("quangnam", seen(peer=DANANG_1))
    assert (state.role, state.epoch, state.active_site, record) == (Role.STANDBY, 1, "danang", DANANG_1)


def test_bootstrap_with_witness_is_active_only_once_the_lease_is_held() -> None:
    state, record, hold = at("danang", seen(witness=WitnessView(reachable=True)))
    assert (state.role, state.reason, record, hold) == (Role.FENCED, "AcquiringWitnessLease", None, DANANG_1)
    held = WitnessView(reachable=True, claim=DANANG_1, held=True)
    state, record, hold = at("danang", seen(witness=held))
    assert (state.role, state.epoch, record, hold) == (Role.ACTIVE, 1, DANANG_1, DANANG_1)
    # The standby learns the epoch from the witness alone, even without the peer's heartbeats.
    state, record, hold = at("quangnam", seen(peer_seen=False, witness=WitnessView(True, DANANG_1)))
    assert (state.role, state.epoch, record, hold) == (Role.STANDBY, 1, DANANG_1, None)


def test_a_restarted_active_site_is_fenced_until_it_proves_its_role() -> None:
    # With a witness: the recorded claim is not enough, the Lease must be renewed by this process.
    state, _, hold = at("danang", seen(own=DANANG_1, witness=WitnessView(True, DANANG_1)))
    assert (state.role, state.reason, hold) == (Role.FENCED, "AcquiringWitnessLease", DANANG_1)
    state, _, hold = at("danang", seen(own=DANANG_1, witness=WitnessView(False, DANANG_1)))
    assert (state.role, state.reason, hold) == (Role.FENCED, "WitnessUnreachable", DANANG_1)
    # Without one: it must hear from its peer, which may have taken over meanwhile.
    state, record, _ = at("danang", seen(own=DANANG_1, peer_current=False))
    assert (state.role, state.reason, record) == (Role.FENCED, "PeerUnconfirmed", None)
    state, record, _ = at("danang", seen(own=DANANG_1, peer=DANANG_1))
    assert (state.role, record) == (Role.ACTIVE, DANANG_1)
    # Once confirmed, losing the peer fences it (rule 6: see below).
    state, _, _ = at("danang", seen(own=DANANG_1, peer_current=False), previous=state)
    assert (state.role, state.reason) == (Role.FENCED, "PeerSilent")


def test_the_highest_epoch_wins_and_a_tie_between_two_sites_fences() -> None:
    later = Claim(2, "quangnam")
    state, record, _ = at("danang", seen(own=DANANG_1, peer=later))
    assert (state.role, state.epoch, state.active_site, record) == (Role.STANDBY, 2, "quangnam", later)
    state, record, hold = at("danang", seen(own=DANANG_1, peer=Claim(1, "quangnam")))
    assert (state.role, state.reason, record, hold) == (Role.FENCED, "ConflictingClaims", None, None)


def test_a_witness_lease_held_by_the_peer_at_the_best_epoch_is_not_asked_for() -> None:
    lease = WitnessView(True, Claim(2, "quangnam"))
    state, _, hold = at("danang", seen(own=Claim(1, "danang"), peer=Claim(2, "quangnam"), witness=lease))
    assert (state.role, state.active_site) == (Role.STANDBY, "quangnam")
    state, _, hold = at("danang", seen(own=Claim(2, "danang"), witness=lease))
    assert (state.role, state.reason, hold) == (Role.FENCED, "ConflictingClaims", None)


def test_a_promotion_waits_for_the_earlier_epochs_witness_lease_and_is_active_once_it_holds_it() -> None:
    promotion = Claim(2, "quangnam")
    current = WitnessView(True, DANANG_1)
    state, record, hold = at(
        "quangnam", seen(own=DANANG_1, peer=DANANG_1, witness=current, promotion=promotion)
    )
    assert (state.role, state.reason, record, hold) == (Role.FENCED, "AwaitingWitnessLease", None, promotion)
    taken = WitnessView(True, promotion, held=True)
    state, record, hold = at(
        "quangnam", seen(own=DANANG_1, peer=DANANG_1, witness=taken, promotion=promotion)
    )
    assert (state.role, state.epoch, record, hold) == (Role.ACTIVE, 2, promotion, promotion)
    # The old active site, seeing the Lease at epoch 2, stands by.
    state, record, hold = at("danang", seen(own=DANANG_1, witness=WitnessView(True, promotion)))
    assert (state.role, state.epoch, state.active_site, hold) == (Role.STANDBY, 2, "quangnam", None)


def test_without_witness_a_promotion_is_active_on_the_failovers_word() -> None:
    promotion = Claim(2, "quangnam")
    lost = seen(own=DANANG_1, peer=DANANG_1, peer_current=False, promotion=promotion)
    state, record, _ = at("quangnam", lost)
    assert (state.role, state.epoch, record) == (Role.ACTIVE, 2, promotion)
    state, _, _ = at("quangnam", seen(own=DANANG_1, peer=DANANG_1, peer_current=False))
    assert state.role is Role.STANDBY


def test_without_witness_an_active_site_that_does_not_hear_its_peer_fences_itself_unless_told_not_to() -> (
    None
):
    """Rule 6: in Manual mode without a witness, a partition alone must not leave danang writing while a
    Failover makes quangnam active; a Topology that accepts the risk says so by its field's name."""
    state, _, _ = at("danang", seen(own=DANANG_1, peer=DANANG_1))
    assert state.role is Role.ACTIVE
    cut_off = seen(own=DANANG_1, peer=DANANG_1, peer_current=False)
    fenced_state, record, _ = at("danang", cut_off, previous=state)
    assert (fenced_state.role, fenced_state.reason, fenced_state.epoch, record) == (
        Role.FENCED,
        "PeerSilent",
        1,
        None,
    )
    assert "acceptSplitBrainRisk" in fenced_state.message
    # Heard again (no later epoch): active again.
    state, _, _ = at("danang", seen(own=DANANG_1, peer=DANANG_1), previous=fenced_state)
    assert state.role is Role.ACTIVE
    risky = seen(own=DANANG_1, peer=DANANG_1, peer_current=False, accept_split_brain_risk=True)
    kept, _, _ = at("danang", risky, previous=state)
    assert kept.role is Role.ACTIVE and "acceptSplitBrainRisk" in kept.message
    # Promoted by a Failover while the old site is silent (it fenced itself, or is down): active on the
    # Failover's word, until it hears the peer, from then on like any active site.
    promotion = Claim(2, "quangnam")
    promoted, _, _ = at(
        "quangnam", seen(own=DANANG_1, peer=DANANG_1, peer_current=False, promotion=promotion)
    )
    assert promoted.role is Role.ACTIVE
    ended = seen(own=promotion, peer=DANANG_1, peer_current=False)
    still, _, _ = at("quangnam", ended, previous=promoted)
    assert still.role is Role.ACTIVE
    heard, _, _ = at("quangnam", seen(own=promotion, peer=promotion), previous=still)
    assert heard.role is Role.ACTIVE
    lost, _, _ = at("quangnam", seen(own=promotion, peer=promotion, peer_current=False), previous=heard)
    assert (lost.role, lost.reason) == (Role.FENCED, "PeerSilent")


def test_a_site_whose_api_server_is_lost_fences_itself_and_lets_the_witness_lease_go() -> None:
    held = WitnessView(reachable=True, claim=DANANG_1, held=True)
    state, record, hold = at("danang", seen(own=DANANG_1, witness=held, own_cluster_lost=True))
    assert (state.role, state.reason, state.epoch, record, hold) == (
        Role.FENCED,
        "ClusterUnreachable",
        1,
        None,
        None,
    )


def test_the_active_site_fences_itself_for_its_peers_announced_takeover() -> None:
    takeover = Handover(2, "quangnam", "switchover-1")
    held = WitnessView(reachable=True, claim=DANANG_1, held=True)
    state, record, hold = at("danang", seen(own=DANANG_1, witness=held, handover=takeover))
    assert (state.role, state.reason, state.epoch, record, hold) == (
        Role.FENCED,
        "HandingOver",
        1,
        None,
        None,
    )
    assert state.final_sync == "switchover-1", "it still pushes its files once more for the target"
    # Without a witness too; and once the announcement is withdrawn, it is active again.
    state, _, _ = at("danang", seen(own=DANANG_1, handover=takeover))
    assert state.reason == "HandingOver"
    state, _, _ = at("danang", seen(own=DANANG_1, peer=DANANG_1))
    assert state.role is Role.ACTIVE
    # A stale announcement (for an epoch already reached) and the target itself are not fenced by it.
    state, _, _ = at("danang", seen(own=Claim(2, "danang"), peer=Claim(2, "danang"), handover=takeover))
    assert state.role is Role.ACTIVE
    state, _, _ = at("quangnam", seen(peer=DANANG_1, handover=Handover(2, "quangnam", "switchover-1")))
    assert state.role is Role.STANDBY


def test_heartbeat_lease_carries_role_and_claim() -> None:
    now = datetime.datetime(2026, 11, 24, 8, 0, 0, 123456, tzinfo=datetime.UTC)
    body = leases.heartbeat("danang", "sharedcore-system", Role.ACTIVE, DANANG_1, duration=15, now=now)
    assert body["metadata"]["name"] == "sharedcore-heartbeat-danang"
    assert body["spec"] == {
        "holderIdentity": "danang",
        "leaseDurationSeconds": 15,
        "renewTime": "2026-11-24T08:00:00.123456Z",
    }
    beat = leases.read_heartbeat(body)
    assert (beat.role, beat.claim, beat.renew_time) == (Role.ACTIVE, DANANG_1, "2026-11-24T08:00:00.123456Z")
    fenced_beat = leases.heartbeat("quangnam", "ns", Role.FENCED, None, duration=15, now=now)
    assert leases.read_heartbeat(fenced_beat).claim is None
    assert beat.handover is None
    takeover = Handover(2, "quangnam", "switchover-1")
    announcing = leases.heartbeat(
        "quangnam", "ns", Role.STANDBY, DANANG_1, duration=15, now=now, handover=takeover
    )
    assert leases.read_heartbeat(announcing).handover == takeover


def test_witness_lease_names_holder_and_epoch_and_renewals_are_conditional() -> None:
    now = datetime.datetime(2026, 11, 24, tzinfo=datetime.UTC)
    lease = leases.active_lease("sharedcore-system", DANANG_1, 15, now)
    assert leases.witness_claim(lease) == DANANG_1
    lease["metadata"]["resourceVersion"] = "42"
    patch = leases.renewal(lease, Claim(2, "danang"), 15, now)
    assert patch["metadata"]["resourceVersion"] == "42", "a renewal fails if anyone wrote in between"
    assert patch["metadata"]["annotations"][leases.EPOCH_ANNOTATION] == "2"
    assert leases.witness_claim(None) is None


def test_freshness_counts_only_renewals_seen_happening() -> None:
    freshness = leases.Freshness()
    freshness.observe("t1", now=100.0)
    assert freshness.age(100.0) is None, "a Lease seen once may be an hour old"
    freshness.observe("t1", now=101.0)
    assert not freshness.fresh(101.0, duration=5)
    freshness.observe("t2", now=102.0)
    assert freshness.age(104.0) == pytest.approx(2.0) and freshness.fresh(104.0, duration=5)
    assert not freshness.fresh(108.0, duration=5)


def test_a_peer_stops_renewing_its_heartbeat_when_neither_copy_changes_for_a_lease() -> None:
    """What a handover's lapse is judged by: either copy of the heartbeat renewed, counted from its first
    sight when it has not changed since (a source whose operator restarts while a live target hands over must
    still honour the handover), and not the peer's API server answering (its operator may be dead)."""
    heartbeats = PeerHeartbeats("danang", "sharedcore-system")
    heartbeats.inbound.observe("t1", now=100.0)
    assert heartbeats.renewing(114.0, duration=15), "first sight: not silent for a lease yet"
    assert not heartbeats.renewing(115.0, duration=15)
    heartbeats.outbound.observe("t1", now=110.0)
    heartbeats.outbound.observe("t2", now=112.0)  # renewed at the peer, though not here
    assert heartbeats.renewing(126.0, duration=15)
    assert not heartbeats.renewing(127.0, duration=15)


def test_a_source_whose_target_falls_silent_mid_handover_takes_the_announced_epoch_through_the_witness() -> (
    None
):
    """Fenced for good, the source would leave no site active. It claims the epoch the handover announced (so
    that the target, back, finds its Failover superseded), only through the witness, and only while the
    witness shows the target never took that epoch."""
    takeover = Handover(2, "quangnam", "switchover-1")
    released = WitnessView(reachable=True, claim=DANANG_1, held=False)
    lapsed = {"own": DANANG_1, "peer": DANANG_1, "handover": takeover, "handover_lapsed": True}
    state, record, hold = at("danang", seen(**lapsed, witness=released))
    assert (state.role, state.epoch, record, hold) == (Role.FENCED, 2, None, Claim(2, "danang"))
    assert "acquiring the witness Lease for epoch 2" in state.message
    taken = WitnessView(reachable=True, claim=Claim(2, "danang"), held=True)
    state, record, hold = at("danang", seen(**lapsed, witness=taken))
    assert (state.role, state.epoch, record, hold) == (Role.ACTIVE, 2, Claim(2, "danang"), Claim(2, "danang"))
    # The target took the Lease first: it won, and the source stands by.
    won = WitnessView(reachable=True, claim=Claim(2, "quangnam"), held=False)
    assert at("danang", seen(**lapsed, witness=won))[0].role is Role.STANDBY
    # No witness to ask, or none reachable: nobody can tell whether the target promoted; still handing over.
    assert at("danang", seen(**lapsed))[0].reason == "HandingOver"
    unreachable = WitnessView(reachable=False, claim=DANANG_1)
    assert at("danang", seen(**lapsed, witness=unreachable))[0].reason == "HandingOver"
    # Still renewed: handing over as before.
    assert at("danang", seen(**(lapsed | {"handover_lapsed": False}), witness=released))[0].reason == (
        "HandingOver"
    )


TOPOLOGY = {
    "metadata": {"name": "default", "generation": 3},
    "spec": {"sites": [{"name": "danang"}, {"name": "quangnam"}]},
}


def peer_view(
    reachable: bool, arrive: bool, last: str = "2026-11-24T08:00:00.000000Z"
) -> topology_status.PeerView:
    return topology_status.PeerView(
        name="quangnam",
        reachable=reachable,
        problem=None if reachable else "timed out",
        heartbeats_arrive=arrive,
        last_heartbeat=datetime.datetime.fromisoformat(last),
        role=Role.STANDBY,
        epoch=1,
    )


@pytest.mark.parametrize(
    ("reachable", "arrive", "reason"),
    [
        (True, True, "Connected"),
        (True, False, "HeartbeatsNotArriving"),
        (False, True, "PeerUnreachable"),
        (False, False, "PeerLost"),
    ],
)
def test_topology_status_reports_each_direction_of_the_link(
    reachable: bool, arrive: bool, reason: str
) -> None:
    state = SiteState(Role.ACTIVE, 1, "danang", "Active", "danang is active at epoch 1")
    new = topology_status.build(
        TOPOLOGY,
        "danang",
        state,
        recorded=DANANG_1,
        peer=peer_view(reachable, arrive),
        witness=None,
        now="2026-11-24T08:00:00Z",
    )
    condition = conditions.find(new["conditions"], "PeerConnected")
    assert condition and condition["reason"] == reason and condition["status"] == str(reason == "Connected")
    assert (new["activeSite"], new["epoch"], new["observedGeneration"]) == ("danang", 1, 3)
    assert [entry["name"] for entry in new["sites"]] == ["danang", "quangnam"]
    assert new["sites"][1] == {
        "name": "quangnam",
        "reachable": reachable,
        "lastHeartbeatTime": "2026-11-24T08:00:00.000000Z",
        "role": "Standby",
        "epoch": 1,
    }


def test_a_newer_heartbeat_alone_does_not_rewrite_the_status() -> None:
    state = SiteState(Role.ACTIVE, 1, "danang", "Active", "danang is active at epoch 1")

    def build(last: str, arrive: bool = True) -> dict:
        return topology_status.build(
            {**TOPOLOGY, "status": current},
            "danang",
            state,
            recorded=DANANG_1,
            peer=peer_view(True, arrive, last),
            witness=(WitnessView(True, DANANG_1, True), None, None),
            now="2026-11-24T08:00:02Z",
        )

    current: dict = {}
    current = build("2026-11-24T08:00:00.000000Z")
    assert not topology_status.differs(current, build("2026-11-24T08:00:05.000000Z"))
    silent = build("2026-11-24T08:00:05.000000Z", arrive=False)
    assert topology_status.differs(current, silent)
    assert silent["sites"][1]["lastHeartbeatTime"] == "2026-11-24T08:00:05.000000Z"
    assert conditions.find(silent["conditions"], "WitnessReachable")["message"] == (  # type: ignore[index]
        "the witness Lease names danang at epoch 1"
    )


def test_a_fenced_site_keeps_its_recorded_claim_in_status() -> None:
    state = fenced("WitnessUnreachable", "cannot reach the witness", 1, "danang")
    current = {"activeSite": "danang", "epoch": 1}
    new = topology_status.build(
        {**TOPOLOGY, "status": current},
        "danang",
        state,
        recorded=None,
        peer=peer_view(True, True),
        witness=None,
        now="2026-11-24T08:00:00Z",
    )
    assert (new["activeSite"], new["epoch"]) == ("danang", 1)
    ready = conditions.find(new["conditions"], "Ready")
    assert ready and (ready["status"], ready["reason"]) == ("False", "WitnessUnreachable")
    assert topology_status.recorded_claim({"status": current}) == DANANG_1
    assert topology_status.recorded_claim({"status": {"epoch": 0}}) is None


def test_heartbeats_carry_the_reason_and_the_failover_settings_and_a_mismatch_is_reported() -> None:
    """Rules 2 and 4: the peer learns why a site is fenced, and whether both run with the same settings."""
    now = datetime.datetime(2026, 11, 24, tzinfo=datetime.UTC)
    ours = settings.FailoverSettings(mode="Automatic", heartbeat=1, lease=6, witness=True, preferred="danang")
    theirs = dataclasses.replace(ours, lease=18)
    body = leases.heartbeat(
        "danang", "ns", Role.FENCED, DANANG_1, duration=18, now=now, reason="HandingOver", settings=theirs
    )
    beat = leases.read_heartbeat(body)
    assert (beat.reason, beat.settings, beat.duration) == ("HandingOver", theirs, 18)
    assert body["metadata"]["annotations"][leases.SETTINGS_DIGEST_ANNOTATION] == theirs.digest
    assert ours.digest != theirs.digest and len(ours.digest) == 16
    assert ours.differences(theirs) == ["leaseDurationSeconds 6 here, 18 at the peer"]
    state = SiteState(Role.STANDBY, 1, "danang", "Standby", "danang is active at epoch 1")

    def settings_match(peer_settings: settings.FailoverSettings) -> conditions.Condition:
        peer = dataclasses.replace(peer_view(True, True), name="danang", settings=peer_settings)
        built = topology_status.build(
            TOPOLOGY,
            "quangnam",
            state,
            recorded=DANANG_1,
            peer=peer,
            witness=None,
            now="2026-11-24T08:00:00Z",
            settings=ours,
        )
        found = conditions.find(built["conditions"], "SettingsMatch")
        assert found is not None
        return found

    mismatch = settings_match(theirs)
    assert (mismatch["status"], mismatch["reason"]) == ("False", "SettingsMismatch")
    assert "leaseDurationSeconds 6 here, 18 at the peer" in mismatch["message"]
    assert settings_match(ours)["status"] == "True"


def test_no_epoch_is_started_while_the_sites_topologies_disagree() -> None:
    """Rule 2: each site names itself preferred primary in its own Topology; without a witness both would
    start epoch 1 and act as Active until they read each other's claims."""
    state, record, _ = at("danang", seen(settings_agree=False))
    assert (state.role, state.reason, record) == (Role.FENCED, "SettingsMismatch", None)
    assert "SettingsMatch" in state.message
    state, record, hold = at("danang", seen(settings_agree=False, witness=WitnessView(reachable=True)))
    assert (state.role, state.reason, record, hold) == (Role.FENCED, "SettingsMismatch", None, None)


def test_the_topology_status_is_the_dump_of_its_model() -> None:
    """Issue 16: TopologyStatus is the single source of the status written: its shape, its types (a
    peerFencingSeconds the API server returns as 3 is the model's float) and its checks."""
    state = SiteState(Role.ACTIVE, 1, "danang", "Active", "danang is active at epoch 1")
    current = {"peerFencingSeconds": 3, "lastFailover": {"name": "failover-1", "rtoSeconds": 18}}
    entry = {"site": "danang", "committed": "1Ti", "committedBytes": 2**40, "services": 1, "refused": []}

    def build(capacity: list[dict[str, object]]) -> dict[str, object]:
        return topology_status.build(
            {**TOPOLOGY, "status": current},
            "danang",
            state,
            recorded=DANANG_1,
            peer=peer_view(True, True),
            witness=None,
            now="2026-11-24T08:00:00Z",
            capacity=capacity,
        )

    new = build([])
    assert new == dump(TopologyStatus.model_validate(new))
    assert isinstance(new["peerFencingSeconds"], float) and new["lastFailover"] == {
        "name": "failover-1",
        "rtoSeconds": 18.0,
    }
    with pytest.raises(ValidationError, match="committedBytes"):
        build([entry | {"committedBytes": -1}])
