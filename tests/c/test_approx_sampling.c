/* The sampling method of the approximate kernel sums (src/approx/sampling.c), called directly.
 *
 * The reference is the exact engine (gram_kernel_sum over all of X); the engine itself is held to
 * a long-double loop in test_engine. Statistical checks run over independent seeds and count, per
 * query, the seeds whose result misses: each query's count is Binomial(seeds, p) with p ≤ delta
 * when the guarantee holds (seeds are independent; queries of one seed share a sample, so counts
 * are never pooled over queries). A count fails the test above the binomial quantile whose upper
 * tail at p = delta is ≤ ALPHA / (queries in the check): each check has a false-alarm rate ≤ ALPHA.
 * - The bound's coverage at delta = 0.05 (and the same counts with the bound shrunk 100-fold fail
 *   most queries, so the check can see a bound that is too small).
 * - The tolerance atol + rtol·|exact| met at the same rate when the adaptive loop stops, and the
 *   stopping rule's own inequality on every returned value.
 * - Unbiasedness at a fixed sample size: the mean over seeds within 4.5 standard errors of the exact
 *   sum, the standard error from the population's exact variance (finite-population corrected).
 * - The squared kernel behind Σt² equals k² pair by pair (its closed forms and k·k).
 * - S = N gives the exact sum with bound 0 (delta reported 0); N below the first round too.
 * - Bit-identical for a fixed seed at 1, 2 and 3 threads; another seed gives another sample.
 * - Signed weights (V = 2), a kernel of both signs, float32 inputs, D = 64 (synthetic), R's quakes
 *   (1000 × 5, a wide bandwidth and rtol 0.25: with N = 1000 a tighter one ends every query at N).
 * - Bad input: unbounded kernels and white noise refused naming why (and gram__approx_sampling_supports
 *   agrees), delta, shapes, NaN.
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
    double tail = 1.0; /* P(X > c - 1) = P(X ≥ c) */
    for (int c = 0; c <= n; c++) {
        const double pmf = exp(lgamma(n + 1.0) - lgamma(c + 1.0) - lgamma(n - c + 1.0) + c * log(p) + (n - c) * log1p(-p));
        tail -= pmf; /* now P(X > c) */
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

typedef struct {
    const char *spec;
    int64_t N, M, D, V;
    double rtol, atol, delta;
    int seeds;
    int signed_w;
    double ysd; /* queries' spread (data: standard normal) */
    const char *file; /* real data in data/ instead (spec: gaussian, lengthscale spec_ls·sd per column) */
    double spec_ls;
} scase;

/* Coverage of the bound and of the tolerance over seeds, for one case. */
static void coverage(gram_context *ctx, const scase *cs)
{
    scase cc = *cs, *c = &cc;
    double *x, *y;
    char spec[512];
    if (c->file) {
        /* the KDE at every (N/M)-th data point, each column's lengthscale spec_ls of its sd */
        if (!(x = check_read_data(ctx, c->file, &c->N, &c->D))) return;
        y = malloc((size_t)(c->M * c->D) * sizeof(double));
        snprintf(spec, sizeof spec, "gaussian(lengthscale=[");
        for (int64_t d = 0; d < c->D; d++) {
            double m = 0, v = 0;
            for (int64_t i = 0; i < c->N; i++) m += x[i * c->D + d] / (double)c->N;
            for (int64_t i = 0; i < c->N; i++) v += (x[i * c->D + d] - m) * (x[i * c->D + d] - m);
            snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "%s%.6g", d ? ", " : "",
                     c->spec_ls * sqrt(v / (double)(c->N - 1)));
        }
        strcat(spec, "])");
        c->spec = spec;
        for (int64_t i = 0; i < c->M; i++) memcpy(y + i * c->D, x + (i * (c->N / c->M)) * c->D, (size_t)c->D * sizeof(double));
    } else {
        x = normal_matrix(11, c->N, c->D, 1.0);
        y = normal_matrix(12, c->M, c->D, c->ysd);
    }
    gram_kernel *k = check_kernel(ctx, c->spec);
    if (!k) {
        free(x), free(y);
        return;
    }
    double *w = NULL;
    if (c->V > 1 || c->signed_w) {
        w = normal_matrix(13, c->N, c->V, 1.0);
        if (!c->signed_w)
            for (int64_t i = 0; i < c->N * c->V; i++) w[i] = fabs(w[i]);
    }
    gram_array X = gram_array_f64(x, c->N, c->D), Y = gram_array_f64(y, c->M, c->D), W = gram_array_f64(w, c->N, c->V);
    const int64_t MV = c->M * c->V;
    double *ex = malloc((size_t)MV * sizeof(double)), *est = malloc((size_t)MV * sizeof(double)),
           *err = malloc((size_t)MV * sizeof(double));
    exact_sum(ctx, k, &Y, &X, w ? &W : NULL, ex, c->V);
    int *miss = calloc((size_t)c->M, sizeof(int)), *miss_tol = calloc((size_t)c->M, sizeof(int)),
        *miss_small = calloc((size_t)c->M, sizeof(int));
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.near_neighbours = -1; /* plain sampling; the split is test_approx_near.c */
    opt.rtol = c->rtol;
    opt.atol = c->atol;
    opt.delta = c->delta;
    opt.method = GRAM_APPROX_SAMPLING;
    int64_t stopped_early = 0, rule_broken = 0, evals = 0;
    for (int s = 0; s < c->seeds; s++) {
        opt.seed = 1000 + (uint64_t)s;
        gram_array O = gram_array_f64(est, c->M, c->V), E = gram_array_f64(err, c->M, c->V);
        gram_approx_info info;
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, w ? &W : NULL, &opt, &O, &E, &info), GRAM_OK);
        evals += info.kernel_evaluations;
        for (int64_t i = 0; i < c->M; i++) {
            int m = 0, mt = 0, ms = 0;
            for (int64_t v = 0; v < c->V; v++) {
                const double e = est[i * c->V + v], b = err[i * c->V + v], t = ex[i * c->V + v];
                const double d = fabs(e - t);
                /* the engine's rounding of both sums (1e-12 relative of the terms' magnitude) */
                const double slack = 1e-10 * (fabs(t) + b);
                if (d > b + slack) m = 1;
                if (d > c->atol + c->rtol * fabs(t) + slack) mt = 1;
                if (b > 0 && d > b / 100) ms = 1;
                if (b > 0) stopped_early++;
                if (!(b <= c->atol + c->rtol * (fabs(e) - b) || b == 0)) rule_broken++;
            }
            miss[i] += m;
            miss_tol[i] += mt;
            miss_small[i] += ms;
        }
    }
    const int limit = binom_limit(c->seeds, c->delta, ALPHA, (int)c->M);
    int worst = 0, worst_tol = 0, small_over = 0;
    for (int64_t i = 0; i < c->M; i++) {
        if (miss[i] > worst) worst = miss[i];
        if (miss_tol[i] > worst_tol) worst_tol = miss_tol[i];
        if (miss_small[i] > limit) small_over++;
    }
    CHECK(worst <= limit, "%s: a query's bound missed in %d of %d seeds (limit %d at delta %g)", c->spec, worst,
          c->seeds, limit, c->delta);
    CHECK(worst_tol <= limit, "%s: a query's tolerance missed in %d of %d seeds (limit %d)", c->spec, worst_tol,
          c->seeds, limit);
    CHECK(rule_broken == 0, "%s: %lld values returned with bound > atol + rtol(|est| - bound)", c->spec,
          (long long)rule_broken);
    /* The case is only a test of the bound if values stop before n = N. */
    CHECK(stopped_early > c->seeds * MV / 4, "%s: only %lld of %lld values stopped before n = N", c->spec,
          (long long)stopped_early, (long long)(c->seeds * MV));
    /* Power: the bound shrunk 100-fold would fail most queries' counts. */
    CHECK(small_over > c->M / 2, "%s: a bound shrunk 100-fold fails only %d of %lld queries", c->spec, small_over,
          (long long)c->M);
    CHECK(evals < (int64_t)c->seeds * c->M * c->N, "%s: sampling evaluated %lld pairs, exact needs %lld", c->spec,
          (long long)evals, (long long)c->seeds * c->M * c->N);
    if (getenv("GRAM_TEST_VERBOSE"))
        printf("%s: worst misses %d (tol %d) of %d, limit %d; %lld of %lld stopped early; pairs %.3g of exact\n",
               c->spec, worst, worst_tol, c->seeds, limit, (long long)stopped_early, (long long)(c->seeds * MV),
               (double)evals / ((double)c->seeds * c->M * c->N));
    free(miss), free(miss_tol), free(miss_small), free(ex), free(est), free(err), free(x), free(y), free(w);
    gram_kernel_destroy(k);
}

