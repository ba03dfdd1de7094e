/* search_internal.h: helpers shared by the files of src/search (not public). */
#ifndef ML_SEARCH_INTERNAL_H
#define ML_SEARCH_INTERNAL_H

#include <stddef.h>

struct cJSON;

/* A JSON file / text parsed, or NULL with err "PATH: cannot read: ..." or
 * "LABEL: not valid JSON (line N)". */
struct cJSON *ml__search_read_json(const char *path, char *err, size_t errlen);
struct cJSON *ml__search_parse_json(const char *text, const char *label, char *err, size_t errlen);

/* The library's own trial runner: in-process runs through the run API in
 * the forked children (runner.c). */
struct ml_search_runner;
const struct ml_search_runner *ml__search_default_runner(void);

#endif
