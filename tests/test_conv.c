/* test_conv.c: the fast conv2d kernels and ml__sgemm against their naive twins.
 *
 * Checks, on many shapes including degenerate ones (1x1 images, batch 1, odd
 * channel counts, stride 2 on odd sizes, 1x1 and 5x5 kernels, pad 0..2):
 *   - fast == ref for forward, backward-data and backward-weight (rel. ~1e-4);
 *   - the adjoint identities <conv(x,w), dy> = <x, bwd_data(dy,w)> = <w, bwd_weight(x,dy)>
 *     evaluated in double, which ties the three kernels to one bilinear form;
 *   - the kernels overwrite their outputs (NaN-filled beforehand) and stay
 *     inside the scratch size they report, for all passes and for each pass
 *     (a canary after the scratch);
 *   - oneDNN's forward and backward-data run in image chunks give the bits
 *     of one call over the whole batch;
 *   - ml__sgemm == ml__sgemm_ref for the four transpose combinations. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metalearn/core.h"
#include "ml_test.h"
#include "tensor/conv.h"

static ml_rng rng;

static float *randn(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) p[i] = (float)ml_rng_normal(&rng);
    return p;
}
static float *nans(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}
static double dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Max |a-b| relative to max |b|: elementwise relative error is meaningless for
 * outputs that cancel to near zero, while the scale of the whole tensor is what
 * float accumulation error is proportional to. Returns 1 when within tol. */
static int close_rel(const float *a, const float *b, int64_t n, double tol, const char *what,
                     const ml_conv_shape *s) {
    double maxb = 0, maxd = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(b[i]) > maxb) maxb = fabs(b[i]);
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= maxd)) maxd = d, at = i; /* also catches NaN */
    }
    int ok = maxd <= tol * (maxb > 1e-30 ? maxb : 1.0);
    if (!ok)
        fprintf(stderr, "  %s n%d c%d %dx%d o%d k%dx%d s%d p%d: max diff %.3g at %lld (%.6g vs %.6g), scale %.3g\n",
                what, s->n, s->c, s->h, s->w, s->o, s->kh, s->kw, s->stride, s->pad, maxd, (long long)at,
                a[at], b[at], maxb);
    return ok;
}

#define CANARY 64
static int canary_ok(const float *p) {
    for (int i = 0; i < CANARY; i++)
        if (p[i] != 12345.f) return 0;
    return 1;
}

