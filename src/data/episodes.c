/* episodes.c: N-way K-shot episodes drawn from a class list, with quarter-turn
 * rotation classes and per-image random augmentation.
 *
 * Not here: loading (omniglot.c) or splitting (splits.c). Sampling makes no
 * heap calls: the episode's buffers come from ml_episode_init, and choosing
 * m distinct items of n uses Floyd's algorithm, which needs no scratch. */
#define _DEFAULT_SOURCE /* madvise */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "images_internal.h"

/* ---- augmentation -------------------------------------------------------------- */

static int augment_active(const ml_augment *a) {
    return a && (a->rotate_deg != 0.0 || a->scale_min != 0.0 || a->scale_max != 0.0 ||
                 a->translate != 0.0 || a->flip_h > 0.0 || a->flip_v > 0.0);
}

int ml_augment_active(const ml_augment *a) { return augment_active(a); }

static ml_status augment_check(const ml_augment *a, char *err, size_t errlen) {
    if (!augment_active(a)) return ML_OK;
    double lo = a->scale_min > 0.0 ? a->scale_min : 1.0, hi = a->scale_max > 0.0 ? a->scale_max : lo;
    if (!(a->rotate_deg >= 0.0 && a->rotate_deg <= 180.0) || !(a->translate >= 0.0) ||
        !(a->scale_min >= 0.0) || !(a->scale_max >= 0.0) || !(lo <= hi) || !(a->flip_h >= 0.0 && a->flip_h <= 1.0) ||
        !(a->flip_v >= 0.0 && a->flip_v <= 1.0) || !isfinite(a->translate)) {
        ml__errf(err, errlen, "augment: want rotate_deg in [0, 180], translate >= 0, 0 < scale_min <= scale_max, "
                                 "flip probabilities in [0, 1]");
        return ML_ERR_ARG;
    }
    return ML_OK;
}

/* dst[r][c] = src sampled bilinearly (zero outside) at the point that an
 * output pixel comes from under: quarter turns `rot`, then a random flip,
 * shift, zoom and rotation about the centre. The draws, in this order, are
 * made only for the options that are on: angle, zoom, shift x, shift y,
 * flip h, flip v. */
static void augment_one(const float *src, int S, int rot, const ml_augment *a, ml_rng *rng, float *dst) {
    const double pi = 3.14159265358979323846;
    double ang = 0.0, sc = 1.0, tx = 0.0, ty = 0.0;
    int fh = 0, fv = 0;
    if (a->rotate_deg > 0.0) ang = (2.0 * ml_rng_uniform(rng) - 1.0) * a->rotate_deg * pi / 180.0;
    if (a->scale_min > 0.0 || a->scale_max > 0.0) {
        double lo = a->scale_min > 0.0 ? a->scale_min : 1.0, hi = a->scale_max > 0.0 ? a->scale_max : lo;
        sc = lo + (hi - lo) * ml_rng_uniform(rng);
    }
    if (a->translate > 0.0) {
        tx = (2.0 * ml_rng_uniform(rng) - 1.0) * a->translate;
        ty = (2.0 * ml_rng_uniform(rng) - 1.0) * a->translate;
    }
    if (a->flip_h > 0.0) fh = ml_rng_uniform(rng) < a->flip_h;
    if (a->flip_v > 0.0) fv = ml_rng_uniform(rng) < a->flip_v;
    const double ca = cos(ang), sa = sin(ang), ctr = 0.5 * (S - 1);
    for (int r = 0; r < S; r++)
        for (int c = 0; c < S; c++) {
            double u = c - ctr, v = r - ctr;
            if (fh) u = -u;
            if (fv) v = -v;
            u = (u - tx) / sc;
            v = (v - ty) / sc;
            double ur = ca * u + sa * v, vr = -sa * u + ca * v;
            /* Undo the quarter turns (see ml__rot90) in centred coordinates. */
            double us, vs;
            switch (rot & 3) {
            case 0: us = ur, vs = vr; break;
            case 1: us = -vr, vs = ur; break;
            case 2: us = -ur, vs = -vr; break;
            default: us = vr, vs = -ur; break;
            }
            double x = us + ctr, y = vs + ctr;
            double fx = floor(x), fy = floor(y);
            int x0 = (int)fx, y0 = (int)fy;
            double wx = x - fx, wy = y - fy, acc = 0.0;
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    int yy = y0 + dy, xx = x0 + dx;
                    if (yy < 0 || yy >= S || xx < 0 || xx >= S) continue;
                    double w = (dx ? wx : 1.0 - wx) * (dy ? wy : 1.0 - wy);
                    acc += w * src[(size_t)yy * S + xx];
                }
            dst[(size_t)r * S + c] = (float)acc;
        }
}

