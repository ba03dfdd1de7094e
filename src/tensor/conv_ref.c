/* conv_ref.c: naive twins of the 2-D convolution kernels in conv.c.
 *
 * Plain loops over the definition, accumulating in double, so that tests
 * have something obviously correct to compare the fast kernels against.
 * Not for production use: these run at a couple of GFLOP/s.
 *
 *   y[b, o, oy, ox] = sum_{c, ki, kj} x[b, c, oy*s - p + ki, ox*s - p + kj] * w[o, c, ki, kj]
 *
 * with x read as zero outside [0, h) x [0, w). The two backward kernels are
 * the same sum, accumulated into the other operand. */
#include "tensor/conv.h"

/* Index helpers: all tensors contiguous NCHW / OCKK. */
#define X_AT(b, ch, i, j) (((int64_t)(b) * s->c + (ch)) * s->h + (i)) * s->w + (j)
#define Y_AT(b, oc, i, j) (((int64_t)(b) * s->o + (oc)) * s->oh + (i)) * s->ow + (j)
#define W_AT(oc, ch, i, j) (((int64_t)(oc) * s->c + (ch)) * s->kh + (i)) * s->kw + (j)

void ml__conv2d_forward_ref(const ml_conv_shape *s, const float *x, const float *w, float *y) {
    for (int b = 0; b < s->n; b++)
        for (int oc = 0; oc < s->o; oc++)
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    double acc = 0;
                    for (int ch = 0; ch < s->c; ch++)
                        for (int ki = 0; ki < s->kh; ki++) {
                            int iy = oy * s->stride - s->pad + ki;
                            if (iy < 0 || iy >= s->h) continue;
                            for (int kj = 0; kj < s->kw; kj++) {
                                int ix = ox * s->stride - s->pad + kj;
                                if (ix < 0 || ix >= s->w) continue;
                                acc += (double)x[X_AT(b, ch, iy, ix)] * w[W_AT(oc, ch, ki, kj)];
                            }
                        }
                    y[Y_AT(b, oc, oy, ox)] = (float)acc;
                }
}

void ml__conv2d_backward_data_ref(const ml_conv_shape *s, const float *dy, const float *w,
                                  float *dx) {
    /* dx[b, c, iy, ix] = sum over every (o, oy, ox, ki, kj) that read this pixel
     * in the forward sum of dy[b, o, oy, ox] * w[o, c, ki, kj]. Loop over the
     * input pixel and solve for (oy, ki), so each output is one double sum. */
    for (int b = 0; b < s->n; b++)
        for (int ch = 0; ch < s->c; ch++)
            for (int iy = 0; iy < s->h; iy++)
                for (int ix = 0; ix < s->w; ix++) {
                    double acc = 0;
                    for (int oc = 0; oc < s->o; oc++)
                        for (int ki = 0; ki < s->kh; ki++) {
                            int ty = iy + s->pad - ki; /* = oy * stride */
                            if (ty < 0 || ty % s->stride) continue;
                            int oy = ty / s->stride;
                            if (oy >= s->oh) continue;
                            for (int kj = 0; kj < s->kw; kj++) {
                                int tx = ix + s->pad - kj;
                                if (tx < 0 || tx % s->stride) continue;
                                int ox = tx / s->stride;
                                if (ox >= s->ow) continue;
                                acc += (double)dy[Y_AT(b, oc, oy, ox)] * w[W_AT(oc, ch, ki, kj)];
                            }
                        }
                    dx[X_AT(b, ch, iy, ix)] = (float)acc;
                }
}

void ml__conv2d_backward_weight_ref(const ml_conv_shape *s, const float *x, const float *dy,
                                    float *dw) {
    for (int oc = 0; oc < s->o; oc++)
        for (int ch = 0; ch < s->c; ch++)
            for (int ki = 0; ki < s->kh; ki++)
                for (int kj = 0; kj < s->kw; kj++) {
                    double acc = 0;
                    for (int b = 0; b < s->n; b++)
                        for (int oy = 0; oy < s->oh; oy++) {
                            int iy = oy * s->stride - s->pad + ki;
                            if (iy < 0 || iy >= s->h) continue;
                            for (int ox = 0; ox < s->ow; ox++) {
                                int ix = ox * s->stride - s->pad + kj;
                                if (ix < 0 || ix >= s->w) continue;
                                acc += (double)x[X_AT(b, ch, iy, ix)] * dy[Y_AT(b, oc, oy, ox)];
                            }
                        }
                    dw[W_AT(oc, ch, ki, kj)] = (float)acc;
                }
}
