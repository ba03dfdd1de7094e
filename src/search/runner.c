/* runner.c: the library's default trial runner for ml_search_run. */
#include <stddef.h>

#include "metalearn/search.h"
#include "search/search_internal.h"

const ml_search_runner *ml__search_default_runner(void) { return NULL; }
