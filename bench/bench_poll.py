"""Polling at scale: 1,000 feeds x 50 entries served by a local HTTP server in its own process.

For each contender, in a fresh process: a first full cycle (every feed new), then a second cycle in
which every feed answers 304 Not Modified. Wall time, CPU (the process and its children, e.g. parser
processes) and peak RSS are printed, with ratios, and the RSS and PSS summed over all of monitor's processes.

Contenders:
  monitor   the monitor pipeline (fetch, parse in a process pool, dedup, story clustering, keyword
            watchlists, outbox, delivery to a local JSON receiver); the classifier is DISABLED
            (pass --classifier to enable it: the model is trained first, outside the timing)
  floor     httpx (same concurrency) + feedparser with its default options + one SQLite INSERT per
            entry, one process: the least a Python poller can do
  floor-lean  the same floor with feedparser's HTML sanitizer off (as monitor runs it): a stricter floor
  monitor-nocluster  diagnostic: monitor with the near-duplicate story index switched off (no matching
            and no indexing: every entry its own story), to show what polling itself costs
  reader    the `reader` library (pip install 'monitor[bench]'), update_feeds(workers=16)

Run:  python bench/bench_poll.py [--feeds 1000] [--entries 50] [--only monitor,floor,...]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 16
# A vocabulary of pseudo-words, so that entries are as distinct from each other as real news is (a tiny
# vocabulary would make every entry a near-duplicate of every other and measure only story clustering).
_SYLLABLES = "ba be bi bo bu ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu ra re ri ro ru ta te ti".split()
WORDS = [a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in ("", "n", "s", "r")][:5000]
# About 1 in 100 titles matches the benchmark's keyword watchlist, so matching and delivery are exercised
# (the shipped watchlist needs the classifier, so without --classifier it matches nothing).
KEYWORD_WATCHLIST = """\
name: bench-keywords
channels: [default]
keywords:
  all:
    - [China, Chinese, Beijing, Huawei]
    - [chip, chips, hackers, export]
"""
HOT = ["China adds chip export curbs on gallium", "Chinese hackers breach telecom network, FBI says",
       "Huawei unveils new AI chip despite sanctions", "Beijing bans Micron chips in critical infrastructure"]


# -- the feeds ---------------------------------------------------------------------------------------------

def feed_body(index: int, entries: int) -> bytes:
    # Dated relative to the run (to the hour, so the bodies stay fixed while it runs): the entries span
    # about 31 hours, inside the story window (72 h), as a first poll of busy news feeds would be.
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Outlet {index}</title>'
             f"<link>https://outlet{index}.example/</link><description>bench feed {index}</description>"]
    for j in range(entries):
        rng = random.Random(index * 100_003 + j)
        if rng.random() < 0.01:
            title = f"{HOT[rng.randrange(len(HOT))]} ({index}-{j})"
        else:
            title = " ".join(rng.choice(WORDS) for _ in range(9)).capitalize()
        text = " ".join(rng.choice(WORDS) for _ in range(60))
        summary = f"<p>{escape(text)}</p><p>Read <a href='/more/{j}'>more</a> &amp; share.</p>"
        when = format_datetime(now - timedelta(minutes=37 * j + index % 60), usegmt=True)
        parts.append(f"<item><title>{escape(title)}</title><link>https://outlet{index}.example/story/{j}</link>"
                     f"<guid>https://outlet{index}.example/story/{j}</guid><pubDate>{when}</pubDate>"
                     f"<description>{escape(summary)}</description></item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def serve(port_pipe: Any, feeds: int, entries: int) -> None:
    """The feed server process: every feed with an ETag; a matching If-None-Match gets 304.
    It also accepts the monitor's alert posts (a local JSON receiver)."""
    bodies = [feed_body(i, entries) for i in range(feeds)]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            index = int(self.path.strip("/").split(".")[0].removeprefix("feed"))
            etag = f'"v1-{index}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = bodies[index]
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_pipe.send(server.server_address[1])
    server.serve_forever()


# -- measuring ---------------------------------------------------------------------------------------------

