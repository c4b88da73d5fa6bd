"""The pure judgement of a running Failover's steps, and of when a site starts one by itself."""

import datetime
from typing import Any

import pytest

from sharedcore.api import FailoverStatus, FailoverType, Role, StepName, StepState, StepStatus, Topology
from sharedcore.failover import progress, triggers
from sharedcore.failover.machine import Outcome
from sharedcore.sites.state import Claim, SiteState, WitnessView
from sharedcore.sites.views import PairObservation

DANANG_1 = Claim(1, "danang")
STANDBY = SiteState(Role.STANDBY, 1, "danang", "Standby", "danang is active at epoch 1")


def view(**changes: Any) -> PairObservation:
    base: dict[str, Any] = {
        "state": STANDBY,
        "peer_role": Role.ACTIVE,
        "peer_claim": DANANG_1,
        "peer_reachable": True,
        "peer_current": True,
        "peer_silent_seconds": 0.5,
        "witness": WitnessView(True, DANANG_1),
        "witness_lapsed": False,
    }
    return PairObservation(**(base | changes))


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "city", "name": name}, "spec": spec}


VANBAN = progress.parts(service("vanban", ingress={"host": "vanban.danang.gov.vn"}))
OPENDATA = progress.parts(service("opendata", database={"enabled": False}))


def waiting(outcome: Outcome) -> bool:
    return outcome.state.value == "Running"


def done(outcome: Outcome) -> bool:
    return outcome.state.value == "Succeeded"


def test_a_switchover_waits_for_the_source_to_fence_itself_and_let_go_of_the_witness_lease() -> None:
    def fence(**changes: Any) -> Outcome:
        return progress.fence_source(FailoverType.SWITCHOVER, "danang", 2, view(**changes))

    assert waiting(fence())
    assert "fence itself" in fence().message
    assert "release the witness Lease" in fence(peer_role=Role.FENCED).message
    assert done(fence(peer_role=Role.FENCED, witness=WitnessView(True, None), witness_lapsed=True))
    # Resumed after this site took the Lease at the new epoch.
    assert done(fence(peer_role=Role.STANDBY, witness=WitnessView(True, Claim(2, "quangnam"), held=True)))
    assert "a switchover needs it" in fence(peer_current=False).message


def test_a_failover_needs_the_witness_lease_lapsed_or_without_a_witness_the_source_silent_for_a_lease() -> (
    None
):
    def fence(**changes: Any) -> Outcome:
        return progress.fence_source(FailoverType.FAILOVER, "danang", 2, view(**changes))

    assert waiting(fence(peer_current=False))
    assert done(fence(peer_current=False, witness_lapsed=True))
    # Rule 6: without a witness the source fences itself after two thirds of a Lease without hearing this
    # site; the Failover waits for a whole one (the longest in play) of silence.
    silent = {"peer_current": False, "witness": None, "takeover_seconds": 15.0}
    assert waiting(fence(**silent, peer_silent_seconds=10.0))
    assert "silent" in fence(**silent, peer_silent_seconds=10.0).message
    assert done(fence(**silent, peer_silent_seconds=15.0))
    assert "fenced itself" in fence(**silent, peer_silent_seconds=15.0).message
    assert waiting(fence(witness=None))  # a source that still answers must fence itself first
    assert done(fence(witness=None, peer_role=Role.FENCED))


def test_the_final_sync_waits_for_every_manual_sync_and_demotion_and_collects_the_tokens() -> None:
    sources = {("city", "vanban-files"): {"status": {"lastManualSync": "sw-1"}}}
    clusters: dict[progress.Key, Any] = {("city", "vanban-db-danang"): {"status": {}}}
    outcome = progress.final_sync("sw-1", "danang", [VANBAN, OPENDATA], sources, clusters)
    assert waiting(outcome) and outcome.promotion_tokens == {}
    assert "city/vanban database demotion" in outcome.message
    assert "city/opendata files" in outcome.message
    sources[("city", "opendata-files")] = {"status": {"lastManualSync": "sw-0"}}  # an older switchover's
    clusters[("city", "vanban-db-danang")] = {"status": {"demotionToken": "dG9rZW4="}}
    outcome = progress.final_sync("sw-1", "danang", [VANBAN, OPENDATA], sources, clusters)
    assert waiting(outcome) and "city/opendata files" in outcome.message
    assert outcome.promotion_tokens == {}, "tokens count only once the whole final sync is done"
    sources[("city", "opendata-files")] = {"status": {"lastManualSync": "sw-1"}}
    outcome = progress.final_sync("sw-1", "danang", [VANBAN, OPENDATA], sources, clusters)
    assert done(outcome) and outcome.promotion_tokens == {("city", "vanban"): "dG9rZW4="}


