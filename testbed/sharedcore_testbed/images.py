"""The images real nodes run, built here from Debian's packages and the project's own files (`make images`).

Each image is a recipe: its inputs (files, versions, the images it builds on) give a digest, and the archive
is cached outside the clone as `<cache>/images/<name>-<digest>.tar`, so an unchanged image is never rebuilt.
A node imports every archive into its containerd at start. Adding an image is one recipe function and one
entry in RECIPES.

- pause: kubernetes' own pause.c from the pinned module, compiled static (containerd's sandbox image).
- base: Debian bookworm minbase with python3 and pip (debootstrap from the mirror apt uses), the local
  stand-in for the Dockerfile's Python base image.
- operator: the project's Dockerfile, built by sharedcore_testbed.dockerfile with PYTHON_IMAGE set to the
  base, tagged as the chart's default image.
- cloudnative-pg: CloudNativePG's manager built from its pinned module (scripts/testbed-bin.sh), laid out
  as its own Dockerfile does (/operator/manager_amd64, /manager a link to it).
- postgresql: Debian bookworm's PostgreSQL as CloudNativePG expects it: binaries on PATH, the postgres user
  and group at 26 (CloudNativePG's default), no cluster created; the tag carries the major version.
- standin: one image per platform, a tiny HTTP server answering the profile's probes
  (sharedcore_testbed.standin), tagged as every component image the profile renders, at STANDIN_VERSIONS.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sharedcore_testbed import cnpg, dockerfile, oci
from sharedcore_testbed.binaries import bin_dir, source_root

BASE_TAG = "sharedcore-testbed/base:bookworm"
PAUSE_TAG = "sharedcore-testbed/pause:3.10"
# SharedServices meant to run on real nodes use these versions: the stand-ins are tagged with them.
STANDIN_VERSIONS = ("1.0.0",)
BASE_PACKAGES = ("python3", "python3-pip")
RECIPE_REVISION = "1"  # bump when a recipe's code changes in a way its inputs do not show


@dataclass
class Built:
    """A finished image: its archive, tags, and (for images others build on) layers and root filesystem."""

    name: str
    archive: Path
    tags: list[str]
    digest: str
    base: dockerfile.BaseImage | None = None


@dataclass
class Builder:
    cache: Path
    log: Callable[[str], None]
    built: dict[str, Built] = field(default_factory=dict)

    def digest(self, name: str, inputs: Iterable[bytes]) -> str:
        hasher = hashlib.sha256(f"{name}\0{RECIPE_REVISION}".encode())
        for item in inputs:
            hasher.update(hashlib.sha256(item).digest())
        return hasher.hexdigest()[:16]

    def paths(self, name: str, digest: str) -> tuple[Path, Path, Path]:
        """archive, saved metadata, and working directory of one image version."""
        stem = self.cache / f"{name}-{digest}"
        return stem.with_suffix(".tar"), stem.with_suffix(".json"), self.cache / "work" / f"{name}-{digest}"


def images_dir() -> Path:
    return bin_dir().parent / "images"


def _mirror() -> str:
    """The Debian mirror apt already uses (deb822 sources or a sources.list line)."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        text = path.read_text()
        match = re.search(r"^URIs:\s*(\S+)", text, re.M) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M
        )
        if match and "security" not in match.group(1):
            return match.group(1)
    raise RuntimeError("no Debian mirror configured for apt")


def _layer_from(root: Path, out: Path) -> tuple[Path, str]:
    return out, oci.tar_layer(root, out)


def _finish(
    builder: Builder,
    *,
    name: str,
    digest: str,
    images: list[tuple[list[str], oci.ImageConfig]],
    layers: list[tuple[Path, str]],
    rootfs: Path | None = None,
) -> Built:
    """Write the archive (one or more images sharing layers) and what later builds need to know of it."""
    archive, meta, _ = builder.paths(name, digest)
    oci.write_archive(archive, images, layers)
    meta.write_text(
        json.dumps(
            {
                "tags": [tag for tags, _ in images for tag in tags],
                "layers": [[str(p), d] for p, d in layers],
                "config": vars(images[0][1]),
                "rootfs": str(rootfs) if rootfs else None,
            }
        )
    )
    return _load(name, digest, archive, meta)


def _load(name: str, digest: str, archive: Path, meta: Path) -> Built:
    saved = json.loads(meta.read_text())
    layers = [(Path(p), d) for p, d in saved["layers"]]
    base = (
        dockerfile.BaseImage(Path(saved["rootfs"]), layers, oci.ImageConfig(**saved["config"]))
        if saved["rootfs"]
        else None
    )
    return Built(name, archive, saved["tags"], digest, base)


