"""Train the anger and stress heads of models.emotion on RAVDESS and write the JSON weights.

    scripts/train_emotion [--out models/data/emotion_v2.json] [--cache out/emotion_features.npz]

Recipe (the research's best row, docs/research/anger-prosody.md, plus a band-passed copy):
features of every clip, of a telephone copy of it (random gain U(-12, +12) dB, clipped,
16 -> 8 kHz, G.711 μ-law, decoded, back to 16 kHz as the pipeline would) and of the same
telephone copy with a phone line's 300-3400 Hz band-pass, each minus the speaker's own
neutral reference from the same channel (the mean of their neutral and calm clips, never
including the clip itself), then:

- anger: angry vs the 7 other emotions;
- anger_vs_calm: angry vs neutral+calm only;
- stress: angry+fearful vs neutral+calm (a proxy: there are no stress labels);

each a standardised logistic regression with balanced classes, in two sets:

- voice heads, on the voice features alone (C=0.02);
- embedding heads, on the voice features plus the voice embedding (the mean Whisper
  encoder state, models/whisper_asr.py, of the ASR model and window the pipeline is
  configured with, each copy minus the speaker's neutral mean of it too), C=0.005, fitted
  in coordinates whitened by the covariance of channel changes (every copy of
  CHANNEL_COPIES minus its clean clip: G.711, band-pass, +-12 dB), so that the penalty
  falls on the directions a channel moves. The pipeline averages the two sets'
  probabilities (VOICE_WEIGHT); the voice heads alone score an utterance without an
  embedding.

With the extended
feature set of models.emotion, gradient-boosted trees (the research's choice for
anger_vs_calm) no longer helped: LOSO balanced accuracy .948 alone and .952 blended with
the regression, against .956 for the regression alone.

All 16 actors are used; scripts/eval_emotion measures the same recipe leave-one-speaker-out.
The fit needs scikit-learn (a development tool); the pipeline evaluates the exported numbers
in numpy. Features and embeddings of all six copies (CONDITIONS) are needed; they are cached
in out/ (features keyed by models.emotion.FEATURE_VERSION; embeddings, about 2 minutes per
copy on two cores, by the ASR model and window) and shared with the eval.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the project on sys.path)
import numpy as np
import soundfile as sf
from _common import ROOT, shared_data
from scipy.signal import resample_poly
from switchboard.models.emotion import (
    DEFAULT_WEIGHTS,
    FEATURE_NAMES,
    FEATURE_VERSION,
    HEADS,
    N_FEATURES,
    EmotionModel,
    voice_features,
)
from switchboard.models.registry import atomic_path
from switchboard.telephony import g711
from switchboard.telephony.resample import float_to_pcm16, resample

SEED = 0
LR_C = 0.02  # strong regularisation: +4 points over C=1 in the research
#: The heads with the voice embedding: C, the ridge added to the channel covariance (the
#: smaller, the harder channel-sensitive directions are penalised) and the voice heads'
#: share of the blended probability. Chosen leave-one-speaker-out (docs/evaluation.md).
EMBEDDING_C = 0.005
CHANNEL_RIDGE = 0.01
VOICE_WEIGHT = 0.5
#: The blend's fail-safe limit (models.emotion.blend): where the voice and embedding heads'
#: probabilities differ by more, the voice heads' reading takes over. Chosen by the nested
#: evaluation's inner folds (scripts/nested_emotion.DISAGREEMENTS), .7 in all 8 outer folds.
DISAGREEMENT = 0.7
DEFAULT_CACHE = ROOT / "out" / "emotion_features.npz"
EMBEDDING_CACHE = ROOT / "out" / "emotion_embeddings.npz"
BASELINE_EMOTIONS = ("neutral", "calm")
#: Per head: (positive emotions, negative emotions or None for "all the others").
TASKS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "anger": (("angry",), None),
    "anger_vs_calm": (("angry",), BASELINE_EMOTIONS),
    "stress": (("angry", "fearful"), BASELINE_EMOTIONS),
}
#: Feature sets per condition: the clip as recorded, and transformed copies.
CONDITIONS = ("clean", "telrg", "telbp", "up12", "dn12", "tel")
#: The copies the heads are trained on: as recorded, through a G.711 leg at a random gain,
#: and the same with a phone line's 300-3400 Hz band-pass.
TRAIN_COPIES = ("clean", "telrg", "telbp")
#: The copies whose difference from the clean clip the embedding heads learn to ignore.
CHANNEL_COPIES = ("telrg", "telbp", "tel", "up12", "dn12")
#: Speed-perturbed copies (Kaldi's 0.9 and 1.1: pitch, formants and tempo move together,
#: as in a voice with a longer or shorter vocal tract), each its own pseudo-speaker with
#: its own reference: more voices to train on (eval_emotion --nested --speed-perturb).
SPEED_COPIES = {"sp09": 0.9, "sp11": 1.1}
KNOWN_COPIES = CONDITIONS + tuple(SPEED_COPIES)
LICENCE = {
    "dataset": "RAVDESS speech, actors 01-16 (960 clips)",
    "citation": "Livingstone SR, Russo FA (2018) The Ryerson Audio-Visual Database of "
                "Emotional Speech and Song (RAVDESS). PLoS ONE 13(5): e0196391. "
                "https://doi.org/10.1371/journal.pone.0196391",
    "licence": "CC BY-NC-SA 4.0 (non-commercial, share-alike); these weights are derived "
               "from it",
}


@dataclass
class Corpus:
    """The labelled clips, in labels.csv order, and their 16 kHz audio."""

    paths: list[str]
    speakers: np.ndarray
    emotions: np.ndarray
    audio: list[np.ndarray]
    rate: int
    intensities: np.ndarray | None = None  # "normal" / "strong" (RAVDESS), where known

    @property
    def durations(self) -> np.ndarray:
        return np.array([len(a) / self.rate for a in self.audio])

    @property
    def baseline_mask(self) -> np.ndarray:
        return np.isin(self.emotions, BASELINE_EMOTIONS)


def load_corpus(data: Path, speakers: set[str] | None = None) -> Corpus:
    """RAVDESS clips from ``data``/emotion (optionally only some speakers)."""
    with open(data / "emotion" / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if speakers is None or r["speaker"] in speakers]
    audio, rate = [], 0
    for r in rows:
        x, sr = sf.read(str(data / r["path"]), dtype="float32")
        if x.ndim != 1 or (rate and sr != rate):
            raise SystemExit(f"error: {r['path']}: expected mono at one sample rate")
        audio.append(x)
        rate = sr
    return Corpus(
        paths=[r["path"] for r in rows],
        speakers=np.array([r["speaker"] for r in rows]),
        emotions=np.array([r["emotion"] for r in rows]),
        audio=audio,
        rate=rate,
        intensities=np.array([r["intensity"] for r in rows]),
    )


def gain(x: np.ndarray, db: float, clip: bool = True) -> np.ndarray:
    """``x`` scaled by ``db``; clipped to [-1, 1] as a real converter would unless ``clip`` is
    False (the float signal then keeps its shape, to test the features' scale invariance)."""
    y = x.astype(np.float64) * 10 ** (db / 20)
    return np.clip(y, -1.0, 1.0) if clip else y


def telephone(x: np.ndarray, rate: int, band_pass: bool = False) -> np.ndarray:
    """A telephone leg: to 8 kHz, G.711 μ-law, decoded and back to ``rate`` (the pipeline's
    internal rate), through the project's own codec and resampler. ``band_pass`` adds the
    300-3400 Hz filtering of a real handset and network (4th-order Butterworth before the
    codec): the features below 300 Hz (alpha ratio, low spectral slope, the first mel bands,
    the fundamental of low voices) move with it."""
    narrow = resample(np.clip(x, -1.0, 1.0), rate, g711.RATE)
    if band_pass:
        from scipy.signal import butter, sosfilt

        narrow = sosfilt(butter(4, [300, 3400], "bandpass", fs=g711.RATE, output="sos"), narrow)
    decoded = g711.ulaw_decode(g711.ulaw_encode(float_to_pcm16(narrow)))
    return resample(decoded.astype(np.float32) / 32768.0, g711.RATE, rate)


def random_gains(n: int, seed: int = SEED) -> np.ndarray:
    """The per-clip gain of the telephone copy, U(-12, +12) dB, fixed by the seed."""
    return np.random.default_rng(seed).uniform(-12.0, 12.0, n)


def speed(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times as fast: resampled, then read at the same rate."""
    ratio = Fraction(factor).limit_denominator(100)
    return resample_poly(x, ratio.denominator, ratio.numerator).astype(np.float32)


def transformed(condition: str, x: np.ndarray, rate: int, gain_db: float) -> np.ndarray:
    if condition in SPEED_COPIES:
        return speed(x, SPEED_COPIES[condition])
    if condition == "clean":
        return x
    if condition == "telrg":
        return telephone(gain(x, gain_db), rate)
    if condition == "up12":
        return gain(x, 12.0)
    if condition == "dn12":
        return gain(x, -12.0)
    if condition == "tel":
        return telephone(x, rate)
    if condition == "telbp":
        return telephone(gain(x, gain_db), rate, band_pass=True)
    raise ValueError(f"unknown condition {condition!r}")


def load_features(corpus: Corpus, conditions: tuple[str, ...] = CONDITIONS,
                  cache: Path | None = DEFAULT_CACHE, verbose: bool = True
                  ) -> dict[str, np.ndarray]:
    """Feature matrices (clips x features) per condition, computing what the cache lacks.

    The cache is valid only for the same FEATURE_VERSION, clip list and random gains.
    """
    return _per_copy(corpus, conditions, cache, FEATURE_VERSION, "features",
                     lambda: partial(voice_features, sample_rate=corpus.rate), verbose)


def embedding_setup() -> dict:
    """The voice embedding the pipeline computes, from the configuration's defaults: the
    primary ASR model, its encoder window and the emotion stage's scoring window."""
    from switchboard.config import Settings

    settings = Settings()
    return {"asr_model": settings.asr.model, "last_s": settings.prosody.emotion_window_s,
            "min_window_s": settings.asr.min_window_s,
            "window_margin_s": settings.asr.window_margin_s,
            "compute_type": settings.asr.compute_type}


def load_embeddings(corpus: Corpus, conditions: tuple[str, ...] = CONDITIONS,
                    cache: Path | None = EMBEDDING_CACHE, verbose: bool = True
                    ) -> dict[str, np.ndarray]:
    """Voice embeddings (clips x encoder width) per condition, through the pipeline's own
    WhisperASR on the CPU; cached like :func:`load_features`, keyed by :func:`embedding_setup`."""
    setup = embedding_setup()

    def embedder():
        from switchboard.models.whisper_asr import WhisperASR

        asr = WhisperASR(setup["asr_model"], device="cpu", compute_type=setup["compute_type"],
                         min_window_s=setup["min_window_s"],
                         window_margin_s=setup["window_margin_s"])
        return partial(asr.voice_embedding, last_s=setup["last_s"])

    return _per_copy(corpus, conditions, cache, json.dumps(setup, sort_keys=True),
                     "embeddings", embedder, verbose)


def _per_copy(corpus: Corpus, conditions: tuple[str, ...], cache: Path | None, version: str,
              what: str, make: Callable[[], Callable[[np.ndarray], np.ndarray]],
              verbose: bool) -> dict[str, np.ndarray]:
    """One row per clip for each copy in ``conditions``, computed by the function ``make()``
    returns (built only when the cache lacks a copy); cached in ``cache`` for the same
    ``version``, clip list and random gains."""
    gains = random_gains(len(corpus.paths))
    stored: dict[str, np.ndarray] = {}
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if (str(z["version"]) == version and list(z["paths"]) == corpus.paths
                    and np.array_equal(z["gains"], gains)):
                stored = {k: z[k] for k in z.files if k in KNOWN_COPIES}
    missing = [c for c in conditions if c not in stored]
    of_clip = make() if missing else None
    for c in missing:
        t0 = time.perf_counter()
        stored[c] = np.array([of_clip(transformed(c, x, corpus.rate, gains[i]))
                              for i, x in enumerate(corpus.audio)])
        if verbose:
            print(f"{what} {c:6s} {len(corpus.audio)} clips in "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
    if missing and cache is not None:
        _save_npz(cache, version=version, paths=np.array(corpus.paths), gains=gains, **stored)
    return {c: stored[c] for c in conditions}


def _save_npz(path: Path, **arrays) -> None:
    """Write ``path`` atomically (a concurrent reader never sees half a file)."""
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def speaker_baselines(ref: np.ndarray, speakers: np.ndarray, baseline: np.ndarray,
                      fallback: np.ndarray | None = None) -> np.ndarray:
    """Each row's speaker reference: the mean of ``ref``'s rows of the same speaker where
    ``baseline`` is set (neutral and calm clips), leaving the clip itself out.

    A row with no other neutral/calm clip of its speaker to average (a speaker with none,
    or the only one of a speaker with one) gets ``fallback`` (e.g. the population's
    neutral mean); without a fallback that raises ``ValueError`` naming the speaker, where
    it used to come out NaN and silently poison every score of that speaker.
    """
    out = np.empty_like(ref, dtype=np.float64)
    for s in np.unique(speakers):
        own = speakers == s
        sel = own & baseline
        total, count = ref[sel].sum(0), int(sel.sum())
        for i in np.flatnonzero(own):
            others = count - 1 if baseline[i] else count
            if others >= 1:
                out[i] = (total - ref[i]) / others if baseline[i] else total / count
            elif fallback is not None:
                out[i] = fallback
            else:
                raise ValueError(
                    f"speaker {s}: {count} neutral/calm clip(s), so clip {i} has no reference "
                    f"of its own; need at least two (or pass a fallback)")
    return out


def task_rows(emotions: np.ndarray, head: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows that belong to ``head``'s task, their 0/1 labels over all clips)."""
    pos, neg = TASKS[head]
    is_pos = np.isin(emotions, pos)
    rows = np.ones(len(emotions), bool) if neg is None else is_pos | np.isin(emotions, neg)
    return rows, is_pos.astype(int)


def _whitening(scale: np.ndarray, channel: np.ndarray | None) -> np.ndarray:
    """The matrix that whitens standardised features by the covariance of ``channel``
    (rows of feature changes, plus CHANNEL_RIDGE); the identity without them."""
    if channel is None:
        return np.eye(len(scale))
    d = channel / scale
    cov = d.T @ d / len(d) + CHANNEL_RIDGE * np.eye(len(scale))
    vals, vecs = np.linalg.eigh(cov)
    return vecs @ np.diag(vals ** -0.5) @ vecs.T


def _fit_standardised(x: np.ndarray, y: np.ndarray, c: float,
                      channel: np.ndarray | None) -> tuple[dict, np.ndarray, Any]:
    """Standardise ``x``, whiten by ``channel`` (:func:`_whitening`) and fit a logistic
    regression with balanced classes: (the spec's scaler entries, the whitening, the fit)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    whiten = _whitening(scaler.scale_, channel)
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    lr.fit(scaler.transform(x) @ whiten, y)
    return {"C": c, "scaler_mean": scaler.mean_.tolist(),
            "scaler_scale": scaler.scale_.tolist()}, whiten, lr


def _penalty(channel: np.ndarray | None) -> dict:
    if channel is None:
        return {}
    return {"penalty": f"L2 in channel-whitened coordinates ({len(channel)} channel "
                       f"changes, ridge {CHANNEL_RIDGE:g})"}


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = LR_C,
                 channel: np.ndarray | None = None) -> dict:
    """A standardised logistic regression, exported as scaler + coefficients.

    ``channel``: rows of feature *changes* that must not change the score (the same clip
    through another channel minus the clip). The fit then happens in coordinates whitened
    by their covariance (plus CHANNEL_RIDGE), so the L2 penalty grows with how much the
    logit would move under such a change, and the weights avoid the channel-sensitive
    directions. The whitening is folded back into the coefficients: the pipeline's head
    is the same plain logistic regression either way.
    """
    scaler, whiten, lr = _fit_standardised(x, y, c, channel)
    return {"kind": "logistic", **scaler, "coef": (whiten @ lr.coef_[0]).tolist(),
            "intercept": float(lr.intercept_[0]), **_penalty(channel)}


def fit_softmax(x: np.ndarray, emotions: np.ndarray, c: float = LR_C,
                channel: np.ndarray | None = None) -> dict:
    """One classifier of every emotion in ``emotions`` (multinomial logistic regression,
    balanced classes), standardised and channel-whitened as :func:`fit_logistic`. The
    result is not yet a head: :func:`softmax_head` says which task it answers."""
    scaler, whiten, lr = _fit_standardised(x, emotions, c, channel)
    return {"kind": "softmax", **scaler, "classes": [str(k) for k in lr.classes_],
            "coef": (lr.coef_ @ whiten.T).tolist(), "intercept": lr.intercept_.tolist(),
            **_penalty(channel)}


def softmax_head(classifier: dict, head: str) -> dict:
    """``classifier`` (:func:`fit_softmax`) read as ``head``'s task (TASKS)."""
    pos, neg = TASKS[head]
    neg = neg or tuple(k for k in classifier["classes"] if k not in pos)
    return {**classifier, "positive": list(pos), "negative": list(neg)}


#: Head kinds: a logistic regression per task, or one emotion classifier read per task.
HEAD_KINDS = ("logistic", "softmax")
#: What ships (models/data/emotion_v2.json). The softmax heads catch more of a mild anger
#: (worst outer actor .69 -> .75) but, with every choice nested, lose on both tasks and
#: double the disgust false alarms (docs/evaluation.md): measured, not shipped.
HEAD_KIND = "logistic"


def train_spec(normalised: list[np.ndarray], raw: list[np.ndarray], corpus: Corpus,
               train: np.ndarray, c: float = LR_C,
               copies: tuple[str, ...] = TRAIN_COPIES,
               embeddings: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
               channel: list[np.ndarray] | None = None, kind: str = HEAD_KIND) -> dict:
    """Weights for the clips in ``train`` (a row mask), trained on every copy in
    ``normalised`` (named by ``copies``: clean, telephone...), each relative to its speaker;
    ``raw``, the same copies' plain features, gives the population fallback baseline.

    ``embeddings``: (normalised, raw) voice embeddings of the same copies, for the heads
    that read them (:func:`embedding_setup` says which); ``channel``: per transformed copy
    (CHANNEL_COPIES), the [features, embedding] rows minus the clean clip's, which those
    heads learn to ignore. Without ``embeddings``, voice heads only."""
    if not len(normalised) == len(raw) == len(copies):
        raise ValueError("normalised, raw and copies must name the same copies")
    spec = {
        "format": "switchboard-emotion-weights",
        "feature_version": FEATURE_VERSION,
        "features": list(FEATURE_NAMES),
        "trained": date.today().isoformat(),
        "command": "scripts/train_emotion",
        "tasks": {h: {"positive": list(p), "negative": list(n) if n else "all others"}
                  for h, (p, n) in TASKS.items()},
        "seed": SEED,
        "C": c,
        "training_clips": int(train.sum()),
        "training_copies": list(copies),
        "training_speakers": sorted(np.unique(corpus.speakers[train]).tolist()),
        "training_data": LICENCE,
        "fallback_baseline": _population_mean(raw, corpus, train).tolist(),
        "heads": _fit_heads(normalised, corpus, train, c, kind=kind),
    }
    if embeddings is not None:
        emb_norm, emb_raw = embeddings
        if not len(emb_norm) == len(emb_raw) == len(copies):
            raise ValueError("embeddings must come for the same copies")
        setup = embedding_setup()
        spec["embedding"] = {"asr_model": setup["asr_model"], "dims": int(emb_raw[0].shape[1]),
                             "last_s": setup["last_s"], "voice_weight": VOICE_WEIGHT,
                             "disagreement": DISAGREEMENT,
                             "computed_with": setup,
                             "channel_copies": list(CHANNEL_COPIES) if channel else []}
        spec["fallback_embedding"] = _population_mean(emb_raw, corpus, train).tolist()
        joined = [np.hstack([f, e]) for f, e in zip(normalised, emb_norm, strict=True)]
        changes = None if not channel else np.vstack([d[train] for d in channel])
        spec["embedding_heads"] = _fit_heads(joined, corpus, train, EMBEDDING_C, changes,
                                             kind)
    return spec


def _fit_heads(normalised: list[np.ndarray], corpus: Corpus, train: np.ndarray, c: float,
               channel: np.ndarray | None = None, kind: str = HEAD_KIND) -> dict[str, dict]:
    if kind == "softmax":
        x = np.vstack([n[train] for n in normalised])
        classifier = fit_softmax(x, np.tile(corpus.emotions[train], len(normalised)), c,
                                 channel)
        return {head: softmax_head(classifier, head) for head in HEADS}
    heads = {}
    for head in HEADS:
        rows, y = task_rows(corpus.emotions, head)
        sel = rows & train
        x = np.vstack([n[sel] for n in normalised])
        heads[head] = fit_logistic(x, np.concatenate([y[sel]] * len(normalised)), c, channel)
    return heads


def _population_mean(raw: list[np.ndarray], corpus: Corpus, train: np.ndarray) -> np.ndarray:
    """Before a speaker's own reference exists: the neutral mean of the training speakers,
    each speaker weighted equally, pooled over the channels the heads were trained on."""
    base = train & corpus.baseline_mask
    return np.mean([r[base & (corpus.speakers == s)].mean(0)
                    for r in raw for s in np.unique(corpus.speakers[train])], axis=0)


def channel_changes(feats: dict[str, np.ndarray], embs: dict[str, np.ndarray]
                    ) -> list[np.ndarray]:
    """Per CHANNEL_COPIES copy: its [features, embedding] rows minus the clean clip's."""
    clean = np.hstack([feats["clean"], embs["clean"]])
    return [np.hstack([feats[c], embs[c]]) - clean for c in CHANNEL_COPIES]


def normalise_all(feats: dict[str, np.ndarray], corpus: Corpus) -> dict[str, np.ndarray]:
    """The training copies, each against a reference from its own channel."""
    base = corpus.baseline_mask
    return {c: feats[c] - speaker_baselines(feats[c], corpus.speakers, base)
            for c in TRAIN_COPIES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--cache", default=str(DEFAULT_CACHE), help="'' to disable")
    ap.add_argument("--embedding-cache", default=str(EMBEDDING_CACHE), help="'' to disable")
    ap.add_argument("--select", action="store_true",
                    help="choose the feature set, C and blend weights by the inner folds of "
                         "scripts/nested_emotion on all actors (the recipe eval_emotion "
                         "--nested measures)")
    ap.add_argument("--kind", choices=HEAD_KINDS, default=HEAD_KIND,
                    help="the heads' kind (default: what ships)")
    args = ap.parse_args()

    corpus = load_corpus(shared_data())
    feats = load_features(corpus, CONDITIONS, Path(args.cache) if args.cache else None)
    embs = load_embeddings(corpus, CONDITIONS,
                           Path(args.embedding_cache) if args.embedding_cache else None)
    if args.select:
        select_and_write(corpus, feats, embs, Path(args.out), args.kind)
        return
    norm, emb_norm = normalise_all(feats, corpus), normalise_all(embs, corpus)
    spec = train_spec([norm[c] for c in TRAIN_COPIES], [feats[c] for c in TRAIN_COPIES],
                      corpus, np.ones(len(corpus.paths), bool),
                      embeddings=([emb_norm[c] for c in TRAIN_COPIES],
                                  [embs[c] for c in TRAIN_COPIES]),
                      channel=channel_changes(feats, embs), kind=args.kind)
    model = EmotionModel.from_spec(spec)  # refuses what the pipeline would refuse
    zero, zero_emb = np.zeros(N_FEATURES), np.zeros(model.embedding.dims)
    for label, emb in (("voice", None), ("voice+embedding", emb_norm["clean"])):
        train_ba = {}
        for head in HEADS:
            rows, y = task_rows(corpus.emotions, head)
            # The rows are already relative to their speaker: score against zero.
            p = np.array([getattr(model.score(norm["clean"][i], zero,
                                              None if emb is None else emb[i], zero_emb), head)
                          for i in np.flatnonzero(rows)]) / 10
            yt = y[rows]
            train_ba[head] = 0.5 * ((p[yt == 1] >= 0.5).mean() + (p[yt == 0] < 0.5).mean())
        print(f"{label}: training-set balanced accuracy (optimistic; see scripts/eval_emotion): "
              + ", ".join(f"{h} {v:.3f}" for h, v in train_ba.items()))
    write_weights(Path(args.out), spec)


def select_and_write(corpus: Corpus, feats: dict[str, np.ndarray],
                     embs: dict[str, np.ndarray], out: Path, kind: str = HEAD_KIND) -> None:
    """The nested recipe's final step: the choices the inner folds make over all 16 actors,
    then every head refitted on all of them."""
    import nested_emotion

    d = nested_emotion.Data(corpus, feats, embs, kind=kind)
    sets = nested_emotion.feature_sets()
    everyone = np.ones(len(corpus.paths), bool)
    chosen = nested_emotion.choose(d, everyone, sets)
    for head, c in chosen.items():
        print(f"{head}: {c}")
    spec = nested_emotion.fit_outer(d, everyone, chosen, sets)
    spec["command"] = "scripts/train_emotion --select"
    EmotionModel.from_spec(spec)  # refuses what the pipeline would refuse
    write_weights(out, spec)


def write_weights(path: Path, spec: dict) -> None:
    """One line per entry (per array within a head): readable and diffable, not huge."""
    lines = []
    for key, value in spec.items():
        if key in ("heads", "embedding_heads"):
            heads = ",\n".join(
                f"  {json.dumps(h)}: {{\n" + ",\n".join(
                    f"   {json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()) + "}"
                for h, head in value.items())
            lines.append(f" {json.dumps(key)}: {{\n{heads}}}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    text = "{\n" + ",\n".join(lines) + "\n}\n"
    if json.loads(text) != spec:
        raise RuntimeError("weights file does not round-trip")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path} ({len(text) // 1024} KiB)")


if __name__ == "__main__":
    main()