def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                for child in fh.read().split():
                    found.append(int(child))
                    found.extend(_descendants(int(child)))
    except OSError:
        pass
    return found


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _proc_memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of a process now. PSS shares each page among the processes that map it, so the PSS of a
    process tree adds up to the memory it really takes (parser processes share the interpreter's pages)."""
    rss = pss = 0.0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, pss


def _proc_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Meter:
    """CPU of this process plus live descendants (parser processes), and peak RSS of each."""

    def __init__(self) -> None:
        self.children_seen: dict[int, float] = {}

    def cpu(self) -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        live = sum(_proc_cpu(p) for p in _descendants(os.getpid()))
        return usage.ru_utime + usage.ru_stime + reaped.ru_utime + reaped.ru_stime + live

    def peak_mb(self) -> tuple[float, float]:
        """(this process, the largest descendant)."""
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        kids = [_proc_hwm_mb(p) for p in _descendants(os.getpid())]
        return own, max(kids, default=0.0)

    def measure(self, run: Any) -> dict[str, float]:
        cpu0, t0 = self.cpu(), time.perf_counter()
        extra = run() or {}
        wall, cpu = time.perf_counter() - t0, self.cpu() - cpu0
        own, kid = self.peak_mb()
        # every process of the contender at the end of the cycle (main, parsers, forkserver, resource tracker)
        tree = [_proc_memory_mb(p) for p in [os.getpid(), *_descendants(os.getpid())]]
        return {"wall_s": wall, "cpu_s": cpu, "rss_mb": own, "child_rss_mb": kid, "processes": len(tree),
                "rss_sum_mb": sum(r for r, _ in tree), "pss_sum_mb": sum(p for _, p in tree), **extra}


# -- contenders (each runs in its own process) -------------------------------------------------------------

def _train_model(state_dir: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from monitor.app import train_and_save
    from monitor.store import Store

    store = Store.open(state_dir)
    train_and_save(state_dir, store)
    store.close()


def run_monitor(base: str, feeds: int, work: Path, classifier: bool, cluster: bool = True) -> list[dict[str, float]]:
    sys.path.insert(0, str(ROOT))
    import yaml

    from monitor.app import open_app

    if not cluster:  # diagnostic: the story index off (every entry its own story; nothing is indexed)
        from monitor.stories import StoryIndex

        StoryIndex.match = lambda self, *args, **kwargs: None  # type: ignore[method-assign]
        StoryIndex.add = lambda self, *args, **kwargs: None  # type: ignore[method-assign]

    config = work / "config"
    (config / "watchlists").mkdir(parents=True)
    (config / "monitor.yaml").write_text(yaml.safe_dump({
        "channels": {"default": [f"json://{base.removeprefix('http://')}/alerts"]},
        "alerts": {"max_age": None}, "classifier": {"enabled": classifier},
        "poll": {"concurrency": CONCURRENCY, "per_host": CONCURRENCY}, "log_level": "WARNING"}))
    (config / "feeds.yaml").write_text(yaml.safe_dump({"feeds": [
        {"url": f"{base}/feed{i}.xml", "name": f"Outlet {i}"} for i in range(feeds)]}))
    shutil.copy(ROOT / "config" / "watchlists" / "us-china-tech-security.yaml", config / "watchlists")
    (config / "watchlists" / "bench-keywords.yaml").write_text(KEYWORD_WATCHLIST)
    if classifier:  # trained in another process, as `monitor train` would: the daemon only loads the model
        train = multiprocessing.get_context("spawn").Process(target=_train_model, args=(work / "state",))
        train.start()
        train.join()
    app = open_app(config / "monitor.yaml", work / "state", with_scorer=classifier)
    meter = Meter()
    ready_mb = _rss_mb()  # after imports, configuration, database and model: the daemon's resting size
    out = []
    for _ in range(2):
        def cycle() -> dict[str, float]:
            stats = app.pipeline.run_cycle(all_feeds=True)
            return {"entries": stats.entries_new, "not_modified": stats.feeds_not_modified,
                    "failed": stats.feeds_failed, "stories": stats.stories_new, "alerts": stats.alerts_queued,
                    "ready_mb": ready_mb, "after_mb": _rss_mb(), "indexed": len(app.pipeline.index)}
        out.append(meter.measure(cycle))
    app.pipeline.close()
    app.close()
    return out


def run_floor(base: str, feeds: int, work: Path, sanitize: bool) -> list[dict[str, float]]:
    import asyncio
    import sqlite3

    import feedparser
    import httpx

    db = sqlite3.connect(work / "floor.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE entries (feed INTEGER, guid TEXT, title TEXT, link TEXT, summary TEXT, "
               "published TEXT, UNIQUE(feed, guid))")
    etags: dict[int, str] = {}

    async def cycle_async() -> dict[str, float]:
        counts = {"entries": 0, "not_modified": 0, "failed": 0}
        slots = asyncio.Semaphore(CONCURRENCY)
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=CONCURRENCY)) as client:
            async def one(i: int) -> None:
                headers = {"If-None-Match": etags[i]} if i in etags else {}
                async with slots:
                    response = await client.get(f"{base}/feed{i}.xml", headers=headers)
                if response.status_code == 304:
                    counts["not_modified"] += 1
                    return
                if "etag" in response.headers:
                    etags[i] = response.headers["etag"]
                parsed = feedparser.parse(response.content, sanitize_html=sanitize, resolve_relative_uris=sanitize)
                for e in parsed.entries:
                    cursor = db.execute("INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                                        (i, e.get("id"), e.get("title"), e.get("link"), e.get("summary"),
                                         e.get("published")))
                    counts["entries"] += cursor.rowcount
                db.commit()
            await asyncio.gather(*(one(i) for i in range(feeds)))
        return counts

    meter = Meter()
    return [meter.measure(lambda: asyncio.run(cycle_async())) for _ in range(2)]