def test_promotion_waits_for_the_role_and_for_each_database_to_take_its_token() -> None:
    active = SiteState(Role.ACTIVE, 2, "quangnam", "Active", "holds the witness Lease")
    tokens = {("city", "vanban"): "dG9rZW4="}
    primary = {"spec": {"replica": {"primary": "vanban-db-quangnam"}}, "status": {}}
    clusters = {("city", "vanban-db-quangnam"): primary}

    def promote(state: SiteState) -> Outcome:
        return progress.promote(
            "quangnam", 2, view(state=state), [VANBAN, OPENDATA], tokens=tokens, clusters=clusters
        )

    assert waiting(promote(STANDBY)) and "Standby at epoch 1" in promote(STANDBY).message
    assert waiting(promote(active)) and "city/vanban" in promote(active).message
    primary["status"] = {"lastPromotionToken": "dG9rZW4="}
    assert done(promote(active))


def test_redirect_waits_for_the_record_here_and_its_withdrawal_at_the_source() -> None:
    here: dict[progress.Key, Any] = {}
    there: dict[progress.Key, Any] = {("city", "vanban"): {}}
    services = [VANBAN, OPENDATA]
    assert "DNS records at quangnam" in progress.redirect("quangnam", "danang", services, here, there).message
    here[("city", "vanban")] = {}
    assert "danang to withdraw" in progress.redirect("quangnam", "danang", services, here, there).message
    assert done(progress.redirect("quangnam", "danang", services, here, {}))
    gone = progress.redirect("quangnam", "danang", services, here, None)
    assert done(gone) and "cannot be asked" in gone.message


def test_verify_needs_every_service_ready_and_active_here_at_the_new_epoch() -> None:
    ready = [{"type": "Ready", "status": "True"}]
    body = service("vanban")
    body["status"] = {"site": "quangnam", "role": "Active", "epoch": 1, "conditions": ready}
    assert waiting(progress.verify("quangnam", 2, [body]))
    body["status"]["epoch"] = 2
    assert done(progress.verify("quangnam", 2, [body]))


def test_the_rto_counts_from_the_sources_last_sight_as_active_or_for_a_switchover_from_its_fencing() -> None:
    t0 = datetime.datetime(2026, 11, 24, 8, 0, tzinfo=datetime.UTC)
    fence, end = t0 + datetime.timedelta(seconds=30), t0 + datetime.timedelta(seconds=34.5)
    steps = [StepStatus(name=StepName.FENCE_SOURCE, state=StepState.SUCCEEDED, start_time=fence)]
    status = FailoverStatus(source_last_active_time=t0, steps=steps)
    assert progress.recovery_seconds(FailoverType.FAILOVER, status, end) == 34.5
    assert progress.recovery_seconds(FailoverType.SWITCHOVER, status, end) == 4.5
    unseen = status.model_copy(update={"source_last_active_time": None})
    assert progress.recovery_seconds(FailoverType.FAILOVER, unseen, end) is None


def topology(**policy: Any) -> Topology:
    ref = {"name": "peer", "namespace": "sharedcore-system"}
    return Topology.model_validate(
        {
            "apiVersion": "sharedcore.danang.gov.vn/v1alpha1",
            "kind": "Topology",
            "metadata": {"name": "default"},
            "spec": {
                "sites": [
                    {"name": n, "kubeconfigSecretRef": ref, "ingressAddress": f"203.0.113.{i}"}
                    for i, n in enumerate(("danang", "quangnam"), start=10)
                ],
                "preferredPrimary": "danang",
                "witness": {"kubeconfigSecretRef": ref},
                "failover": {"mode": "Automatic", "leaseDurationSeconds": 15, **policy},
            },
        }
    )


