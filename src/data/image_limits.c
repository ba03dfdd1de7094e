/* image_limits.c: how large one untrusted image input may be (declared zip
 * entry / file bytes, decoded pixels), from the options, the environment or
 * the defaults. The readers check these before inflating or decoding, so a
 * small hostile file cannot make them allocate gigabytes. */
#include <errno.h>
#include <stdlib.h>

#include "images_internal.h"

/* A positive integer from the environment, or 0 when the variable is unset. */
static ml_status env_limit(const char *name, uint64_t *v, char *err, size_t errlen) {
    *v = 0;
    const char *s = getenv(name);
    if (!s || !*s) return ML_OK;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || x == 0 || x > (unsigned long long)INT64_MAX || *s == '-' || *s == '+') {
        ml__errf(err, errlen, "%s: '%.40s' is not a positive integer", name, s);
        return ML_ERR_ARG;
    }
    *v = x;
    return ML_OK;
}

ml_status ml_image_limits(const ml_image_options *opt, uint64_t *max_bytes, int64_t *max_pixels, char *err,
                          size_t errlen) {
    uint64_t b = opt ? opt->max_bytes : 0, p = opt && opt->max_pixels > 0 ? (uint64_t)opt->max_pixels : 0;
    ml_status st = ML_OK;
    if (!b) st = env_limit("ML_MAX_IMAGE_BYTES", &b, err, errlen);
    if (st == ML_OK && !p) st = env_limit("ML_MAX_IMAGE_PIXELS", &p, err, errlen);
    if (st != ML_OK) return st;
    if (max_bytes) *max_bytes = b ? b : ML_IMAGE_DEFAULT_MAX_BYTES;
    if (max_pixels) *max_pixels = p ? (int64_t)p : ML_IMAGE_DEFAULT_MAX_PIXELS;
    return ML_OK;
}
