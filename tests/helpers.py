"""Shared helpers for tests that drive the CLI against a temp copy of the configuration."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from monitor.cli import main

KEYWORD_WATCHLIST = """\
name: test-watch
channels: [default]
keywords:
  all:
    - [China, Chinese, Beijing, Huawei]
    - [chip, chips, hackers, Entity List, export]
"""


def write_config(config_dir: Path, channels: list[str], feeds: list[dict[str, Any]], *,
                 classifier: bool = False, keyword_watchlist: bool = True, **settings: Any) -> Path:
    """Point a copy of config/ at local parts: feeds, channels, and (by default) one keyword watchlist."""
    path = config_dir / "monitor.yaml"
    data = yaml.safe_load(path.read_text())
    data["channels"] = {"default": channels}
    data.setdefault("classifier", {})["enabled"] = classifier
    for key, value in settings.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data))
    (config_dir / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}))
    if keyword_watchlist:
        shutil.rmtree(config_dir / "watchlists")
        (config_dir / "watchlists").mkdir()
        (config_dir / "watchlists" / "test.yaml").write_text(KEYWORD_WATCHLIST)
    return path


def run_once(config: Path, state: Path, *extra: str) -> int:
    return main(["--config", str(config), "--state", str(state), *extra, "run", "--once"])


def cli(config: Path, state: Path, *args: str) -> int:
    return main(["--config", str(config), "--state", str(state), *args])
