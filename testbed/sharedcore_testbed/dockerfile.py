"""A small, faithful builder for the project's Dockerfile, so the testbed runs the operator's real image
recipe without Docker or a registry.

It executes the instructions the Dockerfile uses — ARG, FROM … AS, WORKDIR, ENV, COPY (honouring
.dockerignore), RUN (also `--mount=type=bind,from=<stage>`), USER, EXPOSE, ENTRYPOINT, CMD — and refuses any
other. Each stage is an overlay mount over its base image's root filesystem; RUN steps run in a chroot in
fresh mount and network namespaces (no network at all: pip installs from a local wheelhouse the testbed
prepares, given to the build as PIP_NO_INDEX/PIP_FIND_LINKS, as a mirror's settings would be). The last
stage's overlay upper directory becomes the image's one layer on top of its base's layers.
"""

import contextlib
import fnmatch
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sharedcore_testbed.oci import ImageConfig, overlay_whiteouts_to_oci

WHEELHOUSE_MOUNT = "/.testbed-wheels"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class DockerfileError(RuntimeError):
    """An instruction the builder does not support, or a base image it does not have."""


@dataclass
class BaseImage:
    """A locally built image usable in FROM: its extracted root filesystem, layers and config."""

    rootfs: Path
    layers: list[tuple[Path, str]]
    config: ImageConfig


@dataclass
class Stage:
    name: str
    base: BaseImage
    root: Path
    upper: Path
    config: ImageConfig = field(default_factory=ImageConfig)


@dataclass(frozen=True)
class Inputs:
    """What COPY and RUN read: the build context, its .dockerignore patterns, the local wheelhouse."""

    context: Path
    patterns: list[str]
    wheelhouse: Path


