/* Approximate kernel sums with a tolerance: the front end and the tree (src/approx/approx.c, tree.c).
 *
 * - The tolerance holds on every query, |out − exact| ≤ atol + rtol·|exact|, against the exact
 *   engine (gram_kernel_sum), and err bounds the true error on every query: every monotone radial
 *   family, uniform and clustered data, D = 1, 2, 3, 8, 16, non-negative and signed weights,
 *   V = 1 and 3, several (rtol, atol); ARD lengthscales and a constant scale; float32; R's quakes
 *   and faithful (data/, read with gram's io).
 *   The comparison allows the rounding of the two sums (the tree's and the engine's, in different
 *   orders): 4·N·ε·Σ_j k·|w_j|, which the bound does not claim to cover (docs/approx.md).
 * - Points exactly on a compact kernel's edge (a grid of spacing = the tophat's radius); data far
 *   from the origin (timestamps), float64 and float32.
 * - The tree prunes: on clustered data at rtol 1e-3 it evaluates fewer than M·N/6 pairs in 2-D and
 *   M·N/3 in 8-D (where last session's tree summed 99%).
 * - The engine's sums over sub-ranges of a packed X (gram__packed_sum), which the tree's exact parts
 *   use: bit for bit gram_kernel_sum over [0, N), within the rounding of another order elsewhere.
 * - rtol = atol = 0 is the exact sum, bit for bit; AUTO's documented rule; bit-identical results
 *   for 1 and 2 threads.
 * - Refused inputs, each with its status and message.
 */
#include "check.h"
#include "engine/engine.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* Every family the tree bounds, with its lengthscale h (%g). */
static const char *families[] = {
    "gaussian(%g)", "laplacian(%g)", "exponential(%g)", "matern12(%g)", "matern32(%g)", "matern52(%g)",
    "matern(lengthscale=%g, nu=0.7)", "rational_quadratic(lengthscale=%g, alpha=1.5)", "cauchy(%g)",
    "tophat(%g)", "epanechnikov(%g)", "triangular(%g)", "cosine_window(%g)", "laplacian_l1(%g)",
    "2.5*gaussian(%g)",
};
#define NF ((int)(sizeof families / sizeof families[0]))

static void make_points(check_rng *r, double *x, int64_t n, int64_t D, int clustered, const double *centres)
{
    for (int64_t i = 0; i < n; i++) {
        const double *c = centres + (int64_t)(check_uniform(r) * 5) * D;
        for (int64_t d = 0; d < D; d++) x[i * D + d] = clustered ? c[d] + 0.03 * check_normal(r) : check_uniform(r);
    }
}

typedef struct tolcase { double rtol, atol; } tolcase;

/* Runs the tree on (Y, X, W) and checks every value against the engine. Returns the pairs
 * evaluated (info.kernel_evaluations). */
static int64_t check_tree(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                          const double *w, int64_t V, double rtol, double atol, const char *what)
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
    opt.method = GRAM_APPROX_TREE;
    opt.rtol = rtol, opt.atol = atol;
    gram_approx_info info = {GRAM_APPROX_AUTO, -1, -1};
    gram_status s = gram_kernel_sum_approx(ctx, k, Y, X, &W, &opt, &O, &E, &info);
    CHECK(s == GRAM_OK, "%s: gram_kernel_sum_approx: %s", what, gram_context_message(ctx));
    CHECK_STATUS(gram_kernel_sum(ctx, k, Y, X, &W, &EX), GRAM_OK);
    CHECK_STATUS(gram_kernel_sum(ctx, k, Y, X, &Wa, &SA), GRAM_OK);
    CHECK(info.method == GRAM_APPROX_TREE && info.delta == 0 && info.kernel_evaluations >= 0 &&
              info.kernel_evaluations <= M * N,
          "%s: info method %d delta %g evaluations %lld", what, (int)info.method, info.delta,
          (long long)info.kernel_evaluations);
    const double eps = X->dtype == GRAM_FLOAT64 ? DBL_EPSILON : 64 * FLT_EPSILON;
    long bad_tol = 0, bad_err = 0, bad_self = 0;
    double worst = 0;
    for (int64_t i = 0; s == GRAM_OK && i < M * V; i++) {
        const double d = fabs(out[i] - ex[i]), tol = atol + rtol * fabs(ex[i]), round = 4.0 * (double)N * eps * sa[i];
        if (!(d <= tol + round)) bad_tol++;
        if (!(d <= err[i] + round)) bad_err++;
        if (!(err[i] >= 0 && err[i] <= tol + round)) bad_self++;
        if (tol > 0 && d / tol > worst) worst = d / tol;
    }
    CHECK(bad_tol == 0, "%s (rtol %g, atol %g): %ld of %lld values outside the tolerance", what, rtol, atol, bad_tol,
          (long long)(M * V));
    CHECK(bad_err == 0, "%s (rtol %g, atol %g): %ld of %lld errors above their bound err", what, rtol, atol, bad_err,
          (long long)(M * V));
    CHECK(bad_self == 0, "%s (rtol %g, atol %g): %ld of %lld bounds err negative or above the tolerance", what, rtol,
          atol, bad_self, (long long)(M * V));
    free(wa), free(out), free(err), free(ex), free(sa);
    return info.kernel_evaluations;
}

