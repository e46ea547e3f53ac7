"""Load YAML while remembering the line of every key and list item, so errors can name file:line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass
class YamlDoc:
    """Parsed YAML data plus the 1-based line of each path inside it."""

    path: Path
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    # where a scalar's text begins (the line after the key for block scalars like 'query: |')
    value_lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, loc: Path_) -> int:
        """The line of the deepest known prefix of ``loc`` (1 when nothing is known)."""
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in self.lines:
                return self.lines[loc[:cut]]
        return 1

    def where(self, loc: Path_) -> str:
        return f"{self.path}:{self.line_of(loc)}"


class YamlSyntaxError(Exception):
    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        super().__init__(f"{path}:{line}: invalid YAML: {message}")


def load_yaml(path: Path) -> YamlDoc:
    """Parse one YAML file; raise YamlSyntaxError with the line of the problem."""
    text = path.read_text(encoding="utf-8")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlSyntaxError(path, line, str(exc.problem or exc)) from None
    finally:
        loader.dispose()
    doc = YamlDoc(path=path, data=data)
    if node is not None:
        doc.lines[()] = node.start_mark.line + 1
        _record_lines(node, (), doc.lines, doc.value_lines)
    return doc


def _record_lines(node: yaml.Node, prefix: Path_, lines: dict[Path_, int], value_lines: dict[Path_, int]) -> None:
    if isinstance(node, yaml.ScalarNode):
        block = node.style in ("|", ">")
        value_lines[prefix] = node.start_mark.line + (2 if block else 1)
    elif isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            lines[prefix + (key,)] = key_node.start_mark.line + 1
            _record_lines(value_node, prefix + (key,), lines, value_lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[prefix + (index,)] = item.start_mark.line + 1
            _record_lines(item, prefix + (index,), lines, value_lines)
