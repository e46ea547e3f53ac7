"""sd_notify over a real AF_UNIX datagram socket; the unit file keeps its contract."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from monitor.systemd import Notifier, watchdog_interval_s

ROOT = Path(__file__).resolve().parent.parent


def test_notifier_sends_datagrams_in_order(tmp_path: Path) -> None:
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = Notifier(str(path))
        assert notifier.ready("up: 3 feeds") and notifier.watchdog() and notifier.status("a\nb") and notifier.stopping()
        got = [sock.recv(1024).decode() for _ in range(4)]
        notifier.close()
    assert got[0].splitlines()[:2] == ["READY=1", "STATUS=up: 3 feeds"]
    assert got[1:] == ["WATCHDOG=1", "STATUS=a b", "STOPPING=1\nSTATUS=stopping"]


def test_abstract_socket_and_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0monitor-test-notify")
        abstract = Notifier("@monitor-test-notify")
        assert abstract.watchdog()
        abstract.close()
        assert sock.recv(64) == b"WATCHDOG=1"
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    quiet = Notifier()
    assert not quiet.enabled and quiet.ready("x") is False  # outside systemd: a no-op
    missing = Notifier("/nonexistent/socket")
    assert missing.watchdog() is False  # never raises
    missing.close()


def test_watchdog_interval_is_half_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval_s() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval_s() is None


def test_unit_file_is_type_notify_with_watchdog_and_commented_hardening() -> None:
    text = (ROOT / "monitor.service").read_text()
    lines = text.splitlines()
    for key in ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "NoNewPrivileges=yes", "ProtectSystem=strict",
                "ProtectHome=yes", "PrivateTmp=yes", "StateDirectory=monitor", "DynamicUser=yes", "KillMode=mixed"):
        assert any(line.startswith(key) for line in lines), key
    service = lines[lines.index("[Service]") + 1:lines.index("[Install]")]
    for index, line in enumerate(service):  # every setting has a comment right above it (or a block's)
        if line and not line.startswith("#") and "=" in line:
            above = [x for x in service[:index] if x.strip()]
            assert above and (above[-1].startswith("#") or "=" in above[-1]), line


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = tmp_path / "monitor.service"
    # ExecStart must point at an existing binary for verify; everything else is the shipped file
    text = (ROOT / "monitor.service").read_text().replace("/usr/local/bin/monitor", shutil.which("true") or "/bin/true")
    unit.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                            timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "monitor.service" in line and "Failed to" not in line]
    assert result.returncode == 0 or not problems, result.stdout + result.stderr
