from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from localparts import Receiver, SmtpServer, start_receiver, start_smtp

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = start_receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = start_smtp()
    yield server
    server.controller.stop()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped config/ directory, as an outside harness would make."""
    target = tmp_path / "config"
    shutil.copytree(ROOT / "config", target)
    return target
