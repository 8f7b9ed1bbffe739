/* GP and kernel ridge regression against long-double references: the log marginal likelihood,
 * its gradient (central finite differences for every family and composite), the posterior, the
 * KRR dual coefficients; hyperparameter bounds in specs; the optimiser; failures (not positive
 * definite with the pivot, jitter, bad input); persistence round trips and corrupted files.
 * (The comparisons with scikit-learn are in tests/python/test_python_gp.py / _krr.py.) */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <gram.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gram_context *ctx;

static gram_kernel *parse(const char *spec) { return check_kernel(ctx, spec); }

/* ---- long-double references ---------------------------------------------------------------- */

/* In place Cholesky (lower) of an n×n long double matrix; 0 if not positive definite. */
static int chol_ld(int n, long double *A)
{
    for (int j = 0; j < n; j++) {
        long double d = A[j * n + j];
        for (int p = 0; p < j; p++) d -= A[j * n + p] * A[j * n + p];
        if (!(d > 0)) return 0;
        A[j * n + j] = sqrtl(d);
        for (int i = j + 1; i < n; i++) {
            long double s = A[i * n + j];
            for (int p = 0; p < j; p++) s -= A[i * n + p] * A[j * n + p];
            A[i * n + j] = s / A[j * n + j];
        }
    }
    return 1;
}

/* x ← (L Lᵀ)⁻¹ x */
static void cho_solve_ld(int n, const long double *L, long double *x)
{
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < i; p++) x[i] -= L[i * n + p] * x[p];
        x[i] /= L[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        for (int p = i + 1; p < n; p++) x[i] -= L[p * n + i] * x[p];
        x[i] /= L[i * n + i];
    }
}

static void kmat_ld(const gram_kernel *k, int n, int d, const double *X, const double *noise, long double *K)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double v;
            gram_kernel_eval(ctx, k, d, X + i * d, X + j * d, i == j, &v, NULL);
            K[i * n + j] = v + (i == j ? noise[0] : 0.0);
        }
}

/* LML of targets Y (n×t) by long double algebra on K from gram_kernel_eval. */
static long double lml_ld(const gram_kernel *k, int n, int d, int t, const double *X, const double *Y,
                          double noise)
{
    long double *K = malloc(sizeof(long double) * (size_t)(n * n)), *a = malloc(sizeof(long double) * (size_t)n);
    kmat_ld(k, n, d, X, &noise, K);
    if (!chol_ld(n, K)) {
        free(K);
        free(a);
        return -INFINITY;
    }
    long double lml = 0;
    for (int c = 0; c < t; c++) {
        for (int i = 0; i < n; i++) a[i] = Y[i * t + c];
        cho_solve_ld(n, K, a);
        for (int i = 0; i < n; i++) lml -= 0.5L * Y[i * t + c] * a[i];
        for (int i = 0; i < n; i++) lml -= logl(K[i * n + i]);
        lml -= 0.5L * n * logl(2 * 3.14159265358979323846264338327950288L);
    }
    free(K);
    free(a);
    return lml;
}

static gram_gp *fit(const char *spec, int n, int d, int t, const double *X, const double *Y, double noise,
                    int normalize, int optimize)
{
    gram_kernel *k = parse(spec);
    if (!k) return NULL;
    gram_gp_options o;
    gram_gp_options_init(&o);
    o.alpha = &noise;
    o.normalize_y = normalize;
    o.optimize = optimize;
    gram_array Xa = gram_array_f64(X, n, d), Ya = gram_array_f64(Y, n, t);
    gram_gp *gp = NULL;
    gram_status s = gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp);
    CHECK(s == GRAM_OK, "fit '%s': %s", spec, gram_context_message(ctx));
    gram_kernel_destroy(k);
    return gp;
}

static void make_data(check_rng *r, int n, int d, int t, double *X, double *Y)
{
    for (int i = 0; i < n * d; i++) X[i] = 2.0 * check_normal(r);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < t; c++)
            Y[i * t + c] = sin(X[i * d] + c) + 0.5 * (d > 1 ? X[i * d + 1] : 0.0) + 0.1 * check_normal(r) + 3.0;
}

/* ---- bounds --------------------------------------------------------------------------------- */