static void test_coverage(gram_context *ctx)
{
    const scase cases[] = {
        {"gaussian(1.0)", 50000, 12, 2, 1, 0.05, 0.0, 0.05, 200, 0, 1.5, NULL, 0.0},
        {"2.0*matern32(lengthscale=[1, 2, 1.5])", 50000, 10, 3, 1, 0.05, 1.0, 0.05, 120, 0, 1.5, NULL, 0.0},
        /* signed weights, two columns: the sums are small next to their terms, so atol carries */
        {"gaussian(1.5)", 50000, 10, 2, 2, 0.0, 1500.0, 0.05, 120, 1, 1.0, NULL, 0.0},
        /* a kernel of both signs and a product */
        {"rbf(2) * cosine + 0.5", 20000, 10, 3, 1, 0.05, 0.0, 0.05, 120, 0, 1.0, NULL, 0.0},
        /* high dimension */
        {"gaussian(6.0)", 20000, 10, 64, 1, 0.05, 0.0, 0.05, 100, 0, 1.0, NULL, 0.0},
        /* R's quakes (1000 × 5; N, D and the spec from the file) */
        {NULL, 0, 10, 0, 1, 0.25, 0.0, 0.05, 200, 0, 0.0, "quakes.csv", 3.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) coverage(ctx, &cases[i]);
}

/* A fixed sample size (atol so large that the first round stops every query) makes the estimate
 * N/n Σ over a uniform sample without replacement: unbiased, with variance
 * N²·σ²/n·(N - n)/(N - 1) for the population variance σ² of the terms. */
static void test_unbiased(gram_context *ctx)
{
    const int64_t N = 2000, M = 10, D = 3, n = 256;
    const int seeds = 400;
    gram_kernel *k = check_kernel(ctx, "laplacian(1.5)"), *k2 = check_kernel(ctx, "laplacian(1.5)*laplacian(1.5)");
    double *x = normal_matrix(21, N, D, 1.0), *y = normal_matrix(22, M, D, 1.0);
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
    double ex[10], ex2[10], est[10], mean[10] = {0};
    exact_sum(ctx, k, &Y, &X, NULL, ex, 1);
    exact_sum(ctx, k2, &Y, &X, NULL, ex2, 1);
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.near_neighbours = -1; /* plain sampling; the split is test_approx_near.c */
    opt.atol = 1e300;
    opt.delta = 0.1;
    for (int s = 0; s < seeds; s++) {
        opt.seed = (uint64_t)s;
        gram_array O = gram_array_f64(est, M, 1);
        gram_approx_info info;
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &O, NULL, &info), GRAM_OK);
        CHECK(info.kernel_evaluations == M * n, "one round of %lld points, got %lld pairs", (long long)n,
              (long long)info.kernel_evaluations);
        CHECK(info.delta == 0.1, "delta %g", info.delta);
        for (int64_t i = 0; i < M; i++) mean[i] += est[i] / seeds;
    }
    for (int64_t i = 0; i < M; i++) {
        const double mu = ex[i] / N, var = ex2[i] / N - mu * mu;
        const double sd_est = N * sqrt(var / n * (double)(N - n) / (double)(N - 1));
        const double z = (mean[i] - ex[i]) / (sd_est / sqrt((double)seeds));
        /* two-sided 4.5σ over 10 queries: false-alarm rate ≈ 7e-5 */
        CHECK(fabs(z) <= 4.5, "query %lld: mean over seeds %.10g, exact %.10g, z = %.2f", (long long)i, mean[i], ex[i], z);
    }
    free(x), free(y);
    gram_kernel_destroy(k);
    gram_kernel_destroy(k2);
}