/* Every family × D × data kind × weight kind × V, with the tolerances in rotation. */
static void test_families(gram_context *ctx)
{
    static const int64_t Ds[] = {1, 2, 3, 8, 16};
    static const tolcase tols[] = {{1e-3, 0}, {1e-6, 0}, {0, 1e-3}, {1e-2, 1e-6}, {1e-1, 0}};
    check_rng r = {15};
    const int64_t N = 700, M = 300;
    double *x = malloc(sizeof(double) * (size_t)(N * 16)), *y = malloc(sizeof(double) * (size_t)(M * 16));
    double *w = malloc(sizeof(double) * (size_t)(N * 3)), centres[5 * 16];
    int c = 0;
    for (int f = 0; f < NF; f++)
        for (int di = 0; di < 5; di++, c++) {
            const int64_t D = Ds[di], V = c % 2 ? 3 : 1;
            const int clustered = (c / 2) % 2, sign = (c / 4) % 2;
            for (int64_t j = 0; j < 5 * D; j++) centres[j] = check_uniform(&r);
            make_points(&r, x, N, D, clustered, centres);
            make_points(&r, y, M, D, clustered, centres);
            for (int64_t j = 0; j < N * V; j++) w[j] = sign ? check_normal(&r) : check_uniform(&r);
            /* a bandwidth of about a tenth of the typical distance, larger for compact kernels so
             * that their support holds points */
            const double h = (clustered ? 0.05 : 0.12) * sqrt((double)D) * (f >= 9 && f <= 12 ? 2.0 : 1.0);
            char spec[128], what[256];
            snprintf(spec, sizeof spec, families[f], h);
            gram_kernel *k = check_kernel(ctx, spec);
            if (!k) continue;
            const tolcase t = tols[c % 5];
            snprintf(what, sizeof what, "%s D=%lld %s %s V=%lld", spec, (long long)D, clustered ? "clustered" : "uniform",
                     sign ? "signed" : "non-negative", (long long)V);
            gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
            check_tree(ctx, k, &Y, &X, w, V, t.rtol, t.atol, what);
            gram_kernel_destroy(k);
        }
    free(x), free(y), free(w);
}

/* ARD lengthscales, Y = X, leaf sizes 1 and 3 (deep trees), float32 inputs. */
static void test_variants(gram_context *ctx)
{
    check_rng r = {77};
    const int64_t N = 500, D = 3;
    double *x = malloc(sizeof(double) * (size_t)(N * D)), *w = malloc(sizeof(double) * (size_t)N), centres[15];
    float *xf = malloc(sizeof(float) * (size_t)(N * D));
    for (int j = 0; j < 15; j++) centres[j] = check_uniform(&r);
    make_points(&r, x, N, D, 1, centres);
    for (int64_t j = 0; j < N; j++) w[j] = check_uniform(&r);
    gram_kernel *k = check_kernel(ctx, "3*matern52(lengthscale=[0.05, 0.2, 0.1])");
    gram_array X = gram_array_f64(x, N, D);
    if (k) check_tree(ctx, k, &X, &X, w, 1, 1e-4, 0, "ARD matern52, Y = X");
    gram_kernel_destroy(k);

    k = check_kernel(ctx, "gaussian(0.04)");
    gram_approx_options opt;
    /* leaf sizes 1 and 3 (deep trees) and 2^40 (one leaf: its batch is X, not 2^40 rows) */
    static const int64_t leaves[] = {1, 3, (int64_t)1 << 40};
    for (int li = 0; li < 3 && k; li++) {
        const int64_t leaf = leaves[li];
        gram_approx_options_init(&opt);
        opt.method = GRAM_APPROX_TREE, opt.rtol = 1e-5, opt.leaf_size = leaf;
        double *out = malloc(sizeof(double) * (size_t)N), *ex = malloc(sizeof(double) * (size_t)N);
        gram_array O = gram_array_f64(out, N, 1), EX = gram_array_f64(ex, N, 1), W = gram_array_f64(w, N, 1);
        CHECK_STATUS(gram_kernel_sum_approx(ctx, k, NULL, &X, &W, &opt, &O, NULL, NULL), GRAM_OK);
        CHECK_STATUS(gram_kernel_sum(ctx, k, NULL, &X, &W, &EX), GRAM_OK);
        long bad = 0;
        for (int64_t i = 0; i < N; i++) bad += !(fabs(out[i] - ex[i]) <= 1e-5 * ex[i] * (1 + 1e-9));
        CHECK(bad == 0, "leaf_size %lld: %ld values outside rtol 1e-5", (long long)leaf, bad);
        free(out), free(ex);
    }

    /* float32: the bound holds up to float32's rounding of the kernel values (the comparison's
     * allowance uses 64·FLT_EPSILON) */
    for (int64_t j = 0; j < N * D; j++) xf[j] = (float)x[j];
    gram_array Xf = gram_array_f32(xf, N, D);
    if (k) check_tree(ctx, k, &Xf, &Xf, w, 1, 1e-3, 0, "float32 gaussian");
    gram_kernel_destroy(k);
    free(x), free(w), free(xf);
}

/* Data far from the origin (timestamps ~1.7e9 s, lengthscale 60 s, as test_far_origin): the engine
 * centres them, the tree's bounds must follow its rounding. float64 and float32 (whose spacing
 * there is 128 s: many points coincide). */
static void test_far_origin(gram_context *ctx)
{
    check_rng r = {1700};
    const int64_t N = 800, M = 300;
    double *x = malloc(sizeof(double) * (size_t)N), *y = malloc(sizeof(double) * (size_t)M), *w = malloc(sizeof(double) * (size_t)N);
    float *xf = malloc(sizeof(float) * (size_t)N), *yf = malloc(sizeof(float) * (size_t)M);
    for (int64_t j = 0; j < N; j++) x[j] = 1.7e9 + floor(check_uniform(&r) * 20000), w[j] = check_normal(&r), xf[j] = (float)x[j];
    for (int64_t i = 0; i < M; i++) y[i] = 1.7e9 + floor(check_uniform(&r) * 20000), yf[i] = (float)y[i];
    gram_array X = gram_array_f64(x, N, 1), Y = gram_array_f64(y, M, 1);
    gram_array Xf = gram_array_f32(xf, N, 1), Yf = gram_array_f32(yf, M, 1);
    const char *specs[] = {"gaussian(60)", "tophat(60)", "matern32(200)"};
    for (int s = 0; s < 3; s++) {
        gram_kernel *k = check_kernel(ctx, specs[s]);
        if (!k) continue;
        char what[96];
        snprintf(what, sizeof what, "far from the origin, %s", specs[s]);
        check_tree(ctx, k, &Y, &X, w, 1, 1e-3, 1e-6, what);
        snprintf(what, sizeof what, "far from the origin, float32, %s", specs[s]);
        check_tree(ctx, k, &Yf, &Xf, w, 1, 1e-3, 1e-6, what);
        gram_kernel_destroy(k);
    }
    free(x), free(y), free(w), free(xf), free(yf);
}

