/*
 * bench_features — times gram_features_transform (random feature maps, issue 13).
 *
 *     bench_features [--n N] [--d D] [--r R] [--method M] [--kernel SPEC] [--dtype f32|f64]
 *                    [--threads T] [--reps R] [--seed S] [--chunk ROWS]
 *
 * M: rff, rff_phase, orf, sorf, positive, positive_orf, hyperbolic, hyperbolic_orf, tensorsketch.
 * Data X (N×D) uniform on [-0.5, 0.5); the map is made once (its creation time is printed apart).
 * Prints the median transform time, the spread, the projection's rate in GFLOP/s (2·N·D per
 * frequency: R/2 frequencies for the methods with pairs, R for the others; meaningless for SORF and
 * TensorSketch, whose projection is not a GEMM), the output written in GB/s, and a checksum (the sum
 * of all features, %.17g).
 *
 * The yardstick is measured in the same run: the fma_peak program beside this one (the build's
 * bench/ directory) is run before and after the timings, and the higher of its two readings for
 * the dtype (one core with --threads 1, else all threads) is the peak; the fraction printed is the
 * projection's GEMM flops alone over it (the sine/cosine or exponential polynomials' flops are not
 * counted: they would flatter the figure).
 *
 * An output of N×R values larger than 2 GiB (N = 10⁶, R = 4096 in float32 is 16 GB) is written in
 * chunks of rows into one reused buffer of at most 2 GiB (--chunk sets the rows); the time is that
 * of all chunks. The reused buffer's pages are touched before the timings, as an application's
 * output buffer would be.
 * Defaults: N = 100000, D = 64, R = 4096, rff, gaussian(lengthscale=8), f32, OpenMP's threads, 3 reps.
 */
#define _POSIX_C_SOURCE 200809L /* popen, clock_gettime */
#include <gram.h>

#include "bench_util.h"

#include <stdio.h>
#include <string.h>

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The FMA peak for the dtype from the fma_peak program beside argv0 (one core or all threads);
 * 0 when it cannot be run. */
static double fma_peak(const char *argv0, int f32, int one_core)
{
    char cmd[4200];
    const char *slash = strrchr(argv0, '/');
    int dir = slash ? (int)(slash - argv0) : 1;
    if (strlen(argv0) > 4000) return 0;
    snprintf(cmd, sizeof cmd, "'%.*s/fma_peak' 0.2", dir, slash ? argv0 : ".");
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    char line[256], isa[32];
    double best = 0, a, b;
    int t;
    while (fgets(line, sizeof line, p)) {
        if (strncmp(line, f32 ? "float32 " : "float64 ", 8)) continue;
        if (sscanf(line + 8, "%31s %lf %lf %d", isa, &a, &b, &t) == 4) best = one_core ? a : b;
    }
    pclose(p);
    return best;
}

static const struct {
    const char *name;
    gram_features_method m;
    int pairs; /* frequencies = R/2 */
} METHODS[] = {
    {"rff", GRAM_FEATURES_RFF, 1},
    {"rff_phase", GRAM_FEATURES_RFF_PHASE, 0},
    {"orf", GRAM_FEATURES_ORF, 1},
    {"sorf", GRAM_FEATURES_SORF, 1},
    {"positive", GRAM_FEATURES_POSITIVE, 0},
    {"positive_orf", GRAM_FEATURES_POSITIVE_ORF, 0},
    {"hyperbolic", GRAM_FEATURES_HYPERBOLIC, 1},
    {"hyperbolic_orf", GRAM_FEATURES_HYPERBOLIC_ORF, 1},
    {"tensorsketch", GRAM_FEATURES_TENSORSKETCH, 0},
};

static void usage(void)
{
    fprintf(stderr, "usage: bench_features [--n N] [--d D] [--r R] [--method M] [--kernel SPEC] "
                    "[--dtype f32|f64] [--threads T] [--reps R] [--seed S] [--chunk ROWS]\n"
                    "methods: rff rff_phase orf sorf positive positive_orf hyperbolic hyperbolic_orf "
                    "tensorsketch\n");
}

