"""Kubernetes' times (metav1.Time: RFC 3339), read from the objects' bodies."""

import datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # metav1.Time: UTC, to the second


def rfc3339(moment: datetime.datetime | None = None) -> str:
    """`moment` (by default now) as metav1.Time."""
    return (moment or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC).strftime(FORMAT)


def parse_time(value: object) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
