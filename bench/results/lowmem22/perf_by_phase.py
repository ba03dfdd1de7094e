import sys,collections,bisect
names={0:'inner',1:'q1_blk1fwd',2:'q2_rest',3:'q3_recomp_bwd',4:'walk',5:'commit',9:'between'}
log=[l.split() for l in open(sys.argv[2])]
bt=[float(a) for a,b in log]; bp=[int(b) for a,b in log]
skip_before = bt[64*6] if len(bt)>64*6 else bt[0]  # skip first ~2 iterations (64 tasks * 6 marks)
dur=collections.Counter()
for i in range(1,len(bt)):
    if bt[i]<skip_before: continue
    dur[names[bp[i]] if bp[i]!=9 else 'between']+=bt[i]-bt[i-1]
cnt=collections.Counter(); leaf=collections.defaultdict(collections.Counter); tids=collections.Counter()
for line in open(sys.argv[1]):
    p=line.split()
    if len(p)<2 or not p[1].endswith(':'): continue
    t=int(p[0]); tm=float(p[1][:-1]); sym=p[3] if len(p)>3 else '?'
    if tm<skip_before or tm>bt[-1]: continue
    i=bisect.bisect_left(bt,tm)
    ph=names[bp[i]] if bp[i]!=9 else 'between'
    tids[t]+=1
    cnt[(ph,t)]+=1
    if sym.startswith('[unknown]') or sym=='?': sym='jit/unknown'
    leaf[(ph,t)][sym]+=1
main=tids.most_common(2)
print('tids',main)
print('wall ms per phase (sum):',{k:round(v*1e3,1) for k,v in dur.items()})
hz=5000
for ph in ['inner','q1_blk1fwd','q2_rest','q3_recomp_bwd','walk','commit','between']:
    row=[ph, 'wall %.1f ms'%(dur[ph]*1e3)]
    for t,_ in main: row.append('tid%d cpu %.1f ms'%(t,cnt[(ph,t)]*1e3/hz))
    print(*row)
for ph in ['inner','walk','q3_recomp_bwd','q1_blk1fwd']:
    for t,_ in main:
        print(ph,t,leaf[(ph,t)].most_common(10))
