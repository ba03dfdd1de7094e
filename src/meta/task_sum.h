/* task_sum.h: the meta-gradient rows of a step summed in task order as the
 * tasks finish (task_sum.c), instead of one row kept per task. Not installed. */
#ifndef ML_META_TASK_SUM_H
#define ML_META_TASK_SUM_H

#include <stdint.h>

typedef struct ml__task_sum ml__task_sum;

/* Rows of n floats, at most max_items tasks per step. NULL: out of memory. */
ml__task_sum *ml__task_sum_create(int64_t n, int max_items);
void ml__task_sum_destroy(ml__task_sum *s);
/* Before a step's first task: the sum back to zero, every slot free. */
void ml__task_sum_reset(ml__task_sum *s);
/* A row for one finished task to write (any thread); NULL: out of memory,
 * which ml__task_sum_done then reports. */
float *ml__task_sum_row(ml__task_sum *s);
/* The row of task `item` is written: added now if every earlier task's is,
 * else when they are. */
void ml__task_sum_commit(ml__task_sum *s, int item, float *row);
/* When every task before `item` is added: adds task `item`'s row straight
 * from the caller's own layout by add(acc, user) (each element once, as
 * acc[j] += row[j] would), then the parked rows that follow, and returns 1.
 * Else returns 0 and the caller parks a row (ml__task_sum_row + commit).
 * Saves writing the row and reading it back when tasks finish in order. */
int ml__task_sum_add_in_order(ml__task_sum *s, int item, void (*add)(float *acc, const void *user),
                              const void *user);
/* The same for tasks first .. first+count-1 at once: add(acc, user) adds
 * their rows one after another (each element: acc[j] += row_first[j], then
 * += row_first+1[j], ...); 0 when a task before `first` is missing. */
int ml__task_sum_add_block_in_order(ml__task_sum *s, int first, int count, void (*add)(float *acc, const void *user),
                                    const void *user);
/* 1 when tasks 0 .. n-1 are all added. */
int ml__task_sum_done(const ml__task_sum *s, int n);
/* 0 + row 0 + row 1 + ... in float, element by element. */
const float *ml__task_sum_total(const ml__task_sum *s);

#endif
