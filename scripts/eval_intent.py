"""Intent detection accuracy and cost: Banking77, CLINC150 out-of-scope, the deployed ABCD set.

    scripts/eval_intent [--parts banking77 clinc150 abcd] [--quick] [--json out/eval_intent.json]

- Banking77: train on train.csv only, accuracy on dev.csv, for the n-gram classifier alone
  and with MiniLM sentence embeddings (models/intent.py, the pipeline's classifier), with
  the cost per utterance on one thread.
- CLINC150: train on its train split; the out-of-scope threshold is chosen on the first half
  of val plus oos_train, and reported on the second half of val plus oos_val.
- ABCD (the deployed intents): the detector trained from pipeline/data/intents/abcd.toml
  and pipeline/data/intents/out_of_scope.toml (off-topic requests learnt as a class), as
  the pipeline builds it; its threshold is chosen from 5-fold cross-validated confidences of
  the example phrases against CLINC's oos_train, and reported on the held-out utterances of
  scripts/data/abcd_eval.toml and CLINC's oos_val. That threshold is the one to put in
  ``nlu.oos_threshold``.
Sentence embeddings are cached in out/embeddings (they take minutes for Banking77 and
CLINC150). ``--quick`` uses only 10 Banking77 and 10 CLINC150 intents.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import _common
import numpy as np
from _common import abcd_queries, machine, p50_p95, shared_data, write_json
from sklearn.model_selection import StratifiedKFold
from switchboard.models.bundle import limit_blas_threads
from switchboard.models.embedder import MiniLMEmbedder, encode_cached
from switchboard.models.intent import OUT_OF_SCOPE, IntentClassifier, oos_threshold_for
from switchboard.pipeline.intents import load_examples

from switchboard.config import load_settings


class CachedEmbedder:
    """MiniLM vectors of many sentences, cached on disk by their content."""

    def __init__(self, root: Path):
        self._model = MiniLMEmbedder()
        self._root = root

    def encode(self, texts: list[str]) -> np.ndarray:
        return encode_cached(self._model, texts, self._root)

    def one(self, text: str) -> np.ndarray:
        return self._model.encode([text])[0]


def banking77(data: Path, emb: CachedEmbedder, quick: bool) -> dict:
    def read(name: str) -> tuple[list[str], list[str]]:
        with open(data / "intents" / "banking77" / name, newline="") as fh:
            rows = list(csv.DictReader(fh))
        return [r["text"] for r in rows], [r["category"] for r in rows]

    train_x, train_y = read("train.csv")
    dev_x, dev_y = read("dev.csv")
    if quick:
        keep = set(sorted(set(train_y))[:10])
        train_x, train_y = zip(*[(x, y) for x, y in zip(train_x, train_y, strict=True)
                                 if y in keep], strict=True)
        dev_x, dev_y = zip(*[(x, y) for x, y in zip(dev_x, dev_y, strict=True) if y in keep],
                           strict=True)
        train_x, train_y, dev_x, dev_y = map(list, (train_x, train_y, dev_x, dev_y))
    train_v, dev_v = emb.encode(train_x), emb.encode(dev_x)
    ngram = IntentClassifier().fit(train_x, train_y)
    full = IntentClassifier().fit(train_x, train_y, train_v)
    acc_ngram = _accuracy(ngram.scores(dev_x), ngram.intents, dev_y)
    acc_full = _accuracy(full.scores(dev_x, dev_v), full.intents, dev_y)
    # Cost per utterance as the pipeline pays it: one sentence at a time, one thread.
    sample = dev_x[:: max(1, len(dev_x) // 200)]
    t_ngram, t_embed, t_full = [], [], []
    for text in sample:
        t0 = time.perf_counter()
        ngram.predict(text)
        t1 = time.perf_counter()
        vector = emb.one(text)
        t2 = time.perf_counter()
        full.predict(text, vector)
        t3 = time.perf_counter()
        t_ngram.append((t1 - t0) * 1000)
        t_embed.append((t2 - t1) * 1000)
        t_full.append((t3 - t2) * 1000)
    return {
        "train": len(train_x), "dev": len(dev_x), "intents": len(set(train_y)),
        "accuracy_ngram": acc_ngram, "accuracy_ngram_embedding": acc_full,
        "ms_ngram": _pct(t_ngram), "ms_embedding": _pct(t_embed),
        "ms_classify_given_embedding": _pct(t_full),
        "ms_embedding_plus_classify": _pct([a + b for a, b in zip(t_embed, t_full,
                                                                  strict=True)]),
    }


def clinc150(data: Path, emb: CachedEmbedder, quick: bool) -> dict:
    doc = json.loads((data / "intents" / "clinc150" / "train_val.json").read_text())
    train, val = doc["train"], doc["val"]
    if quick:
        keep = set(sorted({y for _, y in train})[:10])
        train = [r for r in train if r[1] in keep]
        val = [r for r in val if r[1] in keep]
    half = len(val) // 2
    tune, test = val[::2][:half], val[1::2]
    oos_tune = [x for x, _ in doc["oos_train"]]
    oos_test = [x for x, _ in doc["oos_val"]]
    clf = IntentClassifier().fit([x for x, _ in train], [y for _, y in train],
                                 emb.encode([x for x, _ in train]))

    def confidences(texts: list[str]) -> np.ndarray:
        return clf.scores(texts, emb.encode(texts))

    tune_p = confidences([x for x, _ in tune])
    threshold = oos_threshold_for(tune_p.max(1), confidences(oos_tune).max(1))
    clf.oos_threshold = threshold
    return {
        "train": len(train), "intents": len({y for _, y in train}),
        "threshold": threshold,
        **_scope_report(clf, confidences([x for x, _ in test]), [y for _, y in test],
                        confidences(oos_test)),
    }


def abcd(data: Path, emb: CachedEmbedder, settings) -> dict:
    examples = load_examples(settings.nlu.intent_examples)
    texts = [p for phrases in examples.values() for p in phrases]
    labels = [i for i, phrases in examples.items() for _ in phrases]
    vectors = emb.encode(texts)
    doc = json.loads((data / "intents" / "clinc150" / "train_val.json").read_text())
    oos_tune = [x for x, _ in doc["oos_train"]]
    oos_test = [x for x, _ in doc["oos_val"]]
    queries = abcd_queries()
    test_x = [q.text for q in queries if q.set == "authored"]
    test_y = [q.subflow for q in queries if q.set == "authored"]
    sample_x = [q.text for q in queries if q.set == "sample"]  # real customer turns
    sample_y = [q.subflow for q in queries if q.set == "sample"]
    out = {"examples": len(texts), "intents": len(set(examples) - {OUT_OF_SCOPE}),
           "out_of_scope_examples": len(examples.get(OUT_OF_SCOPE, [])), "held_out": len(test_x),
           "sample_dialogue_turns": len(sample_x)}
    for name, use_vectors in (("ngram_embedding", True), ("ngram", False)):
        # In-scope confidences for the threshold come from cross-validation over the
        # example phrases, so the held-out utterances play no part in choosing it.
        cv_conf = []
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
        for fit_idx, val_idx in folds.split(texts, labels):
            clf = IntentClassifier().fit(
                [texts[i] for i in fit_idx], [labels[i] for i in fit_idx],
                vectors[fit_idx] if use_vectors else None,
            )
            probs = clf.scores([texts[i] for i in val_idx],
                                      vectors[val_idx] if use_vectors else None)
            in_scope = np.array([labels[i] != OUT_OF_SCOPE for i in val_idx])
            cv_conf.extend(probs.max(1)[in_scope])
        clf = IntentClassifier().fit(texts, labels, vectors if use_vectors else None)

        def confidences(batch: list[str], clf=clf, use_vectors=use_vectors) -> np.ndarray:
            return clf.scores(batch, emb.encode(batch) if use_vectors else None)

        threshold = oos_threshold_for(np.array(cv_conf), confidences(oos_tune).max(1))
        clf.oos_threshold = threshold
        report = {"threshold": threshold,
                  **_scope_report(clf, confidences(test_x), test_y, confidences(oos_test))}
        if sample_x:
            report["sample_dialogue_accuracy"] = _accuracy(confidences(sample_x), clf.intents,
                                                           sample_y)
        out[name] = report
    return out


def _scope_report(clf: IntentClassifier, in_probs: np.ndarray, in_labels: list[str],
                  oos_probs: np.ndarray) -> dict:
    """In-scope accuracy (an out-of-scope answer counts wrong), top-3, and OOS recall."""
    names = clf.intents
    in_pred = [clf.decide(p).intent for p in in_probs]
    oos_pred = [clf.decide(p).intent for p in oos_probs]
    top3 = [y in {names[i] for i in np.argsort(-p)[:3]}
            for p, y in zip(in_probs, in_labels, strict=True)]
    in_acc = float(np.mean([p == y for p, y in zip(in_pred, in_labels, strict=True)]))
    oos_recall = float(np.mean([p == OUT_OF_SCOPE for p in oos_pred]))
    false_oos = float(np.mean([p == OUT_OF_SCOPE for p in in_pred]))
    return {
        "in_scope": len(in_labels), "out_of_scope": len(oos_probs),
        "in_scope_accuracy": in_acc,
        "in_scope_accuracy_no_threshold": _accuracy(in_probs, names, in_labels),
        "in_scope_top3": float(np.mean(top3)),
        "oos_recall": oos_recall, "in_scope_rejected": false_oos,
        "balanced_accuracy": (in_acc + oos_recall) / 2,
    }


def _accuracy(probs: np.ndarray, names: list[str], labels: list[str]) -> float:
    pred = [names[i] for i in probs.argmax(1)]
    return float(np.mean([p == y for p, y in zip(pred, labels, strict=True)]))


def _pct(ms: list[float]) -> dict[str, float]:
    p50, p95 = p50_p95(ms)
    return {"p50": p50, "p95": p95}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    ap.add_argument("--quick", action="store_true", help="10 intents of Banking77 and CLINC150")
    ap.add_argument("--json", default="out/eval_intent.json")
    args = ap.parse_args(argv)
    limit_blas_threads()
    data = shared_data()
    emb = CachedEmbedder(_common.ROOT / "out" / "embeddings")
    settings = load_settings()
    result: dict = {"machine": machine(), "quick": args.quick}
    for part in args.parts:
        result[part] = (abcd(data, emb, settings) if part == "abcd"
                        else PARTS[part](data, emb, args.quick))
    _print(result)
    write_json(args.json, result)
    return result


PARTS = {"banking77": banking77, "clinc150": clinc150, "abcd": abcd}


def _print(r: dict) -> None:
    if "banking77" in r:
        _print_banking77(r["banking77"])
    if "clinc150" in r:
        c = r["clinc150"]
        print(f"CLINC150 ({c['intents']} intents), threshold {c['threshold']:.3f}: in-scope "
              f"accuracy {c['in_scope_accuracy']:.2%}, out-of-scope recall "
              f"{c['oos_recall']:.2%}")
    if "abcd" in r:
        _print_abcd(r["abcd"])


def _print_banking77(b: dict) -> None:
    print(f"Banking77 ({b['intents']} intents, train {b['train']}, dev {b['dev']})")
    print(f"  n-grams            accuracy {b['accuracy_ngram']:.2%}  "
          f"{b['ms_ngram']['p50']:.1f} ms p50")
    print(f"  n-grams+embedding  accuracy {b['accuracy_ngram_embedding']:.2%}  "
          f"embedding {b['ms_embedding']['p50']:.1f} ms + classify "
          f"{b['ms_classify_given_embedding']['p50']:.1f} ms p50")


def _print_abcd(a: dict) -> None:
    for name in ("ngram_embedding", "ngram"):
        x = a[name]
        print(f"ABCD {name:16s} threshold {x['threshold']:.3f}: held-out accuracy "
              f"{x['in_scope_accuracy']:.2%} (top-3 {x['in_scope_top3']:.2%}, "
              f"no threshold {x['in_scope_accuracy_no_threshold']:.2%}), out-of-scope recall "
              f"{x['oos_recall']:.2%}")


if __name__ == "__main__":
    main()
