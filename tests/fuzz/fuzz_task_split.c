/* fuzz_task_split.c: a CSV run's task split (RUN/split.json of a --task csv: run, what
 * `eval RUN` and `--resume` read back) against a family of 6 tasks named
 * "a".."f"; the parts are then used as training does (draws limited to them). */
#include "fuzz_util.h"

#include "metalearn/tasks.h"

static ml_task_family g_family;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    static const char csv[] = "a,support,1,2\na,query,2,3\nb,support,1,2\nb,query,2,3\nc,support,1,2\nc,query,2,3\n"
                              "d,support,1,2\nd,query,2,3\ne,support,1,2\ne,query,2,3\nf,support,1,2\nf,query,2,3\n";
    char spec[1100], err[512];
    snprintf(spec, sizeof spec, "csv:%s", fuzz_write("tasks.csv", (const uint8_t *)csv, sizeof csv - 1));
    if (ml_task_family_init(&g_family, spec, err, sizeof err) != ML_OK) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    const char *p = fuzz_write("split.json", data, size);
    ml_task_split sp;
    char err[512];
    if (ml_task_split_read_json(p, &g_family, &sp, err, sizeof err) != ML_OK) {
        if (!err[0] || strchr(err, '\n')) abort();
        return 0;
    }
    int total = 0;
    for (int k = 0; k < ML_TASK_PART_COUNT; k++) {
        total += sp.n[k];
        for (int i = 0; i < sp.n[k]; i++)
            if (sp.idx[k][i] < 0 || sp.idx[k][i] >= g_family.n_tasks) abort();
        if (ml_task_family_draw_from(&g_family, sp.idx[k], sp.n[k], err, sizeof err) != ML_OK) abort();
    }
    if (total > g_family.n_tasks) abort();
    ml_task_family_draw_from(&g_family, NULL, 0, err, sizeof err);
    ml_task_split_free(&sp);
    return 0;
}