/* A grid of spacing exactly the tophat's radius: many distances sit on the kernel's edge, where
 * the engine's rounding of t decides 1 or 0. The bounds must include both sides. */
static void test_compact_edge(gram_context *ctx)
{
    const int64_t n = 40, N = n * n;
    double *x = malloc(sizeof(double) * (size_t)(N * 2)), *w = malloc(sizeof(double) * (size_t)N);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            x[(i * n + j) * 2] = 0.1 * (double)i + 3.0, x[(i * n + j) * 2 + 1] = 0.1 * (double)j - 7.0;
            w[i * n + j] = 1.0 + (double)((i + j) % 3);
        }
    gram_array X = gram_array_f64(x, N, 2);
    const char *specs[] = {"tophat(0.1)", "epanechnikov(0.1)", "triangular(0.2)", "cosine_window(0.1)",
                           "tophat(lengthscale=[0.1, 0.2])"};
    for (int s = 0; s < 5; s++) {
        gram_kernel *k = check_kernel(ctx, specs[s]);
        if (k) {
            check_tree(ctx, k, &X, &X, w, 1, 1e-9, 0, specs[s]);
            check_tree(ctx, k, &X, &X, w, 1, 0.3, 0, specs[s]);
        }
        gram_kernel_destroy(k);
    }
    free(x), free(w);
}

/* The tree must prune: 16 tight clusters on a 4 × 4 grid of spacing 0.25 (cluster sd 0.02), a
 * bandwidth of the clusters' size. Each query needs about its own cluster (1/16 of X) exactly;
 * the test asks for fewer than 1/6 of all pairs (measured: 0.120, printed). */
static void test_prunes(gram_context *ctx)
{
    check_rng r = {2003};
    const int64_t N = 6000, M = 3000, D = 2;
    double *x = malloc(sizeof(double) * (size_t)(N * D)), *y = malloc(sizeof(double) * (size_t)(M * D));
    double *w = malloc(sizeof(double) * (size_t)N);
    for (int64_t i = 0; i < N + M; i++) {
        double *p = i < N ? x + i * D : y + (i - N) * D;
        const int64_t c = check_int(&r, 0, 15);
        p[0] = 0.25 * (double)(c % 4) + 0.02 * check_normal(&r);
        p[1] = 0.25 * (double)(c / 4) + 0.02 * check_normal(&r);
    }
    for (int64_t j = 0; j < N; j++) w[j] = 1.0 / (double)N;
    gram_kernel *k = check_kernel(ctx, "gaussian(0.02)");
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
    if (k) {
        const int64_t ev = check_tree(ctx, k, &Y, &X, w, 1, 1e-3, 0, "pruning, clustered D=2");
        CHECK(ev > 0 && ev < M * N / 6, "the tree evaluated %lld of %lld pairs (want < 1/6)", (long long)ev,
              (long long)(M * N));
        printf("prune: 16 clusters, D=2, gaussian(0.02), rtol 1e-3: %lld of %lld pairs (%.4f)\n", (long long)ev,
               (long long)(M * N), (double)ev / (double)(M * N));
    }
    gram_kernel_destroy(k);
    free(x), free(y), free(w);
}

/* R's quakes (1000 × 5) and faithful (272 × 2), each column's lengthscale a fraction of its
 * standard deviation (ARD), the KDE of the data at the data. */
static void test_real(gram_context *ctx)
{
    const char *names[] = {"quakes.csv", "faithful.csv"};
    for (int f = 0; f < 2; f++) {
        int64_t N = 0, D = 0;
        double *x = check_read_data(ctx, names[f], &N, &D);
        if (!x) continue;
        CHECK(N == (f ? 272 : 1000) && D == (f ? 2 : 5), "%s is %lld×%lld", names[f], (long long)N, (long long)D);
        char spec[512] = "gaussian(lengthscale=[";
        for (int64_t d = 0; d < D; d++) {
            double m = 0, v = 0;
            for (int64_t i = 0; i < N; i++) m += x[i * D + d];
            m /= (double)N;
            for (int64_t i = 0; i < N; i++) v += (x[i * D + d] - m) * (x[i * D + d] - m);
            snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "%s%.6g", d ? ", " : "", 0.3 * sqrt(v / (double)(N - 1)));
        }
        strcat(spec, "])");
        double *w = malloc(sizeof(double) * (size_t)N);
        for (int64_t i = 0; i < N; i++) w[i] = 1.0 / (double)N;
        gram_kernel *k = check_kernel(ctx, spec);
        gram_array X = gram_array_f64(x, N, D);
        char what[600];
        snprintf(what, sizeof what, "%s %s", names[f], spec);
        if (k) {
            check_tree(ctx, k, &X, &X, w, 1, 1e-3, 0, what);
            check_tree(ctx, k, &X, &X, w, 1, 1e-8, 0, what);
        }
        gram_kernel_destroy(k);
        k = check_kernel(ctx, f ? "epanechnikov(lengthscale=[0.5, 8])" : "laplacian(lengthscale=[2, 3, 100, 0.5, 10])");
        if (k) check_tree(ctx, k, &X, &X, w, 1, 1e-2, 1e-6, names[f]);
        gram_kernel_destroy(k);
        free(x), free(w);
    }
}