/* One shape: fast vs ref for all three passes, adjoint identities, scratch bound. */
static void check_shape(int n, int c, int h, int w, int o, int kh, int kw, int stride, int pad) {
    ml_conv_shape s;
    if (ml__conv_shape_init(&s, n, c, h, w, o, kh, kw, stride, pad)) {
        ML_FAIL_AT("shape n%d c%d %dx%d o%d k%dx%d s%d p%d rejected", n, c, h, w, o, kh, kw, stride, pad);
        return;
    }
    const int64_t nx = (int64_t)n * c * h * w, nw = (int64_t)o * c * kh * kw,
                  ny = (int64_t)n * o * s.oh * s.ow;
    const int64_t nscr = ml__conv2d_scratch_floats(&s);
    CHECK(nscr >= 0);
    float *x = randn(nx), *wt = randn(nw), *dy = randn(ny);
    float *y = nans(ny), *yr = nans(ny), *dx = nans(nx), *dxr = nans(nx), *dw = nans(nw), *dwr = nans(nw);
    float *scr = malloc(sizeof(float) * (size_t)(nscr + CANARY));
    for (int i = 0; i < CANARY; i++) scr[nscr + i] = 12345.f;

    ml__conv2d_forward(&s, x, wt, y, scr);
    ml__conv2d_backward_data(&s, dy, wt, dx, scr);
    ml__conv2d_backward_weight(&s, x, dy, dw, scr);
    CHECK(canary_ok(scr + nscr));
    /* each pass inside its own (smaller) share, the same bits */
    for (int pass = 0; pass < 3; pass++) {
        const int64_t np = ml__conv2d_pass_scratch_floats(&s, pass), nout = pass == 0 ? ny : pass == 1 ? nx : nw;
        CHECK(np >= 0 && np <= nscr);
        float *ps = malloc(sizeof(float) * (size_t)(np + CANARY)), *out = nans(nout);
        for (int i = 0; i < CANARY; i++) ps[np + i] = 12345.f;
        if (pass == 0) ml__conv2d_forward(&s, x, wt, out, ps);
        if (pass == 1) ml__conv2d_backward_data(&s, dy, wt, out, ps);
        if (pass == 2) ml__conv2d_backward_weight(&s, x, dy, out, ps);
        CHECK(canary_ok(ps + np));
        CHECK(!memcmp(out, pass == 0 ? y : pass == 1 ? dx : dw, sizeof(float) * (size_t)nout));
        free(ps), free(out);
    }
    ml__conv2d_forward_ref(&s, x, wt, yr);
    ml__conv2d_backward_data_ref(&s, dy, wt, dxr);
    ml__conv2d_backward_weight_ref(&s, x, dy, dwr);

    CHECK(close_rel(y, yr, ny, 1e-4, "forward", &s));
    CHECK(close_rel(dx, dxr, nx, 1e-4, "backward_data", &s));
    CHECK(close_rel(dw, dwr, nw, 1e-4, "backward_weight", &s));

    /* Adjoint identities of B(x, dy, w) = <conv(x, w), dy>, in double. The
     * tolerance is relative to sum |terms| since B itself may cancel to ~0. */
    double b1 = dot(y, dy, ny), b2 = dot(x, dx, nx), b3 = dot(wt, dw, nw);
    double scale = 0;
    for (int64_t i = 0; i < ny; i++) scale += fabs((double)y[i] * dy[i]);
    CHECK_NEAR(b2, b1, 1e-5 * scale + 1e-12, 0);
    CHECK_NEAR(b3, b1, 1e-5 * scale + 1e-12, 0);
    /* and for the naive twins (they are tested against the definition only here) */
    double r1 = dot(yr, dy, ny), r2 = dot(x, dxr, nx), r3 = dot(wt, dwr, nw);
    CHECK_NEAR(r2, r1, 1e-6 * scale + 1e-12, 0);
    CHECK_NEAR(r3, r1, 1e-6 * scale + 1e-12, 0);

    free(x), free(wt), free(dy), free(y), free(yr), free(dx), free(dxr), free(dw), free(dwr), free(scr);
}

static void test_shape_init(void) {
    ml_conv_shape s;
    CHECK_INT_EQ(ml__conv_shape_init(&s, 2, 3, 28, 28, 64, 3, 3, 1, 1), 0);
    CHECK_INT_EQ(s.oh, 28);
    CHECK_INT_EQ(s.ow, 28);
    CHECK_INT_EQ(ml__conv_shape_init(&s, 1, 1, 7, 7, 1, 3, 3, 2, 1), 0);
    CHECK_INT_EQ(s.oh, 4);
    CHECK_INT_EQ(ml__conv_shape_init(&s, 1, 1, 7, 6, 1, 3, 3, 2, 0), 0);
    CHECK_INT_EQ(s.oh, 3);
    CHECK_INT_EQ(s.ow, 2);
    CHECK_INT_EQ(ml__conv_shape_init(&s, 1, 1, 1, 1, 1, 3, 3, 1, 1), 0);
    CHECK_INT_EQ(s.oh, 1);
    /* empty outputs: kernel larger than the padded image (also with stride 2,
     * where truncating division would otherwise report one output row) */
    CHECK_INT_EQ(ml__conv_shape_init(&s, 1, 1, 1, 1, 1, 3, 3, 1, 0), -1);
    CHECK_INT_EQ(ml__conv_shape_init(&s, 1, 1, 2, 2, 1, 3, 3, 2, 0), -1);
    CHECK_INT_EQ(ml__conv_shape_init(&s, 1, 1, 5, 5, 1, 3, 3, 0, 0), -1);
    CHECK_INT_EQ(ml__conv_shape_init(&s, 0, 1, 5, 5, 1, 3, 3, 1, 0), -1);
    CHECK_INT_EQ(ml__conv_shape_init(&s, 1, 1, 5, 5, 1, 3, 3, 1, -1), -1);
}

