import numpy as np, csv, sys, warnings, itertools, json
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import balanced_accuracy_score, roc_auc_score, f1_score
from feats import PROSODY, VQ, MFCC, ABS
warnings.filterwarnings('ignore')
rows = list(csv.DictReader(open('/work/shared/data/emotion/labels.csv')))
D = np.load('features.npz'); names = list(D['names'])
y = np.array([int(r['label_angry']) for r in rows]); spk = np.array([r['speaker'] for r in rows])
emo = np.array([r['emotion'] for r in rows]); base = np.isin(emo, ['neutral', 'calm'])
subB = np.isin(emo, ['angry', 'neutral', 'calm'])
SPK = sorted(set(spk))

_pv = {}
def POOLV(ref):
    k = id(ref)
    if k not in _pv:
        _pv[k] = np.mean([ref[(spk == s) & base].var(0) for s in SPK], 0)
    return _pv[k]

def norm(X, mode, ref=None):
    """Per-speaker normalisation. ref: feature matrix from which baseline stats are taken (default X itself)."""
    if mode == 'none': return X.copy()
    if mode == 'cat': return np.hstack([X, norm(X, 'neutral_mean', ref)])
    ref = X if ref is None else ref
    Z = np.empty_like(X, dtype=float)
    for s in SPK:
        m = spk == s
        sel = m & base if mode.startswith('neutral') else m
        idx = np.where(m)[0]
        for i in idx:
            b = sel.copy()
            if b[i]: b[i] = False                   # leave-one-out: a clip never sits in its own baseline
            mu = ref[b].mean(0); sd = ref[b].std(0) + 1e-6
            if mode == 'neutralshr_z':   # speaker neutral std shrunk toward pooled within-speaker neutral std (k=12 pseudo-clips)
                nb = b.sum(); sd = np.sqrt((nb * sd ** 2 + 12 * POOLV(ref)) / (nb + 12))
            Z[i] = (X[i] - mu) / sd if mode.endswith('_z') else (X[i] - mu)
    return Z

def make(clf):
    if clf.startswith('lr'):
        C = float(clf[2:] or 1)
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, class_weight='balanced', max_iter=3000))
    if clf == 'hgb':
        return HistGradientBoostingClassifier(max_depth=3, max_iter=200, learning_rate=0.05, l2_regularization=1.0, class_weight='balanced', random_state=0)
    if clf == 'mlp':
        from sklearn.neural_network import MLPClassifier
        return make_pipeline(StandardScaler(), MLPClassifier((16,), alpha=1.0, max_iter=2000, random_state=0))

def mets(yt, p):
    return dict(ba=balanced_accuracy_score(yt, p >= .5), auc=roc_auc_score(yt, p), f1=f1_score(yt, p >= .5))

def run(fs, mode, clf, aug=False, taskB_dedicated=False, verbose=True):
    cols = [names.index(c) for c in fs]
    X = {c: D[c][:, cols] for c in ['clean', 'up12', 'dn12', 'tel', 'telrg']}
    Nc = norm(X['clean'], mode)                                   # clean, own baseline
    Nt = norm(X['telrg'], mode)                                   # telephone+random gain, baseline from same channel
    Nfix = {c: norm(X[c], mode, ref=X['clean']) for c in ['up12', 'dn12', 'tel']}  # transformed clip vs clean baseline
    P = {k: np.zeros(len(y)) for k in ['clean', 'telrg', 'up12', 'dn12', 'tel']}
    PB = {k: np.zeros(len(y)) for k in ['clean', 'telrg']}
    for s in SPK:
        te = spk == s; tr = ~te
        Xtr, ytr = Nc[tr], y[tr]
        if aug: Xtr = np.vstack([Xtr, Nt[tr]]); ytr = np.concatenate([ytr, ytr])
        m = make(clf).fit(Xtr, ytr)
        P['clean'][te] = m.predict_proba(Nc[te])[:, 1]; P['telrg'][te] = m.predict_proba(Nt[te])[:, 1]
        for c in Nfix: P[c][te] = m.predict_proba(Nfix[c][te])[:, 1]
        if taskB_dedicated:
            tb = tr & subB
            Xb, yb = Nc[tb], y[tb]
            if aug: Xb = np.vstack([Xb, Nt[tb]]); yb = np.concatenate([yb, yb])
            mb = make(clf).fit(Xb, yb)
            PB['clean'][te] = mb.predict_proba(Nc[te])[:, 1]; PB['telrg'][te] = mb.predict_proba(Nt[te])[:, 1]
    r = {}
    for c in ['clean', 'telrg']:
        r[f'A_{c}'] = mets(y, P[c]); r[f'B_{c}'] = mets(y[subB], P[c][subB])
        if taskB_dedicated: r[f'Bded_{c}'] = mets(y[subB], PB[c][subB])
    inv = {}
    for c in ['up12', 'dn12', 'tel']:
        d = 10 * np.abs(P[c] - P['clean']); inv[c] = (d.max(), d.mean(), np.percentile(d, 95))
    d = 10 * np.abs(P['telrg'] - P['clean']); inv['telrg_matchedbase'] = (d.max(), d.mean(), np.percentile(d, 95))
    r['inv'] = inv
    if verbose:
        s = f"{mode:10s} {clf:6s} aug={int(aug)} | "
        for c in ['clean', 'telrg']:
            a, b = r[f'A_{c}'], r[f'B_{c}']
            s += f"{c}: A ba {a['ba']:.3f} auc {a['auc']:.3f} f1 {a['f1']:.3f}  B ba {b['ba']:.3f} auc {b['auc']:.3f} f1 {b['f1']:.3f} | "
        s += "inv max/mean: " + " ".join(f"{k}:{v[0]:.2f}/{v[1]:.2f}" for k, v in inv.items())
        print(s, flush=True)
    return r, P
