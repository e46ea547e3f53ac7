"""Benchmark the relevance classifier: CPU per story and the RSS that loading the model adds, before and after
the model was compiled (issue #5), plus a check that both give the same scores.

"Before" is the scikit-learn pipeline as the Classifier used it until then (features.transform, the calibrated
model's and the subtopic models' predict_proba on every story, a sparse-matrix explanation per story); it is
re-implemented here as ``Legacy``. "After" is ``monitor.classify.Classifier`` on the compiled model.

    python bench/bench_classify.py [--state DIR] [--stories 1000]

Without --state a model is trained (full configuration, about 10 s) into a temporary directory.
Prints ms of CPU per story for batches of 1,000 and of 50 (a feed's new stories in one cycle) and 1, the RSS
added by loading the model and scoring 1,000 stories (in fresh subprocesses, after the monitor's own modules
are imported), and the largest score difference between both paths over every corpus item.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import joblib
import numpy as np
from scipy import sparse

from monitor import classify
from monitor.models import Verdict

LEGACY_FILE = "legacy.joblib"  # the TrainedModel (scikit-learn objects), as save() wrote it before


class Legacy:
    """The Classifier before compilation: what it precomputed once, and its predict_many (same results, the
    old per-story costs)."""

    def __init__(self, model: classify.TrainedModel) -> None:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        self.model, self.stop_words = model, ENGLISH_STOP_WORDS
        coef = np.mean([c.estimator.coef_[0] for c in model.relevance.calibrated_classifiers_], axis=0)
        self.names = dict(model.features.transformer_list)["word"].get_feature_names_out()
        self.coef = coef[: len(self.names)]
        self.version = hashlib.sha256(json.dumps(model.metadata, sort_keys=True).encode()).hexdigest()[:12]

    def predict_many(self, items: Sequence[tuple[str, str]]) -> list[Verdict]:
        m = self.model
        x = m.features.transform([classify.normalize_text(t, s) for t, s in items])
        scores = classify._gate(m.relevance.predict_proba(x)[:, 1], items, m.config)
        subs = np.asarray(m.subtopics.predict_proba(x)) if m.subtopics else np.zeros((len(items), 0))
        return [Verdict(score=round(float(scores[i]), 4),
                        subtopics=self._subtopics(subs[i]) if scores[i] >= m.threshold else (),
                        top_terms=self._explain(x[i]), model_version=self.version, threshold=m.threshold)
                for i in range(len(items))]

    def _explain(self, row: sparse.csr_matrix) -> tuple[str, ...]:
        contrib = sparse.csr_matrix(row)[:, : len(self.coef)].multiply(self.coef).tocsr()
        terms = [self.names[contrib.indices[i]] for i in np.argsort(-contrib.data) if contrib.data[i] > 0]
        kept: list[str] = []
        for term in terms:
            if all(w in self.stop_words for w in term.split()):
                continue
            if not any(classify._covers(k, term) for k in kept):
                kept.append(term)
        return tuple(classify._display(t) for t in kept[:5])

    def _subtopics(self, probs: np.ndarray) -> tuple[str, ...]:
        if not len(probs):
            return ()
        chosen = [i for i in np.argsort(-probs) if probs[i] >= 0.5] or [int(np.argmax(probs))]
        return tuple(self.model.subtopic_labels[i] for i in chosen)


def cpu_ms_per_story(predict: Callable[[Sequence[tuple[str, str]]], object], items: list[tuple[str, str]],
                     batch: int) -> float:
    predict(items[:batch])  # warm up (imports, caches)
    started = time.process_time()
    for i in range(0, len(items), batch):
        predict(items[i:i + batch])
    return (time.process_time() - started) / len(items) * 1000


_MEMORY_PROBE = """
import gc, json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
import monitor.pipeline, monitor.store, monitor.models  # what the daemon holds without a classifier
gc.collect()
base = rss()
state, legacy, n = sys.argv[1], sys.argv[2] == "legacy", int(sys.argv[3])
from monitor import classify
items = [(e.title, e.summary) for e in classify.load_corpus()][:n]
if legacy:
    import sklearn.calibration, sklearn.feature_extraction.text, sklearn.linear_model, sklearn.multiclass
    import sklearn.metrics, sklearn.pipeline, sklearn.preprocessing  # the old classify imported these
    sys.path.insert(0, sys.argv[4])
    from bench_classify import Legacy
    import joblib
    clf = Legacy(joblib.load(state + "/model/legacy.joblib"))
    gc.collect(); loaded = rss()
    for i in range(0, n, 50):
        clf.predict_many(items[i:i + 50])