static void test_conv_3x3(void) {
    check_shape(2, 3, 7, 7, 5, 3, 3, 2, 1);   /* c=3, o=5, 7x7 stride 2 */
    check_shape(1, 3, 7, 7, 5, 3, 3, 2, 0);
    check_shape(1, 1, 1, 1, 4, 3, 3, 1, 1);   /* 1x1 image */
    check_shape(3, 5, 1, 1, 2, 3, 3, 1, 1);
    check_shape(1, 1, 28, 28, 64, 3, 3, 1, 1); /* first layer of the 4-block CNN, batch 1 */
    check_shape(5, 64, 14, 14, 64, 3, 3, 1, 1); /* middle layer */
    check_shape(7, 16, 5, 5, 10, 3, 3, 1, 1);  /* several images per chunk */
    check_shape(91, 2, 4, 4, 3, 3, 3, 1, 1);   /* two uneven chunks */
    check_shape(4, 9, 10, 10, 17, 3, 3, 2, 0);
    check_shape(2, 6, 6, 6, 4, 3, 3, 1, 2);    /* pad > k-1: general backward-data route */
    check_shape(3, 20, 6, 5, 7, 3, 3, 1, 0);   /* flipped backward-data with pad 2 */
    check_shape(2, 4, 8, 9, 3, 3, 3, 2, 2);
}

/* The three passes give the same bits on 1, 2 and 3 OpenMP threads (a
 * single-task job runs its ops on all threads; --threads must not change a run). */
static void check_thread_invariance(int n, int c, int h, int w, int o, int kh, int kw, int stride, int pad) {
    ml_conv_shape s;
    if (ml__conv_shape_init(&s, n, c, h, w, o, kh, kw, stride, pad)) return;
    const int64_t nx = (int64_t)n * c * h * w, nw = (int64_t)o * c * kh * kw, ny = (int64_t)n * o * s.oh * s.ow;
    float *x = randn(nx), *wt = randn(nw), *dy = randn(ny), *out[3][3];
    const int saved = omp_get_max_threads();
    for (int t = 0; t < 3; t++) {
        omp_set_num_threads(t + 1);
        int64_t nscr = ml__conv2d_scratch_floats(&s);
        float *scr = malloc(sizeof(float) * (size_t)(nscr > 0 ? nscr : 1));
        out[t][0] = nans(ny), out[t][1] = nans(nx), out[t][2] = nans(nw);
        ml__conv2d_forward(&s, x, wt, out[t][0], scr);
        ml__conv2d_backward_data(&s, dy, wt, out[t][1], scr);
        ml__conv2d_backward_weight(&s, x, dy, out[t][2], scr);
        free(scr);
    }
    omp_set_num_threads(saved);
    const char *names[3] = {"forward", "backward_data", "backward_weight"};
    const int64_t sizes[3] = {ny, nx, nw};
    for (int k = 0; k < 3; k++) {
        for (int t = 1; t < 3; t++)
            if (memcmp(out[0][k], out[t][k], sizeof(float) * (size_t)sizes[k]))
                ML_FAIL_AT("%s n%d c%d %dx%d o%d: 1 and %d threads differ", names[k], n, c, h, w, o, t + 1);
        free(out[0][k]), free(out[1][k]), free(out[2][k]);
    }
    free(x), free(wt), free(dy);
}