int main(int argc, char **argv)
{
    long long n = 100000, d = 64, r = 4096, seed = 1, chunk = 0;
    int threads = 0, reps = 3, f32 = 1, mi = 0;
    const char *spec = "gaussian(lengthscale=8)";
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
            usage();
            return 0;
        }
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const char *val = argv[++i];
        char *end = (char *)val + strlen(val);
        if (!strcmp(opt, "--n")) n = strtoll(val, &end, 10);
        else if (!strcmp(opt, "--d")) d = strtoll(val, &end, 10);
        else if (!strcmp(opt, "--r")) r = strtoll(val, &end, 10);
        else if (!strcmp(opt, "--seed")) seed = strtoll(val, &end, 10);
        else if (!strcmp(opt, "--chunk")) chunk = strtoll(val, &end, 10);
        else if (!strcmp(opt, "--threads")) threads = (int)strtol(val, &end, 10);
        else if (!strcmp(opt, "--reps")) reps = (int)strtol(val, &end, 10);
        else if (!strcmp(opt, "--kernel")) spec = val;
        else if (!strcmp(opt, "--dtype") && (!strcmp(val, "f32") || !strcmp(val, "f64"))) f32 = !strcmp(val, "f32");
        else if (!strcmp(opt, "--method")) {
            mi = -1;
            for (size_t q = 0; q < sizeof METHODS / sizeof *METHODS; q++)
                if (!strcmp(val, METHODS[q].name)) mi = (int)q;
            if (mi < 0) {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
        if (end == val || *end != '\0') {
            fprintf(stderr, "bench_features: bad value for %s: %s\n", opt, val);
            return 2;
        }
    }
    if (n < 1 || d < 1 || r < 1 || reps < 1 || threads < 0 || seed < 0 || chunk < 0) {
        fprintf(stderr, "bench_features: N, D, R and reps must be >= 1\n");
        return 2;
    }

    size_t esz = f32 ? sizeof(float) : sizeof(double);
    if (chunk == 0) {
        const long long cap = (2LL << 30) / (long long)((size_t)r * esz);
        chunk = n <= cap ? n : cap > 0 ? cap : 1;
    }
    if (chunk > n) chunk = n;
    void *x = malloc((size_t)(n * d) * esz), *out = malloc((size_t)(chunk * r) * esz);
    double *times = malloc((size_t)reps * sizeof(double)), *cpu = malloc((size_t)reps * sizeof(double));
    if (!x || !out || !times || !cpu) {
        fprintf(stderr, "bench_features: out of memory\n");
        return 1;
    }
    uint64_t s = (uint64_t)seed;
    for (long long i = 0; i < n * d; i++) {
        double z = uniform(&s) - 0.5;
        if (f32) ((float *)x)[i] = (float)z;
        else ((double *)x)[i] = z;
    }

    gram_context *ctx = NULL;
    gram_kernel *k = NULL;
    gram_features *f = NULL;
    gram_status st = gram_context_create(&ctx);
    if (st == GRAM_OK) st = gram_context_set_threads(ctx, threads);
    if (st == GRAM_OK) st = gram_kernel_parse(ctx, spec, &k);
    double tc = now_seconds();
    if (st == GRAM_OK) st = gram_features_create(ctx, k, d, METHODS[mi].m, r, (uint64_t)seed, &f);
    tc = now_seconds() - tc;
    memset(out, 0, (size_t)(chunk * r) * esz);
    const double peak0 = fma_peak(argv[0], f32, threads == 1);
    /* checksum of the last chunk written (the whole output when it is one chunk) */
    for (int q = 0; st == GRAM_OK && q < reps; q++) {
        double t0 = now_seconds(), c0 = cpu_seconds();
        for (long long i0 = 0; st == GRAM_OK && i0 < n; i0 += chunk) {
            const long long m = n - i0 < chunk ? n - i0 : chunk;
            gram_array X = f32 ? gram_array_f32((float *)x + i0 * d, m, d) : gram_array_f64((double *)x + i0 * d, m, d);
            gram_array O = f32 ? gram_array_f32(out, m, r) : gram_array_f64(out, m, r);
            st = gram_features_transform(ctx, f, &X, &O);
        }
        times[q] = now_seconds() - t0;
        cpu[q] = cpu_seconds() - c0;
    }
    const double peak1 = fma_peak(argv[0], f32, threads == 1), peak = peak0 > peak1 ? peak0 : peak1;
    if (st != GRAM_OK) {
        fprintf(stderr, "bench_features: %s: %s\n", gram_strerror(st), gram_context_message(ctx));
        return 1;
    }
    double checksum = 0;
    const long long last = n - ((n - 1) / chunk) * chunk;
    for (long long i = 0; i < last * r; i++) checksum += f32 ? (double)((float *)out)[i] : ((double *)out)[i];
    double lo = times[0], hi = times[0];
    for (int q = 1; q < reps; q++) lo = times[q] < lo ? times[q] : lo, hi = times[q] > hi ? times[q] : hi;
    double med = median_of(times, reps);
    double freqs = METHODS[mi].pairs ? (double)r / 2 : (double)r;
    char nthreads[32] = "default";
    if (gram_context_threads(ctx) > 0) snprintf(nthreads, sizeof nthreads, "%d", gram_context_threads(ctx));
    printf("gram %s  threads %s  kernel %s  method %s\n", gram_version(), nthreads, spec, METHODS[mi].name);
    printf("N %lld  D %lld  R %lld  dtype %s  reps %d  create %.4f s  chunk %lld rows\n", n, d, r, f32 ? "f32" : "f64",
           reps, tc, chunk);
    const double gf = 2.0 * (double)n * (double)d * freqs / med * 1e-9;
    printf("median %.6f s  spread %.6f .. %.6f s  projection %.1f GFLOP/s  output %.2f GB/s  checksum%s %.17g\n",
           med, lo, hi, gf, (double)n * (double)r * (double)esz / med * 1e-9, chunk < n ? " (last chunk)" : "", checksum);
    printf("process CPU time per run: median %.6f s (all threads; on a loaded machine the time the threads ran)\n",
           median_of(cpu, reps));
    if (peak > 0)
        printf("FMA peak %.1f GFLOP/s (%s, measured before %.1f and after %.1f)  projection at %.1f%% of it\n", peak,
               threads == 1 ? "one core" : "all threads", peak0, peak1, 100.0 * gf / peak);
    else
        printf("FMA peak not measured (fma_peak not found beside this program)\n");

    gram_features_destroy(f);
    gram_kernel_destroy(k);
    gram_context_destroy(ctx);
    free(x);
    free(out);
    free(times);
    free(cpu);
    return 0;
}