static void test_bounds(void)
{
    gram_kernel *k = parse("2*rbf(lengthscale=[1, 2], lengthscale_bounds=[0.1, 10]) + white(0.5, noise_bounds=fixed)");
    if (!k) return;
    double lo[4], hi[4], th[4];
    CHECK(gram_kernel_n_hyper(k) == 4, "n_hyper");
    gram_kernel_get_bounds(k, lo, hi);
    gram_kernel_get_hyper(k, th);
    CHECK_CLOSE(lo[0], log(0.1), 1e-15, 0, "ls lower");
    CHECK_CLOSE(hi[1], log(10.0), 1e-15, 0, "ls upper");
    CHECK_CLOSE(lo[2], log(1e-5), 1e-15, 0, "scale default lower");
    CHECK_CLOSE(hi[2], log(1e5), 1e-15, 0, "scale default upper");
    CHECK(lo[3] == th[3] && hi[3] == th[3], "fixed noise bounds = theta");
    CHECK(gram_kernel_hyper_fixed(k, 3) && !gram_kernel_hyper_fixed(k, 0), "fixed flags");
    /* the spec round-trips with its bounds */
    char buf[512];
    gram_kernel_spec(k, buf, sizeof buf);
    CHECK(strstr(buf, "lengthscale_bounds=[0.10000000000000001, 10]") && strstr(buf, "noise_bounds=fixed"),
          "spec keeps bounds: %s", buf);
    gram_kernel *k2 = parse(buf);
    if (k2) {
        char buf2[512];
        gram_kernel_spec(k2, buf2, sizeof buf2);
        CHECK(!strcmp(buf, buf2), "round trip: %s vs %s", buf, buf2);
    }
    gram_kernel_destroy(k2);
    gram_kernel_destroy(k);
    /* as scikit-learn: default bounds stay (1e-5, 1e5) whatever the value, and a value may lie
     * outside its bounds (they only constrain learning) */
    k = parse("rbf(1e-7)");
    if (k) {
        gram_kernel_get_bounds(k, lo, hi);
        CHECK(lo[0] == log(1e-5) && hi[0] == log(1e5), "default bounds kept: [%g, %g]", lo[0], hi[0]);
        gram_kernel_destroy(k);
    }
    const char *outside[] = {"rbf(5, lengthscale_bounds=[6, 7])", "rq(alpha=3, alpha_bounds=[0.1, 1])",
                             "rbf(lengthscale=[1, 20], lengthscale_bounds=[0.5, 10])"};
    for (size_t i = 0; i < sizeof outside / sizeof *outside; i++) gram_kernel_destroy(parse(outside[i]));
    const char *bad[] = {"rbf(lengthscale_bounds=[2, 1])", "rbf(lengthscale_bounds=fixe)",
                         "poly(degree_bounds=fixed)", "linear(sigma0_bounds=[1, 2])",
                         "rbf(lengthscale_bounds=[1, 2], lengthscale_bounds=[1, 2])"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gram_kernel *b = NULL;
        CHECK_STATUS(gram_kernel_parse(ctx, bad[i], &b), GRAM_EPARSE);
        CHECK(b == NULL && strstr(gram_context_message(ctx), "position"), "message for '%s': %s", bad[i],
              gram_context_message(ctx));
    }
    /* an open upper bound, printed and parsed back */
    k = parse("white(0.01, noise_bounds=[1e-05, inf])");
    if (k) {
        gram_kernel_get_bounds(k, lo, hi);
        CHECK(isinf(hi[0]) && hi[0] > 0, "open upper bound");
        gram_kernel_spec(k, buf, sizeof buf);
        CHECK(strstr(buf, "noise_bounds=[1.0000000000000001e-05, inf]") != NULL, "printed: %s", buf);
        gram_kernel *kr = parse(buf);
        gram_kernel_destroy(kr);
        gram_kernel_destroy(k);
    }
    /* a value at its bound, printed and parsed back, stays inside */
    k = parse("rq(lengthscale=2, lengthscale_bounds=[0.3, 2], alpha=0.3, alpha_bounds=[0.3, 7])");
    if (k) {
        gram_kernel_get_bounds(k, lo, hi);
        double t2[2] = {hi[0], lo[1]};
        gram_kernel *kb = NULL;
        gram_kernel_set_hyper(ctx, k, t2, &kb);
        if (kb) {
            gram_kernel_spec(kb, buf, sizeof buf);
            gram_kernel *kc = parse(buf);
            gram_kernel_destroy(kc);
        }
        gram_kernel_destroy(kb);
        gram_kernel_destroy(k);
    }
}

/* ---- likelihood and gradient ---------------------------------------------------------------- */

static const char *SPECS[] = {
    "rbf(0.8)",
    "rbf(lengthscale=[0.7, 1.9])",
    "laplacian(1.3)",
    "matern32(lengthscale=[0.9, 2.2])",
    "matern52(1.1)",
    "rq(lengthscale=1.2, alpha=0.7)",
    "cauchy(1.5)",
    "periodic(lengthscale=1.1, period=2.5)",
    "laplacian_l1(lengthscale=[1.4, 0.8])",
    "linear(sigma0=0.5) + rbf(2)",
    "poly(degree=2, gamma=0.3, coef0=1.5)",
    "constant(2.5)",
    "constant(1.7)*rbf(lengthscale=[1, 2]) + white(0.3)",
    "2.0*matern52(1.5) + 0.5*rq(lengthscale=0.8, alpha=2) + white(0.05)",
    "rbf(3)*periodic(lengthscale=1.2, period=1.7)*1.5 + constant(0.4)",
    "(rbf(1) + laplacian(2))*(matern32(1.5) + constant(0.3))",
    "cosine + white(0.2)",
};

static void test_lml_and_gradient(void)
{
    check_rng r = {11};
    enum { N = 24, T = 2 };
    double X2[N * 2], X1[N], Y[N * T];
    make_data(&r, N, 2, T, X2, Y);
    for (int i = 0; i < N; i++) X1[i] = X2[2 * i];
    for (size_t si = 0; si < sizeof SPECS / sizeof *SPECS; si++) {
        /* the periodic kernel of a Euclidean distance is positive definite in one dimension only */
        int D = strstr(SPECS[si], "periodic") ? 1 : 2;
        const double *X = D == 1 ? X1 : X2;
        for (int t = 1; t <= T; t++) {
            double Yt[N * T];
            for (int i = 0; i < N; i++)
                for (int c = 0; c < t; c++) Yt[i * t + c] = Y[i * T + c];
            double noise = 0.05;
            gram_gp *gp = fit(SPECS[si], N, D, t, X, Yt, noise, 0, 0);
            if (!gp) continue;
            const gram_kernel *k = gram_gp_kernel(gp);
            int64_t P = gram_kernel_n_hyper(k);
            long double want = lml_ld(k, N, D, t, X, Yt, noise);
            double lml, grad[16], th[16];
            CHECK_STATUS(gram_gp_log_marginal_likelihood(ctx, gp, NULL, &lml, grad), GRAM_OK);
            CHECK_CLOSE(lml, want, 1e-11, 1e-11, SPECS[si]);
            CHECK_CLOSE(gram_gp_log_marginal_likelihood_value(gp), want, 1e-11, 1e-11, "fitted value");
            gram_kernel_get_hyper(k, th);
            for (int64_t p = 0; p < P; p++) {
                double h = 1e-5, tp[16], lp, lm;
                memcpy(tp, th, sizeof th);
                tp[p] = th[p] + h;
                gram_gp_log_marginal_likelihood(ctx, gp, tp, &lp, NULL);
                tp[p] = th[p] - h;
                gram_gp_log_marginal_likelihood(ctx, gp, tp, &lm, NULL);
                double fd = (lp - lm) / (2 * h);
                char what[160];
                snprintf(what, sizeof what, "%s t=%d d/d%s", SPECS[si], t, gram_kernel_hyper_name(k, p));
                CHECK_CLOSE(grad[p], fd, 2e-6, 2e-6 * (1 + fabs(lml)) * 1e-2, what);
            }
            gram_gp_destroy(gp);
        }
    }
}

