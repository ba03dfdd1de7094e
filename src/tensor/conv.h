/* conv.h: 2-D convolution kernels on raw float buffers (internal).
 *
 * Layout is PyTorch's: x [n, c, h, w], weight [o, c, kh, kw], y [n, o, oh, ow],
 * all contiguous. Zero padding `pad` on every side, equal stride in both
 * directions, no dilation, no groups, no bias (bias is a separate op).
 * oh = (h + 2*pad - kh) / stride + 1 (floor), likewise ow.
 *
 * The three kernels are the forward and the two backward products of the
 * same bilinear form B(x, dy, w) = sum y(x, w) * dy:
 *   forward:         y  = conv(x, w)
 *   backward_data:   dx = dB/dx (dy, w)       (overwrites dx)
 *   backward_weight: dw = dB/dw (x, dy)       (overwrites dw)
 * Each fast kernel has a naive `_ref` twin that tests compare against.
 * Fast kernels take a caller-provided scratch buffer of at least
 * ml__conv2d_scratch_floats(s) floats (per-task arena memory: no heap calls),
 * and run on the calling thread's OpenMP thread budget. */
#ifndef ML_TENSOR_CONV_H
#define ML_TENSOR_CONV_H

#include <stddef.h>
#include <stdint.h>

typedef struct ml_conv_shape {
    int n, c, h, w;  /* input */
    int o, kh, kw;   /* output channels, kernel size */
    int stride, pad;
    int oh, ow;      /* derived by ml__conv_shape_init */
} ml_conv_shape;

/* Fills oh/ow; returns 0, or -1 if the output would be empty. */
int ml__conv_shape_init(ml_conv_shape *s, int n, int c, int h, int w, int o, int kh, int kw,
                        int stride, int pad);
int64_t ml__conv2d_scratch_floats(const ml_conv_shape *s);
/* The floats one pass needs (ML_CONV_PASS_*, below): at most the above. */
int64_t ml__conv2d_pass_scratch_floats(const ml_conv_shape *s, int pass);

void ml__conv2d_forward(const ml_conv_shape *s, const float *x, const float *w, float *y,
                        float *scratch);
void ml__conv2d_backward_data(const ml_conv_shape *s, const float *dy, const float *w, float *dx,
                              float *scratch);
void ml__conv2d_backward_weight(const ml_conv_shape *s, const float *x, const float *dy, float *dw,
                                float *scratch);

/* The oneDNN convolution-primitive route (conv_dnnl.c), taken by the kernels
 * above when ml__conv_dnnl_shape_ok(s) holds (channel counts multiples of 16)
 * and oneDNN can build the primitives. Each returns -1 if it cannot run s
 * (scratch_floats: the floats it needs otherwise). */
int ml__conv_dnnl_shape_ok(const ml_conv_shape *s);
enum { ML_CONV_ROUTE_IM2COL, ML_CONV_ROUTE_DIRECT, ML_CONV_ROUTE_WINOGRAD };
/* The route the kernels take for s (1x1 pointwise shapes: plain GEMM, reported as im2col). */
int ml__conv_route(const ml_conv_shape *s);
/* Benches only, process-wide: force a route (-1: by shape, the default). A
 * forced oneDNN route applies only where ml__conv_dnnl_shape_ok holds. */
void ml__conv_set_route(int route);
int64_t ml__conv_dnnl_scratch_floats(const ml_conv_shape *s);
/* The passes, for the scratch of one of them (ml__conv2d_pass_scratch_floats). */
enum { ML_CONV_PASS_FORWARD, ML_CONV_PASS_BACKWARD_DATA, ML_CONV_PASS_BACKWARD_WEIGHT };
int64_t ml__conv_dnnl_pass_scratch_floats(const ml_conv_shape *s, int pass);
/* Tests only, process-wide: forward and backward-data in one oneDNN call
 * (1) or in image chunks of at most ~4 MB of plain input + output (0, the default). */
void ml__conv_dnnl_set_unchunked(int on);
/* The calling thread's conv passes with small scratch (1) or the default (0,
 * at start); returns the previous setting. Backward-weights then runs in more
 * chunks where oneDNN's Winograd scratch steps up (other bits than the default
 * chunks, the same on any thread count) and forward / backward-data in smaller
 * image chunks (the same bits). For a caller at its arena's peak (MAML's query
 * pass). */
int ml__conv_dnnl_small_scratch(int on);
int ml__conv_dnnl_forward(const ml_conv_shape *s, const float *x, const float *w, float *y, float *scratch);
int ml__conv_dnnl_backward_data(const ml_conv_shape *s, const float *dy, const float *w, float *dx,
                                float *scratch);
int ml__conv_dnnl_backward_weight(const ml_conv_shape *s, const float *x, const float *dy, float *dw,
                                  float *scratch);

/* The same passes with the conv output y (forward) or its gradient dy
 * (backward) in oneDNN's nChw16c layout (conv_bn_blk16.c), the caller's buffer
 * read or written with no reorder. Each returns -1 where oneDNN cannot (the
 * caller then reorders and takes the plain route); _blk16_ok(s): all three
 * can at the whole shape (the primitives chose nChw16c). */
int ml__conv_dnnl_blk16_ok(const ml_conv_shape *s);
int ml__conv_dnnl_forward_blk16(const ml_conv_shape *s, const float *x, const float *w, float *y, float *scratch);
int ml__conv_dnnl_backward_data_blk16(const ml_conv_shape *s, const float *dy, const float *w, float *dx,
                                      float *scratch);
int ml__conv_dnnl_backward_weight_blk16(const ml_conv_shape *s, const float *x, const float *dy, float *dw,
                                        float *scratch);

/* Images per chunk of the im2col forward route for s (its GEMMs' width). */
int ml__conv2d_forward_chunk_images(const ml_conv_shape *s);

/* conv3x3_direct.c: one output plane of a 3x3, stride 1, pad 1 conv of an
 * input of at most ML_CONV3X3_DIRECT_MAX_C channels (x one image, wk one
 * output channel's c_in * 9 weights), bitwise the im2col route's where
 * ml__conv3x3_direct_matches(s) says so (checked at run time, per shape). */
enum { ML_CONV3X3_DIRECT_MAX_C = 4 };
void ml__conv3x3_plane(const float *x, int64_t c_in, int64_t h, int64_t w, const float *wk, float *y);
void ml__conv3x3_plane_ref(const float *x, int64_t c_in, int64_t h, int64_t w, const float *wk, float *y);
int ml__conv3x3_direct_vector(void);
int ml__conv3x3_direct_shape_ok(const ml_conv_shape *s);
int ml__conv3x3_direct_matches(const ml_conv_shape *s);

void ml__conv2d_forward_ref(const ml_conv_shape *s, const float *x, const float *w, float *y);
void ml__conv2d_backward_data_ref(const ml_conv_shape *s, const float *dy, const float *w,
                                  float *dx);
void ml__conv2d_backward_weight_ref(const ml_conv_shape *s, const float *x, const float *dy,
                                    float *dw);

/* Row-major C[m,n] = alpha * op(A) op(B) + beta * C, op = transpose when ta/tb.
 * lda/ldb/ldc are the row strides of A, B, C as stored. Fast path: oneDNN
 * dnnl_sgemm; the _ref twin is a plain triple loop (double accumulation). */
void ml__sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void ml__sgemm_ref(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

#endif