/* Channel counts that are multiples of 16 take oneDNN's primitives (direct or
 * Winograd, by shape); check each route is really taken, not an im2col fallback.
 * route: ML_CONV_ROUTE_IM2COL 0, _DIRECT 1, _WINOGRAD 2. */
static void check_dnnl_shape(int route, int n, int c, int h, int w, int o, int kh, int kw, int stride, int pad) {
    ml_conv_shape s;
    if (ml__conv_shape_init(&s, n, c, h, w, o, kh, kw, stride, pad) == 0) {
        int got = ml__conv_route(&s);
        /* oneDNN 2.6 has f32 Winograd for AVX-512 only; elsewhere it falls back to direct. */
        if (route == ML_CONV_ROUTE_WINOGRAD && got == ML_CONV_ROUTE_DIRECT && !__builtin_cpu_supports("avx512f"))
            got = route;
        if (got != route)
            ML_FAIL_AT("n%d c%d %dx%d o%d k%dx%d s%d p%d: route %d, expected %d", n, c, h, w, o, kh, kw, stride,
                       pad, got, route);
    }
    check_shape(n, c, h, w, o, kh, kw, stride, pad);
    check_thread_invariance(n, c, h, w, o, kh, kw, stride, pad);
}

static void test_conv_dnnl(void) {
    check_dnnl_shape(2, 5, 64, 14, 14, 64, 3, 3, 1, 1);  /* Winograd: the CNN's second layer */
    check_dnnl_shape(2, 42, 64, 7, 7, 64, 3, 3, 1, 1);  /* Winograd: third layer, a query set */
    check_dnnl_shape(2, 2, 16, 13, 11, 32, 3, 3, 1, 1); /* Winograd, partial 4x4 tiles */
    check_dnnl_shape(1, 3, 16, 6, 8, 16, 3, 3, 1, 1);   /* direct: 48 outputs, too few for Winograd */
    check_dnnl_shape(1, 80, 64, 3, 3, 64, 3, 3, 1, 1);  /* direct: fourth layer; backward-weights in 4 chunks */
    /* Backward-weights in chunks fixed by the batch size (conv_dnnl.c): 2, 3 uneven, 4 uneven. */
    check_dnnl_shape(2, 37, 16, 8, 8, 16, 3, 3, 1, 1);
    check_dnnl_shape(2, 50, 16, 7, 7, 16, 3, 3, 1, 1);
    check_dnnl_shape(2, 66, 16, 7, 7, 16, 3, 3, 1, 1);
    check_dnnl_shape(1, 48, 16, 3, 3, 16, 3, 3, 1, 1);
    check_dnnl_shape(1, 3, 16, 5, 5, 32, 3, 3, 1, 1);
    check_dnnl_shape(1, 2, 32, 9, 9, 16, 3, 3, 2, 1);   /* stride 2, odd size */
    check_dnnl_shape(1, 1, 16, 8, 8, 16, 3, 3, 2, 1);   /* stride 2: right padding 0 */
    check_dnnl_shape(1, 2, 16, 6, 6, 16, 5, 5, 1, 2);   /* 5x5 */
    check_dnnl_shape(1, 2, 16, 7, 6, 16, 3, 3, 1, 0);   /* no padding */
    check_dnnl_shape(0, 2, 16, 6, 6, 16, 1, 1, 1, 0);   /* pointwise: plain GEMM */
    check_dnnl_shape(0, 2, 16, 6, 6, 10, 3, 3, 1, 1);   /* 10 outputs: im2col */
    /* Winograd asked for where oneDNN has none (5x5): the direct primitive is built instead. */
    ml__conv_set_route(ML_CONV_ROUTE_WINOGRAD);
    check_dnnl_shape(1, 2, 16, 9, 9, 16, 5, 5, 1, 2);
    ml__conv_set_route(-1);
}

