"""Real Kubernetes nodes beside a site's control plane, run in the site's network namespace and cgroup: per
node a containerd and a kubelet; per site one kube-proxy and one CoreDNS (they serve the namespace).

Everything lives under DIR/<site>/node (per node in node/<k>: containerd's root, state and socket, runc's
state, the kubelet's root and pod logs, the CNI configuration and its address leases); volumes under
DIR/<site>/volumes. The site's cgroup (`sctb<slot>-<site>` in every cgroup v1 hierarchy) holds the daemons,
every container shim and, below it as the kubelets' cgroupRoots, every pod: a site outage freezes and kills
that cgroup, so nothing of the site survives it.
Settings this machine kind needs are explained where they are set (see also the README's testbed section).
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sharedcore_testbed import images, network, pki, processes
from sharedcore_testbed.binaries import binary
from sharedcore_testbed.network import SiteNet
from sharedcore_testbed.plane import PlaneError, kubeconfig, plane_dir, request, write_yaml
from sharedcore_testbed.state import PlaneState, ProcessRecord

CGROUP_ROOT = Path("/sys/fs/cgroup")
NODE_DAEMONS = ("containerd", "kubelet")
SITE_DAEMONS = ("kube-proxy", "coredns")
PEER_ZONE = "clusterset.local"  # what the render assumes for peers' services: <svc>.<ns>.svc.clusterset.local
PEER_DNS_PORT = 5353


def node_name(site: str, node: int) -> str:
    return f"{site}-node-{node}"


def site_dir(root: Path, site: str) -> Path:
    return root / site / "node"


def node_dir(root: Path, site: str, node: int) -> Path:
    return site_dir(root, site) / str(node)


def volumes_dir(root: Path, site: str) -> Path:
    return root / site / "volumes"


# containerd refuses a unix socket path longer than this, and its ttrpc socket adds ".ttrpc" to ours.
SOCKET_PATH_MAX = 104


def socket_path(root: Path, site: str, node: int) -> Path:
    socket = node_dir(root, site, node) / "containerd" / "containerd.sock"
    if len(f"{socket}.ttrpc") > SOCKET_PATH_MAX:
        raise PlaneError(
            f"{socket}: too long for containerd's sockets (at most {SOCKET_PATH_MAX}): use a shorter --dir"
        )
    return socket


def cgroup_name(net: SiteNet) -> str:
    return net.netns


def daemons(net: SiteNet) -> list[str]:
    """Process names, in start order: each node's containerd and kubelet, then the site's own."""
    return [f"{daemon}-{node}" for node in range(net.nodes) for daemon in NODE_DAEMONS] + list(SITE_DAEMONS)


def _hierarchies() -> list[Path]:
    """The mounted cgroup v1 hierarchies (the kubelet needs its cgroupRoot in each of them)."""
    return [path for path in CGROUP_ROOT.iterdir() if path.is_dir() and path.name != "unified"]


def _create_cgroups(net: SiteNet) -> None:
    """The site's cgroup and each kubelet's cgroupRoot below it, in every hierarchy (cpusets filled in)."""
    for hierarchy in _hierarchies():
        groups = [hierarchy / cgroup_name(net)]
        groups += [groups[0] / f"node-{node}" for node in range(net.nodes)]
        for group in groups:
            group.mkdir(exist_ok=True)
            if hierarchy.name == "cpuset":
                for setting in ("cpuset.cpus", "cpuset.mems"):
                    (group / setting).write_text((hierarchy / setting).read_text())
    (CGROUP_ROOT / "freezer" / cgroup_name(net) / "daemons").mkdir(exist_ok=True)


def _cgroup_pids(group: Path) -> set[int]:
    pids: set[int] = set()
    for procs in group.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            pids.update(int(line) for line in procs.read_text().split())
    return pids


def cgroup_pids(net: SiteNet) -> set[int]:
    return _cgroup_pids(CGROUP_ROOT / "freezer" / cgroup_name(net))


def freeze(net: SiteNet, frozen: bool) -> None:
    state = CGROUP_ROOT / "freezer" / cgroup_name(net) / "freezer.state"
    if state.exists():
        state.write_text("FROZEN" if frozen else "THAWED")


def kill_all(net: SiteNet, timeout: float = 20.0) -> None:
    """SIGKILL every process of the site's cgroup (daemons, shims, containers), frozen first so none forks."""
    group = CGROUP_ROOT / "freezer" / cgroup_name(net)
    if not group.exists():
        return
    freeze(net, True)
    deadline = time.monotonic() + timeout
    while (pids := _cgroup_pids(group)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        freeze(net, False)
        time.sleep(0.05)
        freeze(net, True)
    freeze(net, False)


def remove_cgroups(net: SiteNet) -> None:
    for hierarchy in _hierarchies():
        group = hierarchy / cgroup_name(net)
        if group.exists():
            for child in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    child.rmdir()
            with contextlib.suppress(OSError):
                group.rmdir()


def leftover_cgroups(net: SiteNet) -> list[str]:
    return [str(h / cgroup_name(net)) for h in _hierarchies() if (h / cgroup_name(net)).exists()]


def unmount_under(directory: Path) -> None:
    """Unmount everything below a directory (pod volumes, overlay snapshots, pod network namespaces)."""
    prefix = str(directory.resolve()) + "/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted({m for m in mounts if m.startswith(prefix)}, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False, capture_output=True)


def leftover_mounts(directory: Path) -> list[str]:
    prefix = str(directory.resolve()) + "/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [m for m in mounts if m.startswith(prefix)]


def _kubeconfig(plane: PlaneState, keys: pki.PlanePki, user: str) -> dict[str, Any]:
    return kubeconfig(plane.name, f"https://{plane.address}:{plane.apiserver_port}", keys, user)


def prepare(root: Path, plane: PlaneState, net: SiteNet, peers: list[SiteNet]) -> None:
    """Identities, configuration files and directories of the site's nodes (once; a restart keeps them)."""
    directory = site_dir(root, plane.name)
    keys = pki.PlanePki(plane_dir(root, plane.name) / "pki")
    pki.issue_client(keys, "kube-proxy", "system:kube-proxy", None)
    pki.issue_client(keys, "kubelet-client", "kube-apiserver-kubelet-client", "system:masters")
    for user in ("kube-proxy", "admin"):
        write_yaml(directory / f"{user}.kubeconfig", _kubeconfig(plane, keys, user))
    write_yaml(directory / "kube-proxy.yaml", _kube_proxy_config(directory, plane.name, net))
    (directory / "Corefile").write_text(_corefile(directory / "admin.kubeconfig", peers))
    volumes_dir(root, plane.name).mkdir(parents=True, exist_ok=True)
    for node in range(net.nodes):
        here = node_dir(root, plane.name, node)
        user = f"node-{node}"
        pki.issue_client(keys, user, f"system:node:{node_name(plane.name, node)}", "system:nodes")
        write_yaml(here / "node.kubeconfig", _kubeconfig(plane, keys, user))
        (here / "containerd").mkdir(parents=True, exist_ok=True)
        (here / "containerd" / "config.toml").write_text(
            _containerd_config(here, socket_path(root, plane.name, node))
        )
        (here / "cni").mkdir(exist_ok=True)
        (here / "cni" / "10-testbed.conflist").write_text(json.dumps(_cni_config(here, net, node), indent=2))
        write_yaml(
            here / "kubelet.yaml", _kubelet_config(here, socket_path(root, plane.name, node), net, node, keys)
        )


def _containerd_config(node: Path, socket: Path) -> str:
    directory = node / "containerd"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{directory / "root"}"
state = "{directory / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{socket}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{directory / "opt"}"
[{cri}]
  sandbox_image = "{images.PAUSE_TAG}"
  # No CAP_SYS_RESOURCE here: runc must not raise a container's oom_score_adj above containerd's.
  restrict_oom_score_adj = true
  # Pod network namespaces under the node's state: a killed node leaves none behind (unmounted on stop).
  netns_mounts_under_state_dir = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        Root = "{directory / "runc"}"
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{node / "cni"}"
    max_conf_num = 1
"""


def _cni_config(directory: Path, net: SiteNet, node: int) -> dict[str, Any]:
    return {
        "cniVersion": "0.4.0",
        "name": "testbed",
        "plugins": [
            {
                "type": "bridge",
                "bridge": f"cni{node}",
                "isGateway": True,
                # Pods keep their own source address across sites; nothing leaves the testbed anyway.
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": net.node_pod_cidr(node), "gateway": net.bridge_ip(node)}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(directory / "cni-leases"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def _kubelet_config(
    directory: Path, socket: Path, net: SiteNet, node: int, keys: pki.PlanePki
) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # Each kubelet of the namespace on its own address: the same ports do not collide.
        "address": net.node_ip(node),
        "readOnlyPort": 0,
        "healthzBindAddress": net.node_ip(node),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(keys.ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{cgroup_name(net)}/node-{node}",
        # This machine kind has cgroup v1 only, and no CAP_SYS_RESOURCE to raise oom_score_adj.
        "failCgroupV1": False,
        "oomScoreAdj": 0,
        "failSwapOn": False,
        "clusterDNS": [net.dns_ip],
        "clusterDomain": "cluster.local",
        "resolvConf": "",  # no upstream resolvers in pods: cluster DNS answers only the testbed's names
        "podLogsDir": str(directory / "pod-logs"),
        # Images cannot be pulled again here: never collect them, never evict for a busy shared disk.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "maxPods": 110,
        "serializeImagePulls": False,
        "registerNode": True,
        "staticPodPath": "",
        "nodeStatusReportFrequency": "10s",
    }


def _kube_proxy_config(directory: Path, site: str, net: SiteNet) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(directory / "kube-proxy.kubeconfig")},
        "hostnameOverride": node_name(site, 0),
        "mode": "iptables",
        "clusterCIDR": net.pod_cidr,
        "bindAddress": net.dns_ip,
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
        # nf_conntrack_max is the whole machine's: leave every conntrack sysctl alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "iptables": {"minSyncPeriod": "1s", "syncPeriod": "30s"},
    }


def _corefile(kubeconfig: Path, peers: list[SiteNet]) -> str:
    """Cluster DNS for the site's own names, the peers' Services under clusterset.local (asked of the peer's
    DNS across the WAN), and nothing else: no forwarder to the outside world."""
    local = f"kubeconfig {kubeconfig} "
    upstreams = " ".join(f"{peer.wan_node_ip}:{PEER_DNS_PORT}" for peer in peers)
    peer_forward = f"    forward . {upstreams}\n" if peers else ""
    return f"""cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {{
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        {local}
        pods insecure
    }}
    cache 5
}}
{PEER_ZONE}:53 {{
    errors
    kubernetes {PEER_ZONE} {{
        {local}
        fallthrough
    }}
{peer_forward}}}
{PEER_ZONE}:{PEER_DNS_PORT} {{
    errors
    kubernetes {PEER_ZONE} {{
        {local}
    }}
}}
"""


def _argv(root: Path, site: str, net: SiteNet, daemon: str) -> list[str]:
    name, _, number = daemon.rpartition("-")
    if name == "containerd":
        command = [
            "containerd",
            f"--config={node_dir(root, site, int(number)) / 'containerd' / 'config.toml'}",
        ]
    elif name == "kubelet":
        node = int(number)
        here = node_dir(root, site, node)
        command = [
            str(binary("kubelet")),
            f"--config={here / 'kubelet.yaml'}",
            f"--kubeconfig={here / 'node.kubeconfig'}",
            f"--root-dir={here / 'kubelet'}",
            f"--hostname-override={node_name(site, node)}",
            f"--node-ip={net.node_ip(node)}",
            f"--node-labels=topology.kubernetes.io/zone={site}",
        ]
    elif daemon == "kube-proxy":
        command = [str(binary("kube-proxy")), f"--config={site_dir(root, site) / 'kube-proxy.yaml'}"]
    else:
        command = [str(binary("coredns")), "-conf", str(site_dir(root, site) / "Corefile")]
    # Join the site's cgroup, then run in its network namespace (processes started later inherit both).
    procs = CGROUP_ROOT / "freezer" / cgroup_name(net) / "daemons" / "cgroup.procs"
    joined = shlex.join(network.in_netns(net.netns, command))
    return ["/bin/sh", "-c", f"echo $$ > {procs} && exec {joined}"]


def _wait_containerd(socket: Path, record: ProcessRecord, deadline: float) -> None:
    ctr = ["ctr", f"--address={socket}", "version"]
    while subprocess.run(ctr, check=False, capture_output=True).returncode != 0:
        if not processes.alive(record) or time.monotonic() > deadline:
            raise PlaneError(f"containerd did not start:\n{processes.log_tail(record)}")
        time.sleep(0.1)


def start(root: Path, plane: PlaneState, net: SiteNet, deadline: float) -> None:
    """Start the daemons (each containerd with the images imported); return when every Node is Ready."""
    _create_cgroups(net)
    logs = plane_dir(root, plane.name) / "logs"
    for daemon in daemons(net):
        record = plane.processes.get(daemon)
        if record and processes.alive(record):
            continue
        if daemon.startswith("containerd-"):
            # Every pod died with the site: their address leases are stale, and so is containerd's socket.
            node = int(daemon.rpartition("-")[2])
            subprocess.run(["rm", "-rf", str(node_dir(root, plane.name, node) / "cni-leases")], check=True)
            socket_path(root, plane.name, node).unlink(missing_ok=True)
            seed_images(node_dir(root, plane.name, node))
        plane.processes[daemon] = processes.spawn(
            daemon, _argv(root, plane.name, net, daemon), logs / f"{daemon}.log"
        )
        if daemon.startswith("containerd-"):
            _wait_containerd(socket_path(root, plane.name, node), plane.processes[daemon], deadline)
            import_images(socket_path(root, plane.name, node))  # only what the seed lacks: nothing, usually
    names = {node_name(plane.name, node) for node in range(net.nodes)}
    while time.monotonic() < deadline:
        for daemon in daemons(net):
            if not processes.alive(plane.processes[daemon]):
                raise PlaneError(
                    f"{plane.name}: {daemon} exited\n{processes.log_tail(plane.processes[daemon])}"
                )
        with contextlib.suppress(OSError):
            nodes = json.loads(request(root, plane, "/api/v1/nodes"))["items"]
            ready = {
                item["metadata"]["name"]
                for item in nodes
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in item["status"].get("conditions", [])
                )
            }
            if names <= ready:
                return
        time.sleep(0.2)
    raise PlaneError(f"{plane.name}: nodes not Ready\n{processes.log_tail(plane.processes['kubelet-0'])}")


def import_images(socket: Path) -> None:
    """Import the archives `make images` built that the node lacks (a restarted node keeps its own)."""
    ctr = ["ctr", f"--address={socket}", "-n", "k8s.io", "images"]
    listed = subprocess.run([*ctr, "ls", "-q"], check=True, capture_output=True, text=True).stdout.split()

    def present(tag: str) -> bool:  # containerd lists a reference with its registry's name in front
        return any(name == tag or name.endswith(f"/{tag}") for name in listed)

    for image in images.build_all(log=lambda _: None):
        if not all(present(tag) for tag in image.tags):
            subprocess.run([*ctr, "import", str(image.archive)], check=True, capture_output=True)


def seed_images(node: Path) -> None:
    """A new node's containerd starts from a copy of a template root holding every image, instead of
    importing each archive again (20-30 s a node). The copy is hard links (image layers and unpacked snapshots
    are never written), except containerd's databases and its instance id."""
    root = node / "containerd" / "root"
    if (root / "io.containerd.metadata.v1.bolt" / "meta.db").exists():
        return
    template = template_root()
    root.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["cp", "-al", f"{template}/.", str(root)], check=False, capture_output=True).returncode:
        subprocess.run(["cp", "-a", f"{template}/.", str(root)], check=True)  # another file system
    for database in root.rglob("*.db"):
        copy = database.with_suffix(".copy")
        shutil.copy2(database, copy)
        copy.replace(database)
    (root / "io.containerd.grpc.v1.introspection" / "uuid").unlink(missing_ok=True)


