/* baselines.c: learning-free nearest-neighbour distances for one-shot
 * classification, the plumbing check of Lake's runs (the Modified Hausdorff
 * Distance baseline is published at 38.8% error on them). */
#include <math.h>

#include "metalearn/eval.h"
#include "metalearn/images.h"

/* Stroke pixel coordinates of a mask, centred on their mean (as the
 * reference implementation of Lake et al. does, so that a drawing's position
 * in the frame does not count). Returns the point count. */
static int centred_strokes(const uint8_t *m, int h, int w, double *pts) {
    int n = 0;
    double my = 0, mx = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (m[y * w + x]) {
                pts[2 * n] = y;
                pts[2 * n + 1] = x;
                my += y;
                mx += x;
                n++;
            }
    if (n) {
        my /= n;
        mx /= n;
        for (int i = 0; i < n; i++) {
            pts[2 * i] -= my;
            pts[2 * i + 1] -= mx;
        }
    }
    return n;
}

/* Mean over points of a of the distance to the nearest point of b. */
static double directed(const double *a, int na, const double *b, int nb) {
    double sum = 0;
    for (int i = 0; i < na; i++) {
        double best = INFINITY;
        for (int j = 0; j < nb; j++) {
            double dy = a[2 * i] - b[2 * j], dx = a[2 * i + 1] - b[2 * j + 1], d = dy * dy + dx * dx;
            if (d < best) best = d;
        }
        sum += sqrt(best);
    }
    return sum / na;
}

double ml_mhd(const uint8_t *a, const uint8_t *b, int h, int w) {
    double *pa = ml_malloc((size_t)h * w * 2 * sizeof(double)), *pb = ml_malloc((size_t)h * w * 2 * sizeof(double));
    double d = INFINITY;
    if (pa && pb) {
        int na = centred_strokes(a, h, w, pa), nb = centred_strokes(b, h, w, pb);
        if (!na || !nb) d = na == nb ? 0 : INFINITY;
        else {
            double ab = directed(pa, na, pb, nb), ba = directed(pb, nb, pa, na);
            d = ab > ba ? ab : ba;
        }
    }
    ml_free(pa);
    ml_free(pb);
    return d;
}

double ml_pixel_distance(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s;
}

double ml_lake_runs_nn_errors(const ml_lake_runs *lr, int mhd, double *errors) {
    int64_t per = (int64_t)lr->size * lr->size, raw = (int64_t)lr->raw_h * lr->raw_w;
    double mean = 0;
    for (int r = 0; r < lr->n_runs; r++) {
        int wrong = 0;
        for (int t = 0; t < lr->n_test; t++) {
            int64_t ti = (int64_t)r * lr->n_test + t;
            int best = 0;
            double best_d = INFINITY;
            for (int c = 0; c < lr->n_train; c++) {
                int64_t ci = (int64_t)r * lr->n_train + c;
                double d = mhd ? ml_mhd(lr->test_raw + ti * raw, lr->train_raw + ci * raw, lr->raw_h, lr->raw_w)
                               : ml_pixel_distance(lr->test_x + ti * per, lr->train_x + ci * per, per);
                if (d < best_d) {
                    best_d = d;
                    best = c;
                }
            }
            wrong += best != lr->test_label[ti];
        }
        errors[r] = (double)wrong / lr->n_test;
        mean += errors[r] / lr->n_runs;
    }
    return mean;
}
