from __future__ import annotations

import subprocess
import sys


def test_demo_prints_alerts_offline() -> None:
    result = subprocess.run([sys.executable, "-m", "monitor.cli", "demo"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Washington blacklists 140 more Chinese chip companies" in out
    assert "https://demo.invalid/tech/gallium-germanium-ban" in out
    # two outlets carried the Entity List story: one alert, with "also reported by"
    assert out.count("blacklists 140 more Chinese chip companies") == 2  # the alert and the story summary line
    assert "also reported by 1: wire-world" in out
    assert "Storm brings flooding" not in out
