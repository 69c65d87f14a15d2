#!/usr/bin/env python3
"""A real Prometheus scraping the daemon through a burst: p99 end-to-end latency by
`histogram_quantile` against this harness's own measurement, and the backlog gauge.

Usage (from the repository root, after `cargo build --release`):

    python3 scripts/burst_prometheus.py [--files 30000] [--keep DIR]

The harness renames N distinct articles (built from seeds/) into a live drop folder as fast as
it can, noting each file's creation time; it tails the output file and notes when each file's
line appears. Its latency is line seen minus file created. Prometheus (Debian `prometheus`)
scrapes `/metrics` every second. A screenshot of the status page is taken mid-burst with
headless Chromium. Nothing is asserted: the numbers are printed.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def prom_query(port, q, at=None):
    params = {"query": q}
    if at is not None:
        params["time"] = f"{at:.3f}"
    _, body = get(f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(params))
    res = json.loads(body)["data"]["result"]
    return float(res[0]["value"][1]) if res else None


def prom_range(port, q, start, end, step=1):
    params = {"query": q, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)}
    _, body = get(f"http://127.0.0.1:{port}/api/v1/query_range?" + urllib.parse.urlencode(params))
    res = json.loads(body)["data"]["result"]
    return [(float(t), float(v)) for t, v in res[0]["values"]] if res else []


def corpus(n):
    """N distinct ~2 KB articles: seed sentences shuffled by a per-file seeded generator."""
    seeds = []
    for name in sorted(os.listdir(os.path.join(ROOT, "seeds"))):
        with open(os.path.join(ROOT, "seeds", name), encoding="utf-8") as f:
            lines = f.read().splitlines()
        seeds.append((lines[0], [s for l in lines[1:] for s in l.split(". ") if s.strip()]))
    out = []
    for i in range(n):
        title, sentences = seeds[i % len(seeds)]
        rng = random.Random(i)
        body = sentences[:]
        rng.shuffle(body)
        out.append(f"{title} ({i})\n" + ". ".join(body[: max(8, len(body) // 2)]) + f". Report {i}.\n")
    return out


def nearest_rank(xs, q):
    xs = sorted(xs)
    i = max(1, min(len(xs), int(-(-q * len(xs) // 1)))) - 1
    return xs[i]


def wait_http(url, want=200, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if get(url, timeout=2)[0] == want:
                return True
        except Exception:
            pass
        time.sleep(0.1)
    return False


def screenshot(port, path):
    profile = tempfile.mkdtemp()
    subprocess.run(
        ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={path}",
         "--window-size=1280,1600", "--virtual-time-budget=3000", f"http://127.0.0.1:{port}/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=30000)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/dropline"))
    ap.add_argument("--screenshot", default=os.path.join(ROOT, "target/test-output/status-burst.png"))
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()

    work = args.keep or tempfile.mkdtemp(prefix="dropline-burst-")
    os.makedirs(os.path.join(work, "drop"), exist_ok=True)
    mport, pport = free_port(), free_port()
    cfg = os.path.join(work, "pipeline.toml")
    with open(cfg, "w") as f:
        f.write(f"""[source]
dir = "{work}/drop"
[output]
kind = "file"
path = "{work}/out.jsonl"
[state]
dir = "{work}/state"
[metrics]
listen = "127.0.0.1:{mport}"
[log]
format = "json"
""")
    with open(os.path.join(work, "prometheus.yml"), "w") as f:
        f.write(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: dropline\n"
                f"    static_configs:\n      - targets: ['127.0.0.1:{mport}']\n")
    articles = corpus(args.files)
    prom = subprocess.Popen(
        ["/usr/bin/prometheus", f"--config.file={work}/prometheus.yml",
         f"--storage.tsdb.path={work}/prom", f"--web.listen-address=127.0.0.1:{pport}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = open(os.path.join(work, "daemon.log"), "w")
    daemon = subprocess.Popen([args.binary, "run", "--config", cfg], stdout=subprocess.DEVNULL, stderr=log)
    try:
        assert wait_http(f"http://127.0.0.1:{mport}/health/ready"), "daemon never ready"
        assert wait_http(f"http://127.0.0.1:{pport}/-/ready"), "prometheus never ready"
        time.sleep(3)  # a few scrapes of the idle daemon first
        created = {}
        t0 = time.time()
        drop = os.path.join(work, "drop")
        for i, text in enumerate(articles):
            name = f"{i:06d}.txt"
            tmp = os.path.join(drop, f".{name}.tmp")
            with open(tmp, "w") as f:
                f.write(text)
            os.rename(tmp, os.path.join(drop, name))
            created[os.path.join(drop, name)] = time.time()
        t_dropped = time.time()
        seen = {}
        shot_taken = False
        out = os.path.join(work, "out.jsonl")
        pos = 0
        buf = b""
        while len(seen) < len(articles) and time.time() - t_dropped < 600:
            time.sleep(0.02)
            try:
                with open(out, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
            except FileNotFoundError:
                continue
            now = time.time()
            pos += len(chunk)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                seen[json.loads(line)["source"]["path"]] = now
            if not shot_taken and len(seen) >= len(articles) // 2:
                os.makedirs(os.path.dirname(args.screenshot), exist_ok=True)
                screenshot(mport, args.screenshot)
                shot_taken = True
        t_done = time.time()
        time.sleep(4)  # let Prometheus scrape the final state
        lat = [seen[p] - created[p] for p in seen]
        harness_p99 = nearest_rank(lat, 0.99)
        prom_p99 = prom_query(pport, "histogram_quantile(0.99, dropline_end_to_end_seconds_bucket)")
        prom_p50 = prom_query(pport, "histogram_quantile(0.5, dropline_end_to_end_seconds_bucket)")
        processed = prom_query(pport, "dropline_files_processed_total")
        backlog = prom_range(pport, "dropline_backlog_files", t0 - 2, time.time())
        peak = max(backlog, key=lambda tv: tv[1]) if backlog else (0, 0)
        zero_after = next((t for t, v in backlog if t > peak[0] and v == 0), None)
        burst_lines = [json.loads(l) for l in open(os.path.join(work, "daemon.log"))
                       if '"burst committed"' in l]
        print(json.dumps({
            "files": len(articles),
            "lines_seen": len(seen),
            "drop_s": round(t_dropped - t0, 2),
            "drain_s": round(t_done - t0, 2),
            "harness_p50_s": round(nearest_rank(lat, 0.5), 3),
            "harness_p99_s": round(harness_p99, 3),
            "harness_max_s": round(max(lat), 3),
            "prometheus_p50_s": prom_p50 and round(prom_p50, 3),
            "prometheus_p99_s": prom_p99 and round(prom_p99, 3),
            "p99_relative_diff": prom_p99 and round(abs(prom_p99 - harness_p99) / harness_p99, 4),
            "prometheus_files_processed_total": processed,
            "backlog_peak": peak[1],
            "backlog_peak_at_s": round(peak[0] - t0, 1),
            "backlog_zero_at_s": zero_after and round(zero_after - t0, 1),
            "backlog_last": backlog[-1][1] if backlog else None,
            "burst_committed": [l.get("fields", l) for l in burst_lines],
            "screenshot": args.screenshot if shot_taken else None,
        }, indent=1))
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        prom.terminate()
        prom.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
