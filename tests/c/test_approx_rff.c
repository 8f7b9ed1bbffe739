/* The feature-map route of the approximate kernel sums (src/approx/rff.c), through the front end
 * gram_kernel_sum_approx with method FEATURES (and its cost function directly).
 *
 * The reference is the exact engine (gram_kernel_sum over all of X); the engine itself is held to
 * a long-double loop in test_engine. Statistical checks run over independent seeds and count, per
 * query, the seeds whose result misses: each query's count is Binomial(seeds, p) with p ≤ delta
 * when the guarantee holds (seeds are independent; the queries of one seed share frequencies, so
 * counts are never pooled over queries). A count fails the test above the binomial quantile whose
 * upper tail at p = delta is ≤ ALPHA / (queries in the check): each check has a false-alarm rate
 * ≤ ALPHA = 1e-4.
 * - Coverage of the bound at delta = 0.05 over 120 seeds, and power: the bound shrunk 100-fold is
 *   exceeded in most seeds for most queries, so a bound too small would be seen.
 * - Unbiasedness at a fixed number of features: the mean over 300 seeds within 4.9 standard errors
 *   (from the seeds' own spread) of the exact sum; P(|t_299| > 4.9) ≈ 1.6e-6 per query, 20 queries:
 *   false-alarm rate ≤ 1e-4.
 * - Signed weights with V = 3, float32 inputs, laplacian, matern32, cauchy and rational quadratic
 *   kernels, R's faithful (272 × 2) and quakes (1000 × 5): every value within its tolerance.
 * - The fallback: a bandwidth so small that the features cannot meet the tolerance sums the
 *   queries exactly (err 0, their pairs counted), still within tolerance.
 * - The adaptive schedule (components 0) at N = M = 20000, D = 8, a wide bandwidth.
 * - Bit-identical results for 1 and 2 threads at a seed, another seed another result.
 * - Refusals with their messages (composite and non-spectral kernels, odd components), and the
 *   cost model's ordering (wide bandwidth cheaper than exact, tiny bandwidth not).
 */
#include "check.h"
#include "approx/approx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ALPHA 1e-4

static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* The smallest c with P(Binomial(n, p) > c) ≤ alpha / m: the most misses a query may show. */
static int binom_limit(int n, double p, double alpha, int m)
{
    double tail = 1.0;
    for (int c = 0; c <= n; c++) {
        const double pmf = exp(lgamma(n + 1.0) - lgamma(c + 1.0) - lgamma(n - c + 1.0) + c * log(p) + (n - c) * log1p(-p));
        tail -= pmf;
        if (tail <= alpha / m) return c;
    }
    return n;
}

static double *normal_matrix(uint64_t seed, int64_t rows, int64_t cols, double sd)
{
    check_rng r = {seed};
    double *a = malloc((size_t)(rows * cols) * sizeof(double));
    for (int64_t i = 0; i < rows * cols; i++) a[i] = sd * check_normal(&r);
    return a;
}

static void exact_sum(gram_context *ctx, gram_kernel *k, const gram_array *Y, const gram_array *X, const gram_array *W,
                      double *out, int64_t V)
{
    gram_array O = gram_array_f64(out, Y->rows, V);
    CHECK_STATUS(gram_kernel_sum(ctx, k, Y, X, W, &O), GRAM_OK);
}

static gram_approx_options features_opt(double rtol, double atol, double delta, int64_t components, uint64_t seed)
{
    gram_approx_options o;
    gram_approx_options_init(&o);
    o.method = GRAM_APPROX_FEATURES;
    o.rtol = rtol;
    o.atol = atol;
    o.delta = delta;
    o.components = components;
    o.seed = seed;
    return o;
}

/* Every value within its tolerance of the exact sum and within its own bound; returns the values
 * the features certified (err > 0). */
static int64_t check_tolerance(const char *what, const double *est, const double *err, const double *ex, int64_t MV,
                               double rtol, double atol, double slack, double abs_slack)
{
    int64_t bad_tol = 0, bad_bound = 0, certified = 0;
    for (int64_t i = 0; i < MV; i++) {
        const double d = fabs(est[i] - ex[i]), s = slack * (fabs(ex[i]) + err[i]) + abs_slack;
        if (d > atol + rtol * fabs(ex[i]) + s) bad_tol++;
        if (d > err[i] + s) bad_bound++;
        if (err[i] > 0) certified++;
    }
    CHECK(bad_tol == 0, "%s: %lld of %lld values outside the tolerance", what, (long long)bad_tol, (long long)MV);
    CHECK(bad_bound == 0, "%s: %lld of %lld values outside their bound", what, (long long)bad_bound, (long long)MV);
    return certified;
}

