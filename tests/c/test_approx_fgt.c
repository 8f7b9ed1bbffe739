/* The improved fast Gauss transform (src/approx/fgt.c, docs/approx.md "Fast Gauss transform").
 *
 * - The tolerance holds on every query, |out − exact| ≤ atol + rtol·|exact|, against the exact
 *   engine (gram_kernel_sum), and err bounds the true error and stays within the tolerance: D = 1,
 *   2, 3, 5, 8; bandwidths large and small against the data's spread; rtol 1e-2 … 1e-6 and atol;
 *   non-negative and signed weights; V = 1 and 3; float32; ARD lengthscales and a constant scale;
 *   R's quakes (data/quakes.csv, each column scaled by its standard deviation). The comparison
 *   allows the rounding of the two sums (as test_approx.c): 4·N·ε·Σ_j k·|w_j|.
 * - The method approximates: where its series pays (a bandwidth of the data's spread) it sums
 *   exactly well under half of the pairs.
 * - The truncation bound against a long-double evaluation of the truncated multivariate series
 *   (the test's own enumeration of multi-indices, not the library's): it must hold on random and
 *   aligned pairs, and on aligned pairs (the worst case) be within a factor 2 of the true error
 *   where 2|a||b| ≤ (p + 1)/2 and |a|² ≤ p/2 (the factor is (p + 1)/(p + 1 − 2|a||b|) there), for
 *   errors above 1e-14 (the long-double evaluation's own rounding, 32 ulps, is allowed).
 * - 1 and 2 threads give bit-identical results.
 * - Refusals: other kernels (through the front end, naming why and which methods can), an order
 *   whose coefficient table is too large (naming p, D and the size); the cost function.
 */
#include "check.h"

#include "approx/approx.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* Runs fgt on (Y, X, w) and checks every value against the engine; returns the pairs the method
 * summed exactly (info.kernel_evaluations). */
static int64_t check_fgt(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                         const double *w, int64_t V, double rtol, double atol, int order, const char *what)
{
    const int64_t M = Y->rows, N = X->rows;
    double *wa = malloc((size_t)(N * V + 1) * sizeof(double));
    double *out = malloc((size_t)(M * V + 1) * sizeof(double)), *err = malloc((size_t)(M * V + 1) * sizeof(double));
    double *ex = malloc((size_t)(M * V + 1) * sizeof(double)), *sa = malloc((size_t)(M * V + 1) * sizeof(double));
    for (int64_t j = 0; j < N * V; j++) wa[j] = fabs(w[j]);
    gram_array W = gram_array_f64(w, N, V), Wa = gram_array_f64(wa, N, V);
    gram_array O = gram_array_f64(out, M, V), E = gram_array_f64(err, M, V), EX = gram_array_f64(ex, M, V),
               SA = gram_array_f64(sa, M, V);
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.method = GRAM_APPROX_FGT;
    opt.rtol = rtol, opt.atol = atol, opt.order = order;
    gram_approx_info info = {GRAM_APPROX_AUTO, -1, -1};
    gram_status s = gram_kernel_sum_approx(ctx, k, Y, X, &W, &opt, &O, &E, &info);
    CHECK(s == GRAM_OK, "%s: gram_kernel_sum_approx: %s", what, gram_context_message(ctx));
    CHECK_STATUS(gram_kernel_sum(ctx, k, Y, X, &W, &EX), GRAM_OK);
    CHECK_STATUS(gram_kernel_sum(ctx, k, Y, X, &Wa, &SA), GRAM_OK);
    CHECK(s || (info.method == GRAM_APPROX_FGT && info.delta == 0 && info.kernel_evaluations >= 0 &&
                info.kernel_evaluations <= M * N),
          "%s: info method %d delta %g evaluations %lld", what, (int)info.method, info.delta,
          (long long)info.kernel_evaluations);
    const double eps = X->dtype == GRAM_FLOAT64 ? DBL_EPSILON : 64 * FLT_EPSILON;
    long bad_tol = 0, bad_err = 0, bad_self = 0;
    for (int64_t i = 0; s == GRAM_OK && i < M * V; i++) {
        const double d = fabs(out[i] - ex[i]), tol = atol + rtol * fabs(ex[i]), round = 4.0 * (double)N * eps * sa[i];
        if (!(d <= tol + round)) bad_tol++;
        if (!(d <= err[i] + round)) bad_err++;
        if (!(err[i] >= 0 && err[i] <= tol + round)) bad_self++;
    }
    CHECK(bad_tol == 0, "%s (rtol %g, atol %g): %ld of %lld values outside the tolerance", what, rtol, atol, bad_tol,
          (long long)(M * V));
    CHECK(bad_err == 0, "%s (rtol %g, atol %g): %ld of %lld errors above their bound err", what, rtol, atol, bad_err,
          (long long)(M * V));
    CHECK(bad_self == 0, "%s (rtol %g, atol %g): %ld of %lld bounds err negative or above the tolerance", what, rtol,
          atol, bad_self, (long long)(M * V));
    free(wa), free(out), free(err), free(ex), free(sa);
    return s ? -1 : info.kernel_evaluations;
}

