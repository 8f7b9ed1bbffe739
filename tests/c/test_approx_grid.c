/* The grid method of the approximate sums (src/approx/grid.c; docs/approx.md, "Grid").
 *
 * - The tolerance holds on every query, |out − exact| ≤ atol + rtol·|exact|, and err bounds the
 *   true error, against the exact engine (gram_kernel_sum): D = 1, 2, 3 at rtol 1e-2 … 1e-8 and
 *   with atol, D = 4, 5, 6 on small data, uniform and clustered data, queries inside and outside
 *   the data's box, signed weights, V = 3, ARD lengthscales, a constant scale, float32 data and
 *   out, forced orders, R's faithful and quakes (data/). The comparison allows the engine's own
 *   rounding, 4·N·ε·Σ_j k·|w_j|, which no bound claims to cover (docs/approx.md).
 * - The constants of the bound, numerically: Cramér's |He_n(x)|·e^{−x²/4} ≤ 1.086435·√(n!), the
 *   closed form of the nodal polynomial's largest value on the central interval, and the
 *   interpolation bound against Lagrange interpolation of e^{−t²/2} done here in long double.
 * - The exact fallback (a query far in the tail gets err 0 and costs N pairs); bit-identical
 *   results for 1 and 2 threads; N = 0 and M = 0.
 * - Refusals with their messages: kernels and dimensions the grid cannot bound, an order beyond
 *   32, a grid that would not fit in memory (before allocating).
 */
#include "check.h"
#include "approx/approx.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* Runs the grid (forced, order as given) and checks every value against the engine; returns the
 * pairs it evaluated. err_out (M × V, or NULL) receives the bounds. */
static int64_t check_grid(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                          const double *w, int64_t V, double rtol, double atol, int order, const char *what,
                          double *err_out)
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
    opt.method = GRAM_APPROX_GRID;
    opt.rtol = rtol, opt.atol = atol, opt.order = order;
    gram_approx_info info = {GRAM_APPROX_AUTO, -1, -1};
    gram_status s = gram_kernel_sum_approx(ctx, k, Y, X, &W, &opt, &O, &E, &info);
    CHECK(s == GRAM_OK, "%s: gram_kernel_sum_approx: %s", what, gram_context_message(ctx));
    CHECK_STATUS(gram_kernel_sum(ctx, k, Y, X, &W, &EX), GRAM_OK);
    CHECK_STATUS(gram_kernel_sum(ctx, k, Y, X, &Wa, &SA), GRAM_OK);
    CHECK(s != GRAM_OK || (info.method == GRAM_APPROX_GRID && info.delta == 0 && info.kernel_evaluations >= 0),
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
    CHECK(bad_self == 0, "%s (rtol %g, atol %g): %ld of %lld bounds negative or above the tolerance", what, rtol, atol,
          bad_self, (long long)(M * V));
    if (err_out) memcpy(err_out, err, (size_t)(M * V) * sizeof(double));
    free(wa), free(out), free(err), free(ex), free(sa);
    return info.kernel_evaluations;
}

static void make_points(check_rng *r, double *x, int64_t n, int64_t D, int clustered, const double *centres)
{
    for (int64_t i = 0; i < n; i++) {
        const double *c = centres + (int64_t)(check_uniform(r) * 4) * D;
        for (int64_t d = 0; d < D; d++) x[i * D + d] = clustered ? c[d] + 0.05 * check_normal(r) : check_uniform(r);
    }
}

