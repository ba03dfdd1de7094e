# apply stage-timer instrumentation to src/tensor/conv_bn_blk16.c in cwd (base or new code)
import re,sys
p='src/tensor/conv_bn_blk16.c'
s=open(p).read()
hdr=r'''#include "tensor/kernels_par.h"
#include <stdio.h>
#include <time.h>
/* STAGE TIMER (instrumentation, not for commit) */
static double st_now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec * 1e-6; }
#define ST_N 20000
static float st_v[11][ST_N]; static int st_c[11]; static double st_prev_end;
static const char *st_name[11] = {"conv2","bn2","conv3","bn3","conv4","bn4","blk2","blk3","blk4","blocks3-4","episode"};
static int st_cmp(const void *a, const void *b) { float x = *(const float *)a, y = *(const float *)b; return (x > y) - (x < y); }
static void st_dump(void) {
    const char *e = getenv("ML_STAGE_TIMES"); if (!e) return;
    FILE *f = fopen(e, "a"); if (!f) return;
    fprintf(f, "%s", getenv("ST_LABEL") ? getenv("ST_LABEL") : "?");
    for (int k = 0; k < 11; k++) { int n = st_c[k] - 3; if (n < 1) continue;
        qsort(st_v[k] + 3, (size_t)n, sizeof(float), st_cmp);
        fprintf(f, " %s=%.4f", st_name[k], st_v[k][3 + n / 2]); }
    fprintf(f, " n=%d\n", st_c[6] - 3); fclose(f);
}
static void st_add(int k, double ms) { static int reg; if (!reg) { reg = 1; atexit(st_dump); } if (st_c[k] < ST_N) st_v[k][st_c[k]++] = (float)ms; }
static int st_idx(int64_t h) { return h >= 14 ? 0 : h >= 7 ? 2 : 4; }
static double st_b3_t0;
'''
s=s.replace('#include "tensor/kernels_par.h"\n',hdr,1)
# t0 before conv: find the line with forward_blk16 call in main function
m=re.search(r'\n(    (const int tail = [^\n]*\n    )?if \((!tail && )?forward_blk16\(ctx, &s, x->data, w->data, y->data\)\) return NULL;\n)', s)
assert m
blk=m.group(1)
s=s.replace(blk,'    const int st_on = !keep; const double st_t0 = st_now(); double st_t1 = 0;\n    if (st_on && h == 7) st_b3_t0 = st_t0;\n'+blk+'    st_t1 = st_now();\n',1)
m=re.search(r'\n(    ml_arena_rewind\(ctx->arena, m\);\n    if \(running_mean && running_var\) update_running)', s)
assert m
s=s.replace(m.group(1),'''    if (st_on) { const double st_t3 = st_now(); const int k = st_idx(h);
        st_add(k, st_t1 - st_t0); st_add(k + 1, st_t3 - st_t1); st_add(6 + k / 2, st_t3 - st_t0);
        if (h < 7) { st_add(9, st_t3 - st_b3_t0); if (st_prev_end > 0) st_add(10, st_t3 - st_prev_end); st_prev_end = st_t3; } }
'''+m.group(1),1)
open(p,'w').write(s)