static void test_exact(gram_context *ctx)
{
    const int64_t M = 7, D = 4, V = 3;
    const int64_t Ns[] = {1, 100, 256, 257, 1000};
    gram_kernel *k = check_kernel(ctx, "0.5*epanechnikov(3) + rbf(2)");
    for (size_t t = 0; t < sizeof Ns / sizeof Ns[0]; t++) {
        const int64_t N = Ns[t];
        double *x = normal_matrix(31, N, D, 1.0), *y = normal_matrix(32, M, D, 1.0), *w = normal_matrix(33, N, V, 1.0);
        gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D), W = gram_array_f64(w, N, V);
        double ex[21], est[21], err[21];
        exact_sum(ctx, k, &Y, &X, &W, ex, V);
        gram_approx_options opt;
        gram_approx_options_init(&opt);
        opt.near_neighbours = -1; /* plain sampling; the split is test_approx_near.c */
        opt.seed = 5;
        gram_array O = gram_array_f64(est, M, V), E = gram_array_f64(err, M, V);
        gram_approx_info info;
        /* rtol = atol = 0: no sample short of N meets it */
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, &W, &opt, &O, &E, &info), GRAM_OK);
        for (int64_t i = 0; i < M * V; i++) {
            CHECK_CLOSE(est[i], ex[i], 1e-12, 1e-12, "S = N: the exact sum");
            CHECK(err[i] == 0.0, "S = N: bound %g, want 0", err[i]);
        }
        CHECK(info.delta == 0.0, "S = N: delta %g, want 0", info.delta);
        CHECK(info.method == GRAM_APPROX_SAMPLING, "method %d", (int)info.method);
        free(x), free(y), free(w);
    }
    gram_kernel_destroy(k);
}

