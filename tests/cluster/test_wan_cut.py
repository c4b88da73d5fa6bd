"""The real-node testbed's WAN cut, on two bare site namespaces (no plane, no node: seconds): what a site
sends across a cut link never arrives, a dying site's last packets included."""

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from sharedcore_testbed import network

pytestmark = pytest.mark.cluster

PORT = 15432
# Sends "before" to its one client, then, on a line on stdin, "after"; then waits to be killed.
SERVER = """
import socket, sys
listener = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
connection, _ = listener.accept()
connection.sendall(b"before\\n")
sys.stdin.readline()
connection.sendall(b"after\\n")
print("sent", flush=True)
sys.stdin.readline()
"""
CLIENT = """
import socket, sys
connection = socket.create_connection((sys.argv[1], int(sys.argv[2])))
for line in connection.makefile():
    print(line.strip(), flush=True)
"""


@pytest.fixture
def two_sites() -> Iterator[tuple[network.SiteNet, network.SiteNet]]:
    slot = network.free_slot()
    a, b = network.SiteNet(slot, 0, "a"), network.SiteNet(slot, 1, "b")
    try:
        network.create_wan(slot)
        network.create_site(a, [b])
        network.create_site(b, [a])
        yield a, b
    finally:
        network.delete(slot)


def _python(net: network.SiteNet, script: str, *args: str) -> subprocess.Popen[str]:
    argv = network.in_netns(net.netns, [sys.executable, "-c", script, *args])
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_a_cut_link_carries_nothing_of_a_killed_process_queued_data(
    two_sites: tuple[network.SiteNet, network.SiteNet],
) -> None:
    """A stream b opened to a (as quangnam's WAL receiver opens one to danang), cut both ways; then a writes
    and is killed. Its kernel closes the socket: a FIN, then the unacknowledged data retransmitted with the
    FIN in one segment. conntrack has no entry for that connection (every packet since the cut was dropped
    before one could be confirmed) and takes a FIN without one for invalid; a rule matching on --ctdir never
    matches an invalid packet, so it passed (a row written at danang after the cut reached quangnam when
    danang was stopped)."""
    a, b = two_sites
    server = _python(a, SERVER, a.wan_node_ip, str(PORT))
    client = None
    try:
        assert server.stdout is not None and server.stdin is not None
        assert server.stdout.readline().strip() == "listening"
        client = _python(b, CLIENT, a.wan_node_ip, str(PORT))
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "before"
        network.set_cut(a, b, True)
        network.set_cut(b, a, True)
        server.stdin.write("\n")
        server.stdin.flush()
        assert server.stdout.readline().strip() == "sent"
        # Killed before the first retransmission: the FIN goes out at once, and the retransmission of the
        # data carries both.
        server.send_signal(signal.SIGKILL)
        server.wait()
        time.sleep(4)  # retransmissions at about 0.2, 0.6, 1.4 and 3 s
        client.send_signal(signal.SIGTERM)
        received = client.communicate(timeout=10)[0].split()
        assert "after" not in received, "sent across a cut link"
    finally:
        for process in (server, client):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