def template_root() -> Path:
    """A containerd root with every current image imported, in the image cache (built once per image set)."""
    built = images.build_all(log=lambda _: None)
    key = hashlib.sha256(" ".join(sorted(image.archive.name for image in built)).encode()).hexdigest()[:16]
    template = images.images_dir() / f"containerd-root-{key}"
    with (images.images_dir() / ".containerd-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if template.exists():
            os.utime(template)  # used now: pruning keeps it
            return template
        work = Path(tempfile.mkdtemp(prefix="containerd-template-", dir=images.images_dir()))
        sockets = Path(tempfile.mkdtemp(prefix="sctb-"))  # a unix socket's path must be short
        socket = sockets / "containerd.sock"
        try:
            (work / "containerd").mkdir()
            config = work / "containerd" / "config.toml"
            config.write_text(_containerd_config(work, socket))
            record = processes.spawn(
                "containerd", ["containerd", f"--config={config}"], work / "containerd.log"
            )
            try:
                _wait_containerd(socket, record, time.monotonic() + 60)
                import_images(socket)
            finally:
                processes.terminate(record)
                unmount_under(work)
            (work / "containerd" / "root").rename(template)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(sockets, ignore_errors=True)
        images.prune(images.images_dir())
    return template


def stop(root: Path, plane: PlaneState, net: SiteNet) -> None:
    """The site's node is lost: every process of its cgroup is killed, its mounts are released."""
    kill_all(net)
    for daemon in daemons(net):
        if daemon in plane.processes:
            processes.terminate(plane.processes[daemon], grace=0)
    unmount_under(site_dir(root, plane.name))


def memory_kib(net: SiteNet) -> dict[str, int]:
    """Proportional set size of the node's daemons and of everything else in its cgroup (shims, pods)."""
    group = CGROUP_ROOT / "freezer" / cgroup_name(net)
    daemons = _cgroup_pids(group / "daemons")
    totals = {"daemons": 0, "pods": 0}
    for pid in _cgroup_pids(group):
        with contextlib.suppress(OSError):
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            pss = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
            totals["daemons" if pid in daemons else "pods"] += pss
    return totals