/* D = 1, 2, 3 over tolerances, data kinds, weights and V; D = 4..6 on small data. */
static void test_dimensions(gram_context *ctx)
{
    static const double tols[][2] = {{1e-2, 0}, {1e-4, 0}, {1e-6, 0}, {1e-8, 0}, {0, 1e-6}, {1e-3, 1e-9}};
    check_rng r = {2026};
    const int64_t N = 3000, M = 600;
    double *x = malloc(sizeof(double) * (size_t)(N * 6)), *y = malloc(sizeof(double) * (size_t)(M * 6));
    double *w = malloc(sizeof(double) * (size_t)(N * 3)), centres[4 * 6];
    int c = 0;
    for (int64_t D = 1; D <= 3; D++)
        for (int ti = 0; ti < 6; ti++, c++) {
            if (D == 3 && tols[ti][0] < 1e-6 && tols[ti][0] > 0) continue; /* a 3-D grid at 1e-8 is the refusal test's */
            const int clustered = c % 2, sign = (c / 2) % 2;
            const int64_t V = (c / 3) % 2 ? 3 : 1;
            for (int j = 0; j < 4 * 6; j++) centres[j] = check_uniform(&r);
            make_points(&r, x, N, D, clustered, centres);
            make_points(&r, y, M, D, clustered, centres);
            /* a few queries outside the box: the grid spans X ∪ Y */
            for (int64_t d = 0; d < D; d++) y[d] = 1.6, y[D + d] = -0.4;
            for (int64_t j = 0; j < N * V; j++) w[j] = sign ? check_normal(&r) : check_uniform(&r);
            const double h = clustered ? 0.04 : 0.1;
            char spec[64], what[160];
            snprintf(spec, sizeof spec, "gaussian(%g)", h);
            gram_kernel *k = check_kernel(ctx, spec);
            if (!k) continue;
            snprintf(what, sizeof what, "%s D=%lld %s %s V=%lld", spec, (long long)D, clustered ? "clustered" : "uniform",
                     sign ? "signed" : "non-negative", (long long)V);
            gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
            const int64_t ev = check_grid(ctx, k, &Y, &X, w, V, tols[ti][0], tols[ti][1], 0, what, NULL);
            /* non-negative weights at a tolerance the grid meets cheaply: most queries by the grid */
            if (!sign && D <= 2 && tols[ti][0] >= 1e-4 && tols[ti][1] == 0)
                CHECK(ev < M * N / 4, "%s rtol %g: %lld pairs evaluated of %lld", what, tols[ti][0], (long long)ev,
                      (long long)(M * N));
            gram_kernel_destroy(k);
        }
    /* D = 3 with enough pairs for the grid to pay: most queries certified by it */
    {
        const int64_t n = 20000, m = 2000, D = 3;
        double *xb = malloc(sizeof(double) * (size_t)(n * D)), *yb = malloc(sizeof(double) * (size_t)(m * D));
        double *wb = malloc(sizeof(double) * (size_t)n);
        for (int64_t j = 0; j < n * D; j++) xb[j] = check_normal(&r);
        for (int64_t j = 0; j < m * D; j++) yb[j] = check_normal(&r);
        for (int64_t j = 0; j < n; j++) wb[j] = 1.0 / (double)n;
        gram_kernel *k = check_kernel(ctx, "gaussian(0.5)");
        gram_array X = gram_array_f64(xb, n, D), Y = gram_array_f64(yb, m, D);
        if (k) {
            const int64_t ev = check_grid(ctx, k, &Y, &X, wb, 1, 1e-3, 0, 0, "gaussian(0.5) D=3 normal", NULL);
            CHECK(ev < m * n / 4, "D=3 normal: %lld pairs evaluated of %lld", (long long)ev, (long long)(m * n));
        }
        gram_kernel_destroy(k);
        free(xb), free(yb), free(wb);
    }
    /* D = 4, 5, 6: small data, a bandwidth near the spread, modest tolerances */
    for (int64_t D = 4; D <= 6; D++) {
        const int64_t n = 400, m = 150;
        for (int64_t j = 0; j < n * D; j++) x[j] = check_uniform(&r);
        for (int64_t j = 0; j < m * D; j++) y[j] = check_uniform(&r);
        for (int64_t j = 0; j < n; j++) w[j] = check_uniform(&r);
        gram_kernel *k = check_kernel(ctx, "gaussian(0.8)");
        char what[64];
        snprintf(what, sizeof what, "gaussian(0.8) D=%lld", (long long)D);
        gram_array X = gram_array_f64(x, n, D), Y = gram_array_f64(y, m, D);
        if (k) check_grid(ctx, k, &Y, &X, w, 1, D == 4 ? 1e-3 : 1e-2, 0, 0, what, NULL);
        gram_kernel_destroy(k);
    }
    free(x), free(y), free(w);
}

