import numpy as np, csv, time
from feats import extract
from transforms import gain, telephone
A=np.load('audio.npy',allow_pickle=True)
rng=np.random.default_rng(0)
rg=rng.uniform(-12,12,len(A))
conds={'clean':lambda x,i:x,'up12':lambda x,i:gain(x,12),'dn12':lambda x,i:gain(x,-12),
       'tel':lambda x,i:telephone(x),'telrg':lambda x,i:telephone(gain(x,rg[i]))}
out={}
for c,f in conds.items():
    t=time.time(); rows=[extract(f(x.astype(np.float64),i)) for i,x in enumerate(A)]
    names=list(rows[0]); out[c]=np.array([[r[n] for n in names] for r in rows])
    print(c,time.time()-t,flush=True)
np.savez('features.npz',names=np.array(names),rg=rg,**out)
# sanity: mu-law SNR
x=A[0].astype(np.float64); y=telephone(x)
print('tel check corr',np.corrcoef(resample_poly(x,1,2) if False else x[:len(y)],y[:len(x)])[0,1])
