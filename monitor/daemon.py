"""The long-running service: APScheduler is only the metronome; the store decides which feeds are due.

One tick job (max_instances=1, coalesce=True) runs a pipeline cycle. SIGHUP reloads the configuration
(an invalid edit is logged and the running configuration kept); SIGTERM/SIGINT stop after the tick in flight.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from .app import App, load_validated, open_app
from .errors import ConfigError

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, app: App, config_path: Path) -> None:
        self.app = app
        self.config_path = config_path
        self.scheduler = BlockingScheduler(timezone="UTC")
        self._reload_requested = threading.Event()
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self.reload()
            try:
                self.app.pipeline.run_cycle()
            except Exception:  # a failed cycle is logged; the next tick tries again
                log.exception("cycle failed")

    def reload(self) -> bool:
        try:
            config, watchlists = load_validated(self.config_path)
        except ConfigError as exc:
            log.error("configuration reload rejected; keeping the running configuration:\n%s", exc)
            return False
        self.app.config, self.app.watchlists = config, watchlists
        self.app.pipeline.reconfigure(config, watchlists)
        log.info("configuration reloaded: %d feeds, %d watchlists", len(config.feeds), len(watchlists))
        return True

    def request_reload(self, *_: object) -> None:
        self._reload_requested.set()

    def stop(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping after the current cycle", signal.Signals(signum).name)
        self.scheduler.shutdown(wait=False)

    def run(self) -> None:
        tick = self.app.config.settings.poll.tick
        self.scheduler.add_job(self.tick, "interval", seconds=tick, id="tick", max_instances=1, coalesce=True,
                               next_run_time=self.app.pipeline.clock(), misfire_grace_time=None)
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, self.request_reload)
        log.info("monitor running: %d feeds, %d watchlists, tick every %.0fs", len(self.app.config.feeds),
                 len(self.app.watchlists), tick)
        self.scheduler.start()
        with self._lock:  # wait for a tick in flight to finish before closing the database
            log.info("monitor stopped")


def run_daemon(config_path: Path, state_dir: Path) -> None:
    app = open_app(config_path, state_dir, progress=False)
    try:
        Daemon(app, config_path).run()
    finally:
        app.close()