def test_a_failed_automatic_failover_is_tried_again_for_its_epoch_after_a_growing_pause() -> None:
    """A run at a load of 25: the active site flapped, the standby's automatic failover of the next epoch
    failed its preconditions (DataLossNotAccepted), and when the site was lost for real a minute later no
    failover followed: one attempt per epoch, never again. A failed one is now tried again after 60 s, then
    120, 240, … up to 15 minutes; never while one is under way or after one succeeded."""
    due = triggers.Due("failover", FailoverType.FAILOVER, "AutomaticFailover: danang has been silent")
    t0 = datetime.datetime(2026, 11, 29, 2, 0, tzinfo=datetime.UTC)

    def ended(name: str, phase: str, seconds: float) -> dict[str, Any]:
        stamp = (t0 + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"metadata": {"name": name}, "status": {"phase": phase, "completionTime": stamp}}

    def at(seconds: float, *existing: dict[str, Any]) -> str | None:
        known = {b["metadata"]["name"]: b for b in existing}
        body = triggers.attempt(due, "quangnam", 2, known, t0 + datetime.timedelta(seconds=seconds))
        return None if body is None else str(body["metadata"]["name"])

    first = "automatic-failover-epoch-2"
    assert at(0) == first
    failed = ended(first, "Failed", 0)
    assert at(59, failed) is None
    assert at(60, failed) == f"{first}-retry-1"
    again = ended(f"{first}-retry-1", "Failed", 70)
    assert at(189, failed, again) is None and at(190, failed, again) == f"{first}-retry-2"
    running = {"metadata": {"name": f"{first}-retry-1"}, "status": {"phase": "Running"}}
    assert at(1000, failed, running) is None
    assert at(1000, ended(first, "Succeeded", 0)) is None
    many = [ended(first if n == 0 else f"{first}-retry-{n}", "Failed", 0) for n in range(12)]
    assert at(899, *many) is None and at(900, *many) == f"{first}-retry-12"


def test_automatic_failover_needs_the_lease_lapsed_and_the_active_site_silent_or_not_active() -> None:
    auto = topology()
    lost = {"peer_current": False, "peer_silent_seconds": 16.0, "witness_lapsed": True}
    due = triggers.automatic_failover("quangnam", view(**lost), auto)
    assert due is not None and due.type is FailoverType.FAILOVER
    assert (
        due.reason == "AutomaticFailover: danang has been silent for 16s and nobody holds the witness Lease"
    )
    body = due.failover("quangnam", 2)
    assert body["metadata"]["name"] == "automatic-failover-epoch-2"
    assert body["spec"] == {"targetSite": "quangnam", "type": "Failover", "reason": due.reason}
    fenced = triggers.automatic_failover("quangnam", view(peer_role=Role.FENCED, witness_lapsed=True), auto)
    assert fenced is not None and "reports itself Fenced" in fenced.reason
    # Not while the Lease is held, nor while the active site is heard from and Active, nor without the
    # witness, nor in manual mode, nor at the active site.
    assert triggers.automatic_failover("quangnam", view(**(lost | {"witness_lapsed": False})), auto) is None
    assert triggers.automatic_failover("quangnam", view(witness_lapsed=True), auto) is None
    unreachable = lost | {"witness": WitnessView(False, DANANG_1)}
    assert triggers.automatic_failover("quangnam", view(**unreachable), auto) is None
    assert triggers.automatic_failover("quangnam", view(**lost), topology(mode="Manual")) is None
    assert triggers.failover_due("quangnam", view(**lost), topology(mode="Manual")) == due  # recommended
    active = SiteState(Role.ACTIVE, 1, "quangnam", "Active", "")
    assert triggers.automatic_failover("quangnam", view(state=active, **lost), auto) is None


@pytest.mark.parametrize("healthy", [True, False])
def test_automatic_failback_after_the_hold_time_of_being_caught_up(healthy: bool) -> None:
    back = topology(failback="Automatic", failbackHoldSeconds=60)
    standby = SiteState(Role.STANDBY, 2, "quangnam", "Standby", "")
    condition = [{"type": "ReplicationHealthy", "status": "True" if healthy else "False"}]
    services = [{"metadata": {"namespace": "city", "name": "vanban"}, "status": {"conditions": condition}}]
    caught_up = triggers.caught_up("danang", view(state=standby), back, services)
    assert caught_up is healthy
    assert triggers.caught_up("quangnam", view(state=standby), back, services) is False  # not preferred
    clock = triggers.HealthyClock()
    assert clock.held(caught_up, 100.0) == (0.0 if healthy else None)
    assert triggers.automatic_failback("danang", back, clock.held(caught_up, 130.0)) is None
    due = triggers.automatic_failback("danang", back, clock.held(caught_up, 161.0))
    assert (due is not None) is healthy
    if due is not None:
        assert due.type is FailoverType.SWITCHOVER
        assert due.failover("danang", 3)["metadata"]["name"] == "automatic-failback-epoch-3"
    assert clock.held(False, 170.0) is None and clock.held(True, 171.0) == 0.0  # a break starts it again
    assert triggers.automatic_failback("danang", topology(), 1000.0) is None  # failback Manual


