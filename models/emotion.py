"""Anger and stress scores from the voice: level-invariant features and pure-numpy heads.

The front end is the production port of the research extractor (docs/research/anger-prosody.md,
``docs/research/anger/feats.py``). Everything is computed on an 8 kHz band, so a wideband
microphone and a G.711 telephone leg go through the same analysis, and every feature is a
ratio or a difference of levels: spectral tilt (alpha ratio, Hammarberg index, slopes, band
ratios), harmonics-to-noise ratio, MFCC 1-12 statistics (MFCC 0, the level, is dropped),
pitch in semitones and the *relative* dynamics of the frame energy. No absolute loudness
feature is used: on a phone line the level says more about the handset and the gain than
about the caller (the research measured a loudness-based model falling from 0.85 to 0.66
balanced accuracy on the telephone copy).

Two noise floors make the spectra robust to codec and background noise (without them the
telephone copy moved the score by 2-4 points on average): a flat floor 35 dB below the
utterance's loud (p95) frames, which emulates a channel with a fixed signal-to-noise ratio,
and a per-frame floor 20 dB below the frame's mean in-band level, which hides the μ-law
quantisation noise between harmonics.

Beside these features the heads read the *voice embedding*: the mean state of the speech
recogniser's Whisper encoder over the utterance (models/whisper_asr.py computes it during
the final decode, so it costs nothing extra). Whisper's encoder has heard hundreds of
thousands of hours of speech; its states tell a mildly angry voice from a calm one where
pitch and spectral statistics do not (angry vs neutral/calm, leave-one-speaker-out: .957
with the voice features alone, .980 blended with the embedding). It is level-invariant
once the encoder hears every utterance at one speech level (models/whisper_asr.py), but
more sensitive to the channel than the voice features: its heads are trained to ignore the
changes a telephone line, a band-pass or a gain makes to the same clip, and their
probability is averaged with the voice heads'. The weights carry both head sets, so an
utterance whose embedding is missing (a failed or late decode, another ASR model) is
scored by the voice heads alone.

Those leave-one-speaker-out figures chose their settings on the actors they report; the
nested evaluation (scripts/eval_emotion --nested, every choice inside the training actors)
gives angry vs rest .894 and angry vs neutral/calm .969 on the outer folds, and other voices
did worse still (issue 12). So each score carries a confidence (:func:`confidence`: how much
of the speaker's reference was heard, and whether the two head sets agree), and the blend
is fail safe (:func:`blend`; the limit is in the weights file, .7 in the shipped one).

Scores are relative to the speaker: the features of an utterance minus the speaker's own
neutral reference (:class:`SpeakerBaseline`, learnt from the first seconds of the call, or
the population's neutral mean stored with the weights until then). The heads are
logistic regressions trained by ``scripts/train_emotion`` and evaluated in numpy from the
JSON weights file, so nothing beyond numpy and scipy runs in the pipeline. Their
speaker-independent figures come from ``scripts/eval_emotion``.

Known limit: a phone line's 300-3400 Hz band-pass still moves scores (blended: mean 0.4
points, 13% of the clips by more than 1; voice heads alone 0.65 and 21%) although the heads
are trained on band-passed copies too: the features below 300 Hz (alpha ratio, low spectral
slope, the first mel bands) and the encoder see it. Gain and G.711 alone move them by about
0.1 on average. The speaker's reference, learnt on the call's own channel, absorbs most of it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.fft import dct, irfft, rfft
from switchboard.models.registry import ModelUnavailableError
from switchboard.telephony.resample import resample

#: Changes whenever a feature's definition changes; weights trained for another version are
#: refused at load time, and cached training features are recomputed.
FEATURE_VERSION = "vq8k-2"

#: The band every feature is computed on (telephone band; wideband input is resampled).
ANALYSIS_RATE = 8000
#: Shorter audio has too few frames for the statistics to mean anything.
MIN_DURATION_S = 0.25

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "data" / "emotion_v2.json"
_MODEL_NAME = "emotion"
_PACKAGE = "switchboard (models/data/emotion_v2.json; rebuild it with scripts/train_emotion)"

# Analysis frames at 8 kHz: 25 ms windows, 10 ms hop for the spectra; 40 ms windows for the
# pitch (two periods of a 50 Hz voice). 512 points are enough for the pitch autocorrelation:
# circular wrap-around only reaches lags above 512 - 320 = 192 > _LAG_MAX (the research's
# 1024 gave the same numbers at twice the cost).
_FL, _HOP, _NFFT = 200, 80, 256
_PFL, _PNFFT = 320, 512
_LAG_MIN, _LAG_MAX = ANALYSIS_RATE // 450, ANALYSIS_RATE // 60
_UTT_FLOOR_DB = 35.0  # flat floor below the utterance's p95 frame energy
_FRAME_FLOOR_DB = 20.0  # per-frame floor below the frame's mean in-band bin level
_ACTIVE_DB = 25.0  # frames within this of the p95 energy count as speech
_VOICED_R = 0.5  # normalised autocorrelation peak above which a frame is voiced


def _hz_band(freqs: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (freqs >= lo) & (freqs < hi)


def _mel_filterbank(freqs: np.ndarray, n: int = 24, lo: float = 100.0,
                    hi: float = 3800.0) -> np.ndarray:
    def mel(f: float) -> float:
        return 2595.0 * math.log10(1.0 + f / 700.0)

    edges = 700.0 * (10 ** (np.linspace(mel(lo), mel(hi), n + 2) / 2595.0) - 1.0)
    fb = np.zeros((n, len(freqs)))
    for i in range(n):
        a, b, c = edges[i], edges[i + 1], edges[i + 2]
        fb[i] = np.clip(np.minimum((freqs - a) / (b - a), (c - freqs) / (c - b)), 0, None)
    return fb.astype(np.float32)


_FREQS = np.arange(_NFFT // 2 + 1) * ANALYSIS_RATE / _NFFT
_WIN = np.hanning(_FL).astype(np.float32)
_PWIN = np.hanning(_PFL)
# Autocorrelation of the pitch window: dividing by it corrects the taper's decay with lag
# (Boersma 1993), so the peak height is a usable voicing strength / HNR estimate.
_WIN_ACF = irfft(np.abs(rfft(_PWIN, _PNFFT)) ** 2)[: _LAG_MAX + 2]
_WIN_ACF = _WIN_ACF / _WIN_ACF[0]
_MEL_FB = _mel_filterbank(_FREQS)
_B_LO, _B_HI = _hz_band(_FREQS, 50, 1000), _hz_band(_FREQS, 1000, 3400)  # alpha ratio
_B_H0, _B_H1 = _hz_band(_FREQS, 0, 2000), _hz_band(_FREQS, 2000, 3400)  # Hammarberg index
_B_S1, _B_S2 = _hz_band(_FREQS, 0, 500), _hz_band(_FREQS, 500, 1500)  # spectral slopes
_B_SP = _hz_band(_FREQS, 300, 3400)  # the telephone speech band
_BANDS = [_hz_band(_FREQS, lo, hi) for lo, hi in ((300, 800), (800, 1500), (1500, 2500),
                                                    (2500, 3400))]

_PROSODY = (
    "e_std", "e_range", "e_dabs", "act_frac", "e_peak_minus_mean", "voiced_frac",
    "f0_med", "f0_p10", "f0_p90", "f0_range", "f0_std", "f0_slope", "f0_dabs", "shim_db",
    "hnr_mean", "rate",
)
_VOICE_QUALITY = (
    "alpha_mean", "alpha_std", "hamm_mean", "hamm_std", "slope0_500_mean",
    "slope500_1500_mean", "centroid_mean", "centroid_std", "flatness_mean", "rolloff_mean",
    "flux_mean", "flux_std", "band0", "band1", "band2", "band3",
)
_MFCC = tuple(f"mfcc{i}_{s}" for i in range(1, 13) for s in ("mean", "std"))
# Added after the research (LOSO, angry vs rest .846 -> .859, ROC-AUC .910 -> .939):
# spectral dynamics (delta-cepstrum spread), finer spectral envelope (MFCC 13-19), the
# envelope of the voiced frames only, vocal effort (how tilt follows level within the
# utterance), pitch contour shape, rhythm (2-8 Hz envelope modulation) and spreads.
_EXTRA = (
    *(f"dmfcc{i}_std" for i in range(13)),
    *(f"mfcc{i}_mean" for i in range(13, 20)),
    *(f"vmfcc{i}_mean" for i in range(1, 13)),
    "alpha_vs_level", "centroid_vs_level",
    "f0_up", "f0_down", "f0_rise_frac", "f0_energy_corr",
    "mod_2_8",
    "band0_std", "band1_std", "band2_std", "band3_std", "hnr_std", "hnr_p90",
)
#: Names of the entries of :func:`voice_features`'s vector, in order.
FEATURE_NAMES: tuple[str, ...] = _PROSODY + _VOICE_QUALITY + _MFCC + _EXTRA
N_FEATURES = len(FEATURE_NAMES)

#: The cue families the features belong to, for ablations (scripts/eval_emotion --nested
#: measures what each adds on speakers left out). Prosody mostly carries arousal; voice
#: quality, spectral shape and articulation are where valence (anger against disgust,
#: fear, surprise or joy) can show.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "arousal": ("e_std", "e_range", "e_dabs", "e_peak_minus_mean", "f0_med", "f0_p10",
                "f0_p90", "f0_range", "f0_std", "f0_slope", "f0_up", "f0_down",
                "f0_rise_frac", "f0_energy_corr"),
    # Jitter and shimmer proxies, harmonics-to-noise, noisiness, vocal effort.
    "voice_quality": ("f0_dabs", "shim_db", "hnr_mean", "hnr_std", "hnr_p90",
                      "flatness_mean", "alpha_vs_level", "centroid_vs_level"),
    "spectral_tilt": ("alpha_mean", "alpha_std", "hamm_mean", "hamm_std", "slope0_500_mean",
                      "slope500_1500_mean", "centroid_mean", "centroid_std", "rolloff_mean",
                      "flux_mean", "flux_std", "band0", "band1", "band2", "band3",
                      "band0_std", "band1_std", "band2_std", "band3_std"),
    "cepstra": (*_MFCC, *(f"dmfcc{i}_std" for i in range(13)),
                *(f"mfcc{i}_mean" for i in range(13, 20)),
                *(f"vmfcc{i}_mean" for i in range(1, 13))),
    "articulation": ("rate", "mod_2_8", "act_frac", "voiced_frac"),
}


def _frames(y: np.ndarray, length: int, hop: int) -> np.ndarray:
    n = 1 + max(0, (len(y) - length) // hop)
    idx = np.arange(length)[None, :] + hop * np.arange(n)[:, None]
    return y[idx]


def _slope(y: np.ndarray, x: np.ndarray) -> np.ndarray | float:
    """Least-squares slope of y against x along the last axis."""
    x = x - x.mean()
    d = float((x * x).sum())
    if d <= 0:
        return 0.0
    return (x * (y - y.mean(axis=-1, keepdims=True))).sum(-1) / d


def voice_features(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Level-invariant voice features of one utterance, as a float64 vector.

    ``audio`` is mono float in [-1, 1] at any ``sample_rate``; it is analysed on an 8 kHz
    band. The entries are named by :data:`FEATURE_NAMES`. Raises ``ValueError`` for audio
    that is not 1-D, not finite, or shorter than :data:`MIN_DURATION_S`.
    """
    x = np.asarray(audio)
    if x.ndim != 1:
        raise ValueError(f"voice_features needs mono 1-D audio, got shape {x.shape}")
    if sample_rate <= 0:
        raise ValueError(f"invalid sample rate {sample_rate}")
    duration = len(x) / sample_rate
    if duration < MIN_DURATION_S:
        raise ValueError(
            f"utterance too short for voice features: {duration:.3f} s "
            f"(minimum {MIN_DURATION_S} s)"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("audio contains NaN or infinite samples")
    y = resample(x.astype(np.float64, copy=False), sample_rate, ANALYSIS_RATE).astype(np.float64)
    y = y - y.mean()
    o: dict[str, float] = {}

    spec_frames = _frames(y, _FL, _HOP).astype(np.float32)
    # The 1e-12 keeps digital silence finite; it is far below any real frame's power.
    power = np.abs(rfft(spec_frames * _WIN, _NFFT, axis=1)) ** 2 + 1e-12
    n_sp = int(_B_SP.sum())
    ref = float(np.percentile(10 * np.log10(power[:, _B_SP].sum(1) + 1e-10), 95))
    # Flat floor relative to the loud frames: what codec or line noise adds in the quiet
    # frames then no longer changes the features, and the floor scales with the gain.
    power = power + 10 ** ((ref - _UTT_FLOOR_DB) / 10) / n_sp
    energy = power[:, _B_SP].sum(1)
    edb = 10 * np.log10(energy)
    # Per-frame floor: fills the valleys between harmonics where μ-law noise lives.
    power = power + (energy / n_sp)[:, None] * 10 ** (-_FRAME_FLOOR_DB / 10)
    active = edb > ref - _ACTIVE_DB
    if active.sum() < 5:
        active[:] = True

    # Energy dynamics, all relative to the utterance's own level.
    ea = edb[active]
    o["e_std"] = float(ea.std())
    o["e_range"] = float(np.percentile(ea, 90) - np.percentile(ea, 10))
    both = active[1:] & active[:-1]
    o["e_dabs"] = float(np.mean(np.abs(np.diff(edb))[both])) if both.any() else 0.0
    o["act_frac"] = float(active.mean())
    o["e_peak_minus_mean"] = float(ref - ea.mean())

    # Pitch: normalised autocorrelation with window correction and parabolic interpolation.
    pitch_frames = _frames(y, _PFL, _HOP)
    n = min(len(pitch_frames), len(spec_frames))
    pitch_frames = pitch_frames[:n]
    acf = irfft(np.abs(rfft(pitch_frames * _PWIN, _PNFFT, axis=1)) ** 2, axis=1)
    acf = acf[:, : _LAG_MAX + 2]
    acf = acf / (acf[:, :1] + 1e-12) / _WIN_ACF[None, :]
    seg = acf[:, _LAG_MIN: _LAG_MAX + 1]
    k = np.argmax(seg, 1)
    rows = np.arange(n)
    r = seg[rows, k]
    kk = np.clip(k + _LAG_MIN, 1, _LAG_MAX)
    a0, a1, a2 = acf[rows, kk - 1], acf[rows, kk], acf[rows, kk + 1]
    den = a0 - 2 * a1 + a2
    safe = np.where(np.abs(den) > 1e-9, den, 1.0)
    shift = np.where(np.abs(den) > 1e-9, 0.5 * (a0 - a2) / safe, 0.0)
    f0 = ANALYSIS_RATE / (kk + np.clip(shift, -1, 1))
    voiced = (r > _VOICED_R) & active[:n]
    st = 12 * np.log2(f0 / 100.0)  # semitones re 100 Hz; the baseline removes the register
    if voiced.sum() >= 5:
        # Octave errors: a frame more than 9 semitones off the median is moved an octave.
        d = st - np.median(st[voiced])
        st = np.where(d > 9, st - 12, np.where(d < -9, st + 12, st))
    vs = st[voiced]
    o["voiced_frac"] = float(voiced.sum() / max(1, active[:n].sum()))
    if len(vs) >= 5:
        t = np.arange(n)[voiced] * _HOP / ANALYSIS_RATE
        o["f0_med"] = float(np.median(vs))
        o["f0_p10"] = float(np.percentile(vs, 10))
        o["f0_p90"] = float(np.percentile(vs, 90))
        o["f0_range"] = o["f0_p90"] - o["f0_p10"]
        o["f0_std"] = float(vs.std())
        o["f0_slope"] = float(_slope(vs, t))
        # Frame-to-frame pitch and level changes on consecutive voiced frames: coarse
        # jitter and shimmer proxies (true cycle-to-cycle values need a period tracker).
        cons = voiced[1:] & voiced[:-1]
        dst = np.abs(np.diff(st))[cons]
        o["f0_dabs"] = float(np.median(dst)) if len(dst) else 0.0
        de = np.abs(np.diff(edb[:n]))[cons]
        o["shim_db"] = float(np.median(de)) if len(de) else 0.0
        # Contour shape: excursions above and below the median, share of rising frames,
        # and whether pitch peaks go with loudness peaks (stressed, emphatic speech).
        o["f0_up"] = float(np.percentile(vs, 95) - o["f0_med"])
        o["f0_down"] = float(o["f0_med"] - np.percentile(vs, 5))
        rises = np.diff(st)[cons]
        o["f0_rise_frac"] = float((rises > 0.3).mean()) if len(rises) else 0.0
        ev = edb[:n][voiced]
        o["f0_energy_corr"] = (float(np.corrcoef(vs, ev)[0, 1])
                               if vs.std() > 1e-9 and ev.std() > 1e-9 else 0.0)
    else:
        for key in ("f0_med", "f0_p10", "f0_p90", "f0_range", "f0_std", "f0_slope",
                    "f0_dabs", "shim_db", "f0_up", "f0_down", "f0_rise_frac",
                    "f0_energy_corr"):
            o[key] = 0.0
    rv = np.clip(r[voiced], 0.01, 0.999)
    hnr = 10 * np.log10(rv / (1 - rv))
    o["hnr_mean"] = float(hnr.mean()) if len(hnr) else 0.0
    o["hnr_std"] = float(hnr.std()) if len(hnr) else 0.0
    o["hnr_p90"] = float(np.percentile(hnr, 90)) if len(hnr) else 0.0
    # Voiced segments per active second: a speaking-rate proxy.
    edges = np.diff(np.concatenate([[0], voiced.astype(int), [0]]))
    o["rate"] = int((edges == 1).sum()) / max(0.1, active.sum() * _HOP / ANALYSIS_RATE)

    # Spectral shape: every feature is a ratio of band powers, hence gain invariant.
    pa = power[active]
    pv = power[:n][voiced] if voiced.sum() >= 5 else pa
    ldb = 10 * np.log10(pv)
    alpha = 10 * np.log10(pv[:, _B_LO].sum(1) / pv[:, _B_HI].sum(1))
    hamm = ldb[:, _B_H0].max(1) - ldb[:, _B_H1].max(1)
    o["alpha_mean"], o["alpha_std"] = float(alpha.mean()), float(alpha.std())
    o["hamm_mean"], o["hamm_std"] = float(hamm.mean()), float(hamm.std())
    o["slope0_500_mean"] = float(np.mean(_slope(ldb[:, _B_S1], _FREQS[_B_S1] / 1000)))
    o["slope500_1500_mean"] = float(np.mean(_slope(ldb[:, _B_S2], _FREQS[_B_S2] / 1000)))
    ps = pa[:, _B_SP]
    fs = _FREQS[_B_SP]
    tot = ps.sum(1)
    centroid = (ps * fs).sum(1) / tot / 1000
    o["centroid_mean"], o["centroid_std"] = float(centroid.mean()), float(centroid.std())
    flatness = np.exp(np.mean(np.log(ps), 1)) / np.mean(ps, 1)
    o["flatness_mean"] = float(np.mean(10 * np.log10(flatness)))
    cum = np.cumsum(ps, 1) / tot[:, None]
    o["rolloff_mean"] = float(np.mean(fs[np.argmax(cum >= 0.85, 1)] / 1000))
    pn = power / power[:, _B_SP].sum(1, keepdims=True)
    flux = np.sqrt(((np.sqrt(pn[1:]) - np.sqrt(pn[:-1])) ** 2).sum(1))[active[1:]]
    if len(flux) == 0:
        flux = np.zeros(1)
    o["flux_mean"], o["flux_std"] = float(flux.mean()), float(flux.std())
    for i, band in enumerate(_BANDS):
        rel = 10 * np.log10(pa[:, band].sum(1) / tot)
        o[f"band{i}"], o[f"band{i}_std"] = float(rel.mean()), float(rel.std())

    # Vocal effort: louder syllables of an effortful (angry) voice have a flatter tilt, so
    # the within-utterance slope of tilt against frame level (dB per dB: gain free).
    level = edb[active]
    alpha_active = 10 * np.log10(pa[:, _B_LO].sum(1) / pa[:, _B_HI].sum(1))
    flat_level = level.std() <= 1e-9
    o["alpha_vs_level"] = 0.0 if flat_level else float(_slope(alpha_active, level))
    o["centroid_vs_level"] = 0.0 if flat_level else float(_slope(centroid, level))

    # Rhythm: share of the level envelope's modulation at syllable rates (2-8 Hz).
    env = 10 ** (edb / 20)
    nfft = max(512, 1 << (len(env) - 1).bit_length())
    mod = np.abs(np.fft.rfft(env - env.mean(), nfft)) ** 2
    mod_f = np.fft.rfftfreq(nfft, _HOP / ANALYSIS_RATE)
    syllabic = mod[(mod_f >= 2) & (mod_f < 8)].sum()
    o["mod_2_8"] = float(10 * np.log10(syllabic / (mod[mod_f > 0.5].sum() + 1e-20) + 1e-12))

    # Cepstra of every frame (deltas need the neighbours); MFCC 0 is the level: only its
    # delta (a relative level change) is used.
    cep = dct(np.log(power @ _MEL_FB.T + 1e-10), type=2, norm="ortho", axis=1)[:, :20]
    ca = cep[active]
    for i in range(1, 13):
        o[f"mfcc{i}_mean"] = float(ca[:, i].mean())
        o[f"mfcc{i}_std"] = float(ca[:, i].std())
    for i in range(13, 20):
        o[f"mfcc{i}_mean"] = float(ca[:, i].mean())
    cv = cep[:n][voiced] if voiced.sum() >= 5 else ca
    for i in range(1, 13):
        o[f"vmfcc{i}_mean"] = float(cv[:, i].mean())
    # Regression deltas over +-2 frames (HTK's formula), spread over the speech frames.
    delta = np.zeros((len(cep), 13))
    c13 = cep[:, :13]
    delta[2:-2] = (c13[4:] - c13[:-4] + 2 * (c13[3:-1] - c13[1:-3])) / 10
    da = delta[active]
    for i in range(13):
        o[f"dmfcc{i}_std"] = float(da[:, i].std())

    return np.array([o[name] for name in FEATURE_NAMES], dtype=np.float64)


class SpeakerBaseline:
    """A speaker's neutral reference, learnt from the first utterances of a call.

    The anger scores compare an utterance with how this speaker sounds at rest: the features
    of the opening utterances are averaged (weighted by duration) until ``max_seconds`` of
    speech have been seen, then the reference is frozen so that a later escalation does not
    drag it along. It is ``ready`` after ``min_seconds``; until then :meth:`mean` is ``None``
    and :meth:`EmotionModel.score` falls back to the population's neutral mean.

    With a ``prior`` (the population mean, see :meth:`EmotionModel.new_baseline`) the mean
    is shrunk toward it as if ``prior_seconds`` of average speech had been heard too: a
    reference from one 3 s utterance is noisy, and the shrinkage recovers part of what it
    loses (leave-one-speaker-out, angry vs rest with a 3 s reference: .80-.81 without,
    .83-.84 with it, .86-.87 with the speaker's whole neutral set; see scripts/eval_emotion).

    A caller who is already angry in the first seconds makes anger look like their normal
    voice: the scores then under-state, never over-state, the anger.
    """

    def __init__(self, min_seconds: float = 3.0, max_seconds: float = 12.0,
                 prior: np.ndarray | None = None, prior_seconds: float = 6.0,
                 dims: int = N_FEATURES):
        if min_seconds < 0 or max_seconds < min_seconds or prior_seconds < 0:
            raise ValueError("need 0 <= min_seconds <= max_seconds and prior_seconds >= 0")
        self.min_seconds = min_seconds
        self.max_seconds = max_seconds
        self.dims = dims  # N_FEATURES for voice features, the encoder's width for embeddings
        self._prior = None if prior is None else _checked(prior, dims)
        self.prior_seconds = prior_seconds if prior is not None else 0.0
        self._sum: np.ndarray | None = None
        self._seconds = 0.0

    @property
    def seconds(self) -> float:
        """Speech seconds that went into the reference."""
        return self._seconds

    @property
    def ready(self) -> bool:
        """Whether enough speech has been seen for the reference to be the speaker's own."""
        return self._sum is not None and self._seconds >= self.min_seconds

    def add(self, features: np.ndarray, duration_s: float) -> bool:
        """Add one utterance's features; returns whether it was used (False once frozen)."""
        f = _checked(features, self.dims)
        if self._seconds >= self.max_seconds or duration_s <= 0:
            return False
        self._sum = f * duration_s if self._sum is None else self._sum + f * duration_s
        self._seconds += duration_s
        return True

    def mean(self) -> np.ndarray | None:
        """The reference feature vector, or ``None`` while not :attr:`ready`."""
        return self.provisional() if self.ready else None

    def provisional(self) -> np.ndarray | None:
        """The reference from what has been heard so far, ready or not (None before any)."""
        if self._sum is None:
            return None
        if self._prior is None:
            return self._sum / self._seconds
        return (self._sum + self.prior_seconds * self._prior) / (
            self._seconds + self.prior_seconds)


def _checked(features: np.ndarray, dims: int = N_FEATURES) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.shape != (dims,) or not np.all(np.isfinite(f)):
        raise ValueError(f"expected {dims} finite features, got shape {f.shape}")
    return f


@dataclass(frozen=True)
class EmotionScores:
    """Scores of one utterance on 0-10 (10 x the probability, blended over the head sets
    that scored; 5 is the threshold).

    ``anger``: angry against every other emotion. ``anger_vs_calm``: angry against a neutral
    or calm voice (the escalation decision); it was never shown the other emotions, and
    surprised, fearful or happy voices score high on it too, so it sharpens ``anger`` rather
    than replacing it. ``stress``: a high-arousal negative voice (angry or fearful) against
    a neutral or calm one, a proxy for agent stress (no stress-labelled data was available
    to train on); surprised and happy voices score high on it as well.
    """

    anger: float
    anger_vs_calm: float
    stress: float
    #: Which head set scored: "voice" (features only) or "voice+embedding".
    heads: str = "voice"
    #: How far the scores can be trusted, 0-1 (:func:`confidence`): low on a thin speaker
    #: reference or when the voice and embedding heads disagree strongly.
    confidence: float = 1.0
    #: The voice heads' own anger score (equal to ``anger`` without an embedding).
    voice_anger: float | None = None
    #: Whether the heads disagreed past the fail-safe limit, so that the voice heads'
    #: reading took over (part or all) of the blended score.
    fell_back: bool = False


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class _LogisticHead:
    """Standardisation followed by a logistic regression: p = sigmoid(coef . z + intercept)."""

    def __init__(self, spec: dict[str, Any], dims: int = N_FEATURES):
        self.mean = _vector(spec, "scaler_mean", dims)
        self.scale = _vector(spec, "scaler_scale", dims)
        self.coef = _vector(spec, "coef", dims)
        self.intercept = float(spec["intercept"])
        if np.any(self.scale <= 0) or not math.isfinite(self.intercept):
            raise ValueError("scaler_scale must be positive and the intercept finite")
        # Folded into one dot product: coef . (x - mean) / scale = w . x + b.
        self._w = self.coef / self.scale
        self._b = self.intercept - float(self._w @ self.mean)

    def probability(self, x: np.ndarray) -> float:
        return _sigmoid(float(x @ self._w) + self._b)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """:meth:`probability` of each row of ``x``."""
        return 1 / (1 + np.exp(-(x @ self._w + self._b)))


class _SoftmaxHead:
    """One emotion classifier (multinomial logistic regression over ``classes``) read as a
    two-sided task: p = P(positive side) against P(negative side), each side's
    probability divided by its number of emotions.

    Why the division: trained with balanced classes, the classifier gives every emotion the
    same prior, so "angry against the 7 others" starts at 1 to 7; dividing gives both sides
    one prior, and 0.5 is the balanced point, as for a logistic head trained on the two
    sides. Why one classifier for every emotion: a logistic head for angry against the rest
    must put calm, happy, fearful, surprised and disgusted voices on one side of one line;
    the classifier learns each of them. On new actors it caught more of a mild anger, and
    raised more false alarms on the other high-arousal emotions (docs/evaluation.md), so
    the shipped weights keep logistic heads; the loader reads either."""

    def __init__(self, spec: dict[str, Any], dims: int = N_FEATURES):
        self.mean = _vector(spec, "scaler_mean", dims)
        self.scale = _vector(spec, "scaler_scale", dims)
        classes = [str(c) for c in spec["classes"]]
        coef = np.asarray(spec["coef"], dtype=np.float64)
        intercept = np.asarray(spec["intercept"], dtype=np.float64)
        if coef.shape != (len(classes), dims) or intercept.shape != (len(classes),):
            raise ValueError(f"coef must be {len(classes)} x {dims}, intercept {len(classes)}")
        if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
            raise ValueError("coef and intercept must be finite")
        if np.any(self.scale <= 0):
            raise ValueError("scaler_scale must be positive")
        pos, neg = list(spec["positive"]), list(spec["negative"])
        if not pos or not neg or set(pos) & set(neg) or not set(pos + neg) <= set(classes):
            raise ValueError("positive and negative must be disjoint, non-empty sets of classes")
        self._w = coef / self.scale
        self._b = intercept - self._w @ self.mean
        self._pos = np.isin(classes, pos) / len(pos)
        self._neg = np.isin(classes, neg) / len(neg)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """P(positive side) of each row of ``x``."""
        z = np.atleast_2d(x) @ self._w.T + self._b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        pos, neg = p @ self._pos, p @ self._neg
        return pos / (pos + neg)

    def probability(self, x: np.ndarray) -> float:
        return float(self.probabilities(x)[0])


Head = _LogisticHead | _SoftmaxHead


def head_from_spec(spec: dict[str, Any], dims: int = N_FEATURES) -> Head:
    """A head of the weights file: ``kind`` "logistic" (one task, two classes) or "softmax"
    (one classifier of every emotion, read as a task)."""
    kinds = {"logistic": _LogisticHead, "softmax": _SoftmaxHead}
    if spec.get("kind") not in kinds:
        raise ValueError(f"unknown head kind {spec.get('kind')!r}")
    return kinds[spec["kind"]](spec, dims)


def _vector(spec: dict[str, Any], key: str, dims: int = N_FEATURES) -> np.ndarray:
    v = np.asarray(spec[key], dtype=np.float64)
    if v.shape != (dims,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{key}: expected {dims} finite numbers")
    return v


HEADS = ("anger", "anger_vs_calm", "stress")
#: EmotionScores.heads of the head set that reads the voice embedding too.
WITH_EMBEDDING = "voice+embedding"


#: Below this much speech in the speaker's reference a score's confidence is scaled down
#: in proportion (a 3 s reference, the least a ready one holds, gives 0.5).
FULL_REFERENCE_S = 6.0
#: How far past the disagreement limit the voice heads' share reaches all of the score.
FAIL_SAFE_RAMP = 0.1


@dataclass(frozen=True)
class EmbeddingSpec:
    """Which voice embedding the embedding heads were trained on: the mean encoder state of
    ``asr_model`` (a models.whisper_asr model name) over the last ``last_s`` seconds;
    ``voice_weight``, the voice heads' share of the blended probability, per head; and
    ``disagreement``, the gap between the two heads' probabilities past which the blend
    is not trusted and the voice heads' reading stands alone (None: always blend)."""

    asr_model: str
    dims: int
    last_s: float
    voice_weight: dict[str, float]
    disagreement: float | None = None


def blend(p_voice, p_embedding, voice_weight: float, disagreement: float | None):
    """The blended probability, fail safe: where the heads disagree by more than
    ``disagreement`` the voice heads' share grows, to all of it at ``FAIL_SAFE_RAMP``
    beyond the limit. Works on floats and numpy arrays.

    Why the voice heads: on voices outside the training set they generalised better than
    the embedding heads (issue 12: a new speaker's 8 angry clips all caught by the voice
    features were all scored calm by the blend); a strong disagreement means the
    embedding is reading this voice off its training distribution. Why a ramp and not a
    switch: a gain or a codec that nudges the gap across the limit would otherwise move
    the score by points (a switch did, for 3 more of 960 clips at +12 dB)."""
    if disagreement is None:
        return voice_weight * p_voice + (1 - voice_weight) * p_embedding
    beyond = np.clip((np.abs(p_voice - p_embedding) - disagreement) / FAIL_SAFE_RAMP, 0, 1)
    weight = voice_weight + (1 - voice_weight) * beyond
    return weight * p_voice + (1 - weight) * p_embedding


def confidence(reference_s: float, p_voice: float, p_embedding: float | None,
               full_reference_s: float = FULL_REFERENCE_S) -> float:
    """How far a score can be trusted, 0-1: the share of a full speaker reference heard
    (``reference_s`` of ``full_reference_s``; 0 for the population's reference) times
    the agreement of the two head sets on the anger head (1 - half their gap)."""
    ref = 1.0 if full_reference_s <= 0 else min(1.0, max(0.0, reference_s) / full_reference_s)
    agree = 1.0 if p_embedding is None else 1.0 - 0.5 * abs(p_voice - p_embedding)
    return ref * agree


class EmotionModel:
    """The head sets and the population's neutral baselines, loaded from a JSON file."""

    def __init__(self, heads: dict[str, Head], fallback_baseline: np.ndarray,
                 meta: dict[str, Any], embedding: EmbeddingSpec | None = None,
                 embedding_heads: dict[str, Head] | None = None,
                 fallback_embedding: np.ndarray | None = None):
        self._heads = heads
        self.fallback_baseline = fallback_baseline
        self.meta = meta
        self.embedding = embedding
        self._embedding_heads = embedding_heads
        self.fallback_embedding = fallback_embedding

    @classmethod
    def load(cls, path: Path | None = None) -> EmotionModel:
        """Read the weights (default: the committed ``models/data/emotion_v2.json``).

        A missing, unreadable or inconsistent file, or one trained for another
        :data:`FEATURE_VERSION`, raises :class:`models.registry.ModelUnavailableError`.
        """
        p = Path(path) if path is not None else DEFAULT_WEIGHTS
        try:
            spec = json.loads(p.read_text())
        except FileNotFoundError as exc:
            raise ModelUnavailableError(_MODEL_NAME, _PACKAGE, f"{p} missing") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelUnavailableError(_MODEL_NAME, _PACKAGE, f"{p} unreadable: {exc}") from exc
        try:
            return cls.from_spec(spec)
        except ValueError as exc:
            raise ModelUnavailableError(_MODEL_NAME, _PACKAGE, f"{p} corrupt: {exc}") from exc

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> EmotionModel:
        """Build the model from the weights file's parsed content (``ValueError`` if invalid).

        The training and evaluation scripts use this to score with exactly the code the
        pipeline runs. ``embedding`` and ``embedding_heads`` are optional (a file without
        them scores from the voice features only).
        """
        try:
            if spec["feature_version"] != FEATURE_VERSION:
                raise ValueError(
                    f"trained for features {spec['feature_version']!r}, "
                    f"code computes {FEATURE_VERSION!r}"
                )
            if list(spec["features"]) != list(FEATURE_NAMES):
                raise ValueError("feature names differ from the extractor's")
            heads = {name: head_from_spec(spec["heads"][name]) for name in HEADS}
            fallback = _vector(spec, "fallback_baseline")
            embedding = emb_heads = emb_fallback = None
            if spec.get("embedding") is not None:
                e = spec["embedding"]
                # v2 files carry one weight for every head and no disagreement rule.
                w = e["voice_weight"]
                weights = ({h: float(w[h]) for h in HEADS} if isinstance(w, dict)
                           else dict.fromkeys(HEADS, float(w)))
                gap = e.get("disagreement")
                embedding = EmbeddingSpec(str(e["asr_model"]), int(e["dims"]), float(e["last_s"]),
                                          weights, None if gap is None else float(gap))
                if embedding.dims <= 0 or embedding.last_s <= 0:
                    raise ValueError("embedding dims and last_s must be positive")
                if not all(0 <= v <= 1 for v in weights.values()):
                    raise ValueError("embedding voice_weight must lie in [0, 1]")
                if gap is not None and not 0 <= embedding.disagreement <= 1:
                    raise ValueError("embedding disagreement must lie in [0, 1]")
                emb_heads = {name: head_from_spec(spec["embedding_heads"][name],
                                                   N_FEATURES + embedding.dims)
                             for name in HEADS}
                emb_fallback = _vector(spec, "fallback_embedding", embedding.dims)
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ValueError(f"missing or malformed entry: {exc!r}") from exc
        meta = {k: v for k, v in spec.items()
                if k not in ("heads", "fallback_baseline", "features", "embedding_heads",
                             "fallback_embedding")}
        return cls(heads, fallback, meta, embedding, emb_heads, emb_fallback)

    def new_baseline(self, min_seconds: float = 3.0, max_seconds: float = 12.0,
                     prior_seconds: float = 6.0) -> SpeakerBaseline:
        """A :class:`SpeakerBaseline` of voice features for a new call leg, shrunk toward
        this model's population mean (the configuration scripts/eval_emotion measures as
        "call"; ``prior_seconds=0``: no shrinkage)."""
        return SpeakerBaseline(min_seconds, max_seconds, self.fallback_baseline, prior_seconds)

    def new_embedding_baseline(self, min_seconds: float = 3.0, max_seconds: float = 12.0,
                               prior_seconds: float = 6.0) -> SpeakerBaseline | None:
        """The same for voice embeddings; None when the model has no embedding heads."""
        if self.embedding is None:
            return None
        return SpeakerBaseline(min_seconds, max_seconds, self.fallback_embedding,
                               prior_seconds, dims=self.embedding.dims)

    def score(self, features: np.ndarray, baseline: np.ndarray | None,
              embedding: np.ndarray | None = None,
              embedding_baseline: np.ndarray | None = None,
              reference_s: float = math.inf) -> EmotionScores:
        """Scores of one utterance's features against the speaker's baseline.

        ``baseline`` is :meth:`SpeakerBaseline.mean`; ``None`` uses the population's neutral
        mean, so a score exists from the first utterance (less accurate: it cannot tell a
        high-pitched voice from a raised one as well as the speaker's own reference). With
        an ``embedding`` (and its speaker reference, or None for the population's), if the
        model has embedding heads, each score blends the voice head's probability with the
        embedding head's (``voice_weight`` of the former): the blend keeps most of the
        embedding's accuracy and most of the voice features' indifference to the channel
        (docs/evaluation.md). Otherwise the voice heads score alone. Where the two head
        sets disagree by more than the weights' ``disagreement``, the voice heads' reading
        stands (:func:`blend`). ``reference_s``: seconds of the speaker's speech in
        ``baseline`` (default: a full reference; ignored, as 0, without a baseline), which
        with the heads' agreement sets the :attr:`EmotionScores.confidence`.
        """
        x = _relative(features, self.fallback_baseline if baseline is None else baseline,
                      N_FEATURES)
        p = {name: head.probability(x) for name, head in self._heads.items()}
        p_voice_anger, p_emb_anger = p["anger"], None
        used, fell_back = "voice", False
        if embedding is not None and self.embedding is not None:
            ref = self.fallback_embedding if embedding_baseline is None else embedding_baseline
            xe = np.concatenate([x, _relative(embedding, ref, self.embedding.dims)])
            pe = {name: head.probability(xe) for name, head in self._embedding_heads.items()}
            p_emb_anger = pe["anger"]
            gap = self.embedding.disagreement
            fell_back = gap is not None and abs(p["anger"] - pe["anger"]) > gap
            p = {name: float(blend(p[name], pe[name], self.embedding.voice_weight[name], gap))
                 for name in HEADS}
            used = WITH_EMBEDDING
        conf = confidence(0.0 if baseline is None else reference_s, p_voice_anger, p_emb_anger)
        return EmotionScores(anger=10 * p["anger"], anger_vs_calm=10 * p["anger_vs_calm"],
                             stress=10 * p["stress"], heads=used, confidence=conf,
                             voice_anger=10 * p_voice_anger, fell_back=fell_back)


def _relative(values: np.ndarray, reference: np.ndarray, dims: int) -> np.ndarray:
    """``values`` minus ``reference``, both checked to be ``dims`` long."""
    v = np.asarray(values, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if v.shape != (dims,) or ref.shape != (dims,):
        raise ValueError(f"expected {dims} values and a {dims}-value reference, "
                         f"got {v.shape} and {ref.shape}")
    return v - ref