/* oneDNN's forward and backward-data in image chunks of ~4 MB (conv_dnnl.c)
 * against one call over the whole batch: the same bits, on 1, 2 and (up to
 * 75 images) 3 threads.
 * The MAML query (75 images) and ProtoNet episode (200) of the 4-block CNN
 * at 14x14 and 7x7 (Winograd), a direct shape, uneven chunks (41 images on 2
 * threads: 11 + 10 on the first, two primitives sharing the weights the thread
 * reordered once). Each pass also runs in its own scratch share, canary-checked
 * (side by side, each thread's chunks and blocked weights are in its own
 * region outside it: conv_dnnl.c's thread_region). */
static void test_dnnl_image_chunks(void) {
    static const int shapes[][4] = {{75, 64, 14, 64}, {200, 64, 14, 64}, {200, 64, 7, 64}, {45, 16, 28, 16},
                                    {700, 32, 3, 64}, {41, 64, 14, 64}};
    const int saved = omp_get_max_threads();
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int n = shapes[i][0], c = shapes[i][1], h = shapes[i][2], o = shapes[i][3];
        ml_conv_shape s;
        ml__conv_shape_init(&s, n, c, h, h, o, 3, 3, 1, 1);
        const int64_t nx = (int64_t)n * c * h * h, ny = (int64_t)n * o * h * h, nw = (int64_t)o * c * 9;
        float *x = randn(nx), *wt = randn(nw), *dy = randn(ny);
        for (int t = 1; t <= (n <= 75 ? 3 : 2); t++) { /* 3 threads on the small batches only (ASan time) */
            omp_set_num_threads(t);
            float *out[2][2];
            for (int chunked = 0; chunked < 2; chunked++) {
                ml__conv_dnnl_set_unchunked(!chunked);
                out[chunked][0] = nans(ny), out[chunked][1] = nans(nx);
                for (int pass = 0; pass < 2; pass++) {
                    const int64_t nscr = ml__conv2d_pass_scratch_floats(&s, pass);
                    float *scr = malloc(sizeof(float) * (size_t)(nscr + CANARY));
                    for (int k = 0; k < CANARY; k++) scr[nscr + k] = 12345.f;
                    if (pass == 0) ml__conv2d_forward(&s, x, wt, out[chunked][0], scr);
                    else ml__conv2d_backward_data(&s, dy, wt, out[chunked][1], scr);
                    CHECK(canary_ok(scr + nscr));
                    free(scr);
                }
            }
            if (memcmp(out[0][0], out[1][0], sizeof(float) * (size_t)ny))
                ML_FAIL_AT("forward n%d c%d %dx%d o%d, %d threads: chunked differs", n, c, h, h, o, t);
            if (memcmp(out[0][1], out[1][1], sizeof(float) * (size_t)nx))
                ML_FAIL_AT("backward_data n%d c%d %dx%d o%d, %d threads: chunked differs", n, c, h, h, o, t);
            for (int k = 0; k < 2; k++) free(out[k][0]), free(out[k][1]);
        }
        free(x), free(wt), free(dy);
    }
    ml__conv_dnnl_set_unchunked(0);
    omp_set_num_threads(saved);
    check_shape(45, 16, 28, 28, 16, 3, 3, 1, 1); /* chunked (2 chunks) against the naive twin */
}

/* The three passes of s into out[3] (forward y, backward-data dx,
 * backward-weight dw), each in its own scratch share, canary-checked. */
static void run_passes(const ml_conv_shape *s, const float *x, const float *wt, const float *dy, float **out) {
    for (int pass = 0; pass < 3; pass++) {
        const int64_t np = ml__conv2d_pass_scratch_floats(s, pass);
        float *scr = malloc(sizeof(float) * (size_t)(np + CANARY));
        for (int k = 0; k < CANARY; k++) scr[np + k] = 12345.f;
        if (pass == 0) ml__conv2d_forward(s, x, wt, out[0], scr);
        if (pass == 1) ml__conv2d_backward_data(s, dy, wt, out[1], scr);
        if (pass == 2) ml__conv2d_backward_weight(s, x, dy, out[2], scr);
        CHECK(canary_ok(scr + np));
        free(scr);
    }
}

