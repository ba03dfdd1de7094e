/* alloc_internal.h: address space for the arena, beside ml_malloc. */
#ifndef ML_CORE_ALLOC_INTERNAL_H
#define ML_CORE_ALLOC_INTERNAL_H

#include <stddef.h>

/* 1 while no user allocator is installed (ml_set_allocator). */
int ml__default_allocator(void);

/* A private anonymous mapping of `bytes` (read-write, no swap reserved):
 * address space whose pages become resident only once touched. Counted
 * and failure-injected like ml_malloc (ml_alloc_calls, ml_alloc_fail_after).
 * NULL when out of address space. */
void *ml__map(size_t bytes);
void ml__unmap(void *p, size_t bytes);

#endif