/* The blocked gradient pass against the pair-by-pair analytic derivatives (gram_kernel_eval, libm)
 * weighted by W = ααᵀ - K⁻¹ in long double: wide 1-D data, so the periodic leaf's sin/cos see
 * arguments up to ~100 periods. */
static void test_gradient_reference(void)
{
    enum { N = 40 };
    check_rng r = {77};
    double X[N], Y[N];
    for (int i = 0; i < N; i++) {
        X[i] = 100.0 * check_uniform(&r);
        Y[i] = sin(X[i]) + 0.01 * X[i] + 0.1 * check_normal(&r);
    }
    const char *specs[] = {"rbf(30)*periodic(lengthscale=1.3, period=0.9) + 2*rq(lengthscale=5, alpha=2) + white(0.1)",
                           "constant(0.5)*matern32(3) + matern52(20)*laplacian(40) + white(0.05)"};
    for (int si = 0; si < 2; si++) {
        gram_gp *gp = fit(specs[si], N, 1, 1, X, Y, 1e-6, 0, 0);
        if (!gp) continue;
        const gram_kernel *k = gram_gp_kernel(gp);
        int64_t P = gram_kernel_n_hyper(k);
        double g[16], lml;
        gram_gp_log_marginal_likelihood(ctx, gp, NULL, &lml, g);
        long double K[N * N], Kinv[N * N], a[N], col[N], want[16] = {0};
        double noise = 1e-6;
        kmat_ld(k, N, 1, X, &noise, K);
        chol_ld(N, K);
        for (int i = 0; i < N; i++) a[i] = Y[i];
        cho_solve_ld(N, K, a);
        for (int j = 0; j < N; j++) {
            for (int i = 0; i < N; i++) col[i] = i == j;
            cho_solve_ld(N, K, col);
            for (int i = 0; i < N; i++) Kinv[i * N + j] = col[i];
        }
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double v, dk[16];
                gram_kernel_eval(ctx, k, 1, X + i, X + j, i == j, &v, dk);
                long double w = a[i] * a[j] - Kinv[i * N + j];
                for (int64_t p = 0; p < P; p++) want[p] += 0.5L * w * dk[p];
            }
        long double scale = 0;
        for (int64_t p = 0; p < P; p++) scale = fabsl(want[p]) > scale ? fabsl(want[p]) : scale;
        for (int64_t p = 0; p < P; p++) {
            char what[128];
            snprintf(what, sizeof what, "blocked gradient %s", gram_kernel_hyper_name(k, p));
            CHECK_CLOSE(g[p], want[p], 1e-9, 1e-11 * scale, what);
        }
        gram_gp_destroy(gp);
    }
}

/* ---- posterior ------------------------------------------------------------------------------ */

static void test_posterior(void)
{
    check_rng r = {5};
    enum { N = 30, D = 2, M = 9 };
    double X[N * D], Y[N], Q[M * D];
    make_data(&r, N, D, 1, X, Y);
    for (int i = 0; i < M * D; i++) Q[i] = 2.0 * check_normal(&r);
    const char *spec = "constant(1.3)*matern52(lengthscale=[1.1, 0.7]) + white(0.02)";
    for (int norm = 0; norm <= 1; norm++) {
        double noise = 1e-3;
        gram_gp *gp = fit(spec, N, D, 1, X, Y, noise, norm, 0);
        if (!gp) continue;
        const gram_kernel *k = gram_gp_kernel(gp);
        /* reference: long double algebra with normalisation done here */
        double ym = 0, ys = 0;
        for (int i = 0; i < N; i++) ym += Y[i] / N;
        for (int i = 0; i < N; i++) ys += (Y[i] - ym) * (Y[i] - ym) / N;
        ys = sqrt(ys);
        if (!norm) ym = 0, ys = 1;
        long double K[N * N], a[N], v[N * M];
        kmat_ld(k, N, D, X, &noise, K);
        chol_ld(N, K);
        for (int i = 0; i < N; i++) a[i] = (Y[i] - ym) / ys;
        cho_solve_ld(N, K, a);
        double mean[M], sd[M], cov[M * M];
        gram_array Qa = gram_array_f64(Q, M, D), Ma = gram_array_f64(mean, M, 1), Sa = gram_array_f64(sd, M, 1),
                   Ca = gram_array_f64(cov, M, M);
        CHECK_STATUS(gram_gp_predict(ctx, gp, &Qa, &Ma, &Sa, 0, &Ca), GRAM_OK);
        for (int q = 0; q < M; q++) {
            long double mu = 0, ks[N];
            for (int j = 0; j < N; j++) {
                double kv;
                gram_kernel_eval(ctx, k, D, Q + q * D, X + j * D, 0, &kv, NULL);
                ks[j] = kv;
                mu += kv * a[j];
            }
            /* v = L⁻¹ k* */
            for (int i = 0; i < N; i++) {
                long double s = ks[i];
                for (int p = 0; p < i; p++) s -= K[i * N + p] * v[p * M + q];
                v[i * M + q] = s / K[i * N + i];
            }
            CHECK_CLOSE(mean[q], mu * ys + ym, 1e-10, 1e-12, "posterior mean");
        }
        for (int q = 0; q < M; q++)
            for (int q2 = 0; q2 < M; q2++) {
                double kqq;
                gram_kernel_eval(ctx, k, D, Q + q * D, Q + q2 * D, q == q2, &kqq, NULL);
                long double c = kqq;
                for (int i = 0; i < N; i++) c -= v[i * M + q] * v[i * M + q2];
                CHECK_CLOSE(cov[q * M + q2], c * ys * ys, 1e-9, 1e-12, "posterior cov");
                if (q == q2) CHECK_CLOSE(sd[q], sqrtl(c > 0 ? c : 0) * ys, 1e-9, 1e-12, "posterior std");
            }
        /* samples: reproducible; their mean and covariance approach the posterior's */
        enum { S = 4000 };
        double *smp = malloc(sizeof(double) * M * S), *smp2 = malloc(sizeof(double) * M * S);
        gram_array Sm = gram_array_f64(smp, M, S), Sm2 = gram_array_f64(smp2, M, S);
        CHECK_STATUS(gram_gp_sample(ctx, gp, &Qa, 0, 42, &Sm), GRAM_OK);
        CHECK_STATUS(gram_gp_sample(ctx, gp, &Qa, 0, 42, &Sm2), GRAM_OK);
        CHECK(!memcmp(smp, smp2, sizeof(double) * M * S), "same seed, same samples");
        CHECK_STATUS(gram_gp_sample(ctx, gp, &Qa, 0, 43, &Sm2), GRAM_OK);
        CHECK(memcmp(smp, smp2, sizeof(double) * M * S) != 0, "another seed, other samples");
        for (int q = 0; q < M; q++) {
            double m = 0, var = 0;
            for (int s = 0; s < S; s++) m += smp[q * S + s] / S;
            for (int s = 0; s < S; s++) var += (smp[q * S + s] - m) * (smp[q * S + s] - m) / (S - 1);
            /* 6 standard errors */
            CHECK(fabs(m - mean[q]) <= 6 * sd[q] / sqrt(S) + 1e-12, "sample mean %g vs %g (sd %g)", m, mean[q], sd[q]);
            CHECK(fabs(var - sd[q] * sd[q]) <= 6 * sd[q] * sd[q] * sqrt(2.0 / (S - 1)) + 1e-12,
                  "sample variance %g vs %g", var, sd[q] * sd[q]);
        }
        free(smp);
        free(smp2);
        gram_gp_destroy(gp);
    }
}