/* Coverage and power over seeds at a fixed number of features (atol large enough that every query
 * stops with its features, so that each seed gives a bound for each query). */
static void test_coverage(gram_context *ctx, const char *spec, int64_t N, int64_t M, int64_t D, int64_t V,
                          int signed_w, int64_t components, int seeds)
{
    gram_kernel *k = check_kernel(ctx, spec);
    if (!k) return;
    double *x = normal_matrix(31, N, D, 1.0), *y = normal_matrix(32, M, D, 1.0), *w = NULL;
    if (V > 1 || signed_w) {
        w = normal_matrix(33, N, V, 1.0);
        if (!signed_w)
            for (int64_t i = 0; i < N * V; i++) w[i] = fabs(w[i]);
    }
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D), W = gram_array_f64(w, N, V);
    double *ex = malloc((size_t)(M * V) * sizeof(double)), *est = malloc((size_t)(M * V) * sizeof(double)),
           *err = malloc((size_t)(M * V) * sizeof(double));
    exact_sum(ctx, k, &Y, &X, w ? &W : NULL, ex, V);
    int *miss = calloc((size_t)M, sizeof(int)), *miss_small = calloc((size_t)M, sizeof(int));
    const double delta = 0.05;
    int64_t certified = 0;
    for (int s = 0; s < seeds; s++) {
        gram_approx_options opt = features_opt(0.0, 1e9, delta, components, 500 + (uint64_t)s);
        gram_array O = gram_array_f64(est, M, V), E = gram_array_f64(err, M, V);
        gram_approx_info info;
        CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, w ? &W : NULL, &opt, &O, &E, &info), GRAM_OK);
        CHECK(info.method == GRAM_APPROX_FEATURES && info.delta == delta && info.kernel_evaluations == 0,
              "%s: info method %d delta %g evaluations %lld", spec, (int)info.method, info.delta,
              (long long)info.kernel_evaluations);
        for (int64_t i = 0; i < M; i++) {
            int m = 0, ms = 0;
            for (int64_t v = 0; v < V; v++) {
                const double d = fabs(est[i * V + v] - ex[i * V + v]), b = err[i * V + v];
                if (d > b) m = 1;
                if (d > b / 100) ms = 1;
                if (b > 0) certified++;
            }
            miss[i] += m;
            miss_small[i] += ms;
        }
    }
    const int limit = binom_limit(seeds, delta, ALPHA, (int)M);
    int worst = 0, small_over = 0;
    for (int64_t i = 0; i < M; i++) {
        worst = miss[i] > worst ? miss[i] : worst;
        if (miss_small[i] > limit) small_over++;
    }
    CHECK(certified == (int64_t)seeds * M * V, "%s: %lld of %lld values carried a bound", spec, (long long)certified,
          (long long)seeds * M * V);
    CHECK(worst <= limit, "%s: a query's bound missed in %d of %d seeds (limit %d at delta %g)", spec, worst, seeds,
          limit, delta);
    CHECK(small_over > M / 2, "%s: the bound shrunk 100-fold fails only %d of %lld queries' counts", spec, small_over,
          (long long)M);
    if (getenv("GRAM_TEST_VERBOSE"))
        printf("coverage %s: worst misses %d of %d (limit %d); bound/100 exceeded too often on %d of %lld queries\n",
               spec, worst, seeds, limit, small_over, (long long)M);
    free(miss), free(miss_small), free(ex), free(est), free(err), free(x), free(y), free(w);
    gram_kernel_destroy(k);
}

