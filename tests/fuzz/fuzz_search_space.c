/* fuzz_search_space.c: a search space file ({"base": ..., "space": ...})
 * applied as `metalearn search` applies it: the command's own load_space
 * (compiled in from src/cli/cmd_search.c, where it is static: base merged and
 * checked against train's option table, the space parsed, every range and
 * choice checked as a train value), then a small evolution (a random first
 * generation, children bred by tournament, crossover and mutation with the
 * command's breed()), each candidate turned into the config a trial gets and
 * applied to a fresh train option table, as `train --config spec.json` would. */
#include "fuzz_util.h"

#define cmd_search fuzz_unused_cmd_search
#include "../../src/cli/cmd_search.c"
#undef cmd_search

enum { POP = 4, BUDGET = 10 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 16)) return 0;
    search s;
    memset(&s, 0, sizeof s);
    s.space_path = fuzz_write("space.json", data, size);
    s.higher_better = 1;
    char err[1024] = "";
    int base_iters = 0;
    if (load_space(&s, NULL, &base_iters, err, sizeof err) != EXIT_OK) {
        if (!err[0] || strchr(err, '\n')) abort();
        goto done;
    }
    int np = s.space.n;
    s.cand = calloc((size_t)BUDGET * (size_t)(np ? np : 1), sizeof(double));
    double scores[BUDGET];
    ml_rng rng;
    ml_rng_seed(&rng, 7);
    for (int t = 0; t < BUDGET; t++) {
        if (t < POP) ml_search_sample(&s.space, &rng, s.cand + (size_t)t * np);
        else breed(&s, &rng, t, t, scores);
        scores[t] = t % 3 == 2 ? NAN : (double)((t * 7) % 5); /* some failed trials */
        for (int i = 0; i < np; i++) {
            char val[64];
            ml_search_format(&s.space.params[i], s.cand[(size_t)t * np + i], val, sizeof val);
        }
        cJSON *spec = cJSON_Duplicate(s.base, 1);
        if (!spec || ml_search_to_json(&s.space, s.cand + (size_t)t * np, spec)) abort();
        static ml_run_config o;
        ml_run_config_default(&o);
        int n;
        const ml_option *specs = ml_run_config_options(&o, &n);
        const ml_option_set cmd = {"train", train_synopsis, train_about, specs, n};
        /* Every value was checked against train's table: a trial must accept its config. */
        if (ml_options_apply_json(&cmd, spec, "spec.json", err, sizeof err)) {
            fprintf(stderr, "candidate %d rejected: %s\n", t, err);
            abort();
        }
        cJSON_Delete(spec);
    }
    int order[BUDGET];
    ml_search_rank(scores, BUDGET, 1, order);
done:
    free(s.cand);
    cJSON_Delete(s.base);
    ml_search_space_free(&s.space);
    ml_options_free_strings();
    return 0;
}
