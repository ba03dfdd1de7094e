/* fuzz_split.c: a split.json (`--split-file`, a run's own split) read back
 * against an image set of 12 classes named "0".."11", then the parts used
 * the way episodes use them (rotations expanded, classes in range). */
#include "fuzz_util.h"

#include "metalearn/images.h"

enum { N_CLASSES = 12, PER_CLASS = 2, SIDE = 2 };

static ml_image_set g_set;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    static float x[N_CLASSES * PER_CLASS * SIDE * SIDE];
    static int32_t y[N_CLASSES * PER_CLASS];
    for (int i = 0; i < N_CLASSES * PER_CLASS; i++) y[i] = i % N_CLASSES;
    ml_dataset d = {.n = N_CLASSES * PER_CLASS, .c = 1, .h = SIDE, .w = SIDE, .x = x, .y = y, .n_classes = N_CLASSES};
    ml_image_options opt = {.size = SIDE};
    char err[256];
    if (ml_image_set_from_dataset(&d, "fuzz", &opt, &g_set, err, sizeof err) != ML_OK) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    const char *p = fuzz_write("split.json", data, size);
    ml_class_split sp;
    char err[512];
    if (ml_class_split_read_json(p, &g_set, &sp, err, sizeof err) != ML_OK) {
        if (!err[0] || strchr(err, '\n')) abort();
        return 0;
    }
    for (int k = 0; k < ML_SPLIT_COUNT; k++) {
        for (int i = 0; i < sp.part[k].n; i++)
            if (sp.part[k].items[i].cls < 0 || sp.part[k].items[i].cls >= g_set.n_classes) abort();
        ml_class_list rot;
        if (ml_class_list_expand_rotations(&sp.part[k], &rot) == ML_OK) ml_class_list_free(&rot);
    }
    ml_class_split_free(&sp);
    return 0;
}
