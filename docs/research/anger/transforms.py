import numpy as np, io, soundfile as sf
from scipy.signal import resample_poly
def gain(x, db): return np.clip(x * 10 ** (db / 20), -1, 1)
def telephone(x):
    y = np.clip(resample_poly(x, 1, 2), -1, 1)
    b = io.BytesIO(); sf.write(b, y, 8000, format='WAV', subtype='ULAW'); b.seek(0)
    z, _ = sf.read(b, dtype='float64')
    return resample_poly(z, 2, 1)
