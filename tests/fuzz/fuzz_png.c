/* fuzz_png.c: one PNG through the decode-invert-resize step every image
 * reader uses (ml__img_decode, with the full-size stroke mask), at the
 * default 28x28 and with automatic inversion.
 *
 * Random mutations almost never keep a chunk's CRC valid, and libspng stops
 * at the first bad one, so LLVMFuzzerCustomMutator mutates, then rewrites
 * the CRC of every complete chunk: the fuzzer reaches the decoder. Images are
 * capped at 2^20 pixels here (the readers' limit, lowered for speed). */
#include "fuzz_util.h"

#include <zlib.h>

#include "data/images_internal.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static void fix_crcs(uint8_t *d, size_t n) {
    size_t at = 8; /* after the signature */
    while (at + 12 <= n) {
        uint32_t len = (uint32_t)d[at] << 24 | (uint32_t)d[at + 1] << 16 | (uint32_t)d[at + 2] << 8 | d[at + 3];
        if (len > n - at - 12) break;
        uint32_t c = (uint32_t)crc32(0, d + at + 4, 4 + len);
        uint8_t *q = d + at + 8 + len;
        q[0] = (uint8_t)(c >> 24), q[1] = (uint8_t)(c >> 16), q[2] = (uint8_t)(c >> 8), q[3] = (uint8_t)c;
        at += 12 + (size_t)len;
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    (void)seed; /* LLVMFuzzerMutate draws from libFuzzer's own seeded generator */
    size = LLVMFuzzerMutate(data, size, max_size);
    fix_crcs(data, size);
    return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum { S = 28 };
    static float out[S * S];
    ml__img_decoder dec;
    memset(&dec, 0, sizeof dec);
    dec.max_pixels = (int64_t)1 << 20;
    uint8_t *raw = NULL;
    int rh = 0, rw = 0;
    char why[256];
    /* First pass learns the size (as the loaders do), second writes the mask. */
    ml_status st = ml__img_decode(&dec, data, size, ML_INVERT_AUTO, S, out, NULL, NULL, NULL, why, sizeof why);
    if (st == ML_OK) {
        int w = 0, h = 0;
        st = ml__png_gray8(data, size, dec.max_pixels, &dec.gray, &dec.gray_cap, &w, &h, why, sizeof why);
        if (st != ML_OK || (int64_t)w * h > dec.max_pixels) abort(); /* decoded once, must decode again */
        raw = ml_malloc((size_t)w * h);
        if (raw && ml__img_decode(&dec, data, size, ML_INVERT_YES, S, out, raw, &rh, &rw, why, sizeof why) != ML_OK)
            abort();
        for (int i = 0; i < S * S; i++)
            if (!(out[i] >= -1e-4f && out[i] <= 1.0001f)) abort(); /* area averages of [0, 1] */
    } else if (!why[0] || strchr(why, '\n')) {
        abort();
    }
    ml_free(raw);
    ml__img_decoder_free(&dec);
    return 0;
}
