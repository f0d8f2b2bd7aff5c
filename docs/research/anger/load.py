import numpy as np, soundfile as sf, csv
rows=list(csv.DictReader(open('/work/shared/data/emotion/labels.csv')))
auds=[];lens=[];peaks=[]
for r in rows:
    x,sr=sf.read('/work/shared/data/'+r['path'],dtype='float32'); assert sr==16000 and x.ndim==1
    auds.append(x); lens.append(len(x)/sr); peaks.append(np.abs(x).max())
np.save('audio.npy',np.array(auds,dtype=object),allow_pickle=True)
import collections
print(collections.Counter(r['emotion'] for r in rows), collections.Counter(r['label_angry'] for r in rows))
print('len',np.mean(lens),np.min(lens),np.max(lens))
pk=np.array(peaks); em=np.array([r['emotion'] for r in rows])
for e in sorted(set(em)):
    rms=[20*np.log10(np.sqrt(np.mean(auds[i]**2))+1e-9) for i in np.where(em==e)[0]]
    print(e, 'peak med %.2f max %.2f'%(np.median(pk[em==e]),pk[em==e].max()), 'rmsdB %.1f'%np.mean(rms))
print(set(r['note'] for r in rows), set(r['speaker'] for r in rows))