/* ---- optimisation --------------------------------------------------------------------------- */

static void test_optimize(void)
{
    check_rng r = {3};
    enum { N = 40, D = 2 };
    double X[N * D], Y[N];
    make_data(&r, N, D, 1, X, Y);
    const char *spec = "constant(1)*rbf(lengthscale=[1, 1], lengthscale_bounds=[0.01, 100]) + white(0.5, noise_bounds=[1e-4, 10])";
    gram_gp *g0 = fit(spec, N, D, 1, X, Y, 1e-10, 1, 0);
    gram_gp *g1 = fit(spec, N, D, 1, X, Y, 1e-10, 1, 1);
    if (!g0 || !g1) return;
    double l0 = gram_gp_log_marginal_likelihood_value(g0), l1 = gram_gp_log_marginal_likelihood_value(g1);
    CHECK(l1 > l0 + 1.0, "optimisation improves the likelihood: %g -> %g", l0, l1);
    CHECK(gram_gp_n_iterations(g1) > 0 && gram_gp_n_evaluations(g1) >= gram_gp_n_iterations(g1), "iteration counts");
    /* stationary inside the bounds: every free gradient entry ~0 or pushing against a bound */
    const gram_kernel *k = gram_gp_kernel(g1);
    int64_t P = gram_kernel_n_hyper(k);
    double th[8], lo[8], hi[8], g[8], lml;
    gram_kernel_get_hyper(k, th);
    gram_kernel_get_bounds(k, lo, hi);
    gram_gp_log_marginal_likelihood(ctx, g1, NULL, &lml, g);
    for (int64_t p = 0; p < P; p++) {
        int at_lo = th[p] <= lo[p] + 1e-8, at_hi = th[p] >= hi[p] - 1e-8;
        CHECK(fabs(g[p]) < 1e-3 || (at_lo && g[p] < 0) || (at_hi && g[p] > 0), "KKT %s: grad %g",
              gram_kernel_hyper_name(k, p), g[p]);
        CHECK(th[p] >= lo[p] - 1e-12 && th[p] <= hi[p] + 1e-12, "inside bounds");
    }
    /* restarts with a seed are reproducible and never worse than the single start */
    gram_kernel *kk = parse(spec);
    gram_gp_options o;
    gram_gp_options_init(&o);
    o.optimize = 1;
    o.normalize_y = 1;
    o.n_restarts = 3;
    o.seed = 7;
    gram_array Xa = gram_array_f64(X, N, D), Ya = gram_array_f64(Y, N, 1);
    gram_gp *g2 = NULL, *g3 = NULL;
    CHECK_STATUS(gram_gp_fit(ctx, kk, &o, &Xa, &Ya, &g2), GRAM_OK);
    CHECK_STATUS(gram_gp_fit(ctx, kk, &o, &Xa, &Ya, &g3), GRAM_OK);
    if (g2 && g3) {
        CHECK(gram_gp_log_marginal_likelihood_value(g2) == gram_gp_log_marginal_likelihood_value(g3), "seeded restarts reproducible");
        CHECK(gram_gp_log_marginal_likelihood_value(g2) >= l1 - 1e-6, "restarts not worse: %g vs %g",
              gram_gp_log_marginal_likelihood_value(g2), l1);
    }
    /* a start outside the bounds is projected onto them first, as SciPy's L-BFGS-B does for
     * scikit-learn: the same search as from the projection itself, bit for bit */
    const char *proj[2] = {"constant(40, value_bounds=[0.1, 10])*rbf(lengthscale=[0.001, 3], "
                           "lengthscale_bounds=[[0.01, 100], [0.01, 100]]) + white(0.5, noise_bounds=[1e-4, 10])",
                           "constant(10, value_bounds=[0.1, 10])*rbf(lengthscale=[0.01, 3], "
                           "lengthscale_bounds=[[0.01, 100], [0.01, 100]]) + white(0.5, noise_bounds=[1e-4, 10])"};
    gram_gp *gp_out = fit(proj[0], N, D, 1, X, Y, 1e-10, 1, 1), *gp_in = fit(proj[1], N, D, 1, X, Y, 1e-10, 1, 1);
    if (gp_out && gp_in) {
        double a[4], b[4];
        gram_kernel_get_hyper(gram_gp_kernel(gp_out), a);
        gram_kernel_get_hyper(gram_gp_kernel(gp_in), b);
        CHECK(!memcmp(a, b, sizeof a) && gram_gp_n_evaluations(gp_out) == gram_gp_n_evaluations(gp_in),
              "projected start: %g %g %g %g vs %g %g %g %g", a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]);
        gram_gp_start_status st = GRAM_GP_START_UNDEFINED;
        int64_t it = -1;
        CHECK(gram_gp_n_starts(gp_out) == 1, "one start");
        CHECK_STATUS(gram_gp_start(gp_out, 0, &st, &it), GRAM_OK);
        CHECK(st == GRAM_GP_START_CONVERGED && it == gram_gp_n_iterations(gp_out), "start record %d %lld", (int)st,
              (long long)it);
        CHECK_STATUS(gram_gp_start(gp_out, 1, &st, &it), GRAM_EINVAL);
    }
    gram_gp_destroy(gp_out);
    gram_gp_destroy(gp_in);
    /* fixed hyperparameters stay where they are */
    gram_kernel *kf = parse("rbf(lengthscale=0.7, lengthscale_bounds=fixed) + white(0.3)");
    o.n_restarts = 0;
    gram_gp *g4 = NULL;
    CHECK_STATUS(gram_gp_fit(ctx, kf, &o, &Xa, &Ya, &g4), GRAM_OK);
    if (g4) {
        double t4[2];
        gram_kernel_get_hyper(gram_gp_kernel(g4), t4);
        CHECK(t4[0] == log(0.7), "fixed lengthscale unchanged");
    }
    gram_gp_destroy(g0);
    gram_gp_destroy(g1);
    gram_gp_destroy(g2);
    gram_gp_destroy(g3);
    gram_gp_destroy(g4);
    gram_kernel_destroy(kk);
    gram_kernel_destroy(kf);
}

