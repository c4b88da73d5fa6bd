"""Kubernetes Events for the transitions people care about (never for routine, unchanged reconciles)."""

import logging
import uuid
from typing import Any

from sharedcore.kube.client import ApiError, KubeClient, namespace_terminating
from sharedcore.kube.resources import EVENTS
from sharedcore.kube.times import rfc3339

COMPONENT = "sharedcore"
MAX_NAME, SUFFIX = 253, 12
log = logging.getLogger(__name__)


def _now() -> str:
    return rfc3339()


def _event_name(name: str) -> str:
    """The object's name and a random suffix, within the 253 characters of a name (the object's own may
    use them all), and still a DNS subdomain (no `.` or `-` before the suffix's dot)."""
    return f"{name[: MAX_NAME - SUFFIX - 1].rstrip('.-')}.{uuid.uuid4().hex[:SUFFIX]}"


class EventRecorder:
    def __init__(self, client: KubeClient, site: str) -> None:
        self._client = client
        self._site = site

    async def record(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Post a core/v1 Event about obj. Failing to post is logged, never fatal: events are best effort."""
        metadata = obj["metadata"]
        namespace = metadata.get("namespace") or "default"
        now = _now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": _event_name(metadata["name"]), "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": metadata["name"],
                "namespace": metadata.get("namespace"),
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": COMPONENT, "host": self._site},
            "reportingComponent": COMPONENT,
            "reportingInstance": f"{COMPONENT}-{self._site}",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        log.log(
            logging.WARNING if type_ == "Warning" else logging.INFO,
            "%s %s/%s: %s: %s",
            obj["kind"],
            namespace,
            metadata["name"],
            reason,
            message,
        )
        try:
            await self._client.create(EVENTS, event)
        except ApiError as error:
            if not namespace_terminating(error):
                log.warning("could not post event %s: %s", reason, error)
        except OSError as error:
            log.warning("could not post event %s: %s", reason, error)
