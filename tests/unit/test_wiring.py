"""How the operator configures Kopf (`sharedcore.wiring.configure`)."""

from typing import cast

import kopf

from sharedcore import API_GROUP, API_VERSION
from sharedcore.wiring import configure


def test_kopf_tracks_no_changes() -> None:
    """Kopf deep-copied every watched object's body on every event to compare it with the last one handled,
    and patched each new SharedService to record it; sharedcore has no handler that compares (only a
    deletion handler): every essence is the same, so Kopf sees nothing created or updated to record."""
    settings = kopf.OperatorSettings()
    configure(settings)
    storage = settings.persistence.diffbase_storage
    for kind, api_version in (("Deployment", "apps/v1"), ("SharedService", f"{API_GROUP}/{API_VERSION}")):
        body = kopf.Body(
            cast(
                kopf.RawBody,
                {
                    "apiVersion": api_version,
                    "kind": kind,
                    "metadata": {"name": "web", "namespace": "x", "labels": {"a": "b"}},
                    "spec": {"replicas": 2},
                },
            )
        )
        assert storage.fetch(body=body) == storage.build(body=body) == {}