static void test_unbiased(gram_context *ctx)
{
    const int64_t N = 500, M = 20, D = 3, components = 32;
    const int seeds = 300;
    gram_kernel *k = check_kernel(ctx, "laplacian(1.5)");
    double *x = normal_matrix(41, N, D, 1.0), *y = normal_matrix(42, M, D, 1.0);
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
    double ex[20], est[20], s1[20] = {0}, s2[20] = {0};
    exact_sum(ctx, k, &Y, &X, NULL, ex, 1);
    for (int s = 0; s < seeds; s++) {
        gram_approx_options opt = features_opt(0.0, 1e9, 0.5, components, 7000 + (uint64_t)s);
        gram_array O = gram_array_f64(est, M, 1);
        CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, NULL, &opt, &O, NULL, NULL), GRAM_OK);
        for (int64_t i = 0; i < M; i++) s1[i] += est[i], s2[i] += est[i] * est[i];
    }
    double worst = 0;
    for (int64_t i = 0; i < M; i++) {
        const double mean = s1[i] / seeds, var = (s2[i] - s1[i] * mean) / (seeds - 1);
        const double z = (mean - ex[i]) / sqrt(var / seeds);
        worst = fabs(z) > worst ? fabs(z) : worst;
        CHECK(var > 0, "unbiased: query %lld: no spread over seeds", (long long)i);
    }
    CHECK(worst < 4.9, "unbiased: the mean over %d seeds is %.2f standard errors from the exact sum", seeds, worst);
    if (getenv("GRAM_TEST_VERBOSE")) printf("unbiased: worst |z| %.2f\n", worst);
    gram_kernel_destroy(k);
    free(x), free(y);
}

/* Tolerance on every value for several kernels, signed weights, V = 3 and float32. */
static void test_kernels(gram_context *ctx)
{
    static const char *specs[] = {"gaussian(8)", "2.5*laplacian(40)", "matern32(lengthscale=[10, 14, 8, 12])",
                                  "cauchy(12)", "rational_quadratic(10, alpha=0.7)", "laplacian_l1(30)"};
    const int64_t N = 2000, M = 100, D = 4;
    double *x = normal_matrix(51, N, D, 1.0), *y = normal_matrix(52, M, D, 1.0), *w = normal_matrix(53, N, 3, 1.0);
    for (int64_t i = 0; i < N; i++) w[i * 3] = fabs(w[i * 3]); /* column 0 non-negative, 1 and 2 signed */
    float *x32 = malloc((size_t)(N * D) * sizeof(float)), *y32 = malloc((size_t)(M * D) * sizeof(float));
    double *xr = malloc((size_t)(N * D) * sizeof(double)), *yr = malloc((size_t)(M * D) * sizeof(double));
    for (int64_t i = 0; i < N * D; i++) x32[i] = (float)x[i], xr[i] = x32[i];
    for (int64_t i = 0; i < M * D; i++) y32[i] = (float)y[i], yr[i] = y32[i];
    double ex[300], est[300], err[300];
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        gram_kernel *k = check_kernel(ctx, specs[s]);
        if (!k) continue;
        for (int f32 = 0; f32 < 2; f32++) {
            gram_array X = f32 ? gram_array_f32(x32, N, D) : gram_array_f64(x, N, D),
                       Y = f32 ? gram_array_f32(y32, M, D) : gram_array_f64(y, M, D), W = gram_array_f64(w, N, 3);
            /* float32: the reference is the float64 sum over the same (rounded) points */
            gram_array Xr = gram_array_f64(f32 ? xr : x, N, D), Yr = gram_array_f64(f32 ? yr : y, M, D);
            exact_sum(ctx, k, &Yr, &Xr, &W, ex, 3);
            /* the signed columns' sums are small next to B = Σ|w|·k(0) (1600, 4000 for 2.5·laplacian): atol carries them */
            gram_approx_options opt = features_opt(0.02, 60.0, 1e-3, 16384, 9);
            gram_array O = gram_array_f64(est, M, 3), E = gram_array_f64(err, M, 3);
            gram_approx_info info;
            CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, &W, &opt, &O, &E, &info), GRAM_OK);
            char what[160];
            snprintf(what, sizeof what, "%s %s V=3", specs[s], f32 ? "float32" : "float64");
            const int64_t cert = /* float32: the queries summed exactly by the engine in float32 carry its rounding, ~1e-6 of
             * the terms' magnitude Σ|w|·k(0) (≤ 2.5·N here) */
            check_tolerance(what, est, err, ex, M * 3, opt.rtol, opt.atol, 1e-12, f32 ? 1e-5 * 2.5 * (double)N : 0.0);
            CHECK(cert == M * 3, "%s: only %lld of %lld values certified by the features", what, (long long)cert,
                  (long long)M * 3);
            CHECK(info.delta == opt.delta && info.kernel_evaluations == (M * 3 - cert) / 3 * N,
                  "%s: info delta %g evaluations %lld", what, info.delta, (long long)info.kernel_evaluations);
        }
        gram_kernel_destroy(k);
    }
    free(x), free(y), free(w), free(x32), free(y32), free(xr), free(yr);
}

