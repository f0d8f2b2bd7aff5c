"""Benchmark: play the shared ASR recordings through the graph and report p50/p95 per stage.

    scripts/bench [--limit N] [--fast] [--concurrent N] [--json out/bench.json]

Real time by default (the latencies a live caller would see). ``--concurrent N`` plays N
recordings at a time, each as its own call on one event loop and one ModelBundle, as a
server does. Prints a table against budgets.toml and writes JSON. Never fails on a
threshold: machines are noisy; compare figures taken in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

import _common  # noqa: F401
from _common import asr_refs, first_per_subset, machine, shared_data, write_json
from switchboard.models.bundle import ModelBundle
from switchboard.pipeline.budgets import Metrics
from switchboard.pipeline.wer import corpus_wer
from switchboard.telephony.audio_file import load

from switchboard.config import load_settings
from switchboard.session import REPORTED_STEPS, run_call


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=12, help="recordings per subset (0 = all)")
    ap.add_argument("--fast", action="store_true", help="no real-time pacing")
    ap.add_argument("--concurrent", type=int, default=1, help="calls at a time")
    ap.add_argument("--config", default=None)
    ap.add_argument("--json", default="out/bench.json")
    args = ap.parse_args()
    from loguru import logger

    logger.remove()

    data = shared_data()
    settings = load_settings(args.config)
    settings.nlu.kb_dir = str(data / "kb" / "abcd")
    settings.store.url = "sqlite:///:memory:"
    bundle = ModelBundle(settings)
    bundle.warm_up()
    rows = first_per_subset(asr_refs(data), args.limit)
    samples: dict[str, list[float]] = {s: [] for s in REPORTED_STEPS}
    final_short: list[float] = []
    refs, hyps = [], []
    heads: list[str] = []  # per anger score: did the ASR's voice embedding arrive in time?
    metrics = Metrics()  # one registry for the whole run, as one server process has

    async def play(group):
        return await asyncio.gather(*[
            run_call(load(data / r["path"]), settings, bundle, realtime=not args.fast,
                     metrics=metrics) for r in group])

    n = max(1, args.concurrent)
    for g in range(0, len(rows), n):
        group = rows[g : g + n]
        for i, (r, result) in enumerate(zip(group, asyncio.run(play(group)), strict=True),
                                        g + 1):
            own = result.context.samples.samples
            for step in REPORTED_STEPS:
                samples[step] += own.get(step, [])
            final_short += [e.latency_ms for e in result.events
                            if e.kind == "transcript_final" and e.t_audio - e.t_start <= 8.0]
            heads += [e.heads for e in result.events if e.kind == "emotion"]
            refs.append(r["text"])
            hyps.append(" ".join(result.finals()))
            print(f"[{i}/{len(rows)}] {r['path']}: asr_final "
                  f"{statistics.median(own.get('asr_final', [0])):.0f} ms", flush=True)

    budgets = settings.budgets.budgets
    table = {}
    for step, values in samples.items():
        table[step] = {"n": len(values), "p50": pct(values, .5), "p95": pct(values, .95),
                       "budget": budgets[step].budget_ms if step in budgets else None}
    table["asr_final_le_8s"] = {"n": len(final_short), "p50": pct(final_short, .5),
                                "p95": pct(final_short, .95),
                                "budget": budgets["asr_final"].budget_ms}
    print(f"\n{'step':18} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'budget':>8}")
    for step, row in table.items():
        budget = "" if row["budget"] is None else f"{row['budget']:8.0f}"
        print(f"{step:18} {row['n']:5d} {row['p50']:8.1f} {row['p95']:8.1f} {budget}")
    wer = corpus_wer(refs, hyps)
    print(f"\nend-to-end WER through the graph (VAD-segmented): {100 * wer:.1f}%")
    with_embedding = heads.count("voice+embedding")
    print(f"anger scores with the voice embedding: {with_embedding} of {len(heads)} "
          f"(the others came from the voice features alone: embedding late or failed)")
    write_json(args.json, {"machine": machine(), "device": bundle.asr().device,
                           "mode": "fast" if args.fast else "realtime",
                           "concurrent": n,
                           "recordings": len(rows), "steps": table, "wer": wer,
                           "emotion_with_embedding": [with_embedding, len(heads)],
                           "asr": vars(settings.asr)})


if __name__ == "__main__":
    main()
