"""Kubernetes-style conditions (metav1.Condition), kept stable so unchanged status means no write."""

from dataclasses import dataclass
from typing import Any

Condition = dict[str, Any]


@dataclass(frozen=True)
class Want:
    """A condition as computed now; `merge` turns it into the stored shape."""

    type: str
    status: bool | None  # None: Unknown
    reason: str
    message: str


def _status(value: bool | None) -> str:
    return "Unknown" if value is None else ("True" if value else "False")


def merge(current: list[Condition], wanted: list[Want], generation: int, now: str) -> list[Condition]:
    """New conditions in `wanted` order; lastTransitionTime moves only when a condition's status flips."""
    previous = {c.get("type"): c for c in current}
    merged = []
    for want in wanted:
        status = _status(want.status)
        old = previous.get(want.type)
        changed = old is None or old.get("status") != status
        merged.append(
            {
                "type": want.type,
                "status": status,
                "reason": want.reason,
                "message": want.message,
                "observedGeneration": generation,
                "lastTransitionTime": now if changed or old is None else old.get("lastTransitionTime", now),
            }
        )
    return merged


def find(conditions: list[Condition] | None, type_: str) -> Condition | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)


def is_true(conditions: list[Condition] | None, type_: str) -> bool:
    condition = find(conditions, type_)
    return bool(condition and condition.get("status") == "True")
