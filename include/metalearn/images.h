/* metalearn/images.h: image sets for few-shot classification (Omniglot,
 * Lake's one-shot runs, a user's folders of PNGs), class splits, rotation
 * classes, augmentation and N-way K-shot episodes.
 *
 * What it is: readers that decode every PNG once into a dense [n, 1, S, S]
 * float buffer (strokes 1, background 0, area-averaged to S x S), plus the
 * bookkeeping episodes need (classes, alphabets, names). What it is not: a
 * model or a tensor; episodes are plain float buffers a learner wraps with
 * ml_tensor_wrap.
 *
 * Ownership (`_init`/`_free` style): structs live in caller storage, their
 * buffers belong to the library until the matching `_free`. On failure every
 * loader leaves *out zeroed, so calling `_free` on it is always safe.
 *
 * Errors: functions taking `err` write ONE line naming what and where, e.g.
 * "data/x.zip: Greek/character01/0394_01.png: PNG: crc mismatch" (err may be
 * NULL). libzip, libspng and cJSON allocate their own small working memory
 * with malloc; everything the library keeps goes through ml_malloc.
 *
 * Randomness: every draw comes from the ml_rng passed in, in a fixed order,
 * so one seed gives the same split and the same episodes everywhere. */
#ifndef METALEARN_IMAGES_H
#define METALEARN_IMAGES_H

#include <stddef.h>
#include <stdint.h>

#include "metalearn/core.h"
#include "metalearn/data.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ML_IMAGE_DEFAULT_SIZE 28

/* ---- PNG and resizing ------------------------------------------------------ */

/* Decodes a PNG held in memory to 8-bit gray (0 black .. 255 white): 1/2/4/8
 * and 16-bit gray as is, palette/RGB as 0.299 R + 0.587 G + 0.114 B, alpha
 * composited over white. Images over the pixel limit (ml_image_limits with
 * no options) are refused from their header. *pixels is ml_malloc'd [height, width]; the caller
 * ml_frees it. `name` (may be NULL) starts the error line. */
ml_status ml_png_decode_gray8(const void *png, size_t len, const char *name, uint8_t **pixels,
                              int *width, int *height, char *err, size_t errlen);

/* Exact area averaging (a box filter with fractional overlaps): each output
 * pixel is the mean of the source area it covers, so constants stay constant
 * and the image mean is preserved. src [sh, sw] -> dst [dh, dw]. */
ml_status ml_image_resize_area(const float *src, int sh, int sw, float *dst, int dh, int dw);

/* ---- image sets ------------------------------------------------------------ */

typedef enum {
    ML_INVERT_DEFAULT = 0, /* Omniglot and Lake: YES; folders: AUTO */
    ML_INVERT_YES,         /* value = 1 - gray / 255 (dark strokes on white) */
    ML_INVERT_NO,          /* value = gray / 255 */
    ML_INVERT_AUTO         /* per image: invert when the mean is light */
} ml_invert_mode;

/* Limits on untrusted input, checked before anything is inflated or decoded,
 * so a hostile file is refused instead of taking gigabytes: the declared
 * size of one zip entry or file (a 105x105 Omniglot PNG is a few KB) and the
 * pixels of one image (from its PNG header). A limit of 0 in the options
 * means the environment variable (ML_MAX_IMAGE_BYTES, ML_MAX_IMAGE_PIXELS,
 * a positive integer) when set, else these defaults. */
#define ML_IMAGE_DEFAULT_MAX_BYTES ((uint64_t)16 << 20)
#define ML_IMAGE_DEFAULT_MAX_PIXELS ((int64_t)4096 * 4096)

/* A zeroed struct (or NULL) means the defaults. */
typedef struct ml_image_options {
    int size;              /* output side S; 0 = ML_IMAGE_DEFAULT_SIZE */
    ml_invert_mode invert;
    int keep_raw;          /* also keep full-resolution stroke masks (set->raw) */
    uint64_t max_bytes;    /* per zip entry / file; 0 = ML_MAX_IMAGE_BYTES or the default */
    int64_t max_pixels;    /* per image; 0 = ML_MAX_IMAGE_PIXELS or the default */
} ml_image_options;

/* The limits in effect for opt (NULL = defaults): its fields, else the
 * environment, else the defaults. A malformed environment value is an
 * ML_ERR_ARG naming the variable. */
ml_status ml_image_limits(const ml_image_options *opt, uint64_t *max_bytes, int64_t *max_pixels, char *err,
                          size_t errlen);

/* Classes are contiguous: class k holds images class_start[k] ..
 * class_start[k + 1] - 1. Omniglot classes are characters, sorted by
 * "Alphabet/characterNN", their images by file name. */