/* ---- precomputed matrices ------------------------------------------------------------------- */

/* gram_gp_solve / gram_gp_posterior on K, ∂K from the kernel against the long-double likelihood,
 * central differences of its own likelihood, and the kernel path (gram_gp_fit/_predict). */
static void test_precomputed(void)
{
    check_rng r = {17};
    enum { N = 21, D = 2, T = 2, M = 7, P = 4 };
    double X[N * D], Y[N * T], Q[M * D];
    make_data(&r, N, D, T, X, Y);
    for (int i = 0; i < M * D; i++) Q[i] = 1.5 * check_normal(&r);
    const char *spec = "constant(1.3)*rbf(lengthscale=[1.1, 0.7]) + white(0.02)";
    double noise[N];
    for (int i = 0; i < N; i++) noise[i] = 1e-3 * (1 + i % 3);
    gram_kernel *k = parse(spec);
    if (!k) return;
    CHECK(gram_kernel_n_hyper(k) == P, "P");
    static double K[N * N], dK[N * N * P], L[N * N], Lk[N * N], Ks[M * N], Kss[M * M], kss[M];
    double coef[N * T], lml, grad[P], theta[P];
    gram_array Xa = gram_array_f64(X, N, D), Ya = gram_array_f64(Y, N, T), Qa = gram_array_f64(Q, M, D);
    gram_array Ka = gram_array_f64(K, N, N), Ga = gram_array_f64(dK, N * N, P), La = gram_array_f64(L, N, N),
               Ca = gram_array_f64(coef, N, T);
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, NULL, &Xa, &Ka, dK), GRAM_OK);
    CHECK_STATUS(gram_gp_solve(ctx, &Ka, N, noise, &Ya, &Ga, &lml, grad, &La, &Ca), GRAM_OK);
    /* the same model by the kernel path */
    gram_gp_options o;
    gram_gp_options_init(&o);
    o.n_alpha = N;
    o.alpha = noise;
    gram_gp *gp = NULL;
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp), GRAM_OK);
    if (!gp) {
        gram_kernel_destroy(k);
        return;
    }
    double lml_k, grad_k[P], coef_k[N * T];
    gram_array Lka = gram_array_f64(Lk, N, N), Cka = gram_array_f64(coef_k, N, T);
    gram_gp_log_marginal_likelihood(ctx, gp, NULL, &lml_k, grad_k);
    gram_gp_get_cholesky(gp, &Lka);
    gram_gp_get_alpha(gp, &Cka);
    /* long double reference for the likelihood (the noise of row 0 for all is not what we used:
     * build it here) */
    long double A[N * N], a[N], want = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) A[i * N + j] = K[i * N + j] + (i == j ? noise[i] : 0.0);
    CHECK(chol_ld(N, A), "reference factor");
    for (int c = 0; c < T; c++) {
        for (int i = 0; i < N; i++) a[i] = Y[i * T + c];
        cho_solve_ld(N, A, a);
        for (int i = 0; i < N; i++) want -= 0.5L * Y[i * T + c] * a[i] + logl(A[i * N + i]);
        want -= 0.5L * N * logl(2 * 3.14159265358979323846264338327950288L);
    }
    CHECK_CLOSE(lml, want, 1e-12, 1e-12, "precomputed lml vs long double");
    CHECK_CLOSE(lml, lml_k, 1e-13, 1e-13, "precomputed lml vs kernel path");
    for (int i = 0; i < N * N; i++) CHECK_CLOSE(L[i], Lk[i], 1e-13, 1e-15, "L");
    for (int i = 0; i < N * T; i++) CHECK_CLOSE(coef[i], coef_k[i], 1e-11, 1e-13, "coef");
    gram_kernel_get_hyper(k, theta);
    for (int p = 0; p < P; p++) {
        CHECK_CLOSE(grad[p], grad_k[p], 1e-10, 1e-12, "grad vs kernel path");
        double tp[P], lp, lm, h = 1e-5;
        memcpy(tp, theta, sizeof tp);
        gram_kernel *kp = NULL, *km = NULL;
        tp[p] = theta[p] + h;
        gram_kernel_set_hyper(ctx, k, tp, &kp);
        tp[p] = theta[p] - h;
        gram_kernel_set_hyper(ctx, k, tp, &km);
        static double Kp[N * N];
        gram_array Kpa = gram_array_f64(Kp, N, N);
        gram_kernel_matrix(ctx, kp, NULL, &Xa, &Kpa);
        gram_gp_solve(ctx, &Kpa, N, noise, &Ya, NULL, &lp, NULL, NULL, NULL);
        gram_kernel_matrix(ctx, km, NULL, &Xa, &Kpa);
        gram_gp_solve(ctx, &Kpa, N, noise, &Ya, NULL, &lm, NULL, NULL, NULL);
        CHECK_CLOSE(grad[p], (lp - lm) / (2 * h), 1e-6, 1e-6, "grad vs central difference");
        gram_kernel_destroy(kp);
        gram_kernel_destroy(km);
    }
    /* the posterior of target 1 (coef column 1) against gram_gp_predict */
    gram_array Ksa = gram_array_f64(Ks, M, N), Kssa = gram_array_f64(Kss, M, M), kssa = gram_array_f64(kss, M, 1);
    gram_kernel_matrix(ctx, k, &Qa, &Xa, &Ksa);
    gram_kernel_matrix(ctx, k, NULL, &Qa, &Kssa);
    gram_kernel_diag(ctx, k, &Qa, &kssa);
    double mean[M * T], sd[M], cov[M * M], mean_k[M * T], sd_k[M * T], cov_k[M * M];
    gram_array Ma = gram_array_f64(mean, M, T), Sa = gram_array_f64(sd, M, 1), Cva = gram_array_f64(cov, M, M);
    gram_array Mka = gram_array_f64(mean_k, M, T), Ska = gram_array_f64(sd_k, M, T), Cvka = gram_array_f64(cov_k, M, M);
    CHECK_STATUS(gram_gp_posterior(ctx, &La, &Ca, &Ksa, &kssa, &Ma, &Sa, NULL), GRAM_OK);
    CHECK_STATUS(gram_gp_posterior(ctx, &La, &Ca, &Ksa, &Kssa, NULL, NULL, &Cva), GRAM_OK);
    CHECK_STATUS(gram_gp_predict(ctx, gp, &Qa, &Mka, &Ska, 1, &Cvka), GRAM_OK);
    for (int i = 0; i < M * T; i++) CHECK_CLOSE(mean[i], mean_k[i], 1e-11, 1e-12, "posterior mean");
    for (int i = 0; i < M; i++) CHECK_CLOSE(sd[i], sd_k[i * T + 1], 1e-10, 1e-12, "posterior std");
    for (int i = 0; i < M * M; i++) CHECK_CLOSE(cov[i], cov_k[i], 1e-10, 1e-12, "posterior cov");
    /* failures: not positive definite, not finite, shapes, both std and cov */
    static double K2[N * N];
    memcpy(K2, K, sizeof K2);
    for (int j = 0; j < N; j++) K2[3 * N + j] = K2[j * N + 3] = K2[2 * N + j]; /* row 3 = row 2 */
    K2[3 * N + 3] = K2[2 * N + 2];
    K2[3 * N + 2] = K2[2 * N + 3] = K2[2 * N + 2];
    gram_array K2a = gram_array_f64(K2, N, N);
    double zero = 0.0, l2 = 7;
    CHECK_STATUS(gram_gp_solve(ctx, &K2a, 1, &zero, &Ya, NULL, &l2, NULL, NULL, NULL), GRAM_ENOTPD);
    CHECK(l2 == 7 && strstr(gram_context_message(ctx), "pivot 3"), "names pivot 3, output untouched: %s",
          gram_context_message(ctx));
    K2[5 * N + 1] = NAN;
    CHECK_STATUS(gram_gp_solve(ctx, &K2a, N, noise, &Ya, NULL, &l2, NULL, NULL, NULL), GRAM_EDOMAIN);
    CHECK(strstr(gram_context_message(ctx), "row 5, column 1") != NULL, "names the entry: %s", gram_context_message(ctx));
    gram_array Yb = gram_array_f64(Y, N - 1, T);
    CHECK_STATUS(gram_gp_solve(ctx, &Ka, 1, noise, &Yb, NULL, &l2, NULL, NULL, NULL), GRAM_ESHAPE);
    CHECK_STATUS(gram_gp_solve(ctx, &Ka, 1, noise, &Ya, NULL, &l2, grad, NULL, NULL), GRAM_EINVAL);
    CHECK_STATUS(gram_gp_solve(ctx, &Ka, 2, noise, &Ya, NULL, &l2, NULL, NULL, NULL), GRAM_ESHAPE);
    gram_array Gb = gram_array_f64(dK, N * N - 1, P);
    CHECK_STATUS(gram_gp_solve(ctx, &Ka, 1, noise, &Ya, &Gb, &l2, grad, NULL, NULL), GRAM_ESHAPE);
    CHECK_STATUS(gram_gp_posterior(ctx, &La, &Ca, &Ksa, &kssa, &Ma, &Sa, &Cva), GRAM_EINVAL);
    L[0] = -1;
    CHECK_STATUS(gram_gp_posterior(ctx, &La, &Ca, &Ksa, NULL, &Ma, NULL, NULL), GRAM_EINVAL);
    gram_gp_destroy(gp);
    gram_kernel_destroy(k);
}

