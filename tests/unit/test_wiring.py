"""How the operator configures Kopf (`sharedcore.wiring.configure`)."""

from typing import Any, cast

import kopf

from sharedcore import API_GROUP, API_VERSION
from sharedcore.wiring import configure


def test_kopf_builds_the_essence_of_shared_services_only() -> None:
    """Kopf deep-copies every watched object's body on every event to compare it with the last one handled;
    only SharedServices have handlers that compare (deletion), so for the rest the copy is skipped."""
    settings = kopf.OperatorSettings()
    configure(settings)
    storage = settings.persistence.diffbase_storage
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "x", "labels": {"a": "b"}},
        "spec": {"replicas": 2},
        "status": {"availableReplicas": 2},
    }
    assert storage.build(body=kopf.Body(cast(kopf.RawBody, deployment))) == {}
    service: dict[str, Any] = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "SharedService",
        "metadata": {"name": "portal", "namespace": "x"},
        "spec": {"platform": "OpenData"},
        "status": {"role": "Active"},
    }
    assert storage.build(body=kopf.Body(cast(kopf.RawBody, service)))["spec"] == {"platform": "OpenData"}
