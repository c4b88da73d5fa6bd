"""The CloudNativePG double plays the documented switchover handshake faithfully enough to test against."""

from typing import Any

from tests.support.dataplane import cnpg_status, demotion_token


def cluster(name: str, primary: str, source: str, token: str | None = None) -> dict[str, Any]:
    replica: dict[str, Any] = {"primary": primary, "self": name, "source": source}
    if token:
        replica["promotionToken"] = token
    return {"metadata": {"name": name}, "spec": {"instances": 1, "replica": replica}}


def test_a_demoted_primary_publishes_a_token_and_a_replica_never_primary_does_not() -> None:
    demoted = cluster("vanban-db-danang", "vanban-db-quangnam", "vanban-db-quangnam")
    assert cnpg_status(demoted, was_primary=True)["demotionToken"] == demotion_token("vanban-db-danang")
    assert "demotionToken" not in cnpg_status(demoted, was_primary=False)


def test_promotion_needs_the_token_of_the_cluster_it_replicated_from() -> None:
    name, source = "vanban-db-quangnam", "vanban-db-danang"
    promoted = cnpg_status(cluster(name, name, source, demotion_token(source)), was_primary=False)
    assert promoted["lastPromotionToken"] == demotion_token(source)
    foreign = cnpg_status(cluster(name, name, source, demotion_token("other-db")), was_primary=False)
    assert "lastPromotionToken" not in foreign
    assert "lastPromotionToken" not in cnpg_status(cluster(name, name, source), was_primary=False)
