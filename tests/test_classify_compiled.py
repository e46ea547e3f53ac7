"""The compiled model (issue #5) scores like the fitted scikit-learn pipeline and predicts without importing it.

Trains one small model with word and char n-grams (no refit) per module; only the shipped corpus is used.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from monitor import classify
from monitor.classify import Classifier, TrainConfig

pytestmark = pytest.mark.slow

ODD = [("Café Zürich: naïve résumé of Huawei’s 5G ﬁle", "Straße <b>U.S.</b> x&amp;y \t  tabs https://x.example/a"),
       ("", ""), ("a", "b"), ("I", ""), ("Ünïcödé only", "ÀÉÎÕÜ ß ﬀ")]


@pytest.fixture(scope="module")
def model() -> classify.TrainedModel:
    return classify.train(config=TrainConfig.fast(char_ngrams=(3, 5), refit_on_all=False), seed=0)


@pytest.fixture(scope="module")
def items() -> list[tuple[str, str]]:
    return [(e.title, e.summary) for e in classify.load_corpus()][::3] + ODD


def test_features_are_bit_identical_to_the_vectorizers(model: classify.TrainedModel,
                                                       items: list[tuple[str, str]]) -> None:
    expected = model.features.transform([classify.normalize_text(t, s) for t, s in items]).tocsr()
    got = Classifier(model)._vectors([(classify._clean(t), classify._clean(s)) for t, s in items])
    assert np.array_equal(expected.indptr, got.indptr)
    assert np.array_equal(expected.indices, got.indices)
    assert expected.data.dtype == got.data.dtype and np.array_equal(expected.data, got.data)


def test_scores_and_subtopics_match_the_pipeline(model: classify.TrainedModel, items: list[tuple[str, str]]) -> None:
    clf = Classifier(model)
    expected = classify._gate(classify._raw_scores(model, items), items, model.config)
    assert np.max(np.abs(clf.scores(items) - expected)) <= 1e-12
    x = model.features.transform([classify.normalize_text(t, s) for t, s in items])
    assert model.subtopics is not None
    probs = clf._subtopic_probs(clf._vectors([(classify._clean(t), classify._clean(s)) for t, s in items]))
    assert np.max(np.abs(probs - model.subtopics.predict_proba(x))) <= 1e-12


def test_batch_and_single_predictions_agree(model: classify.TrainedModel, items: list[tuple[str, str]]) -> None:
    clf = Classifier(model)
    batch = clf.predict_many(items[:40])
    assert batch == [clf.predict(t, s) for t, s in items[:40]]
    assert [v.top_terms for v in batch[:10]] == [tuple(clf.explain(t, s)) for t, s in items[:10]]


def test_explanations_match_the_sparse_matrix_version(model: classify.TrainedModel,
                                                      items: list[tuple[str, str]]) -> None:
    from scipy import sparse
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    clf = Classifier(model)
    names = dict(model.features.transformer_list)["word"].get_feature_names_out()
    coef = np.mean([c.estimator.coef_[0] for c in model.relevance.calibrated_classifiers_], axis=0)[: len(names)]
    x = model.features.transform([classify.normalize_text(t, s) for t, s in items[:300]])
    for i, (title, summary) in enumerate(items[:300]):
        contrib = sparse.csr_matrix(x[i])[:, : len(coef)].multiply(coef).tocsr()
        terms = [names[contrib.indices[j]] for j in np.argsort(-contrib.data) if contrib.data[j] > 0]
        kept: list[str] = []
        for term in terms:
            if not all(w in ENGLISH_STOP_WORDS for w in term.split()) and not any(
                    classify._covers(k, term) for k in kept):
                kept.append(term)
        assert clf.explain(title, summary, k=7) == [classify._display(t) for t in kept[:7]]


def test_a_model_saved_before_compilation_still_loads(tmp_path: Path, model: classify.TrainedModel) -> None:
    classify.save(model, tmp_path)
    joblib.dump(model, tmp_path / "model" / classify.MODEL_FILE)  # the old format: scikit-learn objects
    loaded = classify.load(tmp_path)
    assert loaded is not None and loaded.predict(*ODD[0]) == Classifier(model).predict(*ODD[0])


def test_loading_and_predicting_do_not_import_sklearn(tmp_path: Path, model: classify.TrainedModel) -> None:
    classify.save(model, tmp_path)
    code = ("import sys; from pathlib import Path; from monitor import classify\n"
            f"clf = classify.load(Path({str(tmp_path)!r}))\n"
            "v = clf.predict_many([('Huawei chips', 'US export controls'), ('Pie contest', 'Blueberry')])\n"
            "print(len(v), 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["2", "False"]
