"""An API server in memory, with `KubeClient`'s methods: for unit tests of the I/O shells (the reconcile, the
site's tick, the Failover executor's pass), so that a mistake in the glue shows in seconds.

It keeps objects by kind, namespace and name with a resourceVersion, applies like a server-side apply that
owns every field it is given (the rest, such as the status, is kept), merge-patches, records every write, and
watches one object by name.
"""

import asyncio
import copy
import itertools
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from sharedcore.kube.client import ApiError
from sharedcore.kube.resources import Resource, for_object

Body = dict[str, Any]
Key = tuple[str, str, str]  # (kind, namespace, name)


def _merge(base: Body, patch: Mapping[str, Any]) -> Body:
    """RFC 7386: null removes, objects merge, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[Key, Body] = {}
        self.writes: list[tuple[str, str, str]] = []  # (verb, kind, name)
        self._versions = itertools.count(1)
        self._watchers: list[tuple[Key, asyncio.Queue[Body]]] = []

    def add(self, obj: Body) -> Body:
        """Put an object in place without counting it as a write (the test's setup)."""
        stored = self._store(copy.deepcopy(obj))
        return copy.deepcopy(stored)

    def find(self, kind: str, name: str, namespace: str = "") -> Body | None:
        return self.objects.get((kind, namespace, name))

    def of_kind(self, kind: str) -> list[Body]:
        return [obj for (k, _, _), obj in self.objects.items() if k == kind]

    def _store(self, obj: Body) -> Body:
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self._versions))
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("generation", 1)
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        self.objects[key] = obj
        for watched, queue in self._watchers:
            if watched == key:
                queue.put_nowait(copy.deepcopy(obj))
        return obj

    def _wrote(self, verb: str, kind: str, name: str) -> None:
        self.writes.append((verb, kind, name))

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> Body | None:
        found = self.objects.get((resource.kind, namespace or "", name))
        return copy.deepcopy(found) if found else None

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> list[Body]:
        """`fields`: metadata.name only (what the operator selects on)."""
        assert set(fields or {}) <= {"metadata.name"}, fields
        return [
            copy.deepcopy(obj)
            for (kind, ns, name), obj in self.objects.items()
            if kind == resource.kind
            and (namespace is None or ns == namespace)
            and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in (labels or {}).items())
            and (fields or {}).get("metadata.name", name) == name
        ]

    async def apply(self, obj: Body, *, dry_run: bool = False) -> Body:
        for_object(obj)  # a kind sharedcore does not know fails as it would against a server
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        current = self.objects.get(key)
        merged = _merge(current, obj) if current else copy.deepcopy(obj)
        if dry_run:
            return merged
        self._wrote("apply", obj["kind"], meta["name"])
        return copy.deepcopy(self._store(merged))

    async def create(self, resource: Resource, obj: Body, *, dry_run: bool = False) -> Body:
        meta = obj["metadata"]
        name = meta.get("name") or f"{meta['generateName']}{next(self._versions)}"
        if (resource.kind, meta.get("namespace", ""), name) in self.objects:
            raise ApiError(409, "AlreadyExists", f"{resource.kind} {name} already exists")
        created = copy.deepcopy(obj) | {"metadata": {**meta, "name": name}}
        created.setdefault("kind", resource.kind)
        created.setdefault("apiVersion", resource.api_version)
        self._wrote("create", resource.kind, name)
        return copy.deepcopy(self._store(created))

    async def patch(
        self,
        resource: Resource,
        name: str,
        namespace: str | None,
        patch: Body,
        subresource: str | None = None,
    ) -> Body:
        key = (resource.kind, namespace or "", name)
        if key not in self.objects:
            raise ApiError(404, "NotFound", f"{resource.kind} {name} not found")
        self._wrote("patch" if subresource is None else f"patch {subresource}", resource.kind, name)
        return copy.deepcopy(self._store(_merge(self.objects[key], patch)))

    async def delete(self, resource: Resource, name: str, namespace: str | None = None) -> bool:
        gone = self.objects.pop((resource.kind, namespace or "", name), None)
        if gone is not None:
            self._wrote("delete", resource.kind, name)
        return gone is not None

    async def watch(
        self, resource: Resource, namespace: str, name: str, since: str | None = None
    ) -> AsyncGenerator[tuple[str, Body], None]:
        """The object as it is (if it exists), then every write of it, until the watcher stops."""
        key, queue = (resource.kind, namespace, name), asyncio.Queue[Body]()
        self._watchers.append((key, queue))
        try:
            if (current := self.objects.get(key)) is not None:
                yield "ADDED", copy.deepcopy(current)
            while True:
                yield "MODIFIED", await queue.get()
        finally:
            self._watchers.remove((key, queue))

    async def close(self) -> None:
        return None
