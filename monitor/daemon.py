"""The long-running service: APScheduler is only the metronome; the store decides which feeds are due.

One tick job (max_instances=1, coalesce=True) runs a pipeline cycle; the main thread only waits for
signals. Configuration files (monitor.yaml, feeds.yaml, the entity file, watchlists/*.yaml) are watched:
an edit is picked up at the next tick, SIGHUP forces a re-read, and an invalid edit is logged while the
running configuration stays in force. Under systemd (Type=notify) the daemon says READY=1 once the
configuration, database and model are loaded, pings WATCHDOG=1 only while ticks make progress, reports STATUS=
after each cycle and STOPPING=1 on SIGTERM; the cycle in flight then finishes the feed it is on and abandons the
rest safely.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from .app import App, load_validated, open_app
from .config import Config
from .errors import ConfigError
from .metrics import Observer, make_observer
from .pipeline import CycleStats
from .retention import maintain
from .systemd import Notifier, watchdog_interval_s

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int], ...]


def config_fingerprint(config: Config) -> Fingerprint:
    """(path, mtime_ns, size) of every configuration file, so an edit (or a new/removed watchlist) shows."""
    settings = config.settings
    paths = [config.path, config.path.parent / settings.feeds_file]
    if config.entities_path is not None:  # shared entity groups change what watchlists match
        paths.append(config.entities_path)
    watch_dir = config.path.parent / settings.watchlists_dir
    if watch_dir.is_dir():
        paths.extend(sorted(watch_dir.glob("*.y*ml")))
    out = []
    for path in paths:
        try:
            stat = path.stat()
            out.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            out.append((str(path), -1, -1))
    return tuple(out)


@dataclass
class Health:
    """What the watchdog looks at: the scheduler runs and ticks make progress."""

    stale_after_s: float
    beat: float = 0.0  # time.monotonic() of the last sign of progress

    def touch(self) -> None:
        self.beat = time.monotonic()

    def healthy(self, scheduler_running: bool) -> bool:
        return scheduler_running and time.monotonic() - self.beat < self.stale_after_s


class _SkipOverlapNotices(logging.Filter):
    """A tick still running when the next is due is normal (a long first cycle): APScheduler's warning
    about the skipped run would repeat every tick, so it is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


