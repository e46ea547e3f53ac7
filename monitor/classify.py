"""Relevance classifier: train, save, load, predict and explain. The only module that imports scikit-learn.

Relevant means: the story's main subject is technology or security AND it involves the US and China in
competition, regulation, conflict or security. See docs/classifier.md for the model, the held-out split
and how the alert threshold is chosen.

- ``train()`` fits TF-IDF (word 1-2-grams + char_wb 3-5-grams) into a sigmoid-calibrated logistic
  regression on the training split of the shipped corpus, the user's own labels (weighted higher) and,
  optionally, unlabeled stored entries as weak negatives; plus one-vs-rest subtopic models on positives.
  Two rule gates discount the probability of stories naming no China-related actor or no technology or
  security term. The threshold maximizes the F1 expected at a 2% base rate (``base_rate_threshold``).
- ``compile_model()`` reduces the fitted model to numpy arrays and vocabularies (``CompiledModel``) that
  ``Classifier`` scores with the same arithmetic as scikit-learn, batch-wise and without importing it:
  scikit-learn is imported only to train (and to read a model saved before the compiled form existed).
- ``save()``/``load()`` keep the compiled model in a joblib file and a metadata JSON under
  ``state_dir/model/``; ``load()`` returns ``None`` when the model is missing, unreadable, or built by
  another scikit-learn version or from another corpus, so the caller retrains.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import logging
import math
import re
import time
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse

if TYPE_CHECKING:  # scikit-learn costs about 80 MB of RSS: it is imported only where a model is fitted
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import FeatureUnion

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
    return _normalized(_clean(title), _clean(summary))


def _normalized(title: str, summary: str) -> str:
    """``normalize_text`` of a title and summary already passed through ``_clean``."""
    title = _OUTLET_SUFFIX.sub("", title) if len(title) > 30 else title
    summary = _DATELINE.sub("", summary)
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
    from sklearn.metrics import average_precision_score

    y = np.asarray(y_true)
    return float(average_precision_score(y, np.asarray(scores))) if y.sum() else float("nan")


def pr_curve(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) as sklearn.metrics.precision_recall_curve returns them."""
    from sklearn.metrics import precision_recall_curve

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
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

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
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.exceptions import ConvergenceWarning

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
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=cfg.C, class_weight="balanced", max_iter=2000, solver="liblinear",
                              random_state=seed)


def _fit_subtopics(x: sparse.csr_matrix, y: np.ndarray, subs: list[tuple[str, ...]], cfg: TrainConfig,
                   seed: int) -> tuple[OneVsRestClassifier | None, tuple[str, ...]]:
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

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
        "sklearn_version": sklearn_version(), "corpus_hash": corpus_hash(corpus_dir),
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


# ---------------------------------------------------------------- the compiled model


@dataclass
class CompiledModel:
    """A fitted ``TrainedModel`` reduced to what prediction needs: vocabularies, idf weights, coefficients
    and calibration parameters as lists and numpy arrays, without scikit-learn objects.

    ``Classifier`` scores with it using scikit-learn's arithmetic (float32 tf-idf, float64 dot products,
    sigmoid calibration averaged over the folds), so scores match the fitted pipeline's (to about 1e-16)
    while scikit-learn is never imported to predict. ``threshold`` may be changed: a configured threshold
    overrides the trained one.
    """

    word_terms: list[str]  # word feature i; the char features follow the word features in the vector
    char_terms: list[str]
    word_idf: np.ndarray  # float32, as fitted
    char_idf: np.ndarray
    token_pattern: str
    word_ngrams: tuple[int, int]
    char_ngrams: tuple[int, int] | None
    relevance_coef: np.ndarray  # (features, calibration folds): one logistic regression per fold, C order
    relevance_intercept: np.ndarray  # (folds,)
    calibration: np.ndarray  # (folds, 2): each fold's sigmoid a and b, p = 1 / (1 + exp(a * d + b))
    subtopic_columns: np.ndarray  # the features some subtopic model weighs (the others have coefficient 0)
    subtopic_coef: np.ndarray  # (len(subtopic_columns), subtopics), C order
    subtopic_intercept: np.ndarray  # (subtopics,)
    subtopic_labels: tuple[str, ...]
    explain_coef: np.ndarray  # the folds' mean coefficient of each word feature
    readable: np.ndarray  # bool per word feature: not made of English stop words only (explanations skip those)
    threshold: float
    config: TrainConfig
    metadata: dict[str, Any] = field(default_factory=dict)


