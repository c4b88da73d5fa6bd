"""The testbed's parts that need no control plane: binary cache, certificates, state, the link proxy."""

import asyncio
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from sharedcore_testbed import binaries, citydns, images, node, pki, proxy
from sharedcore_testbed import state as testbed_state
from sharedcore_testbed.plane import PlaneError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cache", [None, "/tmp/elsewhere"])
def test_bin_dir_agrees_with_the_build_script(monkeypatch: pytest.MonkeyPatch, cache: str | None) -> None:
    if cache:
        monkeypatch.setenv("SHAREDCORE_TESTBED_CACHE", cache)
    else:
        monkeypatch.delenv("SHAREDCORE_TESTBED_CACHE", raising=False)
    script = subprocess.run(
        [ROOT / "scripts" / "testbed-bin.sh", "--print"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert str(binaries.bin_dir()) == script
    assert cache is None or script.startswith(cache)


def test_go_modules_require_the_pinned_versions() -> None:
    versions = binaries.read_versions()
    modules = {
        "kubernetes": ("k8s.io/kubernetes", "KUBERNETES_VERSION"),
        "etcd": ("go.etcd.io/etcd/server/v3", "ETCD_VERSION"),
        "kwok": ("sigs.k8s.io/kwok", "KWOK_VERSION"),
        "helm": ("helm.sh/helm/v3", "HELM_VERSION"),
        "coredns": ("github.com/coredns/coredns", "COREDNS_VERSION"),
    }
    for directory, (module, key) in modules.items():
        go_mod = (ROOT / "tests" / "controlplane" / directory / "go.mod").read_text()
        assert re.search(rf"^\s*(require )?{re.escape(module)} {re.escape(versions[key])}\b", go_mod, re.M), (
            directory
        )
    assert versions["KUBERNETES_VERSION"].startswith("v1.35.")
    staging = re.findall(
        r"^\s*(k8s\.io/\S+) => \1 (\S+)$", (ROOT / "tests/controlplane/kubernetes/go.mod").read_text(), re.M
    )
    assert len(staging) >= 30
    assert {version for _, version in staging} == {versions["KUBERNETES_VERSION"].replace("v1.", "v0.")}


def test_missing_binary_says_how_to_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHAREDCORE_TESTBED_CACHE", str(tmp_path))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    with pytest.raises(binaries.MissingBinaryError, match="make testbed-bin"):
        binaries.binary("kube-apiserver")


def test_kubebuilder_assets_take_precedence_for_envtest_binaries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "etcd").write_text("#!/bin/sh\n")
    (tmp_path / "etcd").chmod(0o755)
    (tmp_path / "kwok").write_text("#!/bin/sh\n")
    (tmp_path / "kwok").chmod(0o755)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    monkeypatch.setenv("SHAREDCORE_TESTBED_CACHE", str(tmp_path / "empty"))
    assert binaries.binary("etcd") == tmp_path / "etcd"
    with pytest.raises(binaries.MissingBinaryError):
        binaries.binary("kwok")  # envtest does not ship kwok: never taken from there


def test_certificates_chain_to_the_plane_ca(tmp_path: Path) -> None:
    keys = pki.create(tmp_path, "danang", ("admin", "kwok"))
    ca = x509.load_pem_x509_certificate(keys.ca_cert.read_bytes())
    serving = x509.load_pem_x509_certificate(keys.serving_cert.read_bytes())
    admin = x509.load_pem_x509_certificate(keys.client_cert("admin").read_bytes())
    for cert in (serving, admin):
        cert.verify_directly_issued_by(ca)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    assert keys.client_key("admin").stat().st_mode & 0o077 == 0


def test_state_round_trips(tmp_path: Path) -> None:
    original = testbed_state.TestbedState(
        planes={
            "a": testbed_state.PlaneState(
                "a",
                1,
                2,
                3,
                True,
                {"etcd": testbed_state.ProcessRecord("etcd", 10, 99, ["/bin/etcd"], "/tmp/etcd.log")},
            )
        },
        links=[testbed_state.LinkState("a", "b", 4, blocked=True)],
        generation=7,
    )
    testbed_state.save(tmp_path, original)
    assert testbed_state.load(tmp_path) == original
    assert testbed_state.load(tmp_path).link("a", "b").blocked


def test_the_city_dns_state_and_links_round_trip(tmp_path: Path) -> None:
    """Each site reaches the city's etcd and its DNS port through two links of its own; `partition SITE city`
    cuts both."""
    site = testbed_state.PlaneState("danang", 1, 2, 3, True, address="10.192.200.1")
    city = testbed_state.CityState("127.53.0.1", 5, 6, metrics_ports={"danang": 7})
    links = citydns.links([site], city, iter([8, 9]))
    original = testbed_state.TestbedState(planes={"danang": site}, links=links, city=city)
    testbed_state.save(tmp_path, original)
    loaded = testbed_state.load(tmp_path)
    assert loaded == original
    etcd, dns = loaded.links_between("danang", citydns.CITY)
    assert (etcd.target_address, etcd.target_port) == (None, 5)
    assert (dns.target_address, dns.target_port) == ("127.53.0.1", 53)
    assert citydns.server_for(loaded.links, "danang") == "10.192.200.1:9"


async def _exchange(port: int, payload: bytes, timeout: float) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(100), timeout)
    finally:
        writer.close()


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(100):
        writer.write(data)
        await writer.drain()
    writer.close()


