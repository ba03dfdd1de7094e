/* fuzz_rl_eval.c: a meta-RL run's eval.json as `metalearn plot RUN` reads it
 * (ml_rl_run_plot: the steps / return / ci95 arrays, drawn as the returns
 * figure). The run is a bandit run, so no checkpoint is read and no
 * trajectories drawn: only the file under test. A refusal must be one line. */
#include "fuzz_util.h"

#include "metalearn/run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 16)) return 0;
    static const char config[] = "{\"algo\": \"maml\", \"env\": \"bandit:3\", \"rollouts\": 2, \"horizon\": 4}\n";
    fuzz_write("config.json", (const uint8_t *)config, sizeof config - 1);
    const char *path = fuzz_write("eval.json", data, size);
    char dir[600];
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(path, '/') - path), path);
    const char *runs[1] = {dir};
    char err[1024] = "", written[4096];
    if (ml_rl_run_plot(runs, 1, dir, written, sizeof written, err, sizeof err) != ML_OK && (!err[0] || strchr(err, '\n')))
        abort();
    return 0;
}
