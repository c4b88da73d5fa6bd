"""Kubernetes' times (metav1.Time: RFC 3339), written and read in objects' bodies; metav1.MicroTime, which
the models carry too, is `api.formats.micro_time`."""

import datetime

from sharedcore.api.formats import TIME


def rfc3339(moment: datetime.datetime | None = None) -> str:
    """`moment` (by default now) as metav1.Time."""
    return (moment or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC).strftime(TIME)


def parse_time(value: object) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
