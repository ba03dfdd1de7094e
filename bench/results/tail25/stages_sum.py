import sys, re, statistics as S
# usage: stages_sum.py FILE [MAX_2T_EPISODE_MS]: 2-thread runs slower than that (a core taken by another job) left out
max2t=float(sys.argv[2]) if len(sys.argv)>2 else 1e9
rows={}
for l in open(sys.argv[1]):
    f=l.split()
    if len(f)<3 or f[1] not in ("1T","2T"): continue
    key=(f[0],f[1])
    ep=[float(kv.split('=')[1]) for kv in f if kv.startswith('episode=')]
    if f[1]=='2T' and ep and ep[0]>max2t: continue
    for kv in f[3:]:
        if '=' in kv:
            k,v=kv.split('='); 
            if k in('n',) or k.startswith('load'): continue
            rows.setdefault(key,{}).setdefault(k,[]).append(float(v))
for key in sorted(rows):
    d=rows[key]
    print(key[0],key[1],' '.join(f"{k}={S.median(v):.3f}" for k,v in d.items() if k in('blk3','blk4','blocks3-4','episode')), 'reps=%d'%len(d['episode']))
for b in sorted({k[0] for k in rows}):
    try: print(b,'scaling episode %.3f  blocks3-4 %.3f'%(S.median(rows[(b,'1T')]['episode'])/S.median(rows[(b,'2T')]['episode']), S.median(rows[(b,'1T')]['blocks3-4'])/S.median(rows[(b,'2T')]['blocks3-4'])))
    except KeyError: pass