/* Small scratch (ml__conv_dnnl_small_scratch, MAML's query pass) on the MAML
 * query's 14x14 and 7x7 layers and an uneven batch: forward and
 * backward-data the same bits as by default (smaller image chunks);
 * backward-weights in more chunks where Winograd's scratch steps up (75 x 14x14:
 * 5 chunks of 15 instead of 19/19/19/18) with no more scratch, within float
 * rounding of the default, of the naive twin (check_shape), and the same bits
 * on 1, 2 and 3 threads; the setting is the calling thread's and restored. */
static void test_dnnl_small_scratch(void) {
    static const int shapes[][2] = {{75, 14}, {75, 7}, {41, 14}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int n = shapes[i][0], h = shapes[i][1];
        ml_conv_shape s;
        ml__conv_shape_init(&s, n, 64, h, h, 64, 3, 3, 1, 1);
        const int64_t nx = (int64_t)n * 64 * h * h, nw = 64 * 64 * 9, sizes[3] = {nx, nx, nw};
        float *x = randn(nx), *wt = randn(nw), *dy = randn(nx), *def[3], *small[3];
        for (int k = 0; k < 3; k++) def[k] = nans(sizes[k]), small[k] = nans(sizes[k]);
        const int64_t bwdw_default = ml__conv2d_pass_scratch_floats(&s, ML_CONV_PASS_BACKWARD_WEIGHT);
        run_passes(&s, x, wt, dy, def);
        CHECK(ml__conv_dnnl_small_scratch(1) == 0);
        CHECK(ml__conv2d_pass_scratch_floats(&s, ML_CONV_PASS_BACKWARD_WEIGHT) <= bwdw_default);
        run_passes(&s, x, wt, dy, small);
        check_shape(n, 64, h, h, 64, 3, 3, 1, 1);
        check_thread_invariance(n, 64, h, h, 64, 3, 3, 1, 1);
        CHECK(ml__conv_dnnl_small_scratch(0) == 1);
        if (memcmp(def[0], small[0], sizeof(float) * (size_t)nx) || memcmp(def[1], small[1], sizeof(float) * (size_t)nx))
            ML_FAIL_AT("n%d %dx%d: forward / backward-data with small scratch differ", n, h, h);
        CHECK(close_rel(small[2], def[2], nw, 1e-5, "backward_weight small vs default", &s));
        for (int k = 0; k < 3; k++) free(def[k]), free(small[k]);
        free(x), free(wt), free(dy);
    }
}

/* The im2col route runs its chunks of images in parallel and sums
 * backward-weight in groups fixed by the batch size (conv.c): against the
 * naive twin, and the same bits on 1, 2 and 3 threads. */
