"""A real Prometheus per real site (Debian's `prometheus`), scraping CloudNativePG's instances the way the
shipped PodMonitor (manifests/monitoring/cnpg-podmonitor.yaml) asks the Prometheus Operator to: a plain
scrape job built from that file, keeping the pods it selects on the port it names and adding the `namespace`
and `pod` labels the Prometheus Operator adds to every PodMonitor target (the operator matches
series by them).

Debian builds Prometheus without `kubernetes_sd_configs`, so the job discovers pods through `http_sd_configs`
from `sharedcore_testbed.pod_discovery`, which lists them with the same `__meta_kubernetes_pod_*` labels; the
relabelling is the one a `kubernetes_sd_configs` job would have.

It runs on the host beside the site's plane (the host routes the site's pod range into its namespace), listens
on the host end of the site's link (where the site's pods reach it, as they reach the API server) and is a
process of the site: a site outage takes it down and `start` brings it back with its data. The operator gets
its address as `--prometheus-url`.
"""

import re
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from sharedcore_testbed import processes
from sharedcore_testbed.binaries import source_root
from sharedcore_testbed.plane import PlaneError, plane_dir, write_yaml
from sharedcore_testbed.state import PlaneState

PODMONITOR = Path("manifests") / "monitoring" / "cnpg-podmonitor.yaml"
# The PodMonitor's 30 s would make every lag the tests wait for a minute late; the rest is taken as it is.
SCRAPE_INTERVAL = "2s"
SCRAPE_TIMEOUT = "2s"  # CloudNativePG's exporter asks PostgreSQL: slow on a busy machine (a failure: a gap)


def url(plane: PlaneState) -> str:
    assert plane.prometheus_port is not None, f"{plane.name} runs no Prometheus"
    return f"http://{plane.address}:{plane.prometheus_port}"


def _label(name: str) -> str:
    """A Kubernetes label name as service discovery spells it (`cnpg.io/podRole` → `cnpg_io_podRole`)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def scrape_job(podmonitor: dict[str, Any], discovery: str) -> dict[str, Any]:
    """The PodMonitor as a scrape job: its pod selector, its namespaces, its one endpoint (port and path)."""
    spec = podmonitor["spec"]
    (endpoint,) = spec["podMetricsEndpoints"]
    namespaces = spec.get("namespaceSelector") or {}
    relabel: list[dict[str, Any]] = []
    if not namespaces.get("any"):
        relabel.append(
            {
                "source_labels": ["__meta_kubernetes_namespace"],
                "regex": "|".join(re.escape(name) for name in namespaces.get("matchNames", [])),
                "action": "keep",
            }
        )
    relabel += [
        {
            "source_labels": [f"__meta_kubernetes_pod_label_{_label(key)}"],
            "regex": re.escape(value),
            "action": "keep",
        }
        for key, value in spec["selector"]["matchLabels"].items()
    ]
    relabel.append(
        {
            "source_labels": ["__meta_kubernetes_pod_container_port_name"],
            "regex": re.escape(endpoint["port"]),
            "action": "keep",
        }
    )
    relabel += [
        {"source_labels": [f"__meta_kubernetes_{source}"], "target_label": target}
        for source, target in (
            ("namespace", "namespace"),
            ("pod_name", "pod"),
            ("pod_container_name", "container"),
        )
    ]
    return {
        "job_name": podmonitor["metadata"]["name"],
        "scrape_interval": SCRAPE_INTERVAL,
        "scrape_timeout": SCRAPE_TIMEOUT,
        "metrics_path": endpoint.get("path", "/metrics"),
        "http_sd_configs": [{"url": discovery, "refresh_interval": SCRAPE_INTERVAL}],
        "relabel_configs": relabel,
    }


def prepare(root: Path, plane: PlaneState) -> None:
    podmonitor = yaml.safe_load((source_root() / PODMONITOR).read_text())
    write_yaml(
        _config_path(root, plane),
        {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "scrape_configs": [scrape_job(podmonitor, f"http://127.0.0.1:{plane.discovery_port}/")],
        },
    )


def _config_path(root: Path, plane: PlaneState) -> Path:
    return plane_dir(root, plane.name) / "prometheus" / "prometheus.yml"


def argv(root: Path, plane: PlaneState) -> list[str]:
    return [
        "prometheus",
        f"--config.file={_config_path(root, plane)}",
        f"--storage.tsdb.path={plane_dir(root, plane.name) / 'prometheus' / 'data'}",
        "--storage.tsdb.retention.time=6h",
        f"--web.listen-address={plane.address}:{plane.prometheus_port}",
        # Debian's defaults point at its own console files; nothing here uses them.
        "--web.console.templates=/dev/null",
        "--web.console.libraries=/dev/null",
    ]


def start(root: Path, plane: PlaneState, deadline: float) -> None:
    """Start it and its pod discovery (again, after an outage: same data); return when it is ready."""
    discovery = [
        sys.executable,
        "-m",
        "sharedcore_testbed.pod_discovery",
        str(root),
        plane.name,
        str(plane.discovery_port),
    ]
    for name, command in (("pod-discovery", discovery), ("prometheus", argv(root, plane))):
        record = plane.processes.get(name)
        if record is None or not processes.alive(record):
            logs = plane_dir(root, plane.name) / "logs" / f"{name}.log"
            plane.processes[name] = processes.spawn(name, command, logs)
    while not _ready(plane):
        if not processes.alive(plane.processes["prometheus"]) or time.monotonic() > deadline:
            raise PlaneError(
                f"{plane.name}: Prometheus did not start\n{processes.log_tail(plane.processes['prometheus'])}"
            )
        time.sleep(0.2)


def _ready(plane: PlaneState) -> bool:
    try:
        with urllib.request.urlopen(f"{url(plane)}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
