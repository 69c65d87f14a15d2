#!/usr/bin/env python3
"""Cross-validates one strip setting on a training set, grouped by site.

Usage: strip_cv.py [--fixed] MANIFEST.tsv VALUE=PER_DOC.tsv [VALUE=PER_DOC.tsv ...]

Each PER_DOC.tsv is `dropline eval strip --per-doc` output for one value of the setting.
Sites (manifest `domain`) are split into 5 folds; for each fold the value with the best F1 on
the other four folds is chosen and scored on the held-out fold. Prints per-fold choices and
F1, then the mean and standard deviation of the held-out F1, and the value chosen on all pages.
With one VALUE it reports the fold spread of a fixed setting. With `--fixed` it prints, for
each VALUE as a fixed setting, the F1 of every fold, their mean and spread, and each fold's
change against the first VALUE (a change is kept only if the mean rises and at most one
fold loses).
"""
import csv, random, statistics, sys

FOLDS = 5


def load(path):
    rows = {}
    with open(path) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows[r["id"]] = (float(r["tp"]), float(r["fp"]), float(r["fn"]))
    return rows


def f1(rows, ids):
    """The metric of `dropline eval strip` (src/strip/metric.rs `score`) over `ids`."""
    def mean(v):
        return sum(v) / len(v) if v else 0.0

    def ratio(tp, fp, fn, other):
        return 1.0 if fp == 0 and fn == 0 else tp / (tp + other)

    m = [rows[i] for i in ids]
    p = mean([ratio(tp, fp, fn, fp) for tp, fp, fn in m if tp + fp > 0])
    r = mean([ratio(tp, fp, fn, fn) for tp, fp, fn in m if tp + fn > 0])
    return 2 * p * r / (p + r) if p + r else 0.0


def main():
    args = sys.argv[1:]
    fixed = "--fixed" in args
    args = [a for a in args if a != "--fixed"]
    manifest, runs = args[0], [a.split("=", 1) for a in args[1:]]
    site = {}
    with open(manifest) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            site[r["id"]] = r["domain"]
    tables = {v: load(p) for v, p in runs}
    ids = sorted(next(iter(tables.values())))
    sites = sorted({site.get(i, i) for i in ids})
    random.Random(7).shuffle(sites)
    fold_of = {s: k % FOLDS for k, s in enumerate(sites)}
    if fixed:
        first = None
        for v, table in tables.items():
            per = [f1(table, [i for i in ids if fold_of[site.get(i, i)] == k]) for k in range(FOLDS)]
            line = f"{v}: cv F1 mean {statistics.mean(per):.4f} std {statistics.stdev(per):.4f} folds " + " ".join(f"{x:.4f}" for x in per)
            if first is None:
                first = per
            else:
                line += " change " + " ".join(f"{a - b:+.4f}" for a, b in zip(per, first))
            print(line)
        return
    scores = []
    for k in range(FOLDS):
        train = [i for i in ids if fold_of[site.get(i, i)] != k]
        test = [i for i in ids if fold_of[site.get(i, i)] == k]
        best = max(tables, key=lambda v: (f1(tables[v], train), v))
        s = f1(tables[best], test)
        scores.append(s)
        print(f"fold {k} sites {sum(1 for x in sites if fold_of[x] == k)} pages {len(test)} chosen {best} held-out F1 {s:.4f}")
    best_all = max(tables, key=lambda v: (f1(tables[v], ids), v))
    print(f"cv F1 mean {statistics.mean(scores):.4f} std {statistics.stdev(scores):.4f} folds {FOLDS}; chosen on all pages: {best_all} (F1 {f1(tables[best_all], ids):.4f})")


if __name__ == "__main__":
    main()