/* D × bandwidth × tolerance × weights × V, on Gaussian data N(0, I) (sd 1). The bandwidths: 1.5
 * (larger than the spread), 0.5 and, scaled with √D, a small one (0.1·√D: in 8-D a tenth of the
 * typical distance), where most queries end exact. */
static void test_cases(gram_context *ctx)
{
    static const int64_t Ds[] = {1, 2, 3, 5, 8};
    static const double tols[][2] = {{1e-2, 0}, {1e-3, 0}, {1e-4, 0}, {1e-6, 0}, {1e-3, 1e-4}, {0, 1e-3}};
    check_rng r = {1515};
    const int64_t N = 1500, M = 400;
    double *x = malloc(sizeof(double) * (size_t)(N * 8)), *y = malloc(sizeof(double) * (size_t)(M * 8));
    double *w = malloc(sizeof(double) * (size_t)(N * 3));
    int c = 0;
    for (int di = 0; di < 5; di++)
        for (int hi = 0; hi < 3; hi++, c++) {
            const int64_t D = Ds[di], V = c % 2 ? 3 : 1;
            const int sign = (c / 2) % 2;
            for (int64_t j = 0; j < N * D; j++) x[j] = check_normal(&r);
            for (int64_t j = 0; j < M * D; j++) y[j] = check_normal(&r);
            for (int64_t j = 0; j < N * V; j++) w[j] = sign ? check_normal(&r) : check_uniform(&r);
            const double h = hi == 0 ? 1.5 : hi == 1 ? 0.5 : 0.1 * sqrt((double)D);
            char spec[64], what[160];
            snprintf(spec, sizeof spec, "gaussian(%g)", h);
            gram_kernel *k = check_kernel(ctx, spec);
            if (!k) continue;
            gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
            /* two tolerances per case, in rotation; D = 8 with the largest bandwidth only at rtol ≥ 1e-3 */
            for (int t = 0; t < 2; t++) {
                const double *tc = tols[(2 * c + t) % 6];
                snprintf(what, sizeof what, "%s D=%lld %s V=%lld", spec, (long long)D, sign ? "signed" : "non-negative",
                         (long long)V);
                /* the second with a fixed order: the expansion runs even where the exact sum is
                 * predicted cheaper (at these sizes it often is) */
                check_fgt(ctx, k, &Y, &X, w, V, tc[0], tc[1], t ? (D <= 3 ? 10 : 6) : 0, what);
            }
            gram_kernel_destroy(k);
        }
    free(x), free(y), free(w);
}

/* Where the series pays it must approximate most queries (its parameters chosen by the cost
 * model, which sums exactly where it predicts no gain, as it does in 3-D at this N): D = 1 and 2,
 * a bandwidth of the data's sd, rtol 1e-3, N = 4000: fewer than half of the pairs summed exactly. */
static void test_approximates(gram_context *ctx)
{
    check_rng r = {33};
    const int64_t N = 4000, M = 2000;
    double *x = malloc(sizeof(double) * (size_t)(N * 3)), *y = malloc(sizeof(double) * (size_t)(M * 3));
    double *w = malloc(sizeof(double) * (size_t)N);
    for (int64_t j = 0; j < N * 3; j++) x[j] = check_normal(&r);
    for (int64_t j = 0; j < M * 3; j++) y[j] = check_normal(&r);
    for (int64_t j = 0; j < N; j++) w[j] = 1.0 / (double)N;
    for (int64_t D = 1; D <= 2; D++) {
        const double h = 1.0;
        char spec[32], what[64];
        snprintf(spec, sizeof spec, "gaussian(%g)", h);
        gram_kernel *k = check_kernel(ctx, spec);
        if (!k) continue;
        gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
        snprintf(what, sizeof what, "%s, D=%lld, N=%lld", spec, (long long)D, (long long)N);
        const int64_t ev = check_fgt(ctx, k, &Y, &X, w, 1, 1e-3, 0, 0, what);
        CHECK(ev >= 0 && ev < M * N / 2, "%s: %lld of %lld pairs summed exactly (want < 1/2)", what, (long long)ev,
              (long long)(M * N));
        printf("approximates: %s, rtol 1e-3: %lld of %lld pairs exact (%.3f)\n", what, (long long)ev,
               (long long)(M * N), (double)ev / (double)(M * N));
        gram_kernel_destroy(k);
    }
    free(x), free(y), free(w);
}

