"""WER of the bundled Whisper models on ../shared/data/asr, wideband and 8 kHz separately.

    scripts/eval_asr [--models tiny.en base] [--window 12 30] [--margin 4] [--json out.json]

Each recording is decoded as one utterance through models.whisper_asr (the same code the
pipeline runs); window and margin default to the pipeline's settings, and ``--window 30``
reproduces faster-whisper's padded 30 s window.
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401  (puts the project on sys.path)
from _common import (
    asr_refs,
    first_per_subset,
    machine,
    p50_p95,
    shared_data,
    subset_of,
    write_json,
)
from switchboard.models.whisper_asr import WhisperASR
from switchboard.pipeline.wer import corpus_wer
from switchboard.telephony.audio_file import load

from switchboard.config import load_settings


def main() -> None:
    asr_opts = load_settings().asr
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    ap.add_argument("--window", type=float, nargs="+", default=[asr_opts.min_window_s],
                    help="minimum encoder window(s) in seconds; 30 = faster-whisper default")
    ap.add_argument("--margin", type=float, default=asr_opts.window_margin_s,
                    help="seconds added to the utterance")
    ap.add_argument("--limit", type=int, default=0, help="first N recordings per subset")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    data = shared_data()
    rows = asr_refs(data)
    if args.limit:
        rows = first_per_subset(rows, args.limit)
    audio = {r["path"]: load(data / r["path"]).audio for r in rows}
    results = []
    header = f"{'model':8} {'window':>6} {'subset':12} {'n':>4} {'WER%':>6}"
    print(header + f" {'p50 ms':>7} {'p95 ms':>7}")
    for model in args.models:
        for window in args.window:
            asr = WhisperASR(model, cpu_threads=args.threads, min_window_s=window,
                             window_margin_s=args.margin)
            asr.decode(audio[rows[0]["path"]])  # warm-up
            by_subset: dict[str, dict[str, list]] = {}
            for r in rows:
                t0 = time.perf_counter()
                res = asr.decode(audio[r["path"]])
                ms = (time.perf_counter() - t0) * 1000
                s = by_subset.setdefault(subset_of(r), {"ref": [], "hyp": [], "ms": []})
                s["ref"].append(r["text"])
                s["hyp"].append(res.text)
                s["ms"].append(ms)
            for subset, s in sorted(by_subset.items()):
                ms = s["ms"]
                row = {
                    "model": model, "min_window_s": window, "margin_s": args.margin,
                    "subset": subset, "n": len(ms),
                    "wer": corpus_wer(s["ref"], s["hyp"]),
                }
                row["p50_ms"], row["p95_ms"] = p50_p95(ms)
                results.append(row)
                print(f"{model:8} {window:6.0f} {subset:12} {row['n']:4d} {100 * row['wer']:6.1f} "
                      f"{row['p50_ms']:7.0f} {row['p95_ms']:7.0f}", flush=True)
    write_json(args.json, {"machine": machine(), "device": asr.device, "results": results})


if __name__ == "__main__":
    main()
