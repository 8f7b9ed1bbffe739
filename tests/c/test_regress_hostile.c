/* GP and kernel ridge regression under hostile input: kernels that overflow for finite data, model
 * files whose values pass the entry checks but are absurd together, queries whose kernel values
 * overflow. Every public call must answer with an error or a finite result: never GRAM_OK with a
 * NaN or an inf, never GRAM_EINTERNAL, never a print from LAPACK. */
#include "check.h"

#include "io/model_file.h"
#include "linalg/linalg.h"

#include <gram.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static gram_context *ctx;

static gram_kernel *parse(const char *spec) { return check_kernel(ctx, spec); }

static int all_finite(const double *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* ---- kernels that overflow for finite inputs ---------------------------------------------------- */

/* |x| ~ 1e155..1e180: x·y overflows in a linear or polynomial kernel. OpenBLAS's dpotrf factors a
 * NaN pivot with info = 0, so the GP used to return GRAM_OK with a NaN likelihood and NaN
 * coefficients, and a model file its own loader refused. */
static void test_overflowing_kernel(void)
{
    const char *specs[] = {"linear", "poly(degree=2)", "linear + rbf(1)", "constant(2)*linear + white(0.1)"};
    const double scales[] = {1e155, 1e160, 1e180};
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++)
        for (size_t xi = 0; xi < sizeof scales / sizeof *scales; xi++) {
            double X[4] = {1, 2, 3, 4}, Y[4] = {1, 2, 0.5, 3};
            for (int i = 0; i < 4; i++) X[i] *= scales[xi];
            gram_kernel *k = parse(specs[si]);
            if (!k) continue;
            gram_array Xa = gram_array_f64(X, 4, 1), Ya = gram_array_f64(Y, 4, 1);
            for (int optimize = 0; optimize < 2; optimize++) {
                gram_gp_options o;
                gram_gp_options_init(&o);
                o.optimize = optimize;
                o.n_restarts = optimize; /* restarts too: none of them may return a NaN model */
                gram_gp *gp = NULL;
                gram_status s = gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp);
                CHECK(s == GRAM_EDOMAIN && gp == NULL, "%s at %g (optimize %d): status %d, lml %g", specs[si],
                      scales[xi], optimize, (int)s, gp ? gram_gp_log_marginal_likelihood_value(gp) : 0.0);
                CHECK(strstr(gram_context_message(ctx), "overflows") != NULL, "message names the overflow: %s",
                      gram_context_message(ctx));
                gram_gp_destroy(gp);
            }
            double lam = 1.0;
            gram_krr *kr = NULL;
            CHECK_STATUS(gram_krr_fit(ctx, k, &Xa, &Ya, NULL, 1, &lam, &kr), GRAM_EDOMAIN);
            CHECK(kr == NULL && strstr(gram_context_message(ctx), "overflows"), "krr: %s", gram_context_message(ctx));
            gram_kernel_destroy(k);
        }
}

/* A model that is fine at its own θ; the likelihood at a θ whose kernel overflows is -inf with a
 * zero gradient (scikit-learn's answer where the matrix cannot be factored), not NaN. */