/* float32 (Fortran-ordered Y), ARD lengthscales with a constant scale, Y = X. */
static void test_variants(gram_context *ctx)
{
    check_rng r = {77};
    const int64_t N = 1200, M = 300, D = 3;
    double *x = malloc(sizeof(double) * (size_t)(N * D)), *w = malloc(sizeof(double) * (size_t)N);
    float *xf = malloc(sizeof(float) * (size_t)(N * D)), *yf = malloc(sizeof(float) * (size_t)(M * D));
    for (int64_t j = 0; j < N * D; j++) x[j] = check_normal(&r), xf[j] = (float)x[j];
    for (int64_t i = 0; i < M; i++)
        for (int64_t d = 0; d < D; d++) yf[d * M + i] = (float)check_normal(&r); /* column-major */
    for (int64_t j = 0; j < N; j++) w[j] = check_normal(&r);
    gram_kernel *k = check_kernel(ctx, "gaussian(0.8)");
    if (k) {
        gram_array Xf = gram_array_f32(xf, N, D), Yf = {yf, GRAM_FLOAT32, M, D, 1, M};
        check_fgt(ctx, k, &Yf, &Xf, w, 1, 1e-3, 0, 8, "float32, Fortran-ordered Y");
    }
    gram_kernel_destroy(k);
    k = check_kernel(ctx, "3*gaussian(lengthscale=[0.4, 1.5, 0.9])");
    if (k) {
        gram_array X = gram_array_f64(x, N, D);
        check_fgt(ctx, k, &X, &X, w, 1, 1e-4, 0, 10, "ARD, scale 3, Y = X");
        check_fgt(ctx, k, &X, &X, w, 1, 1e-2, 1e-3, 0, "ARD, scale 3, Y = X");
    }
    gram_kernel_destroy(k);
    free(x), free(w), free(xf), free(yf);
}

/* R's quakes (1000 × 5), each column divided by its standard deviation (the scaling is the test's:
 * an ARD lengthscale of sd·h would be the same sum), the KDE of the data at the data. */
static void test_quakes(gram_context *ctx)
{
    int64_t N = 0, D = 0;
    double *x = check_read_data(ctx, "quakes.csv", &N, &D);
    if (!x) return;
    CHECK(N == 1000 && D == 5, "quakes.csv is %lld×%lld", (long long)N, (long long)D);
    for (int64_t d = 0; d < D; d++) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < N; i++) m += x[i * D + d];
        m /= (double)N;
        for (int64_t i = 0; i < N; i++) v += (x[i * D + d] - m) * (x[i * D + d] - m);
        const double sd = sqrt(v / (double)(N - 1));
        for (int64_t i = 0; i < N; i++) x[i * D + d] /= sd;
    }
    double *w = malloc(sizeof(double) * (size_t)N);
    for (int64_t i = 0; i < N; i++) w[i] = 1.0 / (double)N;
    gram_array X = gram_array_f64(x, N, D);
    static const char *specs[] = {"gaussian(1)", "gaussian(0.5)", "gaussian(2)"};
    static const double rt[] = {1e-3, 1e-6, 1e-2};
    for (int s = 0; s < 3; s++) {
        gram_kernel *k = check_kernel(ctx, specs[s]);
        char what[64];
        snprintf(what, sizeof what, "quakes (scaled), %s", specs[s]);
        if (k) check_fgt(ctx, k, &X, &X, w, 1, rt[s], 0, s == 1 ? 0 : 8, what);
        gram_kernel_destroy(k);
    }
    free(x), free(w);
}

/* ---- The truncation bound against a long-double series -------------------------------------- */

/* Σ_{|α| < p} (2^{|α|}/α!) a^α b^α by enumerating the multi-indices α (recursion over the
 * dimensions), in long double. */
