/* fuzz_plot_log.c: a run's log.jsonl as `metalearn plot` reads it
 * (ml_runlog_read_curves), then the learning curve drawn from what it
 * accepted, as plot draws it, on a 240x160 canvas instead of 900x540: the
 * same code, four times fewer pixels to fill and compress per run. */
#include "fuzz_util.h"

#include "metalearn/plot.h"
#include "metalearn/rundir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    const char *path = fuzz_write("log.jsonl", data, size);
    ml_runlog_curves c;
    char err[1024] = "";
    if (ml_runlog_read_curves(path, &c, err, sizeof err) != ML_OK) {
        if (!err[0] || strchr(err, '\n')) abort();
    } else if (c.n > 0) {
        ml_series s[2] = {{"run", c.iter, c.loss, c.n, NULL, NULL, 0, 0},
                          {"run validation", c.val_iter, c.val, c.n_val, NULL, NULL, 0, 0}};
        ml_chart chart = {.title = "Meta-training: query loss after adaptation", .xlabel = "meta-iteration",
                          .ylabel = "query loss", .width = 240, .height = 160, .log_y = (int)(size & 1)};
        if (ml_plot_png(fuzz_path("learning_curve.png"), &chart, s, c.n_val ? 2 : 1, err, sizeof err) != ML_OK &&
            (!err[0] || strchr(err, '\n')))
            abort();
    }
    ml_runlog_curves_free(&c);
    return 0;
}
