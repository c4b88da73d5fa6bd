"""Manifests as a multi-document YAML stream, in the order and key order they were built."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from sharedcore.render.context import Manifest


class ManifestDumper(yaml.SafeDumper):
    """YAML for people and kubectl: no &anchors, and multi-line strings as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Embedded config files, PromQL and Lua read best as literal blocks, as a person would write them.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


ManifestDumper.add_representer(str, _represent_str)


def to_yaml(objects: Iterable[Manifest]) -> str:
    return yaml.dump_all(
        objects,
        Dumper=ManifestDumper,
        sort_keys=False,
        explicit_start=True,
        allow_unicode=True,
        default_flow_style=False,
        width=120,
    )