/* ---- compact sets: 8-bit codes, rare values as escapes ------------------------------ */

#define COMPACT_MAX_SIZE 64 /* a compact image is expanded on the stack (16 KB) */

static int has_pixels(const ml_image_set *s) { return s->x || (s->codes && s->palette); }

/* Image `index` of a compact set as floats: a code below the escape is the
 * palette entry itself, the escape takes the image's next escape. */
static void expand(const ml_image_set *s, int64_t index, float *dst) {
    const size_t plane = (size_t)s->size * s->size;
    const uint8_t *code = s->codes + (size_t)index * plane;
    const uint16_t *esc = s->escapes + s->escape_start[index];
    for (size_t k = 0; k < plane; k++) {
        unsigned c = code[k];
        dst[k] = s->palette[c != ML_IMAGE_ESCAPE ? c : *esc++];
    }
}

static uint32_t float_bits(float v) {
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

/* Open addressing on the value's bits (exact: -0 and 0 stay apart). Kept
 * under 128 KB (the counts apart): large blocks freed by glibc raise its mmap threshold for
 * the rest of the process, which then keeps the workers' big scratch in
 * its heaps (measured: +5 MB at the peak of a 2-thread MAML run). */
enum { MAX_VALUES = 4096, TABLE = 2 * MAX_VALUES };
typedef struct value_table {
    uint32_t key[TABLE];
    int32_t slot[TABLE]; /* -1 empty, else an index into the values */
    float value[MAX_VALUES];
    int64_t *count;            /* [MAX_VALUES] pixels holding value[i] */
    int32_t rank[MAX_VALUES];  /* value i's position in the palette */
    int n;
} value_table;

static int32_t *table_find(value_table *t, uint32_t bits) {
    uint32_t h = (bits * 2654435761u) & (TABLE - 1);
    while (t->slot[h] >= 0 && t->key[h] != bits) h = (h + 1) & (TABLE - 1);
    return &t->slot[h];
}

/* The set's distinct values and how often each occurs; 0 when there are
 * more than MAX_VALUES. */
static int count_values(value_table *t, const float *x, size_t n) {
    for (int k = 0; k < TABLE; k++) t->slot[k] = -1;
    t->n = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t bits = float_bits(x[k]);
        int32_t *slot = table_find(t, bits);
        if (*slot < 0) {
            if (t->n == MAX_VALUES) return 0;
            t->key[slot - t->slot] = bits;
            *slot = t->n;
            t->value[t->n] = x[k];
            t->count[t->n++] = 0;
        }
        t->count[*slot]++;
    }
    return 1;
}

typedef struct ranked {
    int64_t count;
    int32_t value; /* index into the table's values */
} ranked;

/* Most frequent first; ties by first appearance, so the order is fixed. */
static int cmp_by_count(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return (x->value > y->value) - (x->value < y->value);
}

/* palette[r] = the value of rank r; t->rank[i] = value i's rank. */
static ml_status rank_values(value_table *t, float *palette) {
    ranked *order = ml_malloc(sizeof(ranked) * (size_t)(t->n ? t->n : 1));
    if (!order) return ML_ERR_NOMEM;
    for (int i = 0; i < t->n; i++) order[i] = (ranked){t->count[i], i};
    qsort(order, (size_t)t->n, sizeof *order, cmp_by_count);
    for (int r = 0; r < t->n; r++) {
        palette[r] = t->value[order[r].value];
        t->rank[order[r].value] = r;
    }
    ml_free(order);
    return ML_OK;
}

