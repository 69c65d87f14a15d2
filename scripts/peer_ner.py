#!/usr/bin/env python3
"""spaCy's NER on the same CoNLL documents `dropline eval entities --conll FILE` reads.

A yardstick, not a dependency: run it from a venv outside the repository that holds spaCy 3.8
and a pretrained English pipeline (see README "Peers"). Each document's text is built the way
`entities::eval::doc_text` builds it (words joined by a space, a newline after each sentence),
spaCy tokenizes it itself, and only its `ner` component runs (it has its own tok2vec in the
en_core_web pipelines), on one thread. Entities are mapped to CoNLL types and scored with
exact spans over the gold tokens they cover, as our eval does.

    OMP_NUM_THREADS=1 python scripts/peer_ner.py MODEL_DIR FILE.conll [--all-components]
"""
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import spacy  # noqa: E402

# OntoNotes labels to CoNLL-2003 types; the rest (dates, amounts, ...) have no CoNLL type.
MAP = {
    "PERSON": "PER",
    "ORG": "ORG",
    "GPE": "LOC",
    "LOC": "LOC",
    "FAC": "LOC",
    "NORP": "MISC",
    "EVENT": "MISC",
    "WORK_OF_ART": "MISC",
    "LAW": "MISC",
    "LANGUAGE": "MISC",
    "PRODUCT": "MISC",
}


def read_docs(path):
    """CoNLL documents as lists of sentences of (word, tag)."""
    docs, doc, sent = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("-DOCSTART-"):
                if sent:
                    doc.append(sent)
                    sent = []
                if doc:
                    docs.append(doc)
                doc = []
            elif not line.strip():
                if sent:
                    doc.append(sent)
                    sent = []
            else:
                cols = line.split()
                sent.append((cols[0], cols[-1]))
    if sent:
        doc.append(sent)
    if doc:
        docs.append(doc)
    return docs


def doc_text(doc):
    text, starts, lens = [], [], []
    cp = 0
    for sent in doc:
        for i, (w, _) in enumerate(sent):
            if i > 0:
                text.append(" ")
                cp += 1
            starts.append(cp)
            lens.append(len(w))
            text.append(w)
            cp += len(w)
        text.append("\n")
        cp += 1
    return "".join(text), starts, lens


def gold_spans(doc):
    """Exact spans (start, end, type) from IOB1 or IOB2 tags."""
    tags = [t for sent in doc for _, t in sent] + ["O"]
    spans, start, cur = set(), None, None
    for i, t in enumerate(tags):
        ty = t[2:] if t != "O" else None
        begins = ty is not None and (t.startswith("B-") or ty != cur)
        if start is not None and (ty is None or begins):
            spans.add((start, i, cur))
            start, cur = None, None
        if ty is not None and start is None:
            start, cur = i, ty
    return spans


def main():
    model, path = sys.argv[1], sys.argv[2]
    nlp = spacy.load(model)
    if "--all-components" not in sys.argv:
        nlp.select_pipes(enable=["ner"])
    docs = read_docs(path)
    prepared = [doc_text(d) for d in docs]
    tokens = sum(len(s) for _, s, _ in prepared)
    nlp("warm up the model before timing.")
    tp = fp = fn = 0
    cpu = wall = 0.0
    for (text, starts, lens), doc in zip(prepared, docs):
        c0, w0 = time.thread_time(), time.perf_counter()
        out = nlp(text)
        cpu += time.thread_time() - c0
        wall += time.perf_counter() - w0
        pred = set()
        for e in out.ents:
            ty = MAP.get(e.label_)
            if ty is None:
                continue
            covered = [j for j in range(len(starts))
                       if starts[j] >= e.start_char and starts[j] + lens[j] <= e.end_char]
            if covered:
                pred.add((covered[0], covered[-1] + 1, ty))
        gold = gold_spans(doc)
        tp += len(gold & pred)
        fp += len(pred - gold)
        fn += len(gold - pred)
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    f = 2 * p * r / max(p + r, 1e-9)
    print(f"spaCy {spacy.__version__} {nlp.meta['lang']}_{nlp.meta['name']} {nlp.meta['version']} "
          f"components {nlp.pipe_names}")
    print(f"documents {len(docs)} tokens {tokens}")
    print(f"F1 {f:.4f} P {p:.4f} R {r:.4f} (OntoNotes types mapped to CoNLL)")
    print(f"tagging {tokens / wall:.0f} tokens/s (one thread, tokenizer included)")
    print(f"tagging {tokens / cpu:.0f} tokens per CPU second of the tagging thread")
    # A user tagging many documents batches them: time nlp.pipe over all of them as well.
    texts = [t for t, _, _ in prepared]
    c0, w0 = time.thread_time(), time.perf_counter()
    n = sum(len(d.ents) for d in nlp.pipe(texts, batch_size=64))
    cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
    print(f"batched (nlp.pipe, batch_size 64, {n} entities): {tokens / wall:.0f} tokens/s, "
          f"{tokens / cpu:.0f} tokens per CPU second")


if __name__ == "__main__":
    main()