/* A kernel of one value: its interval has (almost) no width, so the first round's bound is ~0 and
 * stops every query with the exact value; the same through a scale, a power and a sum. */
static void test_constant_range(gram_context *ctx)
{
    const int64_t N = 3000, M = 4, D = 2;
    const char *specs[] = {"constant(3)", "0.5*constant(6)", "constant(1.5)^2 + 0.75"};
    double *x = normal_matrix(35, N, D, 1.0), *y = normal_matrix(36, M, D, 1.0), est[4], err[4];
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
    for (int t = 0; t < 3; t++) {
        gram_kernel *k = check_kernel(ctx, specs[t]);
        if (!k) continue;
        gram_approx_options opt;
        gram_approx_options_init(&opt);
        opt.near_neighbours = -1; /* plain sampling; the split is test_approx_near.c */
        opt.rtol = 1e-3;
        gram_array O = gram_array_f64(est, M, 1), E = gram_array_f64(err, M, 1);
        gram_approx_info info;
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &O, &E, &info), GRAM_OK);
        CHECK(info.kernel_evaluations == M * 256, "%s: %lld pairs, want one round", specs[t],
              (long long)info.kernel_evaluations);
        for (int64_t i = 0; i < M; i++) {
            CHECK_CLOSE(est[i], 3.0 * N, 1e-12, 0.0, specs[t]);
            CHECK(err[i] > 0 && err[i] <= 1e-5 * N, "%s: bound %g", specs[t], err[i]);
        }
        gram_kernel_destroy(k);
    }
    free(x), free(y);
}

/* The squared kernel (closed forms for gaussian, laplacian, exponential; k·k otherwise) against the
 * square of k's own value at random pairs, through gram_kernel_eval. */
static void test_square(gram_context *ctx)
{
    const char *specs[] = {"gaussian(0.7)", "3.5*rbf(lengthscale=[0.5, 2, 1])", "laplacian(1.3)", "exponential(0.4)",
                           "matern12(2)", "0.25*laplacian_l1(lengthscale=[1, 3, 0.5])", "matern32(1.1)",
                           "rbf(2) * cosine + 0.5", "tophat(1.5)"};
    check_rng r = {71};
    for (size_t t = 0; t < sizeof specs / sizeof specs[0]; t++) {
        gram_kernel *k = check_kernel(ctx, specs[t]), *k2 = NULL;
        if (!k) continue;
        CHECK_STATUS(gram__approx_kernel_square(ctx, k, &k2), GRAM_OK);
        for (int p = 0; p < 50 && k2; p++) {
            double y[3], x[3], v, v2;
            for (int d = 0; d < 3; d++) y[d] = check_normal(&r), x[d] = check_normal(&r);
            CHECK_STATUS(gram_kernel_eval(ctx, k, 3, y, x, 0, &v, NULL), GRAM_OK);
            CHECK_STATUS(gram_kernel_eval(ctx, k2, 3, y, x, 0, &v2, NULL), GRAM_OK);
            CHECK_CLOSE(v2, v * v, 1e-13, 1e-300, specs[t]);
        }
        gram_kernel_destroy(k2);
        gram_kernel_destroy(k);
    }
}