/* ---- failures ------------------------------------------------------------------------------- */

static void test_failures(void)
{
    double X[6] = {0, 0, 1, 1, 0, 0}, Y[3] = {1, 2, 1}; /* rows 0 and 2 coincide */
    gram_kernel *k = parse("rbf(1)");
    gram_gp_options o;
    gram_gp_options_init(&o);
    double zero = 0.0;
    o.alpha = &zero;
    gram_array Xa = gram_array_f64(X, 3, 2), Ya = gram_array_f64(Y, 3, 1);
    gram_gp *gp = NULL;
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp), GRAM_ENOTPD);
    CHECK(gp == NULL && strstr(gram_context_message(ctx), "pivot 2 of 3"), "pivot message: %s", gram_context_message(ctx));
    o.jitter_tries = 8;
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp), GRAM_OK);
    if (gp) {
        CHECK(gram_gp_jitter(gp) > 0 && gram_gp_jitter(gp) < 1e-1, "jitter %g", gram_gp_jitter(gp));
        double lml;
        CHECK_STATUS(gram_gp_log_marginal_likelihood(ctx, gp, NULL, &lml, NULL), GRAM_OK);
        CHECK(isfinite(lml), "finite lml with jitter");
        gram_gp_destroy(gp);
        gp = NULL;
    }
    /* LML at a θ where K is singular: -inf and a zero gradient, as scikit-learn. Three distinct
     * 1-D points, no noise: positive definite at lengthscale 1, all ones (rank 1) at 1e9. */
    o.jitter_tries = 0;
    o.alpha = &zero;
    double X1[3] = {0, 1, 2};
    gram_array X1a = gram_array_f64(X1, 3, 1);
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &X1a, &Ya, &gp), GRAM_OK);
    if (gp) {
        double th = log(1e9), lml = 0, g = 1;
        CHECK_STATUS(gram_gp_log_marginal_likelihood(ctx, gp, &th, &lml, &g), GRAM_OK);
        CHECK(lml == -INFINITY && g == 0.0, "singular K: lml %g, grad %g", lml, g);
        th = 0.0; /* and back at lengthscale 1: finite, equal to the fitted value */
        CHECK_STATUS(gram_gp_log_marginal_likelihood(ctx, gp, &th, &lml, NULL), GRAM_OK);
        CHECK(lml == gram_gp_log_marginal_likelihood_value(gp), "lml %g vs %g", lml,
              gram_gp_log_marginal_likelihood_value(gp));
        gram_gp_destroy(gp);
        gp = NULL;
    }
    o.alpha = NULL;
    /* bad input */
    double Yn[3] = {1, NAN, 2};
    gram_array Yna = gram_array_f64(Yn, 3, 1);
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Yna, &gp), GRAM_ENONFINITE);
    CHECK(strstr(gram_context_message(ctx), "y") != NULL, "names y: %s", gram_context_message(ctx));
    gram_array Y2 = gram_array_f64(Y, 2, 1);
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Y2, &gp), GRAM_ESHAPE);
    gram_array X0 = gram_array_f64(X, 0, 2), Y0 = gram_array_f64(Y, 0, 1);
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &X0, &Y0, &gp), GRAM_ESHAPE);
    double neg = -1;
    o.alpha = &neg;
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp), GRAM_EINVAL);
    o.alpha = NULL;
    o.n_alpha = 2;
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp), GRAM_ESHAPE);
    o.n_alpha = 1;
    gram_kernel *ka = parse("rbf(lengthscale=[1, 2, 3])");
    CHECK_STATUS(gram_gp_fit(ctx, ka, &o, &Xa, &Ya, &gp), GRAM_ESHAPE);
    CHECK(gp == NULL, "no model on failure");
    /* predictions with the wrong dimension */
    double noise = 0.1;
    o.alpha = &noise;
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp), GRAM_OK);
    if (gp) {
        double q[3] = {0, 0, 0}, m[1];
        gram_array Qa = gram_array_f64(q, 1, 3), Ma = gram_array_f64(m, 1, 1);
        CHECK_STATUS(gram_gp_predict(ctx, gp, &Qa, &Ma, NULL, 0, NULL), GRAM_ESHAPE);
        gram_array Qb = gram_array_f64(q, 1, 2), Mb = gram_array_f64(m, 1, 2);
        CHECK_STATUS(gram_gp_predict(ctx, gp, &Qb, &Mb, NULL, 0, NULL), GRAM_ESHAPE);
        q[1] = INFINITY;
        CHECK_STATUS(gram_gp_predict(ctx, gp, &Qb, &Ma, NULL, 0, NULL), GRAM_ENONFINITE);
        gram_gp_destroy(gp);
    }
    /* KRR: singular system */
    gram_krr *kr = NULL;
    double lam0 = 0.0;
    CHECK_STATUS(gram_krr_fit(ctx, k, &Xa, &Ya, NULL, 1, &lam0, &kr), GRAM_ENOTPD);
    CHECK(kr == NULL && strstr(gram_context_message(ctx), "pivot"), "krr pivot: %s", gram_context_message(ctx));
    double lamn = -1;
    CHECK_STATUS(gram_krr_fit(ctx, k, &Xa, &Ya, NULL, 1, &lamn, &kr), GRAM_EINVAL);
    CHECK_STATUS(gram_krr_fit(ctx, k, &Xa, &Yna, NULL, 1, &noise, &kr), GRAM_ENONFINITE);
    gram_kernel_destroy(k);
    gram_kernel_destroy(ka);
}

