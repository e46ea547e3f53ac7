"""Time 50 realistic watchlist queries over 10,000 synthetic stories.

    python bench/bench_query.py [--stories 10000] [--seed 7]

Prints the CPU time to prepare the stories (normalize once each) and to evaluate every query on every
story, and how many (query, story) pairs matched. No assertions: this is a figure to watch.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime

from monitor.models import StoryView, Verdict
from monitor.query import Query, parse, prepare

ENTITIES = {
    "huawei": ["Huawei", "HiSilicon", "华为", "Honor Device"],
    "smic": ["SMIC", "Semiconductor Manufacturing International", "中芯国际"],
    "ymtc": ["YMTC", "Yangtze Memory"],
    "nvidia": ["Nvidia", "H20", "H100", "A100"],
    "commerce": ["Commerce Department", "BIS", "Bureau of Industry and Security", "Raimondo", "Lutnick"],
    "asml": ["ASML", "lithography", "EUV"],
    "tsmc": ["TSMC", "Taiwan Semiconductor", "台积电"],
    "tiktok": ["TikTok", "ByteDance", "抖音"],
    "pla": ["PLA", "People's Liberation Army", "解放军"],
    "taiwan": ["Taiwan", "Taipei", "台湾"],
}

QUERIES = [
    "@huawei NEAR/5 (ban* OR sanction* OR blacklist*)",
    '"entity list" (@huawei OR @smic OR @ymtc)',
    "export control* (chip* OR semiconduct*) score>=0.6",
    "@nvidia (China OR Chinese) NOT gaming",
    "title:@smic OR title:中芯国际",
    "@commerce NEAR/10 rule*",
    "@asml (Netherlands OR Dutch) export*",
    "@tsmc (Arizona OR fab*) -earnings",
    "@tiktok (ban* OR divest*) source:reuters",
    "@pla (drill* OR exercise*) @taiwan",
    "subtopic:chips_export_controls score>0.8",
    'case:AI (chip* OR model*) China',
    '"rare earth*" (export* OR ban*)',
    "gallium OR germanium OR antimony",
    'title:("Made in China" OR "dual circulation")',
    "tag:policy (tariff* NEAR/5 semiconduct*)",
    "(hack* OR breach* OR espionage) (Chinese OR China OR 中国)",
    '"Volt Typhoon" OR "Salt Typhoon" OR "Flax Typhoon"',
    "@huawei (Kirin OR Ascend OR 麒麟)",
    "quantum NEAR/8 (China OR Chinese)",
    "(undersea OR subsea) cable* China",
    '"outbound investment" (rule* OR ban*)',
    "CHIPS Act (grant* OR subsid*)",
    "@smic (7nm OR 5nm OR node*)",
    "Xi NEAR/5 (Biden OR Trump) summit*",
    "score>=0.9",
    "title:(China OR Chinese) title:(chip* OR AI)",
    '"South China Sea" (coast guard OR militia)',
    "@ymtc NAND -Samsung",
    "(drone* OR DJI) (ban* OR restrict*)",
    'source:"South China Morning Post" @huawei',
    "(Alibaba OR Tencent OR Baidu) (AI OR model* OR chip*)",
    "DeepSeek OR Qwen OR Kimi",
    "lidar NEAR/6 (Hesai OR Chinese)",
    "@commerce (\"foreign direct product\" OR FDPR)",
    "biotech* (BGI OR WuXi OR BIOSECURE)",
    "(port* OR crane*) ZPMC",
    "@taiwan (invasion OR blockade) NOT opinion",
    '"de minimis" (Shein OR Temu)',
    "H20 NEAR/5 (license* OR ban*)",
    "solar (tariff* OR antidumping OR \"anti-dumping\")",
    "(EV OR \"electric vehicle*\") BYD tariff*",
    "spy NEAR/3 balloon*",
    "@pla (hypersonic OR missile*) test*",
    "(Micron OR memory) CAC review",
    "title:华为 OR title:中芯国际 OR title:台积电",
    "subtopic:cyber (ransomware OR APT*)",
    '(Treasury OR OFAC) sanction* "Chinese"',
    "-score<0.3 (China OR Beijing) (semiconduct* OR chip*)",
    "talent (program* OR plan*) \"Thousand Talents\"",
]

WORDS = ["the", "a", "of", "to", "in", "and", "for", "on", "with", "by", "from", "as", "at", "that", "said", "would", "will", "new", "over", "after", "about", "officials", "company", "market", "report", "plans", "week", "year", "government", "industry", "analysts", "sources", "people", "China", "Chinese", "Beijing", "Washington", "US", "American", "chip", "chips", "semiconductor", "semiconductors", "export", "controls", "rule", "rules", "ban", "banned", "sanctions", "tariff", "tariffs", "Huawei", "SMIC", "Nvidia", "TSMC", "ASML", "TikTok", "Commerce", "Department", "entity", "list", "AI", "model", "models", "Taiwan", "PLA", "drills", "cyber", "hackers", "espionage", "Micron", "memory", "quantum", "cable", "subsea", "license", "licenses"]
CJK_WORDS = ["华为", "中芯国际", "台积电", "中国", "芯片", "出口", "管制", "美国", "制裁"]
FEEDS = ("Reuters", "South China Morning Post", "Nikkei Asia", "Xinhua", "The Register", "Caixin")


def synthetic_story(i: int, rng: random.Random) -> StoryView:
    """Topical word salad; one story in ten also quotes Chinese (as wire copy sometimes does)."""
    vocabulary = WORDS + CJK_WORDS if rng.random() < 0.1 else WORDS
    title = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(6, 14))).capitalize()
    summary = ". ".join(" ".join(rng.choice(vocabulary) for _ in range(rng.randint(8, 18))) for _ in range(3))
    verdict = Verdict(rng.random(), tuple(rng.sample(("chips_export_controls", "cyber", "military", "trade"), 1)))
    return StoryView(id=i, title=title, summary=summary + ".", link=f"https://example.com/{i}",
                     feed_name=rng.choice(FEEDS), published=datetime(2025, 1, 1, tzinfo=UTC),
                     feed_tags=(rng.choice(("policy", "tech", "security")),), sources=(rng.choice(FEEDS),),
                     verdict=verdict if rng.random() < 0.8 else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    stories = [synthetic_story(i, rng) for i in range(args.stories)]

    clock = time.process_time  # CPU time of this process: steadier than wall time on a busy machine
    started = clock()
    queries: list[Query] = [parse(q, ENTITIES) for q in QUERIES]
    parsed = clock()
    docs = [prepare(s) for s in stories]
    prepared = clock()
    matched = sum(q.matches_doc(d) for d in docs for q in queries)
    evaluated = clock()

    pairs = len(queries) * len(docs)
    print(f"{len(queries)} queries x {len(docs)} stories = {pairs:,} evaluations (CPU time)")
    print(f"parse    {1000 * (parsed - started):8.1f} ms")
    print(f"prepare  {1000 * (prepared - parsed):8.1f} ms  ({1e6 * (prepared - parsed) / len(docs):.1f} us/story)")
    print(f"evaluate {1000 * (evaluated - prepared):8.1f} ms  ({1e9 * (evaluated - prepared) / pairs:.0f} ns/pair)")
    print(f"total    {1000 * (evaluated - parsed):8.1f} ms  (prepare + evaluate); {matched:,} matches")


if __name__ == "__main__":
    main()
