"""Level-invariant voice features for anger detection. Operates on 8 kHz band (telephone-compatible).
Input: float mono 16 kHz (or 8 kHz with sr=8000)."""
import numpy as np
from scipy.signal import resample_poly
from scipy.fft import rfft, irfft, dct

SR = 8000
import os
SFLOOR = float(os.environ.get("SFLOOR", 20))
ACT_DB = float(os.environ.get("ACT_DB", 25))
UFLOOR = float(os.environ.get("UFLOOR", 35))
FL, HOP, NFFT = 200, 80, 256          # 25 ms frames, 10 ms hop at 8 kHz
PFL, PNFFT = 320, 1024                # 40 ms frames for pitch
LAGMIN, LAGMAX = 8000 // 450, 8000 // 60
_win = np.hanning(FL).astype(np.float32)
_pwin = np.hanning(PFL).astype(np.float64)
_wacf = irfft(np.abs(rfft(_pwin, PNFFT)) ** 2)[:LAGMAX + 2]
_wacf = _wacf / _wacf[0]
_freqs = np.arange(NFFT // 2 + 1) * SR / NFFT

def _mel(f): return 2595 * np.log10(1 + f / 700)
def _melfb(n=24, lo=100, hi=3800):
    m = np.linspace(_mel(lo), _mel(hi), n + 2); f = 700 * (10 ** (m / 2595) - 1)
    fb = np.zeros((n, len(_freqs)))
    for i in range(n):
        a, b, c = f[i], f[i + 1], f[i + 2]
        fb[i] = np.clip(np.minimum((_freqs - a) / (b - a), (c - _freqs) / (c - b)), 0, None)
    return fb.astype(np.float32)
_FB = _melfb()
_band = lambda lo, hi: (_freqs >= lo) & (_freqs < hi)
B_LO, B_HI = _band(50, 1000), _band(1000, 3400)
B_H0, B_H1 = _band(0, 2000), _band(2000, 3400)
B_S1, B_S2 = _band(0, 500), _band(500, 1500)
B_SP = _band(300, 3400)
BANDS = [_band(300, 800), _band(800, 1500), _band(1500, 2500), _band(2500, 3400)]

def _frames(y, fl, hop):
    n = 1 + max(0, (len(y) - fl) // hop)
    idx = np.arange(fl)[None, :] + hop * np.arange(n)[:, None]
    return y[idx]

def _slope(y, x):
    x = x - x.mean(); d = (x * x).sum()
    return (x * (y - y.mean(axis=-1, keepdims=True))).sum(-1) / d if d > 0 else 0.0

def _stats(v, name, out, which=('mean', 'std')):
    if len(v) == 0: v = np.zeros(1)
    if 'mean' in which: out[name + '_mean'] = float(np.mean(v))
    if 'std' in which: out[name + '_std'] = float(np.std(v))

def extract(x, sr=16000, wideband_extra=False):
    x = np.asarray(x, dtype=np.float64)
    y = resample_poly(x, 1, 2) if sr == 16000 else x
    y = y - y.mean()
    F = _frames(y, FL, HOP).astype(np.float32)
    P = np.abs(rfft(F * _win, NFFT, axis=1)) ** 2 + 1e-12       # power spectra
    e = P[:, B_SP].sum(1)
    ref = np.percentile(10 * np.log10(e + 1e-10), 95)
    # utterance-relative white floor UFLOOR dB below the loud (p95) frames: emulates a fixed SNR channel,
    # so codec / background noise in quiet frames does not change the features
    P = P + (10 ** ((ref - UFLOOR) / 10) / B_SP.sum())
    e = P[:, B_SP].sum(1)
    edb = 10 * np.log10(e)
    # relative spectral floor (SFLOOR dB below the frame's mean in-band bin level): hides codec noise
    P = P + (e / B_SP.sum())[:, None] * 10 ** (-SFLOOR / 10)
    act = edb > ref - ACT_DB                                          # relative activity
    if act.sum() < 5: act[:] = True
    o = {}
    # ---- energy dynamics (relative to the utterance, no absolute level) ----
    ea = edb[act]
    o['e_std'] = float(ea.std()); o['e_range'] = float(np.percentile(ea, 90) - np.percentile(ea, 10))
    ca = act[1:] & act[:-1]
    o['e_dabs'] = float(np.mean(np.abs(np.diff(edb))[ca])) if ca.sum() > 0 else 0.0
    o['act_frac'] = float(act.mean())
    o['e_peak_minus_mean'] = float(ref - ea.mean())
    # ---- pitch by normalised autocorrelation (Boersma-style window correction) ----
    PF = _frames(y, PFL, HOP)
    n = min(len(PF), len(F)); PF = PF[:n]
    S = np.abs(rfft(PF * _pwin, PNFFT, axis=1)) ** 2
    A = irfft(S, axis=1)[:, :LAGMAX + 2]
    A = A / (A[:, :1] + 1e-12) / _wacf[None, :]
    seg = A[:, LAGMIN:LAGMAX + 1]
    k = np.argmax(seg, 1); r = seg[np.arange(n), k]
    kk = np.clip(k + LAGMIN, 1, LAGMAX)
    a0, a1, a2 = A[np.arange(n), kk - 1], A[np.arange(n), kk], A[np.arange(n), kk + 1]
    den = a0 - 2 * a1 + a2
    dl = np.where(np.abs(den) > 1e-9, 0.5 * (a0 - a2) / den, 0.0)
    lag = kk + np.clip(dl, -1, 1)
    f0 = SR / lag
    voiced = (r > 0.5) & act[:n]
    st = 12 * np.log2(f0 / 100.0)
    if voiced.sum() >= 5:
        # octave-jump cleanup: snap frames > 7 st from median
        med = np.median(st[voiced])
        d = st - med
        st = np.where(d > 9, st - 12, np.where(d < -9, st + 12, st))
    vs = st[voiced]; t = np.arange(n)[voiced] * HOP / SR
    o['voiced_frac'] = float(voiced.sum() / max(1, act[:n].sum()))
    if len(vs) >= 5:
        o['f0_med'] = float(np.median(vs)); o['f0_p10'] = float(np.percentile(vs, 10)); o['f0_p90'] = float(np.percentile(vs, 90))
        o['f0_range'] = o['f0_p90'] - o['f0_p10']; o['f0_std'] = float(vs.std())
        o['f0_slope'] = float(_slope(vs, t))
        # frame-to-frame variation on consecutive voiced frames (jitter proxy)
        cons = voiced[1:] & voiced[:-1]
        dst = np.abs(np.diff(st))[cons]
        o['f0_dabs'] = float(np.median(dst)) if len(dst) else 0.0
        de = np.abs(np.diff(edb[:n]))[cons]
        o['shim_db'] = float(np.median(de)) if len(de) else 0.0
    else:
        for kx in ['f0_med', 'f0_p10', 'f0_p90', 'f0_range', 'f0_std', 'f0_slope', 'f0_dabs', 'shim_db']: o[kx] = 0.0
    rv = np.clip(r[voiced], 0.01, 0.999)
    o['hnr_mean'] = float(np.mean(10 * np.log10(rv / (1 - rv)))) if len(rv) else 0.0
    # voiced segments per active second (speaking-rate proxy)
    vb = np.concatenate([[0], voiced.astype(int), [0]])
    nseg = int((np.diff(vb) == 1).sum())
    o['rate'] = nseg / max(0.1, act.sum() * HOP / SR)
    # ---- spectral shape on active frames (all ratios -> level invariant) ----
    Pa = P[act]
    Pv = P[:n][voiced] if voiced.sum() >= 5 else Pa
    ldb = 10 * np.log10(Pv)
    alpha = 10 * np.log10(Pv[:, B_LO].sum(1) / Pv[:, B_HI].sum(1))
    hamm = ldb[:, B_H0].max(1) - ldb[:, B_H1].max(1)
    s1 = _slope(ldb[:, B_S1], _freqs[B_S1] / 1000); s2 = _slope(ldb[:, B_S2], _freqs[B_S2] / 1000)
    _stats(alpha, 'alpha', o); _stats(hamm, 'hamm', o); _stats(s1, 'slope0_500', o, ('mean',)); _stats(s2, 'slope500_1500', o, ('mean',))
    Ps = Pa[:, B_SP]; fs = _freqs[B_SP]; tot = Ps.sum(1)
    cen = (Ps * fs).sum(1) / tot
    _stats(cen / 1000, 'centroid', o)
    flat = np.exp(np.mean(np.log(Ps), 1)) / np.mean(Ps, 1)
    _stats(10 * np.log10(flat), 'flatness', o, ('mean',))
    cs = np.cumsum(Ps, 1) / tot[:, None]
    roll = fs[np.argmax(cs >= 0.85, 1)]
    _stats(roll / 1000, 'rolloff', o, ('mean',))
    Pn = P / P[:, B_SP].sum(1, keepdims=True)
    fl = np.sqrt(((np.sqrt(Pn[1:]) - np.sqrt(Pn[:-1])) ** 2).sum(1))[act[1:]]
    _stats(fl, 'flux', o)
    for i, b in enumerate(BANDS):
        o[f'band{i}'] = float(np.mean(10 * np.log10(Pa[:, b].sum(1) / tot)))
    # ---- MFCC 1-12 (MFCC0 = level: dropped) ----
    M = np.log(Pa @ _FB.T + 1e-10)
    C = dct(M, type=2, norm='ortho', axis=1)[:, 1:13]
    for i in range(12):
        o[f'mfcc{i+1}_mean'] = float(C[:, i].mean()); o[f'mfcc{i+1}_std'] = float(C[:, i].std())
    # absolute loudness (NOT level invariant: only for the reference baseline)
    o['ABS_level_db'] = float(10 * np.log10(np.mean(y ** 2) + 1e-12))
    o['ABS_peak_db'] = float(ref)
    return o

PROSODY = ['e_std', 'e_range', 'e_dabs', 'act_frac', 'e_peak_minus_mean', 'voiced_frac', 'f0_med', 'f0_p10', 'f0_p90', 'f0_range',
           'f0_std', 'f0_slope', 'f0_dabs', 'shim_db', 'hnr_mean', 'rate']
VQ = ['alpha_mean', 'alpha_std', 'hamm_mean', 'hamm_std', 'slope0_500_mean', 'slope500_1500_mean', 'centroid_mean', 'centroid_std',
      'flatness_mean', 'rolloff_mean', 'flux_mean', 'flux_std', 'band0', 'band1', 'band2', 'band3']
MFCC = [f'mfcc{i+1}_{s}' for i in range(12) for s in ('mean', 'std')]
ABS = ['ABS_level_db', 'ABS_peak_db']
