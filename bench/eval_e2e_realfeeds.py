"""End-to-end quality on real feeds: serve the snapshots locally, run one `monitor` cycle with the shipped
configuration, and compare what each watchlist alerted with our relevance labels (development only).

Usage:  python bench/eval_e2e_realfeeds.py [REALFEEDS_DIR] [--background] [--keep DIR]

REALFEEDS_DIR (default /work/shared/realfeeds-dev) holds feeds/<publisher>/<file> and labels.jsonl. Every file
becomes one feed served by a local HTTP server; alerts.max_age is null so old snapshots alert. A story counts as
relevant when any of its entries is labeled 1 (borderline labels are left out of the figures), irrelevant when
all its labeled entries are 0.

--background: fair simulation of a deployment that has been running for a while. The publishers are split in
two halves; the model is retrained with the stories of one half stored as background (weak negatives), then
that half is dropped and only the other half is evaluated. The run is repeated with the halves swapped and the
figures are pooled, so no evaluated entry was ever seen by the model that scored it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.app import open_app  # noqa: E402
from monitor.store import Store  # noqa: E402


def start_receiver() -> tuple[ThreadingHTTPServer, list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def serve(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    return proc, port


def load_labels(realfeeds: Path) -> dict[tuple[str, str], dict[str, Any]]:
    labels = {}
    for line in (realfeeds / "labels.jsonl").read_text().splitlines():
        record = json.loads(line)
        for key in (record.get("link"), record.get("id")):
            if key:
                labels[(record["file"], key)] = record
    return labels


def publisher_half(publisher: str) -> int:
    return zlib.crc32(publisher.encode()) % 2


def write_config(target: Path, files: list[str], port: int, receiver_port: int) -> Path:
    shutil.copytree(ROOT / "config", target)
    feeds = [{"url": f"http://127.0.0.1:{port}/{name}", "name": name, "interval": "1h"} for name in files]
    (target / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}))
    settings = yaml.safe_load((target / "monitor.yaml").read_text())
    settings["channels"] = {"default": [f"json://127.0.0.1:{receiver_port}/alerts"]}
    settings.setdefault("alerts", {})["max_age"] = None
    settings.setdefault("poll", {})["concurrency"] = 32
    settings["poll"]["per_host"] = 32
    (target / "monitor.yaml").write_text(yaml.safe_dump(settings))
    return target / "monitor.yaml"


def story_labels(store: Store, labels: dict[tuple[str, str], dict[str, Any]]) -> dict[int, int | None]:
    """story id -> 1 relevant, 0 irrelevant, None unknown/borderline."""
    verdicts: dict[int, list[int | None]] = defaultdict(list)
    rows = store.db.query("SELECT e.story_id, e.guid, e.link, f.url FROM entries e JOIN feeds f ON f.id = e.feed_id")
    for row in rows:
        file = row["url"].split("/", 3)[3]
        record = labels.get((file, row["link"])) or labels.get((file, row["guid"]))
        if record is None:
            verdicts[row["story_id"]].append(None)
        else:
            verdicts[row["story_id"]].append(None if record.get("borderline") else int(record["label"]))
    out: dict[int, int | None] = {}
    for story, values in verdicts.items():
        known = [v for v in values if v is not None]
        out[story] = (1 if 1 in known else 0) if known else None
    return out


def matched(store: Store) -> dict[str, set[int]]:
    by_watchlist: dict[str, set[int]] = defaultdict(set)
    for row in store.db.query("SELECT story_id, watchlist FROM matches"):
        by_watchlist[row["watchlist"]].add(row["story_id"])
    return by_watchlist


def run(realfeeds: Path, files: list[str], work: Path, background_files: list[str] | None = None) -> dict[str, Any]:
    labels = load_labels(realfeeds)
    proc, port = serve(realfeeds / "feeds")
    receiver, received = start_receiver()
    try:
        state = work / "state"
        if background_files:
            # Phase 1: store the background half with the classifier off, then retrain with it as background.
            config = write_config(work / "config-bg", background_files, port, receiver.server_address[1])
            data = yaml.safe_load(config.read_text())
            data["classifier"] = {"enabled": False}
            config.write_text(yaml.safe_dump(data))
            app = open_app(config, state)
            app.pipeline.run_cycle(all_feeds=True)
            background = app.store.background_texts()
            app.close()
            from monitor import classify

            model = classify.train(background=background, progress=lambda m: print("  [train]", m, flush=True))
            classify.save(model, state)
            shutil.rmtree(state / "monitor.db", ignore_errors=True)
            for suffix in ("", "-wal", "-shm"):
                (state / f"monitor.db{suffix}").unlink(missing_ok=True)
            received.clear()
        config = write_config(work / "config", files, port, receiver.server_address[1])
        started = time.perf_counter()
        app = open_app(config, state, progress=True)
        stats = app.pipeline.run_cycle(all_feeds=True)
        elapsed = time.perf_counter() - started
        truth = story_labels(app.store, labels)
        result = {"elapsed_s": elapsed, "entries": stats.entries_new, "stories": stats.stories_new,
                  "alerts_sent": len(received), "truth": truth, "matched": matched(app.store)}
        app.close()
        return result
    finally:
        receiver.shutdown()
        proc.terminate()
        proc.wait()


def figures(truth: dict[int, int | None], hits: set[int]) -> tuple[int, int, int, float, float, float]:
    tp = sum(1 for s in hits if truth.get(s) == 1)
    fp = sum(1 for s in hits if truth.get(s) == 0)
    fn = sum(1 for s, v in truth.items() if v == 1 and s not in hits)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return tp, fp, fn, precision, recall, f1


def report(results: list[dict[str, Any]], title: str) -> None:
    print(f"\n== {title}")
    watchlists = sorted({w for r in results for w in r["matched"]})
    relevant = sum(1 for r in results for v in r["truth"].values() if v == 1)
    stories = sum(len(r["truth"]) for r in results)
    print(f"stories {stories}, relevant {relevant}; alerts sent {sum(r['alerts_sent'] for r in results)}; "
          f"cycle time {sum(r['elapsed_s'] for r in results):.1f}s")
    print(f"{'watchlist':<28} {'alerts':>6} {'TP':>4} {'FP':>4} {'FN':>4} {'prec':>6} {'recall':>6} {'F1':>6}")
    rows = []
    for name in watchlists:
        totals = [0, 0, 0]
        for r in results:
            tp, fp, fn, *_ = figures(r["truth"], r["matched"].get(name, set()))
            totals = [totals[0] + tp, totals[1] + fp, totals[2] + fn]
        tp, fp, fn = totals
        p = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
        alerts = sum(len(r["matched"].get(name, ())) for r in results)
        rows.append((name, alerts, tp, fp, fn, p, rc, f1))
    union = [0, 0, 0]
    for r in results:
        hits = set().union(*r["matched"].values()) if r["matched"] else set()
        tp, fp, fn, *_ = figures(r["truth"], hits)
        union = [union[0] + tp, union[1] + fp, union[2] + fn]
    for row in rows:
        print(f"{row[0]:<28} {row[1]:>6} {row[2]:>4} {row[3]:>4} {row[4]:>4} {row[5]:>6.3f} {row[6]:>6.3f} {row[7]:>6.3f}")
    tp, fp, fn = union
    p = tp / (tp + fp) if tp + fp else 0.0
    rc = tp / (tp + fn) if tp + fn else 0.0
    print(f"{'(any watchlist)':<28} {tp + fp:>6} {tp:>4} {fp:>4} {fn:>4} {p:>6.3f} {rc:>6.3f} "
          f"{(2 * p * rc / (p + rc) if p + rc else 0):>6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("realfeeds", nargs="?", default="/work/shared/realfeeds-dev", type=Path)
    parser.add_argument("--background", action="store_true")
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    files = sorted(str(p.relative_to(args.realfeeds / "feeds")) for p in (args.realfeeds / "feeds").rglob("*")
                   if p.is_file())
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="monitor-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if not args.background:
            report([run(args.realfeeds, files, work / "all")], "corpus-only model, all feeds")
            return
        halves = [[f for f in files if publisher_half(f.split("/")[0]) == h] for h in (0, 1)]
        results = [run(args.realfeeds, halves[h], work / f"half{h}", background_files=halves[1 - h]) for h in (0, 1)]
        report(results, "model retrained with the other publishers' stories as background (pooled halves)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