_WORD_CACHE_SIZE = 20_000  # words whose char n-gram features Classifier keeps (a few MB)

# what the compiled arithmetic reproduces; a vectorizer configured otherwise cannot be compiled
_VECTORIZER_PARAMS = {"binary": False, "input": "content", "lowercase": True, "norm": "l2", "preprocessor": None,
                      "stop_words": None, "strip_accents": "unicode", "sublinear_tf": True, "tokenizer": None,
                      "use_idf": True, "dtype": np.float32}


def compile_model(model: TrainedModel) -> CompiledModel:
    """The prediction-only form of a fitted model (imports scikit-learn; raises ClassifierError on a model
    this module did not build)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    parts = dict(model.features.transformer_list)
    word, char = parts["word"], parts.get("char")
    _check_vectorizer(word, "word")
    if char is not None:
        _check_vectorizer(char, "char_wb")
    folds = model.relevance.calibrated_classifiers_
    word_terms = [str(t) for t in word.get_feature_names_out()]
    sub_coef, sub_intercept, labels = _subtopic_arrays(model)
    columns = np.flatnonzero((sub_coef != 0).any(axis=0)).astype(np.int32)
    return CompiledModel(
        word_terms=word_terms, char_terms=[str(t) for t in char.get_feature_names_out()] if char else [],
        word_idf=word.idf_, char_idf=char.idf_ if char else np.zeros(0, dtype=np.float32),
        token_pattern=word.token_pattern, word_ngrams=tuple(word.ngram_range),
        char_ngrams=tuple(char.ngram_range) if char else None,
        # stored transposed and contiguous: a sparse-dense product would otherwise copy them on every call
        relevance_coef=np.ascontiguousarray(np.vstack([_fold_estimator(f).coef_[0] for f in folds]).T),
        relevance_intercept=np.asarray([_fold_estimator(f).intercept_[0] for f in folds], dtype=float),
        calibration=np.asarray([_sigmoid(f) for f in folds], dtype=float),
        subtopic_columns=columns, subtopic_coef=np.ascontiguousarray(sub_coef[:, columns].T),
        subtopic_intercept=sub_intercept, subtopic_labels=labels,
        # the mean over the folds, as the explanation has always weighed terms
        explain_coef=np.mean([_fold_estimator(f).coef_[0] for f in folds], axis=0)[: len(word_terms)],
        readable=np.asarray([not all(w in ENGLISH_STOP_WORDS for w in t.split()) for t in word_terms], dtype=bool),
        threshold=model.threshold, config=model.config, metadata=model.metadata)


def _check_vectorizer(vectorizer: TfidfVectorizer, analyzer: str) -> None:
    params = vectorizer.get_params()
    wrong = {k: params[k] for k, v in _VECTORIZER_PARAMS.items() if params[k] != v}
    if params["analyzer"] != analyzer or wrong or vectorizer.idf_.dtype != np.float32:
        raise ClassifierError(f"cannot compile a {params['analyzer']} vectorizer with {wrong or 'this idf'}")


def _fold_estimator(fold: Any) -> Any:
    estimator = fold.estimator
    if type(estimator).__name__ != "LogisticRegression" or list(estimator.classes_) != [0, 1]:
        raise ClassifierError(f"cannot compile a calibrated {type(estimator).__name__}")
    return estimator


def _sigmoid(fold: Any) -> tuple[float, float]:
    (calibrator,) = fold.calibrators
    if getattr(fold, "method", "") != "sigmoid" or list(fold.classes) != [0, 1]:
        raise ClassifierError(f"cannot compile {getattr(fold, 'method', '?')} calibration")
    return float(calibrator.a_), float(calibrator.b_)


def _subtopic_arrays(model: TrainedModel) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    n_features = sum(len(t.idf_) for _, t in model.features.transformer_list)
    if model.subtopics is None:
        return np.zeros((0, n_features)), np.zeros(0), ()
    estimators = model.subtopics.estimators_
    for e in estimators:
        if type(e).__name__ != "LogisticRegression" or list(e.classes_) != [0, 1]:
            raise ClassifierError(f"cannot compile a {type(e).__name__} subtopic model")
    coef = np.vstack([e.coef_[0] for e in estimators])
    return coef, np.asarray([e.intercept_[0] for e in estimators], dtype=float), model.subtopic_labels


# ---------------------------------------------------------------- prediction


def _raw_scores(model: TrainedModel, items: Sequence[tuple[str, str]]) -> np.ndarray:
    """The scikit-learn pipeline's scores (training uses them; ``Classifier`` computes the same compiled)."""
    x = model.features.transform([normalize_text(t, s) for t, s in items])
    return np.asarray(model.relevance.predict_proba(x)[:, 1], dtype=float)


