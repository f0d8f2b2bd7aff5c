"""Turn-taking: premature bot replies and the wait after a finished turn, on real speech.

    scripts/eval_turns [--limit N] [--setting NAME:key=value,...] [--realtime K]
                       [--concurrent N] [--json out/eval_turns.json]

Each recording in ../shared/data/asr is one complete caller turn, played through the
caller graph (bot mode). A *premature reply* is a BotReply whose trigger (the audio time
the turn was decided over) came before the recording's last speech sample (the end of the
last utterance the VAD kept: blips under ``vad.min_utterance_ms`` do not count). Counted
in --fast mode with the ASR ladder pinned (no
degrading: a slow machine must not change what is transcribed) and the decision taken
on the audio clock (pipeline/turn.py), so the count does not depend on machine speed.
Also reported per setting, from the same runs: the *end-of-turn wait* of the last turn
(audio time from the last speech sample to the decided end; what a finished caller waits
before the bot may start) and which rule decided. ``--realtime K`` plays the first K
recordings of each subset again in real time for voice-to-voice p50/p95 (last speech
sample to the first reply sample, on this machine's clock).

Settings: ``NAME:section.key=value,...`` over the defaults, e.g.
``vad192:turn.enabled=false`` (VAD silence alone, as before Smart Turn) or
``t0.7:turn.threshold=0.7``. Without --setting, the curve in docs/evaluation.md is run.

``--what-if FILE``: no audio is played; the "default" run logged in FILE (an earlier
``--json``) is replayed with shorter complete-turn waits (:func:`what_if`).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import math
import time
from dataclasses import replace
from difflib import SequenceMatcher

import _common  # noqa: F401
from _common import asr_refs, first_per_subset, machine, p50_p95, shared_data, subset_of, write_json
from switchboard.models.bundle import ModelBundle
from switchboard.pipeline.budgets import Metrics
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.stages.vad import EPS
from switchboard.pipeline.turn import turn_text
from switchboard.pipeline.wer import normalise
from switchboard.telephony import file_source
from switchboard.telephony.audio_file import load

from switchboard.config import Settings, load_settings
from switchboard.session import run_source

#: The curve in docs/evaluation.md: plain VAD at five silences, then Smart Turn + words.
#: Other settings (``smart-only:turn.use_words=false``, ``words-only:turn.smart_turn=false``,
#: ``turn.complete_wait_ms``, ``turn.threshold``) go through --setting.
CURVE = (
    # Before #11 stop_ms = 192 ended turns after seven 32 ms windows (six windows' float
    # sum fell short of 0.192 s): "today224" is that code's behaviour, "vad192" the fix.
    "today224:turn.enabled=false,vad.stop_ms=224",
    "vad192:turn.enabled=false",
    "vad320:turn.enabled=false,vad.stop_ms=320",
    "vad500:turn.enabled=false,vad.stop_ms=500",
    "vad800:turn.enabled=false,vad.stop_ms=800",
    "default:",
)


def parse_setting(spec: str) -> tuple[str, dict[str, dict[str, object]]]:
    """``name:section.key=value,...`` → (name, overrides)."""
    name, _, body = spec.partition(":")
    out: dict[str, dict[str, object]] = {}
    for item in filter(None, body.split(",")):
        key, _, raw = item.partition("=")
        section, _, opt = key.strip().partition(".")
        value: object = raw.strip()
        if raw.strip().lower() in ("true", "false"):
            value = raw.strip().lower() == "true"
        else:
            try:
                value = int(raw) if raw.strip().lstrip("-").isdigit() else float(raw)
            except ValueError:
                pass
        out.setdefault(section, {})[opt] = value
    return name or spec, out


def apply(base: Settings, overrides: dict[str, dict[str, object]]) -> Settings:
    settings = copy.deepcopy(base)
    for section, values in overrides.items():
        target = getattr(settings, section)
        for key, value in values.items():
            if not hasattr(target, key):
                raise SystemExit(f"unknown option {section}.{key}")
            setattr(target, key, value)
    return settings


async def play(path, reference: str, settings: Settings, bundle: ModelBundle,
               realtime: bool, tail_s: float, metrics: Metrics) -> dict:
    """One recording as one call; what the turn-taking did."""
    rec = load(path)
    ctx = CallContext(call_id=f"turns-{path.stem}", settings=settings, metrics=metrics)
    frames = file_source.frames(rec, realtime=realtime, tail_silence_s=tail_s)
    result = await run_source(frames, str(path), ctx, bundle)
    events = result.events
    duration = len(rec.audio) / 16000
    stream_end = math.ceil((duration + tail_s) * 50) / 50
    # The last speech sample: the end of the last utterance the VAD kept. A blip shorter
    # than vad.min_utterance_ms (a click where the file was cut) is no speech to talk over.
    speech = [e.t_audio for e in events if e.kind == "speech_ended" and not e.too_short]
    last_speech = max(speech, default=0.0)
    decided = {(d.utterance, round(d.t_speech_end, 4)): d
               for d in turn_text(ctx, "caller").decisions if d.t_decided is not None}
    stop_s = settings.vad.stop_ms / 1000
    ends = {}
    for e in events:
        if e.kind != "speech_ended":
            continue
        d = decided.get((e.utterance, round(e.t_audio, 4)))
        if d is not None:
            trigger, how = d.t_decided, d.reason
        elif settings.turn.enabled:
            trigger, how = stream_end, "stream-end"
        else:
            # VAD alone: the window where the silence reached stop_ms (32 ms windows).
            trigger, how = e.t_audio + math.ceil(stop_s / 0.032 - 1e-9) * 0.032, "vad"
            trigger = min(trigger, stream_end)
        ends[e.utterance] = (e.t_audio, trigger, how, e.too_short)
    finals = {e.utterance: e.text for e in events if e.kind == "transcript_final"}
    replies, v2v = [], {}
    for e in events:
        if e.kind == "reply_audio":
            v2v[e.reply_id] = e.latency_ms
    for e in events:
        if e.kind != "bot_reply":
            continue
        t_end, trigger, how, _ = ends.get(e.utterance, (e.t_audio, e.t_audio, "?", False))
        text = finals.get(e.utterance, "")
        said = " ".join(t for u, t in sorted(finals.items()) if u <= e.utterance)
        replies.append({
            "utterance": e.utterance, "t_speech_end": round(t_end, 3),
            "trigger": round(trigger, 3), "premature": trigger < last_speech - 1e-6,
            "rule": how, "text": text,
            # Where the speaker was in the reference transcript's sentences.
            "inside_sentence": inside_sentence(reference, said),
            "v2v_ms": v2v.get(e.reply_id),
        })
    last = max((x for x in ends.values() if not x[3]), key=lambda x: x[0], default=None)
    decisions = [vars(d).copy() for d in turn_text(ctx, "caller").decisions]
    return {
        "path": str(path), "duration_s": round(duration, 3),
        "last_speech": round(last_speech, 3), "replies": replies,
        "final_wait_ms": None if last is None else round(1000 * (last[1] - last[0]), 1),
        "final_rule": None if last is None else last[2],
        "decisions": decisions,
    }


def inside_sentence(reference: str, said: str) -> bool | None:
    """Did the speech transcribed as ``said`` (everything up to a premature reply) stop
    inside a sentence of ``reference``? Aligns the words (difflib, after the WER
    normalisation) and reads the reference's punctuation after the last aligned word:
    no full stop, question or exclamation mark there is inside a sentence. None when
    nothing aligns."""
    ref_tokens = reference.split()
    ref_words, owner = [], []
    for i, token in enumerate(ref_tokens):
        for w in normalise(token).split():
            ref_words.append(w)
            owner.append(i)
    hyp_words = normalise(said).split()
    last = None
    matcher = SequenceMatcher(None, hyp_words, ref_words, autojunk=False)
    for block in matcher.get_matching_blocks():
        if block.size:
            last = block.b + block.size - 1
    if last is None:
        return None
    return not ref_tokens[owner[last]].rstrip("\"'").endswith((".", "?", "!"))


#: --what-if: Smart Turn floors and complete-turn waits (ms) replayed over a logged run.
WHAT_IF_FLOORS = (0.5, 0.9, 0.95, 0.98)
WHAT_IF_WAITS = (192, 224, 256, 288, 320)


def what_if(rows: list[dict], floor: float, wait_ms: float) -> dict:
    """A logged run's pause decisions replayed with a shorter complete-turn wait.

    Decisions the run took by the "complete" rule (Smart Turn at ``threshold``, words
    finished) whose probability is ``floor`` or more end after ``wait_ms`` of silence;
    every other decision keeps its deadline. Counted per pause, not per reply (a reply
    also needs words or an intent, so the run's own premature count is a little lower): a
    pause inside the turn is premature when it lasted as long as its deadline, and one
    the run itself ended stays premature under any shorter wait. Approximate where an
    earlier premature end would have split the turn (the later pauses' words and scores
    are the run's); a setting worth having is confirmed with a run of its own.
    """
    premature, waits = 0, []
    for row in rows:
        for d in row["decisions"]:
            deadline = d["deadline_s"]
            if d["reason"] == "complete" and (d["probability"] or 0.0) >= floor:
                deadline = min(deadline, wait_ms / 1000)
            if not d["resumed"] and math.isclose(d["t_speech_end"], row["last_speech"]):
                waits.append(1000 * deadline)  # the finished turn: what the caller waits
            elif not d["resumed"] or d["t_resumed"] - d["t_speech_end"] + EPS >= deadline:
                # The VAD stage ends a turn once the silence reaches the deadline (with
                # its EPS: pauses are whole 32 ms windows).
                premature += 1
    p50, p95 = p50_p95(waits)
    return {"floor": floor, "wait_ms": wait_ms, "premature": premature,
            "premature_per_100_turns": round(100 * premature / max(1, len(rows)), 1),
            "final_wait_ms_p50": p50, "final_wait_ms_p95": p95,
            "final_wait_ms_mean": round(sum(waits) / max(1, len(waits)), 1)}


def print_what_if(path: str) -> list[dict]:
    """--what-if: the grid over the "default" run logged in ``path``."""
    import json

    with open(path) as fh:
        logged = json.load(fh)
    run = next(s for s in logged["settings"] if s["setting"] == "default")
    out = [what_if(run["per_recording"], f, w) for f in WHAT_IF_FLOORS for w in WHAT_IF_WAITS]
    print(f"{'floor':>5} {'wait':>5} {'prem':>5} {'per100':>6} {'wait p50':>8} {'p95':>5} "
          f"{'mean':>5}")
    for r in out:
        print(f"{r['floor']:5.2f} {r['wait_ms']:5.0f} {r['premature']:5d} "
              f"{r['premature_per_100_turns']:6.1f} {r['final_wait_ms_p50']:8.0f} "
              f"{r['final_wait_ms_p95']:5.0f} {r['final_wait_ms_mean']:5.0f}")
    return out


def summarise(name: str, rows: list[dict]) -> dict:
    replies = [r for row in rows for r in row["replies"]]
    premature = [dict(r, path=row["path"]) for row in rows for r in row["replies"]
                 if r["premature"]]
    waits = [row["final_wait_ms"] for row in rows if row["final_wait_ms"] is not None]
    p50, p95 = p50_p95(waits)
    rules: dict[str, int] = {}
    for row in rows:
        if row["final_rule"]:
            rules[row["final_rule"]] = rules.get(row["final_rule"], 0) + 1
    costs = [d["cost_ms"] for row in rows for d in row["decisions"]]
    c50, c95 = p50_p95(costs)
    return {
        "setting": name, "recordings": len(rows), "replies": len(replies),
        "premature": len(premature),
        "premature_per_100_turns": round(100 * len(premature) / max(1, len(rows)), 1),
        "recordings_with_premature": len({p["path"] for p in premature}),
        "premature_inside_sentence": sum(bool(p["inside_sentence"]) for p in premature),
        "final_turn_replied": sum(any(not r["premature"] for r in row["replies"])
                                  for row in rows),
        "final_wait_ms_p50": p50, "final_wait_ms_p95": p95,
        "final_rules": rules, "decision_cost_ms_p50": c50, "decision_cost_ms_p95": c95,
        "decisions": len(costs),
        "premature_examples": [{k: p[k] for k in ("path", "text", "rule", "trigger",
                                                  "inside_sentence")} for p in premature],
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="recordings per subset (0 = all)")
    ap.add_argument("--setting", action="append", default=None,
                    help="NAME:section.key=value,... (repeatable; default: the curve)")
    ap.add_argument("--realtime", type=int, default=0,
                    help="recordings per subset replayed in real time for voice-to-voice")
    ap.add_argument("--realtime-settings", default="today224,default",
                    help="comma-separated setting names replayed in real time")
    ap.add_argument("--realtime-only", action="store_true",
                    help="skip the --fast counts (voice-to-voice only)")
    ap.add_argument("--concurrent", type=int, default=2, help="calls at a time (fast mode)")
    ap.add_argument("--tail-s", type=float, default=3.0,
                    help="silence after each recording (longer than any hold)")
    ap.add_argument("--config", default=None)
    ap.add_argument("--json", default="out/eval_turns.json")
    ap.add_argument("--what-if", default=None, metavar="FILE",
                    help="replay the default run logged in FILE with shorter waits")
    args = ap.parse_args(argv)
    if args.what_if:
        return {"what_if": print_what_if(args.what_if)}
    from loguru import logger

    logger.remove()
    data = shared_data()
    base = load_settings(args.config)
    base.nlu.kb_dir = str(data / "kb" / "abcd")
    base.store.url = "sqlite:///:memory:"
    bundle = ModelBundle(base)
    bundle.warm_up()
    rows = first_per_subset(asr_refs(data), args.limit)
    specs = [parse_setting(s) for s in (args.setting or CURVE)]
    metrics = Metrics()
    out: dict = {"machine": machine(), "recordings": len(rows), "settings": [],
                 "realtime": []}

    def fast_settings(overrides) -> Settings:
        s = apply(base, overrides)
        # Nothing waits on the line: no wall-clock cut-offs, no ladder moves from a slow
        # machine (they would change the transcripts and so the replies).
        s.prosody = replace(s.prosody, embedding_wait_ms=math.inf)
        s.turn = replace(s.turn, text_wait_ms=600_000)
        s.budgets = replace(s.budgets, degrade_after=10**9)
        return s

    async def run_all(group, settings, realtime):
        return await asyncio.gather(*[
            play(data / r["path"], r["text"], settings, bundle, realtime, args.tail_s,
                 metrics)
            for r in group])

    print(f"{'setting':12} {'per100':>6} {'prem':>5} {'recs':>5} {'inside':>6} "
          f"{'replies':>7} {'wait p50':>9} {'p95':>6} {'secs':>6}")
    for name, overrides in ([] if args.realtime_only else specs):
        settings = fast_settings(overrides)
        started = time.monotonic()
        results: list[dict] = []
        n = max(1, args.concurrent)
        for g in range(0, len(rows), n):
            results += asyncio.run(run_all(rows[g : g + n], settings, False))
        summary = summarise(name, results)
        summary["overrides"] = overrides
        summary["wall_s"] = round(time.monotonic() - started, 1)
        summary["per_recording"] = results
        out["settings"].append(summary)
        print(f"{name:12} {summary['premature_per_100_turns']:6.1f} "
              f"{summary['premature']:5d} {summary['recordings_with_premature']:5d} "
              f"{summary['premature_inside_sentence']:6d} {summary['replies']:7d} "
              f"{summary['final_wait_ms_p50']:9.0f} {summary['final_wait_ms_p95']:6.0f} "
              f"{summary['wall_s']:6.0f}", flush=True)
        write_json(args.json, out)

    if args.realtime:
        rt_rows = first_per_subset(rows, args.realtime)
        wanted = [(n, o) for n, o in specs if n in args.realtime_settings.split(",")]
        per: dict[str, list[dict]] = {name: [] for name, _ in wanted}
        # Paired: each recording under every setting back to back, one call at a time, so
        # the settings share whatever else the machine is doing at that moment.
        for r in rt_rows:
            for name, overrides in wanted:
                per[name] += asyncio.run(run_all([r], apply(base, overrides), True))
        for name, _ in wanted:
            results = per[name]
            v2v = [rep["v2v_ms"] for row in results for rep in row["replies"]
                   if rep["v2v_ms"] is not None]
            final = [rep["v2v_ms"] for row in results for rep in row["replies"]
                     if rep["v2v_ms"] is not None and not rep["premature"]]
            p50, p95 = p50_p95(v2v)
            f50, f95 = p50_p95(final)
            entry = {"setting": name, "recordings": len(rt_rows), "replies": len(v2v),
                     "v2v_ms_p50": p50, "v2v_ms_p95": p95,
                     "final_turn_v2v_ms_p50": f50, "final_turn_v2v_ms_p95": f95,
                     "subsets": sorted({subset_of(r) for r in rt_rows}),
                     "per_recording": [{"path": row["path"], "final_wait_ms": row[
                         "final_wait_ms"], "v2v_ms": [rep["v2v_ms"] for rep in row["replies"]]}
                         for row in results]}
            out["realtime"].append(entry)
            print(f"realtime {name}: voice-to-voice p50 {p50:.0f} ms, p95 {p95:.0f} ms over "
                  f"{len(v2v)} replies ({len(final)} to the finished turn: p50 {f50:.0f}, "
                  f"p95 {f95:.0f})", flush=True)
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
