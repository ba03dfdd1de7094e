/* dispatch.h: hot loops compiled for several x86-64 levels, chosen at load time.
 *
 * The library is built for plain x86-64 (it must run on any such CPU; see
 * ML_NATIVE in CMakeLists.txt), which would leave its elementwise, reduction
 * and small-GEMM loops at SSE2. ML_KERNEL on such a function makes GCC
 * compile it three times: x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and
 * baseline, and resolve the call once, at load time, to the best the CPU has
 * (an ifunc). A -march=native build (ML_NATIVE=ON), another architecture or
 * clang (the fuzz build: clang rejects the 64-byte vector helpers in the AVX2
 * clone instead of inlining them) compiles it once, as before.
 *
 * Numerics: the loops have no reductions that the vectoriser may reorder
 * (the reductions use explicit vector types with a fixed lane order), so the
 * vector width does not change any result. Only FMA contraction can, and it
 * is enabled in src/tensor/gemm.c and conv.c alone: there the two FMA levels
 * give the bits of a native build on an FMA machine, the baseline level
 * (CPUs without FMA, before 2013) rounds each multiply and add separately.
 *
 * OpenMP outlines `#pragma omp parallel` bodies before the clones are made,
 * so a cloned function must hold the loop itself, not the parallel region. */
#ifndef ML_CORE_DISPATCH_H
#define ML_CORE_DISPATCH_H

#if defined(ML_DISPATCH) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ML_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
/* For hand-written AVX-512 code: compile it for AVX-512 and test at run time. */
#define ML_HAVE_AVX512_PATH 1
#define ML_TARGET_AVX512 __attribute__((target("avx512f")))
#define ML_CPU_HAS_AVX512() __builtin_cpu_supports("avx512f")
#else
#define ML_KERNEL
#if defined(__AVX512F__)
#define ML_HAVE_AVX512_PATH 1
#define ML_TARGET_AVX512
#define ML_CPU_HAS_AVX512() 1
#endif
#endif

/* Helpers that take or return 64-byte vectors (ml_v16f) and are called from
 * ML_KERNEL functions must be inlined into each clone: a separate copy would
 * be compiled for baseline x86-64, where such vectors are passed in memory,
 * while an AVX-512 clone passes them in a zmm register (an unoptimised build
 * then reads garbage). Inlining also gives the helper the clone's ISA. */
#define ML_INLINE static inline __attribute__((always_inline))

#endif