static void test_lml_overflow_at_theta(void)
{
    double X[4] = {1e150, 2e150, 3e150, 4e150}, Y[4] = {1, 2, 0.5, 3};
    gram_kernel *k = parse("constant(1e-300)*linear(sigma0=0) + white(1)");
    if (!k) return;
    gram_gp_options o;
    gram_gp_options_init(&o);
    gram_array Xa = gram_array_f64(X, 4, 1), Ya = gram_array_f64(Y, 4, 1);
    gram_gp *gp = NULL;
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp), GRAM_OK);
    if (gp) {
        int64_t P = gram_kernel_n_hyper(gram_gp_kernel(gp));
        double th[4], g[4], lml = 0;
        CHECK(P <= 4, "P = %lld", (long long)P);
        gram_kernel_get_hyper(gram_gp_kernel(gp), th);
        CHECK_STATUS(gram_gp_log_marginal_likelihood(ctx, gp, th, &lml, g), GRAM_OK);
        CHECK(isfinite(lml) && all_finite(g, P), "finite at the fitted theta: %g", lml);
        th[0] = log(1e10); /* the constant: 1e10 · 1e300 overflows */
        CHECK_STATUS(gram_gp_log_marginal_likelihood(ctx, gp, th, &lml, g), GRAM_OK);
        CHECK(lml == -INFINITY, "overflowing theta: lml %g", lml);
        for (int64_t p = 0; p < P; p++) CHECK(g[p] == 0.0, "zero gradient %lld: %g", (long long)p, g[p]);
        /* a θ whose exp is no double at all: the same answer (it was an error, which ended a
         * user's optimiser where scikit-learn's goes on) */
        for (int sign = -1; sign <= 1; sign += 2) {
            gram_kernel_get_hyper(gram_gp_kernel(gp), th);
            th[0] = sign * 1000.0;
            g[0] = 1;
            CHECK_STATUS(gram_gp_log_marginal_likelihood(ctx, gp, th, &lml, g), GRAM_OK);
            CHECK(lml == -INFINITY && g[0] == 0.0, "theta %g: lml %g, grad %g", th[0], lml, g[0]);
        }
        th[0] = NAN;
        CHECK_STATUS(gram_gp_log_marginal_likelihood(ctx, gp, th, &lml, g), GRAM_ENONFINITE);
        gram_gp_destroy(gp);
    }
    gram_kernel_destroy(k);
}

/* Queries whose kernel values against the training points overflow: an error naming it. */
static void test_predict_overflow(void)
{
    double X[3] = {1, 2, 3}, Y[3] = {1, -1, 2}, Q[2] = {0.5, 1e308};
    gram_kernel *k = parse("linear + white(0.1)");
    if (!k) return;
    gram_gp_options o;
    gram_gp_options_init(&o);
    gram_array Xa = gram_array_f64(X, 3, 1), Ya = gram_array_f64(Y, 3, 1), Qa = gram_array_f64(Q, 2, 1);
    gram_gp *gp = NULL;
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp), GRAM_OK);
    if (gp) {
        double m[2], sd[2], cov[4], smp[6];
        gram_array Ma = gram_array_f64(m, 2, 1), Sa = gram_array_f64(sd, 2, 1), Ca = gram_array_f64(cov, 2, 2),
                   Oa = gram_array_f64(smp, 2, 3);
        CHECK_STATUS(gram_gp_predict(ctx, gp, &Qa, &Ma, NULL, 0, NULL), GRAM_EDOMAIN);
        CHECK(strstr(gram_context_message(ctx), "mean"), "names the mean: %s", gram_context_message(ctx));
        CHECK_STATUS(gram_gp_predict(ctx, gp, &Qa, NULL, &Sa, 0, NULL), GRAM_EDOMAIN);
        CHECK_STATUS(gram_gp_predict(ctx, gp, &Qa, NULL, NULL, 0, &Ca), GRAM_EDOMAIN);
        CHECK_STATUS(gram_gp_sample(ctx, gp, &Qa, 0, 1, &Oa), GRAM_EDOMAIN);
        gram_array Q1 = gram_array_f64(Q, 1, 1), M1 = gram_array_f64(m, 1, 1), S1 = gram_array_f64(sd, 1, 1);
        CHECK_STATUS(gram_gp_predict(ctx, gp, &Q1, &M1, &S1, 0, NULL), GRAM_OK);
        CHECK(isfinite(m[0]) && isfinite(sd[0]), "the finite query alone: %g %g", m[0], sd[0]);
        gram_gp_destroy(gp);
    }
    double lam = 0.5, out[2];
    gram_krr *kr = NULL;
    CHECK_STATUS(gram_krr_fit(ctx, k, &Xa, &Ya, NULL, 1, &lam, &kr), GRAM_OK);
    if (kr) {
        gram_array Oa = gram_array_f64(out, 2, 1);
        CHECK_STATUS(gram_krr_predict(ctx, kr, &Qa, &Oa), GRAM_EDOMAIN);
        gram_krr_destroy(kr);
    }
    gram_kernel_destroy(k);
}