static void test_threads_seed(gram_context *ctx)
{
    const int64_t N = 5000, M = 40, D = 5;
    gram_kernel *k = check_kernel(ctx, "matern52(1.2)");
    double *x = normal_matrix(41, N, D, 1.0), *y = normal_matrix(42, M, D, 1.3);
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
    double est[3][40], err[3][40], other[40];
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.near_neighbours = -1; /* plain sampling; the split is test_approx_near.c */
    opt.rtol = 0.05;
    opt.seed = 77;
    for (int t = 0; t < 3; t++) {
        gram_context *c = NULL;
        gram_context_create(&c);
        gram_context_set_threads(c, t + 1);
        gram_array O = gram_array_f64(est[t], M, 1), E = gram_array_f64(err[t], M, 1);
        CHECK_STATUS(gram__approx_sampling(c, k, &Y, &X, NULL, &opt, &O, &E, NULL), GRAM_OK);
        gram_context_destroy(c);
    }
    CHECK(memcmp(est[0], est[1], sizeof est[0]) == 0 && memcmp(est[0], est[2], sizeof est[0]) == 0,
          "estimates differ between 1, 2 and 3 threads");
    CHECK(memcmp(err[0], err[1], sizeof err[0]) == 0 && memcmp(err[0], err[2], sizeof err[0]) == 0,
          "bounds differ between 1, 2 and 3 threads");
    opt.seed = 78;
    gram_array O = gram_array_f64(other, M, 1);
    CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &O, NULL, NULL), GRAM_OK);
    CHECK(memcmp(other, est[0], sizeof other) != 0, "seeds 77 and 78 gave the same estimates");
    free(x), free(y);
    gram_kernel_destroy(k);
}

/* float32 inputs and strided (Fortran-ordered) views: the bound holds against the float32 engine. */
static void test_float32(gram_context *ctx)
{
    const int64_t N = 3000, M = 8, D = 3;
    const int seeds = 100;
    gram_kernel *k = check_kernel(ctx, "gaussian(1.2)");
    double *xd = normal_matrix(51, N, D, 1.0), *yd = normal_matrix(52, M, D, 1.0);
    float *x = malloc((size_t)(N * D) * sizeof(float)), *y = malloc((size_t)(M * D) * sizeof(float));
    for (int64_t i = 0; i < N; i++)
        for (int64_t d = 0; d < D; d++) x[d * N + i] = (float)xd[i * D + d]; /* Fortran order */
    for (int64_t i = 0; i < M * D; i++) y[i] = (float)yd[i];
    gram_array X = {x, GRAM_FLOAT32, N, D, 1, N}, Y = gram_array_f32(y, M, D);
    double ex[8], err[8];
    float est[8];
    exact_sum(ctx, k, &Y, &X, NULL, ex, 1);
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.near_neighbours = -1; /* plain sampling; the split is test_approx_near.c */
    opt.rtol = 0.1;
    opt.delta = 0.05;
    int miss[8] = {0}, worst = 0;
    for (int s = 0; s < seeds; s++) {
        opt.seed = (uint64_t)s;
        gram_array O = gram_array_f32(est, M, 1), E = gram_array_f64(err, M, 1);
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &O, &E, NULL), GRAM_OK);
        for (int64_t i = 0; i < M; i++)
            if (fabs(est[i] - ex[i]) > err[i] + 1e-6 * fabs(ex[i])) miss[i]++;
    }
    for (int64_t i = 0; i < M; i++) worst = miss[i] > worst ? miss[i] : worst;
    CHECK(worst <= binom_limit(seeds, 0.05, ALPHA, (int)M), "float32: a query missed its bound in %d of %d seeds",
          worst, seeds);
    free(xd), free(yd), free(x), free(y);
    gram_kernel_destroy(k);
}

/* N = 0 gives zeros with bound 0; M = 0 and V = 0 are no work. */
static void test_empty(gram_context *ctx)
{
    gram_kernel *k = check_kernel(ctx, "rbf");
    double x[6] = {0, 1, 2, 3, 4, 5}, y[4] = {1, 2, 3, 4}, out[2] = {7, 7}, err[2] = {7, 7}, w[1];
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.near_neighbours = -1; /* plain sampling; the split is test_approx_near.c */
    opt.rtol = 0.1;
    gram_approx_info info;
    gram_array X0 = gram_array_f64(x, 0, 2), Y = gram_array_f64(y, 2, 2), O = gram_array_f64(out, 2, 1),
               E = gram_array_f64(err, 2, 1);
    CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X0, NULL, &opt, &O, &E, &info), GRAM_OK);
    CHECK(out[0] == 0 && out[1] == 0 && err[0] == 0 && err[1] == 0 && info.delta == 0 && info.kernel_evaluations == 0,
          "N = 0: out %g %g, err %g %g", out[0], out[1], err[0], err[1]);
    gram_array X = gram_array_f64(x, 3, 2), Y0 = gram_array_f64(y, 0, 2), O0 = gram_array_f64(out, 0, 1);
    CHECK_STATUS(gram__approx_sampling(ctx, k, &Y0, &X, NULL, &opt, &O0, NULL, &info), GRAM_OK);
    gram_array W0 = gram_array_f64(w, 3, 0), OV = gram_array_f64(out, 2, 0);
    CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, &W0, &opt, &OV, NULL, &info), GRAM_OK);
    gram_kernel_destroy(k);
}