def test_a_failover_overtaken_by_a_later_epoch_ends_superseded_and_departing_services_are_not_moved() -> None:
    assert progress.superseded("quangnam", 2, view()) is None
    later = progress.superseded("quangnam", 2, view(peer_claim=Claim(3, "danang")))
    assert later is not None and (later.state.value, later.reason) == ("Failed", "Superseded")
    # Its source took this very epoch back while this site was silent: the Failover cannot resume.
    taken = progress.superseded("quangnam", 2, view(peer_claim=Claim(2, "danang")))
    assert taken is not None and taken.reason == "Superseded" and "danang took epoch 2" in taken.message
    assert progress.superseded("quangnam", 2, view(peer_claim=Claim(2, "quangnam"))) is None  # its own
    leaving = service("old")
    leaving["metadata"]["deletionTimestamp"] = "2026-11-24T08:00:00Z"
    assert progress.moving([leaving, service("vanban")]) == [service("vanban")]


def test_automatic_failover_judges_silence_by_the_longer_of_the_sites_lease_durations() -> None:
    """Rule 2: danang renews with a longer lease than this site's; silence is judged by the longer one."""
    auto = topology()  # leaseDurationSeconds 15 here
    silent = {"peer_current": False, "peer_silent_seconds": 16.0, "witness_lapsed": True}
    assert triggers.automatic_failover("quangnam", view(takeover_seconds=20.0, **silent), auto) is None
    longer = silent | {"peer_silent_seconds": 21.0}
    assert triggers.automatic_failover("quangnam", view(takeover_seconds=20.0, **longer), auto) is not None


def test_a_source_fenced_for_a_handover_this_site_withdrew_is_not_a_reason_to_fail_over() -> None:
    """Rule 4: the source let go of the witness Lease for a switchover that was withdrawn; until it has taken
    its role back it reports itself Fenced, handing over: that is no failure of the site."""
    auto = topology()
    handing_over = view(peer_role=Role.FENCED, peer_reason="HandingOver", witness_lapsed=True)
    assert triggers.automatic_failover("quangnam", handing_over, auto) is None
    lost_witness = view(peer_role=Role.FENCED, peer_reason="WitnessUnreachable", witness_lapsed=True)
    assert triggers.automatic_failover("quangnam", lost_witness, auto) is not None
    # Silent for a lease, it is gone, whatever it said last.
    gone = view(
        peer_role=Role.FENCED,
        peer_reason="HandingOver",
        witness_lapsed=True,
        peer_current=False,
        peer_silent_seconds=16.0,
    )
    assert triggers.automatic_failover("quangnam", gone, auto) is not None


def test_a_source_that_answers_is_fenced_only_once_its_databases_are_demoted_and_records_withdrawn() -> None:
    """Rule 5: a fence is a fence: the source saying it is fenced (or the witness Lease lapsing) is not
    enough while its database still writes or its DNS record still draws traffic."""
    services = [VANBAN, OPENDATA]
    cluster = {"metadata": {"namespace": "city", "name": "vanban-db-danang"}}
    primary = cluster | {"spec": {"replica": {"primary": "vanban-db-danang", "self": "vanban-db-danang"}}}
    demoting = cluster | {"spec": {"replica": {"primary": "vanban-db-quangnam", "self": "vanban-db-danang"}}}
    demoted = demoting | {"status": {"demotionToken": "dG9rZW4="}}
    record = {("city", "vanban"): {"metadata": {"namespace": "city", "name": "vanban"}}}
    fenced_view = view(peer_role=Role.FENCED, witness=WitnessView(True, None), witness_lapsed=True)

    def fence(failover_type: FailoverType, there: progress.SourcePlane | None) -> Outcome:
        return progress.fence_source(failover_type, "danang", 2, fenced_view, services=services, there=there)

    for failover_type in (FailoverType.FAILOVER, FailoverType.SWITCHOVER):
        still = fence(failover_type, progress.SourcePlane(progress.by_key([primary]), record))
        assert waiting(still) and "vanban" in still.message
        half = fence(failover_type, progress.SourcePlane(progress.by_key([demoting]), {}))
        assert waiting(half) and "database" in half.message
        records = fence(failover_type, progress.SourcePlane(progress.by_key([demoted]), record))
        assert waiting(records) and "DNS" in records.message
        assert done(fence(failover_type, progress.SourcePlane(progress.by_key([demoted]), {})))
    # A source that cannot be asked: the lapsed witness Lease is the proof, as before.
    assert done(fence(FailoverType.FAILOVER, None))