static long double series_rec(const double *a, const double *b, int64_t D, int64_t d, int left, long double term)
{
    if (d == D) return term;
    long double s = 0, t = term;
    for (int e = 0; e <= left; e++) {
        s += series_rec(a, b, D, d + 1, left - e, t);
        t *= 2.0L * (long double)a[d] * (long double)b[d] / (long double)(e + 1);
    }
    return s;
}

static long double trunc_error(const double *a, const double *b, int64_t D, int p)
{
    long double a2 = 0, b2 = 0, d2 = 0;
    for (int64_t d = 0; d < D; d++) a2 += (long double)a[d] * a[d], b2 += (long double)b[d] * b[d],
                                    d2 += ((long double)a[d] - b[d]) * ((long double)a[d] - b[d]);
    const long double series = expl(-a2 - b2) * series_rec(a, b, D, 0, p - 1, 1.0L);
    return fabsl(expl(-d2) - series);
}

static void test_truncation_bound(void)
{
    check_rng r = {2005};
    long violations = 0, loose = 0, aligned = 0;
    double worst_ratio = 0;
    for (int trial = 0; trial < 600; trial++) {
        const int64_t D = 1 + trial % 4;
        const int p = 1 + (int)check_int(&r, 0, 11);
        double a[4], b[4], na = 0, nb = 0;
        const int align = trial % 2;
        const double ra = 0.05 + 1.2 * check_uniform(&r), rb = 0.05 + 2.5 * check_uniform(&r);
        for (int64_t d = 0; d < D; d++) a[d] = check_normal(&r), na += a[d] * a[d];
        for (int64_t d = 0; d < D; d++) b[d] = align ? a[d] : check_normal(&r), nb += b[d] * b[d];
        na = sqrt(na), nb = sqrt(nb);
        for (int64_t d = 0; d < D; d++) a[d] *= ra / na, b[d] *= rb / nb;
        /* the bound for a cluster of radius ra (a on its edge) and a query at distance rb */
        const double bound = gram__approx_fgt_trunc_bound(p, ra, rb);
        const long double e = trunc_error(a, b, D, p);
        /* the long-double evaluation itself rounds by a few ulps of values ≤ 1 */
        if (!(e <= (long double)bound * (1 + 1e-12L) + 32 * LDBL_EPSILON)) {
            violations++;
            if (violations <= 3)
                printf("bound violated: D=%lld p=%d |a|=%g |b|=%g: error %Lg > bound %g\n", (long long)D, p, ra, rb, e,
                       bound);
        }
        if (align && 2 * ra * rb <= 0.5 * (p + 1) && ra * ra <= 0.5 * p && e > 1e-14L) {
            aligned++;
            const double ratio = (double)((long double)bound / e);
            if (ratio > worst_ratio) worst_ratio = ratio;
            if (!(ratio <= 2.0)) loose++;
        }
    }
    CHECK(violations == 0, "the truncation bound is below the true error in %ld of 600 cases", violations);
    CHECK(aligned >= 50 && loose == 0, "on %ld aligned worst cases the bound is more than twice the error %ld times "
          "(worst ratio %g)", aligned, loose, worst_ratio);
    printf("truncation bound: %ld aligned worst cases, largest bound/error %.3f\n", aligned, worst_ratio);
    /* p = 1 at a = 0 or b = 0 is exact: the bound is 0 */
    CHECK(gram__approx_fgt_trunc_bound(1, 0.0, 2.0) == 0 && gram__approx_fgt_trunc_bound(3, 1.0, 0.0) == 0,
          "the bound is not 0 where the series is exact");
}

/* 1 and 2 threads: bit-identical values and bounds (signed weights, V = 2). */
static void test_threads(gram_context *ctx)
{
    check_rng r = {9};
    const int64_t N = 3000, M = 900, D = 3, V = 2;
    double *x = malloc(sizeof(double) * (size_t)(N * D)), *y = malloc(sizeof(double) * (size_t)(M * D));
    double *w = malloc(sizeof(double) * (size_t)(N * V)), *o[2], *e[2];
    for (int64_t j = 0; j < N * D; j++) x[j] = check_normal(&r);
    for (int64_t j = 0; j < M * D; j++) y[j] = check_normal(&r);
    for (int64_t j = 0; j < N * V; j++) w[j] = check_normal(&r);
    gram_kernel *k = check_kernel(ctx, "gaussian(0.7)");
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.method = GRAM_APPROX_FGT, opt.rtol = 1e-4, opt.order = 10; /* the expansion, not the exact path */
    for (int t = 0; t < 2 && k; t++) {
        o[t] = malloc(sizeof(double) * (size_t)(M * V)), e[t] = malloc(sizeof(double) * (size_t)(M * V));
        gram_context_set_threads(ctx, t + 1);
        gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D), W = gram_array_f64(w, N, V);
        gram_array O = gram_array_f64(o[t], M, V), E = gram_array_f64(e[t], M, V);
        CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, &W, &opt, &O, &E, NULL), GRAM_OK);
    }
    gram_context_set_threads(ctx, 0);
    if (k) {
        CHECK(memcmp(o[0], o[1], sizeof(double) * (size_t)(M * V)) == 0 &&
                  memcmp(e[0], e[1], sizeof(double) * (size_t)(M * V)) == 0,
              "1 and 2 threads differ");
        free(o[0]), free(o[1]), free(e[0]), free(e[1]);
    }
    gram_kernel_destroy(k);
    free(x), free(y), free(w);
}