/* rtol = atol = 0 is the exact sum; AUTO follows docs/approx.md; 1 and 2 threads agree. */
static void test_front(gram_context *ctx)
{
    check_rng r = {5};
    const int64_t N = 1100, M = 1000, D = 20;
    double *x = malloc(sizeof(double) * (size_t)(N * D)), *y = malloc(sizeof(double) * (size_t)(M * D));
    double *out = malloc(sizeof(double) * (size_t)M * 2), *ex = malloc(sizeof(double) * (size_t)M * 2),
           *err = malloc(sizeof(double) * (size_t)M * 2), *w = malloc(sizeof(double) * (size_t)N * 2);
    for (int64_t j = 0; j < N * D; j++) x[j] = check_uniform(&r);
    for (int64_t j = 0; j < M * D; j++) y[j] = check_uniform(&r);
    for (int64_t j = 0; j < N * 2; j++) w[j] = check_normal(&r);
    gram_kernel *k = check_kernel(ctx, "gaussian(0.3)"), *lin = check_kernel(ctx, "linear"),
                *narrow = check_kernel(ctx, "gaussian(0.01)");
    if (!k || !lin || !narrow) return;
    gram_approx_options opt;
    gram_approx_info info;
    gram_array O = gram_array_f64(out, M, 2), EX = gram_array_f64(ex, M, 2), E = gram_array_f64(err, M, 2),
               W = gram_array_f64(w, N, 2);

    /* exact */
    for (int m = 0; m <= 3; m++) {
        gram_approx_options_init(&opt);
        opt.method = (gram_approx_method)m;
        gram_array X2 = gram_array_f64(x, N, 2), Y2 = gram_array_f64(y, M, 2);
        CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y2, &X2, &W, &opt, &O, &E, &info), GRAM_OK);
        CHECK_STATUS(gram_kernel_sum(ctx, k, &Y2, &X2, &W, &EX), GRAM_OK);
        CHECK(info.method == GRAM_APPROX_EXACT && info.kernel_evaluations == M * N && info.delta == 0,
              "rtol = atol = 0, method %d: ran %d with %lld evaluations", m, (int)info.method,
              (long long)info.kernel_evaluations);
        CHECK(memcmp(out, ex, sizeof(double) * (size_t)M * 2) == 0, "rtol = atol = 0: not the exact sum bit for bit");
        int zero = 1;
        for (int64_t i = 0; i < M * 2; i++) zero &= err[i] == 0;
        CHECK(zero, "rtol = atol = 0: err is not 0");
    }
    /* AUTO (docs/approx.md, "Choosing a method"): its fixed rules, and whatever its cost model picks
     * elsewhere, a result within the tolerance on every query and column */
    struct { int64_t n, d; double rtol; const gram_kernel *k; int want; } rules[] = {
        {1000, 2, 1e-3, k, GRAM_APPROX_EXACT},   /* 1000·1000 ≤ 2^20 pairs */
        {11000, 2, 1e-3, narrow, -2},            /* a narrow gaussian in 2-D: some approximate method wins
                                                    (grid, tree or fgt, by the cost model) */
        {1100, 2, 1e-3, k, -1},                  /* the cost model's choice */
        {1100, 16, 1e-3, k, -1},
        {1100, 20, 1e-2, k, -1},
        {1100, 20, 1e-3, k, -1},
        {1100, 2, 1e-2, lin, GRAM_APPROX_EXACT}, /* a kernel no method bounds */
    };
    for (int i = 0; i < 7; i++) {
        gram_approx_options_init(&opt);
        opt.rtol = rules[i].rtol;
        opt.delta = 1e-9; /* a randomized choice: a miss among 2000 values at 2e-6 is a false alarm we accept */
        gram_array X = gram_array_f64(x, rules[i].n, rules[i].d), Y = gram_array_f64(y, M, rules[i].d);
        gram_array On = gram_array_f64(out, M, 2), En = gram_array_f64(ex, M, 2);
        info.method = GRAM_APPROX_AUTO;
        /* signed weights, two columns, where X has rows for them (w holds N rows) */
        gram_array Wn = gram_array_f64(w, rules[i].n, 2);
        const gram_array *Wp = rules[i].n <= N ? &Wn : NULL;
        On.cols = En.cols = Wp ? 2 : 1;
        CHECK_STATUS(gram_kernel_sum_approx(ctx, rules[i].k, &Y, &X, Wp, &opt, &On, NULL, &info), GRAM_OK);
        CHECK_STATUS(gram_kernel_sum(ctx, rules[i].k, &Y, &X, Wp, &En), GRAM_OK);
        CHECK(info.method != GRAM_APPROX_AUTO, "auto rule %d: info.method is AUTO", i);
        if (rules[i].want >= 0)
            CHECK((int)info.method == rules[i].want, "auto rule %d: ran %d, want %d", i, (int)info.method, rules[i].want);
        if (rules[i].want == -2)
            CHECK(info.method != GRAM_APPROX_EXACT, "auto rule %d: ran the exact sum", i);
        int64_t bad = 0;
        for (int64_t t = 0; t < M * On.cols; t++) bad += !(fabs(out[t] - ex[t]) <= rules[i].rtol * fabs(ex[t]) * (1 + 1e-12) +
                                                   1e-13 * fabs(ex[t]) + 1e-300);
        CHECK(bad == 0, "auto rule %d (method %d): %lld values outside the tolerance", i, (int)info.method, (long long)bad);
    }
    /* 1 and 2 threads, bit for bit (signed weights, V = 2, D = 3) */
    double *o1 = malloc(sizeof(double) * (size_t)M * 2), *e1 = malloc(sizeof(double) * (size_t)M * 2);
    gram_approx_options_init(&opt);
    opt.method = GRAM_APPROX_TREE, opt.rtol = 1e-4, opt.atol = 1e-3;
    gram_array X3 = gram_array_f64(x, N, 3), Y3 = gram_array_f64(y, M, 3);
    gram_array O1 = gram_array_f64(o1, M, 2), E1 = gram_array_f64(e1, M, 2);
    gram_context_set_threads(ctx, 1);
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y3, &X3, &W, &opt, &O1, &E1, NULL), GRAM_OK);
    gram_context_set_threads(ctx, 2);
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y3, &X3, &W, &opt, &O, &E, NULL), GRAM_OK);
    gram_context_set_threads(ctx, 0);
    CHECK(memcmp(o1, out, sizeof(double) * (size_t)M * 2) == 0 && memcmp(e1, err, sizeof(double) * (size_t)M * 2) == 0,
          "1 and 2 threads differ");
    /* N = 0 and M = 0 */
    gram_array X0 = gram_array_f64(x, 0, 3), W0 = gram_array_f64(w, 0, 2), Y0 = gram_array_f64(y, 0, 3),
               O0 = gram_array_f64(out, 0, 2), E0 = gram_array_f64(err, 0, 2);
    out[0] = err[0] = 7;
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y3, &X0, &W0, &opt, &O, &E, NULL), GRAM_OK);
    CHECK(out[0] == 0 && err[0] == 0 && out[2 * M - 1] == 0, "N = 0: out is not 0");
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y0, &X3, &W, &opt, &O0, &E0, NULL), GRAM_OK);
    free(o1), free(e1);
    gram_kernel_destroy(k), gram_kernel_destroy(lin), gram_kernel_destroy(narrow);
    free(x), free(y), free(out), free(ex), free(err), free(w);
}

