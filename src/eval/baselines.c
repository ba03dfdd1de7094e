/* baselines.c: learning-free nearest-neighbour distances for one-shot
 * classification, the plumbing check of Lake's runs (the Modified Hausdorff
 * Distance baseline is published at 38.8% error on them). */
#include <math.h>

#include "metalearn/eval.h"

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