class Daemon:
    def __init__(self, app: App, config_path: Path, notifier: Notifier | None = None,
                 observer: Observer | None = None) -> None:
        self.app = app
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.observer = observer or Observer()
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._reload_requested = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._fingerprint = config_fingerprint(app.config)
        self._rejected: Fingerprint | None = None  # an invalid version already reported
        self.health = Health(stale_after_s=self._stale_after(app.config))
        self.health.touch()
        app.pipeline.progress = self.health.touch
        app.pipeline.observer = self.observer

    @staticmethod
    def _stale_after(config: Config) -> float:
        # a tick may legitimately wait for one slow request (fetch.deadline) between two signs of progress
        s = config.settings
        return max(3 * s.poll.tick, 2 * s.fetch.deadline, 120.0)

    # -- the tick ---------------------------------------------------------------------------------------

    def tick(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self.health.touch()
            self.check_reload()
            try:
                stats = self.app.pipeline.run_cycle()
                self.notifier.status(status_line(stats))
            except Exception:  # a failed cycle is logged; the next tick tries again
                log.exception("cycle failed")
            self._maintain()
            self._report_health()
            self.health.touch()

    def _maintain(self) -> None:
        try:
            maintain(self.app.store, self.app.config.settings, self.app.pipeline.clock())
        except Exception:  # housekeeping must never stop polling
            log.exception("maintenance (prune / optimize) failed")

    def _report_health(self) -> None:
        counts = self.app.store.feed_health_counts()
        self.observer.feeds(counts["configured"], counts["failing"])

    # -- configuration ----------------------------------------------------------------------------------

    def check_reload(self) -> bool:
        """Reload when SIGHUP asked for it or a configuration file changed; True when a new config is live."""
        forced = self._reload_requested.is_set()
        self._reload_requested.clear()
        current = config_fingerprint(self.app.config)
        if not forced and (current == self._fingerprint or current == self._rejected):
            return False
        reason = "SIGHUP" if forced else "configuration files changed"
        if self.reload(reason):
            self._fingerprint, self._rejected = config_fingerprint(self.app.config), None
            return True
        self._rejected = current
        return False

    def reload(self, reason: str = "reload") -> bool:
        try:
            config, watchlists = load_validated(self.config_path)
        except ConfigError as exc:
            log.error("configuration reload (%s) rejected; keeping the running configuration:\n  %s", reason,
                      "\n  ".join(exc.problems))
            self.notifier.status(f"configuration reload rejected: {exc.problems[0] if exc.problems else ''}")
            return False
        old_tick = self.app.config.settings.poll.tick
        self.app.config, self.app.watchlists = config, watchlists
        self.app.pipeline.reconfigure(config, watchlists)
        self.health.stale_after_s = self._stale_after(config)
        if config.settings.poll.tick != old_tick and self.scheduler.running:
            self.scheduler.reschedule_job("tick", trigger="interval", seconds=config.settings.poll.tick)
        log.info("configuration reloaded (%s): %d feeds, %d watchlists", reason, len(config.feeds),
                 len(watchlists))
        return True

    def request_reload(self, *_: object) -> None:
        self._reload_requested.set()

    # -- life cycle -------------------------------------------------------------------------------------

    def stop(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping (the feed in flight is finished, the rest stays due)",
                 signal.Signals(signum).name)
        self.notifier.stopping()
        self.app.pipeline.request_stop()
        self._stop.set()

    def run(self) -> None:
        tick = self.app.config.settings.poll.tick
        self.scheduler.add_job(self.tick, "interval", seconds=tick, id="tick", max_instances=1, coalesce=True,
                               next_run_time=self.app.pipeline.clock(), misfire_grace_time=None)
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, self.request_reload)
        logging.getLogger("apscheduler.scheduler").addFilter(_SkipOverlapNotices())
        self.scheduler.start()
        log.info("monitor running: %d feeds, %d watchlists, tick every %.0fs", len(self.app.config.feeds),
                 len(self.app.watchlists), tick)
        self.notifier.ready(f"running: {len(self.app.config.feeds)} feeds, {len(self.app.watchlists)} watchlists")
        watchdog = self._start_watchdog()
        while not self._stop.wait(1.0):
            pass
        self.scheduler.shutdown(wait=True)  # waits for the tick in flight, which abandons its remaining feeds
        if watchdog is not None:
            watchdog.join(timeout=5)
        log.info("monitor stopped")

    def _start_watchdog(self) -> threading.Thread | None:
        interval = watchdog_interval_s()
        if interval is None or not self.notifier.enabled:
            return None

        def loop() -> None:
            while not self._stop.wait(interval):
                if self.health.healthy(self.scheduler.running):
                    self.notifier.watchdog()
                else:
                    log.warning("watchdog: no progress for %.0fs; not pinging systemd", self.health.stale_after_s)

        thread = threading.Thread(target=loop, name="watchdog", daemon=True)
        thread.start()
        return thread


def status_line(stats: CycleStats) -> str:
    return (f"last cycle {stats.started_at}: {stats.feeds_polled} feeds polled ({stats.feeds_ok} ok, "
            f"{stats.feeds_not_modified} unchanged, {stats.feeds_failed} failed), {stats.entries_new} new entries, "
            f"{stats.alerts_sent} alerts sent, {stats.alerts_pending} pending, {stats.duration_s:.1f}s")


def run_daemon(config_path: Path, state_dir: Path,
               opener: Callable[..., App] = open_app) -> None:
    notifier = Notifier()
    notifier.status("loading configuration, database and model")
    app = opener(config_path, state_dir, progress=False)
    observer = make_observer(app.config.settings.metrics.enabled)
    server: Any = None
    try:
        if app.config.settings.metrics.enabled and hasattr(observer, "serve"):
            metrics = app.config.settings.metrics
            server = observer.serve(metrics.host, metrics.port)
        Daemon(app, config_path, notifier=notifier, observer=observer).run()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        app.pipeline.close()
        app.close()
        notifier.close()