/* ARD lengthscales and a constant scale; forced orders; float32 data and out; Y = X. */
static void test_variants(gram_context *ctx)
{
    check_rng r = {7};
    const int64_t N = 2000, M = 500, D = 2;
    double *x = malloc(sizeof(double) * (size_t)(N * D)), *y = malloc(sizeof(double) * (size_t)(M * D));
    double *w = malloc(sizeof(double) * (size_t)N);
    for (int64_t j = 0; j < N * D; j++) x[j] = check_normal(&r);
    for (int64_t j = 0; j < M * D; j++) y[j] = check_normal(&r);
    for (int64_t j = 0; j < N; j++) w[j] = 1.0 / (double)N;
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D);
    gram_kernel *k = check_kernel(ctx, "2.5*gaussian(lengthscale=[0.15, 0.4])");
    if (k) {
        check_grid(ctx, k, &Y, &X, w, 1, 1e-5, 0, 0, "2.5*gaussian ARD", NULL);
        check_grid(ctx, k, &X, &X, w, 1, 1e-3, 0, 0, "2.5*gaussian ARD, Y = X", NULL);
        static const int orders[] = {1, 2, 3, 5, 8, 13};
        for (int o = 0; o < 6; o++) {
            char what[64];
            snprintf(what, sizeof what, "ARD, order %d", orders[o]);
            check_grid(ctx, k, &Y, &X, w, 1, 1e-4, 0, orders[o], what, NULL);
        }
    }
    gram_kernel_destroy(k);

    /* float32 X, Y and out: err covers out's rounding; the reference sums the same float32 values */
    float *xf = malloc(sizeof(float) * (size_t)(N * D)), *yf = malloc(sizeof(float) * (size_t)(M * D));
    float *of = malloc(sizeof(float) * (size_t)M);
    double *err = malloc(sizeof(double) * (size_t)M), *ex = malloc(sizeof(double) * (size_t)M);
    double *xd = malloc(sizeof(double) * (size_t)(N * D)), *yd = malloc(sizeof(double) * (size_t)(M * D));
    for (int64_t j = 0; j < N * D; j++) xf[j] = (float)x[j], xd[j] = xf[j];
    for (int64_t j = 0; j < M * D; j++) yf[j] = (float)y[j], yd[j] = yf[j];
    gram_kernel *g = check_kernel(ctx, "gaussian(0.2)");
    if (g) {
        gram_array XF = gram_array_f32(xf, N, D), YF = gram_array_f32(yf, M, D), OF = gram_array_f32(of, M, 1);
        gram_array E = gram_array_f64(err, M, 1), W = gram_array_f64(w, N, 1), EX = gram_array_f64(ex, M, 1);
        gram_array XD = gram_array_f64(xd, N, D), YD = gram_array_f64(yd, M, D);
        gram_approx_options opt;
        gram_approx_options_init(&opt);
        opt.method = GRAM_APPROX_GRID, opt.rtol = 1e-5;
        CHECK_STATUS(gram_kernel_sum_approx(ctx, g, &YF, &XF, &W, &opt, &OF, &E, NULL), GRAM_OK);
        CHECK_STATUS(gram_kernel_sum(ctx, g, &YD, &XD, &W, &EX), GRAM_OK); /* the float32 values, summed in double */
        long bad = 0;
        for (int64_t i = 0; i < M; i++) {
            const double d = fabs((double)of[i] - ex[i]);
            /* err 0: summed exactly by the engine, which computes float32 data in float32 */
            const double slack = err[i] == 0 ? 1e-5 * ex[i] : 1e-13 * ex[i];
            if (!(d <= err[i] + slack && err[i] <= 1e-5 * ex[i] * (1 + 1e-9))) bad++;
        }
        CHECK(bad == 0, "float32: %ld of %lld values off their bound or tolerance", bad, (long long)M);
    }
    gram_kernel_destroy(g);
    free(x), free(y), free(w), free(xf), free(yf), free(of), free(err), free(ex), free(xd), free(yd);
}

/* R's faithful (272 × 2) and quakes (1000 × 5; lat, long, depth): real data, each column in its
 * own lengthscale (ARD), the KDE's weights 1/N. */