static void release_pages(unsigned char *lo_ptr, unsigned char *hi_ptr) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t lo = ((uintptr_t)lo_ptr + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t hi = (uintptr_t)hi_ptr & ~(uintptr_t)(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* In place: pixel k's code goes to byte k, inside floats already read (the
 * one at bytes 4k.. is read before byte k is written). */
static void encode(value_table *t, ml_image_set *s, uint16_t *escapes, int64_t *escape_start) {
    const size_t plane = (size_t)s->size * s->size;
    unsigned char *buf = (unsigned char *)s->x;
    int64_t e = 0;
    for (int64_t i = 0; i < s->n; i++) {
        escape_start[i] = e;
        for (size_t k = (size_t)i * plane; k < (size_t)(i + 1) * plane; k++) {
            float v;
            memcpy(&v, buf + 4 * k, sizeof v);
            int32_t r = t->rank[*table_find(t, float_bits(v))];
            if (r < ML_IMAGE_ESCAPE) {
                buf[k] = (unsigned char)r;
            } else {
                buf[k] = ML_IMAGE_ESCAPE;
                escapes[e++] = (uint16_t)r;
            }
        }
    }
    escape_start[s->n] = e;
}

ml_status ml_image_set_compact(ml_image_set *s) {
    if (!s || !s->x || s->size > COMPACT_MAX_SIZE) return ML_OK;
    const size_t n = (size_t)s->n * s->size * s->size;
    value_table *t = ml_malloc(sizeof *t);
    int64_t *count = ml_malloc(sizeof(int64_t) * MAX_VALUES);
    float *palette = NULL;
    uint16_t *escapes = NULL;
    int64_t *escape_start = NULL;
    ml_status st = ML_ERR_NOMEM;
    if (!t || !count) goto out;
    t->count = count;
    if (!count_values(t, s->x, n)) { /* too many values: stays float */
        st = ML_OK;
        goto out;
    }
    int64_t n_escapes = 0;
    palette = ml_malloc(sizeof(float) * (size_t)(t->n ? t->n : 1));
    if (!palette) goto out;
    if (rank_values(t, palette) != ML_OK) goto out;
    for (int i = 0; i < t->n; i++)
        if (t->rank[i] >= ML_IMAGE_ESCAPE) n_escapes += t->count[i];
    escapes = ml_malloc(sizeof(uint16_t) * (size_t)(n_escapes ? n_escapes : 1));
    escape_start = ml_malloc(sizeof(int64_t) * (size_t)(s->n + 1));
    if (!escapes || !escape_start) goto out;
    encode(t, s, escapes, escape_start);
    /* The buffer is kept (no free: see value_table) with its pages past the
     * codes given back. */
    release_pages((unsigned char *)s->x + n, (unsigned char *)s->x + 4 * n);
    s->codes = (uint8_t *)s->x;
    s->x = NULL;
    s->escapes = escapes;
    s->escape_start = escape_start;
    s->palette = palette;
    s->n_palette = t->n;
    escapes = NULL;
    escape_start = NULL;
    palette = NULL;
    st = ML_OK;
out:
    ml_free(t);
    ml_free(count);
    ml_free(palette);
    ml_free(escapes);
    ml_free(escape_start);
    return st;
}

ml_status ml_image_set_copy(const ml_image_set *s, int64_t index, int rot, const ml_augment *aug,
                            ml_rng *rng, float *dst) {
    if (!s || !dst || index < 0 || index >= s->n || rot < 0 || rot > 3 || !has_pixels(s)) return ML_ERR_ARG;
    const int S = s->size;
    float plane[COMPACT_MAX_SIZE * COMPACT_MAX_SIZE];
    const float *src = s->x ? s->x + (size_t)index * S * S : plane;
    if (!s->x) {
        if (!augment_active(aug) && !rot) {
            expand(s, index, dst);
            return ML_OK;
        }
        expand(s, index, plane);
    }
    if (augment_active(aug)) {
        if (!rng || augment_check(aug, NULL, 0) != ML_OK) return ML_ERR_ARG;
        augment_one(src, S, rot, aug, rng, dst);
    } else if (rot) {
        ml__rot90(src, S, rot, dst);
    } else {
        memcpy(dst, src, sizeof(float) * (size_t)S * S);
    }
    return ML_OK;
}

/* ---- episodes ------------------------------------------------------------------- */

void ml_episode_free(ml_episode *e) {
    if (!e) return;
    ml_free(e->xs); /* xq lies in the same block */
    ml_free(e->ys);
    ml_free(e->yq);
    ml_free(e->classes);
    ml_free(e->class_index);
    ml_free(e->support_index);
    ml_free(e->query_index);
    memset(e, 0, sizeof *e);
}

static ml_status episode_init(ml_episode *e, int ways, int shots, int queries, int size, int images);

ml_status ml_episode_init(ml_episode *e, int ways, int shots, int queries, int size) {
    return episode_init(e, ways, shots, queries, size, 1);
}

ml_status ml_episode_init_drawn(ml_episode *e, int ways, int shots, int queries, int size) {
    return episode_init(e, ways, shots, queries, size, 0);
}

static ml_status episode_init(ml_episode *e, int ways, int shots, int queries, int size, int images) {
    if (!e) return ML_ERR_ARG;
    memset(e, 0, sizeof *e);
    if (ways < 1 || shots < 1 || queries < 0 || size < 1 || size > 4096 || ways > (1 << 20) ||
        shots > (1 << 20) || queries > (1 << 20))
        return ML_ERR_ARG;
    e->ways = ways, e->shots = shots, e->queries = queries, e->size = size;
    size_t plane = (size_t)size * size, ns = (size_t)ways * shots, nq = (size_t)ways * queries;
    if (images) { /* one block, the queries after the support: the batch of both with no copy */
        e->xs = ml_malloc(sizeof(float) * plane * (ns + (nq ? nq : 1)));
        e->xq = e->xs ? e->xs + plane * ns : NULL;
    }
    e->ys = ml_malloc(sizeof(int32_t) * ns);
    e->yq = ml_malloc(sizeof(int32_t) * (nq ? nq : 1));
    e->classes = ml_malloc(sizeof(ml_class_ref) * (size_t)ways);
    e->class_index = ml_malloc(sizeof(int32_t) * (size_t)ways);
    e->support_index = ml_malloc(sizeof(int64_t) * ns);
    e->query_index = ml_malloc(sizeof(int64_t) * (nq ? nq : 1));
    if ((images && (!e->xs || !e->xq)) || !e->ys || !e->yq || !e->classes || !e->class_index || !e->support_index || !e->query_index) {
        ml_episode_free(e);
        return ML_ERR_NOMEM;
    }
    return ML_OK;
}

/* m distinct values of [0, n) in random order (Floyd's algorithm, then a
 * Fisher-Yates shuffle), written to a[0 .. na-1] then b[0 .. m-na-1], so the
 * support and query picks of one class land in their own rows directly. */
#define PICK(i) (*((i) < na ? &a[(i)] : &b[(i) - na]))
static void choose_distinct(ml_rng *rng, int64_t n, int m, int64_t *a, int na, int64_t *b) {
    int got = 0;
    for (int64_t j = n - m; j < n; j++) {
        int64_t t = (int64_t)ml_rng_below(rng, (uint32_t)(j + 1));
        int dup = 0;
        for (int i = 0; i < got && !dup; i++) dup = PICK(i) == t;
        PICK(got) = dup ? j : t;
        got++;
    }
    for (int i = m - 1; i > 0; i--) {
        int k = (int)ml_rng_below(rng, (uint32_t)(i + 1));
        int64_t tmp = PICK(i);
        PICK(i) = PICK(k);
        PICK(k) = tmp;
    }
}
#undef PICK

/* Weights that change the draw: NULL when none are given or all are equal
 * (then the uniform draw keeps old runs' episodes); -1 when invalid. */
static int weights_check(const float *w, int n, int ways, char *err, size_t errlen) {
    if (!w) return 0;
    int positive = 0, equal = 1;
    for (int i = 0; i < n; i++) {
        if (!isfinite(w[i]) || w[i] < 0.0f) {
            ml__errf(err, errlen, "episode: class weight %d is %g; weights must be finite and >= 0", i, (double)w[i]);
            return -1;
        }
        positive += w[i] > 0.0f;
        equal &= w[i] == w[0];
    }
    if (positive < ways) {
        ml__errf(err, errlen, "episode: %d ways asked but only %d classes have a positive weight", ways, positive);
        return -1;
    }
    return !equal;
}

/* Sequential draws without replacement: class i with probability w[i] over
 * the weight left. picked[] holds the draws so far (no scratch needed). */
static void choose_weighted(ml_rng *rng, const float *w, int n, int m, int64_t *picked) {
    for (int k = 0; k < m; k++) {
        double left = 0.0;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int j = 0; j < k && !taken; j++) taken = picked[j] == i;
            if (!taken) left += w[i];
        }
        double u = ml_rng_uniform(rng) * left, acc = 0.0;
        int64_t choice = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int j = 0; j < k && !taken; j++) taken = picked[j] == i;
            if (taken || w[i] <= 0.0f) continue;
            choice = i; /* the last positive one left absorbs rounding */
            acc += w[i];
            if (u < acc) break;
        }
        picked[k] = choice;
    }
}

