/*
 * bench_sum — times gram_kernel_sum with a Gaussian kernel on random data.
 *
 *     bench_sum [--n N] [--m M] [--d D] [--v V] [--dtype f64|f32] [--threads T] [--reps R]
 *               [--lengthscale H] [--arch auto|ref|avx2|avx512] [--seed S]
 *               [--op sum|logsum|matrix|symmatrix] [--family NAME]
 *
 * --op logsum times gram_kernel_logsum (log weights of the same W); matrix times
 * gram_kernel_matrix K(Y, X) (M × N, float64 out); symmatrix times K(X, X) (N × N, Y ignored).
 * --family picks the kernel family (default gaussian), with lengthscale H.
 *
 * Data X (N×D) and queries Y (M×D) are standard normal, weights W (N×V) uniform on [0,1) (V = 1
 * passes W = NULL: all weights 1). Prints the median time, the spread (min..max), pairs per
 * second and a checksum (the sum of all outputs, %.17g) so a fast wrong answer cannot pass
 * unnoticed. Defaults: N = M = 20000, D = 3, V = 1, f64, threads = OpenMP's default, 5 reps.
 */
#include <gram.h>

#include "bench_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(void)
{
    fprintf(stderr, "usage: bench_sum [--n N] [--m M] [--d D] [--v V] [--dtype f64|f32] "
                    "[--threads T] [--reps R] [--lengthscale H] [--arch A] [--seed S] "
                    "[--op sum|logsum|matrix|symmatrix] [--family NAME]\n");
}

int main(int argc, char **argv)
{
    long long n = 20000, m = 20000, d = 3, v = 1, seed = 1;
    int threads = 0, reps = 5, f32 = 0;
    double h = 1.0;
    const char *arch = "auto", *op = "sum", *family = "gaussian";
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
        char *end = NULL;
        if (!strcmp(opt, "--n")) n = strtoll(val, &end, 10);
        else if (!strcmp(opt, "--m")) m = strtoll(val, &end, 10);
        else if (!strcmp(opt, "--d")) d = strtoll(val, &end, 10);
        else if (!strcmp(opt, "--v")) v = strtoll(val, &end, 10);
        else if (!strcmp(opt, "--seed")) seed = strtoll(val, &end, 10);
        else if (!strcmp(opt, "--threads")) threads = (int)strtol(val, &end, 10);
        else if (!strcmp(opt, "--reps")) reps = (int)strtol(val, &end, 10);
        else if (!strcmp(opt, "--lengthscale")) h = strtod(val, &end);
        else if (!strcmp(opt, "--op") || !strcmp(opt, "--family")) {
            if (!strcmp(opt, "--op")) op = val;
            else family = val;
            end = (char *)val + strlen(val);
        } else if (!strcmp(opt, "--arch")) {
            arch = val;
            end = (char *)val + strlen(val);
        }
        else if (!strcmp(opt, "--dtype")) {
            if (strcmp(val, "f64") && strcmp(val, "f32")) {
                usage();
                return 2;
            }
            f32 = !strcmp(val, "f32");
            end = (char *)val + strlen(val);
        } else {
            usage();
            return 2;
        }
        if (end == val || *end != '\0') {
            fprintf(stderr, "bench_sum: bad value for %s: %s\n", opt, val);
            return 2;
        }
    }
    int opk = !strcmp(op, "sum") ? 0 : !strcmp(op, "logsum") ? 1 : !strcmp(op, "matrix") ? 2
            : !strcmp(op, "symmatrix") ? 3 : -1;
    if (opk < 0) {
        fprintf(stderr, "bench_sum: --op must be sum, logsum, matrix or symmatrix\n");
        return 2;
    }
    if (opk == 3) m = n;
    if (n < 0 || m < 0 || d < 0 || v < 1 || reps < 1 || threads < 0 || !(h > 0)) {
        fprintf(stderr, "bench_sum: sizes must be >= 0, V and reps >= 1, lengthscale > 0\n");
        return 2;
    }

    size_t esz = f32 ? sizeof(float) : sizeof(double);
    void *x = malloc((size_t)(n * d) * esz + 1), *y = malloc((size_t)(m * d) * esz + 1);
    double *w = v > 1 ? malloc((size_t)(n * v) * sizeof(double)) : NULL;
    long long ocols = opk >= 2 ? n : v;
    double *out = malloc((size_t)m * (size_t)ocols * sizeof(double) + 1);
    double *times = malloc((size_t)reps * sizeof(double));
    if (!x || !y || (v > 1 && !w) || !out || !times) {
        fprintf(stderr, "bench_sum: out of memory\n");
        return 1;
    }
    uint64_t s = (uint64_t)seed;
    for (long long i = 0; i < n * d; i++) {
        double z = normal(&s);
        if (f32) ((float *)x)[i] = (float)z;
        else ((double *)x)[i] = z;
    }
    for (long long i = 0; i < m * d; i++) {
        double z = normal(&s);
        if (f32) ((float *)y)[i] = (float)z;
        else ((double *)y)[i] = z;
    }
    for (long long i = 0; w && i < n * v; i++) w[i] = uniform(&s);

    gram_context *ctx = NULL;
    gram_kernel *k = NULL;
    gram_status st = gram_context_create(&ctx);
    if (st == GRAM_OK) st = gram_context_set_threads(ctx, threads);
    if (st == GRAM_OK) st = gram_context_set_arch(ctx, arch);
    char spec[64];
    snprintf(spec, sizeof spec, "%s(lengthscale=%.17g)", family, h);
    if (st == GRAM_OK) st = gram_kernel_parse(ctx, spec, &k);
    gram_array X = f32 ? gram_array_f32(x, n, d) : gram_array_f64(x, n, d);
    gram_array Y = f32 ? gram_array_f32(y, m, d) : gram_array_f64(y, m, d);
    gram_array W = gram_array_f64(w, n, v), O = gram_array_f64(out, m, ocols);
    for (int r = 0; st == GRAM_OK && r < reps; r++) {
        double t0 = now_seconds();
        if (opk == 0) st = gram_kernel_sum(ctx, k, &Y, &X, w ? &W : NULL, &O);
        else if (opk == 1) st = gram_kernel_logsum(ctx, k, &Y, &X, w ? &W : NULL, &O);
        else st = gram_kernel_matrix(ctx, k, opk == 3 ? &X : &Y, &X, &O);
        times[r] = now_seconds() - t0;
    }
    if (st != GRAM_OK) {
        fprintf(stderr, "bench_sum: %s: %s\n", gram_strerror(st), gram_context_message(ctx));
        return 1;
    }
    double checksum = 0;
    for (long long i = 0; i < m * ocols; i++) checksum += out[i];
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    double med = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
    double pairs = (double)n * (double)m;
    char nthreads[32] = "default";
    if (gram_context_threads(ctx) > 0) snprintf(nthreads, sizeof nthreads, "%d", gram_context_threads(ctx));
    printf("gram %s  arch %s  threads %s  kernel %s\n", gram_version(), gram_context_arch(ctx),
           nthreads, spec);
    printf("op %s  N %lld  M %lld  D %lld  V %lld  dtype %s  reps %d\n", op, n, m, d, v,
           f32 ? "f32" : "f64", reps);
    printf("median %.6f s  spread %.6f .. %.6f s  pairs/s %.4e  checksum %.17g\n", med, times[0],
           times[reps - 1], med > 0 ? pairs / med : 0.0, checksum);

    gram_kernel_destroy(k);
    gram_context_destroy(ctx);
    free(x);
    free(y);
    free(w);
    free(out);
    free(times);
    return 0;
}
