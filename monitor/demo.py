"""`monitor demo`: the whole pipeline, offline, on sample feeds shipped inside the package."""

from __future__ import annotations

import shutil
import tempfile
from importlib import resources
from pathlib import Path

DEMO_SETTINGS = """\
# Written by `monitor demo` into a temporary directory.
channels:
  default: [console://]
alerts:
  max_age: null      # the sample items are old; alert on them anyway
classifier:
  enabled: false     # the demo shows keyword watchlists; `monitor run` uses the trained model
"""


def _write_demo_config(root: Path) -> Path:
    demo = resources.files("monitor") / "data" / "demo"
    config = root / "config"
    (config / "watchlists").mkdir(parents=True)
    feeds = []
    for item in sorted(demo.iterdir(), key=lambda p: p.name):
        if item.name.endswith((".xml", ".atom")):
            target = root / "feeds" / item.name
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(item.read_bytes())
            feeds.append(f"  - {{url: {target.as_uri()!r}, name: {item.name.split('.')[0]!r}}}")
    for item in (demo / "watchlists").iterdir():
        (config / "watchlists" / item.name).write_bytes(item.read_bytes())
    (config / "feeds.yaml").write_text("feeds:\n" + "\n".join(feeds) + "\n")
    (config / "monitor.yaml").write_text(DEMO_SETTINGS)
    return config / "monitor.yaml"


def run_demo() -> int:
    import logging

    from .app import open_app

    if logging.getLogger().level == logging.INFO:  # the demo's output is the alerts, not the log
        logging.getLogger().setLevel(logging.WARNING)

    root = Path(tempfile.mkdtemp(prefix="monitor-demo-"))
    try:
        app = open_app(_write_demo_config(root), root / "state")
        print(f"monitor demo: {len(app.config.feeds)} sample feeds, watchlists: "
              f"{', '.join(w.name for w in app.watchlists)}\n")
        stats = app.pipeline.run_cycle(all_feeds=True)
        stories = app.store.recent_stories(limit=100)
        app.close()
        print("─" * 72)
        print(f"{stats.entries_new} entries from {stats.feeds_ok} feeds became {len(stories)} stories; "
              f"{stats.alerts_sent} alerts shown above.")
        for row in stories:
            if row.size > 1:
                print(f"  one story, {row.size} outlets: {row.view.title} ({', '.join(row.view.sources)})")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)