typedef struct { int64_t calls, last_done, last_total, stop_at; } progress_log;
static int on_progress(void *user, int64_t done, int64_t total)
{
    progress_log *p = user;
    p->calls++, p->last_done = done, p->last_total = total;
    return p->stop_at > 0 && done >= p->stop_at;
}

/* The progress callback sees the query blocks; a non-zero return cancels. */
static void test_progress(gram_context *ctx)
{
    check_rng r = {9};
    const int64_t N = 3000, M = 2000, D = 2;
    double *x = malloc(sizeof(double) * (size_t)(N * D)), *y = malloc(sizeof(double) * (size_t)(M * D));
    double *out = malloc(sizeof(double) * (size_t)M);
    for (int64_t j = 0; j < N * D; j++) x[j] = check_uniform(&r);
    for (int64_t j = 0; j < M * D; j++) y[j] = check_uniform(&r);
    gram_kernel *k = check_kernel(ctx, "gaussian(0.05)");
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D), O = gram_array_f64(out, M, 1);
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.method = GRAM_APPROX_TREE, opt.rtol = 1e-3;
    progress_log log = {0, 0, 0, 0};
    gram_context_set_progress(ctx, on_progress, &log);
    gram_context_set_threads(ctx, 1); /* only thread 0 calls back: with one, it sees every block */
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, NULL, &opt, &O, NULL, NULL), GRAM_OK);
    /* 2000 queries in blocks of at most 64: at least 32 of them, every one reported */
    CHECK(log.calls == log.last_total && log.last_done == log.last_total && log.last_total >= 32,
          "progress: %lld calls, last %lld of %lld", (long long)log.calls, (long long)log.last_done,
          (long long)log.last_total);
    log = (progress_log){0, 0, 0, 3};
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, NULL, &opt, &O, NULL, NULL), GRAM_ECANCELLED);
    CHECK(contains(gram_context_message(ctx), "cancelled by the progress callback after 3 of"), "cancel: '%s'",
          gram_context_message(ctx));
    gram_context_set_threads(ctx, 0);
    gram_context_set_progress(ctx, NULL, NULL);
    gram_kernel_destroy(k);
    free(x), free(y), free(out);
}