static void test_errors(gram_context *ctx)
{
    const int64_t N = 50, M = 3, D = 2;
    double *x = normal_matrix(61, N, D, 1.0), *y = normal_matrix(62, M, D, 1.0), out[3], err[3];
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D), O = gram_array_f64(out, M, 1);
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.near_neighbours = -1; /* plain sampling; the split is test_approx_near.c */
    opt.rtol = 0.1;
    const char *unbounded[] = {"linear", "polynomial(degree=2)", "softmax", "neg_l2", "neg_l1", "arccos",
                               "rbf + linear", "rbf * neg_l2"};
    for (size_t i = 0; i < sizeof unbounded / sizeof unbounded[0]; i++) {
        gram_kernel *k = check_kernel(ctx, unbounded[i]);
        if (!k) continue;
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &O, NULL, NULL), GRAM_EINVAL);
        CHECK(contains(gram_context_message(ctx), "no finite range") && contains(gram_context_message(ctx), "exact"),
              "%s: message '%s'", unbounded[i], gram_context_message(ctx));
        gram_kernel_destroy(k);
    }
    const char *ok[] = {"rbf", "rbf(2) * cosine + 0.5", "sigmoid", "2*matern(nu=0.7)^0.5", "tophat + constant(3)"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        gram_kernel *kk = check_kernel(ctx, ok[i]);
        const char *why = "unset";
        CHECK(kk && gram__approx_sampling_supports(kk, &why) && why == NULL, "%s: sampling should support it", ok[i]);
        gram_kernel_destroy(kk);
    }
    const char *no[] = {"linear", "rbf * softmax", "rbf + white(0.1)", "linear^2"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        gram_kernel *kk = check_kernel(ctx, no[i]);
        const char *why = NULL;
        CHECK(kk && !gram__approx_sampling_supports(kk, &why) && why && why[0], "%s: sampling should refuse it", no[i]);
        gram_kernel_destroy(kk);
    }
    gram_kernel *k = check_kernel(ctx, "rbf + white(0.1)");
    CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &O, NULL, NULL), GRAM_EINVAL);
    CHECK(contains(gram_context_message(ctx), "white"), "white: message '%s'", gram_context_message(ctx));
    gram_kernel_destroy(k);

    k = check_kernel(ctx, "rbf");
    const double deltas[] = {0.0, 1.0, -0.5, NAN};
    for (int i = 0; i < 4; i++) {
        opt.delta = deltas[i];
        CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &O, NULL, NULL), GRAM_EINVAL);
        CHECK(contains(gram_context_message(ctx), "delta"), "delta %g: message '%s'", deltas[i],
              gram_context_message(ctx));
    }
    opt.delta = 0.01;
    gram_array O2 = gram_array_f64(out, 2, 1), E1 = gram_array_f64(err, 1, 3);
    CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &O2, NULL, NULL), GRAM_ESHAPE);
    CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &O, &E1, NULL), GRAM_ESHAPE);
    x[17 * D + 1] = NAN; /* in a row a small sample may never draw: the whole of X is checked */
    CHECK_STATUS(gram__approx_sampling(ctx, k, &Y, &X, NULL, &opt, &O, NULL, NULL), GRAM_ENONFINITE);
    CHECK(contains(gram_context_message(ctx), "row 17"), "NaN: message '%s'", gram_context_message(ctx));
    gram_kernel_destroy(k);
    free(x), free(y);
}

int main(void)
{
    gram_context *ctx = NULL;
    gram_context_create(&ctx);
    /* one thread but in test_threads_seed: the many small calls here would mostly measure OpenMP's
     * team starts on a loaded machine */
    gram_context_set_threads(ctx, 1);
    test_errors(ctx);
    test_empty(ctx);
    test_exact(ctx);
    test_constant_range(ctx);
    test_square(ctx);
    test_threads_seed(ctx);
    test_unbiased(ctx);
    test_float32(ctx);
    test_coverage(ctx);
    gram_context_destroy(ctx);
    return check_done();
}
