/* errfmt.h: formatting a one-line error message into a caller's buffer
 * (internal). err may be NULL or errlen 0: then nothing is written. */
#ifndef ML_CORE_ERRFMT_H
#define ML_CORE_ERRFMT_H

#include <stddef.h>

void ml__errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
