"""Nested speaker-independent validation of the anger heads (issue 12), for eval_emotion.

    scripts/eval_emotion --nested [--json out/eval_emotion_nested.json]

Outer folds leave two RAVDESS actors out (8 folds of a consecutive pair, one male and one
female: leave-one-out would double a run that already takes tens of minutes on two shared
cores). Inside each outer fold, every choice is made on the 14 training actors alone, by
inner folds that leave blocks of them out (4 blocks of 2-4 actors): the voice heads'
feature set (all cue families, or all but one) and regularisation C, the embedding heads'
C, and the blend weight per head. The outer pair's clips are then scored once by heads
refitted on all 14 with those choices; only these outer scores are reported. Nothing is
chosen on the outer pair.

Selection rule, per head (anger on angry vs rest, anger_vs_calm on angry vs neutral/calm):
the inner folds' balanced accuracy at the fixed threshold (score 5), pooled over the inner
test actors and the clean and telephone copies; among the settings within TIE of the
best, the simplest wins (voice heads alone before a blend, fewer features, a stronger
penalty). The threshold is not tuned: the heads are trained with balanced classes, so 5
already sits at the balanced point, and one knob fewer is one fewer way to overfit.

Every blend is fail safe (models.emotion.blend): where the voice and embedding heads
disagree by more than a limit, the voice heads' reading takes over. The limit is one of the
inner choices too (DISAGREEMENTS, made on the anger head, which decides escalations, and
used by every head; ties go to the stricter limit): no blend is ever without one. The report
checks what it is for: per outer actor, the angry clips the voice heads alone score angry
that the shipped score calls calm ("vetoed").

Also measured, voice heads alone, leave one actor out at the recipe's C: what each cue
family adds to the arousal (prosody) features, and what the full set loses without it.

``--kind softmax`` (eval_emotion) runs the same with softmax heads: one classifier of the 8
emotions per head set, fitted once per training set and read by each head as its task.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score
from switchboard.models.emotion import (
    FEATURE_GROUPS,
    FEATURE_NAMES,
    HEADS,
    N_FEATURES,
    EmotionModel,
    blend,
    head_from_spec,
)
from train_emotion import (
    CHANNEL_COPIES,
    EMBEDDING_C,
    HEAD_KIND,
    LR_C,
    TRAIN_COPIES,
    Corpus,
    _population_mean,
    embedding_setup,
    fit_logistic,
    fit_softmax,
    softmax_head,
    speaker_baselines,
    task_rows,
    train_spec,
)

#: Inner criterion ties: settings within this much balanced accuracy count as equal.
TIE = 0.005
#: Voice and embedding probabilities further apart than the limit: the voice reading
#: takes over. The inner folds choose the limit among these (the first: the default
#: elsewhere).
DISAGREEMENTS = (0.5, 0.7)
DISAGREEMENT = DISAGREEMENTS[0]
VOICE_C = (0.005, 0.02, 0.1)
EMB_C = (0.002, EMBEDDING_C, 0.02)
WEIGHTS = (1.0, 0.75, 0.5, 0.25)  # the voice heads' share; 1 = voice heads alone
#: Copies the inner criterion and the outer report score (each against its own channel's
#: reference): as recorded and through a G.711 leg at a random gain.
SCORED = ("clean", "telrg")
SELECTED_HEADS = ("anger", "anger_vs_calm")
OUTER = 2  # actors per outer fold


def feature_sets() -> dict[str, np.ndarray]:
    """Column masks: all features, and all but each cue family."""
    names = np.array(FEATURE_NAMES)
    sets = {"all": np.ones(N_FEATURES, bool)}
    for g, cols in FEATURE_GROUPS.items():
        sets[f"all-{g}"] = ~np.isin(names, cols)
    return sets


def ablation_sets() -> dict[str, np.ndarray]:
    """Arousal alone, arousal plus each other family, all, and all but each family."""
    names = np.array(FEATURE_NAMES)
    arousal = np.isin(names, FEATURE_GROUPS["arousal"])
    sets = {"arousal": arousal}
    for g, cols in FEATURE_GROUPS.items():
        if g != "arousal":
            sets[f"arousal+{g}"] = arousal | np.isin(names, cols)
    sets.update(feature_sets())
    return sets


class Data:
    """Features (and embeddings) of every copy, relative to the speaker's neutral mean."""

    def __init__(self, corpus: Corpus, feats: dict[str, np.ndarray],
                 embs: dict[str, np.ndarray] | None,
                 train_copies: tuple[str, ...] = TRAIN_COPIES, kind: str = HEAD_KIND):
        self.corpus = corpus
        self.train_copies = train_copies  # the copies every head is fitted on
        self.kind = kind  # train_emotion.HEAD_KINDS
        # One emotion classifier serves every head: fitted once per training set.
        self._classifiers: dict[tuple, dict] = {}
        self.spk, self.emo = corpus.speakers, corpus.emotions
        base = corpus.baseline_mask
        self.feats, self.embs = feats, embs
        self.norm = {c: feats[c] - speaker_baselines(feats[c], self.spk, base)
                     for c in feats}
        self.emb_norm = {c: embs[c] - speaker_baselines(embs[c], self.spk, base)
                         for c in embs or {}}
        self.channel = None
        if embs:
            clean = np.hstack([feats["clean"], embs["clean"]])
            self.channel = np.stack([np.hstack([feats[c], embs[c]]) - clean
                                     for c in CHANNEL_COPIES])
        self.labels = {h: task_rows(self.emo, h) for h in HEADS}