ml_status ml_episode_check(const ml_image_set *s, const ml_class_list *classes, int ways, int per_class, char *err,
                           size_t errlen) {
    if (classes->n < ways) {
        ml__errf(err, errlen, "only %d class%s, %d needed", classes->n, classes->n == 1 ? "" : "es", ways);
        return ML_ERR_ARG;
    }
    for (int i = 0; i < classes->n; i++) {
        const ml_class_ref *r = &classes->items[i];
        if (r->cls < 0 || r->cls >= s->n_classes || r->rot < 0 || r->rot > 3) {
            ml__errf(err, errlen, "class list entry %d (class %d, rotation %d) is not in the set", i, (int)r->cls,
                     (int)r->rot);
            return ML_ERR_ARG;
        }
        int64_t have = s->class_start[r->cls + 1] - s->class_start[r->cls];
        if (have == 0) {
            ml__errf(err, errlen, "class %s is empty", s->class_names[r->cls]);
            return ML_ERR_ARG;
        }
        if (have < per_class) {
            ml__errf(err, errlen, "class %s has %lld images, needs %d", s->class_names[r->cls], (long long)have,
                     per_class);
            return ML_ERR_ARG;
        }
    }
    return ML_OK;
}

static ml_status sample(ml_episode *e, const ml_image_set *s, const ml_class_list *classes, const float *weights,
                        const ml_augment *aug, ml_rng *rng, int copy, char *err, size_t errlen);

