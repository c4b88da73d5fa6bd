"""Copies kept at a site that is not active: the data of a SharedService deleted there (or no longer
rendered), and the Secrets whose source was deleted at the active site.

Deleting at the active site never deletes the copy: the copy exists to survive mistakes made there. Such
objects are labelled, say when, where and why they were kept, and go only when a person at that site says so
(`kubectl sharedcore release-copy`). A retained copy is taken back only by a copy of the same object at the
active site (a copy deleted at the standby alone, or lost with a CRD reinstall there): any other SharedService
of the same name stalls until a person either releases the copy or removes the label to reuse it.
"""

import datetime

from sharedcore import API_GROUP, Body
from sharedcore.kube.times import rfc3339

LABEL = f"{API_GROUP}/retained-copy"
SINCE = f"{API_GROUP}/retained-since"
BECAUSE = f"{API_GROUP}/retained-because"
ORIGIN = f"{API_GROUP}/retained-origin-uid"  # the active site's object the service was a copy of
ANNOTATIONS = (SINCE, BECAUSE, ORIGIN)


def marks(because: str, at: datetime.datetime, origin: str | None = None) -> Body:
    """The metadata (of a merge patch) that makes an object a retained copy; `because` says where and why,
    `origin` which object at the active site the deleted service was a copy of."""
    since = rfc3339(at)
    annotations = {SINCE: since, BECAUSE: because} | ({ORIGIN: origin} if origin else {})
    return {"labels": {LABEL: "true"}, "annotations": annotations}


def unmarks() -> Body:
    """The metadata merge patch that makes a retained copy an ordinary object again."""
    return {"labels": {LABEL: None}, "annotations": dict.fromkeys(ANNOTATIONS)}


def is_retained(obj: Body) -> bool:
    return (obj["metadata"].get("labels") or {}).get(LABEL) == "true"
