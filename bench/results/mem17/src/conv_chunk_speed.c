#include <stdio.h>
#include <stdlib.h>
#include <omp.h>
#include "tensor/conv.h"
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    int th = argc > 1 ? atoi(argv[1]) : 1; omp_set_num_threads(th);
    int shapes[][2] = {{200, 14}, {200, 7}, {75, 14}, {75, 7}, {400, 14}};
    for (int q = 0; q < 5; q++) {
        int n = shapes[q][0], h = shapes[q][1];
        ml_conv_shape s; ml__conv_shape_init(&s, n, 64, h, h, 64, 3, 3, 1, 1);
        float *x = calloc((size_t)n*64*h*h, 4), *w = calloc(64*64*9, 4), *y = calloc((size_t)n*64*h*h, 4);
        for (size_t i = 0; i < (size_t)n*64*h*h; i++) x[i] = (float)(i % 13) * 0.1f;
        for (int i = 0; i < 64*64*9; i++) w[i] = (float)(i % 7) * 0.01f;
        double t[2][15];
        for (int r = 0; r < 15; r++) for (int c = 0; c < 2; c++) {
            ml__conv_dnnl_set_unchunked(!c);
            float *scr = malloc(ml__conv2d_scratch_floats(&s) * 4 + 64);
            ml__conv2d_forward(&s, x, w, y, scr); /* warm */
            double t0 = omp_get_wtime();
            ml__conv2d_forward(&s, x, w, y, scr);
            ml__conv2d_backward_data(&s, x, w, y, scr);
            t[c][r] = omp_get_wtime() - t0;
            free(scr);
        }
        qsort(t[0], 15, sizeof(double), cmp); qsort(t[1], 15, sizeof(double), cmp);
        printf("threads=%d n=%d h=%d fwd+bwdd median ms: whole %.2f chunked %.2f  ratio whole/chunked %.2f\n", th, n, h, t[0][7]*1e3, t[1][7]*1e3, t[0][7]/t[1][7]);
        free(x); free(w); free(y);
    }
}