/* Real data: the KDE of every few points of faithful and quakes, each column's lengthscale a
 * multiple of its standard deviation (the wide-bandwidth regime the method is for). */
static void test_real(gram_context *ctx, const char *file, double ls, int64_t components, double rtol)
{
    int64_t N = 0, D = 0;
    double *x = check_read_data(ctx, file, &N, &D);
    if (!x) return;
    char spec[512];
    snprintf(spec, sizeof spec, "gaussian(lengthscale=[");
    for (int64_t d = 0; d < D; d++) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < N; i++) m += x[i * D + d] / (double)N;
        for (int64_t i = 0; i < N; i++) v += (x[i * D + d] - m) * (x[i * D + d] - m);
        snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "%s%.6g", d ? ", " : "", ls * sqrt(v / (double)(N - 1)));
    }
    strcat(spec, "])");
    gram_kernel *k = check_kernel(ctx, spec);
    if (!k) {
        free(x);
        return;
    }
    gram_array X = gram_array_f64(x, N, D);
    double *ex = malloc((size_t)N * sizeof(double)), *est = malloc((size_t)N * sizeof(double)),
           *err = malloc((size_t)N * sizeof(double));
    exact_sum(ctx, k, &X, &X, NULL, ex, 1);
    gram_approx_options opt = features_opt(rtol, 0.0, 1e-3, components, 3);
    gram_array O = gram_array_f64(est, N, 1), E = gram_array_f64(err, N, 1);
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, NULL, &X, NULL, &opt, &O, &E, NULL), GRAM_OK);
    char what[600];
    snprintf(what, sizeof what, "%s %s", file, spec);
    const int64_t cert = check_tolerance(what, est, err, ex, N, rtol, 0.0, 1e-12, 0.0);
    CHECK(cert > N / 2, "%s: only %lld of %lld queries certified by the features", what, (long long)cert, (long long)N);
    if (getenv("GRAM_TEST_VERBOSE")) printf("%s: %lld of %lld certified\n", what, (long long)cert, (long long)N);
    free(ex), free(est), free(err), free(x);
    gram_kernel_destroy(k);
}

/* A bandwidth far below the points' spacing: the features' terms spread over [-B, B] and no
 * query's bound meets rtol, so every query is summed exactly. */
static void test_fallback(gram_context *ctx)
{
    const int64_t N = 1500, M = 60, D = 3;
    gram_kernel *k = check_kernel(ctx, "gaussian(0.05)");
    double *x = normal_matrix(61, N, D, 1.0), *y = normal_matrix(62, M, D, 1.0);
    for (int64_t i = 0; i < 20; i++) memcpy(y + i * D, x + i * 7 * D, (size_t)D * sizeof(double)); /* sums ≥ 1 */
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
    double ex[60], est[60], err[60];
    exact_sum(ctx, k, &Y, &X, NULL, ex, 1);
    gram_approx_options opt = features_opt(1e-2, 1e-9, 1e-3, 1024, 5);
    gram_array O = gram_array_f64(est, M, 1), E = gram_array_f64(err, M, 1);
    gram_approx_info info;
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, NULL, &opt, &O, &E, &info), GRAM_OK);
    const int64_t cert = check_tolerance("fallback", est, err, ex, M, opt.rtol, opt.atol, 1e-12, 0.0);
    CHECK(cert == 0, "fallback: %lld queries certified by features at a bandwidth they cannot resolve", (long long)cert);
    CHECK(info.method == GRAM_APPROX_FEATURES && info.kernel_evaluations == M * N && info.delta == 0.0,
          "fallback: info method %d evaluations %lld delta %g", (int)info.method, (long long)info.kernel_evaluations,
          info.delta);
    for (int64_t i = 0; i < M; i++) CHECK(est[i] == ex[i], "fallback: query %lld is not the exact sum", (long long)i);
    gram_kernel_destroy(k);
    free(x), free(y);
}