static void test_refusals(gram_context *ctx)
{
    double x[40], out[20], err[20];
    for (int i = 0; i < 40; i++) x[i] = 0.1 * i;
    gram_array X = gram_array_f64(x, 20, 2), O = gram_array_f64(out, 20, 1), E = gram_array_f64(err, 20, 1);
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.method = GRAM_APPROX_FGT, opt.rtol = 1e-3;
    static const char *bad[] = {"laplacian(1)", "gaussian(1) + gaussian(2)", "gaussian(1) * gaussian(2)", "gaussian(1)^2",
                                "matern52(1)"};
    static const char *why[] = {"gaussian kernels only", "a single gaussian", "a single gaussian", "a single gaussian",
                                "gaussian kernels only"};
    for (int b = 0; b < 5; b++) {
        gram_kernel *k = check_kernel(ctx, bad[b]);
        if (!k) continue;
        CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &X, &X, NULL, &opt, &O, &E, NULL), GRAM_EINVAL);
        const char *m = gram_context_message(ctx);
        CHECK(contains(m, "method fgt cannot meet a tolerance for this kernel") && contains(m, why[b]) &&
                  contains(m, "methods that can: exact"),
              "%s: message '%s'", bad[b], m);
        const char *w = NULL;
        CHECK(!gram__approx_fgt_supports(k, 2, &w) && contains(w, why[b]), "%s: supports says '%s'", bad[b], w ? w : "");
        CHECK(isinf(gram__approx_fgt_cost(k, &X, &X, &opt)), "%s: cost is finite", bad[b]);
        gram_kernel_destroy(k);
    }
    /* an order whose table does not fit: order 40 in D = 10 (C(49, 10) ≈ 8.2e9 monomials) */
    check_rng r = {4};
    const int64_t N = 400, D = 10;
    double *xx = malloc(sizeof(double) * (size_t)(N * D)), *oo = malloc(sizeof(double) * (size_t)N);
    for (int64_t j = 0; j < N * D; j++) xx[j] = check_normal(&r);
    gram_kernel *k = check_kernel(ctx, "gaussian(2)");
    if (k) {
        gram_array X10 = gram_array_f64(xx, N, D), O10 = gram_array_f64(oo, N, 1);
        opt.order = 40;
        CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &X10, &X10, NULL, &opt, &O10, NULL, NULL), GRAM_ENOMEM);
        const char *m = gram_context_message(ctx);
        CHECK(contains(m, "order 40 in D = 10 needs more than 65536 Taylor coefficients") && contains(m, "GiB"),
              "order 40 in D = 10: message '%s'", m);
        CHECK(isinf(gram__approx_fgt_cost(k, &X10, &X10, &opt)), "order 40 in D = 10: the cost is finite");
        /* the cost of a run that can go: finite, positive; rtol = atol = 0: infinite (the exact sum) */
        opt.order = 0;
        const double cst = gram__approx_fgt_cost(k, &X10, &X10, &opt);
        CHECK(cst > 0 && isfinite(cst), "cost %g", cst);
        opt.rtol = 0;
        CHECK(isinf(gram__approx_fgt_cost(k, &X10, &X10, &opt)), "cost at rtol = atol = 0 is finite");
    }
    gram_kernel_destroy(k);
    free(xx), free(oo);
}

int main(void)
{
    gram_context *ctx = NULL;
    if (gram_context_create(&ctx) != GRAM_OK) return 1;
    test_truncation_bound();
    test_refusals(ctx);
    test_cases(ctx);
    test_approximates(ctx);
    test_variants(ctx);
    test_quakes(ctx);
    test_threads(ctx);
    gram_context_destroy(ctx);
    return check_done();
}
