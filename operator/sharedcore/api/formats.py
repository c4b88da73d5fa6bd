"""String formats of the API: each is one pattern that pydantic enforces and the CRDs carry.

The patterns stay within what Go's RE2 (the API server), Rust's regex (pydantic) and ECMAScript agree on:
no lookaround, no backreferences.
"""

from __future__ import annotations

import datetime
import re
from typing import Annotated

from pydantic import AwareDatetime, Field, PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticKnownError

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL = rf"^{_LABEL}$"
DNS_SUBDOMAIN = rf"^{_LABEL}(\.{_LABEL})*$"

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# A hostname's last label starts with a letter, so "10.0.0.256" is neither an address nor a name.
HOST = rf"^({_OCTET}(\.{_OCTET}){{3}}|({_LABEL}\.)*[a-z]([-a-z0-9]*[a-z0-9])?)$"

_PORT = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
# A DNS server: an address or a host name as HOST, and optionally ":port" (53 when absent).
DNS_SERVER = rf"{HOST[:-1]}(:{_PORT})?$"

# A host name, or "*." and a domain: any name below it.
HOST_PATTERN = rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$"
HTTPS_URL = r"^https://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?(/\S*)?$"
IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
IMAGE_REPOSITORY = r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
LICENSE = r"^[A-Za-z0-9][A-Za-z0-9.+-]*$"
BANDWIDTH = r"^[1-9][0-9]{0,5}(Mbps|Gbps)$"
ISO_DATE = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
URL_PATH = r"^/[-A-Za-z0-9._~/]*$"
TIME = "%Y-%m-%dT%H:%M:%SZ"  # metav1.Time: UTC, to the second
MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"  # metav1.MicroTime: UTC, always six digits of microseconds


def _cron_field(value: str) -> str:
    item = rf"(\*|{value}(-{value})?)(/[1-9][0-9]?)?"
    return rf"{item}(,{item})*"


# minute, hour, day of month, month, day of week (0 and 7 are Sunday)
_CRON_VALUES = (
    r"([1-5]?[0-9])",
    r"(1?[0-9]|2[0-3])",
    r"([1-9]|[12][0-9]|3[01])",
    r"([1-9]|1[0-2])",
    r"[0-7]",
)
CRON = "^" + " ".join(_cron_field(value) for value in _CRON_VALUES) + "$"

# Kubernetes' quantity regex without its sign: a size is never negative.
_DECIMAL = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
QUANTITY = rf"^{_DECIMAL}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_DECIMAL}))?$"
_QUANTITY_RE = re.compile(QUANTITY)

DnsLabel = Annotated[str, Field(max_length=63, pattern=DNS_LABEL)]
DnsSubdomain = Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN)]
Host = Annotated[str, Field(max_length=253, pattern=HOST)]
HostPattern = Annotated[str, Field(max_length=253, pattern=HOST_PATTERN)]
DnsServer = Annotated[str, Field(max_length=259, pattern=DNS_SERVER)]
HttpsUrl = Annotated[str, Field(max_length=2048, pattern=HTTPS_URL)]
SecretKey = Annotated[str, Field(max_length=253, pattern=SECRET_KEY)]
ImageRepository = Annotated[str, Field(max_length=255, pattern=IMAGE_REPOSITORY)]


def _quantity(value: object) -> str:
    """Like the API server's int-or-string: integers are checked against minimum 1, strings against the
    regex. Integers become strings so that consumers handle one type."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PydanticKnownError("greater_than_equal", {"ge": 1})
        return str(value)
    if not isinstance(value, str):
        raise PydanticKnownError("string_type")
    if not _QUANTITY_RE.match(value):
        raise PydanticKnownError("string_pattern_mismatch", {"pattern": QUANTITY})
    return value


Quantity = Annotated[
    str,
    PlainValidator(_quantity),
    WithJsonSchema({"x-kubernetes-int-or-string": True, "pattern": QUANTITY, "minimum": 1}),
]


def micro_time(moment: datetime.datetime) -> str:
    """`moment` as metav1.MicroTime (a Lease's renewTime, a heartbeat time in a status)."""
    return moment.astimezone(datetime.UTC).strftime(MICRO_TIME)


# A date-time in the CRD, written as Kubernetes writes a metav1.MicroTime (pydantic would drop zero digits).
MicroTime = Annotated[AwareDatetime, PlainSerializer(micro_time, return_type=str, when_used="json")]