def _cached(builder: Builder, name: str, digest: str) -> Built | None:
    archive, meta, _ = builder.paths(name, digest)
    if archive.exists() and meta.exists():
        return _load(name, digest, archive, meta)
    return None


def _kubernetes_source() -> Path:
    module = source_root() / "tests" / "controlplane" / "kubernetes"
    out = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes"],
        cwd=module,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"},
    )
    return Path(out.stdout.strip())


def pause(builder: Builder) -> list[Built]:
    source = _kubernetes_source() / "build" / "pause" / "linux" / "pause.c"
    digest = builder.digest("pause", [source.read_bytes()])
    if cached := _cached(builder, "pause", digest):
        return [cached]
    _, _, work = builder.paths("pause", digest)
    shutil.rmtree(work, ignore_errors=True)
    (work / "root").mkdir(parents=True)
    subprocess.run(["gcc", "-Os", "-static", "-o", str(work / "root" / "pause"), str(source)], check=True)
    subprocess.run(["strip", str(work / "root" / "pause")], check=True)
    layer = _layer_from(work / "root", work / "layer.tar")
    config = oci.ImageConfig(entrypoint=["/pause"])
    built = _finish(builder, name="pause", digest=digest, images=[([PAUSE_TAG], config)], layers=[layer])
    shutil.rmtree(work / "root")
    return [built]


def _strip(root: Path) -> None:
    """What an image does not need of a debootstrapped root: package lists and caches, docs, logs."""
    for junk in (
        "var/lib/apt/lists",
        "var/cache/apt",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/locale",
        "usr/share/info",
        "var/log",
    ):
        shutil.rmtree(root / junk, ignore_errors=True)
        (root / junk).mkdir(parents=True, exist_ok=True)


