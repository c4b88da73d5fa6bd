"""Manifests as a multi-document YAML stream, in the order and key order they were built."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from sharedcore.render.context import Manifest


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # manifests are read by people and kubectl: no &anchors


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Config files embedded in ConfigMaps read best as literal blocks.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(objects: Iterable[Manifest]) -> str:
    return yaml.dump_all(
        objects,
        Dumper=_Dumper,
        sort_keys=False,
        explicit_start=True,
        allow_unicode=True,
        default_flow_style=False,
        width=120,
    )
