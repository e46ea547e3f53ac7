"""Relevance classifier: training on the shipped corpus, persistence, explanations, evaluation.

Trains once per module with the smaller ``TrainConfig.fast()`` model; uses only the shipped corpus.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import pytest

from monitor import classify
from monitor.classify import Classifier, LabeledText, TrainConfig
from monitor.errors import ClassifierError
from monitor.evaluate import evaluate
from monitor.models import Verdict

pytestmark = pytest.mark.slow

RELEVANT = ("Commerce adds Huawei and SMIC affiliates to Entity List over chip exports",
            "The US tightened export controls on advanced semiconductors sold to Chinese firms.")
IRRELEVANT = ("Local bakery wins county fair pie contest", "The blueberry pie took first place on Saturday.")


@pytest.fixture(scope="module")
def model() -> classify.TrainedModel:
    return classify.train(config=TrainConfig.fast(), seed=0)


@pytest.fixture(scope="module")
def clf(model: classify.TrainedModel) -> Classifier:
    return Classifier(model)


def test_corpus_records_are_well_formed() -> None:
    examples = classify.load_corpus()
    assert len(examples) >= 100
    assert {e.label for e in examples} == {0, 1}
    for e in examples:
        assert e.title.strip(), e.id
        assert set(e.subtopics) <= set(classify.SUBTOPICS), e.id
        assert e.kind in {"positive", "hard_negative", "ordinary"}, e.id
        assert (e.kind == "positive") == (e.label == 1), e.id


def test_held_out_split_is_stable_and_about_a_fifth() -> None:
    examples = classify.load_corpus()
    train, held = classify.split_corpus(examples)
    assert len(train) + len(held) == len(examples)
    assert 0.12 < len(held) / len(examples) < 0.28
    assert classify.is_held_out("pa-0001") == classify.is_held_out("pa-0001")
    assert held == classify.split_corpus(list(reversed(examples)))[1][::-1]


def test_corpus_hash_changes_with_content(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": "x", "title": "t", "label": 0}\n')
    first = classify.corpus_hash(tmp_path)
    (tmp_path / "a.jsonl").write_text('{"id": "x", "title": "u", "label": 0}\n')
    assert classify.corpus_hash(tmp_path) != first


def test_bad_corpus_record_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": "x", "title": "t", "label": 0}\n{"id": "y"}\n')
    with pytest.raises(ClassifierError, match=r"a\.jsonl:2"):
        classify.load_corpus(tmp_path)


def test_normalize_text_decodes_entities_and_drops_outlet_suffix() -> None:
    text = classify.normalize_text("U.S. bans Huawei gear &amp; chips over security fears - Reuters",
                                   "WASHINGTON (Reuters) - The <b>U.S.</b> said")
    assert "Reuters" not in text and "&amp;" not in text and "<b>" not in text
    assert "unitedstates bans Huawei gear & chips" in text


def test_entity_gate() -> None:
    assert classify.mentions_china("Salt Typhoon hackers hit telecoms")
    assert classify.mentions_china("New rules", "Beijing responded on Monday")
    assert not classify.mentions_china("Local bakery wins pie contest")


def test_training_beats_a_sane_floor_on_the_held_out_split(model: classify.TrainedModel) -> None:
    held = model.metadata["held_out"]
    assert held["n_positive"] > 10
    assert held["pr_auc"] > 0.85
    assert held["f1"] > 0.6
    assert 0.0 < model.threshold < 1.0
    assert model.metadata["train_seconds"] < 60
    assert model.metadata["refit_on_all"] and model.metadata["threshold"] == model.threshold


def test_predict_separates_obvious_cases(clf: Classifier) -> None:
    good, bad = clf.predict_many([RELEVANT, IRRELEVANT])
    assert isinstance(good, Verdict)
    assert good.score > clf.threshold > bad.score
    assert good.subtopics and set(good.subtopics) <= set(classify.SUBTOPICS)
    assert bad.subtopics == ()
    assert good.model_version == clf.version and len(clf.version) == 12
    assert good.threshold == clf.threshold
    assert clf.predict(*RELEVANT) == good


def test_explain_returns_words_present_in_the_text(clf: Classifier) -> None:
    terms = clf.explain(*RELEVANT, k=5)
    assert 0 < len(terms) <= 5
    text = classify.normalize_text(*RELEVANT).lower().replace("unitedstates", "us")
    for term in terms:
        assert term.lower() in text, term


def test_save_load_round_trip(tmp_path: Path, model: classify.TrainedModel, clf: Classifier) -> None:
    classify.save(model, tmp_path)
    meta = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert {"sklearn_version", "corpus_hash", "trained_at", "n_examples", "held_out", "threshold"} <= set(meta)
    loaded = classify.load(tmp_path)
    assert loaded is not None
    assert loaded.version == clf.version
    assert loaded.predict(*RELEVANT) == clf.predict(*RELEVANT)


def test_load_returns_none_when_missing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor.classify"):
        assert classify.load(tmp_path) is None
    assert "no trained model" in caplog.text


def test_sklearn_version_mismatch_means_retrain(tmp_path: Path, model: classify.TrainedModel,
                                                caplog: pytest.LogCaptureFixture) -> None:
    classify.save(model, tmp_path)
    meta_path = tmp_path / "model" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["sklearn_version"] = "0.0.1"
    meta_path.write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="monitor.classify"):
        assert classify.load(tmp_path) is None
    assert "scikit-learn 0.0.1" in caplog.text


def test_corpus_change_means_retrain(tmp_path: Path, model: classify.TrainedModel) -> None:
    classify.save(model, tmp_path / "state")
    corpus = tmp_path / "corpus"
    shutil.copytree(classify.default_corpus_dir(), corpus)
    assert classify.load(tmp_path / "state", corpus_dir=corpus) is not None
    with (corpus / "extra.jsonl").open("w") as f:
        f.write('{"id": "new-1", "title": "Another story", "label": 0}\n')
    assert classify.load(tmp_path / "state", corpus_dir=corpus) is None


def test_unreadable_model_means_retrain(tmp_path: Path, model: classify.TrainedModel) -> None:
    classify.save(model, tmp_path)
    (tmp_path / "model" / "classifier.joblib").write_bytes(b"not a pickle")
    assert classify.load(tmp_path) is None


def test_user_labels_change_a_prediction(clf: Classifier) -> None:
    story = ("Regional grid operator schedules turbine maintenance", "Crews will inspect wind turbines in May.")
    labels = [LabeledText(*story, label=1, subtopics=("other",)),
              LabeledText("Grid operator plans turbine upgrades", "Turbine maintenance crews are hired.", 1)]
    no_gates = TrainConfig.fast(entity_gate=1.0, topic_gate=1.0, refit_on_all=False)
    retrained = Classifier(classify.train(user_labels=labels, config=no_gates))
    baseline = Classifier(classify.train(config=no_gates))
    assert retrained.predict(*story).score > baseline.predict(*story).score + 0.2


def test_background_is_used_as_weak_negatives() -> None:
    background = [(f"Weekend weather: sunny spells number {i}", "Forecasters expect mild days.") for i in range(60)]
    model = classify.train(background=background, config=TrainConfig.fast(refit_on_all=False))
    assert model.metadata["n_background"] + model.metadata["n_background_held_out"] == 60
    assert model.metadata["n_background"] > 40


def test_evaluate_writes_json_and_png(tmp_path: Path, clf: Classifier) -> None:
    pytest.importorskip("matplotlib")
    report = evaluate(clf, None, out_dir=tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert (tmp_path / "pr_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["pr_auc"] == report.pr_auc and report.pr_auc is not None and report.pr_auc > 0.85
    assert report.n_positive > 0 and 0 <= report.precision <= 1 and 0 <= report.recall <= 1
    assert report.subtopics and all(0 <= s.f1 <= 1 for s in report.subtopics.values())
    assert report.in_sample == clf.metadata["refit_on_all"]


def test_evaluate_on_given_records(clf: Classifier) -> None:
    records = [{"title": RELEVANT[0], "summary": RELEVANT[1], "label": 1, "subtopics": ["chips_export_controls"]},
               {"title": IRRELEVANT[0], "summary": IRRELEVANT[1], "label": 0}]
    report = evaluate(clf, records, threshold=clf.threshold)
    assert (report.precision, report.recall, report.n) == (1.0, 1.0, 2)
    assert report.report_path == ""


def test_uncertain_ranks_by_closeness_to_threshold(clf: Classifier) -> None:
    items = [RELEVANT, IRRELEVANT, ("China weighs new rules for drones", "Officials discussed exports.")]
    ranked = classify.uncertain(clf, items, k=3)
    assert sorted(i for i, _ in ranked) == [0, 1, 2]
    def logit(p: float) -> float:
        return math.log(p / (1 - p))

    distances = [abs(logit(min(max(s, 1e-6), 1 - 1e-6)) - logit(clf.threshold)) for _, s in ranked]
    assert distances == sorted(distances)


def test_evaluate_without_positives_still_reports(tmp_path: Path, clf: Classifier) -> None:
    pytest.importorskip("matplotlib")
    records = [{"title": IRRELEVANT[0], "summary": IRRELEVANT[1], "label": 0}]
    report = evaluate(clf, records, out_dir=tmp_path)
    assert report.pr_auc is None and report.alerts == 0
    assert json.loads((tmp_path / "report.json").read_text())["pr_auc"] is None