def test_link_proxy_forwards_blackholes_and_heals() -> None:
    async def scenario() -> None:
        upstream = await asyncio.start_server(_echo, "127.0.0.1", 0)
        link = proxy.Link("127.0.0.1", upstream.sockets[0].getsockname()[1])
        front = await asyncio.start_server(proxy.handler(link), "127.0.0.1", 0)
        port = front.sockets[0].getsockname()[1]

        assert await _exchange(port, b"hello", timeout=2) == b"hello"
        held_reader, held_writer = await asyncio.open_connection("127.0.0.1", port)
        held_writer.write(b"x")
        assert await held_reader.read(1) == b"x"

        link.set_blocked(True)
        assert await asyncio.wait_for(held_reader.read(100), 2) == b"", "open connections are cut"
        with pytest.raises(TimeoutError):
            await _exchange(port, b"lost", timeout=0.5)  # new ones go nowhere

        link.set_blocked(False)
        assert await _exchange(port, b"back", timeout=2) == b"back"
        upstream.close()
        await upstream.wait_closed()
        assert await _exchange(port, b"dead", timeout=2) == b"", "a dead target fails fast"
        front.close()

    asyncio.run(scenario())


def test_a_node_directory_too_long_for_containerds_sockets_is_refused_with_the_fix() -> None:
    assert node.socket_path(Path("/tmp/tb"), "danang", 0) == Path(
        "/tmp/tb/danang/node/0/containerd/containerd.sock"
    )
    with pytest.raises(PlaneError, match="use a shorter --dir"):
        node.socket_path(Path("/tmp") / ("x" * 80), "danang", 0)


def test_a_slow_link_delays_each_direction_and_delivers_in_order_despite_loss() -> None:
    async def scenario() -> None:
        upstream = await asyncio.start_server(_echo, "127.0.0.1", 0)
        link = proxy.Link("127.0.0.1", upstream.sockets[0].getsockname()[1], delay=0.15)
        front = await asyncio.start_server(proxy.handler(link), "127.0.0.1", 0)
        port = front.sockets[0].getsockname()[1]
        started = time.monotonic()
        assert await _exchange(port, b"slow", timeout=3) == b"slow"
        assert time.monotonic() - started >= 0.3, "the delay applies each way"

        link.delay, link.loss = 0.0, 0.5
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        received = b""
        for number in range(20):
            writer.write(b"%02d" % number)
            await writer.drain()
            await asyncio.sleep(0.01)
        while len(received) < 40:
            received += await asyncio.wait_for(reader.read(100), 5)
        assert received == b"".join(b"%02d" % n for n in range(20)), "lost segments arrive late, in order"
        writer.close()

        link.loss = 0.0
        started = time.monotonic()
        assert await _exchange(port, b"fast", timeout=2) == b"fast"
        assert time.monotonic() - started < 0.3
        front.close()
        upstream.close()

    asyncio.run(scenario())


def test_a_slow_link_is_recorded_and_healed_with_the_partitions(tmp_path: Path) -> None:
    current = testbed_state.TestbedState(links=[testbed_state.LinkState("a", "b", 4, delay_ms=300, loss=0.1)])
    testbed_state.save(tmp_path, current)
    assert (testbed_state.load(tmp_path).link("a", "b").delay_ms, current.link("a", "b").loss) == (300, 0.1)


def test_the_image_cache_keeps_the_most_recently_used_versions_of_each_image(tmp_path: Path) -> None:
    """A version of the operator image and of the containerd template (1.5 GiB) per code change filled the
    disk; only the most recently used few of each stay."""
    for age, version in enumerate(("e", "d", "c", "b", "a")):  # "a" the oldest
        for suffix in (".tar", ".json"):
            path = tmp_path / f"operator-{version}{suffix}"
            path.write_text("x")
            os.utime(path, (1000 - age, 1000 - age))
        template = tmp_path / f"containerd-root-{version}"
        (template / "io.containerd.content.v1.content").mkdir(parents=True)
        os.utime(template, (1000 - age, 1000 - age))
    (tmp_path / "pause-0.tar").write_text("x")
    (tmp_path / "containerd-template-x1y2").mkdir()  # one in the making
    (tmp_path / ".containerd-template.lock").write_text("")
    images.prune(tmp_path, keep=3)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [
        ".containerd-template.lock",
        "containerd-root-c",
        "containerd-root-d",
        "containerd-root-e",
        "containerd-template-x1y2",
        "operator-c.json",
        "operator-c.tar",
        "operator-d.json",
        "operator-d.tar",
        "operator-e.json",
        "operator-e.tar",
        "pause-0.tar",
    ]
