"""Benchmark: Whisper decodes of several calls at once, per thread setting.

    scripts/bench_decode [--calls 2] [--limit 12] [--settings 2x1 1x2 2x2] [--json out.json]

Each setting is ``cpu_threads x inter_threads``. ``--calls`` threads play the role of calls,
each decoding the same recordings (first ``--limit`` per subset of refs.csv) one after the
other on the one shared model, as the ASR stages of concurrent calls do; reports the decode
time per utterance (p50/p95) and the wall time. Never fails on a threshold.
"""

from __future__ import annotations

import argparse
import threading
import time

import _common  # noqa: F401  (puts the project on sys.path)
from _common import asr_refs, first_per_subset, machine, p50_p95, shared_data, write_json
from switchboard.models.whisper_asr import WhisperASR
from switchboard.telephony.audio_file import load


def run(setting: str, calls: int, audio: list) -> dict:
    intra, inter = (int(x) for x in setting.split("x"))
    asr = WhisperASR("tiny.en", cpu_threads=intra, inter_threads=inter)
    asr.decode(audio[0])  # warm-up
    times: list[float] = []
    lock = threading.Lock()

    def call(offset: int) -> None:
        # Each call starts at another recording, so calls decode different lengths at once.
        for i in range(len(audio)):
            t0 = time.perf_counter()
            asr.decode(audio[(i + offset) % len(audio)])
            with lock:
                times.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    threads = [threading.Thread(target=call, args=(k * len(audio) // calls,))
               for k in range(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p50, p95 = p50_p95(times)
    return {"setting": setting, "cpu_threads": intra, "inter_threads": inter,
            "calls": calls, "decodes": len(times), "p50_ms": p50, "p95_ms": p95,
            "wall_s": time.perf_counter() - started}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2)
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--settings", nargs="+", default=["2x1", "1x2", "2x2"])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    data = shared_data()
    rows = first_per_subset(asr_refs(data), args.limit)
    audio = [load(data / r["path"]).audio for r in rows]
    results = []
    print(f"{'setting':8} {'calls':>5} {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'wall s':>7}")
    for setting in args.settings:
        r = run(setting, args.calls, audio)
        results.append(r)
        print(f"{setting:8} {r['calls']:5d} {r['decodes']:4d} {r['p50_ms']:7.0f} "
              f"{r['p95_ms']:7.0f} {r['wall_s']:7.1f}", flush=True)
    write_json(args.json, {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