/* Each refusal with its status and a message naming the problem. */
static void test_refusals(gram_context *ctx)
{
    double x[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, out[6], err[6];
    float errf[6];
    gram_array X = gram_array_f64(x, 6, 2), O = gram_array_f64(out, 6, 1), E = gram_array_f64(err, 6, 1);
    gram_array Ef = gram_array_f32(errf, 6, 1), Eb = gram_array_f64(err, 5, 1);
    gram_kernel *k = check_kernel(ctx, "gaussian(1)");
    if (!k) return;
    struct { double rtol, atol, delta; int method; int64_t leaf; const char *msg; } bad[] = {
        {-1e-3, 0, 1e-3, 0, 0, "rtol must be finite and >= 0, got -0.001"},
        {NAN, 0, 1e-3, 0, 0, "rtol must be finite and >= 0, got nan"},
        {INFINITY, 0, 1e-3, 0, 0, "rtol must be finite and >= 0, got inf"},
        {0, -1, 1e-3, 0, 0, "atol must be finite and >= 0, got -1"},
        {0, NAN, 1e-3, 0, 0, "atol must be finite and >= 0"},
        {1e-3, 0, 0, 0, 0, "delta (the failure probability of randomized bounds) must be in (0, 1), got 0"},
        {1e-3, 0, 1, 0, 0, "must be in (0, 1), got 1"},
        {1e-3, 0, NAN, 0, 0, "must be in (0, 1), got nan"},
        {1e-3, 0, 1e-3, 7, 0, "method must be auto, exact, tree, sampling, grid, fgt or features (0 to 6), got 7"},
        {1e-3, 0, 1e-3, -1, 0, "got -1"},
        {1e-3, 0, 1e-3, 2, -5, "leaf_size must be >= 0 (0: the method's default), got -5"},
    };
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        gram_approx_options opt;
        gram_approx_options_init(&opt);
        opt.rtol = bad[i].rtol, opt.atol = bad[i].atol, opt.delta = bad[i].delta;
        opt.method = (gram_approx_method)bad[i].method, opt.leaf_size = bad[i].leaf;
        CHECK_STATUS(gram_kernel_sum_approx(ctx, k, NULL, &X, NULL, &opt, &O, &E, NULL), GRAM_EINVAL);
        CHECK(contains(gram_context_message(ctx), bad[i].msg), "refusal %d: message '%s' lacks '%s'", i,
              gram_context_message(ctx), bad[i].msg);
    }
    /* kernels the tree cannot bound */
    const char *nontree[] = {"linear", "periodic(lengthscale=1, period=2)", "gaussian(1) + white(0.1)",
                             "gaussian(1)*laplacian(2)", "gaussian(1)^2", "neg_l2", "polynomial(degree=2)"};
    for (int i = 0; i < 7; i++) {
        gram_kernel *q = check_kernel(ctx, nontree[i]);
        if (!q) continue;
        gram_approx_options opt;
        gram_approx_options_init(&opt);
        opt.method = GRAM_APPROX_TREE, opt.rtol = 1e-3;
        CHECK_STATUS(gram_kernel_sum_approx(ctx, q, NULL, &X, NULL, &opt, &O, NULL, NULL), GRAM_EINVAL);
        const char *m = gram_context_message(ctx);
        if (!m) m = "";
        CHECK(contains(m, "method tree cannot meet a tolerance for this kernel") && contains(m, "methods that can: exact"),
              "%s: message '%s'", nontree[i], m);
        CHECK(contains(m, i <= 1 || i >= 5 ? "not a non-negative, non-increasing function" : "a single family"),
              "%s: the reason in '%s'", nontree[i], m);
        /* sampling for the kernels without a finite range, and white noise */
        opt.method = GRAM_APPROX_SAMPLING;
        gram_status s = gram_kernel_sum_approx(ctx, q, NULL, &X, NULL, &opt, &O, NULL, NULL);
        if (i == 0 || i == 2 || i == 5 || i == 6) {
            CHECK(s == GRAM_EINVAL && contains(gram_context_message(ctx), "method sampling cannot meet a tolerance") &&
                      contains(gram_context_message(ctx), "methods that can: exact") &&
                      contains(gram_context_message(ctx), i == 2 ? "white noise" : "have none"),
                  "%s with sampling: %d '%s'", nontree[i], (int)s, gram_context_message(ctx));
        } else {
            CHECK(s == GRAM_OK, "%s with sampling: %s", nontree[i], gram_context_message(ctx));
        }
        gram_kernel_destroy(q);
    }
    /* bad arrays: the engine's checks and messages */
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.rtol = 1e-3;
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, NULL, &X, NULL, &opt, &O, &Ef, NULL), GRAM_EINVAL);
    CHECK(contains(gram_context_message(ctx), "err must be float64"), "float32 err: '%s'", gram_context_message(ctx));
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, NULL, &X, NULL, &opt, &O, &Eb, NULL), GRAM_ESHAPE);
    CHECK(contains(gram_context_message(ctx), "err is 5×1 but must be 6×1"), "err shape: '%s'", gram_context_message(ctx));
    x[7] = NAN;
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, NULL, &X, NULL, &opt, &O, NULL, NULL), GRAM_ENONFINITE);
    CHECK(contains(gram_context_message(ctx), "X"), "NaN in X: '%s'", gram_context_message(ctx));
    x[7] = 7;
    gram_array O2 = gram_array_f64(out, 3, 2);
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, NULL, &X, NULL, &opt, &O2, NULL, NULL), GRAM_ESHAPE);
    CHECK(contains(gram_context_message(ctx), "out is 3×2 but must be 6×1"), "out shape: '%s'", gram_context_message(ctx));
    CHECK_STATUS(gram_kernel_sum_approx(ctx, NULL, NULL, &X, NULL, &opt, &O, NULL, NULL), GRAM_EINVAL);
    gram_array Ov = gram_array_f64(x, 6, 1);
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, NULL, &X, NULL, &opt, &Ov, NULL, NULL), GRAM_EINVAL);
    CHECK(contains(gram_context_message(ctx), "overlap"), "out over X: '%s'", gram_context_message(ctx));
    /* opt NULL: the defaults, the exact sum */
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, NULL, &X, NULL, NULL, &O, &E, NULL), GRAM_OK);
    gram_kernel_destroy(k);
}

/* The engine's sums over sub-ranges of a packed X (gram__packed_sum, engine.h), which the tree's
 * exact parts use. Over [0, N) from acc = 0 it is gram_kernel_sum bit for bit: the same packing
 * (plan_build's centre and scaling), the same chunks of GRAM_KC points from 0, the same microkernel
 * and the chunks' partials added in the same order. Over a sub-range [j0, j1) each pair's value is
 * still gram_kernel_sum's, only the chunks start at j0: against gram_kernel_sum with the weights
 * outside the range set to 0 (the same terms, all others exactly 0) it may differ by the rounding
 * of a sum in another order, 2·n·ε·Σ|k·w| (n the points summed). Kernels on the fused path
 * (gaussian), the generic one (matern32, laplacian_l1), a scaled one (its program has two ops),
 * float32, V = 1 and 3, N and M not multiples of the panel and the tile. */
