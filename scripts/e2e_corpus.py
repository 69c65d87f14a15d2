#!/usr/bin/env python3
"""Writes N distinct ~2 KB articles built from seeds/ like benches/e2e.rs corpus() (a port, for
memory and CPU profiles of `dropline run --once` over a folder): e2e_corpus.py N OUT_DIR."""
import os, sys
M = (1 << 64) - 1
seeds_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'seeds')
paths = sorted(os.path.join(seeds_dir, p) for p in os.listdir(seeds_dir))
seeds = [[l for l in open(p, encoding='utf-8').read().split('\n') if l.strip()] for p in paths]
words = [w for s in seeds for l in s for w in l.split()]
state = 0x9E3779B97F4A7C15
def nxt():
    global state
    state ^= (state << 13) & M
    state ^= state >> 7
    state ^= (state << 17) & M
    return state
n = int(sys.argv[1]); out = sys.argv[2]; os.makedirs(out, exist_ok=True)
AB = 2048
for i in range(n):
    lines = seeds[i % len(seeds)]
    doc = f"Report {i}: {lines[0]}\n"
    k = nxt() % len(lines)
    while len(doc.encode()) < AB:
        if nxt() % 3 == 0:
            s = [words[nxt() % len(words)] for _ in range(12)]
            doc += ' '.join(s) + '.\n'
        else:
            doc += lines[k % len(lines)] + '\n'; k += 1
    b = doc.encode()[:AB]
    b = b.decode('utf-8', 'ignore').encode()
    open(os.path.join(out, f"doc{i:06}.txt"), 'wb').write(b)
