"""Where the testbed's control-plane binaries live.

The versions are pinned once, in tests/controlplane/versions.env; scripts/testbed-bin.sh builds them into a
cache outside the clone, keyed by those versions. This module computes the same directory, so the CLI, the
tests and the demo all find the binaries the script built.
"""

import os
from pathlib import Path

VERSIONS_FILE = Path("tests/controlplane/versions.env")
# envtest ships exactly these; everything else always comes from the project's cache.
ENVTEST_BINARIES = frozenset({"etcd", "kube-apiserver", "kubectl"})


class MissingBinaryError(RuntimeError):
    """A binary the testbed needs has not been built."""


def source_root() -> Path:
    """The checkout this package runs from: the testbed is a development tool and needs its Go modules."""
    for parent in Path(__file__).resolve().parents:
        if (parent / VERSIONS_FILE).is_file():
            return parent
    raise MissingBinaryError(
        f"cannot find {VERSIONS_FILE} above {__file__}: the testbed needs a source checkout of sharedcore"
    )


def read_versions(path: Path | None = None) -> dict[str, str]:
    """Parse versions.env (KEY=VALUE lines, # comments)."""
    text = (path or source_root() / VERSIONS_FILE).read_text()
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def cache_key(versions: dict[str, str]) -> str:
    return (
        f"k8s-{versions['KUBERNETES_VERSION']}_etcd-{versions['ETCD_VERSION']}"
        f"_kwok-{versions['KWOK_VERSION']}_helm-{versions['HELM_VERSION']}"
    )


def bin_dir() -> Path:
    """The cache directory scripts/testbed-bin.sh builds into (same rules as the script)."""
    cache = os.environ.get("SHAREDCORE_TESTBED_CACHE")
    if not cache:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        cache = str(Path(xdg) / "sharedcore" / "testbed")
    return Path(cache) / cache_key(read_versions()) / "bin"


def binary(name: str) -> Path:
    """Path of a built binary or data file (kwok-stages.yaml).

    KUBEBUILDER_ASSETS comes first for what envtest ships, then the project's cache.
    """
    candidates = []
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and name in ENVTEST_BINARIES:
        candidates.append(Path(assets) / name)
    candidates.append(bin_dir() / name)
    for path in candidates:
        if os.access(path, os.X_OK if not path.suffix else os.R_OK):
            return path
    raise MissingBinaryError(
        f"{name} is not built (looked in {', '.join(map(str, candidates))}): run `make testbed-bin`"
    )
