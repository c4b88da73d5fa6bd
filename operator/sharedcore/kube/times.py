"""Kubernetes' times (metav1.Time: RFC 3339), read from the objects' bodies."""

import datetime


def parse_time(value: object) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
