"""What the operator has seen of the objects it manages, kept current by Kopf's watch events.

Reconciles read from here instead of the API server, so a resync of an unchanged service costs no request.
"""

from sharedcore import API_GROUP, Body

SERVICE_LABEL = f"{API_GROUP}/service"
ObjectKey = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name)


def key_of(obj: Body) -> ObjectKey:
    metadata = obj["metadata"]
    return obj["apiVersion"], obj["kind"], metadata.get("namespace", ""), metadata["name"]


def _revision(obj: Body) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion", 0))
    except (TypeError, ValueError):
        return 0


class ObjectCache:
    def __init__(self) -> None:
        self._objects: dict[ObjectKey, Body] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def get(self, key: ObjectKey) -> Body | None:
        return self._objects.get(key)

    def upsert(self, obj: Body) -> None:
        """Keep the newest revision: a priming list and the watch may deliver the same object out of order.

        managedFields are dropped: often the largest part of an object, and never read here.
        """
        key = key_of(obj)
        known = self._objects.get(key)
        if known is None or _revision(obj) >= _revision(known):
            obj["metadata"].pop("managedFields", None)
            self._objects[key] = obj

    def remove(self, obj: Body) -> None:
        self._objects.pop(key_of(obj), None)

    def owned_by(self, namespace: str, service: str) -> list[Body]:
        """Objects labelled as rendered for this service (the prune candidates)."""
        return [
            obj
            for (_, _, ns, _), obj in self._objects.items()
            if ns == namespace and obj["metadata"].get("labels", {}).get(SERVICE_LABEL) == service
        ]