/* ---- kernel ridge --------------------------------------------------------------------------- */

static void test_krr(void)
{
    check_rng r = {9};
    enum { N = 35, D = 3, T = 2, M = 6 };
    double X[N * D], Y[N * T], w[N], Q[M * D];
    make_data(&r, N, D, T, X, Y);
    for (int i = 0; i < N; i++) w[i] = 0.5 + check_uniform(&r);
    for (int i = 0; i < M * D; i++) Q[i] = check_normal(&r);
    gram_kernel *k = parse("laplacian_l1(0.9) + linear");
    double lam[2] = {0.3, 0.05};
    for (int variant = 0; variant < 3; variant++) {
        int nl = variant == 2 ? 2 : 1;
        const double *sw = variant >= 1 ? w : NULL;
        gram_array Xa = gram_array_f64(X, N, D), Ya = gram_array_f64(Y, N, T), Wa = gram_array_f64(w, N, 1);
        gram_krr *m = NULL;
        CHECK_STATUS(gram_krr_fit(ctx, k, &Xa, &Ya, sw ? &Wa : NULL, nl, lam, &m), GRAM_OK);
        if (!m) continue;
        double dual[N * T], pred[M * T];
        gram_array Da = gram_array_f64(dual, N, T), Pa = gram_array_f64(pred, M, T), Qa = gram_array_f64(Q, M, D);
        CHECK_STATUS(gram_krr_get_dual_coef(m, &Da), GRAM_OK);
        CHECK_STATUS(gram_krr_predict(ctx, m, &Qa, &Pa), GRAM_OK);
        for (int c = 0; c < T; c++) {
            long double A[N * N], z[N];
            double l = lam[nl == 2 ? c : 0];
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++) {
                    double v;
                    gram_kernel_eval(ctx, k, D, X + i * D, X + j * D, i == j, &v, NULL);
                    A[i * N + j] = v + (i == j ? l / (sw ? sw[i] : 1.0) : 0.0);
                }
            chol_ld(N, A);
            for (int i = 0; i < N; i++) z[i] = Y[i * T + c];
            cho_solve_ld(N, A, z);
            for (int i = 0; i < N; i++) CHECK_CLOSE(dual[i * T + c], z[i], 1e-10, 1e-12, "krr dual");
            for (int q = 0; q < M; q++) {
                long double p = 0;
                for (int j = 0; j < N; j++) {
                    double v;
                    gram_kernel_eval(ctx, k, D, Q + q * D, X + j * D, 0, &v, NULL);
                    p += v * z[j];
                }
                CHECK_CLOSE(pred[q * T + c], p, 1e-10, 1e-12, "krr predict");
            }
        }
        /* the precomputed solve gives the same coefficients */
        double K[N * N], dual2[N * T];
        gram_array Ka = gram_array_f64(K, N, N), D2 = gram_array_f64(dual2, N, T);
        gram_kernel_matrix(ctx, k, NULL, &Xa, &Ka);
        CHECK_STATUS(gram_krr_solve(ctx, &Ka, &Ya, sw ? &Wa : NULL, nl, lam, &D2), GRAM_OK);
        for (int i = 0; i < N * T; i++) CHECK_CLOSE(dual2[i], dual[i], 1e-12, 1e-14, "krr_solve");
        /* persistence */
        void *buf = NULL;
        size_t size = 0;
        CHECK_STATUS(gram_krr_to_bytes(ctx, m, &buf, &size), GRAM_OK);
        gram_krr *m2 = NULL;
        CHECK_STATUS(gram_krr_from_bytes(ctx, buf, size, &m2), GRAM_OK);
        if (m2) {
            double pred2[M * T];
            gram_array P2 = gram_array_f64(pred2, M, T);
            gram_krr_predict(ctx, m2, &Qa, &P2);
            CHECK(!memcmp(pred, pred2, sizeof pred), "krr round trip");
        }
        gram_gp *wrong = NULL;
        CHECK_STATUS(gram_gp_from_bytes(ctx, buf, size, &wrong), GRAM_EFORMAT);
        gram_krr_destroy(m2);
        gram_free(buf);
        gram_krr_destroy(m);
    }
    gram_kernel_destroy(k);
}