static void test_real(gram_context *ctx)
{
    int64_t n, d;
    double *f = check_read_data(ctx, "faithful.csv", &n, &d);
    if (f) {
        double *w = malloc(sizeof(double) * (size_t)n);
        for (int64_t j = 0; j < n; j++) w[j] = 1.0 / (double)n;
        gram_array X = gram_array_f64(f, n, d);
        gram_kernel *k = check_kernel(ctx, "gaussian(lengthscale=[0.33, 4.0])");
        for (int t = 0; k && t < 3; t++) {
            const double rt = t == 0 ? 1e-3 : t == 1 ? 1e-6 : 1e-8;
            check_grid(ctx, k, &X, &X, w, 1, rt, 0, 0, "faithful", NULL);
        }
        gram_kernel_destroy(k);
        free(w);
    }
    free(f);
    double *q = check_read_data(ctx, "quakes.csv", &n, &d);
    if (q) {
        double *w = malloc(sizeof(double) * (size_t)n);
        for (int64_t j = 0; j < n; j++) w[j] = 1.0 / (double)n;
        gram_array X = {q, GRAM_FLOAT64, n, 3, d, 1}; /* lat, long, depth: a strided view */
        gram_kernel *k = check_kernel(ctx, "gaussian(lengthscale=[1.0, 1.0, 40.0])");
        if (k) {
            check_grid(ctx, k, &X, &X, w, 1, 1e-3, 0, 0, "quakes lat/long/depth", NULL);
            gram_array X2 = {q, GRAM_FLOAT64, n, 2, d, 1};
            gram_kernel *k2 = check_kernel(ctx, "gaussian(0.5)");
            if (k2) check_grid(ctx, k2, &X2, &X2, w, 1, 1e-6, 1e-9, 0, "quakes lat/long", NULL);
            gram_kernel_destroy(k2);
        }
        gram_kernel_destroy(k);
        free(w);
    }
    free(q);
}

/* A query far in the tail cannot be certified by a bound proportional to Σ|w|: it is summed
 * exactly (err 0), and the pairs evaluated say so. */
static void test_fallback(gram_context *ctx)
{
    check_rng r = {99};
    const int64_t N = 4000, M = 64;
    double *x = malloc(sizeof(double) * (size_t)N), *y = malloc(sizeof(double) * (size_t)M);
    double *w = malloc(sizeof(double) * (size_t)N), *err = malloc(sizeof(double) * (size_t)M);
    for (int64_t j = 0; j < N; j++) x[j] = check_normal(&r), w[j] = 1.0;
    for (int64_t i = 0; i < M; i++) y[i] = 0.5 * check_normal(&r);
    y[M / 2] = 6.0; /* ~12 lengthscales beyond the data's bulk: its sum is ~1e-9 of the others' */
    gram_kernel *k = check_kernel(ctx, "gaussian(0.5)");
    gram_array X = gram_array_f64(x, N, 1), Y = gram_array_f64(y, M, 1);
    if (k) {
        const int64_t ev = check_grid(ctx, k, &Y, &X, w, 1, 1e-6, 0, 0, "tail query", err);
        CHECK(err[M / 2] == 0.0, "the tail query's bound is %g, want 0 (summed exactly)", err[M / 2]);
        CHECK(ev >= N && ev < M * N / 2, "tail: %lld pairs evaluated (want at least the tail query's %lld, well under "
              "M·N)", (long long)ev, (long long)N);
        int64_t grid_rows = 0;
        for (int64_t i = 0; i < M; i++) grid_rows += err[i] > 0;
        CHECK(grid_rows > M / 2, "tail: only %lld of %lld queries certified by the grid", (long long)grid_rows,
              (long long)M);
    }
    gram_kernel_destroy(k);
    free(x), free(y), free(w), free(err);
}

/* Cramér's inequality |He_n(x)|·e^{−x²/4} ≤ K·√(n!), K = 1.086435 (Abramowitz & Stegun 22.14.17),
 * through the normalised recurrence h_n = He_n·e^{−x²/4}/√(n!); the nodal polynomial's closed form;
 * the interpolation bound against Lagrange interpolation of e^{−t²/2} in long double. */
