"""Events about objects with the longest names the API allows still have valid names."""

import asyncio
import re
from typing import Any

from sharedcore.kube.events import EventRecorder

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class Capture:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    async def create(self, _: object, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body)
        return body


def test_an_event_about_a_service_with_a_253_character_name_has_a_valid_name() -> None:
    name = ("a" * 62 + ".") * 3 + "b" * 64  # 253 characters, a valid DNS subdomain
    assert len(name) == 253 and DNS_SUBDOMAIN.match(name)
    service = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "egov"}}
    capture = Capture()
    recorder = EventRecorder(capture, "danang")  # type: ignore[arg-type]
    asyncio.run(recorder.record(service, "Normal", "Test", "a long name"))
    asyncio.run(
        recorder.record(
            {**service, "metadata": {**service["metadata"], "name": name[:241]}}, "Normal", "T", "m"
        )
    )
    for event in capture.created:
        event_name = event["metadata"]["name"]
        assert len(event_name) <= 253 and DNS_SUBDOMAIN.match(event_name), event_name
        assert event["involvedObject"]["name"] in (name, name[:241])