/* ---- persistence ---------------------------------------------------------------------------- */

static void test_persistence(void)
{
    check_rng r = {21};
    enum { N = 20, D = 2, T = 2, M = 5 };
    double X[N * D], Y[N * T], Q[M * D];
    make_data(&r, N, D, T, X, Y);
    for (int i = 0; i < M * D; i++) Q[i] = check_normal(&r);
    gram_gp *gp = fit("constant(2, value_bounds=[0.1, 10])*rq(lengthscale=1, alpha=2) + white(0.1, noise_bounds=fixed)",
                      N, D, T, X, Y, 1e-8, 1, 1);
    if (!gp) return;
    char dir[] = "/tmp/gram_test_regress_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[128];
    snprintf(path, sizeof path, "%s/model.gram", dir);
    CHECK_STATUS(gram_gp_save(ctx, gp, path), GRAM_OK);
    gram_gp *g2 = NULL;
    CHECK_STATUS(gram_gp_load(ctx, path, &g2), GRAM_OK);
    if (g2) {
        double m1[M * T], s1[M * T], m2[M * T], s2[M * T];
        gram_array Qa = gram_array_f64(Q, M, D);
        gram_array A1 = gram_array_f64(m1, M, T), B1 = gram_array_f64(s1, M, T), A2 = gram_array_f64(m2, M, T),
                   B2 = gram_array_f64(s2, M, T);
        gram_gp_predict(ctx, gp, &Qa, &A1, &B1, 0, NULL);
        gram_gp_predict(ctx, g2, &Qa, &A2, &B2, 0, NULL);
        CHECK(!memcmp(m1, m2, sizeof m1) && !memcmp(s1, s2, sizeof s1), "gp round trip bit for bit");
        CHECK(gram_gp_log_marginal_likelihood_value(g2) == gram_gp_log_marginal_likelihood_value(gp), "lml kept");
        char a[512], b[512];
        gram_kernel_spec(gram_gp_kernel(gp), a, sizeof a);
        gram_kernel_spec(gram_gp_kernel(g2), b, sizeof b);
        CHECK(!strcmp(a, b), "kernel kept: %s / %s", a, b);
        gram_gp_destroy(g2);
        g2 = NULL;
    }
    /* one flipped byte anywhere → a format error, never a crash */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = malloc((size_t)size);
    CHECK(fread(bytes, 1, (size_t)size, f) == (size_t)size, "read back");
    fclose(f);
    for (long pos = 0; pos < size; pos += size / 37 + 1) {
        bytes[pos] ^= 0x20;
        CHECK_STATUS(gram_gp_from_bytes(ctx, bytes, (size_t)size, &g2), GRAM_EFORMAT);
        bytes[pos] ^= 0x20;
    }
    CHECK_STATUS(gram_gp_from_bytes(ctx, bytes, (size_t)size / 2, &g2), GRAM_EFORMAT);
    CHECK(g2 == NULL, "nothing loaded");
    free(bytes);
    gram_krr *wrong = NULL;
    CHECK_STATUS(gram_krr_load(ctx, path, &wrong), GRAM_EFORMAT);
    CHECK(strstr(gram_context_message(ctx), "gp") != NULL, "kind named: %s", gram_context_message(ctx));
    snprintf(path, sizeof path, "%s/missing/model.gram", dir);
    CHECK_STATUS(gram_gp_save(ctx, gp, path), GRAM_EIO);
    snprintf(path, sizeof path, "%s/model.gram", dir);
    unlink(path);
    rmdir(dir);
    gram_gp_destroy(gp);
}

int main(void)
{
    gram_context_create(&ctx);
    test_bounds();
    test_lml_and_gradient();
    test_gradient_reference();
    test_posterior();
    test_optimize();
    test_precomputed();
    test_failures();
    test_krr();
    test_persistence();
    gram_context_destroy(ctx);
    return check_done();
}
