/* fuzz_plot_log.c: a run's log.jsonl as `metalearn plot` reads it (the
 * command's own load_log, compiled in from src/cli/cmd_plot.c, where it
 * lives as a static function), then the learning curve drawn from what it
 * accepted, as plot draws it (its titles and axes, into the scratch folder),
 * on a 240x160 canvas instead of 900x540: the same code, four times fewer
 * pixels to fill and compress per run. */
#include "fuzz_util.h"

/* The command itself is not called: renamed so the harness defines no symbol
 * the CLI library also has. */
#define cmd_plot fuzz_unused_cmd_plot
#include "../../src/cli/cmd_plot.c"
#undef cmd_plot

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    const char *dir = fuzz_path("run");
    mkdir(dir, 0755);
    fuzz_write("run/log.jsonl", data, size);
    run_curves rc;
    memset(&rc, 0, sizeof rc);
    snprintf(rc.label, sizeof rc.label, "run");
    char err[1024] = "";
    if (load_log(dir, &rc, err, sizeof err)) {
        if (!err[0] || strchr(err, '\n')) abort();
    } else if (rc.n_log > 0) {
        ml_series s = {rc.label, rc.iter, rc.loss, rc.n_log, NULL, NULL, 0, 0};
        ml_chart chart = {.title = "Meta-training: query loss after adaptation", .xlabel = "meta-iteration",
                          .ylabel = "query loss", .width = 240, .height = 160, .log_y = (int)(size & 1)};
        if (ml_plot_png(fuzz_path("run/learning_curve.png"), &chart, &s, 1, err, sizeof err) != ML_OK &&
            (!err[0] || strchr(err, '\n')))
            abort();
    }
    free(rc.iter);
    free(rc.loss);
    return 0;
}
