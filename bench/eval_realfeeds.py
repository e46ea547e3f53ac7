"""Measure the relevance classifier on real feeds (development only; not part of the test suite).

Usage:  python bench/eval_realfeeds.py [REALFEEDS_DIR] [--quick]

REALFEEDS_DIR (default /work/shared/realfeeds-dev) holds ``feeds/<publisher>/<file>`` and ``labels.jsonl``
(file, entry_index, label, borderline). Entries are parsed with feedparser and matched to labels by
file + entry_index; borderline entries are left out. Nothing from that folder is written anywhere.

Printed for each setting: PR-AUC, best F1 (and its threshold), and precision/recall/F1 at the threshold
chosen at training time, with the number of alerts it would raise.

Settings:
- the keyword rule alone (China actor AND technology/security term; no model);
- corpus only, with no gates, the entity gate, and both gates (with and without the refit on all data);
- corpus + background from the user's own stream, simulated fairly by a k-fold split (k=4) of the real
  feeds by publisher: each fold is scored by a model whose background came from the other folds'
  publishers, then the folds' scores are pooled (no entry is scored by a model that saw it or its
  publisher); background weight 0.3 (default) and 1.0.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import feedparser
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import classify
from monitor.classify import TrainConfig


@dataclass(frozen=True)
class RealEntry:
    publisher: str
    title: str
    summary: str
    label: int


def load_realfeeds(root: Path) -> list[RealEntry]:
    labels: dict[tuple[str, int], dict] = {}
    for line in (root / "labels.jsonl").read_text().splitlines():
        rec = json.loads(line)
        labels[(rec["file"], rec["entry_index"])] = rec
    by_file: dict[str, list] = {}
    for file in sorted({f for f, _ in labels}):
        body = (root / "feeds" / file).read_bytes()
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        by_file[file] = feedparser.parse(body).entries
    out, missing = [], 0
    for (file, index), rec in sorted(labels.items()):
        entries = by_file[file]
        if index >= len(entries):
            missing += 1
            continue
        if rec.get("borderline"):
            continue
        e = entries[index]
        out.append(RealEntry(file.split("/")[0], e.get("title", ""), e.get("summary", ""), int(rec["label"])))
    if missing:
        print(f"warning: {missing} labels without a parsed entry", file=sys.stderr)
    return out


def publisher_folds(entries: list[RealEntry], k: int) -> np.ndarray:
    """Fold of each entry: publishers, largest first, go to the fold with the fewest entries so far."""
    sizes: dict[str, int] = defaultdict(int)
    for e in entries:
        sizes[e.publisher] += 1
    load, fold_of = [0] * k, {}
    for pub in sorted(sizes, key=lambda p: (-sizes[p], p)):
        fold_of[pub] = min(range(k), key=lambda f: load[f])
        load[fold_of[pub]] += sizes[pub]
    return np.asarray([fold_of[e.publisher] for e in entries])


def figures(name: str, y: np.ndarray, scores: np.ndarray, threshold: float | np.ndarray, seconds: float,
            note: str = "") -> None:
    auc = classify.pr_auc(y, scores)
    best_t, best_f1 = classify.best_f1_threshold(y, scores)
    prec, rec, f1 = classify.prf_at(y, scores, threshold)
    alerts = int((scores >= threshold).sum())
    thr = f"{float(threshold):.3f}" if np.isscalar(threshold) else "per fold"
    print(f"{name:58s} PR-AUC {auc:.3f}  best F1 {best_f1:.3f} (@{best_t:.2f})  at threshold {thr}: "
          f"P {prec:.3f} R {rec:.3f} F1 {f1:.3f}, {alerts} alerts; train {seconds:.1f}s{note}")


def run(root: Path, base: TrainConfig, corpus_dir: Path | None = None, k: int = 4) -> None:
    entries = load_realfeeds(root)
    y = np.asarray([e.label for e in entries])
    items = [(e.title, e.summary) for e in entries]
    corpus = classify.load_corpus(corpus_dir)
    print(f"real entries: {len(entries)} from {len({e.publisher for e in entries})} publishers, "
          f"{int(y.sum())} relevant (borderline dropped)")
    print(f"corpus: {len(corpus)} records, {sum(e.label for e in corpus)} relevant")
    china = np.asarray([classify.mentions_china(t, s) for t, s in items])
    tech = np.asarray([classify.mentions_tech(t, s) for t, s in items])
    rule = china & tech
    print(f"{'keyword rule: China actor AND tech/security term':58s} "
          f"P {y[rule].mean():.3f} R {y[rule].sum() / y.sum():.3f} alerts {int(rule.sum())}")

    no_gates = replace(base, entity_gate=1.0, topic_gate=1.0)
    entity_only = replace(base, topic_gate=1.0)
    for name, cfg in (("corpus only, no gates", no_gates), ("corpus only, entity gate", entity_only),
                      ("corpus only, both gates, no refit on all", replace(base, refit_on_all=False)),
                      ("corpus only, both gates", base)):
        started = time.perf_counter()
        model = classify.Classifier(classify.train(corpus_dir, config=cfg))
        seconds = time.perf_counter() - started
        figures(name, y, model.scores(items), model.threshold, seconds)
    print(f"held-out split of the corpus (gated model): {model.metadata['held_out']}")

    folds = publisher_folds(entries, k)
    for name, cfg in ((f"+ background w={base.background_weight}, no gates", no_gates),
                      (f"+ background w={base.background_weight}, both gates, no refit on all",
                       replace(base, refit_on_all=False)),
                      (f"+ background w={base.background_weight}, both gates", base),
                      ("+ background w=1.0, both gates", replace(base, background_weight=1.0))):
        scores, thresholds, seconds = np.zeros(len(y)), np.zeros(len(y)), []
        for fold in range(k):
            bg = [items[i] for i in np.flatnonzero(folds != fold)]
            started = time.perf_counter()
            m = classify.Classifier(classify.train(corpus_dir, background=bg, config=cfg))
            seconds.append(time.perf_counter() - started)
            idx = np.flatnonzero(folds == fold)
            scores[idx] = m.scores([items[i] for i in idx])
            thresholds[idx] = m.threshold
        figures(name, y, scores, thresholds, max(seconds),
                note=f" thresholds {', '.join(f'{t:.2f}' for t in sorted(set(thresholds)))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", type=Path, default=Path("/work/shared/realfeeds-dev"))
    parser.add_argument("--quick", action="store_true", help="the smaller TrainConfig.fast() model")
    parser.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: the shipped one)")
    args = parser.parse_args()
    run(args.root, TrainConfig.fast() if args.quick else TrainConfig(), args.corpus)


if __name__ == "__main__":
    main()
