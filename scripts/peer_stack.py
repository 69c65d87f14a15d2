#!/usr/bin/env python3
"""The Python stack a user would assemble for what `dropline process DIR` does, as a yardstick.

One process, files in sorted order, one JSON line each:
- read: bytes, gunzip when gzipped, UTF-8 with replacement;
- strip: jusText (English stop list) over the HTML, or over a plain-text file's blank-line-separated
  blocks wrapped as paragraphs; paragraphs it does not call boilerplate are the clean text;
- dedup: a SHA-256 of the clean text for exact copies, then datasketch MinHash (128
  permutations, word 5-gram shingles) in a MinHashLSH (threshold 0.8) for near copies;
- entities: spaCy, only its `ner` component (it has its own tok2vec in the en_core_web
  pipelines), documents batched through `nlp.pipe`, one thread.

Run it from a venv outside the repository with spacy, justext and datasketch installed:

    OMP_NUM_THREADS=1 python scripts/peer_stack.py MODEL_DIR DIR > out.jsonl
"""
import gzip
import hashlib
import html
import json
import os
import re
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import justext  # noqa: E402
import spacy  # noqa: E402
from datasketch import MinHash, MinHashLSH  # noqa: E402

WORD = re.compile(r"\w+")
STOP = justext.get_stoplist("English")


def read(path):
    data = open(path, "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def strip(text):
    head = text[:2048].lower()
    if "<html" not in head and "<body" not in head and "<p" not in head:
        blocks = re.split(r"\n\s*\n", text)
        text = "".join(f"<p>{html.escape(b.strip())}</p>" for b in blocks if b.strip())
    paragraphs = justext.justext(text.encode("utf-8"), STOP, encoding="utf-8")
    return "\n".join(p.text for p in paragraphs if not p.is_boilerplate)


def signature(clean):
    words = [w.lower() for w in WORD.findall(clean)]
    m = MinHash(num_perm=128)
    for i in range(max(len(words) - 4, 1)):
        m.update(" ".join(words[i:i + 5]).encode("utf-8"))
    return m


def main():
    model, folder = sys.argv[1], sys.argv[2]
    c0, w0 = time.process_time(), time.perf_counter()
    nlp = spacy.load(model)
    nlp.select_pipes(enable=["ner"])
    # The files `dropline process DIR` reads: the whole tree, without hidden or partial files.
    paths = sorted(os.path.join(d, n) for d, _, names in os.walk(folder) for n in names
                   if not n.startswith(".") and not n.endswith((".part", ".tmp")))
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    exact = {}
    records = []
    for path in paths:
        clean = strip(read(path))
        digest = hashlib.sha256(clean.encode("utf-8")).hexdigest()
        if digest in exact:
            dedup = {"status": "exact_duplicate", "of": exact[digest]}
        else:
            exact[digest] = path
            sig = signature(clean)
            near = sorted(lsh.query(sig))
            dedup = {"status": "near_duplicate", "of": near[0]} if near else {"status": "unique"}
            lsh.insert(path, sig)
        records.append({"source": {"path": path}, "text": clean, "dedup": dedup})
    texts = [r["text"] for r in records]
    for rec, doc in zip(records, nlp.pipe(texts, batch_size=64)):
        rec["entities"] = [{"text": e.text, "label": e.label_, "start": e.start_char,
                            "end": e.end_char} for e in doc.ents]
    out = sys.stdout
    for rec in records:
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    out.flush()
    print(f"peer stack: {len(records)} files, {time.perf_counter() - w0:.2f} s wall, "
          f"{time.process_time() - c0:.2f} s CPU (model load included)", file=sys.stderr)


if __name__ == "__main__":
    main()
