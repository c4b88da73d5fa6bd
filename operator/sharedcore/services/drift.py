"""Does a live object already hold everything we would apply? If so, applying is skipped: no idle writes.

The API server adds defaults (protocol: TCP, imagePullPolicy, …) and other managers add fields, so the test is
containment: every field we render must be present in the live object with the same value. Lists must match
element by element (extra defaulted keys inside elements are fine, extra elements are not), except the lists
another controller's defaulting extends, where ours must appear in order among its additions.
"""

from typing import Any

from sharedcore.replication.diverged import EPOCH_LABEL, ROLE_LABEL

# Server-populated or ours-to-ignore metadata: never compared.
IGNORED_METADATA = frozenset(
    {"ownerReferences", "resourceVersion", "uid", "generation", "creationTimestamp", "managedFields"}
)
# Lists a webhook adds to: CloudNativePG puts its default monitoring queries first (when its operator is
# configured with them).
EXTENDED_LISTS = frozenset({".spec.monitoring.customQueriesConfigMap"})


def _contains(desired: Any, live: Any, path: str) -> str | None:
    """The first path where live differs from desired, or None when desired ⊆ live."""
    if isinstance(desired, dict):
        return _dict_contains(desired, live, path) if isinstance(live, dict) else path or "."
    if isinstance(desired, list):
        if path in EXTENDED_LISTS and isinstance(live, list):
            return None if _in_order(desired, live) else path
        if not isinstance(live, list) or len(live) != len(desired):
            return path
        pairs = zip(desired, live, strict=True)
        return next(
            (
                found
                for index, (want, have) in enumerate(pairs)
                if (found := _contains(want, have, f"{path}[{index}]")) is not None
            ),
            None,
        )
    return None if desired == live else path


def _in_order(desired: list[Any], live: list[Any]) -> bool:
    """Every desired element held by a live one, in the same order (others between them)."""
    remaining = iter(live)
    return all(any(_contains(want, have, "") is None for have in remaining) for want in desired)


def _dict_contains(desired: dict[str, Any], live: dict[str, Any], path: str) -> str | None:
    for key, value in desired.items():
        if path == ".metadata" and key in IGNORED_METADATA:
            continue
        if key not in live:
            if value in ([], {}, None):  # the API server omits empty values (a deny-all `ingress: []`)
                continue
            return f"{path}.{key}"
        if (found := _contains(value, live[key], f"{path}.{key}")) is not None:
            return found
    return None


def drifted_field(desired: dict[str, Any], live: dict[str, Any] | None) -> str | None:
    """Where `live` departs from `desired` (e.g. ".spec.replicas"), "(missing)" if absent, None if in sync."""
    if live is None:
        return "(missing)"
    body = {key: value for key, value in desired.items() if key != "status"}
    return _contains(body, live, "") or _stale_role_label(desired, live)


def _stale_role_label(desired: dict[str, Any], live: dict[str, Any]) -> str | None:
    """A role or epoch label left by an earlier render (only objects whose form depends on the role carry
    them now): applying removes it, where it would otherwise tell a role long gone."""
    wanted = (desired.get("metadata") or {}).get("labels") or {}
    found = (live.get("metadata") or {}).get("labels") or {}
    stale = next((key for key in (ROLE_LABEL, EPOCH_LABEL) if key in found and key not in wanted), None)
    return None if stale is None else f".metadata.labels.{stale}"