/* components 0: rounds from 256 frequencies doubling to the cap, at a size where the cap allows
 * several rounds. */
static void test_adaptive(gram_context *ctx)
{
    const int64_t N = 20000, M = 20000, D = 8;
    gram_kernel *k = check_kernel(ctx, "gaussian(6)");
    double *x = normal_matrix(71, N, D, 1.0), *y = normal_matrix(72, M, D, 1.0);
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
    double *ex = malloc((size_t)M * sizeof(double)), *est = malloc((size_t)M * sizeof(double)),
           *err = malloc((size_t)M * sizeof(double));
    exact_sum(ctx, k, &Y, &X, NULL, ex, 1);
    gram_approx_options opt = features_opt(0.1, 0.0, 1e-3, 0, 1);
    gram_array O = gram_array_f64(est, M, 1), E = gram_array_f64(err, M, 1);
    gram_approx_info info;
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, NULL, &opt, &O, &E, &info), GRAM_OK);
    const int64_t cert = check_tolerance("adaptive", est, err, ex, M, opt.rtol, 0.0, 1e-12, 0.0);
    CHECK(cert > M / 2, "adaptive: only %lld of %lld queries certified", (long long)cert, (long long)M);
    CHECK(info.delta == opt.delta && info.kernel_evaluations == (M - cert) * N, "adaptive: info delta %g evaluations %lld",
          info.delta, (long long)info.kernel_evaluations);
    /* the cost model agrees that features beat the exact sum here */
    const double cost = gram__approx_features_cost(k, &Y, &X, &opt);
    CHECK(cost < 0.5 * (double)M * (double)N, "adaptive: cost model %.3g, exact %.3g", cost, (double)M * (double)N);
    if (getenv("GRAM_TEST_VERBOSE"))
        printf("adaptive: %lld of %lld certified, cost model %.3g of exact\n", (long long)cert, (long long)M,
               cost / ((double)M * (double)N));
    free(ex), free(est), free(err), free(x), free(y);
    gram_kernel_destroy(k);
}

static void test_threads_seed(void)
{
    const int64_t N = 3000, M = 700, D = 5, V = 2;
    double *x = normal_matrix(81, N, D, 1.0), *y = normal_matrix(82, M, D, 1.0), *w = normal_matrix(83, N, V, 1.0);
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D), W = gram_array_f64(w, N, V);
    double *o[3], *e[3];
    for (int t = 0; t < 3; t++) {
        gram_context *c = NULL;
        gram_context_create(&c);
        gram_context_set_threads(c, t == 1 ? 2 : 1);
        gram_kernel *k = check_kernel(c, "matern52(4)");
        o[t] = malloc((size_t)(M * V) * sizeof(double));
        e[t] = malloc((size_t)(M * V) * sizeof(double));
        gram_approx_options opt = features_opt(0.05, 300.0, 1e-3, 2000, t == 2 ? 12 : 11);
        gram_array O = gram_array_f64(o[t], M, V), E = gram_array_f64(e[t], M, V);
        CHECK_STATUS(gram_kernel_sum_approx(c, k, &Y, &X, &W, &opt, &O, &E, NULL), GRAM_OK);
        gram_kernel_destroy(k);
        gram_context_destroy(c);
    }
    CHECK(!memcmp(o[0], o[1], (size_t)(M * V) * sizeof(double)) && !memcmp(e[0], e[1], (size_t)(M * V) * sizeof(double)),
          "threads: 1 and 2 threads differ at one seed");
    CHECK(memcmp(o[0], o[2], (size_t)(M * V) * sizeof(double)), "threads: seeds 11 and 12 gave the same result");
    for (int t = 0; t < 3; t++) free(o[t]), free(e[t]);
    free(x), free(y), free(w);
}

