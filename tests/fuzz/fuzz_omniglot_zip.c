/* fuzz_omniglot_zip.c: an Omniglot zip (`--dataset omniglot:FILE.zip`)
 * loaded whole: the zip directory, names (Alphabet/characterNN/NAME.png),
 * every PNG decoded and resized, the set built; then loaded twice as two
 * sources, which runs the duplicate-character check. Limits are lowered to
 * 1 MiB per entry and 2^20 pixels per image for speed. */
#include "fuzz_util.h"

#include "metalearn/images.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    const char *p = fuzz_write("omniglot.zip", data, size);
    ml_image_options opt = {.size = 8, .max_bytes = 1u << 20, .max_pixels = 1 << 20};
    ml_image_set s;
    char err[512];
    const char *paths[2] = {p, p};
    for (int n = 1; n <= 2; n++) {
        ml_status st = ml_omniglot_load(paths, n, &opt, &s, err, sizeof err);
        if (st != ML_OK) {
            if (!err[0] || strchr(err, '\n')) abort();
            break;
        }
        if (s.n_classes < 1 || s.class_start[s.n_classes] != s.n) abort();
        ml_image_set_free(&s);
    }
    return 0;
}
