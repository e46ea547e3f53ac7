"""Time 50 watchlists over 10,000 stories, the way the pipeline evaluates them.

    python bench/bench_watchlists.py [--stories 10000] [--seed 7] [--synthetic]

The watchlists are the shipped ones (config/watchlists, with config/entities.yaml) plus synthetic ones
built from bench_query's queries, mixed with keyword rules, min_score and source filters. The stories are
real headlines and summaries drawn from the shipped training corpus (about half of them on topic, far more
than in real feeds), with a random verdict; ``--synthetic`` uses bench_query's word salad of topical words
instead, a worst case where nearly every story reaches the expensive NEAR clauses. Each story is normalized
once (``prepare``) and the Doc is shared by every watchlist. Prints CPU times and the matches; no
assertions: this is a figure to watch (the target is under 1 s for prepare + evaluate).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_query import ENTITIES, QUERIES, synthetic_story

from monitor.classify import SUBTOPICS
from monitor.config import KeywordRules, WatchlistConfig, WatchlistFile, load_config
from monitor.models import StoryView, Verdict
from monitor.watchlists import CompiledWatchlist, compile_all, prepare

KEYWORD_SETS = [["chip*", "semiconductor*", "Entity List"], ["hack*", "breach*", "espionage"],
                ["TikTok", "ByteDance", "data security"], ["rare earth*", "gallium", "germanium"]]


def synthetic_watchlists(count: int, entities_file: Path | None) -> list[WatchlistConfig]:
    """``count`` watchlists: a query each, and on some keyword rules, a score floor or a source filter."""
    out = []
    for i in range(count):
        spec: dict[str, object] = {"name": f"bench-{i}", "query": QUERIES[i % len(QUERIES)],
                                   "entities": ENTITIES}
        if i % 3 == 0:
            spec["keywords"] = KeywordRules(any=KEYWORD_SETS[i % len(KEYWORD_SETS)], all=[["China", "Chinese", "中国"]],
                                            none=["soybeans"])
        if i % 4 == 1:
            spec["min_score"] = 0.3
        if i % 5 == 2:
            spec["sources"] = ["Reuters", "policy"]
        out.append(WatchlistConfig(name=f"bench-{i}", path=Path(f"<bench-{i}>"), line=1,
                                   spec=WatchlistFile(**spec), entities_file=entities_file))  # type: ignore[arg-type]
    return out


def corpus_stories(count: int, rng: random.Random) -> list[StoryView]:
    """Stories drawn (with replacement) from the shipped corpus, from random outlets, with random verdicts."""
    records = [json.loads(line) for path in sorted((ROOT / "monitor" / "data" / "corpus").glob("*.jsonl"))
               for line in path.read_text().splitlines() if line.strip()]
    feeds = ("Reuters", "South China Morning Post", "Nikkei Asia", "BBC", "The Register", "Caixin")
    out = []
    for i in range(count):
        record = rng.choice(records)
        subtopics = tuple(record.get("subtopics") or ()) or (rng.choice(SUBTOPICS),)
        out.append(StoryView(id=i, title=record["title"], summary=record.get("summary") or "", link="",
                             feed_name=rng.choice(feeds), published=synthetic_story(i, rng).published,
                             feed_tags=(rng.choice(("policy", "tech", "security")),),
                             verdict=Verdict(rng.random(), subtopics) if rng.random() < 0.8 else None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=10_000)
    parser.add_argument("--watchlists", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--synthetic", action="store_true", help="word-salad stories (a worst case)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    if args.synthetic:
        stories = [synthetic_story(i, rng) for i in range(args.stories)]
    else:
        stories = corpus_stories(args.stories, rng)
    shipped = load_config(ROOT / "config" / "monitor.yaml")

    clock = time.process_time  # CPU time of this process: steadier than wall time on a busy machine
    started = clock()
    configs = list(shipped.watchlists)
    configs += synthetic_watchlists(args.watchlists - len(configs), shipped.entities_path)
    watchlists: list[CompiledWatchlist] = compile_all(configs, include_disabled=True)
    compiled = clock()
    matched = 0
    prepare_s = 0.0
    predicates = [w.predicate for w in watchlists]
    for story in stories:  # as the pipeline does: one Doc per story, shared by every watchlist
        t0 = clock()
        doc = prepare(story)
        prepare_s += clock() - t0
        for predicate in predicates:
            matched += predicate(doc)
    done = clock()

    pairs = len(watchlists) * len(stories)
    total = done - compiled
    kind = "synthetic" if args.synthetic else "corpus"
    print(f"{len(watchlists)} watchlists ({len(shipped.watchlists)} shipped) x {len(stories)} {kind} stories = "
          f"{pairs:,} evaluations (CPU time)")
    print(f"compile  {1000 * (compiled - started):8.1f} ms")
    print(f"prepare  {1000 * prepare_s:8.1f} ms  ({1e6 * prepare_s / len(stories):.1f} us/story)")
    print(f"evaluate {1000 * (total - prepare_s):8.1f} ms  ({1e9 * (total - prepare_s) / pairs:.0f} ns/pair)")
    print(f"total    {1000 * total:8.1f} ms  (prepare + evaluate; target < 1000 ms); {matched:,} matches")


if __name__ == "__main__":
    main()
