/* cpu_pair.c: are the machine's two vCPUs two cores, or two hardware threads
 * of one? Pure AVX-512 FMA throughput of one thread alone vs each of two
 * threads pinned to cpu 0 and cpu 1 at once. Prints one JSON line per round.
 * Not built by CMake (not a bench_*.c): gcc -O2 -pthread bench/cpu_pair.c */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct arg { int cpu; double gflops; } arg;

__attribute__((target("avx512f"))) static void *spin(void *p) {
    arg *a = p;
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(a->cpu, &s);
    pthread_setaffinity_np(pthread_self(), sizeof s, &s);
    __m512 acc[8], m = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-4f);
    for (int i = 0; i < 8; i++) acc[i] = _mm512_set1_ps((float)i);
    const long iters = 200000000;
    double t0 = now();
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < 8; k++) acc[k] = _mm512_fmadd_ps(acc[k], m, c);
    double t = now() - t0;
    float sink = 0;
    for (int k = 0; k < 8; k++) sink += _mm512_reduce_add_ps(acc[k]);
    a->gflops = iters * 8.0 * 16 * 2 / t / 1e9 + (sink == 12345.f);
    return NULL;
}

int main(void) {
    for (int round = 0; round < 3; round++) {
        arg one = {0, 0}, two[2] = {{0, 0}, {1, 0}};
        spin(&one);
        pthread_t t[2];
        for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, spin, &two[i]);
        for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
        printf("{\"round\":%d,\"one_thread_gflops\":%.1f,\"two_threads_gflops\":[%.1f,%.1f],\"pair_vs_one\":%.2f}\n",
               round, one.gflops, two[0].gflops, two[1].gflops, (two[0].gflops + two[1].gflops) / one.gflops);
        fflush(stdout);
    }
    return 0;
}
