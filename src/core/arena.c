/* arena.c: chained-block bump allocator with O(1) reset.
 *
 * Blocks form a singly linked list; `cur` is the block being bumped. Reset
 * rewinds to the first block. If a pass spilled into more than one block,
 * reset replaces the chain by one block big enough for the whole pass, so the
 * next identical pass makes no heap call at all.
 *
 * With the default allocator (and not under AddressSanitizer), blocks of
 * ML_ARENA_MAP_MIN bytes or more are mappings of their own, and a pass that
 * spills its first block grows into one block of at least ML_ARENA_RESERVE:
 * address space, of which only the touched pages become resident. A user's
 * allocator (ml_set_allocator) sees the chain of doubling blocks it always
 * saw: it would count the whole reservation as allocated. */
#define _DEFAULT_SOURCE /* madvise */
#include "metalearn/core.h"

#include "core/alloc_internal.h"

#include <stdint.h>
#include <sys/mman.h>

#define ML_ARENA_ALIGN 64
#define ML_PAGE 4096
#define ML_ARENA_MAP_MIN ((size_t)256 << 10)

/* Why one large block instead of a chain of doubling ones (1, 2, 4, ... MB):
 * a chain's pages stay resident beside each other while a pass goes back
 * and forth across its blocks (mark / rewind of kernel scratch), so a MAML
 * task with a 39 MB peak held up to ~55 MB in its first pass. */
#define ML_ARENA_RESERVE ((size_t)64 << 20)

typedef struct block {
    struct block *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    int released; /* its pages given back once on a rewind (at most once: see rewind) */
    void *raw; /* what ml_malloc or ml__map returned */
    size_t mapped; /* bytes of raw's mapping, 0 when it came from ml_malloc */
    unsigned char *data;
} block;

struct ml_arena {
    block *first, *cur;
    size_t total_used; /* bytes handed out since reset (incl. alignment) */
    size_t peak;       /* largest total_used seen, for the merge on reset */
};

/* Blocks as mappings of their own, growing into the reservation: with the
 * default allocator, and not under AddressSanitizer, whose redzones around
 * malloc's blocks catch a pass running off the end of one. */
static int map_blocks(void) {
#if defined(__SANITIZE_ADDRESS__)
    return 0;
#else
    return ml__default_allocator();
#endif
}

static block *block_new(size_t size) {
    size_t header = (sizeof(block) + ML_ARENA_ALIGN - 1) & ~(size_t)(ML_ARENA_ALIGN - 1);
    size_t bytes = header + size + ML_ARENA_ALIGN, mapped = 0;
    if (bytes < size) return NULL; /* overflow */
    void *raw;
    if (size >= ML_ARENA_MAP_MIN && map_blocks()) {
        raw = ml__map(bytes);
        mapped = bytes;
    } else {
        raw = ml_malloc(bytes);
    }
    if (!raw) return NULL;
    uintptr_t p = ((uintptr_t)raw + ML_ARENA_ALIGN - 1) & ~(uintptr_t)(ML_ARENA_ALIGN - 1);
    block *b = (block *)p;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    b->released = 0;
    b->raw = raw;
    b->mapped = mapped;
    b->data = (unsigned char *)p + header;
    return b;
}

/* Pages of block b from `from` on hold nothing live (a pass left b for the
 * next block, or rewound to an earlier one: kernel scratch rewound before),
 * so they go back to the system instead of staying resident beside the
 * next block's. Only while a pass spills over blocks (the first pass of a
 * context; afterwards reset has merged them into one block). */