static void test_packed(gram_context *ctx)
{
    check_rng r = {4242};
    const int64_t N = 1000, M = 13, D = 5;
    double *x = malloc(sizeof(double) * (size_t)(N * D)), *y = malloc(sizeof(double) * (size_t)(M * D));
    float *xf = malloc(sizeof(float) * (size_t)(N * D)), *yf = malloc(sizeof(float) * (size_t)(M * D));
    double *w = malloc(sizeof(double) * (size_t)(N * 3)), *wm = malloc(sizeof(double) * (size_t)(N * 3));
    double *ex = malloc(sizeof(double) * (size_t)(M * 3)), *acc = malloc(sizeof(double) * (size_t)(M * 3));
    double *sa = malloc(sizeof(double) * (size_t)(M * 3));
    for (int64_t j = 0; j < N * D; j++) x[j] = 3.0 + check_normal(&r), xf[j] = (float)x[j];
    for (int64_t j = 0; j < M * D; j++) y[j] = 3.0 + check_normal(&r), yf[j] = (float)y[j];
    for (int64_t j = 0; j < N * 3; j++) w[j] = check_uniform(&r) - 0.3;
    static const char *specs[] = {"gaussian(0.8)", "matern32(0.7)", "2.5*gaussian(0.8)", "laplacian_l1(lengthscale=[1, 2, 3, 4, 5])"};
    static const int64_t ranges[][2] = {{0, 1000}, {0, 16}, {16, 1000}, {256, 512}, {48, 1000}, {992, 1000}, {0, 272}, {512, 1000}};
    for (int si = 0; si < 4; si++) {
        gram_kernel *k = check_kernel(ctx, specs[si]);
        for (int f32 = 0; f32 < 2 && k; f32++)
            for (int64_t V = 1; V <= 3; V += 2) {
                const gram_array X = f32 ? gram_array_f32(xf, N, D) : gram_array_f64(x, N, D);
                const gram_array Y = f32 ? gram_array_f32(yf, M, D) : gram_array_f64(y, M, D);
                const gram_array W = gram_array_f64(w, N, V);
                gram__packed pk;
                if (gram__packed_create(&pk, ctx, k, &Y, &X, &W)) {
                    CHECK(0, "%s: gram__packed_create: %s", specs[si], gram_context_message(ctx));
                    continue;
                }
                void *scratch = aligned_alloc(64, (pk.scratch + 63) / 64 * 64);
                for (int ri = 0; ri < 8; ri++) {
                    const int64_t j0 = ranges[ri][0], j1 = ranges[ri][1];
                    for (int64_t j = 0; j < N * V; j++) wm[j] = j / V >= j0 && j / V < j1 ? w[j] : 0.0;
                    for (int64_t j = 0; j < N * V; j++) wm[j] = fabs(wm[j]);
                    gram_array WM = gram_array_f64(wm, N, V), EX = gram_array_f64(ex, M, V), SA = gram_array_f64(sa, M, V);
                    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &WM, &SA), GRAM_OK);
                    for (int64_t j = 0; j < N * V; j++) wm[j] = j / V >= j0 && j / V < j1 ? w[j] : 0.0;
                    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &WM, &EX), GRAM_OK);
                    /* from a non-zero acc: the sums are added to it (rows 2..M: r0 > 0) */
                    for (int64_t i = 0; i < M * V; i++) acc[i] = i % 2 ? 1.0 : 0.0;
                    gram__packed_sum(&pk, 0, 2, j0, j1, scratch, acc);
                    gram__packed_sum(&pk, 2, M, j0, j1, scratch, acc + 2 * V);
                    long bad = 0;
                    for (int64_t i = 0; i < M * V; i++) {
                        const double got = acc[i] - (i % 2 ? 1.0 : 0.0);
                        const double eps = f32 ? FLT_EPSILON : DBL_EPSILON;
                        /* odd values started at 1: their sum's rounding is an ulp of 1 + sum */
                        const double allow = 2.0 * (double)(j1 - j0 + 2) * eps * sa[i] + (i % 2 ? 2.0 * eps * acc[i] : 0.0);
                        if (j0 == 0 && j1 == N && !(i % 2) ? got != ex[i] : !(fabs(got - ex[i]) <= allow)) bad++;
                    }
                    CHECK(bad == 0, "%s %s V=%lld [%lld, %lld): %ld of %lld values differ from gram_kernel_sum's",
                          specs[si], f32 ? "float32" : "float64", (long long)V, (long long)j0, (long long)j1, bad,
                          (long long)(M * V));
                }
                /* ranges compose: [0, 512) then [512, N) is the whole within the rounding */
                for (int64_t i = 0; i < M * V; i++) acc[i] = 0.0;
                gram__packed_sum(&pk, 0, M, 0, 512, scratch, acc);
                gram__packed_sum(&pk, 0, M, 512, N, scratch, acc);
                for (int64_t j = 0; j < N * V; j++) wm[j] = fabs(w[j]);
                gram_array WA = gram_array_f64(wm, N, V), EX = gram_array_f64(ex, M, V), SA = gram_array_f64(sa, M, V);
                CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &W, &EX), GRAM_OK);
                CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &WA, &SA), GRAM_OK);
                long bad = 0;
                for (int64_t i = 0; i < M * V; i++)
                    bad += !(fabs(acc[i] - ex[i]) <= 2.0 * (double)N * (f32 ? FLT_EPSILON : DBL_EPSILON) * sa[i]);
                CHECK(bad == 0, "%s: [0, 512) + [512, N) differs from [0, N) in %ld values", specs[si], bad);
                free(scratch);
                gram__packed_free(&pk);
            }
        gram_kernel_destroy(k);
    }
    free(x), free(y), free(xf), free(yf), free(w), free(wm), free(ex), free(acc), free(sa);
}

/* Eight dimensions, 32 clusters (sd 0.3), a KDE-sized bandwidth (the flights case in
 * miniature): the walk's tolerance comes from the exact sums found so far, so the tree prunes
 * where box bounds alone give it nothing (last session's tree, whose tolerance came from box
 * bounds alone, summed 99% of these pairs; now 22%). The result is bit-identical for 1 and 2
 * threads, err included, and for AUTO (the pilot's blocks kept) and the forced tree. */