def _debootstrap(
    builder: Builder, name: str, digest: str, mirror: str, include: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """A fresh work directory for image `name` and a minimal Debian bookworm root in it: (work, root)."""
    _, _, work = builder.paths(name, digest)
    root = work / "rootfs"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    packages = [f"--include={','.join(include)}"] if include else []
    subprocess.run(
        ["debootstrap", "--variant=minbase", *packages, "bookworm", str(root), mirror],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return work, root


def base(builder: Builder) -> list[Built]:
    mirror = _mirror()
    digest = builder.digest("base", [mirror.encode(), " ".join(BASE_PACKAGES).encode()])
    if cached := _cached(builder, "base", digest):
        return [cached]
    builder.log(f"base: debootstrap bookworm from {mirror} (about a minute)")
    work, root = _debootstrap(builder, "base", digest, mirror, include=BASE_PACKAGES)
    # A Python image, as the Dockerfile expects of its base: pip may install into it.
    for marker in root.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    _strip(root)
    layer = _layer_from(root, work / "layer.tar")
    config = oci.ImageConfig(env={"PATH": dockerfile.DEFAULT_PATH}, cmd=["/bin/sh"])
    return [
        _finish(
            builder, name="base", digest=digest, images=[([BASE_TAG], config)], layers=[layer], rootfs=root
        )
    ]


def _chart_image() -> str:
    chart = yaml.safe_load((source_root() / "charts" / "sharedcore-operator" / "Chart.yaml").read_text())
    values = yaml.safe_load((source_root() / "charts" / "sharedcore-operator" / "values.yaml").read_text())
    return f"{values['image']['repository']}:{values['image']['tag'] or chart['appVersion']}"


def _context_files(root: Path) -> list[Path]:
    patterns = dockerfile._ignore_patterns(root)
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and ".git" not in path.parts
        and not dockerfile.ignored(path.relative_to(root).as_posix(), patterns)
    )


def _wheelhouse(work: Path, project: Path) -> Path:
    """The operator's runtime and build dependencies as wheels, fetched by the development setup's own pip;
    the image build installs from here with no network."""
    wheels = work / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    build_requires = tomllib.loads((project / "pyproject.toml").read_text())["build-system"]["requires"]
    subprocess.run(
        [*pip, "download", "--dest", str(wheels), "--only-binary=:all:", *build_requires], check=True
    )
    subprocess.run([*pip, "wheel", "--wheel-dir", str(wheels), str(project)], check=True, cwd=work)
    for own in wheels.glob("sharedcore-*.whl"):
        own.unlink()  # the Dockerfile builds the project's own wheel itself
    return wheels


def operator(builder: Builder) -> list[Built]:
    project = source_root()
    base_image = builder.built["base"]
    tag = _chart_image()
    files = _context_files(project)
    digest = builder.digest(
        "operator",
        [
            base_image.digest.encode(),
            tag.encode(),
            *(str(f.relative_to(project)).encode() + f.read_bytes() for f in files),
        ],
    )
    if cached := _cached(builder, "operator", digest):
        return [cached]
    _, _, work = builder.paths("operator", digest)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    builder.log("operator: wheels of its dependencies (pip, from its cache or the package index)")
    wheels = _wheelhouse(work, project)
    assert base_image.base is not None
    result = dockerfile.build(
        context=project,
        work=work / "build",
        images={BASE_TAG: base_image.base},
        build_args={"PYTHON_IMAGE": BASE_TAG},
        wheelhouse=wheels,
        log=lambda line: builder.log(f"operator: {line}"),
    )
    layer = _layer_from(result.upper, work / "layer.tar")
    built = _finish(
        builder,
        name="operator",
        digest=digest,
        images=[([tag], result.config)],
        layers=[*result.layers, layer],
    )
    # Nothing builds on the operator image: its layer lives on in the archive only (a base keeps its root).
    shutil.rmtree(work, ignore_errors=True)
    return [built]


def cloudnative_pg(builder: Builder) -> list[Built]:
    manager = cnpg.manager_binary()
    tag = cnpg.operator_image()
    digest = builder.digest("cloudnative-pg", [tag.encode(), oci.file_sha256(manager).encode()])
    if cached := _cached(builder, "cloudnative-pg", digest):
        return [cached]
    _, _, work = builder.paths("cloudnative-pg", digest)
    shutil.rmtree(work, ignore_errors=True)
    (work / "root" / "operator").mkdir(parents=True)
    (work / "root").chmod(0o755)
    shutil.copy(manager, work / "root" / "operator" / "manager_amd64")
    (work / "root" / "operator" / "manager_amd64").chmod(0o755)
    # Without this link every reconcile fails with "invalid architecture: amd64".
    (work / "root" / "manager").symlink_to("operator/manager_amd64")
    layer = _layer_from(work / "root", work / "layer.tar")
    config = oci.ImageConfig(entrypoint=["/manager"], user="65532:65532")
    built = _finish(builder, name="cloudnative-pg", digest=digest, images=[([tag], config)], layers=[layer])
    shutil.rmtree(work / "root")
    return [built]


POSTGRES_PACKAGES = (f"postgresql-{cnpg.POSTGRES_MAJOR}",)
POSTGRES_UID = 26  # CloudNativePG runs PostgreSQL as 26:26 unless a Cluster says otherwise


def _chroot(root: Path, script: str) -> None:
    subprocess.run(
        ["chroot", str(root), "/bin/sh", "-ec", script],
        check=True,
        stdout=subprocess.DEVNULL,
        env={"PATH": dockerfile.DEFAULT_PATH, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"},
    )


def postgresql(builder: Builder) -> list[Built]:
    mirror = _mirror()
    digest = builder.digest("postgresql", [mirror.encode(), " ".join(POSTGRES_PACKAGES).encode()])
    if cached := _cached(builder, "postgresql", digest):
        return [cached]
    builder.log(f"postgresql: debootstrap bookworm from {mirror}, then {' '.join(POSTGRES_PACKAGES)}")
    work, root = _debootstrap(builder, "postgresql", digest, mirror)
    # No service may start in the chroot, and CloudNativePG runs initdb itself: no cluster is created.
    policy = root / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    (root / "etc" / "postgresql-common").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "postgresql-common" / "createcluster.conf").write_text("create_main_cluster = false\n")
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        _chroot(
            root,
            f"apt-get update -q; apt-get install -y -q --no-install-recommends {' '.join(POSTGRES_PACKAGES)}",
        )
    finally:
        subprocess.run(["umount", "--lazy", str(root / "proc")], check=False)
    uid = POSTGRES_UID
    _chroot(
        root,
        rf"""old_uid=$(id -u postgres); old_gid=$(id -g postgres)
if getent group {uid} >/dev/null; then groupmod -g 1{uid} "$(getent group {uid} | cut -d: -f1)"; fi
groupmod -g {uid} postgres; usermod -u {uid} -g {uid} postgres
find / -xdev \( -uid "$old_uid" -o -gid "$old_gid" \) -exec chown -h {uid}:{uid} {{}} +""",
    )
    policy.unlink()
    _strip(root)
    layer = _layer_from(root, work / "layer.tar")
    path = f"/usr/lib/postgresql/{cnpg.POSTGRES_MAJOR}/bin:{dockerfile.DEFAULT_PATH}"
    config = oci.ImageConfig(env={"PATH": path, "LANG": "C.UTF-8"}, user=f"{uid}:{uid}")
    built = _finish(
        builder, name="postgresql", digest=digest, images=[([cnpg.POSTGRES_IMAGE], config)], layers=[layer]
    )
    shutil.rmtree(root)
    return [built]


def standins(builder: Builder) -> list[Built]:
    profiles = sorted((source_root() / "operator" / "sharedcore" / "profiles").glob("*/profile.yaml"))
    script = Path(__file__).with_name("standin.py")
    base_image = builder.built["base"]
    assert base_image.base is not None
    layer_digest = builder.digest("standin-layer", [script.read_bytes()])
    layer_path = builder.cache / f"standin-layer-{layer_digest}.tar"
    if not layer_path.exists():
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp).chmod(0o755)  # the layer's root is the container's /
            target = Path(tmp) / "usr" / "local" / "bin" / "standin"
            target.parent.mkdir(parents=True)
            shutil.copy(script, target)
            target.chmod(0o755)
            oci.tar_layer(Path(tmp), layer_path)
    layer = (layer_path, oci.file_sha256(layer_path))
    images = []
    for path in profiles:
        profile = yaml.safe_load(path.read_text())
        platform = path.parent.name
        tags = [
            f"{profile['image']}/{c['name']}:{v}" for c in profile["components"] for v in STANDIN_VERSIONS
        ]
        ports = sorted(
            {
                port["port"]
                for component in profile["components"]
                for port in component.get("ports", [])
                if port.get("protocol", "TCP") == "TCP"
            }
        )
        env = {"STANDIN_PLATFORM": platform, "STANDIN_PORTS": ",".join(map(str, ports))}
        config = oci.ImageConfig(
            env={**base_image.base.config.env, **env, "PYTHONDONTWRITEBYTECODE": "1"},
            entrypoint=["python3", "/usr/local/bin/standin"],
            user="65532:65532",
        )
        images.append((tags, config))
    digest = builder.digest(
        "standin",
        [
            base_image.digest.encode(),
            layer[1].encode(),
            json.dumps([vars(c) | {"t": t} for t, c in images]).encode(),
        ],
    )
    if cached := _cached(builder, "standin", digest):
        return [cached]
    return [
        _finish(
            builder, name="standin", digest=digest, images=images, layers=[*base_image.base.layers, layer]
        )
    ]


