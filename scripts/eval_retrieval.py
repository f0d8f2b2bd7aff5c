"""Retrieval quality over the ABCD knowledge base: recall@1, recall@3 and MRR per method.

    scripts/eval_retrieval [--limit N] [--lexical-weight W] [--config FILE] [--json out.json]

Builds the HybridIndex over the 55 ABCD articles exactly as the pipeline does
(models.bundle.ModelBundle.knowledge, from the project's Settings) and asks, for every
held-out utterance in scripts/data/abcd_eval.toml, where its subflow's article ranks.
Three methods: hybrid (the pipeline's blend), lexical only (BM25, the "lexical" rung) and
embedding only (MiniLM cosine, lexical_weight 0). Two sets, reported apart: the
utterances the project authored (4 per subflow) and the real customer turns from ABCD's
three sample dialogues. The index covers all 55 articles whatever ``--limit`` says; the
limit only picks the first N subflows' utterances (the sample turns are always run).
The index reads each article with its flow's example phrases (the intent few-shot file,
pipeline/data/intents/abcd.toml; see pipeline/retrieval.py); ``articles_only`` is the hybrid
without them, as before. ``--dev`` adds the leave-one-out over those phrases (each held out
of the index and asked) on which that design was chosen, not on the held-out utterances.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import _common  # noqa: F401  (puts the project on sys.path)
import numpy as np
from _common import ABCD_EVAL, Query, abcd_queries, machine, p50_p95, write_json
from switchboard.models.bundle import ModelBundle
from switchboard.models.embedder import encode_cached
from switchboard.pipeline.retrieval import BM25, HybridIndex, bundled_examples

from switchboard.config import load_settings

METHODS = ("hybrid", "lexical", "embedding", "articles_only")
SETS = ("authored", "sample")
CUTOFFS = (1, 3)


def rank_of(ids: list[str], wanted: str) -> int | None:
    """1-based rank of ``wanted`` in ``ids``, or None."""
    return ids.index(wanted) + 1 if wanted in ids else None


def summarise(ranks: list[int | None], ms: list[float]) -> dict[str, float]:
    n = len(ranks)
    row: dict[str, float] = {"n": n}
    for k in CUTOFFS:
        row[f"recall@{k}"] = sum(1 for r in ranks if r is not None and r <= k) / n if n else 0.0
    row["mrr"] = sum(1 / r for r in ranks if r) / n if n else 0.0
    row["p50_ms"], row["p95_ms"] = p50_p95(ms)
    return row


def evaluate(indexes: dict[str, tuple[HybridIndex, bool]], queries: list[Query],
             n_articles: int, top_k: int) -> dict:
    """Rank every article for every query with every method."""
    ranks: dict[tuple[str, str], list[int | None]] = {}
    times: dict[tuple[str, str], list[float]] = {}
    confusions: dict[str, Counter] = {m: Counter() for m in indexes}
    misses: dict[str, list[dict]] = {m: [] for m in indexes}
    per_subflow: dict[str, dict[str, list[int | None]]] = {m: {} for m in indexes}
    for method, (index, lexical_only) in indexes.items():
        index.search("warm up", k=top_k, lexical_only=lexical_only)
        for q in queries:
            t0 = time.perf_counter()
            hits = index.search(q.text, k=n_articles, lexical_only=lexical_only)
            ms = (time.perf_counter() - t0) * 1000
            ids = [h.id for h in hits]
            r = rank_of(ids, q.subflow)
            ranks.setdefault((method, q.set), []).append(r)
            times.setdefault((method, q.set), []).append(ms)
            if q.set == "authored":
                per_subflow[method].setdefault(q.subflow, []).append(r)
            if ids and ids[0] != q.subflow:
                confusions[method][(q.subflow, ids[0])] += 1
            if r is None or r > top_k:
                misses[method].append({"set": q.set, "text": q.text, "expected": q.subflow,
                                       "rank": r, "top": ids[:top_k]})
    results = []
    for method in indexes:
        for s in SETS:
            if (method, s) in ranks:
                results.append({"method": method, "set": s,
                                **summarise(ranks[(method, s)], times[(method, s)])})
    return {
        "results": results,
        "per_subflow_recall@3": {
            m: {s: sum(1 for r in rs if r and r <= 3) / len(rs) for s, rs in by.items()}
            for m, by in per_subflow.items()
        },
        "confusions": {
            m: [{"expected": e, "predicted": p, "count": c} for (e, p), c in cnt.most_common()]
            for m, cnt in confusions.items()
        },
        "confused_pairs": {m: _pairs(cnt) for m, cnt in confusions.items()},
        "misses": misses,
    }


def _pairs(cnt: Counter) -> list[dict]:
    """Top-1 confusions with direction dropped: {a, b} counts a→b and b→a together."""
    pairs: Counter = Counter()
    for (e, p), c in cnt.items():
        pairs[tuple(sorted((e, p)))] += c
    return [{"pair": list(k), "count": c} for k, c in pairs.most_common()]


def build_indexes(settings) -> tuple[list, dict[str, tuple[HybridIndex, bool]]]:
    """The pipeline's index, plus an embedding-only view over the same cached vectors."""
    bundle = ModelBundle(settings)
    articles, index = bundle.knowledge()
    embedding_only = HybridIndex(articles, bundle.embedder(), lexical_weight=0.0,
                                 cache_dir=bundle.embedding_cache)
    articles_only = HybridIndex(articles, bundle.embedder(), index.lexical_weight,
                                bundle.embedding_cache, examples={})
    return articles, {"hybrid": (index, False), "lexical": (index, True),
                      "embedding": (embedding_only, False),
                      "articles_only": (articles_only, False)}


