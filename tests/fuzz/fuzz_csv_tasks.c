/* fuzz_csv_tasks.c: a CSV task family (`--task csv:FILE`) loaded, then every
 * task read in full and in part and a few drawn at random, as training and
 * evaluation do. */
#include "fuzz_util.h"

#include "metalearn/tasks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    const char *p = fuzz_write("tasks.csv", data, size);
    char spec[1100], err[512];
    snprintf(spec, sizeof spec, "csv:%s", p);
    ml_task_family f;
    if (ml_task_family_init(&f, spec, err, sizeof err) != ML_OK) {
        if (!err[0] || strchr(err, '\n')) abort();
        return 0;
    }
    int ks = 0, kq = 0;
    ml_task_family_max_points(&f, &ks, &kq);
    ml_regression_task t;
    if (ml_regression_task_alloc(&t, ks, kq, f.in_dim) == ML_OK) {
        for (int i = 0; i < f.n_tasks; i++) {
            if (!ml_task_family_task_name(&f, i)) abort();
            if (ml_task_get_csv(&f, i, 0, 0, &t, err, sizeof err) != ML_OK) abort(); /* all rows fit */
            ml_task_get_csv(&f, i, 1, 1, &t, err, sizeof err);
        }
        ml_rng rng;
        ml_rng_seed(&rng, 1);
        for (int i = 0; i < 4; i++) ml_task_sample(&f, &rng, 1, 1, &t, err, sizeof err);
        ml_regression_task_free(&t);
    }
    ml_task_family_free(&f);
    return 0;
}
