/* metalearn/data.h: in-memory image datasets and the IDX (MNIST) reader.
 *
 * A dataset here is a dense [n, c, h, w] float tensor with one int32 label
 * per image, held in caller storage (`_init`-style ownership: the struct is
 * yours, the buffers are the library's until ml_dataset_free). Episode
 * samplers and transforms build on this; nothing here knows about tasks.
 *
 * Errors: every loader writes ONE line "<file>: <reason>" into `err` (may be
 * NULL) and returns a status; on failure `*out` is left zeroed, so calling
 * ml_dataset_free on it is always safe. zlib's own stream buffers do not go
 * through ml_malloc (its gz* API has no allocator hook); everything we keep
 * does. */
#ifndef METALEARN_DATA_H
#define METALEARN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "metalearn/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ml_dataset {
    int64_t n;     /* number of images */
    int c, h, w;   /* channels, height, width */
    float *x;      /* [n, c, h, w], contiguous */
    int32_t *y;    /* [n], each in [0, n_classes) */
    int n_classes; /* labels are 0 .. n_classes-1 */
} ml_dataset;

/* Frees the buffers and zeroes *d. NULL and zeroed datasets are fine. */
void ml_dataset_free(ml_dataset *d);

/* ---- IDX files (the MNIST / Fashion-MNIST / KMNIST format) ----------------
 * Big-endian header: magic 0x000008NN (0x08 = unsigned byte, NN = number of
 * dimensions), then NN uint32 sizes, then the bytes in C order. Files may be
 * gzip'd or plain (zlib reads both). Data past the declared size is an error:
 * it means the header lies, and reading past the end is also what makes zlib
 * verify the gzip CRC. */

/* Reads an unsigned-byte IDX file with 1 to 3 dimensions. On ML_OK, *data
 * (ml_malloc'd, caller frees with ml_free) holds dims[0]*...*dims[ndim-1]
 * bytes and unused dims[] entries are 1. Zero-sized dimensions are rejected. */
ml_status ml_idx_read_u8(const char *path, int *ndim, int64_t dims[3], uint8_t **data,
                         char *err, size_t errlen);

/* Loads an idx3 image file and an idx1 label file of the same length into
 * *out as [n, 1, h, w] floats scaled to [0, 1] (byte / 255). Labels must lie in
 * [0, n_classes); n_classes <= 0 means "max label + 1". */
ml_status ml_dataset_load_idx_files(const char *images_path, const char *labels_path,
                                    int n_classes, ml_dataset *out, char *err, size_t errlen);

/* MNIST directory layout: split "train" reads train-{images-idx3,labels-idx1}-ubyte,
 * split "test" (or "t10k") reads t10k-*. Each name is tried with ".gz", then
 * without, then with MNIST's alternate "-images.idx3-ubyte" spelling. Ten
 * classes (MNIST, Fashion-MNIST, KMNIST). */
ml_status ml_dataset_load_idx(const char *dir, const char *split, ml_dataset *out,
                              char *err, size_t errlen);

/* ---- statistics and normalisation -----------------------------------------
 * Compute on the training split, apply the same numbers to every split, so
 * test data never informs preprocessing. */

/* Per-channel mean and population std (divide by N, like torchvision's
 * published constants), accumulated in double. mean/std have d->c entries. */
ml_status ml_dataset_channel_stats(const ml_dataset *d, double *mean, double *std);

/* x = (x - mean[c]) / std[c] in place. ML_ERR_ARG if some std is not > 0. */
ml_status ml_dataset_normalize(ml_dataset *d, const double *mean, const double *std);

/* counts[k] = number of images with label k; counts has d->n_classes entries. */
void ml_dataset_class_counts(const ml_dataset *d, int64_t *counts);

#ifdef __cplusplus
}
#endif
#endif
