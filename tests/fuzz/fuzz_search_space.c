/* fuzz_search_space.c: a search space file ({"base": ..., "space": ...})
 * loaded as `metalearn search` loads it, through the library's
 * ml_search_spec_load (base merged and checked against train's option
 * table, the space parsed, every range and choice checked as a train value),
 * then a small evolution (a random first generation, children bred by
 * ml_search_breed: tournament, crossover and mutation), each candidate
 * turned into the config a trial gets and applied to a fresh train option
 * table, as `train --config spec.json` would. */
#include "fuzz_util.h"

#include <math.h>

#include <cjson/cJSON.h>

#include "metalearn/run.h"
#include "metalearn/search.h"

enum { POP = 4, BUDGET = 10 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 16)) return 0;
    ml_search_spec spec;
    const char *path = fuzz_write("space.json", data, size);
    char err[1024] = "";
    double *cand = NULL;
    if (ml_search_spec_load(&spec, path, NULL, NULL, err, sizeof err) != ML_OK) {
        if (!err[0] || strchr(err, '\n')) abort();
        goto done;
    }
    int np = spec.space.n;
    cand = calloc((size_t)BUDGET * (size_t)(np ? np : 1), sizeof(double));
    double scores[BUDGET];
    ml_rng rng;
    ml_rng_seed(&rng, 7);
    for (int t = 0; t < BUDGET; t++) {
        if (t < POP) ml_search_sample(&spec.space, &rng, cand + (size_t)t * np);
        else ml_search_breed(&spec.space, &rng, cand, t, t, scores, 1);
        scores[t] = t % 3 == 2 ? NAN : (double)((t * 7) % 5); /* some failed trials */
        for (int i = 0; i < np; i++) {
            char val[64];
            ml_search_format(&spec.space.params[i], cand[(size_t)t * np + i], val, sizeof val);
        }
        cJSON *trial = cJSON_Duplicate(spec.base, 1);
        if (!trial || ml_search_to_json(&spec.space, cand + (size_t)t * np, trial)) abort();
        static ml_run_config o;
        ml_run_config_default(&o);
        const ml_option_set cmd = ml_run_config_option_set(&o);
        /* Every value was checked against train's table: a trial must accept its config. */
        if (ml_options_apply_json(&cmd, trial, "spec.json", err, sizeof err)) {
            fprintf(stderr, "candidate %d rejected: %s\n", t, err);
            abort();
        }
        cJSON_Delete(trial);
    }
    int order[BUDGET];
    ml_search_rank(scores, BUDGET, 1, order);
    ml_search_spec_free(&spec);
done:
    free(cand);
    ml_options_free_strings();
    return 0;
}