/* Targets near the top of the float64 range: normalize_y's standard deviation used to overflow
 * (y² at |y| ~ 1e154), leaving y_std = inf and NaN predictions from a GRAM_OK fit; without
 * normalize_y the likelihood overflows, which is an error naming y's scale. */
static void test_huge_targets(void)
{
    double X[6] = {0, 0.2, 0.4, 0.6, 0.8, 1.0}, Y[6] = {1, 2, 3, 1, 2, 3}, Yb[6], mean[6], sd[6], ref[6], ref_sd[6];
    gram_kernel *k = parse("rbf(0.5)");
    if (!k) return;
    /* the model is scale-free with normalize_y: predictions are those of y itself, times f */
    for (int scale = 0; scale < 4; scale++) {
        double f = scale == 0 ? 1.0 : scale == 1 ? 1e300 : scale == 2 ? 1e160 : 1.7e308 / 3;
        for (int i = 0; i < 6; i++) Yb[i] = Y[i] * f;
        gram_gp_options o;
        gram_gp_options_init(&o);
        o.normalize_y = 1;
        gram_array Xa = gram_array_f64(X, 6, 1), Ya = gram_array_f64(Yb, 6, 1), Ma = gram_array_f64(mean, 6, 1),
                   Sa = gram_array_f64(sd, 6, 1);
        gram_gp *gp = NULL;
        CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp), GRAM_OK);
        if (!gp) continue;
        double m, sc;
        gram_gp_target_scaling(gp, 0, &m, &sc);
        CHECK_CLOSE(m, 2 * f, 1e-15, 0, "y mean");
        CHECK_CLOSE(sc, sqrt(2.0 / 3.0) * f, 1e-15, 0, "y std");
        CHECK(isfinite(gram_gp_log_marginal_likelihood_value(gp)), "lml finite");
        CHECK_STATUS(gram_gp_predict(ctx, gp, &Xa, &Ma, &Sa, 0, NULL), GRAM_OK);
        for (int i = 0; i < 6; i++) {
            if (scale == 0) {
                ref[i] = mean[i];
                ref_sd[i] = sd[i];
            }
            CHECK_CLOSE(mean[i], ref[i] * f, 1e-9, 0, "mean scales with y"); /* K is ill-conditioned */
            CHECK_CLOSE(sd[i], ref_sd[i] * f, 1e-9, 0, "std scales with y");
            CHECK(isfinite(sd[i]) && sd[i] >= 0, "std %g", sd[i]);
        }
        /* a model of such targets saves and loads (its checks are scale-free) */
        void *buf = NULL;
        size_t size = 0;
        gram_gp *back = NULL;
        CHECK_STATUS(gram_gp_to_bytes(ctx, gp, &buf, &size), GRAM_OK);
        CHECK_STATUS(gram_gp_from_bytes(ctx, buf, size, &back), GRAM_OK);
        gram_free(buf);
        gram_gp_destroy(back);
        gram_gp_destroy(gp);
        gp = NULL;
        if (scale == 1) { /* the same targets without normalize_y: y^T K^-1 y overflows */
            o.normalize_y = 0;
            CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp), GRAM_EDOMAIN);
            CHECK(gp == NULL && strstr(gram_context_message(ctx), "scale y"), "names y's scale: %s",
                  gram_context_message(ctx));
        }
    }
    gram_kernel_destroy(k);
}

/* ---- absurd model files -------------------------------------------------------------------------- */

enum { N = 5, D = 2 };