def _gate(scores: np.ndarray, items: Sequence[tuple[str, str]], cfg: TrainConfig) -> np.ndarray:
    if cfg.entity_gate >= 1.0 and cfg.topic_gate >= 1.0:
        return scores
    return _gate_cleaned(scores, [(_clean(t), _clean(s)) for t, s in items], cfg)


def _gate_cleaned(scores: np.ndarray, cleaned: Sequence[tuple[str, str]], cfg: TrainConfig) -> np.ndarray:
    """``_gate`` for texts already passed through ``_clean`` (what mentions_china/mentions_tech search)."""
    if cfg.entity_gate >= 1.0 and cfg.topic_gate >= 1.0:
        return scores
    texts = [f"{title} {summary}" for title, summary in cleaned]
    china = np.asarray([1.0 if _CHINA_TERMS.search(t) else cfg.entity_gate for t in texts])
    tech = np.asarray([1.0 if _TECH_TERMS.search(t) else cfg.topic_gate for t in texts])
    return np.asarray(scores * china * tech, dtype=float)


def _expit(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=float)


def _fold_case(text: str) -> str:
    """Lowercase, then drop accents (NFKD without combining marks): the vectorizers' strip_accents='unicode'."""
    text = text.lower()
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _word_grams(tokens: list[str], low: int, high: int) -> Iterable[str]:
    for n in range(low, high + 1):
        if n == 1:
            yield from tokens
        else:
            yield from (" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _char_grams(word: str, low: int, high: int) -> list[str]:
    """char_wb n-grams of one word padded with a space each side; a padded word no longer than n is one
    gram, and longer n are then skipped."""
    padded = f" {word} "
    size, grams = len(padded), []
    for n in range(low, high + 1):
        if size <= n:
            grams.append(padded)
            break
        grams.extend(padded[i:i + n] for i in range(size - n + 1))
    return grams


def _tfidf(found: list[list[int]], idf: np.ndarray) -> sparse.csr_matrix:
    """Sublinear tf-idf rows, l2-normalized, from the feature indices found in each text (repeats count).

    The arithmetic is the vectorizer's: float32 throughout, each row's squared norm summed in float64 in
    column order, then each value divided in float64 and rounded to float32. Any other order could move a
    value by one float32 step, and a score by more than rounding noise."""
    n_rows, n_features = len(found), len(idf)
    lengths = np.fromiter((len(f) for f in found), dtype=np.int64, count=n_rows)
    flat = np.fromiter(itertools.chain.from_iterable(found), dtype=np.int64, count=int(lengths.sum()))
    keys = np.repeat(np.arange(n_rows, dtype=np.int64), lengths) * max(n_features, 1) + flat
    keys, counts = np.unique(keys, return_counts=True)
    rows, columns = np.divmod(keys, max(n_features, 1))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    data = counts.astype(np.float32)
    np.log(data, out=data)
    data += 1.0
    data *= idf[columns]
    squares = (data * data).astype(np.float64)
    norms = np.ones(n_rows)
    for row in range(n_rows):
        if indptr[row] < indptr[row + 1]:  # np.cumsum adds in order, as the vectorizer's loop does
            norms[row] = math.sqrt(np.cumsum(squares[indptr[row]:indptr[row + 1]])[-1])
    data = (data / np.repeat(norms, np.diff(indptr))).astype(np.float32)
    return sparse.csr_matrix((data, columns.astype(np.int32), indptr.astype(np.int32)), shape=(n_rows, n_features))


class Classifier:
    """Predicts relevance, subtopics and the terms behind a score with a compiled model, a batch at a time."""

    def __init__(self, model: TrainedModel | CompiledModel) -> None:
        self.model = model if isinstance(model, CompiledModel) else compile_model(model)
        self.version = hashlib.sha256(json.dumps(self.model.metadata, sort_keys=True).encode()).hexdigest()[:12]
        self._word_index = dict(zip(self.model.word_terms, range(len(self.model.word_terms)), strict=True))
        self._char_index = dict(zip(self.model.char_terms, range(len(self.model.char_terms)), strict=True))
        self._token = re.compile(self.model.token_pattern)
        self._word_chars: dict[str, tuple[int, ...]] = {}  # word -> its char n-gram features (bounded cache)

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
        cleaned = [(_clean(t), _clean(s)) for t, s in items]
        return _gate_cleaned(self._relevance(self._vectors(cleaned)), cleaned, self.model.config)

    def predict(self, title: str, summary: str = "") -> Verdict:
        return self.predict_many([(title, summary)])[0]

    def predict_many(self, items: Sequence[tuple[str, str]]) -> list[Verdict]:
        """Verdicts for (title, summary) pairs; subtopics are given for stories at or above the threshold."""
        if not items:
            return []
        cleaned = [(_clean(t), _clean(s)) for t, s in items]
        x = self._vectors(cleaned)
        scores = _gate_cleaned(self._relevance(x), cleaned, self.model.config)
        above = np.flatnonzero(scores >= self.threshold)  # only these get subtopics
        subtopics = dict(zip(above.tolist(), self._subtopic_probs(x[above]), strict=True))
        return [Verdict(score=round(float(scores[i]), 4),
                        subtopics=self._subtopics(subtopics[i]) if i in subtopics else (),
                        top_terms=tuple(self._top_terms(x, i, 5)), model_version=self.version,
                        threshold=self.threshold)
                for i in range(len(items))]

    def subtopic_scores(self, title: str, summary: str = "") -> dict[str, float]:
        """Probability of each subtopic, assuming the story is relevant."""
        probs = self._subtopic_probs(self._vectors([(_clean(title), _clean(summary))]))[0]
        return {name: round(float(p), 4) for name, p in zip(self.model.subtopic_labels, probs, strict=True)}

    def explain(self, title: str, summary: str = "", k: int = 5) -> list[str]:
        """The k word n-grams of the text that pushed the score up most (coefficient x tf-idf)."""
        return self._top_terms(self._vectors([(_clean(title), _clean(summary))]), 0, k)

    def _vectors(self, cleaned: Sequence[tuple[str, str]]) -> sparse.csr_matrix:
        """The feature matrix the fitted vectorizers would give for these texts: word block, then char block."""
        m = self.model
        texts = [_fold_case(_normalized(title, summary)) for title, summary in cleaned]
        word_index, low, high = self._word_index, *m.word_ngrams
        words = _tfidf([[word_index[g] for g in _word_grams(self._token.findall(t), low, high) if g in word_index]
                        for t in texts], m.word_idf)
        if m.char_ngrams is None:
            return words
        return sparse.hstack([words, _tfidf(self._char_features(texts), m.char_idf)], format="csr")

    def _char_features(self, texts: list[str]) -> list[list[int]]:
        """Char n-gram feature indices of each text. A word's are computed once and cached: news reuses
        words (and every title comes twice), so most words of a batch are already known."""
        assert self.model.char_ngrams is not None
        low, high = self.model.char_ngrams
        index, cache = self._char_index, self._word_chars
        if len(cache) > _WORD_CACHE_SIZE:
            cache.clear()  # a bounded cache without bookkeeping: the common words come back at once
        found = []
        for text in texts:
            features: list[int] = []
            for word in text.split():
                ids = cache.get(word)
                if ids is None:
                    ids = cache[word] = tuple(index[g] for g in _char_grams(word, low, high) if g in index)
                features.extend(ids)
            found.append(features)
        return found

    def _relevance(self, x: sparse.csr_matrix) -> np.ndarray:
        """The calibrated probability: each fold's sigmoid of its decision, summed in fold order, averaged."""
        m = self.model
        decision = np.asarray(x @ m.relevance_coef) + m.relevance_intercept
        total = np.zeros(x.shape[0])
        for fold, (a, b) in enumerate(m.calibration):
            total += _expit(-(a * decision[:, fold] + b))
        return total / len(m.calibration)

    def _subtopic_probs(self, x: sparse.csr_matrix) -> np.ndarray:
        m = self.model
        if not m.subtopic_labels:
            return np.zeros((x.shape[0], 0))
        return _expit(np.asarray(x[:, m.subtopic_columns] @ m.subtopic_coef) + m.subtopic_intercept)

    def _subtopics(self, probs: np.ndarray) -> tuple[str, ...]:
        if not len(probs):
            return ()
        chosen = [i for i in np.argsort(-probs) if probs[i] >= 0.5] or [int(np.argmax(probs))]
        return tuple(self.model.subtopic_labels[i] for i in chosen)

    def _top_terms(self, x: sparse.csr_matrix, row: int, k: int) -> list[str]:
        """Row ``row``'s word features by contribution (coefficient x tf-idf), highest first, skipping
        non-positive ones, stop-word-only ones and those a higher-ranked term covers; at most k."""
        m = self.model
        start, end = int(x.indptr[row]), int(x.indptr[row + 1])
        columns = x.indices[start:end]  # sorted: the word block comes first
        words = int(np.searchsorted(columns, len(m.word_terms)))
        contrib = x.data[start:start + words] * m.explain_coef[columns[:words]]
        kept: list[str] = []
        for i in np.argsort(-contrib):
            if len(kept) >= k or contrib[i] <= 0:
                break
            if m.readable[columns[i]]:
                term = m.word_terms[columns[i]]
                if not any(_covers(other, term) for other in kept):
                    kept.append(term)
        return [_display(t) for t in kept]


def _display(term: str) -> str:
    return term.replace("unitedstates", "US").replace("unitedkingdom", "UK")


def _covers(kept: str, term: str) -> bool:
    """Does a higher-ranked term make ``term`` redundant ('export controls' covers 'export')?"""
    return term in kept.split() or term == kept or kept in term.split()


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


def sklearn_version() -> str:
    """The installed scikit-learn's version, read without importing it."""
    return package_metadata.version("scikit-learn")


def save(model: TrainedModel | CompiledModel, state_dir: Path) -> Path:
    """Write the compiled model to ``state_dir/model/classifier.joblib`` and ``metadata.json``; return the
    model directory."""
    target = Path(state_dir) / MODEL_DIR
    compiled = model if isinstance(model, CompiledModel) else compile_model(model)
    try:
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / (MODEL_FILE + ".tmp")
        joblib.dump(compiled, tmp, compress=3)
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
    if isinstance(model, TrainedModel):  # saved before models were compiled: unpickling it imported sklearn
        log.info("model %s is not compiled; compiling it (save it again to load it faster)", model_path)
    elif not isinstance(model, CompiledModel):
        log.warning("model %s holds %s, not a CompiledModel; it needs retraining", model_path, type(model))
        return None
    try:
        return Classifier(model)
    except ClassifierError as exc:
        log.warning("model %s cannot be used (%s); it needs retraining", model_path, exc)
        return None


def _stale_reason(meta: dict[str, Any], corpus_dir: Path | None) -> str:
    if meta.get("sklearn_version") != sklearn_version():
        return f"scikit-learn {meta.get('sklearn_version')} != {sklearn_version()}"
    if meta.get("corpus_hash") != corpus_hash(corpus_dir):
        return "the corpus changed"
    return ""


def iter_texts(records: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(title, summary) pairs of corpus-style dicts."""
    return [(str(r.get("title") or ""), str(r.get("summary") or "")) for r in records]
