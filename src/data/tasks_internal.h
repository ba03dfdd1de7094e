/* tasks_internal.h: what tasks.c needs from tasks_csv.c. Not installed. */
#ifndef ML_DATA_TASKS_INTERNAL_H
#define ML_DATA_TASKS_INTERNAL_H

#include "metalearn/tasks.h"

/* Loads `path` into *f (zeroed by the caller) as a CSV family. On failure
 * the caller frees *f; whatever was already attached to it is released there. */
ml_status ml__tasks_load_csv(ml_task_family *f, const char *path, char *err, size_t errlen);

#endif
