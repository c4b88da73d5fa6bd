"""The operator's /metrics endpoint (`sharedcore.runner.metrics`)."""

import asyncio

from aiohttp.test_utils import make_mocked_request

from sharedcore.metrics import SITE_ROLE
from sharedcore.runner import metrics


def test_metrics_names_restrict_the_exposition() -> None:
    """`name[]` asks for some families only, as Prometheus clients allow: the role sampler of the tests and
    benchmarks asks ten times a second for the site's role, which the whole exposition (every service's
    series) made cost the operator more than its own reconciling during a failover."""
    SITE_ROLE.labels("danang", "Active").set(1)
    whole = asyncio.run(metrics(make_mocked_request("GET", "/metrics"))).body
    only = asyncio.run(metrics(make_mocked_request("GET", "/metrics?name[]=sharedcore_site_role"))).body
    assert isinstance(whole, bytes) and isinstance(only, bytes)
    assert b"sharedcore_site_role{" in only
    assert {
        line.split("{")[0].split(" ")[0] for line in only.decode().splitlines() if not line.startswith("#")
    } == {"sharedcore_site_role"}
    assert len(only) < len(whole)
