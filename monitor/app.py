"""Wiring: configuration + state directory -> a ready pipeline. Used by the CLI and the daemon."""

from __future__ import annotations

import gc
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from .config import Config, load_config
from .errors import ConfigError, MonitorError
from .notify import check_url
from .pipeline import Clock, Pipeline, Scorer, utcnow
from .store import Store
from .watchlists import CompiledWatchlist, compile_all

log = logging.getLogger(__name__)


@dataclass
class App:
    config: Config
    state_dir: Path
    store: Store
    watchlists: list[CompiledWatchlist]
    pipeline: Pipeline
    scorer: Scorer | None

    def close(self) -> None:
        self.pipeline.close()  # stop the parser processes before the database goes
        self.store.close()


def load_validated(config_path: Path) -> tuple[Config, list[CompiledWatchlist]]:
    """Load the configuration and compile the watchlists; one ConfigError lists every problem."""
    config = load_config(config_path)
    problems: list[str] = []
    for name, urls in config.channels.items():
        for index, url in enumerate(urls):
            reason = check_url(url)
            if reason:
                problems.append(f"{config.path}: channel '{name}' URL #{index + 1}: {reason}")
    try:
        watchlists = compile_all(config.watchlists)
    except ConfigError as exc:
        problems.extend(exc.problems)
        watchlists = []
    if problems:
        raise ConfigError(problems)
    return config, watchlists


def open_app(config_path: Path, state_dir: Path, clock: Clock = utcnow, with_scorer: bool = True,
             progress: bool = False) -> App:
    config, watchlists = load_validated(config_path)
    tune_gc()
    store = Store.open(state_dir)
    scorer = load_scorer(config, state_dir, store, progress=progress) if with_scorer else None
    pipeline = Pipeline(config, store, watchlists, scorer=scorer, clock=clock)
    return App(config=config, state_dir=state_dir, store=store, watchlists=watchlists, pipeline=pipeline,
               scorer=scorer)


# Young-generation collections every this many allocations (CPython's default is 700). The story index keeps tens
# of thousands of long-lived objects, and with the default the collector re-walked them so often that it cost
# about a fifth of a first cycle's clustering time (bench/bench_poll.py); memory is still freed by reference
# counting as soon as it is unused.
GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    """Collect garbage cycles less eagerly (see GC_YOUNG_THRESHOLD); process-wide, idempotent."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, max(middle, 20), old)


def needs_scorer(watchlists: list[CompiledWatchlist]) -> bool:
    """Does any watchlist use the classifier (min_score, subtopics or score/subtopic clauses in a query)?"""
    for watchlist in watchlists:
        spec = watchlist.config.spec
        if spec.min_score is not None or spec.subtopics:
            return True
        if watchlist.query is not None and watchlist.query.uses_classifier:
            return True
    return False


def load_scorer(config: Config, state_dir: Path, store: Store, progress: bool = False) -> Scorer | None:
    """The trained model; trained now when missing or stale and auto_train is on."""
    settings = config.settings.classifier
    if not settings.enabled:
        return None
    from . import classify  # scikit-learn loads only when the classifier is in use

    try:
        classifier = classify.load(state_dir)
        if classifier is None and settings.auto_train:
            log.info("no usable relevance model in %s: training one now", state_dir)
            classifier = train_and_save(state_dir, store, progress=progress)
    except MonitorError as exc:
        log.error("classifier unavailable: %s", exc)
        return None
    if classifier is not None and settings.threshold is not None:
        classifier.model.threshold = settings.threshold  # the user's choice overrides the trained one
    return classifier


def train_and_save(state_dir: Path, store: Store, progress: bool = False, background: bool = False):  # type: ignore[no-untyped-def]
    """Train on the shipped corpus and the user's labels (and, with ``background``, the stored stories as weak
    negatives), save under ``state_dir`` and load it back.

    Background is opt-in: on our labeled real feeds it raised the threshold and cost more recall than the
    precision it gained (docs/classifier.md)."""
    from . import classify

    labels = [classify.LabeledText(title=r["title"], summary=r["summary"], label=int(r["label"]),
                                   subtopics=tuple(r["subtopics"])) for r in store.labels()]
    reporter = (lambda message: print(f"[train] {message}", file=sys.stderr, flush=True)) if progress else None
    texts = store.background_texts() if background else []
    model = classify.train(user_labels=labels, background=texts, progress=reporter)
    classify.save(model, state_dir)
    return classify.load(state_dir)