@dataclass
class Result:
    layers: list[tuple[Path, str]]
    upper: Path
    config: ImageConfig


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comments dropped, continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def ignored(relative: str, patterns: list[str]) -> bool:
    """.dockerignore: the last pattern matching the path or one of its parents decides (`!` re-includes)."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(candidate, glob) for candidate in candidates):
            verdict = not negate
    return verdict


def _ignore_patterns(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def build(
    *,
    context: Path,
    work: Path,
    images: Mapping[str, BaseImage],
    build_args: Mapping[str, str],
    wheelhouse: Path,
    log: Callable[[str], None],
) -> Result:
    """Build the context's Dockerfile in `work`; returns the final stage's layers and config."""
    args = dict(build_args)
    stages: list[Stage] = []
    inputs = Inputs(context, _ignore_patterns(context), wheelhouse)
    with contextlib.ExitStack() as mounts:
        for keyword, raw in instructions((context / "Dockerfile").read_text()):
            rest = _substitute(raw, {**args, **(stages[-1].config.env if stages else {})})
            log(f"{keyword} {rest}"[:120])
            if keyword == "ARG":
                name, _, default = rest.partition("=")
                args.setdefault(name, default)
            elif keyword == "FROM":
                stages.append(
                    mounts.enter_context(_stage(rest, work / f"stage{len(stages)}", images, stages))
                )
            elif not stages:
                raise DockerfileError(f"{keyword} before FROM")
            else:
                _apply(keyword, rest, stages, inputs)
    final = stages[-1]
    overlay_whiteouts_to_oci(final.upper)
    return Result(final.base.layers, final.upper, final.config)


@contextlib.contextmanager
def _stage(rest: str, directory: Path, images: Mapping[str, BaseImage], done: list[Stage]) -> Iterator[Stage]:
    words = rest.split()
    image, name = words[0], words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
    if image not in images:
        raise DockerfileError(
            f"FROM {image}: not built locally (the testbed has no registry; build it first or pass it as a "
            f"build argument naming a local image: {', '.join(images)})"
        )
    base = images[image]
    shutil.rmtree(directory, ignore_errors=True)
    upper, overlay_work, root = directory / "upper", directory / "work", directory / "root"
    for path in (upper, overlay_work, root):
        path.mkdir(parents=True)
    subprocess.run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={base.rootfs},upperdir={upper},workdir={overlay_work}",
            str(root),
        ],
        check=True,
    )
    config = ImageConfig(**{**vars(base.config), "env": dict(base.config.env)})
    try:
        yield Stage(name or str(len(done)), base, root, upper, config)
    finally:
        subprocess.run(["umount", "--lazy", str(root)], check=False)


def _substitute(text: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"${{{key}}}", value).replace(f"${key}", value)
    return text


def _inside(stage: Stage, path: str) -> Path:
    absolute = path if path.startswith("/") else f"{stage.config.workdir or '/'}/{path}"
    return stage.root / os.path.normpath(absolute).lstrip("/")


def _apply(keyword: str, rest: str, stages: list[Stage], inputs: Inputs) -> None:
    stage = stages[-1]
    config = stage.config
    if keyword == "WORKDIR":
        config.workdir = os.path.normpath(os.path.join(config.workdir or "/", rest))
        _inside(stage, config.workdir).mkdir(parents=True, exist_ok=True)
    elif keyword == "ENV":
        for pair in shlex.split(rest):
            key, _, value = pair.partition("=")
            config.env[key] = value
    elif keyword == "COPY":
        *sources, target = shlex.split(rest)
        _copy(inputs.context, inputs.patterns, sources, _inside(stage, target), target.endswith("/"))
    elif keyword == "RUN":
        _run(stage, stages, rest, inputs.wheelhouse)
    elif keyword == "USER":
        config.user = rest
    elif keyword == "EXPOSE":
        config.exposed_ports += [p if "/" in p else f"{p}/tcp" for p in rest.split()]
    elif keyword in ("ENTRYPOINT", "CMD"):
        argv: list[str] = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
        if keyword == "ENTRYPOINT":
            config.entrypoint = argv
        else:
            config.cmd = argv
    else:
        raise DockerfileError(f"unsupported instruction {keyword}")


def _copy(context: Path, patterns: list[str], sources: list[str], target: Path, into_dir: bool) -> None:
    for source in sources:
        path = context / source
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(context).as_posix()
                if file.is_file() and not ignored(relative, patterns):
                    destination = target / file.relative_to(path)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, destination)
        elif not ignored(source, patterns):
            destination = target / path.name if into_dir or len(sources) > 1 else target
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
        else:
            raise DockerfileError(f"COPY {source}: excluded by .dockerignore")


def _run(stage: Stage, stages: list[Stage], rest: str, wheelhouse: Path) -> None:
    binds = [(wheelhouse, WHEELHOUSE_MOUNT)]
    while rest.startswith("--mount="):
        option, _, rest = rest.partition(" ")
        fields = dict(item.split("=", 1) for item in option.removeprefix("--mount=").split(","))
        if fields.get("type") != "bind" or "from" not in fields:
            raise DockerfileError(f"unsupported RUN option {option}")
        source = next(s for s in stages if s.name == fields["from"])
        binds.append((_inside(source, fields["source"]), fields["target"]))
        rest = rest.strip()
    created = [target for _, target in binds if not _inside(stage, target).exists()]
    script = [f"mount --rbind /dev {stage.root}/dev", f"mount -t proc proc {stage.root}/proc"]
    for source_path, target in binds:
        _inside(stage, target).mkdir(parents=True, exist_ok=True)
        script.append(
            f"mount --bind {shlex.quote(str(source_path))} {shlex.quote(str(_inside(stage, target)))}"
        )
    env = {
        "PATH": DEFAULT_PATH,
        "HOME": "/root",
        **stage.config.env,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": WHEELHOUSE_MOUNT,
    }
    inner = f"cd {shlex.quote(stage.config.workdir or '/')} && exec /bin/sh -c {shlex.quote(rest)}"
    assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    script.append(f"exec chroot {stage.root} /usr/bin/env -i {assignments} /bin/sh -c {shlex.quote(inner)}")
    result = subprocess.run(
        ["unshare", "--mount", "--net", "--fork", "/bin/sh", "-ec", " && ".join(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    for target in created:
        with contextlib.suppress(OSError):
            _inside(stage, target).rmdir()
    if result.returncode:
        raise DockerfileError(
            f"RUN {rest} failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