static void release_from(block *b, size_t from) {
    uintptr_t lo = ((uintptr_t)(b->data + from) + ML_PAGE - 1) & ~(uintptr_t)(ML_PAGE - 1);
    uintptr_t hi = (uintptr_t)(b->data + b->size) & ~(uintptr_t)(ML_PAGE - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static void chain_free(block *b) {
    while (b) {
        block *n = b->next;
        if (b->mapped)
            ml__unmap(b->raw, b->mapped);
        else
            ml_free(b->raw);
        b = n;
    }
}

ml_arena *ml_arena_create(size_t first_block_bytes) {
    ml_arena *a = ml_calloc(1, sizeof *a);
    if (!a) return NULL;
    if (first_block_bytes < 4096) first_block_bytes = 4096;
    a->first = a->cur = block_new(first_block_bytes);
    if (!a->first) {
        ml_free(a);
        return NULL;
    }
    return a;
}

void ml_arena_destroy(ml_arena *a) {
    if (!a) return;
    chain_free(a->first);
    ml_free(a);
}

void *ml_arena_alloc(ml_arena *a, size_t bytes) {
    size_t need = (bytes + ML_ARENA_ALIGN - 1) & ~(size_t)(ML_ARENA_ALIGN - 1);
    if (need < bytes) return NULL; /* overflow */
    block *b = a->cur;
    while (b->used + need > b->size) {
        if (!b->next) {
            release_from(b, b->used);
            size_t size = b->size * 2;
            if (size < ML_ARENA_RESERVE && map_blocks()) size = ML_ARENA_RESERVE;
            if (size < need) size = need;
            block *nb = block_new(size);
            if (!nb) return NULL;
            b->next = nb;
        }
        b = b->next;
        b->used = 0;
        a->cur = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->total_used += need;
    if (a->total_used > a->peak) a->peak = a->total_used;
    return p;
}

/* The chain's largest block, unlinked, when it holds `bytes`; else NULL. */
static block *take_block_holding(ml_arena *a, size_t bytes) {
    block **link = &a->first, **best = NULL;
    for (; *link; link = &(*link)->next)
        if ((*link)->size >= bytes && (!best || (*link)->size > (*best)->size)) best = link;
    if (!best) return NULL;
    block *b = *best;
    *best = b->next;
    b->next = NULL;
    b->released = 0;
    return b;
}

void ml_arena_reset(ml_arena *a) {
    if (a->first->next && a->peak > a->first->size) {
        /* Merge: one block that holds the whole pass, the largest one when
         * it does (the reservation; no second block beside the chain).
         * If a new block cannot be had we keep the old chain, which still
         * works. */
        block *merged = take_block_holding(a, a->peak);
        /* Its pages go back, as a new block would not hold them: the first
         * pass can reach further than the ones after it (a --low-memory
         * MAML worker's reached 54 MB; keeping its pages cost 2.6 MB at the
         * peak on 2 threads). Once per spill: the next pass faults its
         * pages in again. */
        if (merged) release_from(merged, 0);
        if (!merged) merged = block_new(a->peak + a->peak / 8);
        if (merged) {
            chain_free(a->first);
            a->first = merged;
        }
    }
    a->cur = a->first;
    a->first->used = 0;
    a->total_used = 0;
}

ml_arena_mark ml_arena_get_mark(const ml_arena *a) {
    return (ml_arena_mark){a->cur, a->cur->used};
}

void ml_arena_rewind(ml_arena *a, ml_arena_mark m) {
    /* total_used is what the blocks before the mark's hold plus the mark's
     * offset (the tail a block skips is not counted, as in alloc), so the
     * merge on reset sizes the block from the pass's true peak: kernel
     * scratch rewound across a block boundary used to inflate it (a 71 MB
     * MAML task got a 321 MB block). */
    block *b = m.block;
    size_t used = m.used;
    /* Back across blocks: the later ones hold nothing live. Given back once
     * per block, so that a loop of mark / rewind spilling into the same
     * block does not fault its pages in again on every round. */
    for (block *p = b != a->cur ? b->next : NULL; p; p = p->next)
        if (!p->released) {
            release_from(p, 0);
            p->released = 1;
        }
    for (block *p = a->first; p && p != b; p = p->next) used += p->used;
    a->total_used = used;
    a->cur = b;
    b->used = m.used;
}

size_t ml_arena_used(const ml_arena *a) { return a->total_used; }

size_t ml_arena_capacity(const ml_arena *a) {
    size_t c = 0;
    for (block *b = a->first; b; b = b->next) c += b->size;
    return c;
}
