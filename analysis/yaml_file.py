"""Strict reading of YAML files: UTF-8 text, no key given twice, errors with line and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["UniqueKeyLoader", "YamlFileError", "read_yaml"]


class YamlFileError(ValueError):
    """A YAML file that cannot be read; the message names the file and where it fails."""


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} given twice (lines {seen[key]} and {line})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """The contents of a YAML file; a missing file, bad text or bad YAML is a YamlFileError."""
    if not path.exists():
        raise YamlFileError(f"configuration file {path} does not exist")
    if not path.is_file():
        raise YamlFileError(f"configuration {path} is not a file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise YamlFileError(f"{path}: not a text (UTF-8) file (byte {err.start})") from None
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = "" if mark is None else f" line {mark.line + 1} column {mark.column + 1}:"
        problem = getattr(err, "problem", None) or str(err)
        context = getattr(err, "context", None)
        detail = problem if not context else f"{problem} ({context})"
        raise YamlFileError(f"{path}:{at} not valid YAML: {detail}") from None