ml_status ml_episode_sample(ml_episode *e, const ml_image_set *s, const ml_class_list *classes,
                            const ml_augment *aug, ml_rng *rng, char *err, size_t errlen) {
    return sample(e, s, classes, NULL, aug, rng, 1, err, errlen);
}

ml_status ml_episode_sample_weighted(ml_episode *e, const ml_image_set *s, const ml_class_list *classes,
                                     const float *weights, const ml_augment *aug, ml_rng *rng, char *err,
                                     size_t errlen) {
    return sample(e, s, classes, weights, aug, rng, 1, err, errlen);
}

ml_status ml_episode_draw_weighted(ml_episode *e, const ml_image_set *s, const ml_class_list *classes,
                                   const float *weights, ml_rng *rng, char *err, size_t errlen) {
    return sample(e, s, classes, weights, NULL, rng, 0, err, errlen);
}

ml_status ml_episode_fill(const ml_episode *e, const ml_image_set *s, float *xs, float *xq) {
    return ml_episode_fill_rows(e, s, xs, xq, 0, e ? e->ways * (e->shots + e->queries) : 0);
}

ml_status ml_episode_fill_rows(const ml_episode *e, const ml_image_set *s, float *xs, float *xq, int lo, int hi) {
    if (!e || !s || !has_pixels(s) || !xs || !xq || e->size != s->size || lo < 0 || hi < lo ||
        hi > e->ways * (e->shots + e->queries))
        return ML_ERR_ARG;
    const size_t plane = (size_t)s->size * s->size;
    const int ns = e->ways * e->shots;
    for (int r = lo; r < hi; r++) { /* support rows (class r / shots), then query rows */
        const int q = r - ns, k = r < ns ? r / e->shots : q / e->queries;
        const int64_t index = r < ns ? e->support_index[r] : e->query_index[q];
        float *to = r < ns ? xs + (size_t)r * plane : xq + (size_t)q * plane;
        if (ml_image_set_copy(s, index, e->classes[k].rot, NULL, NULL, to)) return ML_ERR_ARG;
    }
    return ML_OK;
}