typedef struct ml_image_set {
    int64_t n;                  /* images */
    int size;                   /* S */
    float *x;                   /* [n, 1, S, S], in [0, 1], strokes high */
    int32_t *y;                 /* [n] class of each image */
    int n_classes;
    int64_t *class_start;       /* [n_classes + 1] */
    int32_t *class_alphabet;    /* [n_classes] index into alphabet_names */
    const char **class_names;   /* [n_classes] "Alphabet/characterNN" or folder name */
    int n_alphabets;
    const char **alphabet_names;/* [n_alphabets] sorted; folders: one alphabet "" */
    const char **image_names;   /* [n] path inside its source, for messages and predictions */
    int labelled;               /* 0: a flat folder of unlabelled images, one class "" */
    int raw_h, raw_w;           /* keep_raw only: size of the full-resolution masks */
    uint8_t *raw;               /* keep_raw only: [n, raw_h, raw_w], 1 = stroke, else NULL */
    char *strings;              /* owns every name above */
    /* ml_image_set_compact only (then x is NULL): each pixel as an 8-bit
     * code; code c < ML_IMAGE_ESCAPE is palette[c], ML_IMAGE_ESCAPE takes
     * the image's next escape, an index into palette. Exact. */
    uint8_t *codes;             /* [n, 1, S, S] */
    uint16_t *escapes;          /* image i's are escapes[escape_start[i] .. escape_start[i + 1] - 1] */
    int64_t *escape_start;      /* [n + 1] */
    float *palette;             /* [n_palette] the set's distinct values, most frequent first */
    int n_palette;
} ml_image_set;

#define ML_IMAGE_ESCAPE 255 /* the compact code read from the escapes */

void ml_image_set_free(ml_image_set *s); /* zeroes *s; NULL and zeroed sets are fine */

/* The same pixels in about a quarter of the memory: when the set holds at
 * most 4,096 distinct values (decoded Omniglot at 28x28: 718) and S <= 64,
 * each pixel becomes an 8-bit code, the 255 most frequent values directly
 * (Omniglot: 97.9% of the pixels) and the rest as escapes holding a 16-bit
 * index into the palette (exact). The codes are written in place into x's
 * buffer, whose other pages are given back. Afterwards x is NULL: read
 * images with ml_image_set_copy (every reader in the library does).
 * Otherwise, or on ML_ERR_NOMEM, the set is unchanged. Sets opened through
 * the loaders keep x; a run compacts its own. */
ml_status ml_image_set_compact(ml_image_set *s);

/* Omniglot as distributed: each path is a zip (images_background*.zip,
 * images_evaluation.zip) or the same tree unpacked; PNGs are found at
 * .../Alphabet/characterNN/NAME.png at any depth. A character met again
 * (same alphabet and character name, e.g. Greek and Latin in both
 * images_background_small zips) counts once: the copies must hold the same
 * file names with byte-identical PNGs, or pixel-identical when the bytes
 * differ; otherwise it is an error. keep_raw requires every image to be the
 * same size (105 x 105). */
ml_status ml_omniglot_load(const char *const *paths, int n_paths, const ml_image_options *opt,
                           ml_image_set *out, char *err, size_t errlen);

/* A user's folder: DIR/class/NAME.png (labelled; one class per subfolder,
 * sorted by name) or DIR/NAME.png (unlabelled: labelled = 0, one class "").
 * Mixing both, nesting deeper, an empty class folder or no PNG at all are
 * errors. Images of any size are resized to S x S (aspect not kept). Files
 * other than *.png and names starting with '.' are skipped. */
ml_status ml_image_folder_load(const char *dir, const ml_image_options *opt, ml_image_set *out,
                               char *err, size_t errlen);

/* A labelled dataset (an IDX pair: MNIST, Fashion-MNIST, ...) as an image
 * set: one class per label (named "0", "1", ...; every label 0 .. n_classes-1
 * must have an image), images in dataset order within a class, names
 * "source#index". Values are kept as they are (byte / 255; Fashion-MNIST is
 * a bright object on a dark background, like Omniglot's bright strokes on 0);
 * images are area-averaged to S x S when their sides differ. One channel
 * only; one alphabet "" (no alphabet split). */
ml_status ml_image_set_from_dataset(const ml_dataset *d, const char *source, const ml_image_options *opt,
                                    ml_image_set *out, char *err, size_t errlen);

/* ---- class lists, rotations and splits ------------------------------------- */

