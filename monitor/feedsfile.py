"""Edit feeds.yaml in place for `monitor feeds add/remove/import`: append or delete list items as text,
so the rest of the file (comments, order, flow or block style) stays as the user wrote it.

Every edit is validated before it replaces the file (written next to it, then renamed over it, so a
running daemon never reads half a file); the daemon notices the new modification time and reloads.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import load_feeds_file
from .errors import ConfigError


@dataclass(frozen=True)
class NewFeed:
    url: str
    name: str | None = None
    tags: tuple[str, ...] = ()
    interval: str | None = None  # as written: 15m, 2h ...


def item_text(feed: NewFeed) -> str:
    """One flow-style item, like the shipped file: {url: "...", name: "...", tags: [a, b]}."""
    parts = [f"url: {json.dumps(feed.url)}"]
    if feed.name:
        parts.append(f"name: {json.dumps(feed.name, ensure_ascii=False)}")
    if feed.interval:
        parts.append(f"interval: {json.dumps(feed.interval)}")
    if feed.tags:
        parts.append("tags: [" + ", ".join(json.dumps(t, ensure_ascii=False) for t in feed.tags) + "]")
    return "{" + ", ".join(parts) + "}"


def _feeds_node(text: str) -> tuple[yaml.MappingNode | None, yaml.Node | None]:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        return None, None
    if not isinstance(root, yaml.MappingNode):
        raise ValueError("expected a mapping with a `feeds:` list at the top level")
    for key, value in root.value:
        if key.value == "feeds":
            return root, value
    return root, None


def add_items(text: str, feeds: Sequence[NewFeed]) -> str:
    """The file's text with ``feeds`` appended to its `feeds:` list."""
    if not feeds:
        return text
    _, seq = _feeds_node(text)
    if isinstance(seq, yaml.SequenceNode) and seq.value and seq.flow_style is False:
        last = seq.value[-1]
        indent = " " * (seq.value[0].start_mark.column - 2)
        lines = text.splitlines(keepends=True)
        end_line = _end_line(last, lines)
        if end_line and not lines[end_line - 1].endswith("\n"):
            lines[end_line - 1] += "\n"
        new = [f"{indent}- {item_text(feed)}\n" for feed in feeds]
        return "".join(lines[:end_line] + new + lines[end_line:])
    # no list yet (absent, `feeds: []` or null): write a fresh block list at the end of the file
    body = "".join(f"  - {item_text(feed)}\n" for feed in feeds)
    if seq is not None:
        text = re.sub(r"(?m)^feeds:.*\n?", "", text, count=1)
    if text and not text.endswith("\n"):
        text += "\n"
    return f"{text}feeds:\n{body}"


def remove_items(text: str, indexes: Sequence[int]) -> str:
    """The file's text without the list items at ``indexes`` (their own lines are deleted)."""
    _, seq = _feeds_node(text)
    if not isinstance(seq, yaml.SequenceNode) or seq.flow_style:
        raise ValueError("cannot edit this feeds.yaml automatically: `feeds:` is not a block list")
    if len(set(indexes)) == len(seq.value):
        start = seq.start_mark.line
        lines = text.splitlines(keepends=True)
        end = _end_line(seq.value[-1], lines)
        key_line = next(i for i in range(start, -1, -1) if lines[i].lstrip().startswith("feeds:"))
        return "".join(lines[:key_line] + ["feeds: []\n"] + lines[end:])
    lines = text.splitlines(keepends=True)
    drop: set[int] = set()
    for index in indexes:
        node = seq.value[index]
        drop.update(range(node.start_mark.line, _end_line(node, lines)))
    return "".join(line for number, line in enumerate(lines) if number not in drop)


def _end_line(node: yaml.Node, lines: list[str]) -> int:
    """The line after the node's last line (exclusive end). A block collection "ends" where the next
    token starts (after any comments), so look at its last value instead."""
    return min(_last_line(node) + 1, len(lines))


def _last_line(node: yaml.Node) -> int:
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _last_line(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _last_line(node.value[-1])
    end = node.end_mark
    if end.column == 0 and end.line > node.start_mark.line:  # block scalars end at the next line's start
        return end.line - 1
    return end.line


def item_index(text: str, wanted: str, base: Path) -> list[int]:
    """Indexes of items whose url (as written or resolved) or name equals ``wanted``."""
    data = yaml.safe_load(text) or {}
    found = []
    for index, item in enumerate(data.get("feeds") or []):
        if not isinstance(item, dict):
            continue
        url = str(item.get("url", ""))
        resolved = url if "://" in url else (base / url).resolve().as_uri()
        if wanted in (url, resolved, item.get("name")):
            found.append(index)
    return found


def write_validated(path: Path, text: str) -> None:
    """Validate ``text`` as a feeds file, then atomically replace ``path`` with it (ConfigError if invalid)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        _, problems = load_feeds_file(tmp)
        if problems:
            raise ConfigError([p.replace(str(tmp), str(path)) for p in problems])
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
