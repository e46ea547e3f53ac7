"""Build syndicated.jsonl and distinct_pairs.jsonl from the hand-written *_src.txt files.

The event texts, headlines and pairs are written by hand in the *_src.txt files. This script only applies
the mechanical changes that syndication makes (outlet suffixes and prefixes, trimmed summaries, feed
boilerplate, bylines, HTML entities, headline-only copies), rotating them deterministically across groups.

    python bench/data/build_sets.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).parent
OUTLETS = ["Reuters", "AP News", "AFP", "South China Morning Post", "Nikkei Asia", "Bloomberg", "CNBC", "BBC News",
           "The Guardian", "Taipei Times", "CNA", "Yahoo News", "Al Jazeera", "DW", "The Japan Times",
           "The Straits Times", "VOA", "The Register", "Financial Times", "Global Times"]
PREFIXES = ["EXCLUSIVE: ", "WATCH: ", "BREAKING: ", "UPDATE 2-", "Exclusive-", "UPDATE 1-", "Tech: ", "LIVE: "]
BYLINES = ["By Jane Doe and Wang Li (Reuters) - ", "WASHINGTON (AP) — ", "By Staff Writer | ", "BEIJING, (AFP) - ",
           "By Karen Liu, Nikkei staff writer ", ""]


def _blocks(text: str) -> list[list[str]]:
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    out: list[list[str]] = [[]]
    for ln in lines:
        if ln.strip():
            out[-1].append(ln)
        elif out[-1]:
            out.append([])
    return [b for b in out if b]


def _sentences(s: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", s.strip())


def _entities(s: str) -> str:
    return s.replace("&", "&amp;").replace("'", "&#8217;").replace('"', "&quot;")


def _variant(gi: int, i: int, title: str, s: str, r: str | None) -> dict[str, str]:
    outlet = OUTLETS[(gi * 7 + i * 3) % len(OUTLETS)]
    t = (gi + i) % 5
    if t == 0:
        return {"title": f"{title} - {outlet}", "summary": s, "source": outlet}
    if t == 1:
        pre = PREFIXES[(gi + i) % len(PREFIXES)]
        body = " ".join(_sentences(s)[:2])
        return {"title": f"{pre}{title} | {outlet}", "summary": f"{body} Read more »", "source": outlet}
    if t == 2:
        words = _sentences(s)[0].split()
        cut = " ".join(words[:22])
        return {"title": title, "summary": f"{cut} […] The post {title} appeared first on {outlet}.",
                "source": outlet}
    if t == 3:
        return {"title": _entities(title) + (f" — {outlet}" if gi % 2 else ""), "summary": "", "source": outlet}
    byline = BYLINES[gi % len(BYLINES)]
    body = (r or s).replace(" the ", " the&nbsp;", 1)
    return {"title": title, "summary": f"{byline}{_entities(body)} Continue reading…", "source": outlet}


def build_syndicated() -> list[dict[str, object]]:
    groups = []
    for gi, block in enumerate(_blocks((HERE / "syndicated_src.txt").read_text())):
        s = next(ln[3:] for ln in block if ln.startswith("S: "))
        r = next((ln[3:] for ln in block if ln.startswith("R: ")), None)
        heads = [ln[3:] for ln in block if ln.startswith("H: ")]
        items = [_variant(gi, i, h, s, r) for i, h in enumerate(heads)]
        if gi % 3 == 0:  # a plain second copy of the wire headline under another outlet
            outlet = OUTLETS[(gi + 11) % len(OUTLETS)]
            items.append({"title": f"{heads[0]} | {outlet}", "summary": " ".join(_sentences(s)[:1]),
                          "source": outlet})
        groups.append({"group": f"g{gi + 1:03d}", "items": items[:6]})
    return groups


def _item(spec: str, outlet: str) -> dict[str, str]:
    title, _, summary = spec.partition("||")
    return {"title": title.strip(), "summary": summary.strip(), "source": outlet}


def build_distinct() -> list[dict[str, object]]:
    pairs = []
    for pi, block in enumerate(_blocks((HERE / "distinct_src.txt").read_text())):
        get = {ln[:2]: ln[3:] for ln in block}
        date_a, date_b = (d.strip() for d in get["D:"].split("|"))
        pairs.append({"a": {**_item(get["A:"], OUTLETS[pi % len(OUTLETS)]), "date": date_a.lstrip("~"),
                            "date_approx": date_a.startswith("~")},
                      "b": {**_item(get["B:"], OUTLETS[(pi + 5) % len(OUTLETS)]), "date": date_b.lstrip("~"),
                            "date_approx": date_b.startswith("~")},
                      "why": get["W:"].strip()})
    return pairs


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


if __name__ == "__main__":
    _write(HERE / "syndicated.jsonl", build_syndicated())
    _write(HERE / "distinct_pairs.jsonl", build_distinct())