/* A genuine model's bytes as a model file, to edit. */
static int genuine(gram__model_file *m, double *Xq)
{
    double X[N * D], Y[N];
    for (int i = 0; i < N; i++) {
        X[2 * i] = 0.7 * i;
        X[2 * i + 1] = sin(1.3 * i);
        Y[i] = cos(X[2 * i]) + X[2 * i + 1];
    }
    for (int i = 0; i < 2 * D; i++) Xq[i] = 0.3 + 0.4 * i;
    gram_kernel *k = parse("constant(2)*rbf(lengthscale=[1, 1.5]) + white(0.01)");
    gram_gp_options o;
    gram_gp_options_init(&o);
    o.normalize_y = 1;
    gram_array Xa = gram_array_f64(X, N, D), Ya = gram_array_f64(Y, N, 1);
    gram_gp *gp = NULL;
    void *buf = NULL;
    size_t size = 0;
    CHECK_STATUS(gram_gp_fit(ctx, k, &o, &Xa, &Ya, &gp), GRAM_OK);
    gram_kernel_destroy(k);
    if (!gp) return 0;
    CHECK_STATUS(gram_gp_to_bytes(ctx, gp, &buf, &size), GRAM_OK);
    gram_gp_destroy(gp);
    gram_status s = gram__model_from_bytes(ctx, "test", buf, size, "gp", m);
    gram_free(buf);
    CHECK(s == GRAM_OK, "reparse: %s", gram_context_message(ctx));
    return s == GRAM_OK;
}

static double *entry(gram__model_file *m, const char *name)
{
    for (int64_t i = 0; i < m->n; i++)
        if (!strcmp(m->entries[i].name, name)) return m->entries[i].f64;
    CHECK(0, "entry %s missing", name);
    return NULL;
}

/* Loads the edited model; what the old loader accepted must now be refused (GRAM_EFORMAT naming
 * `what`), or, when want is GRAM_OK, it loads and predicts finite values. */
static void load_edited(const gram__model_file *m, const double *Xq, gram_status want, const char *what,
                        const char *label)
{
    unsigned char *bytes = NULL;
    size_t size = 0;
    CHECK_STATUS(gram__model_to_bytes(ctx, m, &bytes, &size), GRAM_OK);
    gram_gp *gp = NULL;
    gram_status s = gram_gp_from_bytes(ctx, bytes, size, &gp);
    gram__free(bytes);
    CHECK(s == want, "%s: status %d, want %d (%s)", label, (int)s, (int)want, gram_context_message(ctx));
    if (want != GRAM_OK) {
        CHECK(gp == NULL && strstr(gram_context_message(ctx), what), "%s: message %s", label,
              gram_context_message(ctx));
    } else if (gp) {
        double mean[2], sd[2], smp[4];
        gram_array Qa = gram_array_f64(Xq, 2, D), Ma = gram_array_f64(mean, 2, 1), Sa = gram_array_f64(sd, 2, 1),
                   Oa = gram_array_f64(smp, 2, 2);
        CHECK_STATUS(gram_gp_predict(ctx, gp, &Qa, &Ma, &Sa, 0, NULL), GRAM_OK);
        CHECK(all_finite(mean, 2) && sd[0] > 0 && sd[1] > 0, "%s: predictions %g %g, std %g %g", label, mean[0],
              mean[1], sd[0], sd[1]);
        CHECK_STATUS(gram_gp_sample(ctx, gp, &Qa, 0, 3, &Oa), GRAM_OK);
        CHECK(all_finite(smp, 4), "%s: samples finite", label);
    }
    gram_gp_destroy(gp);
}

