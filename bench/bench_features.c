/*
 * bench_features — times gram_features_transform (random feature maps, issue 13).
 *
 *     bench_features [--n N] [--d D] [--r R] [--method M] [--kernel SPEC] [--dtype f32|f64]
 *                    [--threads T] [--reps R] [--seed S]
 *
 * M: rff, rff_phase, orf, sorf, positive, positive_orf, hyperbolic, hyperbolic_orf, tensorsketch.
 * Data X (N×D) uniform on [-0.5, 0.5); the map is made once (its creation time is printed apart).
 * Prints the median transform time, the spread, the projection's rate in GFLOP/s (2·N·D per
 * frequency: R/2 frequencies for the methods with pairs, R for the others; meaningless for SORF and
 * TensorSketch, whose projection is not a GEMM), the output written in GB/s, and a checksum (the sum
 * of all features, %.17g). Compare the GFLOP/s with build/bench/fma_peak run in the same minutes.
 * Defaults: N = 100000, D = 64, R = 4096, rff, gaussian(lengthscale=8), f32, OpenMP's threads, 3 reps.
 */
#include <gram.h>

#include "bench_util.h"

#include <stdio.h>
#include <string.h>

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
                    "[--dtype f32|f64] [--threads T] [--reps R] [--seed S]\n"
                    "methods: rff rff_phase orf sorf positive positive_orf hyperbolic hyperbolic_orf "
                    "tensorsketch\n");
}

int main(int argc, char **argv)
{
    long long n = 100000, d = 64, r = 4096, seed = 1;
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
    if (n < 1 || d < 1 || r < 1 || reps < 1 || threads < 0 || seed < 0) {
        fprintf(stderr, "bench_features: N, D, R and reps must be >= 1\n");
        return 2;
    }

    size_t esz = f32 ? sizeof(float) : sizeof(double);
    void *x = malloc((size_t)(n * d) * esz), *out = malloc((size_t)(n * r) * esz);
    double *times = malloc((size_t)reps * sizeof(double));
    if (!x || !out || !times) {
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
    gram_array X = f32 ? gram_array_f32(x, n, d) : gram_array_f64(x, n, d);
    gram_array O = f32 ? gram_array_f32(out, n, r) : gram_array_f64(out, n, r);
    for (int q = 0; st == GRAM_OK && q < reps; q++) {
        double t0 = now_seconds();
        st = gram_features_transform(ctx, f, &X, &O);
        times[q] = now_seconds() - t0;
    }
    if (st != GRAM_OK) {
        fprintf(stderr, "bench_features: %s: %s\n", gram_strerror(st), gram_context_message(ctx));
        return 1;
    }
    double checksum = 0;
    for (long long i = 0; i < n * r; i++) checksum += f32 ? (double)((float *)out)[i] : ((double *)out)[i];
    double lo = times[0], hi = times[0];
    for (int q = 1; q < reps; q++) lo = times[q] < lo ? times[q] : lo, hi = times[q] > hi ? times[q] : hi;
    double med = median_of(times, reps);
    double freqs = METHODS[mi].pairs ? (double)r / 2 : (double)r;
    char nthreads[32] = "default";
    if (gram_context_threads(ctx) > 0) snprintf(nthreads, sizeof nthreads, "%d", gram_context_threads(ctx));
    printf("gram %s  threads %s  kernel %s  method %s\n", gram_version(), nthreads, spec, METHODS[mi].name);
    printf("N %lld  D %lld  R %lld  dtype %s  reps %d  create %.4f s\n", n, d, r, f32 ? "f32" : "f64", reps, tc);
    printf("median %.6f s  spread %.6f .. %.6f s  projection %.1f GFLOP/s  output %.2f GB/s  checksum %.17g\n",
           med, lo, hi, 2.0 * (double)n * (double)d * freqs / med * 1e-9,
           (double)n * (double)r * (double)esz / med * 1e-9, checksum);

    gram_features_destroy(f);
    gram_kernel_destroy(k);
    gram_context_destroy(ctx);
    free(x);
    free(out);
    free(times);
    return 0;
}
