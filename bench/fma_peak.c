/*
 * fma_peak — the machine's measured fused multiply-add peak, float64 and float32, in GFLOP/s
 * (one FMA = 2 flops per lane), on one core and on all OpenMP threads.
 *
 *     fma_peak [SECONDS]        (default 0.3 s per measurement; best of 5)
 *
 * Each thread runs a loop of independent FMA chains: enough of them (12) to hide the FMA latency
 * (4 cycles on current x86 cores) on two FMA pipes. The chains converge to a fixed point
 * (acc ← acc·a + b with |a| < 1), so the values stay normal and no denormal slowdown can occur.
 * The widest vector ISA the CPU has is used: AVX-512F, else AVX2+FMA, else portable C (which
 * measures whatever the compiler makes of it). Output lines beginning "float64" / "float32" are
 * read by bench/anchors.py: "<dtype> <isa> <GFLOP/s one core> <GFLOP/s all threads> <threads>".
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#define CHAINS 12

static double now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile double sink;

/* Each kernel runs `iters` iterations of CHAINS independent FMAs and returns the flops done. */
typedef double (*fma_loop)(long iters);

#if HAVE_X86
/* Twelve named accumulators: an array of them stays in memory at -O2, and the loop would measure
 * store forwarding instead of FMA. VEC, SET1, FMA, ADD, STORE and ELEM are defined per ISA below. */
#define REP12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECL_ACC(i) VEC acc##i = SET1((ELEM)(i));
#define STEP_ACC(i) acc##i = FMA(acc##i, a, b);
#define SUM_ACC(i) s = ADD(s, acc##i);
#define FMA_LOOP(NAME, TARGET, LANES, A, B)                                                       \
    __attribute__((target(TARGET))) static double NAME(long iters)                               \
    {                                                                                             \
        const VEC a = SET1(A), b = SET1(B);                                                       \
        REP12(DECL_ACC)                                                                           \
        for (long i = 0; i < iters; i++) {                                                        \
            REP12(STEP_ACC)                                                                       \
        }                                                                                         \
        VEC s = SET1((ELEM)0);                                                                    \
        REP12(SUM_ACC)                                                                            \
        ELEM out[LANES];                                                                          \
        STORE(out, s);                                                                            \
        sink += (double)out[0];                                                                   \
        return 2.0 * LANES * CHAINS * (double)iters;                                              \
    }

#define ELEM double
#define VEC __m256d
#define SET1 _mm256_set1_pd
#define FMA _mm256_fmadd_pd
#define ADD _mm256_add_pd
#define STORE _mm256_storeu_pd
FMA_LOOP(avx2_f64, "avx2,fma", 4, 0.999999, 1e-6)
#undef VEC
#undef SET1
#undef FMA
#undef ADD
#undef STORE
#define VEC __m512d
#define SET1 _mm512_set1_pd
#define FMA _mm512_fmadd_pd
#define ADD _mm512_add_pd
#define STORE _mm512_storeu_pd
FMA_LOOP(avx512_f64, "avx512f", 8, 0.999999, 1e-6)
#undef ELEM
#undef VEC
#undef SET1
#undef FMA
#undef ADD
#undef STORE
#define ELEM float
#define VEC __m256
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
#define STORE _mm256_storeu_ps
FMA_LOOP(avx2_f32, "avx2,fma", 8, 0.9999f, 1e-4f)
#undef VEC
#undef SET1
#undef FMA
#undef ADD
#undef STORE
#define VEC __m512
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define STORE _mm512_storeu_ps
FMA_LOOP(avx512_f32, "avx512f", 16, 0.9999f, 1e-4f)
#undef ELEM
#undef VEC
#undef SET1
#undef FMA
#undef ADD
#undef STORE
#endif

#define PORTABLE_LANES 8
#define PORTABLE_LOOP(NAME, ELEM, A, B)                                                           \
    static double NAME(long iters)                                                                \
    {                                                                                             \
        ELEM acc[CHAINS][PORTABLE_LANES];                                                         \
        for (int c = 0; c < CHAINS; c++)                                                          \
            for (int l = 0; l < PORTABLE_LANES; l++) acc[c][l] = (ELEM)(c + l);                   \
        for (long i = 0; i < iters; i++)                                                          \
            for (int c = 0; c < CHAINS; c++)                                                      \
                for (int l = 0; l < PORTABLE_LANES; l++) acc[c][l] = acc[c][l] * (A) + (B);       \
        double s = 0;                                                                             \
        for (int c = 0; c < CHAINS; c++)                                                          \
            for (int l = 0; l < PORTABLE_LANES; l++) s += (double)acc[c][l];                      \
        sink += s;                                                                                \
        return 2.0 * PORTABLE_LANES * CHAINS * (double)iters;                                     \
    }
PORTABLE_LOOP(portable_f64, double, 0.999999, 1e-6)
PORTABLE_LOOP(portable_f32, float, 0.9999f, 1e-4f)

/* GFLOP/s of `loop` on `threads` threads: iterations calibrated to about `seconds`, best of 5. */
static double measure(fma_loop loop, int threads, double seconds)
{
    long iters = 1000;
    for (;;) { /* calibrate on one thread */
        double t0 = now_seconds();
        loop(iters);
        double t = now_seconds() - t0;
        if (t > 0.05 * seconds || iters > (1L << 40)) {
            iters = (long)((double)iters * seconds / (t > 1e-9 ? t : 1e-9)) + 1;
            break;
        }
        iters *= 4;
    }
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double flops = 0, t0 = 0, t1 = 0;
#pragma omp parallel num_threads(threads) reduction(+ : flops)
        {
#pragma omp barrier
#pragma omp single
            t0 = now_seconds();
            flops += loop(iters);
#pragma omp barrier
#pragma omp single
            t1 = now_seconds();
        }
        double g = flops / (t1 - t0) * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.3;
    if (!(seconds > 0)) {
        fprintf(stderr, "usage: fma_peak [SECONDS]\n");
        return 2;
    }
    const char *isa = "portable";
    fma_loop f64 = portable_f64, f32 = portable_f32;
#if HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        isa = "avx512";
        f64 = avx512_f64;
        f32 = avx512_f32;
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        isa = "avx2";
        f64 = avx2_f64;
        f32 = avx2_f32;
    }
#endif
    int threads = omp_get_max_threads();
    printf("# FMA peak, GFLOP/s (2 flops per FMA lane): dtype isa one-core all-threads threads\n");
    double a = measure(f64, 1, seconds), b = measure(f64, threads, seconds);
    printf("float64 %s %.2f %.2f %d\n", isa, a, b, threads);
    a = measure(f32, 1, seconds), b = measure(f32, threads, seconds);
    printf("float32 %s %.2f %.2f %d\n", isa, a, b, threads);
    return 0;
}
