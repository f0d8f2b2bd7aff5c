"""FAQ answer accuracy: is the right answer chosen for a caller's question?

    scripts/eval_faq [--answers FILE ...] [--eval-file FILE] [--dev] [--json out.json]

Asks the FaqAnswerer (pipeline/faq.py, built as the pipeline builds it: MiniLM from the
ModelBundle, the project's answers file) every held-out question of
scripts/data/faq_eval.toml (written separately from the answers; see its header) and
scores the chosen answer's id. Three settings:

- ``in_flow``: the question's FAQ flow is known (the intent classifier said "boots"), the
  answer is chosen among that flow's 8 (products) or 4 (storewide) answers: what the
  dialogue does;
- ``any_flow``: chosen among all answers, flow unknown (accuracy@1 and @3);
- ``lexical``: in_flow with BM25 alone (no embedder: the pipeline's ``lexical`` rung).

``--dev`` adds the leave-one-out figure on the answers file's own ``also`` phrasings (each
one held out of the index and asked), the set the lexical weight and embedding of the
answers were chosen on, so they are not tuned on the held-out questions.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import tomllib
from pathlib import Path

import _common  # noqa: F401  (puts the project on sys.path)
from _common import ROOT, machine, p50_p95, write_json
from switchboard.models.bundle import ModelBundle
from switchboard.pipeline.faq import FaqAnswerer, FaqEntry, FaqStore

from switchboard.config import load_settings

FAQ_EVAL = ROOT / "scripts" / "data" / "faq_eval.toml"


@dataclasses.dataclass(frozen=True)
class Question:
    """One held-out question, its FAQ flow and the id of its right answer."""

    text: str
    flow: str
    answer_id: str


def questions(path: Path) -> list[Question]:
    raw = tomllib.loads(Path(path).read_text())
    return [Question(q, flow, aid) for flow, table in raw.items() if not flow.startswith("_")
            for aid, qs in table.items() for q in qs]


def score(answerer: FaqAnswerer, qs: list[Question], in_flow: bool) -> dict:
    """Accuracy@1 and @3 of ``answerer`` on ``qs``, with the misses."""
    hits1 = hits3 = 0
    ms: list[float] = []
    misses = []
    per_flow: dict[str, list[int]] = {}
    for q in qs:
        t0 = time.perf_counter()
        ranked = answerer.rank(q.flow if in_flow else None, q.text, k=3)
        ms.append((time.perf_counter() - t0) * 1000)
        ids = [(m.entry.flow, m.entry.id) for m in ranked]
        ok1 = bool(ids) and ids[0] == (q.flow, q.answer_id)
        hits1 += ok1
        hits3 += (q.flow, q.answer_id) in ids
        per_flow.setdefault(q.flow, []).append(int(ok1))
        if not ok1:
            misses.append({"question": q.text, "expected": q.answer_id,
                           "chosen": ids[0][1] if ids else None})
    n = len(qs)
    p50, p95 = p50_p95(ms)
    return {"n": n, "accuracy@1": hits1 / n if n else 0.0,
            "accuracy@3": hits3 / n if n else 0.0, "p50_ms": p50, "p95_ms": p95,
            "per_flow_accuracy@1": {f: sum(v) / len(v) for f, v in per_flow.items()},
            "misses": misses}


class _Fixed:
    """A store stand-in holding a fixed list of entries (for leave-one-out)."""

    version = 1

    def __init__(self, entries: list[FaqEntry]):
        self._entries = entries

    def entries(self) -> list[FaqEntry]:
        return self._entries


def leave_one_out(entries: list[FaqEntry], embedder, cache_dir, weight: float,
                  embed_answers: bool) -> float:
    """Accuracy (in flow) on each ``also`` phrasing, held out of the index in turn."""
    ok = n = 0
    for e in entries:
        for held in e.also:
            rest = [dataclasses.replace(x, also=tuple(a for a in x.also if a != held))
                    if x is e else x for x in entries]
            answerer = FaqAnswerer(_Fixed(rest), embedder, weight, cache_dir, embed_answers)
            m = answerer.select(e.flow, held)
            ok += m is not None and m.entry.id == e.id
            n += 1
    return ok / n if n else 0.0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None, help="settings TOML (defaults otherwise)")
    ap.add_argument("--answers", nargs="*", default=None,
                    help="answers files (default: settings dialogue.faq_answers)")
    ap.add_argument("--eval-file", default=str(FAQ_EVAL))
    ap.add_argument("--dev", action="store_true",
                    help="also run the leave-one-out on the answers' own phrasings")
    ap.add_argument("--json", default="out/eval_faq.json")
    args = ap.parse_args(argv)

    settings = load_settings(args.config)
    store = FaqStore(args.answers or settings.dialogue.faq_answers)
    bundle = ModelBundle(settings)
    embedder, cache = bundle.embedder(), bundle.embedding_cache
    qs = questions(Path(args.eval_file))
    known = {(e.flow, e.id) for e in store.entries()}
    unknown = sorted({f"{q.flow}.{q.answer_id}" for q in qs} - {f"{f}.{i}" for f, i in known})
    if unknown:
        raise SystemExit(f"error: eval file names unknown answers: {', '.join(unknown)}")

    hybrid = FaqAnswerer(store, embedder, cache_dir=cache)
    lexical = FaqAnswerer(store, None)
    results = {"in_flow": score(hybrid, qs, True), "any_flow": score(hybrid, qs, False),
               "lexical": score(lexical, qs, True)}
    print(f"{len(known)} answers, {len(qs)} held-out questions, lexical weight "
          f"{hybrid.lexical_weight}")
    print(f"{'setting':9} {'n':>4} {'acc@1':>6} {'acc@3':>6} {'p50 ms':>7}")
    for name, r in results.items():
        print(f"{name:9} {r['n']:4d} {r['accuracy@1']:6.3f} {r['accuracy@3']:6.3f} "
              f"{r['p50_ms']:7.1f}")
    payload = {"machine": machine(), "answers": [str(p) for p in store.paths],
               "eval_file": str(args.eval_file), "lexical_weight": hybrid.lexical_weight,
               "embed_answers": hybrid.embed_answers, "results": results}
    if args.dev:
        entries = store.entries()
        dev = {f"weight={w},embed_answers={ea}": leave_one_out(entries, embedder, cache, w, ea)
               for w in (0.0, 0.1, 0.2, 0.3, 0.5) for ea in (False, True)}
        for k, v in dev.items():
            print(f"dev leave-one-out {k}: {v:.3f}")
        payload["dev_leave_one_out"] = dev
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