static void test_im2col_chunks_in_parallel(void) {
    static const int shapes[][9] = {
        {40, 1, 28, 28, 64, 3, 3, 1, 1}, /* first layer: one image per chunk, 2 groups */
        {66, 1, 12, 12, 16, 3, 3, 1, 1}, /* 4 groups, uneven */
        {5, 1, 28, 28, 64, 3, 3, 1, 1},  /* one group (a MAML support set) */
        {35, 3, 9, 9, 5, 3, 3, 2, 1},    /* stride 2: col2im backward-data */
        {33, 8, 10, 10, 10, 3, 3, 1, 1}, /* flipped backward-data, several images per chunk */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int *v = shapes[i];
        check_shape(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
        check_thread_invariance(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
    }
}

static void test_conv_1x1(void) {
    check_shape(1, 17, 6, 6, 19, 1, 1, 1, 0); /* pointwise: direct GEMM */
    check_shape(3, 4, 1, 1, 2, 1, 1, 1, 0);
    check_shape(2, 3, 7, 7, 5, 1, 1, 2, 0);   /* 1x1 stride 2 */
    check_shape(2, 6, 8, 8, 7, 1, 1, 1, 1);   /* 1x1 pad 1 */
    check_shape(1, 64, 14, 14, 64, 1, 1, 1, 0);
}

static void test_conv_other_kernels(void) {
    check_shape(2, 5, 9, 8, 3, 5, 5, 1, 2);   /* 5x5 same */
    check_shape(1, 8, 4, 4, 8, 5, 5, 1, 2);   /* kernel larger than the image */
    check_shape(2, 3, 3, 3, 2, 5, 5, 1, 1);   /* one output pixel */
    check_shape(3, 2, 6, 5, 3, 2, 2, 1, 0);   /* even kernel */
    check_shape(2, 3, 6, 7, 4, 3, 1, 1, 1);   /* non-square kernels */
    check_shape(2, 3, 6, 7, 4, 1, 3, 2, 0);
    check_shape(2, 12, 11, 9, 6, 5, 5, 2, 2); /* 5x5 stride 2 */
    check_shape(2, 1, 9, 9, 3, 7, 7, 1, 3);
}

/* ---- sgemm ---------------------------------------------------------------------- */

static void check_gemm(int ta, int tb, int m, int n, int k, float alpha, float beta) {
    /* leading dimensions larger than needed, to exercise the strides */
    int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    int64_t lda = ac + 3, ldb = bc + 1, ldc = n + 2;
    float *a = randn(ar * lda), *b = randn(br * ldb), *c0 = randn(m * ldc);
    float *c = malloc(sizeof(float) * (size_t)(m * ldc)), *cr = malloc(sizeof(float) * (size_t)(m * ldc));
    memcpy(c, c0, sizeof(float) * (size_t)(m * ldc));
    memcpy(cr, c0, sizeof(float) * (size_t)(m * ldc));
    ml__sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    ml__sgemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cr, ldc);
    double maxd = 0, maxr = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < ldc; j++) {
            double d = fabs((double)c[i * ldc + j] - cr[i * ldc + j]);
            if (j >= n) d = c[i * ldc + j] == c0[i * ldc + j] ? 0 : INFINITY; /* padding untouched */
            if (!(d <= maxd)) maxd = d;
            if (fabs(cr[i * ldc + j]) > maxr) maxr = fabs(cr[i * ldc + j]);
        }
    if (!(maxd <= 1e-5 * (maxr > 1 ? maxr : 1) * (k > 1 ? sqrt(k) : 1)))
        ML_FAIL_AT("sgemm ta%d tb%d m%d n%d k%d: max diff %.3g (scale %.3g)", ta, tb, m, n, k, maxd, maxr);
    free(a), free(b), free(c0), free(c), free(cr);
}

static void test_sgemm(void) {
    static const int sizes[] = {1, 3, 17, 33, 64};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 5; j++)
                    for (int l = 0; l < 5; l++) {
                        int m = sizes[i], n = sizes[(j + 1) % 5], k = sizes[(l + 2) % 5];
                        check_gemm(ta, tb, m, n, k, 1.f, 0.f);
                        if ((i + j + l) % 3 == 0) check_gemm(ta, tb, m, n, k, -0.5f, 1.5f);
                    }
    check_gemm(0, 0, 5, 7, 0, 1.f, 0.5f); /* k = 0: C = beta * C */
}

int main(void) {
    ml_rng_seed(&rng, 20240601);
    ML_RUN(test_shape_init);
    ML_RUN(test_conv_3x3);
    ML_RUN(test_conv_dnnl);
    ML_RUN(test_dnnl_image_chunks);
    ML_RUN(test_dnnl_small_scratch);
    ML_RUN(test_im2col_chunks_in_parallel);
    ML_RUN(test_conv_1x1);
    ML_RUN(test_conv_other_kernels);
    ML_RUN(test_sgemm);
    return ml_test_summary();
}
