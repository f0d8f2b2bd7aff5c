"""Leave-one-speaker-out evaluation of the anger and stress heads of models.emotion.

    scripts/eval_emotion [--quick] [--json out/eval_emotion.json] [--cache out/emotion_features.npz]

Each fold trains the scripts/train_emotion recipe on the other speakers (never on the test
speaker) and scores the test speaker's clips through models.emotion (the pipeline's code).

Conditions (the three training copies): "clean" (the 16 kHz clips), "telrg" (random gain
U(-12, +12) dB, clipped, 8 kHz G.711 μ-law) and "telbp" (the same plus the 300-3400 Hz
band-pass of a real phone line); each scored against a reference from its own channel.
References: "speaker" = the mean of the speaker's own neutral and calm clips without the
clip being scored (the research protocol); "call_3s" / "call_12s" = a SpeakerBaseline fed
the first ~3 s / ~12 s of neutral speech, shrunk toward the population mean as in the
pipeline ("_noprior": without the shrinkage); "cold" = no reference (the population fallback
of the first utterance). Level invariance compares each clip's score at +12 dB (clipped),
-12 dB and through the telephone with its clean score, all against the clean reference.
Head sets: "voice" (the voice features alone) and "voice+embedding" (plus the ASR's voice
embedding, the mean Whisper encoder state: scripts/train_emotion computes it); each is
trained and scored separately, every figure above for both. ``--quick``: 4 folds of 4
speakers.

``--nested`` (issue 12): the nested speaker-independent validation of scripts/nested_emotion
instead: every choice (feature set, C, blend weights) made inside the training actors of
each outer fold, only outer-fold figures reported, for the shipped configuration (the
speaker's whole neutral set, and in-call references from the first ~3 s / ~12 s of speech
without the population prior, as prosody.baseline_prior_s = 0 ships); plus the cue-family
ablation. Writes out/eval_emotion_nested.json. ``--speed-perturb``: the heads are also
trained on speed-perturbed copies (train_emotion.SPEED_COPIES, more voices); the figures
stay those of the clean and telephone copies.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common  # noqa: F401  (puts the project on sys.path)
import numpy as np
from _common import ROOT, machine, shared_data, write_json
from switchboard.models.emotion import (
    HEADS,
    N_FEATURES,
    EmotionModel,
    SpeakerBaseline,
    voice_features,
)
from train_emotion import (
    CHANNEL_COPIES,
    CONDITIONS,
    DEFAULT_CACHE,
    EMBEDDING_CACHE,
    HEAD_KIND,
    HEAD_KINDS,
    LR_C,
    SPEED_COPIES,
    TASKS,
    TRAIN_COPIES,
    Corpus,
    load_corpus,
    load_embeddings,
    load_features,
    speaker_baselines,
    train_spec,
)

SEED = 0
DEFAULT_JSON = str(ROOT / "out" / "eval_emotion.json")
NESTED_JSON = ROOT / "out" / "eval_emotion_nested.json"
#: Conditions scored against a reference from the same channel: the clean clips, the
#: training-like telephone copy, and a band-passed (300-3400 Hz) telephone copy. The others
#: (+12 dB, -12 dB, telephone at the original level) measure invariance against clean.
OWN_REFERENCE = ("clean", "telrg", "telbp")
#: speaker: mean of all the speaker's other neutral/calm clips (the research protocol);
#: call_Ns: a SpeakerBaseline from the first ~N s of neutral speech, shrunk toward the
#: population mean as in the pipeline (noprior: without the shrinkage); cold: no reference.
BASELINE_MODES = ("speaker", "call_12s", "call_3s", "call_12s_noprior", "call_3s_noprior",
                  "cold")


def folds_of(speakers: np.ndarray, quick: bool) -> list[list[str]]:
    names = sorted(np.unique(speakers).tolist())
    if not quick:
        return [[s] for s in names]
    # Contiguous blocks of 4: RAVDESS alternates male and female actors, so 2 of each.
    return [names[i:i + 4] for i in range(0, len(names), 4)]


def metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    pred = score >= 5.0
    return {
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "roc_auc": float(roc_auc_score(y, score)),
        "f1": float(f1_score(y, pred)),
        "n": int(len(y)),
        "n_positive": int(y.sum()),
    }


def call_baselines(feats: np.ndarray, corpus: Corpus, rows: np.ndarray, seconds: float,
                   prior: np.ndarray | None) -> np.ndarray:
    """Per clip in ``rows``: a SpeakerBaseline (shrunk toward ``prior`` when given) fed the
    speaker's neutral/calm clips in a random order, never the clip itself, until it has
    ``seconds`` of speech, as at the start of a call. The order depends on the clip only,
    so every variant sees the same draws."""
    base = corpus.baseline_mask
    durations = corpus.durations
    out = np.empty((int(rows.sum()), feats.shape[1]))
    for k, i in enumerate(np.flatnonzero(rows)):
        pool = np.flatnonzero((corpus.speakers == corpus.speakers[i]) & base)
        pool = np.random.default_rng([SEED, i]).permutation(pool[pool != i])
        ref = SpeakerBaseline(min_seconds=min(3.0, seconds), max_seconds=seconds, prior=prior,
                              dims=feats.shape[1])
        for j in pool:
            ref.add(feats[j], durations[j])
            if ref.ready and ref.seconds >= seconds:
                break
        mean = ref.mean()
        if mean is None:
            raise RuntimeError(f"{corpus.paths[i]}: not enough neutral speech for a reference")
        out[k] = mean
    return out


def scores_of(model: EmotionModel, feats: np.ndarray, refs: np.ndarray | None
              ) -> dict[str, np.ndarray]:
    """Scores of ``feats`` rows (voice features, then the embedding if any) against the
    same rows of ``refs`` (None: the population's reference)."""
    n = N_FEATURES
    rows = []
    for i, f in enumerate(feats):
        ref = None if refs is None else refs[i]
        if len(f) == n:
            rows.append(model.score(f, ref))
        else:
            rows.append(model.score(f[:n], None if ref is None else ref[:n], f[n:],
                                    None if ref is None else ref[n:]))
    return {h: np.array([getattr(s, h) for s in rows]) for h in HEADS}


def speaker_spread(y: np.ndarray, score: np.ndarray, speakers: np.ndarray,
                   n_boot: int = 1000) -> dict[str, object]:
    """Balanced accuracy per held-out speaker, and a 95% interval of the pooled figure from
    resampling whole speakers (the clips of one actor are not independent)."""
    from sklearn.metrics import balanced_accuracy_score

    names = np.unique(speakers)
    per = {s: float(balanced_accuracy_score(y[speakers == s], score[speakers == s] >= 5))
           for s in names}
    rng = np.random.default_rng(SEED)
    idx = {s: np.flatnonzero(speakers == s) for s in names}
    boot = []
    for _ in range(n_boot):
        rows = np.concatenate([idx[s] for s in rng.choice(names, len(names))])
        boot.append(balanced_accuracy_score(y[rows], score[rows] >= 5))
    return {"per_speaker": per, "ci95": [float(np.percentile(boot, 2.5)),
                                         float(np.percentile(boot, 97.5))]}


def distribution(v: np.ndarray) -> dict[str, object]:
    buckets = np.bincount(np.clip(np.floor(v).astype(int), 0, 9), minlength=10)
    return {
        "n": int(len(v)), "mean": float(v.mean()),
        "p10": float(np.percentile(v, 10)), "p50": float(np.percentile(v, 50)),
        "p90": float(np.percentile(v, 90)), "histogram": buckets.tolist(),
    }


def invariance(delta: np.ndarray) -> dict[str, float]:
    d = np.abs(delta)
    return {"mean": float(d.mean()), "p95": float(np.percentile(d, 95)), "max": float(d.max()),
            "over_1": int((d > 1).sum()), "n": int(len(d))}


def cost(model: EmotionModel, corpus: Corpus, n: int) -> dict[str, object]:
    """Features + score per utterance on one thread, on the clips nearest 3.5 s and on
    ~10 s utterances (three clips joined). With embedding heads, the score reads an
    embedding too (the encoder pass that makes it belongs to the ASR's final decode)."""
    from threadpoolctl import threadpool_limits

    durations = corpus.durations
    near = np.argsort(np.abs(durations - 3.5))[:n]
    ref, emb = model.fallback_baseline, model.fallback_embedding
    out: dict[str, object] = {}
    with threadpool_limits(1):
        for label, clips in (
            ("3.5s", [corpus.audio[i] for i in near]),
            ("10s", [np.concatenate([corpus.audio[i] for i in near[k:k + 3]])
                     for k in range(0, n - 2, 3)]),
        ):
            for x in clips[:3]:  # warm-up
                model.score(voice_features(x, corpus.rate), ref, emb, emb)
            ms = []
            for x in clips:
                t0 = time.perf_counter()
                model.score(voice_features(x, corpus.rate), ref, emb, emb)
                ms.append((time.perf_counter() - t0) * 1000)
            out[label] = {
                "n": len(ms), "audio_s": float(np.mean([len(x) for x in clips]) / corpus.rate),
                "mean_ms": float(np.mean(ms)), "p50_ms": float(np.percentile(ms, 50)),
                "p95_ms": float(np.percentile(ms, 95)),
            }
    return out


def evaluate(corpus: Corpus, feats: dict[str, np.ndarray], quick: bool,
             lr_c: float = LR_C, verbose: bool = True
             ) -> tuple[dict[str, dict[str, np.ndarray]], EmotionModel]:
    """Scores (0-10) of every clip from the fold that held its speaker out, keyed
    "<condition>/<reference>" then head; returns also the last fold's model. Rows of
    ``feats`` wider than the voice features carry the voice embedding after them, and the
    embedding heads are trained and scored."""
    spk, base = corpus.speakers, corpus.baseline_mask
    speaker_ref = {c: speaker_baselines(feats[c], spk, base) for c in OWN_REFERENCE}
    n_voice = N_FEATURES
    normalised = [feats[c][:, :n_voice] - speaker_ref[c][:, :n_voice] for c in TRAIN_COPIES]
    raw = [feats[c][:, :n_voice] for c in TRAIN_COPIES]
    embeddings = channel = None
    if feats["clean"].shape[1] > n_voice:
        embeddings = ([feats[c][:, n_voice:] - speaker_ref[c][:, n_voice:]
                       for c in TRAIN_COPIES], [feats[c][:, n_voice:] for c in TRAIN_COPIES])
        channel = [feats[c] - feats["clean"] for c in CHANNEL_COPIES]
    keys = [f"{c}/{m}" for c in ("clean", "telrg") for m in BASELINE_MODES]
    keys += [f"telbp/{m}" for m in ("speaker", "call_12s", "call_3s", "cold")]
    keys += [f"{c}/speaker" for c in ("up12", "dn12", "tel")]
    n = len(spk)
    scores = {key: {h: np.full(n, np.nan) for h in HEADS} for key in keys}
    model = None
    for k, held_out in enumerate(folds_of(spk, quick)):
        t0 = time.perf_counter()
        test = np.isin(spk, held_out)
        # The channel changes the heads learn to ignore come from the training speakers.
        model = EmotionModel.from_spec(train_spec(
            normalised, raw, corpus, ~test, lr_c, embeddings=embeddings, channel=channel))
        prior = model.fallback_baseline
        if embeddings is not None:
            prior = np.concatenate([prior, model.fallback_embedding])
        for key in keys:
            cond, mode = key.split("/")
            # Transformed copies are scored against the clean reference (only the clip moves),
            # except where the reference comes from the same channel.
            ref_cond = cond if cond in OWN_REFERENCE else "clean"
            if mode == "speaker":
                ref = speaker_ref[ref_cond][test]
            elif mode == "cold":
                ref = None
            else:
                seconds = float(mode.split("_")[1].rstrip("s"))
                ref = call_baselines(feats[ref_cond], corpus, test, seconds,
                                     None if mode.endswith("noprior") else prior)
            got = scores_of(model, feats[cond][test], ref)
            for h in HEADS:
                scores[key][h][test] = got[h]
        if verbose:
            print(f"fold {k + 1:2d} {','.join(held_out)} {time.perf_counter() - t0:.1f} s",
                  flush=True)
    assert model is not None
    return scores, model


def summarise(corpus: Corpus, scores: dict[str, dict[str, np.ndarray]]) -> dict[str, object]:
    emo = corpus.emotions
    angry = emo == "angry"
    calm = corpus.baseline_mask
    res: dict[str, object] = {}
    # Discrimination per condition, baseline mode and task.
    tasks: dict[str, dict[str, object]] = {}
    for key in (k for k in scores if k.split("/")[0] in OWN_REFERENCE):
        s = scores[key]
        vs_calm = angry | calm
        af = np.isin(emo, TASKS["stress"][0])
        stress_rows = af | calm
        tasks[key] = {
            "angry_vs_rest/anger": metrics(angry.astype(int), s["anger"]),
            "angry_vs_calm/anger": metrics(angry[vs_calm].astype(int), s["anger"][vs_calm]),
            "angry_vs_calm/anger_vs_calm": metrics(angry[vs_calm].astype(int),
                                                   s["anger_vs_calm"][vs_calm]),
            "stress/stress": metrics(af[stress_rows].astype(int), s["stress"][stress_rows]),
        }
    res["discrimination"] = tasks
    spread: dict[str, object] = {}
    for key in ("clean/speaker", "telrg/speaker", "telbp/speaker"):
        s = scores[key]
        vs_calm = angry | calm
        spread[f"{key}/angry_vs_rest/anger"] = speaker_spread(
            angry.astype(int), s["anger"], corpus.speakers)
        spread[f"{key}/angry_vs_calm/anger_vs_calm"] = speaker_spread(
            angry[vs_calm].astype(int), s["anger_vs_calm"][vs_calm], corpus.speakers[vs_calm])
    res["speaker_spread"] = spread
    # Mean score per emotion (speaker reference): how the heads treat the other emotions.
    res["mean_score_by_emotion"] = {
        key: {h: {e: float(scores[key][h][emo == e].mean()) for e in sorted(set(emo))}
              for h in HEADS}
        for key in ("clean/speaker", "telrg/speaker", "telbp/speaker")
    }
    # Calibration of the 0-10 scale.
    groups = {"angry": angry, "neutral_calm": calm, "other": ~(angry | calm)}
    calib: dict[str, object] = {}
    for key in ("clean/speaker", "telrg/speaker", "telbp/speaker"):
        for h in ("anger", "anger_vs_calm", "stress"):
            v = scores[key][h]
            buckets = np.clip(np.floor(v).astype(int), 0, 9)
            calib[f"{key}/{h}"] = {
                **{g: distribution(v[m]) for g, m in groups.items()},
                "angry_fraction_by_bucket": [
                    float(angry[buckets == b].mean()) if (buckets == b).any() else None
                    for b in range(10)
                ],
            }
    res["calibration"] = calib
    # Level invariance: |score change| against the clean clip, both with the clean reference.
    inv: dict[str, object] = {}
    for h in HEADS:
        clean = scores["clean/speaker"][h]
        inv[h] = {c: invariance(scores[f"{c}/speaker"][h] - clean)
                  for c in ("up12", "dn12", "tel")}
        inv[h]["telrg_own_reference"] = invariance(scores["telrg/speaker"][h] - clean)
        inv[h]["telbp_own_reference"] = invariance(scores["telbp/speaker"][h] - clean)
    res["level_invariance"] = inv
    return res


def print_report(res: dict) -> None:
    def m3(m: dict) -> str:
        return f"{m['balanced_accuracy']:.3f}/{m['roc_auc']:.3f}/{m['f1']:.2f}"

    print("\nbalanced accuracy / ROC-AUC / F1 (threshold 5 on 0-10)")
    cols = ("angry_vs_rest/anger", "angry_vs_calm/anger", "angry_vs_calm/anger_vs_calm",
            "stress/stress")
    print(f"{'condition/reference':23} " + " ".join(f"{c:>28}" for c in cols))
    for key, t in res["discrimination"].items():
        print(f"{key:23} " + " ".join(f"{m3(t[c]):>28}" for c in cols))
    print("\nbalanced accuracy: 95% interval resampling speakers | worst and best speaker")
    for key, d in res["speaker_spread"].items():
        per = d["per_speaker"]
        lo, hi = min(per, key=per.get), max(per, key=per.get)
        print(f"  {key:46} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}] | {lo} {per[lo]:.3f}, "
              f"{hi} {per[hi]:.3f}")
    print("\nmean score by emotion (clean/speaker)")
    for h, by in res["mean_score_by_emotion"]["clean/speaker"].items():
        print(f"  {h:14} " + " ".join(f"{e} {v:.1f}" for e, v in by.items()))
    print("\ncalibration: mean p10 p50 p90 | histogram of integer buckets 0..9")
    for key, c in res["calibration"].items():
        if not key.endswith(("/anger", "/anger_vs_calm")):
            continue
        for g in ("angry", "neutral_calm", "other"):
            d = c[g]
            print(f"  {key:28} {g:12} {d['mean']:4.1f} {d['p10']:4.1f} {d['p50']:4.1f} "
                  f"{d['p90']:4.1f} | {d['histogram']}")
        frac = " ".join("  - " if f is None else f"{f:.2f}" for f in c["angry_fraction_by_bucket"])
        print(f"  {key:28} {'P(angry)':12} by bucket: {frac}")
    print("\nlevel invariance |Δ score|: mean p95 max count>1")
    for h, by in res["level_invariance"].items():
        for c, d in by.items():
            print(f"  {h:14} {c:20} {d['mean']:.3f} {d['p95']:.3f} {d['max']:.2f} "
                  f"{d['over_1']}/{d['n']}")


def print_cost(cost_ms: dict) -> None:
    print("\ncost per utterance (features + score, one thread)")
    for label, c in cost_ms.items():
        print(f"  {label:5} ({c['audio_s']:.1f} s audio, n={c['n']}): p50 {c['p50_ms']:.1f} ms, "
              f"p95 {c['p95_ms']:.1f} ms, mean {c['mean_ms']:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 folds of 4 speakers")
    ap.add_argument("--json", default=DEFAULT_JSON)
    ap.add_argument("--cache", default=str(DEFAULT_CACHE), help="'' to disable")
    ap.add_argument("--embedding-cache", default=str(EMBEDDING_CACHE), help="'' to disable")
    ap.add_argument("--nested", action="store_true",
                    help="nested speaker-independent validation (scripts/nested_emotion)")
    ap.add_argument("--all-features", action="store_true",
                    help="with --nested: keep every feature (choose C and the blend only)")
    ap.add_argument("--no-ablation", action="store_true",
                    help="with --nested: skip the cue-family ablation")
    ap.add_argument("--speed-perturb", action="store_true",
                    help="with --nested: train on speed-perturbed copies too")
    ap.add_argument("--kind", choices=HEAD_KINDS, default=HEAD_KIND,
                    help="with --nested: the heads' kind (default: what ships)")
    args = ap.parse_args()
    if args.speed_perturb and not args.nested:
        ap.error("--speed-perturb goes with --nested")

    t0 = time.perf_counter()
    corpus = load_corpus(shared_data())
    speed = tuple(SPEED_COPIES) if args.speed_perturb else ()
    feats = load_features(corpus, CONDITIONS + speed,
                          Path(args.cache) if args.cache else None)
    embs = load_embeddings(corpus, CONDITIONS + speed,
                           Path(args.embedding_cache) if args.embedding_cache else None)
    if args.nested:
        nested_main(corpus, feats, embs, t0,
                    args.json if args.json != DEFAULT_JSON else str(NESTED_JSON),
                    args.all_features, not args.no_ablation, TRAIN_COPIES + speed, args.kind)
        return
    res = {}
    for heads, matrices in (
        ("voice", feats),
        ("voice+embedding", {c: np.hstack([feats[c], embs[c]]) for c in CONDITIONS}),
    ):
        print(f"\n== heads: {heads}", flush=True)
        scores, model = evaluate(corpus, feats=matrices, quick=args.quick)
        res[heads] = summarise(corpus, scores)
        print_report(res[heads])
    cost_ms = cost(model, corpus, 30 if args.quick else 120)
    print_cost(cost_ms)
    write_json(args.json, {
        "machine": machine(),
        "protocol": "quick: 4 folds of 4 speakers" if args.quick
        else "leave-one-speaker-out, 16 folds",
        "heads": f"logistic regression per head, C={LR_C:g}, balanced classes, trained on "
                 f"the copies {', '.join(TRAIN_COPIES)}",
        "embedding": model.meta["embedding"],
        "clips": len(corpus.paths),
        "results": res,
        "cost": cost_ms,
        "wall_s": time.perf_counter() - t0,
    })


def nested_main(corpus: Corpus, feats: dict[str, np.ndarray], embs: dict[str, np.ndarray],
                t0: float, json_path: str, all_features: bool = False,
                with_ablation: bool = True,
                train_copies: tuple[str, ...] = TRAIN_COPIES, kind: str = HEAD_KIND) -> None:
    """The nested evaluation and the cue-family ablation, printed and written to JSON."""
    import nested_emotion

    sets = nested_emotion.feature_sets()
    if all_features:
        sets = {"all": sets["all"]}

    def refs(matrix: np.ndarray, test: np.ndarray, seconds: float) -> np.ndarray:
        return call_baselines(matrix, corpus, test, seconds, None)

    print("== nested selection", flush=True)
    res = nested_emotion.run(corpus, feats, embs, refs, sets=sets, train_copies=train_copies,
                             kind=kind)
    print_nested(res)
    ablation = None
    if with_ablation:
        print("== cue families, voice heads alone, leave one actor out (C = LR_C)", flush=True)
        ablation = nested_emotion.ablation(corpus, feats, kind=kind)
    write_json(json_path, {
        "machine": machine(),
        "protocol": "nested: outer folds leave 2 actors out (8), inner 4 blocks of the 14 "
                    "training actors; every choice inside, outer figures only",
        "training_copies": list(train_copies),
        "head_kind": kind,
        "grid": {"feature_sets": list(sets),
                 "voice_c": nested_emotion.VOICE_C, "embedding_c": nested_emotion.EMB_C,
                 "voice_weight": nested_emotion.WEIGHTS,
                 "disagreement": nested_emotion.DISAGREEMENTS, "tie": nested_emotion.TIE},
        "clips": len(corpus.paths), "results": res, "ablation": ablation,
        "wall_s": time.perf_counter() - t0,
    })


def print_nested(res: dict) -> None:
    for label in ("shipped_recipe", "voice_heads_of_the_same_folds"):
        print(f"\n{label}: balanced accuracy / ROC-AUC / F1 at 5 | disgust FA | worst actor")
        for key, r in res[label].items():
            a, c = r["angry_vs_rest/anger"], r["angry_vs_calm/anger_vs_calm"]
            worst = r.get("angry_vs_rest/per_speaker", {}).get("worst", ["-", float("nan")])
            veto = r.get("vetoed_angry")
            print(f"  {key:18} rest {a['balanced_accuracy']:.3f}/{a['roc_auc']:.3f}/{a['f1']:.2f}"
                  f"  calm {c['balanced_accuracy']:.3f}/{c['roc_auc']:.3f}/{c['f1']:.2f}"
                  f"  disgust {r['disgust_false_alarm']:.2f}  worst {worst[0]} {worst[1]:.3f}"
                  + "".join(f"  {i} caught {v:.2f}"
                            for i, v in r["angry_caught_by_intensity"].items())
                  + (f"  vetoed {veto['total']}/{veto['seen']} (max {veto['worst'][0]} "
                     f"{veto['worst'][1]})" if veto else ""))


if __name__ == "__main__":
    main()
