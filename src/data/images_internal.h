/* images_internal.h: what the image readers share (png.c, source.c,
 * omniglot.c, lake.c, episodes.c). Not installed. */
#ifndef ML_DATA_IMAGES_INTERNAL_H
#define ML_DATA_IMAGES_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "metalearn/images.h"

#include "core/errfmt.h" /* ml__errf: the one-line error messages */

/* ---- split sizes ------------------------------------------------------------
 * How many of `units` (characters, alphabets, CSV tasks) each part of a split
 * gets (see ml_split_spec); a positive share that rounds to none is an error
 * naming unit_name. Shared by class splits and CSV task splits. */
ml_status ml__split_counts(const ml_split_spec *spec, int units, const char *unit_name, int got[3], char *err,
                           size_t errlen);

/* ---- PNG decode into a reusable buffer ------------------------------------
 * *buf (ml_malloc'd, *cap bytes) grows as needed; the caller frees it once.
 * An image of more than max_pixels (from its header) is refused before
 * anything is decoded; max_pixels <= 0 means ML_IMAGE_DEFAULT_MAX_PIXELS. */
ml_status ml__png_gray8(const void *png, size_t len, int64_t max_pixels, uint8_t **buf, size_t *cap, int *w,
                        int *h, char *why, size_t whylen);

/* ---- area resize plan -------------------------------------------------------
 * Tap tables for one (sh, sw) -> (dh, dw) pair, rebuilt only when the sizes
 * change, so a loader of thousands of same-size images builds them once. */
typedef struct ml__area_plan {
    int sh, sw, dh, dw;
    int ty, tx;          /* taps per output row / column */
    int32_t *y0, *x0;    /* [dh], [dw] first source row / column */
    float *wy, *wx;      /* [dh * ty], [dw * tx] */
    float *tmp;          /* [dh, sw] after the row pass */
} ml__area_plan;

ml_status ml__area_plan_prepare(ml__area_plan *p, int sh, int sw, int dh, int dw);
void ml__area_apply(const ml__area_plan *p, const float *src, float *dst);
void ml__area_plan_free(ml__area_plan *p);

/* ---- one decoded image to [S, S] floats (and optionally a stroke mask) ---- */
typedef struct ml__img_decoder {
    int64_t max_pixels;  /* per image; <= 0: ML_IMAGE_DEFAULT_MAX_PIXELS */
    uint8_t *gray;
    size_t gray_cap;
    float *f;
    size_t f_cap;
    ml__area_plan plan;
} ml__img_decoder;

/* Decodes png, inverts per `invert` (DEFAULT already resolved by the
 * caller), resizes to S x S into dst. When raw is non-NULL the stroke mask
 * (value >= 0.5 after inversion) is written there and the size must equal
 * (*raw_h, *raw_w), or is recorded when those are 0. `why` gets the reason
 * only; the caller adds the file and entry. */
ml_status ml__img_decode(ml__img_decoder *d, const void *png, size_t len, ml_invert_mode invert,
                         int S, float *dst, uint8_t *raw, int *raw_h, int *raw_w, char *why,
                         size_t whylen);
void ml__img_decoder_free(ml__img_decoder *d);

/* ---- a zip or a folder seen as a sorted list of entries -------------------- */
typedef struct ml__src_entry {
    const char *name; /* relative path, '/'-separated; directories end in '/' */
    uint64_t size;
    int64_t zindex;   /* zip entry index, -1 for folder files */
    int is_dir;
    size_t name_off;  /* into the pool while it still grows */
} ml__src_entry;

typedef struct ml__src {
    char *path;           /* as given, for messages */
    void *zip;            /* zip_t *, NULL for a folder */
    uint8_t *data;        /* the whole archive when read into memory */
    int n;
    ml__src_entry *e;     /* [n], sorted by name */
    uint64_t max_bytes;   /* larger entries / files are refused before reading */
    int64_t max_pixels;   /* for the images decoded from it */
    char *pool;           /* the names */
    size_t pool_len, pool_cap;
} ml__src;

/* Opens a zip (any regular file) or walks a folder (skipping names that start
 * with '.' and __MACOSX); the limits come from ml_image_limits(opt). */
ml_status ml__src_open(ml__src *s, const char *path, const ml_image_options *opt, char *err, size_t errlen);
/* Reads entry i whole into *buf (grown as needed); *len = its size. An entry
 * whose declared size exceeds s->max_bytes is refused before it is read. */
ml_status ml__src_read(const ml__src *s, int i, uint8_t **buf, size_t *cap, size_t *len,
                       char *err, size_t errlen);
void ml__src_close(ml__src *s);

int ml__has_png_suffix(const char *name);
/* Leaf directories (no entries below them) of a source, for "empty class"
 * checks: returns the index of the first one at or after `from`, or -1. */
int ml__src_next_empty_dir(const ml__src *s, int from);

/* Quarter-turn rotation (counter-clockwise) of a square [S, S] image. */
void ml__rot90(const float *src, int S, int rot, float *dst);

#endif
