/* metalearn/rundir.h: keeping a training run's folder whole across new runs,
 * kills and full disks.
 *
 * A run folder holds checkpoint.safetensors, log.jsonl (one JSON object per
 * log interval, "iter" strictly increasing), config.json, eval.json and, for
 * few-shot runs, split.json. This module decides whether a folder already
 * holds a run (so a new run does not silently replace it), clears one when
 * asked to, removes the temporaries a killed writer left behind, cuts the log
 * back to the checkpoint a resume starts from, and says when a checkpoint is
 * due (every N iterations or every M seconds, whichever comes first).
 * Not here: the checkpoint's content (the caller's) or the atomic writes
 * themselves (metalearn/io.h). POSIX only. */
#ifndef METALEARN_RUNDIR_H
#define METALEARN_RUNDIR_H

#include <stddef.h>

#include "metalearn/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The name of the first run file present in dir (a static string), or NULL
 * when dir is missing or holds none: then a new run may start there. */
const char *ml_rundir_existing(const char *dir);

/* A new run may start in dir: ML_OK with *held (may be NULL) the run file
 * found there (NULL: none), or ML_ERR_STATE with err saying how to go on
 * when dir holds a run and overwrite is 0. */
ml_status ml_rundir_check_new(const char *dir, int overwrite, const char **held, char *err, size_t errlen);
/* ml_rundir_check_new, then makes dir and clears a replaced run's files
 * (every one, split.json too). lock non-NULL: dir is taken for this process
 * first (*lock from ml_rundir_lock, for ml_rundir_unlock) and checked again
 * once held, so the files cleared are never those of a run another process
 * is writing or has just finished there. */
ml_status ml_rundir_start_new(const char *dir, int overwrite, int *lock, char *err, size_t errlen);

/* Removes the run files of dir (checkpoint, log, eval.json and, unless
 * keep_split, split.json; config.json is left for the caller to rewrite), so
 * a replacing run starts clean instead of appending to the old log. Missing
 * files are fine. Errors name the file. */
ml_status ml_rundir_clear(const char *dir, int keep_split, char *err, size_t errlen);

/* Removes "<name>.tmp.<pid>" files in dir (the temporaries of metalearn/io.h)
 * whose name is one of names[0..n) (NULL: the run files) and whose pid is
 * this process or no longer running. Other files, and temporaries of live
 * writers, are left alone. Returns how many were removed. */
int ml_rundir_clean_temps(const char *dir, const char *const *names, int n_names);

/* Takes dir for this process's writing: an advisory lock (flock) on the
 * folder, held until ml_rundir_unlock or the process ends (kill -9 too), so
 * a second process writing the same run or search (the same --resume twice)
 * is refused instead of doubling every log line. Returns the lock's
 * descriptor (>= 0), -2 on a file system without locks (nothing held: go
 * on), or -1 with err naming dir. */
int ml_rundir_lock(const char *dir, char *err, size_t errlen);
void ml_rundir_unlock(int lock); /* -1: nothing */

/* What ml_runlog_trim kept. */
typedef struct ml_runlog_tail {
    int last_iter;    /* "iter" of the last line kept, 0 if none */
    double elapsed_s; /* its "elapsed_s" (training seconds up to it), 0 if none */
    int kept, dropped; /* lines */
} ml_runlog_tail;

/* Makes the log at path consistent with a checkpoint at iteration max_iter:
 * drops lines past max_iter, a torn (unterminated or unparsable) line, and
 * earlier lines that a later line repeats (an old resume that went back), so
 * "iter" is strictly increasing. The file is replaced atomically and only
 * when something changes; a missing log is an empty one. */
ml_status ml_runlog_trim(const char *path, int max_iter, ml_runlog_tail *out, char *err, size_t errlen);

/* The curves of a log, as `metalearn plot` draws them: "iter" and "loss" of
 * every line, and the lines that carry a validation value ("val_mse", or
 * "val_acc" for few-shot runs: then val_is_acc). */
typedef struct ml_runlog_curves {
    double *iter, *loss;
    int n;
    double *val_iter, *val;
    int n_val, val_is_acc;
} ml_runlog_curves;

/* Reads the log at path into out (zeroed first). A missing log is an empty
 * one; an unterminated last line is a write cut short and is skipped; a
 * complete line without numeric "iter" and "loss" is ML_ERR_FORMAT with
 * "PATH:LINE: ..." in err. Free with ml_runlog_curves_free (also on error). */
ml_status ml_runlog_read_curves(const char *path, ml_runlog_curves *out, char *err, size_t errlen);
void ml_runlog_curves_free(ml_runlog_curves *c); /* zeroes *c */

/* Checkpoint timing: due after every `every_iters` iterations or when
 * `every_seconds` (0: never) have passed since the last save, whichever
 * comes first. Checkpoints never change the training itself. */
typedef struct ml_checkpoint_clock {
    int every_iters;
    double every_seconds;
    double last_save; /* ml_now() of the last save (or of the start) */
} ml_checkpoint_clock;

void ml_checkpoint_clock_start(ml_checkpoint_clock *c, int every_iters, double every_seconds, double now);
int ml_checkpoint_clock_due(const ml_checkpoint_clock *c, int done_iters, double now);
void ml_checkpoint_clock_saved(ml_checkpoint_clock *c, double now);

#ifdef __cplusplus
}
#endif
#endif
