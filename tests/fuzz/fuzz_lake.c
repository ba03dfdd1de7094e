/* fuzz_lake.c: Lake's one-shot runs (`--lake-runs all_runs.zip`): runs found
 * by runNN/class_labels.txt, labels parsed, every image decoded with its
 * full-size stroke mask. Limits lowered as in fuzz_omniglot_zip. */
#include "fuzz_util.h"

#include "metalearn/images.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    const char *p = fuzz_write("all_runs.zip", data, size);
    ml_image_options opt = {.size = 8, .max_bytes = 1u << 20, .max_pixels = 1 << 20};
    ml_lake_runs r;
    char err[512];
    if (ml_lake_runs_load(p, &opt, &r, err, sizeof err) != ML_OK) {
        if (!err[0] || strchr(err, '\n')) abort();
        return 0;
    }
    for (int i = 0; i < r.n_runs * r.n_test; i++)
        if (r.test_label[i] < 0 || r.test_label[i] >= r.n_train) abort();
    ml_lake_runs_free(&r);
    return 0;
}
