/* task_sum.c: the meta-gradient summed in task order as the tasks finish.
 *
 * A meta-batch used to keep one row of n_meta floats per task (meta-batch 32
 * of the 4-block CNN: 14.4 MB) and sum them at the end, task 0 first. Here a
 * finished task's row is added at once when every earlier task has been
 * added, otherwise parked in a slot until they have; the sum is the same
 * float sum in the same order (0 + row 0 + row 1 + ...), so the bits are
 * unchanged. The pool deals tasks in order (pool.c), so few rows wait: about
 * one per extra thread. Slots are kept from step to step. */
#include "meta/task_sum.h"

#include <pthread.h>
#include <string.h>

#include "metalearn/core.h"

struct ml__task_sum {
    pthread_mutex_t mu;
    int64_t n;      /* floats per row */
    float *acc;     /* the running sum */
    int next;       /* the next task to add */
    int n_slots;    /* slot[i] holds task slot_item[i], or is free (-1) */
    int max_slots;  /* the meta-batch: never more rows than tasks */
    float **slot;
    int *slot_item;
    int failed;     /* out of memory for a slot */
};

ml__task_sum *ml__task_sum_create(int64_t n, int max_items) {
    ml__task_sum *s = ml_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n = n;
    s->max_slots = max_items;
    s->acc = ml_calloc((size_t)n, sizeof(float));
    s->slot = ml_calloc((size_t)max_items, sizeof *s->slot);
    s->slot_item = ml_calloc((size_t)max_items, sizeof *s->slot_item);
    if (!s->acc || !s->slot || !s->slot_item || pthread_mutex_init(&s->mu, NULL)) {
        ml_free(s->slot_item);
        ml_free(s->slot);
        ml_free(s->acc);
        ml_free(s);
        return NULL;
    }
    return s;
}

/* The lock is held for a row's add (tiny models: well under a
 * microsecond), and two workers often finish tasks together: a blocked
 * pthread mutex costs a futex sleep and wake-up, far longer than the add.
 * So spin a little first (bounded: a descheduled holder still ends in the
 * kernel's wait). */
static void lock(ml__task_sum *s) {
    for (int i = 0; i < 256; i++) {
        if (pthread_mutex_trylock(&s->mu) == 0) return;
#if defined(__x86_64__) || defined(__i386__)
        __asm__ volatile("pause");
#endif
    }
    pthread_mutex_lock(&s->mu);
}

void ml__task_sum_destroy(ml__task_sum *s) {
    if (!s) return;
    for (int i = 0; i < s->n_slots; i++) ml_free(s->slot[i]);
    ml_free(s->slot);
    ml_free(s->slot_item);
    ml_free(s->acc);
    pthread_mutex_destroy(&s->mu);
    ml_free(s);
}

void ml__task_sum_reset(ml__task_sum *s) {
    memset(s->acc, 0, (size_t)s->n * sizeof(float));
    s->next = 0;
    s->failed = 0;
    for (int i = 0; i < s->n_slots; i++) s->slot_item[i] = -1;
}

/* The slot this thread wrote last: taken again when free, so a row's
 * cache lines stay on the core that writes them (only a hint). */
static _Thread_local int last_slot = -1;

/* A free slot marked busy (item -2: being written), a new one if none. */
float *ml__task_sum_row(ml__task_sum *s) {
    lock(s);
    float *row = NULL;
    if (last_slot >= 0 && last_slot < s->n_slots && s->slot_item[last_slot] == -1)
        s->slot_item[last_slot] = -2, row = s->slot[last_slot];
    for (int i = 0; i < s->n_slots && !row; i++)
        if (s->slot_item[i] == -1) s->slot_item[i] = -2, row = s->slot[i], last_slot = i;
    if (!row && s->n_slots < s->max_slots) {
        row = ml_malloc((size_t)s->n * sizeof(float));
        if (row) {
            last_slot = s->n_slots;
            s->slot[s->n_slots] = row;
            s->slot_item[s->n_slots++] = -2;
        }
    }
    if (!row) s->failed = 1;
    pthread_mutex_unlock(&s->mu);
    return row;
}

static void add_row(ml__task_sum *s, const float *row) {
    float *restrict acc = s->acc;
    for (int64_t j = 0; j < s->n; j++) acc[j] += row[j];
}

/* Adds every parked row that is next in task order (lock held). */
static void add_parked(ml__task_sum *s) {
    for (int found = 1; found;) {
        found = 0;
        for (int i = 0; i < s->n_slots; i++)
            if (s->slot_item[i] == s->next) {
                add_row(s, s->slot[i]);
                s->slot_item[i] = -1;
                s->next++;
                found = 1;
            }
    }
}

void ml__task_sum_commit(ml__task_sum *s, int item, float *row) {
    lock(s);
    int at = 0;
    while (s->slot[at] != row) at++;
    s->slot_item[at] = item;
    add_parked(s); /* this row, if it is next, and the parked ones after it */
    pthread_mutex_unlock(&s->mu);
}

int ml__task_sum_add_in_order(ml__task_sum *s, int item, void (*add)(float *acc, const void *user),
                              const void *user) {
    lock(s);
    int now = s->next == item;
    if (now) {
        add(s->acc, user);
        s->next++;
        add_parked(s);
    }
    pthread_mutex_unlock(&s->mu);
    return now;
}

int ml__task_sum_add_block_in_order(ml__task_sum *s, int first, int count, void (*add)(float *acc, const void *user),
                                    const void *user) {
    lock(s);
    int now = s->next == first;
    if (now) {
        add(s->acc, user);
        s->next += count;
        add_parked(s);
    }
    pthread_mutex_unlock(&s->mu);
    return now;
}

int ml__task_sum_done(const ml__task_sum *s, int n) { return !s->failed && s->next == n; }

const float *ml__task_sum_total(const ml__task_sum *s) { return s->acc; }
