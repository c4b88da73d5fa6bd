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


def _service(obj: Body) -> tuple[str, str] | None:
    service = (obj["metadata"].get("labels") or {}).get(SERVICE_LABEL)
    return (obj["metadata"].get("namespace", ""), service) if service else None


class ObjectCache:
    def __init__(self) -> None:
        self._objects: dict[ObjectKey, Body] = {}
        # The keys by (namespace, service label): a reconcile looks up its own, not all of them.
        self._by_service: dict[tuple[str, str], set[ObjectKey]] = {}

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
            self.remove(obj)
            self._objects[key] = obj
            if (service := _service(obj)) is not None:
                self._by_service.setdefault(service, set()).add(key)

    def remove(self, obj: Body) -> None:
        key = key_of(obj)
        known = self._objects.pop(key, None)
        service = _service(known) if known is not None else None
        if service is not None and (keys := self._by_service.get(service)) is not None:
            keys.discard(key)
            if not keys:
                del self._by_service[service]

    def owned_by(self, namespace: str, service: str) -> list[Body]:
        """Objects labelled as rendered for this service (the prune candidates)."""
        return [self._objects[key] for key in sorted(self._by_service.get((namespace, service), ()))]

    def of_kind(self, api_version: str, kind: str) -> list[Body]:
        return [
            obj for (version, k, _, _), obj in self._objects.items() if (version, k) == (api_version, kind)
        ]
