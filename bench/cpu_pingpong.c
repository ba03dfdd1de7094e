/* cpu_pingpong.c: cache-line round trip between the two vCPUs. Two threads
 * pinned to cpu A and cpu B bounce one atomic counter; prints the median ns
 * per round trip over several rounds as one JSON line. On a VM the host may
 * place the vCPUs on cores that share an L3 (fast hand-overs) or not; this
 * tells which, next to a benchmark run.
 * Not built by CMake: gcc -O2 -pthread bench/cpu_pingpong.c -o pingpong
 * Usage: ./pingpong [cpuA cpuB [trips per round]] */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static _Alignas(64) atomic_long ball;
enum { ROUNDS = 9 };
static long TRIPS = 200000;

static void pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *other(void *p) {
    pin(*(int *)p);
    for (long i = 0; i < (long)TRIPS * ROUNDS; i++) {
        while (atomic_load_explicit(&ball, memory_order_acquire) != 2 * i + 1) __asm__ volatile("pause");
        atomic_store_explicit(&ball, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int a = argc > 2 ? atoi(argv[1]) : 0, b = argc > 2 ? atoi(argv[2]) : 1;
    if (argc > 3) TRIPS = atol(argv[3]);
    pthread_t t;
    pthread_attr_t attr; /* the partner starts on its own cpu (under chrt it could not run on ours) */
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(b, &s);
    pthread_attr_init(&attr);
    pthread_attr_setaffinity_np(&attr, sizeof s, &s);
    pthread_create(&t, &attr, other, &b);
    pin(a);
    double ns[ROUNDS];
    long i = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        for (long k = 0; k < TRIPS; k++, i++) {
            atomic_store_explicit(&ball, 2 * i + 1, memory_order_release);
            while (atomic_load_explicit(&ball, memory_order_acquire) != 2 * i + 2) __asm__ volatile("pause");
        }
        ns[r] = (now() - t0) / (double)TRIPS * 1e9;
    }
    pthread_join(t, NULL);
    qsort(ns, ROUNDS, sizeof *ns, cmp);
    printf("{\"bench\":\"cpu_pingpong\",\"cpus\":[%d,%d],\"round_trip_ns_median\":%.1f,\"min\":%.1f,\"max\":%.1f}\n", a, b,
           ns[ROUNDS / 2], ns[0], ns[ROUNDS - 1]);
    return 0;
}
