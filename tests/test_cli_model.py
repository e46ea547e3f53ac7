"""The relevance model from the command line: alerts say why, label, review, train with labels, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from feedgen import Item, rss
from helpers import cli, run_once, write_config
from pytest_httpserver import HTTPServer

pytestmark = pytest.mark.slow

ITEMS = [
    Item("US adds Chinese chipmakers SMIC and YMTC units to Entity List over military ties",
         "https://wire.example/entity-list", "Commerce cited national security and export controls on chips."),
    Item("Chinese hackers breached US Treasury workstations, officials say", "https://wire.example/treasury-hack",
         "The intrusion was attributed to a Beijing-backed group."),
    Item("Local bakery wins national bread award", "https://wire.example/bakery", ""),
    Item("Stocks edge higher as investors await inflation data", "https://wire.example/stocks", ""),
]


def test_model_commands_end_to_end(tmp_path: Path, config_dir: Path, httpserver: HTTPServer, receiver,
                                   capsys) -> None:
    httpserver.expect_request("/f.xml").respond_with_data(rss("Wire", ITEMS), content_type="application/rss+xml")
    config = write_config(config_dir, [receiver.url()], [{"url": httpserver.url_for("/f.xml"), "name": "Wire"}],
                          classifier=True, keyword_watchlist=False)
    for path in (config_dir / "watchlists").glob("*.yaml"):
        if path.name != "us-china-tech-security.yaml":
            path.unlink()
    state = tmp_path / "state"
    assert run_once(config, state) == 0  # trains the model first (auto_train)
    assert (state / "model" / "metadata.json").exists()

    # alerts say why: the score against the model's threshold, and the words that counted
    assert sorted(receiver.titles()) == sorted(item.title for item in ITEMS[:2])
    assert all("score" in m["message"] and "terms:" in m["message"] for m in receiver.received)

    capsys.readouterr()
    assert cli(config, state, "stories", "--json") == 0
    stories = {s["title"]: s for s in json.loads(capsys.readouterr().out)}
    bakery = stories[ITEMS[2].title]["id"]
    chips = stories[ITEMS[0].title]
    assert chips["score"] > 0.5 and "chips_export_controls" in chips["subtopics"]

    assert cli(config, state, "review", "--limit", "4") == 0
    review = capsys.readouterr().out
    assert "least sure" in review and f"#{bakery}" in review

    assert cli(config, state, "label", str(bakery), "relevant", "--subtopic", "other") == 0
    assert "1 label stored" in capsys.readouterr().out
    assert cli(config, state, "label", str(bakery), "relevant", "--subtopic", "nonsense") == 2

    assert cli(config, state, "train") == 0
    assert "threshold" in capsys.readouterr().out
    meta = json.loads((state / "model" / "metadata.json").read_text())
    assert meta["n_user_labels"] == 1

    data = tmp_path / "eval.jsonl"
    data.write_text("\n".join(json.dumps({"title": i.title, "summary": i.summary, "label": int(n < 2)})
                              for n, i in enumerate(ITEMS)) + "\n")
    out = tmp_path / "eval"
    assert cli(config, state, "evaluate", "--data", str(data), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "precision" in printed and "PR-AUC" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == 4 and report["n_positive"] == 2
    assert (out / "pr_curve.png").read_bytes()[:4] == b"\x89PNG"