else:
    clf = classify.load(__import__("pathlib").Path(state))
    gc.collect(); loaded = rss()
    for i in range(0, n, 50):
        clf.predict_many(items[i:i + 50])
gc.collect()
print(json.dumps({"loaded": loaded - base, "scored": rss() - base, "sklearn": "sklearn" in sys.modules}))
"""


def rss_added(state: Path, legacy: bool, stories: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(state), "legacy" if legacy else "compiled",
                          str(stories), str(Path(__file__).parent)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state", type=Path, help="state directory to train into and reuse")
    parser.add_argument("--stories", type=int, default=1000)
    args = parser.parse_args()
    state = args.state or Path(tempfile.mkdtemp(prefix="bench_classify_"))
    if not (state / "model" / LEGACY_FILE).exists():
        print(f"training the full model into {state} ...", flush=True)
        model = classify.train(seed=0)
        classify.save(model, state)
        joblib.dump(model, state / "model" / LEGACY_FILE, compress=3)
    model = joblib.load(state / "model" / LEGACY_FILE)
    legacy, clf = Legacy(model), classify.load(state)
    assert clf is not None
    corpus = [(e.title, e.summary) for e in classify.load_corpus()]
    items = corpus[: args.stories]

    before = [legacy.predict_many(corpus[i:i + 1000]) for i in range(0, len(corpus), 1000)]
    old = [v for chunk in before for v in chunk]
    new = clf.predict_many(corpus)
    raw_old = classify._gate(classify._raw_scores(model, corpus), corpus, model.config)
    raw_new = clf.scores(corpus)
    print(f"scores on {len(corpus)} corpus items: max |old - new| = {np.max(np.abs(raw_old - raw_new)):.3g}; "
          f"verdicts (rounded score, subtopics, top terms) identical: {sum(a == b for a, b in zip(old, new, strict=True))}"
          f"/{len(corpus)}")
    _, held = classify.split_corpus(classify.load_corpus())
    held_items = [(e.title, e.summary) for e in held]
    held_diff = np.max(np.abs(classify._gate(classify._raw_scores(model, held_items), held_items, model.config)
                              - clf.scores(held_items)))
    print(f"held-out split ({len(held)} items): max |old - new| = {held_diff:.3g}")

    print(f"\nCPU per story ({len(items)} stories; ms):")
    print(f"{'batch':>6} {'before':>8} {'after':>8}")
    for batch in (1000, 50, 1):
        sample = items if batch > 1 else items[:200]
        b = cpu_ms_per_story(legacy.predict_many, sample, batch)
        a = cpu_ms_per_story(clf.predict_many, sample, batch)
        print(f"{batch:>6} {b:>8.3f} {a:>8.3f}")

    print(f"\nRSS added over the monitor's modules (MB; fresh processes; {len(items)} stories scored in batches of 50):")
    for name, legacy in (("before", True), ("after", False)):
        r = rss_added(state, legacy, len(items))
        print(f"{name:>7}: model loaded {r['loaded']:6.1f}   after scoring {r['scored']:6.1f}   "
              f"scikit-learn imported: {r['sklearn']}")
    size = {f.name: f.stat().st_size / 1e6 for f in (state / "model").glob("*.joblib")}
    print(f"\nmodel file: {size.get(classify.MODEL_FILE, 0):.1f} MB compiled vs {size.get(LEGACY_FILE, 0):.1f} MB before")


if __name__ == "__main__":
    main()
