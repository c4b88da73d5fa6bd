"""Image archives without Docker: root filesystems as tar layers, written as a docker-archive.

containerd imports the format (`ctr -n k8s.io images import X.tar`), so a node needs no registry. Layers are
reproducible (sorted names, mtime 0, numeric owners), so an image built twice from the same inputs has the
same digests and a layer shared by two images (the base) is stored once per node.
"""

import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ImageConfig:
    """The runtime part of an image's config (what a Dockerfile's ENV/USER/ENTRYPOINT… set)."""

    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    user: str = ""
    workdir: str = ""
    exposed_ports: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        config: dict[str, Any] = {"Env": [f"{k}={v}" for k, v in self.env.items()]}
        if self.entrypoint:
            config["Entrypoint"] = self.entrypoint
        if self.cmd:
            config["Cmd"] = self.cmd
        if self.user:
            config["User"] = self.user
        if self.workdir:
            config["WorkingDir"] = self.workdir
        if self.exposed_ports:
            config["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        return config


def tar_layer(root: Path, out: Path) -> str:
    """Tar a directory as one layer (GNU tar: fast, keeps owners, modes, links and devices); its sha256."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "tar",
            "--create",
            f"--file={out}",
            f"--directory={root}",
            "--sort=name",
            "--mtime=@0",
            "--numeric-owner",
            "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
            ".",
        ],
        check=True,
    )
    return file_sha256(out)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def overlay_whiteouts_to_oci(upper: Path) -> None:
    """An overlayfs upper directory as a layer: deletion marks (0/0 character devices) become `.wh.` files."""
    for directory, _dirs, files in os.walk(upper):
        for name in files:
            path = Path(directory) / name
            info = path.lstat()
            if (info.st_mode & 0o170000) == 0o020000 and info.st_rdev == 0:
                path.unlink()
                (Path(directory) / f".wh.{name}").touch()


def write_archive(
    out: Path, images: Sequence[tuple[Sequence[str], ImageConfig]], layers: Sequence[tuple[Path, str]]
) -> None:
    """A docker-archive of images (tags, config) sharing `layers`: (tar path, sha256) from the bottom up."""
    manifest = []
    files: list[tuple[str, bytes]] = []
    for tags, config in images:
        image = {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": config.as_json(),
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest}" for _, digest in layers]},
            "history": [
                {"created": "1970-01-01T00:00:00Z", "created_by": "sharedcore-testbed"} for _ in layers
            ],
        }
        config_bytes = json.dumps(image, sort_keys=True).encode()
        config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
        files.append((config_name, config_bytes))
        manifest.append(
            {"Config": config_name, "RepoTags": list(tags), "Layers": [f"{d}/layer.tar" for _, d in layers]}
        )
    files.append(("manifest.json", json.dumps(manifest).encode()))
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as archive:
        for path, digest in layers:
            archive.add(path, arcname=f"{digest}/layer.tar")
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    tmp.replace(out)
