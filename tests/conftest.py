"""Session-scoped control planes (started once, only when a cluster test runs) and a namespace per test."""

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sharedcore_testbed import Testbed
from sharedcore_testbed.pair import opt_in
from tests.support import packaging
from tests.support.cluster import Site

SITES = ("danang", "quangnam", "witness")
WORKLOAD_SITES = ("danang", "quangnam")  # the witness only arbitrates: no nodes, no controllers
# Real nodes per site: each reports this machine's 2 CPUs, and an Active site of every platform asks for ~5.
REAL_NODES = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Real-node tests last: their sites (3 planes, 6 nodes) start then and do not load the two cores while
    the timing-sensitive failover tests run."""
    items.sort(key=lambda item: item.get_closest_marker("nodes") is not None)


@pytest.fixture(autouse=True)
def _tools_only_where_marked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make unit` leaves out the tests marked `tools` (helm, kubectl and promtool come from the Go build):
    a unit test that runs one without the mark fails here, even where the binaries happen to exist."""
    if request.node.get_closest_marker("tools") or request.node.get_closest_marker("cluster"):
        return

    def refused(tool: str) -> Path:
        raise AssertionError(f"{request.node.name} runs {tool}: mark it @pytest.mark.tools")

    monkeypatch.setattr(packaging, "binary", refused)


@dataclass
class Sites:
    bed: Testbed
    danang: Site
    quangnam: Site
    witness: Site

    def __iter__(self) -> Iterator[Site]:
        return iter((self.danang, self.quangnam, self.witness))


@pytest.fixture(scope="session")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    """danang and quangnam with workloads, and a bare witness; reused by every cluster test of the session.

    SHAREDCORE_TEST_TESTBED_DIR keeps the planes' files somewhere you can read after a failed run.
    """
    directory = Path(os.environ.get("SHAREDCORE_TEST_TESTBED_DIR") or tmp_path_factory.mktemp("testbed"))
    bed = Testbed(directory)
    bed.up(SITES, workloads=WORKLOAD_SITES)
    try:
        yield Sites(bed, *(Site(name, bed) for name in SITES))
    finally:
        bed.down()


@pytest.fixture(scope="session")
def real_sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    """danang and quangnam each with REAL_NODES real nodes (containerd and kubelet each; kube-proxy, CoreDNS)
    in its own network namespace, with its own Prometheus, and a bare witness; the city DNS, with ExternalDNS
    at each site; started once, only when a test marked `nodes` runs.

    SHAREDCORE_TEST_REAL_TESTBED_DIR keeps their files for reading after a failed run.
    """
    directory = Path(os.environ.get("SHAREDCORE_TEST_REAL_TESTBED_DIR") or tmp_path_factory.mktemp("real"))
    bed = Testbed(directory)
    bed.up(SITES, real=WORKLOAD_SITES, node_count=REAL_NODES, monitored=True, city_dns=True)
    try:
        yield Sites(bed, *(Site(name, bed) for name in SITES))
    finally:
        bed.down()
        # However its modules ended (a site left stopped, a link cut): nothing of the slot may outlive it.
        assert bed.leftovers() == [], "left behind by the real sites' testbed"


@pytest.fixture
def real_namespace(real_sites: Sites) -> Iterator[str]:
    """A fresh namespace at both real sites, enforcing the restricted Pod Security Standard."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    for site in (real_sites.danang, real_sites.quangnam):
        site.kubectl("create", "namespace", name)
        site.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    yield name
    for site in (real_sites.danang, real_sites.quangnam):
        site.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def namespace(sites: Sites, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace with the same name at every site, opted in to replication, removed afterwards
    (without waiting)."""
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    for site in sites:
        opt_in(site, name)
    yield name
    for site in sites:
        # A test may have stopped the site; the planes go away at the end of the session anyway.
        with contextlib.suppress(Exception):
            site.core.delete_namespace(name, _request_timeout=5)
