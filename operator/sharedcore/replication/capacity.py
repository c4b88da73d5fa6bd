"""What the two sites can hold: the storage every SharedService commits, against each site's capacity.

Pure: the bodies and the Topology's sites in, the admission out. A service counts at both sites (the standby
holds a full copy): database instances x database.storage, plus files.size. Services already rendered at this
site always count, so raising nothing and lowering a capacity never takes a running service away; the others
are admitted in the order they were created, each only if it fits at every site that declares a capacity.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from math import ceil
from typing import Any

from sharedcore.api import Database, Files, Site

Key = tuple[str, str]  # (namespace, name)
REPORTED_REFUSALS = 64  # what Topology.status.capacity[].refused holds

_BINARY = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")
_SUFFIXES = {
    **{suffix: Decimal(1024) ** power for power, suffix in enumerate(("", *_BINARY))},
    **{suffix: Decimal(1000) ** power for power, suffix in enumerate(("", "k", "M", "G", "T", "P", "E"))},
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
}


@functools.cache
def quantity_bytes(quantity: str) -> int:
    """A Kubernetes quantity (10Gi, 1.5T, 5e3), as the API server validates it, in whole bytes."""
    match = _QUANTITY.match(quantity)
    if match is None:
        raise ValueError(f"not a quantity: {quantity!r}")
    number, suffix = match.groups()
    if suffix[:1] in ("e", "E") and suffix[1:].lstrip("+-").isdigit():
        return ceil(Decimal(number) * Decimal(10) ** int(suffix[1:]))
    return ceil(Decimal(number) * _SUFFIXES[suffix])


def readable(size: int) -> str:
    """Bytes in the largest binary unit that keeps them at 1 or more, to a tenth: 85.5Ti."""
    unit = next((u for u in reversed(_BINARY) if size >= 1024 ** (_BINARY.index(u) + 1)), None)
    if unit is None:
        return str(size)
    value = f"{size / 1024 ** (_BINARY.index(unit) + 1):.1f}".removesuffix(".0")
    return f"{value}{unit}"


_DATABASE, _FILES = Database(), Files()


def storage_bytes(spec: Mapping[str, Any]) -> int:
    """What a service (its stored spec, defaults not necessarily filled in) takes at each site."""
    database, files = spec.get("database") or {}, spec.get("files") or {}
    total = 0
    if database.get("enabled", _DATABASE.enabled):
        instances = int(database.get("instances", _DATABASE.instances))
        total += instances * quantity_bytes(str(database.get("storage", _DATABASE.storage)))
    if files.get("enabled", _FILES.enabled):
        total += quantity_bytes(str(files.get("size", _FILES.size)))
    return total


@dataclass(frozen=True)
class Claim:
    """One service's storage, and whether it is already rendered at this site."""

    key: Key
    storage: int
    created: str  # metadata.creationTimestamp: earlier services are admitted first
    rendered: bool


@dataclass(frozen=True)
class Admission:
    committed: int = 0  # bytes committed at each site by the services counted
    counted: int = 0
    refused: dict[Key, str] = field(default_factory=dict)  # why each refused service does not fit


def capacities(sites: Sequence[Site]) -> dict[str, int]:
    """Each site's declared storage capacity, in bytes; sites without one are left out."""
    return {site.name: quantity_bytes(site.capacity.storage) for site in sites if site.capacity}


def admit(claims: Iterable[Claim], limits: Mapping[str, int]) -> Admission:
    committed, counted, refused = 0, 0, {}
    for claim in sorted(claims, key=lambda claim: (not claim.rendered, claim.created, claim.key)):
        over = ((site, limit) for site, limit in limits.items() if committed + claim.storage > limit)
        full = next(over, None)
        if full is not None and not claim.rendered:
            refused[claim.key] = _refusal(claim.storage, *full, committed, counted)
            continue
        committed, counted = committed + claim.storage, counted + 1
    return Admission(committed, counted, refused)


def _refusal(storage: int, site: str, limit: int, committed: int, counted: int) -> str:
    free = readable(max(limit - committed, 0))
    return (
        f"needs {readable(storage)} of storage at each site (the standby holds a full copy), but {site} can "
        f"hold {readable(limit)} and {counted} services commit {readable(committed)} ({free} free): raise "
        f"the capacity.storage of site {site} in the Topology, or make the service smaller"
    )


def report(admission: Admission, sites: Sequence[Site]) -> list[dict[str, Any]]:
    """Topology.status.capacity: the same commitment at each site, against each one's capacity."""
    refused = sorted(f"{namespace}/{name}" for namespace, name in admission.refused)[:REPORTED_REFUSALS]
    entries = []
    for site in sites:
        entry: dict[str, Any] = {
            "site": site.name,
            "committed": readable(admission.committed),
            "committedBytes": admission.committed,
            "services": admission.counted,
            "refused": refused,
        }
        if site.capacity:
            limit = quantity_bytes(site.capacity.storage)
            used = round(100 * admission.committed / limit, 1)
            entry |= {"storage": site.capacity.storage, "usedPercent": used}
        entries.append(entry)
    return entries