static ml_status sample(ml_episode *e, const ml_image_set *s, const ml_class_list *classes, const float *weights,
                        const ml_augment *aug, ml_rng *rng, int copy, char *err, size_t errlen) {
    if (!e || (copy && !e->xs) || !e->ys || !s || !has_pixels(s) || !classes || !rng) {
        ml__errf(err, errlen, "episode: needs an initialised episode, a loaded set, a class list and an rng");
        return ML_ERR_ARG;
    }
    if (e->size != s->size) {
        ml__errf(err, errlen, "episode: made for %dx%d images, the set holds %dx%d", e->size, e->size,
                    s->size, s->size);
        return ML_ERR_SHAPE;
    }
    const int N = e->ways, K = e->shots, Q = e->queries;
    /* Validate the whole list, so an error never depends on the draw. */
    char why[512];
    if (ml_episode_check(s, classes, N, K + Q, why, sizeof why)) {
        ml__errf(err, errlen, "episode: %d ways, %d shots + %d queries: %s", N, K, Q, why);
        return ML_ERR_ARG;
    }
    int weighted = weights_check(weights, classes->n, N, err, errlen);
    if (weighted < 0) return ML_ERR_ARG;
    ml_status st = augment_check(aug, err, errlen);
    if (st != ML_OK) return st;
    const int aug_on = augment_active(aug);
    const size_t plane = (size_t)s->size * s->size;

    /* Classes: support_index doubles as scratch (it has >= N rows) until the
     * images are chosen. */
    if (weighted) choose_weighted(rng, weights, classes->n, N, e->support_index);
    else choose_distinct(rng, classes->n, N, e->support_index, N, NULL);
    for (int k = 0; k < N; k++) {
        e->class_index[k] = (int32_t)e->support_index[k];
        e->classes[k] = classes->items[e->support_index[k]];
    }

    for (int k = 0; k < N; k++) {
        const ml_class_ref r = e->classes[k];
        const int64_t first = s->class_start[r.cls], have = s->class_start[r.cls + 1] - first;
        int64_t *sup = e->support_index + (size_t)k * K, *qry = e->query_index + (size_t)k * Q;
        choose_distinct(rng, have, K + Q, sup, K, qry);
        for (int j = 0; j < K; j++) sup[j] += first;
        for (int j = 0; j < Q; j++) qry[j] += first;
        for (int j = 0; j < K; j++) {
            size_t row = (size_t)k * K + j;
            e->ys[row] = k;
            if (copy) ml_image_set_copy(s, e->support_index[row], r.rot, aug_on ? aug : NULL, rng, e->xs + row * plane);
        }
        for (int j = 0; j < Q; j++) {
            size_t row = (size_t)k * Q + j;
            e->yq[row] = k;
            if (copy) ml_image_set_copy(s, e->query_index[row], r.rot, aug_on ? aug : NULL, rng, e->xq + row * plane);
        }
    }
    return ML_OK;
}