RECIPES: dict[str, Callable[[Builder], list[Built]]] = {
    "pause": pause,
    "base": base,
    "operator": operator,
    "standin": standins,
    "cloudnative-pg": cloudnative_pg,
    "postgresql": postgresql,
}


KEEP_VERSIONS = 3  # of each image and of the containerd template: enough for a few worktrees at once


def build_all(log: Callable[[str], None] = print) -> list[Built]:
    """Build (or take from the cache) every image; return them in build order."""
    cache = images_dir()
    cache.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    builder = Builder(cache, lambda line: log(f"[images {time.monotonic() - start:5.0f}s] {line}"))
    every: list[Built] = []
    for name, recipe in RECIPES.items():
        t0 = time.monotonic()
        built = recipe(builder)
        builder.built[name] = built[0]
        every += built
        size = sum(image.archive.stat().st_size for image in built) / 2**20
        tags = sum(len(image.tags) for image in built)
        builder.log(f"{name}: {tags} tag(s), {size:.0f} MiB, {time.monotonic() - t0:.1f}s")
    builder.log(f"all images ready in {time.monotonic() - start:.1f}s")
    for image in every:
        for path in (image.archive, image.archive.with_suffix(".json")):
            os.utime(path)  # used now: pruning keeps it
    prune(cache)
    return every


def prune(cache: Path, keep: int = KEEP_VERSIONS) -> list[Path]:
    """Remove all but the `keep` most recently used versions of each image and of the containerd template
    (every change of the operator's code makes a new operator image and a new 1.5 GiB template: the disk
    filled in a day of work). Versions in use by other worktrees are the recent ones; a node's copy of a
    template is hard links, which outlive the template's removal. Returns what was removed."""
    versions: dict[str, list[Path]] = {}
    for path in cache.iterdir():
        if path.name.startswith((".", "containerd-template-")) or path.name == "work":  # in the making
            continue
        name = path.name.removesuffix(".tar").removesuffix(".json").rsplit("-", 1)[0]
        versions.setdefault(name, []).append(path)
    removed = []
    for paths in versions.values():
        by_version: dict[str, list[Path]] = {}
        for path in paths:
            by_version.setdefault(path.name.removesuffix(".tar").removesuffix(".json"), []).append(path)
        ranked = sorted(by_version.values(), key=lambda group: max(p.stat().st_mtime for p in group))
        for group in ranked[:-keep]:
            for path in group:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
    return removed