def leave_one_out(articles, embedder, cache_dir, weights=(0.0, 0.1, 0.2)) -> dict:
    """Recall@3 of each intent example phrase with itself held out of the index, for
    phrases in BM25 or not, per lexical weight: the dev set the design was chosen on."""
    examples = bundled_examples()
    phrases = [examples.get(a.id, []) for a in articles]
    texts = [t for p in phrases for t in p]
    owner = np.array([i for i, p in enumerate(phrases) for _ in p])
    vectors = encode_cached(embedder, texts, cache_dir)
    summaries = encode_cached(embedder, [a.summary for a in articles], cache_dir)
    plain = BM25([a.passage for a in articles])
    out = {}
    for in_bm25 in (False, True):
        hits = {w: 0 for w in weights}
        for row, (text, gold) in enumerate(zip(texts, owner, strict=True)):
            if in_bm25:
                docs = [" ".join([a.passage, *(t for t in p if t != text)])
                        for a, p in zip(articles, phrases, strict=True)]
                lex = BM25(docs).scores(text)
            else:
                lex = plain.scores(text)
            lex = lex / lex.max() if lex.max() > 0 else lex
            sims = vectors @ vectors[row]
            sims[row] = -1.0  # the phrase itself is held out
            sem = summaries @ vectors[row]
            np.maximum.at(sem, owner, sims)
            for w in weights:
                hits[w] += gold in np.argsort(-(w * lex + (1 - w) * sem))[:3]
        for w in weights:
            out[f"weight={w},phrases_in_bm25={in_bm25}"] = hits[w] / len(texts)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="first N subflows of the eval file")
    ap.add_argument("--eval-file", default=str(ABCD_EVAL))
    ap.add_argument("--config", default=None, help="settings TOML (defaults otherwise)")
    ap.add_argument("--kb-dir", default=None, help="overrides settings nlu.kb_dir")
    ap.add_argument("--lexical-weight", type=float, default=None,
                    help="overrides settings nlu.lexical_weight for the hybrid method")
    ap.add_argument("--dev", action="store_true",
                    help="also run the leave-one-out over the intent example phrases")
    ap.add_argument("--json", default="out/eval_retrieval.json")
    args = ap.parse_args(argv)

    settings = load_settings(args.config)
    if args.kb_dir:
        settings.nlu.kb_dir = args.kb_dir
    if args.lexical_weight is not None:
        settings.nlu.lexical_weight = args.lexical_weight
    kb_dir = Path(settings.nlu.kb_dir)
    if not kb_dir.is_dir():
        raise SystemExit(f"error: knowledge base not found at {kb_dir} (set nlu.kb_dir)")
    queries = abcd_queries(Path(args.eval_file), args.limit)
    articles, indexes = build_indexes(settings)
    known = {a.id for a in articles}
    unknown = sorted({q.subflow for q in queries} - known)
    if unknown:
        raise SystemExit(f"error: eval file names unknown subflows: {', '.join(unknown)}")

    report = evaluate(indexes, queries, len(articles), settings.nlu.top_k)
    print(f"{len(articles)} articles, lexical_weight {settings.nlu.lexical_weight}, "
          f"{sum(q.set == 'authored' for q in queries)} authored + "
          f"{sum(q.set == 'sample' for q in queries)} real sample-dialogue queries")
    print(f"{'method':10} {'set':9} {'n':>4} {'R@1':>6} {'R@3':>6} {'MRR':>6} "
          f"{'p50 ms':>7} {'p95 ms':>7}")
    for r in report["results"]:
        print(f"{r['method']:10} {r['set']:9} {r['n']:4d} {r['recall@1']:6.3f} "
              f"{r['recall@3']:6.3f} {r['mrr']:6.3f} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f}")
    print("most confused subflow pairs (hybrid, top-1, both directions):")
    for p in report["confused_pairs"]["hybrid"][:10]:
        print(f"  {p['count']:3d}  {p['pair'][0]} <-> {p['pair'][1]}")

    payload = {
        "machine": machine(),
        "kb": {"dir": str(kb_dir), "articles": len(articles)},
        "settings": {"lexical_weight": settings.nlu.lexical_weight,
                     "top_k": settings.nlu.top_k},
        "eval_file": str(args.eval_file),
        "limit": args.limit,
        "methods": list(indexes),
        **report,
    }
    if args.dev:
        bundle = ModelBundle(settings)
        dev = leave_one_out(articles, bundle.embedder(), bundle.embedding_cache)
        for k, v in dev.items():
            print(f"dev leave-one-out recall@3 {k}: {v:.3f}")
        payload["dev_leave_one_out_recall@3"] = dev
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
