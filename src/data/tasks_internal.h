/* tasks_internal.h: what tasks.c needs from tasks_csv.c, and the task
 * families' loaders for the source table (sources.c). Not installed. */
#ifndef ML_DATA_TASKS_INTERNAL_H
#define ML_DATA_TASKS_INTERNAL_H

#include "metalearn/tasks.h"

/* Loads `path` into *f (zeroed by the caller) as a CSV family. On failure
 * the caller frees *f; whatever was already attached to it is released there. */
ml_status ml__tasks_load_csv(ml_task_family *f, const char *path, char *err, size_t errlen);

/* The loaders of the task-family rows of the source table (sources.c):
 * spec is the whole spec, arg the text after "NAME:" (NULL: none). */
ml_status ml__tasks_init_sinusoid(ml_task_family *f, const char *spec, const char *arg, char *err, size_t errlen);
ml_status ml__tasks_init_linear(ml_task_family *f, const char *spec, const char *arg, char *err, size_t errlen);
ml_status ml__tasks_init_sine_seq(ml_task_family *f, const char *spec, const char *arg, char *err, size_t errlen);
ml_status ml__tasks_init_csv(ml_task_family *f, const char *spec, const char *arg, char *err, size_t errlen);

#endif
