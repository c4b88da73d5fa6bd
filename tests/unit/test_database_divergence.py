"""A standby's database follows the new primary where it stands only after CloudNativePG's handshake."""

from typing import Any

import pytest

from sharedcore.api import Role
from sharedcore.replication.diverged import EPOCH_LABEL, ROLE_LABEL, Verdict, verdict


def cluster(name: str, role: str, epoch: int, primary: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {ROLE_LABEL: role, EPOCH_LABEL: str(epoch)}},
        "spec": {"replica": {"self": name, "primary": primary, **status.pop("spec", {})}},
        "status": status,
    }


OWN, PEER = "db-danang", "db-quangnam"


def peer(token: str | None = None, primary: str = PEER) -> dict[str, Any]:
    spec = {"promotionToken": token} if token else {}
    return cluster(PEER, "Active", 4, primary, spec=spec)


@pytest.mark.parametrize("role", ["Active", "Fenced"])
def test_a_former_primary_promoted_over_without_its_token_diverged(role: str) -> None:
    own = cluster(OWN, role, 3, OWN if role == "Active" else PEER, demotionToken="T-old")
    found, why = verdict(own, peer(), Role.STANDBY, 4)
    assert found is Verdict.DIVERGED
    assert "without its demotion token" in why and "epoch 3" in why


def test_a_switchover_source_follows_where_it_stands() -> None:
    own = cluster(OWN, "Fenced", 3, PEER, demotionToken="T")
    assert verdict(own, peer("T"), Role.STANDBY, 4)[0] is Verdict.FOLLOWS
    promoted = peer()
    promoted["status"]["lastPromotionToken"] = "T"
    assert verdict(own, promoted, Role.STANDBY, 4)[0] is Verdict.FOLLOWS


def test_undecided_while_the_peer_cannot_be_read_or_is_not_primary_yet() -> None:
    own = cluster(OWN, "Active", 3, OWN)
    assert verdict(own, None, Role.STANDBY, 4)[0] is Verdict.UNKNOWN
    assert verdict(own, peer(primary=OWN), Role.STANDBY, 4)[0] is Verdict.UNKNOWN


@pytest.mark.parametrize(
    ("role", "epoch", "site_role"),
    [
        ("Standby", 3, Role.STANDBY),  # a replica all along
        ("Fenced", 4, Role.STANDBY),  # a standby fenced for a while at the same epoch: nothing moved
        ("Fenced", 0, Role.STANDBY),  # created before the pair first agreed (seen: a rebuild at bootstrap)
        ("Active", 3, Role.ACTIVE),  # not a standby: nothing to follow
        ("Active", 3, Role.FENCED),
    ],
)
def test_nothing_to_decide(role: str, epoch: int, site_role: Role) -> None:
    assert verdict(cluster(OWN, role, epoch, OWN), None, site_role, 4) == (Verdict.FOLLOWS, "")