static void test_constants(void)
{
    double worst = 0.0;
    for (int i = 0; i <= 200000; i++) {
        const long double xx = -50.0L + i * 0.0005L;
        long double h0 = expl(-xx * xx / 4), h1 = xx * h0;
        if (h0 > worst) worst = (double)h0; /* n = 0 */
        for (int n = 1; n <= 60; n++) {
            const long double a = fabsl(h1);
            if (a > worst) worst = (double)a;
            const long double h2 = (xx * h1 - sqrtl((long double)n) * h0) / sqrtl((long double)n + 1);
            h0 = h1, h1 = h2;
        }
    }
    /* the supremum over all n is K; n = 0 reaches 1 at x = 0 */
    CHECK(worst <= 1.086435 && worst >= 1.0, "Cramér's constant: max |He_n|e^{-x²/4}/√n! = %.9g", worst);

    for (int p = 1; p <= 32; p++) {
        long double mx = 0;
        for (int i = 0; i <= 20000; i++) {
            const long double r = p / 2.0L - 1.0L + i / 20000.0L;
            long double w = 1;
            for (int j = 0; j < p; j++) w *= r - j;
            if (fabsl(w) > mx) mx = fabsl(w);
        }
        const double c = gram__approx_grid_nodal_max(p);
        CHECK(c >= (double)mx * (1 - 1e-12) && c <= (double)mx * (1 + 1e-6),
              "nodal max, p = %d: closed form %.17g, sampled %.17Lg", p, c, mx);
    }

    /* interpolate φ(c − t) at t in the central interval from p nodes of spacing h, many offsets c */
    long bad = 0;
    for (int p = 2; p <= 16; p++)
        for (int hi = 0; hi < 4; hi++) {
            const double h = 0.1 + 0.35 * hi, bound = gram__approx_grid_interp_bound(p, h);
            long double worst_e = 0;
            for (int ci = 0; ci < 200; ci++) {
                const long double c = -6.0L + ci * 0.06L;
                for (int ri = 0; ri <= 40; ri++) {
                    const long double r = p / 2.0L - 1.0L + ri / 40.0L, t = r * h;
                    long double s = 0;
                    for (int j = 0; j < p; j++) {
                        long double L = 1;
                        for (int i = 0; i < p; i++)
                            if (i != j) L *= (r - i) / (long double)(j - i);
                        const long double u = c - j * (long double)h;
                        s += L * expl(-u * u / 2);
                    }
                    const long double e = fabsl(s - expl(-(c - t) * (c - t) / 2));
                    if (e > worst_e) worst_e = e;
                }
            }
            if (!((double)worst_e <= bound + 1e-17)) bad++;
            CHECK((double)worst_e <= bound + 1e-17, "interpolation bound p = %d, h = %g: error %.3Lg > bound %.3g", p,
                  h, worst_e, bound);
        }
    (void)bad;
}

/* 1 and 2 threads: the same bits. */
static void test_threads(void)
{
    check_rng r = {5};
    const int64_t N = 20000, M = 3000, D = 2, V = 2;
    double *x = malloc(sizeof(double) * (size_t)(N * D)), *y = malloc(sizeof(double) * (size_t)(M * D));
    double *w = malloc(sizeof(double) * (size_t)(N * V));
    double *o[2] = {malloc(sizeof(double) * (size_t)(M * V)), malloc(sizeof(double) * (size_t)(M * V))};
    double *e[2] = {malloc(sizeof(double) * (size_t)(M * V)), malloc(sizeof(double) * (size_t)(M * V))};
    for (int64_t j = 0; j < N * D; j++) x[j] = check_normal(&r);
    for (int64_t j = 0; j < M * D; j++) y[j] = check_normal(&r);
    for (int64_t j = 0; j < N * V; j++) w[j] = check_normal(&r);
    for (int t = 0; t < 2; t++) {
        gram_context *c = NULL;
        gram_context_create(&c);
        gram_context_set_threads(c, t + 1);
        gram_kernel *k = check_kernel(c, "gaussian(0.1)");
        gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, M, D), W = gram_array_f64(w, N, V);
        gram_array O = gram_array_f64(o[t], M, V), E = gram_array_f64(e[t], M, V);
        gram_approx_options opt;
        gram_approx_options_init(&opt);
        opt.method = GRAM_APPROX_GRID, opt.rtol = 1e-4, opt.atol = 1e-7;
        CHECK_STATUS(gram_kernel_sum_approx(c, k, &Y, &X, &W, &opt, &O, &E, NULL), GRAM_OK);
        gram_kernel_destroy(k);
        gram_context_destroy(c);
    }
    CHECK(memcmp(o[0], o[1], sizeof(double) * (size_t)(M * V)) == 0, "out differs between 1 and 2 threads");
    CHECK(memcmp(e[0], e[1], sizeof(double) * (size_t)(M * V)) == 0, "err differs between 1 and 2 threads");
    free(x), free(y), free(w), free(o[0]), free(o[1]), free(e[0]), free(e[1]);
}

static gram_status run(gram_context *ctx, const char *spec, int64_t D, double rtol, int order, double span)
{
    const int64_t n = 50;
    double x[50 * 8], out[50], w[50];
    for (int64_t j = 0; j < n * D; j++) x[j] = span * (double)((j * 7919) % 101) / 100.0;
    for (int64_t j = 0; j < n; j++) w[j] = 1;
    gram_kernel *k = check_kernel(ctx, spec);
    gram_array X = gram_array_f64(x, n, D), O = gram_array_f64(out, n, 1), W = gram_array_f64(w, n, 1);
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.method = GRAM_APPROX_GRID, opt.rtol = rtol, opt.order = order;
    gram_status s = gram_kernel_sum_approx(ctx, k, &X, &X, &W, &opt, &O, NULL, NULL);
    gram_kernel_destroy(k);
    return s;
}

