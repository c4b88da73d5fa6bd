"""The nemesis in CI: short schedules of fixed seeds on the session's sites (kwok), Automatic mode.

`sharedcore_testbed.nemesis` draws episodes of faults from each seed (operators SIGKILLed, also inside a
Failover's steps; sites and the witness stopped or paused; links cut or slowed; an operator's clock skewed;
Failovers of every kind requested, one deleted while it runs) and checks, between episodes and at the end:
never two Active sites (sampled every 100 ms), every Failover ended, convergence, nothing leaked, memory
flat. `bench/nemesis.py` runs the same for as long as you like on a testbed of its own. A violation the
nemesis finds becomes a test here, with its seed.
"""

import contextlib
from collections.abc import Iterator

import pytest

from sharedcore_testbed.nemesis import Nemesis, summary
from sharedcore_testbed.pair import create_services
from tests.conftest import Sites
from tests.support import samples
from tests.support.pair import Pair, running_pair

pytestmark = [pytest.mark.cluster, pytest.mark.workloads]
NAMESPACE = "nemesis"
SLUGS = ("document-management", "open-data", "smart-city")
# Seconds of faults per seed (each run then settles once more): two seeds, about four minutes in all.
DURATION = 60.0


@pytest.fixture(scope="module")
def pair(sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with running_pair(sites, tmp_path_factory.mktemp("nemesis"), mode="Automatic") as running:
        create_services(running.danang, running.quangnam, [samples.service(s, NAMESPACE) for s in SLUGS])
        yield running
        for site in sites:
            with contextlib.suppress(Exception):
                site.core.delete_namespace(NAMESPACE, _request_timeout=5)


@pytest.mark.parametrize("seed", [39, 43])
def test_a_short_schedule_of_faults_breaks_no_invariant(pair: Pair, seed: int) -> None:
    results = Nemesis(pair, seed=seed).run(DURATION)
    print(summary(results))
    assert results["faults"] and results["figures"]["one-active"]["samples"]
    assert not results["violations"], f"replay: bench/nemesis.py --seed {seed}\n{summary(results)}"
