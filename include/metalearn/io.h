/* metalearn/io.h: checkpoint files (safetensors) and run-folder I/O.
 *
 * Files are replaced atomically: data goes to "<path>.tmp.<pid>" in the same
 * directory, is fsync'ed, renamed over <path>, and the directory is fsync'ed,
 * so a crash or a full disk leaves either the old file or the new one, never
 * a torn mix. Not here: tensors (checkpoints are plain float buffers, so this
 * module stays in core and tensor code can depend on it).
 *
 * Every function that can fail takes `err, errlen` and on failure writes one
 * line naming the file (and field), e.g.
 *   "ckpt.safetensors: tensor 'head.weight': dtype BF16, expected F32".
 * `err` may be NULL. */
#ifndef METALEARN_IO_H
#define METALEARN_IO_H

#include <stddef.h>
#include <stdint.h>

#include "metalearn/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- atomic files --------------------------------------------------------- */

/* Reads a whole file into a NUL-terminated ml_malloc buffer (*out; free
 * with ml_free) of *len bytes (len may be NULL). max_bytes > 0 refuses
 * bigger files with ML_ERR_ARG. Errors name the path: ML_ERR_IO (cannot
 * open or read), ML_ERR_NOMEM. */
ml_status ml_file_read_text(const char *path, size_t max_bytes, char **out, size_t *len, char *err, size_t errlen);
/* The same for a file that may not exist yet (a run's log before the first
 * line, a search's trials before the first trial): ML_OK with *out NULL
 * when nothing is at path; any other failure (a folder, unreadable) is the
 * error ml_file_read_text gives, not "absent". */
ml_status ml_file_read_text_if_present(const char *path, size_t max_bytes, char **out, size_t *len, char *err,
                                       size_t errlen);

/* Writes data to path atomically (see above). On failure the temp file is
 * removed and an existing file at path is left untouched. */
ml_status ml_file_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* The streaming form, so a big checkpoint need not be assembled in memory:
 *   ml_file_writer w;
 *   if (ml_file_writer_open(&w, path, err, errlen)) return ...;
 *   ml_file_writer_write(&w, a, na);  ...  (errors are sticky: check once)
 *   return ml_file_writer_commit(&w);    (or ml_file_writer_abort(&w))
 * commit and abort always release the writer; abort after commit is a no-op.
 * A writer belongs to one thread; two writers in one process must not target
 * the same path at the same time (they would share the temp name). */
typedef struct ml_file_writer {
    int fd;           /* -1 once released */
    ml_status status; /* first error, sticky */
    char *path, *tmp; /* owned copies */
    char *err;        /* caller's buffer, from open */
    size_t errlen;
    uint64_t bytes;   /* written so far */
} ml_file_writer;

ml_status ml_file_writer_open(ml_file_writer *w, const char *path, char *err, size_t errlen);
ml_status ml_file_writer_write(ml_file_writer *w, const void *data, size_t len);
ml_status ml_file_writer_commit(ml_file_writer *w);
void ml_file_writer_abort(ml_file_writer *w);

/* mkdir -p: creates dir and its missing parents (mode 0777 & ~umask). An
 * existing directory is fine; an existing non-directory is an error. */
ml_status ml_mkdir_p(const char *dir, char *err, size_t errlen);

/* Writes json as indented text plus a final '\n' to path, atomically (as
 * ml_file_write_atomic). json is a cJSON item; the caller keeps it. */
struct cJSON;
ml_status ml_json_write_atomic(const char *path, const struct cJSON *json, char *err, size_t errlen);

/* Appends json_line plus '\n' to path (created if missing) in one write, so
 * lines from concurrent appenders do not interleave. json_line must not
 * contain a newline (ML_ERR_ARG). All or nothing: a write that fails part
 * way (disk full) is truncated back to the previous length and reported.
 * No fsync: a crash may still lose or truncate the last line, so readers
 * should skip an unterminated final line (ml_runlog_trim drops it). */
ml_status ml_jsonl_append(const char *path, const char *json_line, char *err, size_t errlen);

/* ---- safetensors -----------------------------------------------------------
 * The Hugging Face format: u64 little-endian header length N, N bytes of JSON
 *   {"__metadata__":{"k":"v",...},"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...}
 * padded with spaces to a multiple of 8, then the little-endian data; offsets
 * are relative to the start of the data. Only F32 tensors of rank 0..4. */

#define ML_ST_MAX_DIMS 4

/* One tensor to write. data may be NULL only when the tensor has 0 elements. */
typedef struct ml_st_tensor {
    const char *name;
    int ndim;
    int64_t shape[ML_ST_MAX_DIMS];
    const float *data;
} ml_st_tensor;

/* Writes atomically, tensors contiguous in the given order, metadata first
 * in the header. The same input always gives the same bytes (bit-exact
 * resume relies on it). Names must be non-empty, distinct and not
 * "__metadata__"; metadata keys distinct. */
ml_status ml_safetensors_write(const char *path, const ml_st_tensor *ts, int n, const char *const *meta_keys,
                               const char *const *meta_values, int n_meta, char *err, size_t errlen);

/* One tensor read back; numel = product of shape (1 for rank 0). */
typedef struct ml_st_entry {
    char *name;
    int ndim;
    int64_t shape[ML_ST_MAX_DIMS];
    int64_t numel;
    float *data; /* 64-byte aligned when numel > 0 */
} ml_st_entry;

/* A file read into memory: entries in header order. Everything (entries,
 * names, data, metadata) lives in the single allocation `blob`. */
typedef struct ml_safetensors {
    int n;
    ml_st_entry *entries;
    int n_meta;
    char **meta_keys, **meta_values;
    void *blob;
} ml_safetensors;

/* Reads and validates the whole file (sizes, JSON, dtypes, shapes, offsets,
 * duplicates). On failure *out is zeroed and nothing needs freeing. */
ml_status ml_safetensors_read(const char *path, ml_safetensors *out, char *err, size_t errlen);
const ml_st_entry *ml_safetensors_find(const ml_safetensors *s, const char *name); /* NULL if absent */
const char *ml_safetensors_meta(const ml_safetensors *s, const char *key);        /* NULL if absent */
void ml_safetensors_free(ml_safetensors *s); /* zeroes *s; safe on a zeroed struct */

#ifdef __cplusplus
}
#endif
#endif