/* A class of the set seen at a rotation: `rot` quarter turns counter-clockwise
 * (0..3). Rotated copies of a character are new classes (Santoro et al. 2016). */
typedef struct ml_class_ref {
    int32_t cls;
    int32_t rot;
} ml_class_ref;

typedef struct ml_class_list {
    int n;
    ml_class_ref *items; /* [n], no entry twice */
} ml_class_list;

void ml_class_list_free(ml_class_list *l); /* zeroes *l */
/* Every class of the set, rotation 0. */
ml_status ml_class_list_all(const ml_image_set *s, ml_class_list *out);
/* out = in x4: for each entry of `in` (at rotation 0), rotations 0, 1, 2, 3 in
 * a row. ML_ERR_ARG when `in` already has rotated entries. */
ml_status ml_class_list_expand_rotations(const ml_class_list *in, ml_class_list *out);

typedef enum { ML_SPLIT_BY_CHARACTER, ML_SPLIT_BY_ALPHABET } ml_split_unit;
enum { ML_SPLIT_TRAIN, ML_SPLIT_VAL, ML_SPLIT_TEST, ML_SPLIT_COUNT };

/* How many units (characters or alphabets) each part gets. When any count is
 * non-zero the counts are used (-1 = "the rest", at most once); otherwise the
 * fractions (each in [0, 1], sum <= 1; when they sum to 1 the test part takes
 * what rounding leaves). A positive share that rounds to no unit is an error. */
typedef struct ml_split_spec {
    ml_split_unit unit;
    int counts[ML_SPLIT_COUNT];
    double fractions[ML_SPLIT_COUNT];
} ml_split_spec;

/* Three disjoint class lists (rotation 0, ascending class index). */
typedef struct ml_class_split {
    ml_split_unit unit;
    ml_class_list part[ML_SPLIT_COUNT];
} ml_class_split;

void ml_class_split_free(ml_class_split *sp); /* zeroes *sp */
/* Shuffles the units with rng, then deals them to train, val, test in order. */
ml_status ml_class_split_make(const ml_image_set *s, const ml_split_spec *spec, ml_rng *rng,
                              ml_class_split *out, char *err, size_t errlen);
/* {"format": "metalearn-class-split", "version": 1, "unit": "character",
 *  "train": [class names], "val": [...], "test": [...]}, written atomically. */
ml_status ml_class_split_write_json(const ml_class_split *sp, const ml_image_set *s,
                                    const char *path, char *err, size_t errlen);
/* Reads that file back against `s` (names are looked up, so the set may be
 * loaded again in another order); unknown or repeated names are errors. */
ml_status ml_class_split_read_json(const char *path, const ml_image_set *s, ml_class_split *out,
                                   char *err, size_t errlen);

/* ---- augmentation and episodes --------------------------------------------- */

/* Per-image random transforms, drawn from the episode's rng; a zeroed struct
 * (or NULL) changes nothing. One affine map about the image centre, sampled
 * bilinearly, zero outside. */
typedef struct ml_augment {
    double rotate_deg;           /* angle uniform in [-rotate_deg, rotate_deg] */
    double scale_min, scale_max; /* zoom uniform in [min, max]; both 0 = off */
    double translate;            /* shift in pixels, each axis uniform in [-t, t] */
    double flip_h, flip_v;       /* probability of a left-right / up-down flip */
} ml_augment;

/* Image `index` of the set at `rot` quarter turns, then augmented when aug is
 * non-NULL and active, into dst [S, S]. */
ml_status ml_image_set_copy(const ml_image_set *s, int64_t index, int rot, const ml_augment *aug,
                            ml_rng *rng, float *dst);

/* One N-way K-shot task with Q queries per class. Buffers are allocated once
 * by ml_episode_init and reused by every ml_episode_sample (no heap calls).
 * Examples are class-major: support row i has label i / shots, query row i
 * label i / queries. */
typedef struct ml_episode {
    int ways, shots, queries, size;
    float *xs;                    /* [ways * shots, 1, S, S]; ml_episode_init: xq follows in the same block */
    int32_t *ys;                  /* [ways * shots] in 0 .. ways-1 */
    float *xq;                    /* [ways * queries, 1, S, S] */
    int32_t *yq;                  /* [ways * queries] */
    ml_class_ref *classes;        /* [ways]: label k is classes[k] */
    int32_t *class_index;         /* [ways]: classes[k] is entry class_index[k] of the list */
    int64_t *support_index;       /* [ways * shots] image index in the set */
    int64_t *query_index;         /* [ways * queries] */
} ml_episode;

