/* adapt_predict.c: adapt a trained regression run (any learner) to your
 * support points and predict your query points, with the installed library only:
 *     cc adapt_predict.c $(pkg-config --cflags --libs metalearn) -o adapt_predict
 *     ./adapt_predict RUN SUPPORT.csv QUERY.csv STEPS
 * SUPPORT rows are x_1..x_D,y, QUERY rows x_1..x_D; prints each query row's y. */
#include <metalearn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRY(call) if ((call) != ML_OK) { fprintf(stderr, "adapt_predict: %s\n", err); return 1; }

int main(int argc, char **argv) {
    char err[1024] = "";
    if (argc != 5) { fprintf(stderr, "usage: adapt_predict RUN SUPPORT.csv QUERY.csv STEPS\n"); return 2; }
    ml_run_config cfg; /* RUN/config.json: the learner and model it trained */
    TRY(ml_run_config_load_run(&cfg, argv[1], err, sizeof err) ? ML_ERR_IO : ML_OK);
    cfg.out = argv[1], cfg.quiet = 1, cfg.model_only = 1, cfg.eval_only = 1; /* its checkpoint, no data */
    ml_run *run;
    TRY(ml_run_open(&run, &cfg, ML_RUN_EVAL, NULL, err, sizeof err));
    float *s, *q; int64_t ns, nq; int cs, D; /* D: the query's columns, the inputs */
    TRY(ml_csv_read_numbers(argv[2], &s, &ns, &cs, err, sizeof err));
    TRY(ml_csv_read_numbers(argv[3], &q, &nq, &D, err, sizeof err));
    if (cs != D + 1) { fprintf(stderr, "adapt_predict: support rows need %d columns\n", D + 1); return 1; }
    float *xs = malloc(sizeof(float) * (size_t)(ns * D)), *ys = malloc(sizeof(float) * (size_t)ns);
    float *out = malloc(sizeof(float) * (size_t)nq);
    for (int64_t i = 0; i < ns; i++) memcpy(xs + i * D, s + i * cs, sizeof(float) * (size_t)D), ys[i] = s[i * cs + D];
    ml_task_data task = {.n_support = (int)ns, .n_query = (int)nq, .xs = xs, .ys = ys, .xq = q};
    TRY(ml_run_predict(run, &task, atoi(argv[4]), NULL, NULL, out, err, sizeof err));
    for (int64_t i = 0; i < nq; i++) printf("%.9g\n", out[i]);
    ml_run_close(run);
    return 0; /* the process ends here: the rest needs no freeing */
}