def _prob(spec: dict, x: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
    if cols is not None:
        x = x[:, cols]
    return head_from_spec(spec, x.shape[1]).probabilities(x)


def _fit(d: Data, head: str, train: np.ndarray, c: float, inputs: tuple,
         x_of: Callable[[str, np.ndarray], np.ndarray], channel=None) -> dict:
    """``head`` fitted on the training copies' rows ``x_of(copy, rows)`` (``inputs``
    names them): a logistic regression on the head's task, or the emotion classifier of
    every training row, fitted once for every head."""
    if d.kind == "softmax":
        key = (inputs, train.tobytes(), c)
        if key not in d._classifiers:
            x = np.vstack([x_of(k, train) for k in d.train_copies])
            emotions = np.tile(d.emo[train], len(d.train_copies))
            d._classifiers[key] = fit_softmax(x, emotions, c, channel)
        return softmax_head(d._classifiers[key], head)
    rows, y = d.labels[head]
    sel = rows & train
    x = np.vstack([x_of(k, sel) for k in d.train_copies])
    return fit_logistic(x, np.tile(y[sel], len(d.train_copies)), c, channel)


def _fit_voice(d: Data, head: str, train: np.ndarray, c: float, cols: np.ndarray) -> dict:
    return _fit(d, head, train, c, ("voice", cols.tobytes()),
                lambda copy, rows: d.norm[copy][rows][:, cols])


def _fit_emb(d: Data, head: str, train: np.ndarray, c: float) -> dict:
    changes = d.channel[:, train].reshape(-1, d.channel.shape[2])
    return _fit(d, head, train, c, ("embedding",),
                lambda copy, rows: _emb_x(d, copy, rows), changes)


def _emb_x(d: Data, copy: str, rows: np.ndarray) -> np.ndarray:
    return np.hstack([d.norm[copy][rows], d.emb_norm[copy][rows]])


def _ba(y: np.ndarray, p: np.ndarray) -> float:
    return float(balanced_accuracy_score(y, p >= 0.5))


def inner_blocks(speakers: list[str]) -> list[list[str]]:
    """Four blocks of consecutive actors (RAVDESS alternates male and female)."""
    return [speakers[k:k + 4] for k in range(0, len(speakers), 4)]


def choose(d: Data, train: np.ndarray, sets: dict[str, np.ndarray],
           with_embedding: bool = True) -> dict[str, dict]:
    """Per selected head, the setting the inner folds prefer (training actors only)."""
    speakers = sorted(np.unique(d.spk[train]).tolist())
    blocks = inner_blocks(speakers)
    # Out-of-fold probabilities of every inner test row, per setting.
    pv: dict[tuple, dict[str, np.ndarray]] = {}
    pe: dict[tuple, dict[str, np.ndarray]] = {}
    n = len(d.spk)
    for block in blocks:
        test = np.isin(d.spk, block)
        tr = train & ~test
        for head in SELECTED_HEADS:
            rows = d.labels[head][0] & test
            for name, cols in sets.items():
                for c in VOICE_C:
                    spec = _fit_voice(d, head, tr, c, cols)
                    for copy in SCORED:
                        out = pv.setdefault((head, name, c), {}).setdefault(
                            copy, np.full(n, np.nan))
                        out[rows] = _prob(spec, d.norm[copy][rows], cols)
            if with_embedding:
                for c in EMB_C:
                    spec = _fit_emb(d, head, tr, c)
                    for copy in SCORED:
                        out = pe.setdefault((head, c), {}).setdefault(copy, np.full(n, np.nan))
                        out[rows] = _prob(spec, _emb_x(d, copy, rows))
    chosen: dict[str, dict] = {}
    for head in SELECTED_HEADS:
        # The anger head (first) chooses the fail-safe limit; the others blend with it.
        limits = DISAGREEMENTS if not chosen else (chosen[SELECTED_HEADS[0]]["disagreement"],)
        rows, y = d.labels[head]
        rows = rows & train
        yy = np.concatenate([y[rows]] * len(SCORED))

        def pooled(p: dict[str, np.ndarray], rows=rows) -> np.ndarray:
            return np.concatenate([p[c][rows] for c in SCORED])

        cands = []
        for name, cols in sets.items():
            for c in VOICE_C:
                v = pooled(pv[(head, name, c)])
                # Simplicity: voice alone first, then fewer features, then stronger penalty.
                cands.append((_ba(yy, v), (0, int(cols.sum()), c, 0),
                              {"features": name, "voice_c": c, "voice_weight": 1.0,
                               "emb_c": None, "disagreement": limits[0]}))
        if with_embedding:
            best_voice = max(cands, key=lambda t: (t[0], -t[1][1], -t[1][2]))[2]
            v = pooled(pv[(head, best_voice["features"], best_voice["voice_c"])])
            for ce in EMB_C:
                e = pooled(pe[(head, ce)])
                for w in WEIGHTS[1:]:
                    for limit in limits:
                        # Ties: the larger voice share, the stronger embedding penalty,
                        # then the stricter limit.
                        cands.append((_ba(yy, blend(v, e, w, limit)),
                                      (1, -w, ce, limit),
                                      {**best_voice, "voice_weight": w, "emb_c": ce,
                                       "disagreement": limit}))
        top = max(c[0] for c in cands)
        near = [c for c in cands if c[0] >= top - TIE]
        pick = min(near, key=lambda t: t[1])
        chosen[head] = {**pick[2], "inner_ba": pick[0], "inner_best": top}
    return chosen


def fit_outer(d: Data, train: np.ndarray, chosen: dict[str, dict],
              sets: dict[str, np.ndarray]) -> dict:
    """A weights spec (the pipeline's format) for the chosen settings, fitted on ``train``.

    The stress head (not a target here) follows anger_vs_calm's settings."""
    corpus = d.corpus
    raw = [d.feats[c] for c in TRAIN_COPIES]
    norm = [d.norm[c] for c in TRAIN_COPIES]
    spec = train_spec(norm, raw, corpus, train, kind=d.kind)
    setup = embedding_setup()
    spec["embedding"] = {"asr_model": setup["asr_model"], "dims": int(d.embs["clean"].shape[1]),
                         "last_s": setup["last_s"], "computed_with": setup}
    spec["fallback_embedding"] = _population_mean(
        [d.embs[c] for c in TRAIN_COPIES], corpus, train).tolist()
    spec["embedding_heads"] = {}
    per_head = {**chosen, "stress": chosen["anger_vs_calm"]}
    for head in HEADS:
        ch = per_head[head]
        cols = sets[ch["features"]]
        spec["heads"][head] = expand(_fit_voice(d, head, train, ch["voice_c"], cols), cols)
        if ch["emb_c"] is not None:
            spec["embedding_heads"][head] = _fit_emb(d, head, train, ch["emb_c"])
        else:  # never read: a voice weight of 1 leaves the embedding head out of the blend
            spec["embedding_heads"][head] = _fit_emb(d, head, train, EMBEDDING_C)
    spec["embedding"]["voice_weight"] = {h: per_head[h]["voice_weight"] for h in HEADS}
    spec["embedding"]["disagreement"] = chosen[SELECTED_HEADS[0]].get("disagreement",
                                                                       DISAGREEMENT)
    spec["embedding"]["channel_copies"] = list(CHANNEL_COPIES)
    spec["training_copies"] = list(d.train_copies)
    spec["selection"] = {h: {k: v for k, v in per_head[h].items()
                             if k in ("features", "voice_c", "emb_c", "voice_weight")}
                         for h in HEADS}
    return spec


def expand(spec: dict, cols: np.ndarray) -> dict:
    """A head fitted on the columns ``cols`` as a head over every feature (zero weights,
    unit scale elsewhere), so the pipeline reads it like any other."""
    out = dict(spec)
    for key, fill in (("scaler_mean", 0.0), ("scaler_scale", 1.0), ("coef", 0.0)):
        value = np.asarray(spec[key])
        full = np.full(value.shape[:-1] + (N_FEATURES,), fill)  # coef: a row per class
        full[..., cols] = value
        out[key] = full.tolist()
    if not cols.all():
        out["features_used"] = [n for n, k in zip(FEATURE_NAMES, cols, strict=True) if k]
    return out


def metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    pred = score >= 5
    return {"balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "roc_auc": float(roc_auc_score(y, score)), "f1": float(f1_score(y, pred)),
            "n": int(len(y))}


def _fast_ba(y: np.ndarray, pred: np.ndarray) -> float:
    """Balanced accuracy of 0/1 predictions (sklearn's, without its overhead: the
    bootstraps below call it tens of thousands of times)."""
    pos = y.astype(bool)
    return 0.5 * (pred[pos].mean() + (~pred[~pos]).mean())


def per_speaker(y: np.ndarray, score: np.ndarray, spk: np.ndarray,
                n_boot: int = 1000) -> dict[str, object]:
    """Balanced accuracy per outer actor, with a 95% interval per actor (resampling the
    actor's clips) and for the pooled figure (resampling actors)."""
    rng = np.random.default_rng(0)
    names = np.unique(spk)
    out: dict[str, object] = {}
    for s in names:
        i = np.flatnonzero(spk == s)
        boots = []
        for _ in range(n_boot):
            j = rng.choice(i, len(i))
            if 0 < y[j].sum() < len(j):
                boots.append(_fast_ba(y[j], score[j] >= 5))
        out[s] = {"ba": float(balanced_accuracy_score(y[i], score[i] >= 5)),
                  "ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]}
    idx = {s: np.flatnonzero(spk == s) for s in names}
    pooled = []
    for _ in range(n_boot):
        j = np.concatenate([idx[s] for s in rng.choice(names, len(names))])
        pooled.append(_fast_ba(y[j], score[j] >= 5))
    worst = min(out, key=lambda s: out[s]["ba"])
    return {"per_speaker": out, "worst": [worst, out[worst]["ba"]],
            "ci95": [float(np.percentile(pooled, 2.5)), float(np.percentile(pooled, 97.5))]}


def caught_by_intensity(anger: np.ndarray, angry: np.ndarray,
                        intensities: np.ndarray | None) -> dict[str, float]:
    """Share of the angry clips scored 5 or more, per acted intensity ({} if unknown)."""
    if intensities is None:
        return {}
    return {i: float((anger[angry & (intensities == i)] >= 5).mean())
            for i in sorted(set(intensities[angry]))}


def report(d: Data, scores: dict[str, np.ndarray], voice: dict[str, np.ndarray],
           spread: bool = True) -> dict[str, object]:
    """Outer-fold figures of one set of scores ("copy/reference" -> 0-10 per head)."""
    emo, spk = d.emo, d.spk
    angry = emo == "angry"
    calm = d.corpus.baseline_mask
    out: dict[str, object] = {}
    for key, s in scores.items():
        vs_calm = angry | calm
        r = {"angry_vs_rest/anger": metrics(angry, s["anger"]),
             "angry_vs_calm/anger_vs_calm": metrics(angry[vs_calm], s["anger_vs_calm"][vs_calm]),
             "disgust_false_alarm": float((s["anger"][emo == "disgust"] >= 5).mean()),
             "false_alarm_by_emotion": {e: float((s["anger"][emo == e] >= 5).mean())
                                        for e in sorted(set(emo)) if e != "angry"},
             "angry_caught_by_intensity": caught_by_intensity(
                 s["anger"], angry, d.corpus.intensities)}
        if spread:
            r["angry_vs_rest/per_speaker"] = per_speaker(angry, s["anger"], spk)
            r["angry_vs_calm/per_speaker"] = per_speaker(
                angry[vs_calm], s["anger_vs_calm"][vs_calm], spk[vs_calm])
        if key in voice:
            # The fail-safe check: angry clips the voice heads alone call angry, scored calm.
            seen = angry & (voice[key] >= 5)
            vetoed = {sp: int((seen & (spk == sp) & (s["anger"] < 5)).sum())
                      for sp in np.unique(spk)}
            r["vetoed_angry"] = {"total": int(sum(vetoed.values())), "seen": int(seen.sum()),
                                 "worst": max(vetoed.items(), key=lambda t: t[1]),
                                 "per_speaker": vetoed}
        out[key] = r
    return out


#: The v2 recipe (models/data/emotion_v2.json): fixed choices, always blended.
V2_RECIPE = {h: {"features": "all", "voice_c": LR_C, "voice_weight": 0.5,
                 "emb_c": EMBEDDING_C} for h in SELECTED_HEADS}


def run(corpus: Corpus, feats: dict[str, np.ndarray], embs: dict[str, np.ndarray],
        call_refs, verbose: bool = True, fixed: dict[str, dict] | None = None,
        disagreement: float | None | str = "chosen",
        sets: dict[str, np.ndarray] | None = None,
        train_copies: tuple[str, ...] = TRAIN_COPIES,
        kind: str = HEAD_KIND) -> dict[str, object]:
    """The nested evaluation; ``call_refs(feats_matrix, test_rows, seconds)``: the in-call
    references (eval_emotion.call_baselines without the population prior). ``fixed``:
    the same outer folds with these choices instead of the inner folds' (e.g. V2_RECIPE),
    for comparison. ``disagreement``: the fail-safe limit, "chosen" (the inner folds';
    DISAGREEMENT for a fixed recipe), a number, or None (the v2 blend). ``sets``: the
    feature sets to choose from (default :func:`feature_sets`; ``{"all": ...}``: C and
    blend only). ``train_copies``: the copies the heads are fitted on (TRAIN_COPIES, or
    with train_emotion.SPEED_COPIES too); the figures are always the clean and telephone
    copies'. ``kind``: the heads' kind (train_emotion.HEAD_KINDS)."""
    d = Data(corpus, feats, embs, train_copies, kind)
    sets = feature_sets() if sets is None else sets
    spk = d.spk
    n = len(spk)
    keys = [f"{c}/{m}" for c in ("clean", "telrg") for m in ("speaker", "call_3s", "call_12s")]
    keys.append("telbp/speaker")
    shipped = {k: {h: np.full(n, np.nan) for h in HEADS} for k in keys}
    voice_only = {k: np.full(n, np.nan) for k in keys}
    choices = {}
    names = sorted(np.unique(spk).tolist())
    for k, held in enumerate([names[i:i + OUTER] for i in range(0, len(names), OUTER)]):
        t0 = time.perf_counter()
        test = np.isin(spk, held)
        held = ",".join(held)
        train = ~test
        chosen = choose(d, train, sets) if fixed is None else {
            h: {**c, "inner_ba": float("nan")} for h, c in fixed.items()}
        choices[held] = chosen
        spec = fit_outer(d, train, chosen, sets)
        if disagreement != "chosen":
            spec["embedding"]["disagreement"] = disagreement
        model = EmotionModel.from_spec(spec)
        for key in keys:
            copy, mode = key.split("/")
            both = np.hstack([d.feats[copy], d.embs[copy]])
            if mode == "speaker":
                ref = np.hstack([d.feats[copy] - d.norm[copy], d.embs[copy] - d.emb_norm[copy]])
                ref = ref[test]
            else:
                ref = call_refs(both, test, float(mode.split("_")[1].rstrip("s")))
            for j, i in enumerate(np.flatnonzero(test)):
                s = model.score(both[i, :N_FEATURES], ref[j, :N_FEATURES], both[i, N_FEATURES:],
                                ref[j, N_FEATURES:])
                for h in HEADS:
                    shipped[key][h][i] = getattr(s, h)
                voice_only[key][i] = s.voice_anger
        if verbose:
            print(f"outer {k + 1:2d} {held}: " + "; ".join(
                f"{h} {c['features']} C={c['voice_c']:g} w={c['voice_weight']:g}"
                + (f" Ce={c['emb_c']:g} limit={spec['embedding']['disagreement']}"
                   if c["emb_c"] else "")
                + f" (inner {c['inner_ba']:.3f})" for h, c in chosen.items())
                + f" {time.perf_counter() - t0:.0f} s", flush=True)
    res = {"shipped_recipe": report(d, shipped, voice_only),
           "voice_heads_of_the_same_folds": report(
               d, {k: {"anger": voice_only[k], "anger_vs_calm": shipped[k]["anger_vs_calm"]}
                   for k in keys}, {}, spread=False),
           "choices": choices}
    return res


def ablation(corpus: Corpus, feats: dict[str, np.ndarray], verbose: bool = True,
             kind: str = HEAD_KIND) -> dict[str, dict[str, float]]:
    """Voice heads alone, outer folds (leave one actor out), per feature set, at the
    recipe's C (LR_C: choosing C inside for every set costs 16x more fits): angry vs rest
    and vs neutral/calm balanced accuracy, ROC-AUC, worst actor, disgust false alarms."""
    d = Data(corpus, feats, None, kind=kind)
    n = len(d.spk)
    angry = d.emo == "angry"
    calm = angry | d.corpus.baseline_mask
    out = {}
    for name, cols in ablation_sets().items():
        p = {h: np.full(n, np.nan) for h in SELECTED_HEADS}
        for held in sorted(np.unique(d.spk).tolist()):
            test = d.spk == held
            for h in SELECTED_HEADS:
                spec = _fit_voice(d, h, ~test, LR_C, cols)
                p[h][test] = _prob(spec, d.norm["clean"][test], cols) * 10
        out[name] = {
            "n_features": int(cols.sum()),
            "angry_vs_rest_ba": _ba(angry, p["anger"] / 10),
            "angry_vs_rest_auc": float(roc_auc_score(angry, p["anger"])),
            "angry_vs_calm_ba": _ba(angry[calm], p["anger_vs_calm"][calm] / 10),
            "disgust_false_alarm": float((p["anger"][d.emo == "disgust"] >= 5).mean()),
            "worst_speaker_ba": min(_ba(angry[d.spk == s], p["anger"][d.spk == s] / 10)
                                    for s in np.unique(d.spk)),
        }
        if verbose:
            r = out[name]
            print(f"  {name:28} {r['n_features']:3d} feats: rest {r['angry_vs_rest_ba']:.3f} "
                  f"(AUC {r['angry_vs_rest_auc']:.3f}, worst {r['worst_speaker_ba']:.3f}), "
                  f"calm {r['angry_vs_calm_ba']:.3f}, disgust FA "
                  f"{r['disgust_false_alarm']:.2f}", flush=True)
    return out
