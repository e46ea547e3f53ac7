"""Benchmark near-duplicate story clustering (monitor.stories.StoryIndex).

Prints:
  * merge recall on syndicated pairs (every pair inside each group of bench/data/syndicated.jsonl);
  * false-merge rate on distinct same-topic pairs (bench/data/distinct_pairs.jsonl), each pair fed a few
    hours apart -- deliberately inside the window -- into an index that also holds unrelated noise;
  * cost per new entry (canonical-URL lookup in SQLite + match + add) with N stored entries spread over a
    year (the index holds only the window), and the worst case where all N entries are inside the window.

    python bench/bench_dedup.py [--quick] [--shingles N] [--verbose]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sqlite3
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor import stories
from monitor.stories import StoryIndex

DATA = Path(__file__).parent / "data"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


class Clusterer:
    """What the pipeline does: match, else open a new story; then add."""

    def __init__(self, index: StoryIndex) -> None:
        self.index, self.next_story, self.next_key = index, 1, 1

    def feed(self, title: str, summary: str, when: datetime) -> int:
        m = self.index.match(title, summary, when)
        story = m.story_id if m else self.next_story
        if m is None:
            self.next_story += 1
        self.index.add(self.next_key, story, title, summary, when)
        self.next_key += 1
        return story


def syndicated_recall(groups: list[dict], verbose: bool) -> tuple[int, int]:
    c = Clusterer(StoryIndex())
    merged = total = 0
    for gi, g in enumerate(groups):
        start = T0 + gi * timedelta(days=10)  # groups far apart: each is judged on its own
        ids = [c.feed(it["title"], it["summary"], start + i * timedelta(hours=3)) for i, it in enumerate(g["items"])]
        for (a, ia), (b, ib) in itertools.combinations(list(zip(g["items"], ids)), 2):
            total += 1
            merged += ia == ib
            if verbose and ia != ib:
                print(f"  MISS {g['group']}: {a['title']!r} [{len(a['summary'])}] / {b['title']!r} [{len(b['summary'])}]")
    return merged, total


def cross_group_merges(groups: list[dict]) -> tuple[int, int]:
    """All groups interleaved inside one window: how many groups share a story id with another group."""
    c = Clusterer(StoryIndex(window=timedelta(days=3650)))
    rng = random.Random(7)
    items = [(g["group"], it) for g in groups for it in g["items"]]
    rng.shuffle(items)
    story_groups: dict[int, set[str]] = {}
    for k, (gid, it) in enumerate(items):
        story = c.feed(it["title"], it["summary"], T0 + k * timedelta(minutes=5))
        story_groups.setdefault(story, set()).add(gid)
    bad = {gid for gs in story_groups.values() if len(gs) > 1 for gid in gs}
    return len(bad), len(groups)


def distinct_false_merges(pairs: list[dict], groups: list[dict], verbose: bool) -> tuple[int, int]:
    rng = random.Random(11)
    noise = [it for g in groups for it in g["items"]]
    merged = 0
    for p in pairs:
        c = Clusterer(StoryIndex())
        for k, it in enumerate(rng.sample(noise, 150)):
            c.feed(it["title"], it["summary"], T0 + k * timedelta(minutes=20))
        when = T0 + timedelta(hours=50)
        sa = c.feed(p["a"]["title"], p["a"]["summary"], when)
        sb = c.feed(p["b"]["title"], p["b"]["summary"], when + timedelta(hours=6))
        merged += sa == sb
        if verbose and sa == sb:
            print(f"  FALSE {p['a']['title']!r} / {p['b']['title']!r} ({p['why']})")
    return merged, len(pairs)


# ---- cost ---------------------------------------------------------------------------------------------

def vocabulary(groups: list[dict]) -> list[str]:
    words = [w for g in groups for it in g["items"] for w in (it["title"] + " " + it["summary"]).split()]
    return words + [f"term{i}" for i in range(20000)]  # a long tail so texts are as varied as real ones


class TextMaker:
    def __init__(self, vocab: list[str], seed: int) -> None:
        self.vocab, self.rng = vocab, random.Random(seed)

    def entry(self) -> tuple[str, str]:
        r = self.rng
        title = " ".join(r.choice(self.vocab) for _ in range(r.randint(7, 13)))
        summary = "" if r.random() < 0.15 else " ".join(r.choice(self.vocab) for _ in range(r.randint(25, 60)))
        return title, summary


def sqlite_table(n: int) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, url TEXT NOT NULL, story_id INTEGER)")
    db.execute("CREATE UNIQUE INDEX entries_url ON entries(url)")
    db.executemany("INSERT INTO entries (url, story_id) VALUES (?, ?)",
                   ((f"https://news.example.com/{i:08d}/story", i) for i in range(n)))
    db.commit()
    return db


def cost(n: int, span: timedelta, maker: TextMaker, probes: int) -> tuple[float, float, int, float]:
    """Mean and p95 microseconds per new entry with n stored entries spread over `span` before now."""
    db = sqlite_table(n)
    index = StoryIndex()
    now = T0 + span
    step = span / n
    first_in_window = max(0, n - int(index.window / step)) if step else 0
    t = time.perf_counter()
    for i in range(first_in_window, n):  # what the store rebuild does at start
        title, summary = maker.entry()
        index.add(i, i, title, summary, T0 + step * (i + 1))
    rebuild_s = time.perf_counter() - t
    timings = []
    for j in range(probes):
        title, summary = maker.entry()
        url = f"https://news.example.com/{(n + j) if j % 2 else j * 7919 % n:08d}/story"
        when = now + timedelta(seconds=j)
        t = time.perf_counter()
        db.execute("SELECT id, story_id FROM entries WHERE url = ?", (url,)).fetchone()
        m = index.match(title, summary, when)
        index.add(n + j, m.story_id if m else n + j, title, summary, when)
        timings.append(time.perf_counter() - t)
    db.close()
    us = [x * 1e6 for x in timings]
    return statistics.fmean(us), statistics.quantiles(us, n=20)[18], len(index), rebuild_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller cost runs")
    ap.add_argument("--shingles", type=int, default=None, help="override shingle size n")
    ap.add_argument("--verbose", action="store_true", help="print misses and false merges")
    ap.add_argument("--no-cost", action="store_true", help="quality figures only")
    args = ap.parse_args()
    if args.shingles:
        stories.SHINGLE_N = args.shingles
    groups, pairs = load("syndicated.jsonl"), load("distinct_pairs.jsonl")

    m, n = syndicated_recall(groups, args.verbose)
    print(f"syndicated pairs merged: {m}/{n} = {m / n:.1%}  (target >= 95%; {len(groups)} groups)")
    f, n = distinct_false_merges(pairs, groups, args.verbose)
    print(f"distinct pairs merged:   {f}/{n} = {f / n:.1%}  (target <= 2%; fed 6 h apart, inside the window)")
    b, n = cross_group_merges(groups)
    print(f"groups merged with another group when all {n} groups share one window: {b}")
    if args.no_cost:
        return

    maker = TextMaker(vocabulary(groups), seed=3)
    probes = 1000 if args.quick else 3000
    print(f"\ncost per new entry (SQLite URL lookup + match + add), {probes} probes each:")
    results = {}
    for n in (10_000, 100_000, 1_000_000):
        mean, p95, held, rebuild = cost(n, YEAR, maker, probes)
        results[n] = mean
        print(f"  {n:>9,} stored over a year: mean {mean:7.1f} us  p95 {p95:7.1f} us  "
              f"(index holds {held:,}; rebuild {rebuild:.2f} s)")
    worst = 20_000 if args.quick else 100_000
    mean, p95, held, rebuild = cost(worst, timedelta(hours=70), maker, probes)
    print(f"  {worst:>9,} all inside the window: mean {mean:7.1f} us  p95 {p95:7.1f} us  "
          f"(index holds {held:,}; rebuild {rebuild:.2f} s, {rebuild / held * 1e6:.0f} us per add)")
    print(f"  ratio 1M/10k: {results[1_000_000] / results[10_000]:.2f}  (target <= 2.0)")


if __name__ == "__main__":
    main()
