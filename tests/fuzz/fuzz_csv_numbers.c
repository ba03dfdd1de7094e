/* fuzz_csv_numbers.c: a plain table of numbers (`metalearn predict RUN
 * --support FILE.csv --query FILE.csv` on a regression run), read by
 * ml_csv_read_numbers; every value it returns must be finite. */
#include "fuzz_util.h"

#include <math.h>

#include "metalearn/tasks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    const char *p = fuzz_write("rows.csv", data, size);
    float *v = NULL;
    int64_t rows = 0;
    int cols = 0;
    char err[512];
    if (ml_csv_read_numbers(p, &v, &rows, &cols, err, sizeof err) != ML_OK) {
        if (!err[0] || strchr(err, '\n') || v) abort();
        return 0;
    }
    if (rows < 1 || cols < 1 || !v) abort();
    for (int64_t i = 0; i < rows * cols; i++)
        if (!isfinite(v[i])) abort();
    ml_free(v);
    return 0;
}
