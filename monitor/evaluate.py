"""Evaluate a relevance model: precision, recall, F1 and PR-AUC at a threshold, per-subtopic figures,
``report.json`` and a precision-recall curve PNG (matplotlib, Agg backend, imported only when plotting).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from monitor.classify import (
    Classifier,
    TrainedModel,
    best_f1_threshold,
    iter_texts,
    load_corpus,
    pr_auc,
    pr_curve,
    prf_at,
    split_corpus,
)
from monitor.errors import ClassifierError

log = logging.getLogger(__name__)

REPORT_FILE = "report.json"
CURVE_FILE = "pr_curve.png"


@dataclass(frozen=True)
class SubtopicFigures:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    """Figures for one model on one labeled set; ``in_sample`` warns that the model saw these records."""

    n: int
    n_positive: int
    threshold: float
    precision: float
    recall: float
    f1: float
    pr_auc: float | None
    best_f1: float
    best_f1_threshold: float
    alerts: int
    subtopics: dict[str, SubtopicFigures] = field(default_factory=dict)
    model_version: str = ""
    source: str = "held-out split"
    in_sample: bool = False  # the model was refitted on these records: see its metadata's held_out figures
    report_path: str = ""
    curve_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(model: TrainedModel | Classifier, records: Iterable[dict[str, Any]] | None = None,
             threshold: float | None = None, out_dir: Path | None = None) -> EvalReport:
    """Score ``records`` (corpus-style dicts: title, summary, label, subtopics) or, without records, the
    held-out split of the shipped corpus; write report.json and pr_curve.png into ``out_dir`` if given.
    A model refitted on all data (the default) has seen the held-out split: ``in_sample`` is then set,
    and the honest held-out figures are those in its metadata, measured before the refit.

    ``threshold`` defaults to the one chosen at training time. Subtopic figures count a subtopic as
    predicted when the story scores at or above the threshold and the subtopic model names it.
    """
    clf = model if isinstance(model, Classifier) else Classifier(model)
    rows, source = _records(records)
    if not rows:
        raise ClassifierError(f"evaluate: no labeled records in the {source}")
    thr = clf.threshold if threshold is None else float(threshold)
    y = np.asarray([int(r["label"]) for r in rows])
    verdicts = clf.predict_many(iter_texts(rows))
    scores = np.asarray([v.score for v in verdicts])
    precision, recall, f1 = prf_at(y, scores, thr)
    best_t, best_f1 = best_f1_threshold(y, scores) if y.any() else (thr, 0.0)
    auc = pr_auc(y, scores)
    report = EvalReport(
        n=len(y), n_positive=int(y.sum()), threshold=round(thr, 4), precision=round(precision, 4),
        recall=round(recall, 4), f1=round(f1, 4), pr_auc=None if np.isnan(auc) else round(auc, 4),
        best_f1=round(best_f1, 4), best_f1_threshold=round(best_t, 4), alerts=int((scores >= thr).sum()),
        subtopics=_subtopic_figures(rows, [v.subtopics for v in verdicts]), model_version=clf.version,
        source=source, in_sample=records is None and bool(clf.metadata.get("refit_on_all")))
    return _write(report, y, scores, thr, out_dir) if out_dir is not None else report


def _records(records: Iterable[dict[str, Any]] | None) -> tuple[list[dict[str, Any]], str]:
    if records is not None:
        return list(records), "given records"
    _, held = split_corpus(load_corpus())
    return [{"title": e.title, "summary": e.summary, "label": e.label, "subtopics": list(e.subtopics)}
            for e in held], "held-out split"


def _subtopic_figures(rows: list[dict[str, Any]], predicted: list[tuple[str, ...]]) -> dict[str, SubtopicFigures]:
    names = sorted({s for r in rows for s in (r.get("subtopics") or ())} | {s for p in predicted for s in p})
    out: dict[str, SubtopicFigures] = {}
    for name in names:
        truth = np.asarray([int(r["label"]) == 1 and name in (r.get("subtopics") or ()) for r in rows])
        pred = np.asarray([name in p for p in predicted])
        tp = float((truth & pred).sum())
        p = tp / float(pred.sum()) if pred.sum() else 0.0
        r = tp / float(truth.sum()) if truth.sum() else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out[name] = SubtopicFigures(round(p, 4), round(r, 4), round(f1, 4), int(truth.sum()))
    return out


def _write(report: EvalReport, y: np.ndarray, scores: np.ndarray, thr: float, out_dir: Path) -> EvalReport:
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        curve = out_dir / CURVE_FILE
        title = f"{report.source} (model {report.model_version})"
        drawn = plot_pr_curve(y, scores, thr, curve, title=title)
        report = replace(report, report_path=str(out_dir / REPORT_FILE), curve_path=str(curve) if drawn else "")
        (out_dir / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    except OSError as exc:
        raise ClassifierError(f"evaluate: cannot write the report to {out_dir}: {exc}") from exc
    return report


def plot_pr_curve(y: np.ndarray, scores: np.ndarray, thr: float, path: Path, title: str = "") -> bool:
    """Draw the precision-recall curve with the operating point at ``thr``; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'monitor[plot]'): no curve written to %s", path)
        return False

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    p, r, _f1 = prf_at(y, scores, thr)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    try:
        if np.asarray(y).any():  # without positives there is no curve, only the operating point
            precision, recall, _ = pr_curve(y, scores)
            ax.step(recall, precision, where="post", label="model")
        ax.plot([r], [p], "o", color="C3", label=f"threshold {thr:.3f}")
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=title)
        ax.legend(loc="lower left")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return True
