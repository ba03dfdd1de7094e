/* adapt_predict.c: adapt a trained regression run (MAML, FOMAML, ANIL, Reptile,
 * multitask) to your support points and predict your query points, with the
 * installed library only:
 *     cc adapt_predict.c $(pkg-config --cflags --libs metalearn) -o adapt_predict
 *     ./adapt_predict RUN SUPPORT.csv QUERY.csv STEPS
 * SUPPORT rows are x_1..x_D,y, QUERY rows x_1..x_D; prints each query row's y. */
#include <metalearn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRY(call) if ((call) != ML_OK) { fprintf(stderr, "adapt_predict: %s\n", err); return 1; }

int main(int argc, char **argv) {
    char err[1024] = "", path[4096];
    if (argc != 5) { fprintf(stderr, "usage: adapt_predict RUN SUPPORT.csv QUERY.csv STEPS\n"); return 2; }
    ml_run_config run; /* RUN/config.json: the model, learner and inner rate it trained with */
    TRY(ml_run_config_load_run(&run, argv[1], err, sizeof err) ? ML_ERR_IO : ML_OK);
    float *s, *q; int64_t ns, nq; int cs, D; /* D: the query's columns, the inputs */
    TRY(ml_csv_read_numbers(argv[2], &s, &ns, &cs, err, sizeof err));
    TRY(ml_csv_read_numbers(argv[3], &q, &nq, &D, err, sizeof err));
    if (cs != D + 1) { fprintf(stderr, "adapt_predict: support rows need %d columns\n", D + 1); return 1; }
    ml_model_spec spec; ml_model model; ml_safetensors ckpt; ml_meta meta;
    TRY(ml_model_spec_parse(run.model ? run.model : "mlp:40,40", &spec, err, sizeof err)); /* null: the default */
    spec.in_c = spec.in_h = 1, spec.in_w = D, spec.n_out = 1;
    TRY(ml_model_init(&model, &spec, err, sizeof err));
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", argv[1]);
    TRY(ml_safetensors_read(path, &ckpt, err, sizeof err));
    for (int i = 0; i < model.n_params; i++) { /* parameters by name */
        const ml_st_entry *e = ml_safetensors_find(&ckpt, model.params[i].name);
        if (!e || e->numel != model.params[i].numel) { fprintf(stderr, "%s: bad %s\n", path, model.params[i].name); return 1; }
        memcpy(model.data + model.params[i].offset, e->data, sizeof(float) * (size_t)e->numel);
    }
    ml_meta_config mc = {.loss = ML_LOSS_MSE, .inner_steps = run.inner_steps, .inner_lr = run.inner_lr, .threads = 1,
                         .outer = ml_optim_config_default(ML_OPTIM_ADAM)};
    if (ml_algo_parse(run.algo, &mc.algo)) { fprintf(stderr, "adapt_predict: unknown learner %s\n", run.algo); return 1; }
    TRY(ml_meta_init(&meta, &model, &mc, 1, err, sizeof err));
    float *xs = malloc(sizeof(float) * (size_t)(ns * D)), *ys = malloc(sizeof(float) * (size_t)ns);
    float *yq = calloc((size_t)nq, sizeof(float)), *out = malloc(sizeof(float) * (size_t)nq);
    for (int64_t i = 0; i < ns; i++) memcpy(xs + i * D, s + i * cs, sizeof(float) * (size_t)D), ys[i] = s[i * cs + D];
    ml_task_data task = {.n_support = (int)ns, .n_query = (int)nq, .xs = xs, .ys = ys, .xq = q, .yq = yq};
    TRY(ml_meta_predict_outputs(&meta, &task, atoi(argv[4]), NULL, out, err, sizeof err));
    for (int64_t i = 0; i < nq; i++) printf("%.9g\n", out[i]);
    return 0; /* the process ends here: no need to free */
}