/* ways >= 1, shots >= 1, queries >= 0, size >= 1. On failure *e is zeroed. */
ml_status ml_episode_init(ml_episode *e, int ways, int shots, int queries, int size);
void ml_episode_free(ml_episode *e);
/* Draws `ways` distinct classes of `classes`, then shots + queries distinct
 * images of each (the first `shots` of a random order are the support). The
 * whole list is validated first: too few classes, an empty or out-of-range
 * class, or a class with fewer than shots + queries images is an error. */
ml_status ml_episode_sample(ml_episode *e, const ml_image_set *s, const ml_class_list *classes,
                            const ml_augment *aug, ml_rng *rng, char *err, size_t errlen);

/* Whether episodes of `ways` classes with `per_class` images each (shots +
 * queries) can be drawn from `classes`: ML_OK, or ML_ERR_ARG with err saying
 * what is short ("only 3 classes, 5 needed" or "class X has 4
 * images, needs 6"). ml_episode_sample makes the same check; a run makes it
 * at setup for every episode shape it will draw, before training. */
ml_status ml_episode_check(const ml_image_set *s, const ml_class_list *classes, int ways, int per_class, char *err,
                           size_t errlen);

/* The same with class weights: the `ways` classes are drawn one after the
 * other without replacement, each with probability weights[i] / (sum of the
 * weights not yet drawn), then the images as above. weights[classes->n] must
 * be finite and >= 0 with at least `ways` of them positive. NULL or all-equal
 * weights take exactly ml_episode_sample's draws (the same episodes bit for
 * bit for one seed). No heap calls; O(ways * classes->n) per episode. */
ml_status ml_episode_sample_weighted(ml_episode *e, const ml_image_set *s, const ml_class_list *classes,
                                     const float *weights, const ml_augment *aug, ml_rng *rng, char *err,
                                     size_t errlen);

/* Episodes drawn now and filled later, e.g. by the worker thread that runs
 * the task, so a meta-batch does not hold every episode's images at once.
 * ml_episode_init_drawn: as ml_episode_init without the image buffers (xs,
 * xq NULL). ml_episode_draw_weighted: exactly the draws of
 * ml_episode_sample_weighted without augmentation (the same rng stream, the
 * same classes and indices), the images not copied. ml_episode_fill: writes
 * into xs [ways * shots, 1, S, S] and xq [ways * queries, 1, S, S] what
 * ml_episode_sample would have written. Augmentation draws come between the
 * copies, so drawn episodes take none: with an active augmentation
 * (ml_augment_active) sample instead. */
ml_status ml_episode_init_drawn(ml_episode *e, int ways, int shots, int queries, int size);
ml_status ml_episode_draw_weighted(ml_episode *e, const ml_image_set *s, const ml_class_list *classes,
                                   const float *weights, ml_rng *rng, char *err, size_t errlen);
ml_status ml_episode_fill(const ml_episode *e, const ml_image_set *s, float *xs, float *xq);
/* Rows [lo, hi) of ml_episode_fill, the support's ways * shots rows first,
 * then the queries': the rows take no draws, so threads can fill an
 * episode's parts side by side. */
ml_status ml_episode_fill_rows(const ml_episode *e, const ml_image_set *s, float *xs, float *xq, int lo, int hi);
int ml_augment_active(const ml_augment *a); /* 1 when a is non-NULL and changes images */

/* ---- Lake et al.'s 20-way one-shot runs ------------------------------------ */

/* all_runs.zip or its unpacked folder: runNN/training/classKK.png,
 * runNN/test/itemMM.png and runNN/class_labels.txt ("runNN/test/itemMM.png
 * runNN/training/classKK.png" per line). Runs, training and test images are
 * in name order. The full-resolution stroke masks are always kept for the
 * Modified Hausdorff Distance baseline. */
typedef struct ml_lake_runs {
    int n_runs, n_train, n_test, size; /* 20, 20, 20, S */
    float *train_x;       /* [n_runs, n_train, 1, S, S] */
    float *test_x;        /* [n_runs, n_test, 1, S, S] */
    int32_t *test_label;  /* [n_runs, n_test]: index of the true training image */
    int raw_h, raw_w;     /* 105, 105 */
    uint8_t *train_raw;   /* [n_runs, n_train, raw_h, raw_w], 1 = stroke */
    uint8_t *test_raw;    /* [n_runs, n_test, raw_h, raw_w] */
} ml_lake_runs;

ml_status ml_lake_runs_load(const char *path, const ml_image_options *opt, ml_lake_runs *out,
                            char *err, size_t errlen);
void ml_lake_runs_free(ml_lake_runs *r); /* zeroes *r */

#ifdef __cplusplus
}
#endif
#endif
