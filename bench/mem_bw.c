/*
 * mem_bw — the machine's measured memory write bandwidth in GB/s (10^9 bytes stored per second),
 * on one core and on all OpenMP threads, for streaming (non-temporal) stores and for regular
 * stores. It is the yardstick for "fraction of the write bandwidth" (bench/engine_limits.py: the
 * Gram block K(X,X) writes N² values).
 *
 *     mem_bw [MIB] [REPS]       (default a 1024 MiB buffer, best of 5 passes)
 *
 * The buffer is allocated 4 KiB-aligned and touched first by the threads that will write it (so
 * page faults are not timed and pages sit near their writers). Each pass fills the whole buffer
 * with one value: one thread writes all of it, or the OpenMP threads each write one contiguous,
 * 4 KiB-aligned share. Non-temporal stores bypass the caches (followed by sfence); regular stores
 * go through them, so the memory also carries the read-for-ownership of every line: the GB/s
 * count the bytes the program stored, not the bus traffic. The widest vector ISA the CPU has is
 * used (AVX-512F, else AVX, else SSE2; portable C elsewhere, which has no non-temporal line).
 *
 * Output lines beginning "write" are read by bench/engine_limits.py:
 *     "<kind> <isa> <GB/s one core> <GB/s all threads> <threads>",  kind = write_nt | write
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#define ALIGN_DOUBLES 512 /* 4 KiB: shares start on page boundaries; a multiple of every vector */

static double now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile double sink;

/* Fill p[0..n) with v; p is 64-byte aligned and n a multiple of 32. */
typedef void (*fill_fn)(double *p, size_t n, double v);

#if HAVE_X86
/* Four vectors per iteration: one 64-byte line (AVX2: half a line twice; SSE2: a line). */
#define FILL_LOOP(NAME, TARGET, VEC, SET1, STORE, LANES, FENCE)                                   \
    __attribute__((target(TARGET))) static void NAME(double *p, size_t n, double v)              \
    {                                                                                             \
        const VEC x = SET1(v);                                                                    \
        for (size_t i = 0; i < n; i += 4 * LANES) {                                               \
            STORE(p + i, x);                                                                      \
            STORE(p + i + LANES, x);                                                              \
            STORE(p + i + 2 * LANES, x);                                                          \
            STORE(p + i + 3 * LANES, x);                                                          \
        }                                                                                         \
        FENCE;                                                                                    \
    }
FILL_LOOP(nt_avx512, "avx512f", __m512d, _mm512_set1_pd, _mm512_stream_pd, 8, _mm_sfence())
FILL_LOOP(st_avx512, "avx512f", __m512d, _mm512_set1_pd, _mm512_store_pd, 8, (void)0)
FILL_LOOP(nt_avx, "avx", __m256d, _mm256_set1_pd, _mm256_stream_pd, 4, _mm_sfence())
FILL_LOOP(st_avx, "avx", __m256d, _mm256_set1_pd, _mm256_store_pd, 4, (void)0)
FILL_LOOP(nt_sse2, "sse2", __m128d, _mm_set1_pd, _mm_stream_pd, 2, _mm_sfence())
FILL_LOOP(st_sse2, "sse2", __m128d, _mm_set1_pd, _mm_store_pd, 2, (void)0)
#endif

static void st_portable(double *p, size_t n, double v)
{
    for (size_t i = 0; i < n; i++) p[i] = v;
}

/* The share [*lo, *hi) of thread t of T: contiguous, ALIGN_DOUBLES-aligned. */
static void share(size_t n, int t, int T, size_t *lo, size_t *hi)
{
    size_t blocks = n / ALIGN_DOUBLES;
    *lo = blocks * (size_t)t / (size_t)T * ALIGN_DOUBLES;
    *hi = blocks * (size_t)(t + 1) / (size_t)T * ALIGN_DOUBLES;
}

/* GB/s of `fill` writing buf[0..n) on `threads` threads, best of `reps` passes. */
static double measure(fill_fn fill, double *buf, size_t n, int threads, int reps)
{
    double best = 0;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = 0, t1 = 0, v = 1.0 + rep;
#pragma omp parallel num_threads(threads)
        {
            size_t lo, hi;
            share(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
#pragma omp barrier
#pragma omp single
            t0 = now_seconds();
            fill(buf + lo, hi - lo, v);
#pragma omp barrier
#pragma omp single
            t1 = now_seconds();
        }
        sink += buf[n / 2];
        double g = (double)n * sizeof(double) / (t1 - t0) * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

int main(int argc, char **argv)
{
    long mib = argc > 1 ? atol(argv[1]) : 1024;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (mib < 1 || reps < 1 || argc > 3) {
        fprintf(stderr, "usage: mem_bw [MIB] [REPS]\n");
        return 2;
    }
    size_t n = (size_t)mib * 1024 * 1024 / sizeof(double);
    n -= n % ALIGN_DOUBLES;
    double *buf = aligned_alloc(4096, n * sizeof(double));
    if (!buf) {
        fprintf(stderr, "mem_bw: cannot allocate %ld MiB\n", mib);
        return 1;
    }
    int threads = omp_get_max_threads();
#pragma omp parallel num_threads(threads)
    { /* first touch, by the writers of the all-threads passes */
        size_t lo, hi;
        share(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (size_t i = lo; i < hi; i += 512) buf[i] = 0.0;
    }

    const char *isa = "portable";
    fill_fn nt = NULL, st = st_portable;
#if HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        isa = "avx512";
        nt = nt_avx512;
        st = st_avx512;
    } else if (__builtin_cpu_supports("avx")) {
        isa = "avx";
        nt = nt_avx;
        st = st_avx;
    } else {
        isa = "sse2";
        nt = nt_sse2;
        st = st_sse2;
    }
#endif
    printf("# memory write bandwidth, GB/s (1e9 bytes stored per second), %ld MiB buffer, best of "
           "%d: kind isa one-core all-threads threads\n", mib, reps);
    if (nt) {
        double a = measure(nt, buf, n, 1, reps), b = measure(nt, buf, n, threads, reps);
        printf("write_nt %s %.2f %.2f %d\n", isa, a, b, threads);
    }
    double a = measure(st, buf, n, 1, reps), b = measure(st, buf, n, threads, reps);
    printf("write %s %.2f %.2f %d\n", isa, a, b, threads);
    free(buf);
    return 0;
}