static void test_errors(gram_context *ctx)
{
    const int64_t N = 50, M = 5, D = 2;
    double *x = normal_matrix(91, N, D, 1.0), *y = normal_matrix(92, M, D, 1.0), out[5];
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D), O = gram_array_f64(out, M, 1);
    static const struct {
        const char *spec, *msg;
    } refused[] = {
        {"gaussian(1) + white(0.1)", "c * family"},
        {"gaussian(1) * laplacian(2)", "c * family"},
        {"epanechnikov(1)", "spectral density"},
        {"linear", "spectral density"},
        {"-1 * gaussian(1)", "c * family"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        gram_kernel *k = check_kernel(ctx, refused[i].spec);
        if (!k) continue;
        gram_approx_options opt = features_opt(0.01, 0.0, 1e-3, 0, 0);
        CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, NULL, &opt, &O, NULL, NULL), GRAM_EINVAL);
        const char *m = gram_context_message(ctx);
        CHECK(contains(m, "method features cannot meet a tolerance") && contains(m, refused[i].msg) &&
                  contains(m, "methods that can: exact"),
              "%s: message '%s'", refused[i].spec, m);
        const char *why = NULL;
        CHECK(!gram__approx_features_supports(k, D, &why) && contains(why, refused[i].msg), "%s: supports says '%s'",
              refused[i].spec, why ? why : "(null)");
        CHECK(isinf(gram__approx_features_cost(k, &Y, &X, &opt)), "%s: a finite cost", refused[i].spec);
        gram_kernel_destroy(k);
    }
    gram_kernel *k = check_kernel(ctx, "3*gaussian(1)");
    const char *why = "unset";
    CHECK(gram__approx_features_supports(k, D, &why) && why == NULL, "3*gaussian: refused ('%s')", why ? why : "");
    gram_approx_options opt = features_opt(0.01, 0.0, 1e-3, 513, 0);
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, NULL, &opt, &O, NULL, NULL), GRAM_EINVAL);
    CHECK(contains(gram_context_message(ctx), "components must be even, got 513"), "odd components: '%s'",
          gram_context_message(ctx));
    /* the cost model: a bandwidth far below the spacing costs at least the exact sum (every query
     * falls back), a wide one much less */
    const int64_t NB = 100000;
    double *xb = normal_matrix(93, NB, 16, 1.0);
    gram_array XB = gram_array_f64(xb, NB, 16);
    gram_kernel *wide = check_kernel(ctx, "gaussian(30)"), *tiny = check_kernel(ctx, "gaussian(0.05)");
    opt.components = 0;
    const double cw = gram__approx_features_cost(wide, &XB, &XB, &opt), ct = gram__approx_features_cost(tiny, &XB, &XB, &opt);
    const double pairs = (double)NB * (double)NB;
    CHECK(cw < 0.5 * pairs && ct >= pairs, "cost model: wide %.3g, tiny %.3g, exact %.3g", cw, ct, pairs);
    gram_kernel_destroy(wide), gram_kernel_destroy(tiny), gram_kernel_destroy(k);
    /* empty X: zeros, bound 0 */
    double err[5];
    gram_kernel *g = check_kernel(ctx, "gaussian(1)");
    gram_array X0 = gram_array_f64(x, 0, D), E = gram_array_f64(err, M, 1);
    opt = features_opt(0.01, 0.0, 1e-3, 0, 0);
    CHECK_STATUS(gram_kernel_sum_approx(ctx, g, &Y, &X0, NULL, &opt, &O, &E, NULL), GRAM_OK);
    for (int64_t i = 0; i < M; i++) CHECK(out[i] == 0 && err[i] == 0, "empty X: query %lld", (long long)i);
    gram_kernel_destroy(g);
    free(x), free(y), free(xb);
}

int main(void)
{
    gram_context *ctx = NULL;
    gram_context_create(&ctx);
    gram_context_set_threads(ctx, 1);
    test_errors(ctx);
    test_threads_seed();
    test_fallback(ctx);
    test_unbiased(ctx);
    test_kernels(ctx);
    test_real(ctx, "faithful.csv", 6.0, 32768, 1e-2);
    test_real(ctx, "quakes.csv", 6.0, 32768, 1e-2);
    /* moderate bandwidths, where the spread of the terms (not their range) sets the bound */
    test_coverage(ctx, "gaussian(1.0)", 1000, 12, 2, 1, 0, 256, 120);
    test_coverage(ctx, "2.0*matern32(lengthscale=[1, 2, 1.5])", 1000, 10, 3, 3, 1, 256, 120);
    test_adaptive(ctx);
    gram_context_destroy(ctx);
    return check_done();
}