def run_reader(base: str, feeds: int, work: Path) -> list[dict[str, float]]:
    import logging

    from reader import make_reader

    logging.getLogger("reader").setLevel(logging.ERROR)
    reader = make_reader(str(work / "reader.sqlite"), search_enabled=False)
    for i in range(feeds):
        reader.add_feed(f"{base}/feed{i}.xml")
    meter = Meter()
    out = []
    for _ in range(2):
        def cycle() -> dict[str, float]:
            reader.update_feeds(workers=CONCURRENCY, scheduled=False)
            return {"entries": reader.get_entry_counts().total}
        out.append(meter.measure(cycle))
    reader.close()
    return out


def child_main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{args.child}-"))
    try:
        if args.child == "monitor":
            result = run_monitor(args.base, args.feeds, work, args.classifier)
        elif args.child == "monitor-nocluster":
            result = run_monitor(args.base, args.feeds, work, args.classifier, cluster=False)
        elif args.child == "floor":
            result = run_floor(args.base, args.feeds, work, sanitize=True)
        elif args.child == "floor-lean":
            result = run_floor(args.base, args.feeds, work, sanitize=False)
        else:
            result = run_reader(args.base, args.feeds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("RESULT " + json.dumps(result))


# -- the driver ---------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--only", default="monitor,monitor-nocluster,floor,floor-lean,reader")
    parser.add_argument("--classifier", action="store_true", help="run monitor with the classifier enabled")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=serve, args=(send, args.feeds, args.entries), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{receive.recv()}"
    results: dict[str, list[dict[str, float]]] = {}
    try:
        for name in args.only.split(","):
            cmd = [sys.executable, __file__, "--child", name, "--base", base, "--feeds", str(args.feeds)]
            if args.classifier:
                cmd.append("--classifier")
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"{name}: failed\n{done.stderr[-3000:]}", file=sys.stderr)
                continue
            results[name] = json.loads(line.removeprefix("RESULT "))
            print(f"{name}: done", file=sys.stderr)
    finally:
        server.terminate()
    report(results, args)


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    print(f"\n{args.feeds} feeds x {args.entries} entries, local server in its own process, "
          f"{os.cpu_count()} CPUs, concurrency {CONCURRENCY}; monitor classifier "
          f"{'ENABLED' if args.classifier else 'disabled'}, watchlists us-china-tech-security (classifier) "
          f"and bench-keywords\n")
    print("| contender | cycle | wall s | CPU s | peak RSS MB (main / largest child) | entries stored |")
    print("|---|---|---:|---:|---:|---:|")
    for name, (first, second) in results.items():
        for label, r in (("first", first), ("304", second)):
            print(f"| {name} | {label} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['rss_mb']:.0f} / "
                  f"{r['child_rss_mb']:.0f} | {int(r.get('entries', 0))} |")
    print()
    for mine in ("monitor", "monitor-nocluster"):
        if mine in results:
            r = results[mine][0]
            print(f"{mine}: RSS {r['ready_mb']:.0f} MB when ready, {r['after_mb']:.0f} MB after the first cycle; "
                  f"story index holds {int(r['indexed'])} entries after it; {int(r['stories'])} stories, "
                  f"{int(r['alerts'])} alerts queued")
    if "monitor" not in results:
        return
    first, second = results["monitor"]
    for mine in ("monitor", "monitor-nocluster"):
        for other in ("floor", "floor-lean", "reader"):
            if mine in results and other in results:
                m, o = results[mine][0], results[other][0]
                print(f"{mine} first cycle / {other}: wall {m['wall_s'] / o['wall_s']:.2f}x, "
                      f"CPU {m['cpu_s'] / o['cpu_s']:.2f}x")
    print(f"monitor 304 cycle / first cycle: wall {second['wall_s'] / first['wall_s']:.1%}")
    peak = max(first["rss_mb"], second["rss_mb"]) + max(first["child_rss_mb"], second["child_rss_mb"])
    print(f"monitor peak RSS (main + largest parser process): {peak:.0f} MB; "
          f"stories {int(first.get('stories', 0))}, alerts {int(first.get('alerts', 0))}")
    print(f"monitor, all {int(first['processes'])} processes at the end of the first cycle: RSS sum "
          f"{first['rss_sum_mb']:.0f} MB (shared pages counted in each), PSS sum {first['pss_sum_mb']:.0f} MB")


if __name__ == "__main__":
    main()