static void test_absurd_models(void)
{
    gram__model_file m;
    double Xq[2 * D];
    if (!genuine(&m, Xq)) return;
    double *L = entry(&m, "L"), *al = entry(&m, "dual"), *lml = entry(&m, "log_marginal_likelihood");
    if (!L || !al || !lml) return;
    double L0[N * N], al0[N], lml0 = *lml;
    memcpy(L0, L, sizeof L0);
    memcpy(al0, al, sizeof al0);
    load_edited(&m, Xq, GRAM_OK, "", "unedited");

    /* The review's case: a subnormal pivot under huge entries (std came out 0, sampling failed
     * with GRAM_EINTERNAL). */
    L[3 * N + 3] = 1e-310;
    L[4 * N + 3] = 1e300;
    load_edited(&m, Xq, GRAM_EFORMAT, "Cholesky factor", "subnormal pivot, huge entry");
    memcpy(L, L0, sizeof L0);
    /* A pivot too small for its row but the row's norm kept: the pivot floor. */
    double rest = 0.0;
    for (int j = 0; j < 4; j++) rest += L[4 * N + j] * L[4 * N + j];
    L[4 * N + 0] = sqrt(rest + L[4 * N + 4] * L[4 * N + 4] - 1e-40);
    for (int j = 1; j < 4; j++) L[4 * N + j] = 0.0;
    L[4 * N + 4] = 1e-20;
    load_edited(&m, Xq, GRAM_EFORMAT, "Cholesky factor", "pivot below the floor");
    memcpy(L, L0, sizeof L0);
    /* L scaled: every row's norm disagrees with the kernel's diagonal. */
    for (int i = 0; i < N * N; i++) L[i] *= 3.0;
    load_edited(&m, Xq, GRAM_EFORMAT, "Cholesky factor", "scaled factor");
    memcpy(L, L0, sizeof L0);
    /* Something above the diagonal. */
    L[1] = 0.5;
    load_edited(&m, Xq, GRAM_EFORMAT, "lower triangular", "upper entry");
    memcpy(L, L0, sizeof L0);
    /* Dual coefficients that do not solve the system. */
    al[2] += 0.25;
    load_edited(&m, Xq, GRAM_EFORMAT, "dual coefficients", "edited alpha");
    memcpy(al, al0, sizeof al0);
    al[0] = 1e300;
    load_edited(&m, Xq, GRAM_EFORMAT, "dual coefficients", "huge alpha");
    memcpy(al, al0, sizeof al0);
    /* A likelihood that is not the model's. */
    *lml = lml0 + 1.0;
    load_edited(&m, Xq, GRAM_EFORMAT, "log marginal likelihood", "edited lml");
    *lml = lml0;
    /* A negative jitter. */
    double *jit = entry(&m, "jitter");
    if (jit) {
        *jit = -1e-3;
        load_edited(&m, Xq, GRAM_EFORMAT, "jitter", "negative jitter");
        *jit = 0.0;
    }
    load_edited(&m, Xq, GRAM_OK, "", "restored");
    gram__model_file_free(&m);
}

/* ---- the eigendecomposition under sampling -------------------------------------------------------- */

/* LAPACK's dsyevd prints through xerbla/dlascl on NaN and used to surface as GRAM_EINTERNAL ("a
 * bug in gram"): non-finite input is the data's fault and refused first. */
static void test_eig_nonfinite(void)
{
    double A[9] = {1, 0, 0, 0.5, 2, 0, NAN, 0.1, 3}, w[3];
    CHECK_STATUS(gram__sym_eig(ctx, 3, A, 3, w), GRAM_EDOMAIN);
    double B[9] = {1, 0, 0, INFINITY, 2, 0, 0, 0.1, 3};
    CHECK_STATUS(gram__sym_eig(ctx, 3, B, 3, w), GRAM_EDOMAIN);
    double C[9] = {2, 0, 0, 1, 2, 0, 0, 1, 2};
    CHECK_STATUS(gram__sym_eig(ctx, 3, C, 3, w), GRAM_OK);
    CHECK_CLOSE(w[0], 2 - sqrt(2.0), 1e-14, 0, "eigenvalue 0");
    CHECK_CLOSE(w[2], 2 + sqrt(2.0), 1e-14, 0, "eigenvalue 2");
}

int main(void)
{
    gram_context_create(&ctx);
    test_overflowing_kernel();
    test_lml_overflow_at_theta();
    test_predict_overflow();
    test_huge_targets();
    test_absurd_models();
    test_eig_nonfinite();
    gram_context_destroy(ctx);
    return check_done();
}
