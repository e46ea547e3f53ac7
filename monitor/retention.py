"""Retention: prune old entry text, keep identity keys and alerted stories, keep SQLite's statistics fresh.

An entry older than ``retention.entry_days`` loses its summary, author and tags; its feed, GUID, canonical
URL, link, title and story stay, so re-polling never takes it for new and stories keep their members.
Entries of stories that produced an alert (and labelled stories) are kept whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from .config import MonitorFile
from .store import SizeReport, Store

log = logging.getLogger(__name__)

_LAST_RUN = "last_maintenance"


@dataclass(frozen=True)
class PruneReport:
    pruned: int
    before: SizeReport
    after: SizeReport
    vacuumed: bool


def prune(store: Store, entry_days: float | None, now: datetime, vacuum: bool = False) -> PruneReport:
    """Prune entry text older than ``entry_days`` (None: nothing), run PRAGMA optimize, optionally VACUUM."""
    before = store.size_report()
    pruned = 0
    if entry_days is not None:
        with store.transaction():
            pruned = store.prune_entries(now - timedelta(days=entry_days))
    store.optimize()
    if vacuum:
        store.vacuum()
    store.set_meta(_LAST_RUN, now.isoformat(timespec="seconds"))
    return PruneReport(pruned=pruned, before=before, after=store.size_report(), vacuumed=vacuum)


def maintain(store: Store, settings: MonitorFile, now: datetime) -> PruneReport | None:
    """The daemon's periodic housekeeping: at most once per ``retention.every``."""
    last = store.get_meta(_LAST_RUN)
    if last is not None and now - datetime.fromisoformat(last) < timedelta(seconds=settings.retention.every):
        return None
    report = prune(store, settings.retention.entry_days, now)
    log.info("maintenance: pruned the text of %d old entries; database %s (%s free)", report.pruned,
             human_bytes(report.after.file_bytes), human_bytes(report.after.free_bytes))
    return report


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def describe(report: SizeReport) -> list[str]:
    """Lines for `monitor prune` and `monitor status`."""
    return [f"database file {human_bytes(report.file_bytes)} ({human_bytes(report.free_bytes)} free inside, "
            f"WAL {human_bytes(report.wal_bytes)})",
            f"entries: {report.entries} ({report.pruned_entries} pruned), entry text "
            f"{human_bytes(report.entry_text_bytes)}"]
