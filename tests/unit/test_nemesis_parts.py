"""The nemesis's parts that need no control plane: its schedule (the same seed replays the same faults), the
skewed clock, and what it reads in an operator's log."""

import collections
import json
import os
import subprocess
import sys
import time
import types
from typing import Any, cast

import pytest
import urllib3

from sharedcore_testbed import clock
from sharedcore_testbed.nemesis import convergence
from sharedcore_testbed.nemesis.checks import exceptions
from sharedcore_testbed.nemesis.schedule import REQUESTS, STEPS, WEIGHTS, episode


def test_a_seed_gives_the_same_episodes_whatever_ran_before() -> None:
    first = [episode(7, index) for index in range(30)]
    assert [episode(7, index) for index in reversed(range(30))] == list(reversed(first))
    assert first != [episode(8, index) for index in range(30)]


def test_the_faults_of_an_episode_never_share_a_site_link_or_operator() -> None:
    for index in range(300):
        faults = episode(1, index)
        assert faults[0].at == 0 and [f.at for f in faults] == sorted(f.at for f in faults)
        drawn = [f for f in faults if "at_step" not in f.detail]
        claimed = [resource for f in drawn for resource in f.resources()]
        assert len(claimed) == len(set(claimed)), faults


def test_every_kind_is_drawn_and_kills_land_inside_failovers() -> None:
    faults = [fault for index in range(300) for fault in episode(3, index)]
    assert set(collections.Counter(f.kind for f in faults)) == set(WEIGHTS)
    inside = [f for f in faults if f.detail.get("at_step")]
    assert inside and {f.detail["at_step"] for f in inside} <= set(STEPS)
    for index in range(300):
        faults = episode(3, index)
        if any(f.detail.get("at_step") for f in faults):
            assert any(f.kind in REQUESTS - {"drill"} for f in faults)


def test_a_one_way_cut_towards_the_witness_starts_at_a_site() -> None:
    links = [f for index in range(300) for f in episode(5, index) if f.kind in ("partition", "slow-link")]
    assert all(f.targets[0] != "witness" for f in links)
    assert {f.detail["one_way"] for f in links} == {True, False}


def test_a_skewed_clock_moves_the_wall_clock_only() -> None:
    try:
        environment = clock.skewed_environment(-90)
    except FileNotFoundError as error:
        pytest.skip(str(error))
    script = "import time; print(time.time(), time.monotonic())"
    before = time.time(), time.monotonic()
    printed = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    wall, monotonic = (float(value) for value in printed)
    assert -92 < wall - before[0] < -88
    assert 0 <= monotonic - before[1] < 5


def test_each_traceback_in_an_operator_log_is_one_exception() -> None:
    log = """2026-11-28 12:44:32,374 ERROR sharedcore.failover.controller: failover x failed unexpectedly
Traceback (most recent call last):
  File "controller.py", line 119, in run
    await self._advance(name)
KeyError: 'apiVersion'
2026-11-28 12:44:33,000 INFO sharedcore: fine
Traceback (most recent call last):
  File "runner.py", line 221, in run
RuntimeError: services ended unexpectedly
Traceback (most recent call last):
  File "half written"""
    assert exceptions(log) == [
        "KeyError: 'apiVersion'",
        "RuntimeError: services ended unexpectedly",
        "(cut short)",
    ]
    assert exceptions("2026-11-28 INFO all well\n") == []


class _Answer:
    """A response read unparsed (`_preload_content=False`)."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


def _stub_site(name: str, *, down: bool = False) -> Any:
    def condition(ready: str) -> dict[str, Any]:
        return {"conditions": [{"type": "Ready", "status": ready, "reason": "R", "message": "m"}]}

    def custom_list(*args: Any, **_: Any) -> dict[str, Any]:
        if down:
            raise urllib3.exceptions.MaxRetryError(None, "/", None)  # type: ignore[arg-type]
        if args[-1] == "sharedservices":
            meta = {"namespace": "city", "name": "opendata"}
            return {"items": [{"metadata": meta, "status": condition("False")}]}
        return {"items": [{"metadata": {"name": "opendata-db"}, "status": {"phase": "Setting up primary"}}]}

    pod = {
        "metadata": {"name": "opendata-db-1"},
        "spec": {"nodeName": f"{name}-0"},
        "status": {"phase": "Pending", "containerStatuses": [{"name": "postgres", "ready": False}]},
    }
    nodes = {"items": [{"metadata": {"name": f"{name}-0"}, "status": condition("False")}]}
    core = types.SimpleNamespace(
        list_node=lambda **_: _Answer(nodes), list_namespaced_pod=lambda *_, **__: _Answer({"items": [pod]})
    )
    custom = types.SimpleNamespace(
        list_cluster_custom_object=custom_list, list_namespaced_custom_object=custom_list
    )
    return types.SimpleNamespace(name=name, core=core, custom=custom)


def test_a_pair_that_does_not_converge_is_described_as_an_administrator_would_look_at_it() -> None:
    pair = cast(Any, types.SimpleNamespace(sites=(_stub_site("danang"), _stub_site("quangnam", down=True))))
    lines = convergence.diagnosis(pair)
    assert lines[0] == "danang: node danang-0 Ready=False"
    assert lines[1] == "danang: city/opendata: Ready=False R: m"
    assert lines[2].startswith("danang: pod city/opendata-db-1 Pending on danang-0: postgres ready=False")
    assert lines[3].startswith("danang: Cluster city/opendata-db: Setting up primary")
    assert lines[4:] == ["quangnam: does not answer: MaxRetryError"]