static void test_prunes_8d(gram_context *ctx)
{
    check_rng r = {808};
    const int64_t N = 8000, M = 2000, D = 8;
    double *x = malloc(sizeof(double) * (size_t)(N * D)), *y = malloc(sizeof(double) * (size_t)(M * D));
    double *w = malloc(sizeof(double) * (size_t)N), c[32 * 8];
    for (int i = 0; i < 32 * 8; i++) c[i] = check_normal(&r);
    for (int64_t i = 0; i < N + M; i++) {
        double *p = i < N ? x + i * D : y + (i - N) * D;
        const int64_t ci = check_int(&r, 0, 31);
        for (int64_t d = 0; d < D; d++) p[d] = c[ci * D + d] + 0.3 * check_normal(&r);
    }
    for (int64_t j = 0; j < N; j++) w[j] = 1.0 / (double)N;
    gram_kernel *k = check_kernel(ctx, "gaussian(0.1)");
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
    if (k) {
        const int64_t ev = check_tree(ctx, k, &Y, &X, w, 1, 1e-3, 0, "pruning, clustered D=8");
        CHECK(ev > 0 && ev < M * N / 3, "the tree evaluated %lld of %lld pairs (want < 1/3)", (long long)ev,
              (long long)(M * N));
        printf("prune: 32 clusters, D=8, gaussian(0.1), rtol 1e-3: %lld of %lld pairs (%.4f)\n", (long long)ev,
               (long long)(M * N), (double)ev / (double)(M * N));
        double *o1 = malloc(sizeof(double) * (size_t)M), *o2 = malloc(sizeof(double) * (size_t)M);
        double *e1 = malloc(sizeof(double) * (size_t)M), *e2 = malloc(sizeof(double) * (size_t)M);
        gram_array O1 = gram_array_f64(o1, M, 1), O2 = gram_array_f64(o2, M, 1), E1 = gram_array_f64(e1, M, 1),
                   E2 = gram_array_f64(e2, M, 1), Wa = gram_array_f64(w, N, 1);
        gram_approx_options opt;
        gram_approx_options_init(&opt);
        opt.method = GRAM_APPROX_TREE, opt.rtol = 1e-3;
        gram_context_set_threads(ctx, 1);
        CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, &Wa, &opt, &O1, &E1, NULL), GRAM_OK);
        gram_context_set_threads(ctx, 2);
        CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, &Wa, &opt, &O2, &E2, NULL), GRAM_OK);
        CHECK(memcmp(o1, o2, sizeof(double) * (size_t)M) == 0 && memcmp(e1, e2, sizeof(double) * (size_t)M) == 0,
              "D=8: 1 and 2 threads differ");
        gram_approx_info info;
        opt.method = GRAM_APPROX_AUTO;
        CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, &Wa, &opt, &O2, &E2, &info), GRAM_OK);
        CHECK(info.method == GRAM_APPROX_TREE && memcmp(o1, o2, sizeof(double) * (size_t)M) == 0 &&
                  memcmp(e1, e2, sizeof(double) * (size_t)M) == 0,
              "D=8: AUTO (method %d) differs from the tree", (int)info.method);
        free(o1), free(o2), free(e1), free(e2);
    }
    gram_kernel_destroy(k);
    free(x), free(y), free(w);

    /* X's tree is built with OpenMP tasks from 16384 points: the same tree, so the same bits, for 1
     * and 2 threads (D = 3, N = 40000, M = 500) */
    const int64_t N2 = 40000, M2 = 500, D2 = 3;
    x = malloc(sizeof(double) * (size_t)(N2 * D2)), y = malloc(sizeof(double) * (size_t)(M2 * D2));
    for (int64_t j = 0; j < N2 * D2; j++) x[j] = check_normal(&r);
    for (int64_t j = 0; j < M2 * D2; j++) y[j] = check_normal(&r);
    double *o1 = malloc(sizeof(double) * (size_t)M2), *o2 = malloc(sizeof(double) * (size_t)M2);
    double *e1 = malloc(sizeof(double) * (size_t)M2), *e2 = malloc(sizeof(double) * (size_t)M2);
    k = check_kernel(ctx, "gaussian(0.1)");
    gram_array X2 = gram_array_f64(x, N2, D2), Y2 = gram_array_f64(y, M2, D2), O1 = gram_array_f64(o1, M2, 1),
               O2 = gram_array_f64(o2, M2, 1), E1 = gram_array_f64(e1, M2, 1), E2 = gram_array_f64(e2, M2, 1);
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.method = GRAM_APPROX_TREE, opt.rtol = 1e-4;
    gram_approx_info i1, i2;
    gram_context_set_threads(ctx, 1);
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y2, &X2, NULL, &opt, &O1, &E1, &i1), GRAM_OK);
    gram_context_set_threads(ctx, 2);
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y2, &X2, NULL, &opt, &O2, &E2, &i2), GRAM_OK);
    CHECK(memcmp(o1, o2, sizeof(double) * (size_t)M2) == 0 && memcmp(e1, e2, sizeof(double) * (size_t)M2) == 0 &&
              i1.kernel_evaluations == i2.kernel_evaluations && i1.kernel_evaluations < M2 * N2 / 2,
          "N = 40000: 1 and 2 threads differ (pairs %lld, %lld)", (long long)i1.kernel_evaluations,
          (long long)i2.kernel_evaluations);
    gram_context_set_threads(ctx, 0);
    gram_kernel_destroy(k);
    free(x), free(y), free(o1), free(o2), free(e1), free(e2);
}

int main(void)
{
    gram_context *ctx;
    if (gram_context_create(&ctx)) return 1;
    test_refusals(ctx);
    test_front(ctx);
    test_progress(ctx);
    test_families(ctx);
    test_variants(ctx);
    test_compact_edge(ctx);
    test_far_origin(ctx);
    test_real(ctx);
    test_prunes(ctx);
    test_packed(ctx);
    test_prunes_8d(ctx);
    gram_context_destroy(ctx);
    return check_done();
}
