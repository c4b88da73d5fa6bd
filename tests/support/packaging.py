"""The packaging under test (chart, kustomize trees, alert rules) and the real tools that read it."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from sharedcore_testbed.binaries import binary

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "sharedcore-operator"
MANIFESTS = ROOT / "manifests"
PLUGIN = Path(sys.executable).parent / "kubectl-sharedcore"
SITES = ("danang", "quangnam")
# Every kustomization a user deploys (the operator base is only deployed through a site overlay).
KUSTOMIZATIONS = (
    *(MANIFESTS / "sites" / site for site in SITES),
    MANIFESTS / "monitoring",
    MANIFESTS / "samples",
)
RELEASE = "sharedcore-operator"  # the release name under which the chart's objects are named like the base's
NAMESPACE = "sharedcore-system"


def run(
    tool: str, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """One of the testbed's binaries (helm, kubectl, promtool); with check, a failure shows its stderr."""
    result = subprocess.run(
        [str(binary(tool)), *args], input=stdin, capture_output=True, text=True, check=False, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def helm_template(*args: str, release: str = RELEASE, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    out = run("helm", "template", release, str(CHART), "--namespace", namespace, *args).stdout
    return documents(out)


def kustomize(directory: Path) -> list[dict[str, Any]]:
    return documents(run("kubectl", "kustomize", str(directory)).stdout)


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def kubectl_with_plugin(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real kubectl, finding `kubectl-sharedcore` (the installed console script) on its PATH."""
    assert PLUGIN.is_file(), f"{PLUGIN} missing: reinstall the package (make venv) to get the console script"
    env = {
        **os.environ,
        "PATH": f"{PLUGIN.parent}{os.pathsep}{binary('kubectl').parent}{os.pathsep}/usr/bin:/bin",
    }
    result = subprocess.run(
        [str(binary("kubectl")), *args], capture_output=True, text=True, env=env, check=False, timeout=120
    )
    assert not check or result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stderr}"
    return result