static void test_refusals(gram_context *ctx)
{
    CHECK_STATUS(run(ctx, "laplacian(1)", 2, 1e-3, 0, 1), GRAM_EINVAL);
    CHECK(contains(gram_context_message(ctx), "method grid cannot meet a tolerance for this kernel: the grid's "
                                              "interpolation bound needs a smooth, separable kernel: only a single "
                                              "gaussian") && contains(gram_context_message(ctx), "methods that can: exact"),
          "laplacian: %s", gram_context_message(ctx));
    CHECK_STATUS(run(ctx, "gaussian(1) + gaussian(2)", 2, 1e-3, 0, 1), GRAM_EINVAL);
    CHECK(contains(gram_context_message(ctx), "only a single gaussian"), "sum: %s", gram_context_message(ctx));
    CHECK_STATUS(run(ctx, "gaussian(1)", 7, 1e-3, 0, 1), GRAM_EINVAL);
    CHECK(contains(gram_context_message(ctx), "the grid covers D <= 6"), "D = 7: %s", gram_context_message(ctx));
    CHECK_STATUS(run(ctx, "gaussian(1)", 2, 1e-3, 33, 1), GRAM_EINVAL);
    CHECK(contains(gram_context_message(ctx), "order (interpolation points per dimension) must be <= 32, got 33"),
          "order 33: %s", gram_context_message(ctx));
    /* 1000 lengthscales per axis in 3-D at rtol 1e-8: billions of cells, refused before allocating */
    CHECK_STATUS(run(ctx, "gaussian(0.001)", 3, 1e-8, 0, 1), GRAM_ENOMEM);
    CHECK(contains(gram_context_message(ctx), "method grid: a grid of") &&
              contains(gram_context_message(ctx), "cells") && contains(gram_context_message(ctx), "for D = 3 at rtol 1e-08") &&
              contains(gram_context_message(ctx), "GiB"),
          "memory: %s", gram_context_message(ctx));
    /* a forced order 1 cannot reach 1e-12 of the mass anywhere: refused, naming the accuracy */
    CHECK_STATUS(run(ctx, "gaussian(1)", 1, 1e-12, 1, 1e6), GRAM_ENOMEM);
    CHECK(contains(gram_context_message(ctx), "order 1"), "order 1: %s", gram_context_message(ctx));
    /* the grid itself is fine: a passing call */
    CHECK_STATUS(run(ctx, "gaussian(1)", 2, 1e-3, 0, 1), GRAM_OK);
}

static void test_empty(gram_context *ctx)
{
    double y[4] = {0, 1, 2, 3}, out[2] = {5, 5}, err[2] = {5, 5}, x[2] = {0, 0};
    gram_kernel *k = check_kernel(ctx, "gaussian(1)");
    gram_array Y = gram_array_f64(y, 2, 2), X = gram_array_f64(x, 0, 2), O = gram_array_f64(out, 2, 1),
               E = gram_array_f64(err, 2, 1);
    gram_approx_options opt;
    gram_approx_options_init(&opt);
    opt.method = GRAM_APPROX_GRID, opt.rtol = 1e-3;
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y, &X, NULL, &opt, &O, &E, NULL), GRAM_OK);
    CHECK(out[0] == 0 && out[1] == 0 && err[0] == 0 && err[1] == 0, "N = 0: %g %g %g %g", out[0], out[1], err[0], err[1]);
    gram_array Y0 = gram_array_f64(y, 0, 2), X1 = gram_array_f64(y, 2, 2), O0 = gram_array_f64(out, 0, 1),
               E0 = gram_array_f64(err, 0, 1);
    CHECK_STATUS(gram_kernel_sum_approx(ctx, k, &Y0, &X1, NULL, &opt, &O0, &E0, NULL), GRAM_OK);
    gram_kernel_destroy(k);
}

int main(void)
{
    gram_context *ctx = NULL;
    gram_context_create(&ctx);
    test_constants();
    test_dimensions(ctx);
    test_variants(ctx);
    test_real(ctx);
    test_fallback(ctx);
    test_threads();
    test_refusals(ctx);
    test_empty(ctx);
    gram_context_destroy(ctx);
    return check_done();
}
