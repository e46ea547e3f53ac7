"""Relevance classifier: train, save, load, predict and explain. The only module that imports scikit-learn.

Relevant means: the story's main subject is technology or security AND it involves the US and China in
competition, regulation, conflict or security. See docs/classifier.md for the model, the held-out split
and how the alert threshold is chosen.

- ``train()`` fits TF-IDF (word 1-2-grams + char_wb 3-5-grams) into a sigmoid-calibrated logistic
  regression on the training split of the shipped corpus, the user's own labels (weighted higher) and,
  optionally, unlabeled stored entries as weak negatives; plus one-vs-rest subtopic models on positives.
  Two rule gates discount the probability of stories naming no China-related actor or no technology or
  security term. The threshold maximizes the F1 expected at a 2% base rate (``base_rate_threshold``).
- ``save()``/``load()`` keep a joblib file and a metadata JSON under ``state_dir/model/``; ``load()``
  returns ``None`` when the model is missing, unreadable, or built by another scikit-learn version or
  from another corpus, so the caller retrains.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import math
import re
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from numpy.typing import ArrayLike
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_recall_curve
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import MultiLabelBinarizer

from monitor.errors import ClassifierError
from monitor.models import Verdict

log = logging.getLogger(__name__)

SUBTOPICS = (
    "chips_export_controls", "telecom_5g", "apps_data", "ai", "cyber_espionage", "espionage_ip_theft",
    "critical_minerals", "investment_sanctions", "military_space", "other",
)
HOLDOUT_PERCENT = 20
BASE_RATE = 0.02  # share of relevant stories assumed in general news feeds when choosing the threshold
USER_WEIGHT = 3.0
BACKGROUND_WEIGHT = 0.3
MODEL_DIR = "model"
MODEL_FILE = "classifier.joblib"
META_FILE = "metadata.json"

# China-related actors: a story that names none of these is rarely relevant, whatever the model says.
_CHINA_TERMS = re.compile(
    r"\b(?:china|chinese|beijing|prc|ccp|sino|xi jinping|huawei|zte|tiktok|bytedance|smic|deepseek|alibaba|"
    r"tencent|baidu|hikvision|dahua|dji|ymtc|cxmt|catl|byd|shein|temu|pinduoduo|xiaomi|lenovo|wechat|"
    r"hong kong|taiwan\w*|shenzhen|shanghai|pla|people'?s liberation army|rare[- ]earths?|"
    r"(?:volt|salt|flax|linen|silk|brass|violet) typhoon|apt ?(?:1|3|10|15|17|27|31|40|41)|mustang panda|"
    r"hafnium|unc\d{4})\b",
    re.IGNORECASE,
)
# Technology and security vocabulary of the rubric's subtopics; a China story without any is rarely relevant.
_TECH_TERMS = re.compile(
    r"\b(?:tech\w*|huawei|zte|tiktok|bytedance|smic|deepseek|hikvision|dji|ymtc|cxmt|wechat|temu|chip\w*|semiconductor\w*|nvidia|intel|amd|qualcomm|micron|asml|tsmc|lithograph\w*|wafer\w*|"
    r"export controls?|entity list|blacklist\w*|5g|6g|telecom\w*|network\w*|broadband|undersea cables?|"
    r"satellite\w*|app|apps|data|privacy|surveillance|software|cloud|algorithm\w*|ai|artificial intelligence|"
    r"a\.i\.|model|models|llm\w*|robot\w*|quantum|computing|supercomputer\w*|cyber\w*|hack\w*|breach\w*|"
    r"malware|ransomware|vulnerab\w*|exploit\w*|backdoor\w*|phishing|espionage|spy|spies|spying|spied|"
    r"intelligence|secrets?|trade secrets?|intellectual property|stole|stolen|theft|smuggl\w*|"
    r"rare[- ]earths?|critical minerals?|minerals?|lithium|gallium|germanium|graphite|antimony|magnets?|"
    r"batter(?:y|ies)|ev|evs|electric vehicles?|drones?|missiles?|hypersonic|military|pentagon|weapons?|"
    r"nuclear|space|rocket\w*|navy|warships?|defen[cs]e|sanction\w*|investment ban|outbound investment|"
    r"cfius|national security|security)\b",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^>]+>")
_URL = re.compile(r"https?://\S+")
_US = re.compile(r"(?<![\w.])(?:U\.S\.A?\.?|USA|US)(?![\w.])|(?<![\w.])U\.S\.(?=\W|$)")
_UK = re.compile(r"(?<![\w.])U\.K\.?(?![\w])")
_OUTLET_SUFFIX = re.compile(r"\s+[|–—-]\s+(?:[A-Z][\w.&'’]*|the|of|and)(?:\s+(?:[A-Z][\w.&'’]*|of|and|the)){0,3}\s*$")
_DATELINE = re.compile(r"^[A-Z][A-Za-z .,]{1,40}\((?:Reuters|AP|AFP|Bloomberg|Xinhua)\)\s*[-–—]\s*")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class LabeledText:
    """A story labeled by the user (``monitor label``): 1 relevant, 0 not."""

    title: str
    summary: str
    label: int
    subtopics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Example:
    """One corpus record."""

    id: str
    title: str
    summary: str
    label: int
    subtopics: tuple[str, ...] = ()
    kind: str = "ordinary"
    event_date: str = ""


@dataclass(frozen=True)
class TrainConfig:
    """Model hyper-parameters; ``fast()`` is a smaller variant for tests."""

    char_ngrams: tuple[int, int] | None = (3, 5)
    word_ngrams: tuple[int, int] = (1, 2)
    max_features: int | None = 200_000
    C: float = 4.0
    calibration_folds: int = 3
    user_weight: float = USER_WEIGHT
    background_weight: float = BACKGROUND_WEIGHT
    base_rate: float = BASE_RATE
    entity_gate: float = 0.25  # multiplier for stories naming no China actor; 1.0 disables the gate
    max_background: int = 10_000  # the first (most recent) background texts used; bounds training time
    refit_on_all: bool = True  # after choosing the threshold, refit on the held-out split too
    topic_gate: float = 0.25  # multiplier for stories with no technology/security term; 1.0 disables it

    @classmethod
    def fast(cls, **changes: Any) -> TrainConfig:
        """Word n-grams only and two calibration folds: several times faster, a little less accurate."""
        return cls(**{"char_ngrams": None, "max_features": 50_000, "calibration_folds": 2, **changes})


@dataclass
class TrainedModel:
    """A fitted model with everything needed to predict, explain, evaluate and persist it."""

    features: FeatureUnion
    relevance: CalibratedClassifierCV
    subtopics: OneVsRestClassifier | None
    subtopic_labels: tuple[str, ...]
    threshold: float
    config: TrainConfig
    metadata: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- text and corpus


def normalize_text(title: str, summary: str = "") -> str:
    """Title + summary as model input: entities decoded, tags/URLs/outlet suffixes/datelines removed."""
    title = _clean(title)
    title = _OUTLET_SUFFIX.sub("", title) if len(title) > 30 else title
    summary = _DATELINE.sub("", _clean(summary))
    text = f"{title}. {title}. {summary}" if title else summary  # the title twice: it carries the subject
    text = _US.sub(" unitedstates ", text)
    return _SPACE.sub(" ", _UK.sub(" unitedkingdom ", text)).strip()


def _clean(text: str) -> str:
    text = html.unescape(_TAG.sub(" ", html.unescape(text or "")))
    return _SPACE.sub(" ", _URL.sub(" ", text)).strip()


def mentions_china(title: str, summary: str = "") -> bool:
    """The entity gate: does the text name a China-related actor (country, company, APT group)?"""
    return bool(_CHINA_TERMS.search(f"{_clean(title)} {_clean(summary)}"))


def mentions_tech(title: str, summary: str = "") -> bool:
    """The topic gate: does the text use any technology or security term of the rubric?"""
    return bool(_TECH_TERMS.search(f"{_clean(title)} {_clean(summary)}"))


def default_corpus_dir() -> Path:
    """The corpus shipped in the package (``monitor/data/corpus``)."""
    return Path(str(resources.files("monitor") / "data" / "corpus"))


def _corpus_files(corpus_dir: Path) -> list[Path]:
    return sorted(corpus_dir.glob("*.jsonl"), key=lambda p: p.name)


def corpus_hash(corpus_dir: Path | None = None) -> str:
    """sha256 over the corpus files' names and bytes, in name order."""
    digest = hashlib.sha256()
    for path in _corpus_files(corpus_dir or default_corpus_dir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def load_corpus(corpus_dir: Path | None = None) -> list[Example]:
    """All records of all ``*.jsonl`` files; raises ClassifierError naming file:line on a bad record."""
    examples: dict[str, Example] = {}
    for path in _corpus_files(corpus_dir or default_corpus_dir()):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                ex = _parse_record(line, f"{path.name}:{lineno}")
                examples.setdefault(ex.id, ex)  # first occurrence wins; ids are meant to be unique
    return list(examples.values())


def _parse_record(line: str, where: str) -> Example:
    try:
        rec = json.loads(line)
        return Example(id=str(rec["id"]), title=str(rec["title"]), summary=str(rec.get("summary") or ""),
                       label=int(rec["label"]), subtopics=tuple(rec.get("subtopics") or ()),
                       kind=str(rec.get("kind") or "ordinary"), event_date=str(rec.get("event_date") or ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise ClassifierError(f"corpus {where}: bad record: {exc}") from exc


def is_held_out(example_id: str) -> bool:
    """The held-out split: the first 4 bytes of sha256("holdout:" + id), as an integer, mod 100 < 20."""
    digest = hashlib.sha256(f"holdout:{example_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HOLDOUT_PERCENT


def split_corpus(examples: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(train, held_out) by ``is_held_out``; stable across runs, machines and corpus growth."""
    held = [e for e in examples if is_held_out(e.id)]
    return [e for e in examples if not is_held_out(e.id)], held


# ---------------------------------------------------------------- metrics (used by evaluate.py and bench/)


def pr_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the precision-recall curve (average precision); nan without positives."""
    y = np.asarray(y_true)
    return float(average_precision_score(y, np.asarray(scores))) if y.sum() else float("nan")


def pr_curve(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) as sklearn.metrics.precision_recall_curve returns them."""
    p, r, t = precision_recall_curve(np.asarray(y_true), np.asarray(scores))
    return p, r, t


def prf_at(y_true: ArrayLike, scores: ArrayLike, threshold: float | np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 when alerting on ``score >= threshold``."""
    y, pred = np.asarray(y_true) == 1, np.asarray(scores) >= threshold
    tp = float((y & pred).sum())
    precision = tp / pred.sum() if pred.sum() else 0.0
    recall = tp / y.sum() if y.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def best_f1_threshold(y_true: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """(threshold, F1) maximizing F1 on these labels."""
    p, r, t = pr_curve(y_true, scores)
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)[:-1]
    i = int(np.argmax(f1)) if len(f1) else 0
    return (float(t[i]), float(f1[i])) if len(t) else (0.5, 0.0)


def base_rate_threshold(pos_scores: ArrayLike, neg_scores: ArrayLike, base_rate: float) -> float:
    """Threshold maximizing F1 expected at ``base_rate`` relevant stories.

    Recall comes from the positive scores, the false-positive rate from the negative scores; precision is
    what they give when only ``base_rate`` of the stream is relevant. A threshold tuned for best F1 on a
    balanced corpus would alert on far too much real news.
    """
    pos, neg = np.sort(np.asarray(pos_scores)), np.sort(np.asarray(neg_scores))
    best_t, best_f1 = 0.5, -1.0
    for t in np.unique(pos):
        tpr = 1.0 - np.searchsorted(pos, t, "left") / len(pos)
        fpr = 1.0 - np.searchsorted(neg, t, "left") / max(len(neg), 1)
        precision = base_rate * tpr / (base_rate * tpr + (1 - base_rate) * fpr) if tpr or fpr else 0.0
        f1 = 2 * precision * tpr / (precision + tpr) if precision + tpr else 0.0
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t


# ---------------------------------------------------------------- training


def train(corpus_dir: Path | None = None, user_labels: Sequence[LabeledText] = (),
          background: Sequence[tuple[str, str]] = (), progress: Callable[[str], None] | None = None,
          seed: int = 0, config: TrainConfig | None = None) -> TrainedModel:
    """Fit the relevance and subtopic models; choose the threshold on the held-out split.

    ``user_labels`` are weighted ``config.user_weight``; ``background`` (stored, unlabeled entries) are
    weak negatives weighted ``config.background_weight``, 80% for training and 20% (by hash) to estimate
    the false-positive rate on the user's real stream when choosing the threshold.

    The model is first fitted without the held-out 20% of the corpus, which gives the threshold and the
    held-out figures in the metadata; with ``config.refit_on_all`` (the default) it is then refitted on
    everything and keeps that threshold.
    """
    cfg, say, started = config or TrainConfig(), progress or (lambda _msg: None), time.perf_counter()
    corpus_dir = corpus_dir or default_corpus_dir()
    examples = load_corpus(corpus_dir)
    train_ex, held_ex = split_corpus(examples)
    if not {0, 1} <= {e.label for e in train_ex} | {u.label for u in user_labels}:
        raise ClassifierError(f"corpus {corpus_dir}: need relevant and irrelevant examples to train")
    bg_train, bg_held = _split_background(background[: cfg.max_background], examples, user_labels)
    say(f"training on {len(train_ex)} corpus + {len(user_labels)} user + {len(bg_train)} background texts")
    texts, y, w, subs = _training_set(train_ex, user_labels, bg_train, cfg)
    model = _fit(texts, y, w, subs, cfg, seed, say)
    say("choosing the threshold on the held-out split")
    held_scores = _raw_scores(model, [(e.title, e.summary) for e in held_ex]) if held_ex else np.zeros(0)
    threshold = _choose_threshold(model, held_ex, held_scores, bg_held, cfg)
    model.threshold = threshold
    refit = cfg.refit_on_all and bool(held_ex)
    if refit:
        say(f"refitting on all {len(examples)} corpus + {len(bg_train) + len(bg_held)} background texts")
        all_texts, all_y, all_w, all_subs = _training_set(examples, user_labels, bg_train + bg_held, cfg)
        final = _fit(all_texts, all_y, all_w, all_subs, cfg, seed, say)
        final.threshold = threshold
    model.metadata = _metadata(model, corpus_dir, held_ex, held_scores, len(texts), len(user_labels),
                               (len(bg_train), len(bg_held)), time.perf_counter() - started)
    if refit:
        final.metadata = {**model.metadata, "refit_on_all": True, "n_examples": len(all_texts),
                          "train_seconds": round(time.perf_counter() - started, 2)}
        model = final
    say(f"done in {model.metadata['train_seconds']:.1f}s; threshold {model.threshold:.3f}")
    return model


def _split_background(background: Sequence[tuple[str, str]], corpus: Sequence[Example],
                      user_labels: Sequence[LabeledText]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    known = {normalize_text(e.title, e.summary) for e in corpus}
    known |= {normalize_text(u.title, u.summary) for u in user_labels}
    seen: set[str] = set()
    train_bg: list[tuple[str, str]] = []
    held_bg: list[tuple[str, str]] = []
    for title, summary in background:
        key = normalize_text(title, summary)
        if key in known or key in seen:
            continue
        seen.add(key)
        (held_bg if is_held_out(key) else train_bg).append((title, summary))
    return train_bg, held_bg


def _training_set(corpus: Sequence[Example], user_labels: Sequence[LabeledText],
                  background: Sequence[tuple[str, str]], cfg: TrainConfig
                  ) -> tuple[list[str], np.ndarray, np.ndarray, list[tuple[str, ...]]]:
    texts = [normalize_text(e.title, e.summary) for e in corpus]
    labels = [e.label for e in corpus]
    weights = [1.0] * len(corpus)
    subs = [e.subtopics if e.label else () for e in corpus]
    for u in user_labels:
        texts.append(normalize_text(u.title, u.summary))
        labels.append(int(u.label))
        weights.append(cfg.user_weight)
        subs.append(tuple(u.subtopics) if u.label else ())
    for title, summary in background:
        texts.append(normalize_text(title, summary))
        labels.append(0)
        weights.append(cfg.background_weight)
        subs.append(())
    return texts, np.asarray(labels), np.asarray(weights), subs


def _vectorizer(cfg: TrainConfig) -> FeatureUnion:
    parts: list[tuple[str, Any]] = [("word", TfidfVectorizer(
        ngram_range=cfg.word_ngrams, sublinear_tf=True, min_df=1, max_features=cfg.max_features,
        strip_accents="unicode", token_pattern=r"(?u)\b\w[\w'’-]*\w\b|\b\w\b", dtype=np.float32))]
    if cfg.char_ngrams:
        parts.append(("char", TfidfVectorizer(
            analyzer="char_wb", ngram_range=cfg.char_ngrams, sublinear_tf=True, min_df=2,
            max_features=cfg.max_features, strip_accents="unicode", dtype=np.float32)))
    return FeatureUnion(parts)


def _fit(texts: list[str], y: np.ndarray, w: np.ndarray, subs: list[tuple[str, ...]], cfg: TrainConfig,
         seed: int, say: Callable[[str], None]) -> TrainedModel:
    say("vectorizing")
    features = _vectorizer(cfg)
    x = features.fit_transform(texts)
    say(f"fitting relevance model on {x.shape[0]} texts x {x.shape[1]} features")
    folds = max(2, min(cfg.calibration_folds, int(min(y.sum(), (1 - y).sum()))))
    relevance = CalibratedClassifierCV(_logreg(cfg, seed), method="sigmoid", cv=folds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        relevance.fit(x, y, sample_weight=w)
        say("fitting subtopic models")
        subtopic_model, labels = _fit_subtopics(x, y, subs, cfg, seed)
    return TrainedModel(features, relevance, subtopic_model, labels, 0.5, cfg)


def _logreg(cfg: TrainConfig, seed: int) -> LogisticRegression:
    return LogisticRegression(C=cfg.C, class_weight="balanced", max_iter=2000, solver="liblinear",
                              random_state=seed)


def _fit_subtopics(x: sparse.csr_matrix, y: np.ndarray, subs: list[tuple[str, ...]], cfg: TrainConfig,
                   seed: int) -> tuple[OneVsRestClassifier | None, tuple[str, ...]]:
    rows = [i for i, s in enumerate(subs) if y[i] == 1 and s]
    binarizer = MultiLabelBinarizer(classes=list(SUBTOPICS))
    targets = binarizer.fit_transform([[s for s in subs[i] if s in SUBTOPICS] for i in rows])
    present = [j for j in range(targets.shape[1]) if 0 < targets[:, j].sum() < len(rows)]
    if not present:
        return None, ()
    model = OneVsRestClassifier(_logreg(cfg, seed)).fit(x[rows], targets[:, present])
    return model, tuple(SUBTOPICS[j] for j in present)


def _choose_threshold(model: TrainedModel, held: Sequence[Example], held_scores: np.ndarray,
                      bg_held: Sequence[tuple[str, str]], cfg: TrainConfig) -> float:
    y = np.asarray([e.label for e in held])
    if not len(y) or not y.sum() or y.all():
        return 0.5
    gated = _gate(held_scores, [(e.title, e.summary) for e in held], cfg)
    negatives = gated[y == 0]
    if len(bg_held) >= 100:  # the user's own stream is the better estimate of false alarms
        negatives = _gate(_raw_scores(model, bg_held), bg_held, cfg)
    return base_rate_threshold(gated[y == 1], negatives, cfg.base_rate)


def _metadata(model: TrainedModel, corpus_dir: Path, held: Sequence[Example], held_scores: np.ndarray,
              n_texts: int, n_user: int, n_background: tuple[int, int], seconds: float) -> dict[str, Any]:
    y = [e.label for e in held]
    scores = _gate(held_scores, [(e.title, e.summary) for e in held], model.config)
    p, r, f1 = prf_at(y, scores, model.threshold) if held else (0.0, 0.0, 0.0)
    best_t, best_f1 = best_f1_threshold(y, scores) if held and any(y) else (0.5, 0.0)
    return {
        "sklearn_version": sklearn.__version__, "corpus_hash": corpus_hash(corpus_dir),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"), "n_examples": n_texts,
        "n_user_labels": n_user, "n_background": n_background[0], "n_background_held_out": n_background[1],
        "threshold": model.threshold,
        "train_seconds": round(seconds, 2), "refit_on_all": False, "config": _config_dict(model.config),
        "held_out": {"n": len(y), "n_positive": int(sum(y)), "pr_auc": _round(pr_auc(y, scores)) if held else None,
                     "precision": _round(p), "recall": _round(r), "f1": _round(f1),
                     "best_f1": _round(best_f1), "best_f1_threshold": _round(best_t)},
    }


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.__dict__.items()}


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


# ---------------------------------------------------------------- prediction


def _raw_scores(model: TrainedModel, items: Sequence[tuple[str, str]]) -> np.ndarray:
    x = model.features.transform([normalize_text(t, s) for t, s in items])
    return np.asarray(model.relevance.predict_proba(x)[:, 1], dtype=float)


def _gate(scores: np.ndarray, items: Sequence[tuple[str, str]], cfg: TrainConfig) -> np.ndarray:
    if cfg.entity_gate >= 1.0 and cfg.topic_gate >= 1.0:
        return scores
    china = np.asarray([1.0 if mentions_china(t, s) else cfg.entity_gate for t, s in items])
    tech = np.asarray([1.0 if mentions_tech(t, s) else cfg.topic_gate for t, s in items])
    return np.asarray(scores * china * tech, dtype=float)


class Classifier:
    """Predicts relevance, subtopics and the terms behind a score with a trained model."""

    def __init__(self, model: TrainedModel) -> None:
        self.model = model
        self.version = hashlib.sha256(json.dumps(model.metadata, sort_keys=True).encode()).hexdigest()[:12]
        self._coef, self._names = _word_coefficients(model)

    @property
    def threshold(self) -> float:
        return self.model.threshold

    @property
    def metadata(self) -> dict[str, Any]:
        return self.model.metadata

    def scores(self, items: Sequence[tuple[str, str]]) -> np.ndarray:
        """Relevance probabilities (entity gate applied) for (title, summary) pairs."""
        if not items:
            return np.zeros(0)
        return _gate(_raw_scores(self.model, items), items, self.model.config)

    def predict(self, title: str, summary: str = "") -> Verdict:
        return self.predict_many([(title, summary)])[0]

    def predict_many(self, items: Sequence[tuple[str, str]]) -> list[Verdict]:
        """Verdicts for (title, summary) pairs; subtopics are given for stories at or above the threshold."""
        if not items:
            return []
        texts = [normalize_text(t, s) for t, s in items]
        x = self.model.features.transform(texts)
        scores = _gate(self.model.relevance.predict_proba(x)[:, 1], items, self.model.config)
        subs = self._subtopic_probs(x)
        return [Verdict(score=round(float(scores[i]), 4),
                        subtopics=self._subtopics(subs[i]) if scores[i] >= self.threshold else (),
                        top_terms=tuple(self._explain_row(x[i], 5)), model_version=self.version,
                        threshold=self.threshold)
                for i in range(len(texts))]

    def subtopic_scores(self, title: str, summary: str = "") -> dict[str, float]:
        """Probability of each subtopic, assuming the story is relevant."""
        x = self.model.features.transform([normalize_text(title, summary)])
        probs = self._subtopic_probs(x)[0]
        return {name: round(float(p), 4) for name, p in zip(self.model.subtopic_labels, probs, strict=True)}

    def explain(self, title: str, summary: str = "", k: int = 5) -> list[str]:
        """The k word n-grams of the text that pushed the score up most (coefficient x tf-idf)."""
        return self._explain_row(self.model.features.transform([normalize_text(title, summary)]), k)

    def _subtopic_probs(self, x: sparse.csr_matrix) -> np.ndarray:
        if self.model.subtopics is None:
            return np.zeros((x.shape[0], 0))
        return np.asarray(self.model.subtopics.predict_proba(x))

    def _subtopics(self, probs: np.ndarray) -> tuple[str, ...]:
        if not len(probs):
            return ()
        chosen = [i for i in np.argsort(-probs) if probs[i] >= 0.5] or [int(np.argmax(probs))]
        return tuple(self.model.subtopic_labels[i] for i in chosen)

    def _explain_row(self, row: sparse.csr_matrix, k: int) -> list[str]:
        row = sparse.csr_matrix(row)[:, : len(self._coef)]
        contrib = row.multiply(self._coef).tocsr()
        order = np.argsort(-contrib.data)
        terms = [self._names[contrib.indices[i]] for i in order if contrib.data[i] > 0]
        readable = [t for t in terms if not all(w in ENGLISH_STOP_WORDS for w in t.split())]
        return [_display(t) for t in _dedupe_terms(readable)[:k]]


def _word_coefficients(model: TrainedModel) -> tuple[np.ndarray, np.ndarray]:
    """Mean coefficients of the calibrated folds' logistic regressions, word features only."""
    coef = np.mean([c.estimator.coef_[0] for c in model.relevance.calibrated_classifiers_], axis=0)
    words = dict(model.features.transformer_list)["word"]
    names = words.get_feature_names_out()
    return coef[: len(names)], names


def _display(term: str) -> str:
    return term.replace("unitedstates", "US").replace("unitedkingdom", "UK")


def _dedupe_terms(terms: list[str]) -> list[str]:
    """Drop a term already covered by a higher-ranked one ('export' after 'export controls')."""
    out: list[str] = []
    for term in terms:
        if not any(term in kept.split() or term == kept or kept in term.split() for kept in out):
            out.append(term)
    return out


def uncertain(classifier: Classifier, items: Sequence[tuple[str, str]], k: int = 20) -> list[tuple[int, float]]:
    """(index, score) of the k items closest to the threshold on the log-odds scale, closest first.

    For ``monitor review``: labeling these teaches the model most per label (uncertainty sampling).
    """
    scores = classifier.scores(items)
    distance = np.abs(_logit(scores) - _logit(np.asarray([classifier.threshold])))
    order = np.argsort(distance, kind="stable")[:k]
    return [(int(i), float(scores[i])) for i in order]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)), dtype=float)


# ---------------------------------------------------------------- persistence


def save(model: TrainedModel, state_dir: Path) -> Path:
    """Write ``state_dir/model/classifier.joblib`` and ``metadata.json``; return the model directory."""
    target = Path(state_dir) / MODEL_DIR
    try:
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / (MODEL_FILE + ".tmp")
        joblib.dump(model, tmp, compress=3)
        tmp.replace(target / MODEL_FILE)
        (target / META_FILE).write_text(json.dumps(model.metadata, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise ClassifierError(f"cannot save the model to {target}: {exc}") from exc
    return target


def load(state_dir: Path, corpus_dir: Path | None = None) -> Classifier | None:
    """The saved model, or None (logged) when missing, unreadable or stale, so the caller retrains."""
    target = Path(state_dir) / MODEL_DIR
    meta_path, model_path = target / META_FILE, target / MODEL_FILE
    if not meta_path.exists() or not model_path.exists():
        log.warning("no trained model in %s; it needs training", target)
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("model metadata %s unreadable (%s); it needs retraining", meta_path, exc)
        return None
    stale = _stale_reason(meta, corpus_dir)
    if stale:
        log.warning("model in %s is stale (%s); it needs retraining", target, stale)
        return None
    try:
        model = joblib.load(model_path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means: retrain
        log.warning("model %s unreadable (%s); it needs retraining", model_path, exc)
        return None
    if not isinstance(model, TrainedModel):
        log.warning("model %s holds %s, not a TrainedModel; it needs retraining", model_path, type(model))
        return None
    return Classifier(model)


def _stale_reason(meta: dict[str, Any], corpus_dir: Path | None) -> str:
    if meta.get("sklearn_version") != sklearn.__version__:
        return f"scikit-learn {meta.get('sklearn_version')} != {sklearn.__version__}"
    if meta.get("corpus_hash") != corpus_hash(corpus_dir):
        return "the corpus changed"
    return ""


def iter_texts(records: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(title, summary) pairs of corpus-style dicts."""
    return [(str(r.get("title") or ""), str(r.get("summary") or "")) for r in records]
