/* Kernel density estimation against references written here in long double: the log-density of
 * every family in both geometries (the reference does its own covariance, Cholesky and
 * normalisers), high-dimensional underflow, leave-one-out identities, normalisation by
 * quadrature, reflection, every bandwidth rule, sampling (reproducibility, moments, KS tests) and
 * bad input. */
#include "check.h"
#include "gram.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef long double ld;
static const ld PI_L = 3.141592653589793238462643383279502884L;

#define MAXD 128

static gram_context *ctx;

/* ---- reference kernels ----------------------------------------------------------------------- */

static const gram_family FAMILIES[] = {GRAM_GAUSSIAN,   GRAM_TOPHAT,   GRAM_EPANECHNIKOV, GRAM_EXPONENTIAL,
                                       GRAM_TRIANGULAR, GRAM_COSINE_WINDOW, GRAM_LAPLACIAN, GRAM_MATERN32,
                                       GRAM_MATERN52,   GRAM_CAUCHY};
#define N_FAMILIES (int)(sizeof FAMILIES / sizeof FAMILIES[0])

static const char *fname(gram_family f)
{
    switch (f) {
    case GRAM_GAUSSIAN: return "gaussian";
    case GRAM_TOPHAT: return "tophat";
    case GRAM_EPANECHNIKOV: return "epanechnikov";
    case GRAM_EXPONENTIAL: return "exponential";
    case GRAM_TRIANGULAR: return "triangular";
    case GRAM_COSINE_WINDOW: return "cosine_window";
    case GRAM_LAPLACIAN: return "laplacian";
    case GRAM_MATERN32: return "matern32";
    case GRAM_MATERN52: return "matern52";
    case GRAM_CAUCHY: return "cauchy";
    default: return "?";
    }
}

static int compact(gram_family f)
{
    return f == GRAM_TOPHAT || f == GRAM_EPANECHNIKOV || f == GRAM_TRIANGULAR || f == GRAM_COSINE_WINDOW;
}

/* The profile k(r) at unit lengthscale. */
static ld ref_k(gram_family f, ld r)
{
    const ld s3 = sqrtl(3.0L), s5 = sqrtl(5.0L);
    switch (f) {
    case GRAM_GAUSSIAN: return expl(-r * r / 2);
    case GRAM_TOPHAT: return r < 1 ? 1 : 0;
    case GRAM_EPANECHNIKOV: return r < 1 ? 1 - r * r : 0;
    case GRAM_EXPONENTIAL:
    case GRAM_LAPLACIAN: return expl(-r);
    case GRAM_TRIANGULAR: return r < 1 ? 1 - r : 0;
    case GRAM_COSINE_WINDOW: return r < 1 ? cosl(PI_L * r / 2) : 0;
    case GRAM_MATERN32: return (1 + s3 * r) * expl(-s3 * r);
    case GRAM_MATERN52: return (1 + s5 * r + 5 * r * r / 3) * expl(-s5 * r);
    case GRAM_CAUCHY: return 1 / (1 + r * r);
    default: return 0;
    }
}

static ld ref_logk(gram_family f, ld r2)
{
    if (f == GRAM_GAUSSIAN) return -r2 / 2;
    if (f == GRAM_EXPONENTIAL || f == GRAM_LAPLACIAN) return -sqrtl(r2);
    ld v = ref_k(f, sqrtl(r2));
    return v > 0 ? logl(v) : -INFINITY;
}

/* Composite Simpson on [a, b] with n (even) intervals of r^{p} k(r). */
static ld simpson_radial(gram_family f, int p, ld a, ld b, int n)
{
    ld hstep = (b - a) / n, s = 0;
    for (int i = 0; i <= n; i++) {
        /* Compact profiles are integrated up to their support's edge, with the left limit there. */
        ld r = a + i * hstep, v = (p == 0 ? 1 : powl(r, p)) * ref_k(f, i == n && compact(f) ? r * (1 - 1e-15L) : r);
        s += v * (i == 0 || i == n ? 1 : (i % 2 ? 4 : 2));
    }
    return s * hstep / 3;
}

/* Support (or practical support) of the radial profile: where r^{D+1} k(r) is negligible. */
static ld radial_cut(gram_family f, int D)
{
    if (compact(f)) return 1;
    if (f == GRAM_GAUSSIAN) return 12 + sqrtl((ld)D) * 2;
    if (f == GRAM_MATERN32) return (80 + 4 * D) / sqrtl(3.0L);
    if (f == GRAM_MATERN52) return (80 + 4 * D) / sqrtl(5.0L);
    return 80 + 4 * D;
}

/* log ∫_{R^D} k(|x|) dx at unit lengthscale, by quadrature of the radial integral (cauchy: π). */
static ld ref_lognorm_uncached(gram_family f, int D);

/* Memoised: the quadrature is the slow part of the reference. */
static ld ref_lognorm(gram_family f, int D)
{
    static ld memo[GRAM_FAMILY_COUNT][MAXD + 1];
    static char have[GRAM_FAMILY_COUNT][MAXD + 1];
    if (D > MAXD) return ref_lognorm_uncached(f, D);
    if (!have[f][D]) memo[f][D] = ref_lognorm_uncached(f, D), have[f][D] = 1;
    return memo[f][D];
}

static ld ref_lognorm_uncached(gram_family f, int D)
{
    if (f == GRAM_CAUCHY) return logl(PI_L);
    ld log_S = logl(2.0L) + 0.5L * D * logl(PI_L) - lgammal(0.5L * D);
    if (f == GRAM_GAUSSIAN) return 0.5L * D * logl(2 * PI_L);
    return log_S + logl(simpson_radial(f, D - 1, 0, radial_cut(f, D), 40000));
}

/* ---- reference KDEs -------------------------------------------------------------------------- */

typedef struct ref_kde {
    gram_family f;
    int N, D;
    const double *X; /* N×D row-major */
    ld *w;           /* normalised */
    int cov;         /* 0 isotropic (h), 1 covariance (factor, mu, L; D ≤ 16) */
    ld h[MAXD];
    ld factor;
    ld mu[16], L[16 * 16];
    ld lognorm;
} ref_kde;

static void ref_init(ref_kde *r, gram_family f, int N, int D, const double *X, const double *w_raw, int cov,
                     const double *h, int nh, double factor)
{
    memset(r, 0, sizeof *r);
    r->f = f, r->N = N, r->D = D, r->X = X, r->cov = cov;
    r->w = malloc(sizeof(ld) * N);
    ld tot = 0;
    for (int i = 0; i < N; i++) tot += w_raw ? w_raw[i] : 1;
    for (int i = 0; i < N; i++) r->w[i] = (w_raw ? w_raw[i] : 1) / tot;
    r->lognorm = ref_lognorm(f, D);
    if (!cov) {
        for (int d = 0; d < D; d++) {
            r->h[d] = h[nh == 1 ? 0 : d];
            r->lognorm += logl(r->h[d]);
        }
        return;
    }
    /* Weighted covariance with the unbiased correction (numpy.cov with aweights, bias=False). */
    ld s2 = 0, S[16 * 16];
    for (int i = 0; i < N; i++) s2 += r->w[i] * r->w[i];
    for (int d = 0; d < D; d++) {
        r->mu[d] = 0;
        for (int i = 0; i < N; i++) r->mu[d] += r->w[i] * X[i * D + d];
    }
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            ld s = 0;
            for (int i = 0; i < N; i++) s += r->w[i] * (X[i * D + a] - r->mu[a]) * (X[i * D + b] - r->mu[b]);
            S[a * D + b] = s / (1 - s2);
        }
    /* Cholesky, long double. */
    for (int j = 0; j < D; j++) {
        ld s = S[j * D + j];
        for (int k = 0; k < j; k++) s -= r->L[j * D + k] * r->L[j * D + k];
        r->L[j * D + j] = sqrtl(s);
        for (int i = j + 1; i < D; i++) {
            ld t = S[i * D + j];
            for (int k = 0; k < j; k++) t -= r->L[i * D + k] * r->L[j * D + k];
            r->L[i * D + j] = t / r->L[j * D + j];
        }
    }
    r->factor = factor;
    r->lognorm += D * logl(r->factor);
    for (int d = 0; d < D; d++) r->lognorm += logl(r->L[d * D + d]);
}

static void ref_free(ref_kde *r) { free(r->w); }

/* The covariance H the reference implies: isotropic diag(h²), covariance factor² L Lᵀ. */
static ld ref_H(const ref_kde *r, int a, int b)
{
    if (!r->cov) return a == b ? r->h[a] * r->h[a] : 0;
    ld s = 0;
    for (int k = 0; k < r->D; k++) s += r->L[a * r->D + k] * r->L[b * r->D + k];
    return r->factor * r->factor * s;
}

/* log f(y), skipping point `skip` (-1: none) and renormalising the weights. */
static ld ref_logpdf(const ref_kde *r, const double *y, int skip)
{
    const int D = r->D;
    ld m = -INFINITY, *lt = malloc(sizeof(ld) * r->N), rest = 0;
    for (int j = 0; j < r->N; j++) {
        lt[j] = -INFINITY;
        if (j == skip) continue;
        rest += r->w[j];
        ld t = 0, z[MAXD];
        for (int d = 0; d < D; d++) z[d] = (ld)y[d] - r->X[j * D + d];
        if (r->cov) {
            for (int i = 0; i < D; i++) {
                ld s = z[i];
                for (int k = 0; k < i; k++) s -= r->L[i * D + k] * z[k];
                z[i] = s / r->L[i * D + i];
            }
            for (int d = 0; d < D; d++) t += (z[d] / r->factor) * (z[d] / r->factor);
        } else {
            for (int d = 0; d < D; d++) t += (z[d] / r->h[d]) * (z[d] / r->h[d]);
        }
        if (r->w[j] > 0) lt[j] = logl(r->w[j]) + ref_logk(r->f, t);
        if (lt[j] > m) m = lt[j];
    }
    ld s = 0;
    if (m > -INFINITY)
        for (int j = 0; j < r->N; j++) s += expl(lt[j] - m);
    free(lt);
    if (m == -INFINITY) return -INFINITY;
    return m + logl(s) - logl(rest) - r->lognorm;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static double *random_data(check_rng *g, int N, int D, double spread)
{
    double *X = malloc(sizeof(double) * (size_t)(N * D + 1));
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) X[i * D + d] = spread * (d + 1) * 0.5 * check_normal(g) + (i % 3 == 0 ? 1.5 : 0) + 0.3 * d;
    return X;
}

static gram_kde *fit(gram_family f, gram_kde_geometry geo, gram_bandwidth_rule rule, const double *bw, int nbw,
                     const double *X, int N, int D, const double *w, gram_status want)
{
    gram_kde_options o;
    gram_kde_options_init(&o);
    o.kernel = f, o.geometry = geo, o.rule = rule, o.bandwidth = bw, o.n_bandwidth = nbw;
    gram_array A = gram_array_f64(X, N, D), W = gram_array_f64(w, N, 1);
    gram_kde *k = NULL;
    gram_status s = gram_kde_fit(ctx, &o, &A, w ? &W : NULL, &k);
    CHECK(s == want, "fit %s: status %d want %d (%s)", fname(f), (int)s, (int)want, gram_context_message(ctx));
    return k;
}

/* Log-density at queries Y (M×D) from gram. */
static void logpdf(const gram_kde *k, const double *Y, int M, int D, double *out)
{
    gram_array A = gram_array_f64(Y, M, D), O = gram_array_f64(out, M, 1);
    gram_status s = gram_kde_logpdf(ctx, k, &A, &O);
    CHECK(s == GRAM_OK, "logpdf: %d %s", (int)s, gram_context_message(ctx));
}

static int close_log(double got, ld want, double tol)
{
    if (want == -INFINITY || got == -INFINITY) return got == -INFINITY && want == -INFINITY;
    return fabsl((ld)got - want) <= tol * (1 + fabsl(want));
}

/* ---- 1. log-density against the reference -------------------------------------------------- */

static void test_logpdf_reference(void)
{
    check_rng g = {11};
    const int dims[] = {1, 2, 3, 7};
    int bad = 0, cases = 0;
    for (int fi = 0; fi < N_FAMILIES; fi++)
        for (int di = 0; di < 4; di++)
            for (int weighted = 0; weighted < 2; weighted++)
                for (int geo = 0; geo < 3; geo++) { /* 0 scalar h, 1 per-dimension h, 2 covariance */
                    gram_family f = FAMILIES[fi];
                    int D = dims[di], N = 40 + 7 * di, M = 25;
                    if (f == GRAM_CAUCHY && D > 1) continue;
                    double *X = random_data(&g, N, D, 1.0), *w = malloc(sizeof(double) * N);
                    for (int i = 0; i < N; i++) w[i] = 0.1 + check_uniform(&g);
                    if (weighted) w[3] = 0.0; /* a zero weight is allowed */
                    /* Compact kernels in 7-D need wide windows to see more than one point. */
                    double base = compact(f) ? 0.6 * D : 0.5;
                    double h[16];
                    for (int d = 0; d < D; d++) h[d] = geo == 1 ? base * (0.6 + 0.3 * d) : base;
                    gram_kde *k = geo == 2 ? fit(f, GRAM_KDE_COVARIANCE, GRAM_BW_FIXED, &base, 1, X, N, D, weighted ? w : NULL, GRAM_OK)
                                           : fit(f, GRAM_KDE_ISOTROPIC, GRAM_BW_FIXED, h, geo == 1 ? D : 1, X, N, D,
                                                 weighted ? w : NULL, GRAM_OK);
                    if (!k) {
                        free(X), free(w);
                        continue;
                    }
                    ref_kde r;
                    ref_init(&r, f, N, D, X, weighted ? w : NULL, geo == 2, h, geo == 1 ? D : 1, base);
                    double *Y = malloc(sizeof(double) * M * D), *out = malloc(sizeof(double) * M), *pdf = malloc(sizeof(double) * M);
                    for (int i = 0; i < M; i++)
                        for (int d = 0; d < D; d++)
                            Y[i * D + d] = i < M - 3 ? X[(i * 5 % N) * D + d] + 0.3 * check_normal(&g) : 10.0 + i;
                    logpdf(k, Y, M, D, out);
                    gram_array A = gram_array_f64(Y, M, D), P = gram_array_f64(pdf, 1, M); /* a 1×M out */
                    CHECK_STATUS(gram_kde_pdf(ctx, k, &A, &P), GRAM_OK);
                    for (int i = 0; i < M; i++) {
                        ld want = ref_logpdf(&r, Y + i * D, -1);
                        cases++;
                        if (!close_log(out[i], want, 1e-11)) {
                            if (bad++ < 10)
                                CHECK(0, "logpdf %s D=%d weighted=%d geo=%d query %d: got %.17g want %.17Lg", fname(f), D,
                                      weighted, geo, i, out[i], want);
                        }
                        double e = exp(out[i]);
                        if (!(fabs(pdf[i] - e) <= 1e-14 * e)) {
                            if (bad++ < 10) CHECK(0, "pdf %s: %.17g vs exp(logpdf) %.17g", fname(f), pdf[i], e);
                        }
                    }
                    /* The bandwidth the KDE reports. */
                    double H[49], hh[7];
                    CHECK_STATUS(gram_kde_bandwidth_matrix(k, H), GRAM_OK);
                    CHECK_STATUS(gram_kde_bandwidth(k, hh), GRAM_OK);
                    for (int a = 0; a < D; a++) {
                        for (int b = 0; b < D; b++) CHECK_CLOSE(H[a * D + b], ref_H(&r, a, b), 1e-12, 1e-15, "bandwidth matrix");
                        CHECK_CLOSE(hh[a], sqrtl(ref_H(&r, a, a)), 1e-12, 0, "bandwidth");
                    }
                    CHECK_CLOSE(gram_kde_factor(k), geo == 2 ? base : h[0], 1e-15, 0, "factor");
                    CHECK(gram_kde_n(k) == N && gram_kde_dim(k) == D, "n/dim");
                    ld s2 = 0;
                    for (int i = 0; i < N; i++) s2 += r.w[i] * r.w[i];
                    CHECK_CLOSE(gram_kde_neff(k), 1 / s2, 1e-12, 0, "neff");
                    ref_free(&r);
                    gram_kde_destroy(k);
                    free(X), free(w), free(Y), free(out), free(pdf);
                }
    CHECK(bad == 0, "logpdf: %d of %d values off", bad, cases);
}

/* float32 evaluation, strided and transposed views. */
static void test_precision_and_views(void)
{
    check_rng g = {12};
    const int N = 300, D = 3, M = 40;
    double *X = random_data(&g, N, D, 1.0);
    double *XT = malloc(sizeof(double) * N * D); /* Fortran order */
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) XT[d * N + i] = X[i * D + d];
    double h = 0.4;
    for (int geo = 0; geo < 2; geo++) {
        gram_kde_options o;
        gram_kde_options_init(&o);
        o.rule = GRAM_BW_FIXED, o.bandwidth = &h, o.n_bandwidth = 1, o.geometry = geo;
        gram_array A = {XT, GRAM_FLOAT64, N, D, 1, N};
        gram_kde *k64 = NULL, *k32 = NULL;
        CHECK_STATUS(gram_kde_fit(ctx, &o, &A, NULL, &k64), GRAM_OK);
        o.precision = GRAM_FLOAT32;
        CHECK_STATUS(gram_kde_fit(ctx, &o, &A, NULL, &k32), GRAM_OK);
        if (!k64 || !k32) continue;
        ref_kde r;
        ref_init(&r, GRAM_GAUSSIAN, N, D, X, NULL, geo, &h, 1, h);
        /* Y as float32, every other row of a bigger array; out as a strided column. */
        float *Y = malloc(sizeof(float) * 2 * M * D);
        double *out = malloc(sizeof(double) * 3 * M), *loo = malloc(sizeof(double) * N);
        for (int i = 0; i < 2 * M * D; i++) Y[i] = (float)(check_normal(&g) + 0.5);
        gram_array Yv = {Y, GRAM_FLOAT32, M, D, 2 * D, 1}, Ov = {out, GRAM_FLOAT64, M, 1, 3, 1};
        for (int prec = 0; prec < 2; prec++) {
            CHECK_STATUS(gram_kde_logpdf(ctx, prec ? k32 : k64, &Yv, &Ov), GRAM_OK);
            for (int i = 0; i < M; i++) {
                double y[3];
                for (int d = 0; d < D; d++) y[d] = Y[2 * i * D + d];
                ld want = ref_logpdf(&r, y, -1);
                CHECK(close_log(out[3 * i], want, prec ? 2e-6 : 1e-12), "geo %d prec %d query %d: %.10g vs %.10Lg", geo, prec, i,
                      out[3 * i], want);
            }
            gram_array Lv = gram_array_f64(loo, N, 1);
            CHECK_STATUS(gram_kde_logpdf_loo(ctx, prec ? k32 : k64, &Lv), GRAM_OK);
            for (int i = 0; i < N; i += 37) {
                ld want = ref_logpdf(&r, X + i * D, i);
                CHECK(close_log(loo[i], want, prec ? 2e-6 : 1e-12), "loo geo %d prec %d row %d: %.10g vs %.10Lg", geo, prec, i,
                      loo[i], want);
            }
        }
        ref_free(&r);
        gram_kde_destroy(k64);
        gram_kde_destroy(k32);
        free(Y), free(out), free(loo);
    }
    free(X), free(XT);
}

/* ---- 2. D = 100, every kernel value underflows ---------------------------------------------- */

static void test_high_dimension(void)
{
    check_rng g = {13};
    const int N = 60, D = 100;
    double *X = random_data(&g, N, D, 1.0), h = 0.01;
    gram_kde *k = fit(GRAM_GAUSSIAN, GRAM_KDE_ISOTROPIC, GRAM_BW_FIXED, &h, 1, X, N, D, NULL, GRAM_OK);
    if (!k) return;
    double y[100], out = NAN, pdf = NAN;
    for (int d = 0; d < D; d++) y[d] = X[7 * D + d] + (d % 2 ? 1 : -1) * 0.002; /* δ² = 100·4e-6 */
    logpdf(k, y, 1, D, &out);
    ld delta2 = 0;
    for (int d = 0; d < D; d++) delta2 += ((ld)y[d] - X[7 * D + d]) * ((ld)y[d] - X[7 * D + d]);
    ld want = logl(1.0L / N) - 0.5L * delta2 / ((ld)h * h) - (0.5L * D * logl(2 * PI_L) + D * logl((ld)h));
    CHECK(isfinite(out), "D=100 logpdf must be finite, got %g", out);
    CHECK_CLOSE(out, want, 1e-12, 0, "D=100 logpdf closed form");
    gram_array A = gram_array_f64(y, 1, D), P = gram_array_f64(&pdf, 1, 1);
    CHECK_STATUS(gram_kde_pdf(ctx, k, &A, &P), GRAM_OK);
    CHECK(pdf == exp(out), "D=100 pdf %g vs exp(logpdf)", pdf);
    /* Far from every point: still finite (about -1e6). */
    for (int d = 0; d < D; d++) y[d] = 3.0;
    logpdf(k, y, 1, D, &out);
    ref_kde r;
    ref_init(&r, GRAM_GAUSSIAN, N, D, X, NULL, 0, &h, 1, 0);
    want = ref_logpdf(&r, y, -1);
    CHECK(isfinite(out) && out < -1e4, "D=100 far query: %g", out);
    CHECK_CLOSE(out, want, 1e-12, 0, "D=100 far query");
    /* Leave-one-out: each point's nearest other point is far away; finite and exact. */
    double loo[60];
    gram_array L = gram_array_f64(loo, N, 1);
    CHECK_STATUS(gram_kde_logpdf_loo(ctx, k, &L), GRAM_OK);
    for (int i = 0; i < N; i += 13) CHECK_CLOSE(loo[i], ref_logpdf(&r, X + i * D, i), 1e-12, 0, "D=100 loo");
    ref_free(&r);
    gram_kde_destroy(k);
    free(X);
}

/* ---- 3. leave-one-out equals a KDE refitted without the point -------------------------------- */

static void test_loo_identity(void)
{
    check_rng g = {14};
    const int N = 50, D = 2;
    double *X = random_data(&g, N, D, 1.0), w[50], h[2] = {0.35, 0.5};
    for (int i = 0; i < N; i++) w[i] = 0.2 + check_uniform(&g);
    for (int fi = 0; fi < N_FAMILIES; fi++) {
        gram_family f = FAMILIES[fi];
        if (f == GRAM_CAUCHY) continue;
        double hc[2] = {h[0] * (compact(f) ? 2 : 1), h[1] * (compact(f) ? 2 : 1)};
        gram_kde *k = fit(f, GRAM_KDE_ISOTROPIC, GRAM_BW_FIXED, hc, 2, X, N, D, w, GRAM_OK);
        if (!k) continue;
        double loo[50];
        gram_array L = gram_array_f64(loo, N, 1);
        CHECK_STATUS(gram_kde_logpdf_loo(ctx, k, &L), GRAM_OK);
        for (int i = 0; i < N; i += 7) {
            double X2[100], w2[50];
            int n2 = 0;
            for (int j = 0; j < N; j++)
                if (j != i) {
                    X2[n2 * D] = X[j * D], X2[n2 * D + 1] = X[j * D + 1], w2[n2] = w[j];
                    n2++;
                }
            gram_kde *k2 = fit(f, GRAM_KDE_ISOTROPIC, GRAM_BW_FIXED, hc, 2, X2, n2, D, w2, GRAM_OK);
            double v;
            if (k2) logpdf(k2, X + i * D, 1, D, &v);
            if (k2) CHECK(close_log(loo[i], v, 1e-12), "loo %s row %d: %.17g vs refit %.17g", fname(f), i, loo[i], v);
            gram_kde_destroy(k2);
        }
        gram_kde_destroy(k);
    }
    free(X);
}

/* ---- 4. normalisation ------------------------------------------------------------------------ */

/* Gauss–Legendre nodes and weights on [-1, 1], by Newton on P_n. */
static void gauss_legendre(int n, ld *x, ld *wt)
{
    for (int i = 0; i < n; i++) {
        ld z = cosl(PI_L * (i + 0.75L) / (n + 0.5L)), dp = 0;
        for (int it = 0; it < 100; it++) {
            ld p0 = 1, p1 = z;
            for (int k = 2; k <= n; k++) {
                ld p2 = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
                p0 = p1, p1 = p2;
            }
            dp = n * (z * p1 - p0) / (z * z - 1);
            ld dz = p1 / dp;
            z -= dz;
            if (fabsl(dz) < 1e-19L) break;
        }
        x[i] = z;
        wt[i] = 2 / ((1 - z * z) * dp * dp);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ∫_a^b of the 1-D KDE's pdf, piecewise Gauss–Legendre (10 nodes) between the breakpoints
 * bp (kinks and jumps) and at most `seg` apart. */
static ld integrate_1d(const gram_kde *k, double a, double b, const double *bp, int nbp, double seg)
{
    ld gx[10], gw[10];
    gauss_legendre(10, gx, gw);
    int cap = nbp + 2 + (int)((b - a) / seg) + 2;
    double *cuts = malloc(sizeof(double) * cap);
    int nc = 0;
    cuts[nc++] = a, cuts[nc++] = b;
    for (int i = 0; i < nbp; i++)
        if (bp[i] > a && bp[i] < b) cuts[nc++] = bp[i];
    for (double t = a + seg; t < b; t += seg) cuts[nc++] = t;
    qsort(cuts, nc, sizeof(double), cmp_double);
    double *Y = malloc(sizeof(double) * 10 * nc), *P = malloc(sizeof(double) * 10 * nc);
    int m = 0;
    for (int s = 0; s + 1 < nc; s++)
        for (int q = 0; q < 10; q++) Y[m++] = (double)(0.5L * (cuts[s] + cuts[s + 1]) + 0.5L * (cuts[s + 1] - cuts[s]) * gx[q]);
    gram_array A = gram_array_f64(Y, m, 1), O = gram_array_f64(P, m, 1);
    CHECK_STATUS(gram_kde_pdf(ctx, k, &A, &O), GRAM_OK);
    ld tot = 0;
    m = 0;
    for (int s = 0; s + 1 < nc; s++)
        for (int q = 0; q < 10; q++) tot += 0.5L * (cuts[s + 1] - cuts[s]) * gw[q] * P[m++];
    free(cuts), free(Y), free(P);
    return tot;
}

static void test_normalisation(void)
{
    check_rng g = {15};
    const int N = 20;
    double X[20], bp[60], w[20];
    for (int i = 0; i < N; i++) X[i] = 2 * check_normal(&g), w[i] = 0.5 + check_uniform(&g);
    double h = 0.5;
    for (int i = 0; i < N; i++) bp[3 * i] = X[i], bp[3 * i + 1] = X[i] - h, bp[3 * i + 2] = X[i] + h;
    for (int fi = 0; fi < N_FAMILIES; fi++) {
        gram_family f = FAMILIES[fi];
        if (f == GRAM_CAUCHY) continue; /* tails ~ 1/x: checked against the reference instead */
        gram_kde *k = fit(f, GRAM_KDE_ISOTROPIC, GRAM_BW_FIXED, &h, 1, X, N, 1, w, GRAM_OK);
        if (!k) continue;
        ld tot = integrate_1d(k, -10 - 45 * h, 10 + 45 * h, bp, 3 * N, h / 4);
        CHECK(fabsl(tot - 1) < 1e-9, "1-D %s integrates to %.15Lg", fname(f), tot);
        gram_kde_destroy(k);
    }
    /* 2-D: midpoint rule on a fine grid, covariance geometry for the gaussian. */
    double X2[40];
    for (int i = 0; i < 40; i++) X2[i] = check_normal(&g);
    const int G = 600;
    const double lo = -6, hi = 6, dx = (hi - lo) / G;
    double *Y = malloc(sizeof(double) * 2 * G * G), *P = malloc(sizeof(double) * G * G);
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) Y[2 * (i * G + j)] = lo + (i + 0.5) * dx, Y[2 * (i * G + j) + 1] = lo + (j + 0.5) * dx;
    const gram_family f2[] = {GRAM_GAUSSIAN, GRAM_EPANECHNIKOV, GRAM_TRIANGULAR, GRAM_COSINE_WINDOW, GRAM_EXPONENTIAL, GRAM_TOPHAT, GRAM_GAUSSIAN};
    for (int t = 0; t < 7; t++) {
        double hh = f2[t] == GRAM_EXPONENTIAL ? 0.3 : 0.8;
        gram_kde *k = fit(f2[t], t == 6 ? GRAM_KDE_COVARIANCE : GRAM_KDE_ISOTROPIC, GRAM_BW_FIXED, &hh, 1, X2, 20, 2, NULL, GRAM_OK);
        if (!k) continue;
        gram_array A = gram_array_f64(Y, G * G, 2), O = gram_array_f64(P, G * G, 1);
        CHECK_STATUS(gram_kde_pdf(ctx, k, &A, &O), GRAM_OK);
        ld tot = 0;
        for (int i = 0; i < G * G; i++) tot += P[i];
        tot *= dx * dx;
        double tol = f2[t] == GRAM_TOPHAT ? 2e-3 : 2e-4;
        CHECK(fabsl(tot - 1) < tol, "2-D %s (geometry %d) integrates to %.8Lg", fname(f2[t]), t == 6, tot);
        gram_kde_destroy(k);
    }
    free(Y), free(P);
}

/* ---- 5. reflection --------------------------------------------------------------------------- */

static gram_kde *fit_bounded(gram_family f, double h, const double *X, int N, int D, const double *w, const double *lo,
                             const double *hi, gram_bandwidth_rule rule)
{
    gram_kde_options o;
    gram_kde_options_init(&o);
    o.kernel = f, o.rule = rule, o.bandwidth = &h, o.n_bandwidth = 1, o.lower = lo, o.upper = hi;
    gram_array A = gram_array_f64(X, N, D), W = gram_array_f64(w, N, 1);
    gram_kde *k = NULL;
    gram_status s = gram_kde_fit(ctx, &o, &A, w ? &W : NULL, &k);
    CHECK(s == GRAM_OK, "bounded fit %s: %d %s", fname(f), (int)s, gram_context_message(ctx));
    return k;
}

static void test_reflection(void)
{
    check_rng g = {16};
    const int N = 30;
    double X[30], w[30], bp[150];
    for (int i = 0; i < N; i++) X[i] = fabs(check_normal(&g)) * (i % 4 ? 1 : 0.05), w[i] = 0.5 + check_uniform(&g);
    const double lo = 0, inf = INFINITY;
    for (int fi = 0; fi < N_FAMILIES; fi++) {
        gram_family f = FAMILIES[fi];
        if (f == GRAM_CAUCHY) continue;
        double h = 0.4;
        gram_kde *kb = fit_bounded(f, h, X, N, 1, w, &lo, &inf, GRAM_BW_FIXED);
        gram_kde *ku = fit(f, GRAM_KDE_ISOTROPIC, GRAM_BW_FIXED, &h, 1, X, N, 1, w, GRAM_OK);
        if (!kb || !ku) {
            gram_kde_destroy(kb), gram_kde_destroy(ku);
            continue;
        }
        for (int i = 0; i < N; i++)
            bp[5 * i] = X[i], bp[5 * i + 1] = X[i] + h, bp[5 * i + 2] = X[i] - h, bp[5 * i + 3] = h - X[i], bp[5 * i + 4] = -X[i];
        ld tot = integrate_1d(kb, 0, 5 + 45 * h, bp, 5 * N, h / 4);
        CHECK(fabsl(tot - 1) < 1e-9, "reflected %s integrates to %.15Lg over [0, inf)", fname(f), tot);
        /* f_R(x) = f(x) + f(-x) inside, 0 outside. */
        double Y[40], Yn[40], pb[40], pu[40], pn[40];
        for (int i = 0; i < 40; i++) Y[i] = i < 38 ? 0.05 * i : -0.1 * (i - 37), Yn[i] = -Y[i];
        gram_array A = gram_array_f64(Y, 40, 1), An = gram_array_f64(Yn, 40, 1);
        gram_array B = gram_array_f64(pb, 40, 1), U = gram_array_f64(pu, 40, 1), Nn = gram_array_f64(pn, 40, 1);
        CHECK_STATUS(gram_kde_pdf(ctx, kb, &A, &B), GRAM_OK);
        CHECK_STATUS(gram_kde_pdf(ctx, ku, &A, &U), GRAM_OK);
        CHECK_STATUS(gram_kde_pdf(ctx, ku, &An, &Nn), GRAM_OK);
        for (int i = 0; i < 40; i++) {
            double want = Y[i] < 0 ? 0 : pu[i] + pn[i];
            CHECK(fabs(pb[i] - want) <= 1e-13 * want, "reflected %s at %g: %.17g vs %.17g", fname(f), Y[i], pb[i], want);
        }
        double lp;
        logpdf(kb, &Y[39], 1, 1, &lp);
        CHECK(lp == -INFINITY, "reflected log-density outside the bounds: %g", lp);
        /* Leave-one-out with reflection equals a refit without the point (points near 0 with a
         * small h make the self-reflection dominate). */
        double loo[30];
        gram_kde *ks = fit_bounded(f, 0.05, X, N, 1, w, &lo, &inf, GRAM_BW_FIXED);
        gram_array L = gram_array_f64(loo, N, 1);
        if (ks) CHECK_STATUS(gram_kde_logpdf_loo(ctx, ks, &L), GRAM_OK);
        for (int i = 0; ks && i < N; i += 4) {
            double X2[30], w2[30], v;
            int n2 = 0;
            for (int j = 0; j < N; j++)
                if (j != i) X2[n2] = X[j], w2[n2++] = w[j];
            gram_kde *k2 = fit_bounded(f, 0.05, X2, n2, 1, w2, &lo, &inf, GRAM_BW_FIXED);
            if (k2) {
                logpdf(k2, &X[i], 1, 1, &v);
                CHECK(close_log(loo[i], v, 1e-11), "reflected loo %s row %d (x = %g): %.17g vs refit %.17g", fname(f), i, X[i],
                      loo[i], v);
            }
            gram_kde_destroy(k2);
        }
        gram_kde_destroy(ks);
        gram_kde_destroy(kb), gram_kde_destroy(ku);
    }
    /* An isolated point next to the bound with a small h: its own reflection is the whole
     * reflected sum, and what is left after removing it is ~exp(-10⁵). Subtracting would give
     * garbage; the leave-one-out must still equal the refit. */
    {
        double Xi[6] = {0.001, 3, 3.5, 4, 7, 0.3}, hs = 0.01, li[6];
        gram_kde *ki = fit_bounded(GRAM_GAUSSIAN, hs, Xi, 6, 1, NULL, &lo, &inf, GRAM_BW_FIXED);
        gram_array Li = gram_array_f64(li, 6, 1);
        if (ki) CHECK_STATUS(gram_kde_logpdf_loo(ctx, ki, &Li), GRAM_OK);
        for (int i = 0; ki && i < 6; i++) {
            double X2[5], v;
            int n2 = 0;
            for (int j = 0; j < 6; j++)
                if (j != i) X2[n2++] = Xi[j];
            gram_kde *k2 = fit_bounded(GRAM_GAUSSIAN, hs, X2, 5, 1, NULL, &lo, &inf, GRAM_BW_FIXED);
            if (k2) logpdf(k2, &Xi[i], 1, 1, &v);
            if (k2) CHECK(isfinite(li[i]) && close_log(li[i], v, 1e-12), "isolated reflected loo row %d: %.17g vs refit %.17g", i, li[i], v);
            gram_kde_destroy(k2);
        }
        gram_kde_destroy(ki);
    }

    /* 2-D box [0, 1] × [0, ∞): nine combinations of copies reduce to the six that exist. */
    double X2[2 * 25], lo2[2] = {0, 0}, hi2[2] = {1, INFINITY};
    for (int i = 0; i < 25; i++) X2[2 * i] = check_uniform(&g), X2[2 * i + 1] = fabs(check_normal(&g));
    for (int t = 0; t < 2; t++) {
        gram_family f = t ? GRAM_EPANECHNIKOV : GRAM_GAUSSIAN;
        double h = 0.3;
        gram_kde *kb = fit_bounded(f, h, X2, 25, 2, NULL, lo2, hi2, GRAM_BW_FIXED);
        gram_kde *ku = fit(f, GRAM_KDE_ISOTROPIC, GRAM_BW_FIXED, &h, 1, X2, 25, 2, NULL, GRAM_OK);
        if (!kb || !ku) continue;
        for (int q = 0; q < 20; q++) {
            double y[2] = {check_uniform(&g), q < 3 ? 0.01 * q : fabs(check_normal(&g))}, pb = NAN, acc = 0;
            gram_array A = gram_array_f64(y, 1, 2), B = gram_array_f64(&pb, 1, 1);
            CHECK_STATUS(gram_kde_pdf(ctx, kb, &A, &B), GRAM_OK);
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 2; b++) {
                    double c[2] = {a == 0 ? y[0] : a == 1 ? -y[0] : 2 - y[0], b ? -y[1] : y[1]}, p = NAN;
                    gram_array C = gram_array_f64(c, 1, 2), Pp = gram_array_f64(&p, 1, 1);
                    CHECK_STATUS(gram_kde_pdf(ctx, ku, &C, &Pp), GRAM_OK);
                    acc += p;
                }
            CHECK(fabs(pb - acc) <= 1e-13 * acc, "2-D reflected %s: %.17g vs %.17g", fname(f), pb, acc);
        }
        gram_kde_destroy(kb), gram_kde_destroy(ku);
    }
}

/* ---- 6. bandwidth rules ----------------------------------------------------------------------- */

static void test_rule_of_thumb(void)
{
    check_rng g = {17};
    const int N = 200, D = 3;
    double *X = random_data(&g, N, D, 1.0), w[200];
    for (int i = 0; i < N; i++) w[i] = check_uniform(&g) + (i % 10 == 0 ? 3 : 0);
    for (int weighted = 0; weighted < 2; weighted++) {
        ld W = 0, s2 = 0, mu[3] = {0}, var[3] = {0};
        for (int i = 0; i < N; i++) W += weighted ? w[i] : 1;
        for (int i = 0; i < N; i++) {
            ld wi = (weighted ? w[i] : 1) / W;
            s2 += wi * wi;
            for (int d = 0; d < D; d++) mu[d] += wi * X[i * D + d];
        }
        for (int i = 0; i < N; i++)
            for (int d = 0; d < D; d++) {
                ld wi = (weighted ? w[i] : 1) / W;
                var[d] += wi * (X[i * D + d] - mu[d]) * (X[i * D + d] - mu[d]) / (1 - s2);
            }
        ld neff = 1 / s2;
        ld scott = powl(neff, -1.0L / (D + 4)), silver = powl(neff * (D + 2) / 4.0L, -1.0L / (D + 4));
        for (int rule = 0; rule < 2; rule++) {
            ld fct = rule ? silver : scott;
            gram_bandwidth_rule r = rule ? GRAM_BW_SILVERMAN : GRAM_BW_SCOTT;
            gram_kde *k = fit(GRAM_GAUSSIAN, GRAM_KDE_ISOTROPIC, r, NULL, 0, X, N, D, weighted ? w : NULL, GRAM_OK);
            double h[3];
            if (k) {
                gram_kde_bandwidth(k, h);
                for (int d = 0; d < D; d++) CHECK_CLOSE(h[d], sqrtl(var[d]) * fct, 1e-12, 0, "isotropic scott/silverman h_d");
                CHECK_CLOSE(gram_kde_factor(k), sqrtl(var[0]) * fct, 1e-12, 0, "isotropic factor is h_1");
            }
            gram_kde_destroy(k);
            k = fit(GRAM_GAUSSIAN, GRAM_KDE_COVARIANCE, r, NULL, 0, X, N, D, weighted ? w : NULL, GRAM_OK);
            if (k) {
                CHECK_CLOSE(gram_kde_factor(k), fct, 1e-12, 0, "covariance scott/silverman factor");
                double H[9];
                gram_kde_bandwidth_matrix(k, H);
                for (int d = 0; d < D; d++) CHECK_CLOSE(H[d * D + d], var[d] * fct * fct, 1e-11, 0, "covariance H_dd");
            }
            gram_kde_destroy(k);
        }
    }
    /* scikit-learn's unscaled rules: values printed by sklearn 1.9.1 KernelDensity(bandwidth=...).bandwidth_
     * for X of shape (100, 3) and (37, 1). */
    double *Z = calloc(300, sizeof(double));
    for (int i = 0; i < 100; i++) Z[3 * i] = i;
    const struct { int n, d; gram_bandwidth_rule r; double want; } sk[] = {
        {100, 3, GRAM_BW_SCOTT_UNSCALED, 0.5179474679231212},
        {100, 3, GRAM_BW_SILVERMAN_UNSCALED, 0.5016969106227039},
        {37, 1, GRAM_BW_SCOTT_UNSCALED, 0.4856905518191413},
        {37, 1, GRAM_BW_SILVERMAN_UNSCALED, 0.514455011858988},
    };
    for (int t = 0; t < 4; t++) {
        gram_kde *k = fit(GRAM_GAUSSIAN, GRAM_KDE_ISOTROPIC, sk[t].r, NULL, 0, Z, sk[t].n, sk[t].d, w, GRAM_OK);
        if (k) CHECK_CLOSE(gram_kde_factor(k), sk[t].want, 1e-15, 0, "sklearn unscaled bandwidth (weights ignored: N, not n_eff)");
        gram_kde_destroy(k);
    }
    /* With one point the unscaled rule and a fixed h work (no spread needed). */
    gram_kde *k1 = fit(GRAM_GAUSSIAN, GRAM_KDE_ISOTROPIC, GRAM_BW_SCOTT_UNSCALED, NULL, 0, Z, 1, 3, NULL, GRAM_OK);
    if (k1) CHECK_CLOSE(gram_kde_factor(k1), 1.0, 0, 0, "unscaled h for N = 1");
    gram_kde_destroy(k1);
    free(Z);
    free(X);
}

/* Closed-form AMISE-optimal gaussian h for a gaussian mixture: (R(K) / (R(f'') n))^{1/5}. */
static ld amise_h(int m, const ld *p, const ld *mu, const ld *sd, int n)
{
    ld r = 0;
    for (int a = 0; a < m; a++)
        for (int b = 0; b < m; b++) {
            ld s2 = sd[a] * sd[a] + sd[b] * sd[b], x = mu[a] - mu[b];
            ld phi = expl(-x * x / (2 * s2)) / sqrtl(2 * PI_L * s2);
            r += p[a] * p[b] * phi * (x * x * x * x / (s2 * s2 * s2 * s2) - 6 * x * x / (s2 * s2 * s2) + 3 / (s2 * s2));
        }
    return powl(1 / (2 * sqrtl(PI_L) * r * n), 0.2L);
}

static void test_isj(void)
{
    /* (a) On a bimodal mixture sample, ISJ's h is within 10% of the AMISE-optimal h computed
     * from the true density. */
    check_rng g = {18};
    const int n = 20000;
    double *x = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) x[i] = check_uniform(&g) < 0.6 ? -1 + 0.5 * check_normal(&g) : 2 + check_normal(&g);
    ld p[2] = {0.6L, 0.4L}, mu[2] = {-1, 2}, sd[2] = {0.5L, 1};
    ld want = amise_h(2, p, mu, sd, n);
    gram_kde *k = fit(GRAM_GAUSSIAN, GRAM_KDE_ISOTROPIC, GRAM_BW_ISJ, NULL, 0, x, n, 1, NULL, GRAM_OK);
    if (k) {
        double h = gram_kde_factor(k);
        CHECK(fabsl(h / want - 1) < 0.10L, "ISJ h %.6g vs AMISE-optimal %.6Lg", h, want);
        /* The same data in another unit: ISJ is scale-equivariant. */
        for (int i = 0; i < n; i++) x[i] = 1e-3 * x[i] + 5;
        gram_kde *k2 = fit(GRAM_GAUSSIAN, GRAM_KDE_ISOTROPIC, GRAM_BW_ISJ, NULL, 0, x, n, 1, NULL, GRAM_OK);
        if (k2) CHECK_CLOSE(gram_kde_factor(k2), 1e-3 * h, 1e-6, 0, "ISJ scale equivariance");
        /* Covariance geometry: the factor is h / σ. */
        gram_kde *k3 = fit(GRAM_GAUSSIAN, GRAM_KDE_COVARIANCE, GRAM_BW_ISJ, NULL, 0, x, n, 1, NULL, GRAM_OK);
        if (k3 && k2) {
            double hh;
            gram_kde_bandwidth(k3, &hh);
            CHECK_CLOSE(hh, gram_kde_factor(k2), 1e-12, 0, "ISJ covariance geometry");
        }
        /* Other kernels get the AMISE-equivalent h: epanechnikov's is (R/μ₂² ratio)^{1/5} times the
         * gaussian's, with R = 3/5, μ₂ = 1/5 computed here by quadrature. */
        gram_kde *k4 = fit(GRAM_EPANECHNIKOV, GRAM_KDE_ISOTROPIC, GRAM_BW_ISJ, NULL, 0, x, n, 1, NULL, GRAM_OK);
        if (k4 && k2) {
            ld R = 0, m2 = 0, c = 0.75L;
            for (int i = 0; i < 200000; i++) {
                ld t = -1 + (i + 0.5L) * 2 / 200000, v = c * (1 - t * t);
                R += v * v * 2 / 200000, m2 += t * t * v * 2 / 200000;
            }
            ld ratio = powl((R / (m2 * m2)) * (2 * sqrtl(PI_L)), 0.2L);
            CHECK_CLOSE(gram_kde_factor(k4), gram_kde_factor(k2) * ratio, 1e-8, 0, "ISJ epanechnikov equivalent");
        }
        gram_kde_destroy(k2), gram_kde_destroy(k3), gram_kde_destroy(k4);
    }
    gram_kde_destroy(k);
    free(x);

    /* (b) Regression values from an independent NumPy/SciPy transcription of the paper (grid
     * 2^14 on [min - R/10, max + R/10], scipy.fft.dct, scipy.optimize.brentq) for a
     * deterministic sample; weighted: weighted histogram and n = n_eff. */
    const int m = 1000;
    double *y = malloc(sizeof(double) * m), *wt = malloc(sizeof(double) * m);
    for (int i = 0; i < m; i++) {
        double u = (i + 0.5) / m, v = fmod(i * 0.6180339887498949, 1.0);
        double z = sqrt(-2 * log(u)) * cos(2 * 3.141592653589793 * v);
        y[i] = i % 5 < 3 ? -1 + 0.5 * z : 2 + z;
        wt[i] = 1 + i % 7;
    }
    k = fit(GRAM_GAUSSIAN, GRAM_KDE_ISOTROPIC, GRAM_BW_ISJ, NULL, 0, y, m, 1, NULL, GRAM_OK);
    if (k) CHECK_CLOSE(gram_kde_factor(k), 0.18280655470533042, 1e-6, 0, "ISJ regression value");
    gram_kde_destroy(k);
    k = fit(GRAM_GAUSSIAN, GRAM_KDE_ISOTROPIC, GRAM_BW_ISJ, NULL, 0, y, m, 1, wt, GRAM_OK);
    if (k) CHECK_CLOSE(gram_kde_factor(k), 0.19168766339880464, 1e-6, 0, "ISJ weighted regression value");
    gram_kde_destroy(k);
    free(y), free(wt);
    /* KDEpy 1.1.12's ISJ is not a usable reference: it rescales by the data range instead of the
     * padded grid's (KDEpy issues #199, #201) and comes out 2-3x smaller on these data. */
}

/* Σ w_i log f_{-i}(x_i) at a fixed bandwidth, through the public API. */
static double cv_ml_objective(gram_family f, gram_kde_geometry geo, double s, const double *X, int N, int D,
                              const double *w)
{
    gram_kde *k = fit(f, geo, GRAM_BW_FIXED, &s, 1, X, N, D, w, GRAM_OK);
    if (!k) return NAN;
    double *loo = malloc(sizeof(double) * N), tot = 0, W = 0;
    gram_array L = gram_array_f64(loo, N, 1);
    CHECK_STATUS(gram_kde_logpdf_loo(ctx, k, &L), GRAM_OK);
    for (int i = 0; i < N; i++) W += w ? w[i] : 1;
    for (int i = 0; i < N; i++) tot += (w ? w[i] : 1) / W * loo[i];
    free(loo);
    gram_kde_destroy(k);
    return tot;
}

/* LSCV(h) for the gaussian kernel in isotropic geometry, long double, O(N²). */
static ld lscv(const double *X, int N, int D, const double *w_raw, ld h)
{
    ld W = 0, A = 0, B = 0;
    for (int i = 0; i < N; i++) W += w_raw ? w_raw[i] : 1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            ld wi = (w_raw ? w_raw[i] : 1) / W, wj = (w_raw ? w_raw[j] : 1) / W, t = 0;
            for (int d = 0; d < D; d++) t += ((ld)X[i * D + d] - X[j * D + d]) * ((ld)X[i * D + d] - X[j * D + d]);
            A += wi * wj * expl(-t / (4 * h * h)) / powl(4 * PI_L * h * h, D / 2.0L);
            if (i != j) B += wi * wj / (1 - wi) * expl(-t / (2 * h * h)) / powl(2 * PI_L * h * h, D / 2.0L);
        }
    return A - 2 * B;
}

static void test_cross_validation(void)
{
    check_rng g = {19};
    const int N = 250;
    double *X = random_data(&g, N, 2, 1.0), w[250];
    for (int i = 0; i < N; i++) w[i] = 0.5 + check_uniform(&g);
    const struct { gram_family f; gram_kde_geometry geo; int weighted; } cs[] = {
        {GRAM_GAUSSIAN, GRAM_KDE_ISOTROPIC, 0}, {GRAM_GAUSSIAN, GRAM_KDE_COVARIANCE, 1},
        {GRAM_EPANECHNIKOV, GRAM_KDE_ISOTROPIC, 1}, {GRAM_EXPONENTIAL, GRAM_KDE_COVARIANCE, 0}};
    for (int t = 0; t < 4; t++) {
        const double *wt = cs[t].weighted ? w : NULL;
        gram_kde *k = fit(cs[t].f, cs[t].geo, GRAM_BW_CV_ML, NULL, 0, X, N, 2, wt, GRAM_OK);
        if (!k) continue;
        double s = gram_kde_factor(k);
        double f0 = cv_ml_objective(cs[t].f, cs[t].geo, s, X, N, 2, wt);
        double fm = cv_ml_objective(cs[t].f, cs[t].geo, s * 0.95, X, N, 2, wt);
        double fp = cv_ml_objective(cs[t].f, cs[t].geo, s * 1.05, X, N, 2, wt);
        CHECK(isfinite(f0) && f0 >= fm && f0 >= fp, "cv_ml %s geo %d: objective at h=%g is %.12g, at 0.95h %.12g, at 1.05h %.12g",
              fname(cs[t].f), (int)cs[t].geo, s, f0, fm, fp);
        /* The optimiser's tolerance is 1e-4 relative in h: 0.1% away is already worse. */
        fm = cv_ml_objective(cs[t].f, cs[t].geo, s * 0.999, X, N, 2, wt);
        fp = cv_ml_objective(cs[t].f, cs[t].geo, s * 1.001, X, N, 2, wt);
        CHECK(f0 >= fm && f0 >= fp, "cv_ml %s geo %d: objective at h=%g is %.15g, at 0.999h %.15g, at 1.001h %.15g",
              fname(cs[t].f), (int)cs[t].geo, s, f0, fm, fp);
        gram_kde_destroy(k);
    }
    /* CV-LS (gaussian, 1-D and 2-D). */
    for (int D = 1; D <= 2; D++) {
        const int n = 150;
        gram_kde *k = fit(GRAM_GAUSSIAN, GRAM_KDE_ISOTROPIC, GRAM_BW_CV_LS, NULL, 0, X, n, D, w, GRAM_OK);
        if (!k) continue;
        ld h = gram_kde_factor(k), f0 = lscv(X, n, D, w, h);
        ld fm = lscv(X, n, D, w, h * 0.95L), fp = lscv(X, n, D, w, h * 1.05L);
        CHECK(f0 <= fm && f0 <= fp, "cv_ls D=%d: LSCV(h=%.6Lg) = %.12Lg, at 0.95h %.12Lg, at 1.05h %.12Lg", D, h, f0, fm, fp);
        fm = lscv(X, n, D, w, h * 0.999L), fp = lscv(X, n, D, w, h * 1.001L);
        CHECK(f0 <= fm && f0 <= fp, "cv_ls D=%d: LSCV(h=%.6Lg) = %.15Lg, at 0.999h %.15Lg, at 1.001h %.15Lg", D, h, f0, fm, fp);
        /* And it beats a coarse grid around Scott's h. */
        int worse = 0;
        for (int q = -10; q <= 10; q++) worse += lscv(X, n, D, w, h * powl(1.25L, q)) < f0 - 1e-15L;
        CHECK(worse == 0, "cv_ls D=%d: %d grid points beat the chosen h", D, worse);
        gram_kde_destroy(k);
    }
    free(X);
}

/* ---- 7. sampling ------------------------------------------------------------------------------ */

static int sample(const gram_kde *k, uint64_t seed, double *out, int n, int D)
{
    gram_array O = gram_array_f64(out, n, D);
    gram_status s = gram_kde_sample(ctx, k, seed, &O);
    CHECK(s == GRAM_OK, "sample: %d %s", (int)s, gram_context_message(ctx));
    return s == GRAM_OK;
}

/* Kolmogorov–Smirnov distance of the sorted sample s (n values) from the CDF cdf on the grid
 * t[0..m] (linear between grid points). */
static double ks_distance(double *s, int n, const double *t, const ld *cdf, int m)
{
    qsort(s, n, sizeof(double), cmp_double);
    double dmax = 0;
    int j = 0;
    for (int i = 0; i < n; i++) {
        while (j < m - 1 && t[j + 1] < s[i]) j++;
        ld F = s[i] <= t[0] ? 0 : s[i] >= t[m] ? 1 : cdf[j] + (cdf[j + 1] - cdf[j]) * (s[i] - t[j]) / (t[j + 1] - t[j]);
        double d1 = fabs((double)((ld)(i + 1) / n - F)), d2 = fabs((double)(F - (ld)i / n));
        if (d1 > dmax) dmax = d1;
        if (d2 > dmax) dmax = d2;
    }
    return dmax;
}

/* The CDF of a 1-D KDE on a uniform grid over [a, b] (m intervals) by 4-node Gauss–Legendre. */
static void kde_cdf(const gram_kde *k, double a, double b, int m, double *t, ld *cdf)
{
    ld gx[4], gw[4];
    gauss_legendre(4, gx, gw);
    double *Y = malloc(sizeof(double) * 4 * m), *P = malloc(sizeof(double) * 4 * m);
    for (int i = 0; i <= m; i++) t[i] = a + (b - a) * i / m;
    for (int i = 0; i < m; i++)
        for (int q = 0; q < 4; q++) Y[4 * i + q] = (double)(0.5L * (t[i] + t[i + 1]) + 0.5L * (t[i + 1] - t[i]) * gx[q]);
    gram_array A = gram_array_f64(Y, 4 * m, 1), O = gram_array_f64(P, 4 * m, 1);
    CHECK_STATUS(gram_kde_pdf(ctx, k, &A, &O), GRAM_OK);
    cdf[0] = 0;
    for (int i = 0; i < m; i++) {
        ld s = 0;
        for (int q = 0; q < 4; q++) s += gw[q] * P[4 * i + q];
        cdf[i + 1] = cdf[i] + 0.5L * (t[i + 1] - t[i]) * s;
    }
    free(Y), free(P);
}

static void test_sampling(void)
{
    check_rng g = {20};
    const int N = 40, D = 2, n = 200000;
    double *X = random_data(&g, N, D, 1.0), w[40];
    for (int i = 0; i < N; i++) w[i] = 0.2 + check_uniform(&g);
    double *S = malloc(sizeof(double) * n * 3), *S2 = malloc(sizeof(double) * n * 3);

    /* Reproducibility: same seed, same samples (whatever the thread count); other seed, others. */
    double h2[2] = {0.3, 0.5};
    gram_kde *k = fit(GRAM_GAUSSIAN, GRAM_KDE_ISOTROPIC, GRAM_BW_FIXED, h2, 2, X, N, D, w, GRAM_OK);
    if (k) {
        gram_context_set_threads(ctx, 1);
        sample(k, 7, S, 1000, D);
        gram_context_set_threads(ctx, 3);
        sample(k, 7, S2, 1000, D);
        gram_context_set_threads(ctx, 0);
        CHECK(!memcmp(S, S2, sizeof(double) * 1000 * D), "same seed must give identical samples");
        sample(k, 8, S2, 1000, D);
        int same = 0;
        for (int i = 0; i < 1000 * D; i++) same += S[i] == S2[i];
        CHECK(same == 0, "a different seed gave %d equal coordinates", same);
        /* A prefix of a longer run is the shorter run: sample i depends only on (seed, i). */
        sample(k, 7, S2, 1500, D);
        CHECK(!memcmp(S, S2, sizeof(double) * 1000 * D), "samples must not depend on how many are drawn");
        gram_kde_destroy(k);
    }

    /* Moments: mean = Σ w x, covariance = Σ w (x - μ)(x - μ)ᵀ + m₂ H, m₂ the per-coordinate
     * second moment of the unit kernel (1 for the gaussian). */
    ld W = 0, mu[2] = {0}, C[4] = {0};
    for (int i = 0; i < N; i++) W += w[i];
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) mu[d] += w[i] / W * X[i * D + d];
    for (int i = 0; i < N; i++)
        for (int a = 0; a < D; a++)
            for (int b = 0; b < D; b++) C[a * D + b] += w[i] / W * (X[i * D + a] - mu[a]) * (X[i * D + b] - mu[b]);
    struct { gram_family f; ld m2; } mk[] = {
        {GRAM_GAUSSIAN, 1}, {GRAM_TOPHAT, 1.0L / (D + 2)}, {GRAM_EPANECHNIKOV, 1.0L / (D + 4)},
        {GRAM_EXPONENTIAL, D + 1.0L}, {GRAM_TRIANGULAR, (D + 1.0L) / ((D + 2.0L) * (D + 3.0L))},
        {GRAM_COSINE_WINDOW, 0}, {GRAM_MATERN32, 0}, {GRAM_MATERN52, 0}};
    for (int t = 0; t < 8; t++) {
        if (mk[t].m2 == 0) /* E r² / D from the radial profile, by quadrature */
            mk[t].m2 = simpson_radial(mk[t].f, D + 1, 0, radial_cut(mk[t].f, D), 40000) /
                       simpson_radial(mk[t].f, D - 1, 0, radial_cut(mk[t].f, D), 40000) / D;
        for (int geo = 0; geo < 2; geo++) {
            double fac = 0.4;
            gram_kde *kk = geo ? fit(mk[t].f, GRAM_KDE_COVARIANCE, GRAM_BW_FIXED, &fac, 1, X, N, D, w, GRAM_OK)
                               : fit(mk[t].f, GRAM_KDE_ISOTROPIC, GRAM_BW_FIXED, h2, 2, X, N, D, w, GRAM_OK);
            if (!kk || !sample(kk, 100 + t, S, n, D)) {
                gram_kde_destroy(kk);
                continue;
            }
            double H[4];
            gram_kde_bandwidth_matrix(kk, H);
            ld m[2] = {0}, c[4] = {0};
            for (int i = 0; i < n; i++)
                for (int d = 0; d < D; d++) m[d] += S[i * D + d] / n;
            for (int i = 0; i < n; i++)
                for (int a = 0; a < D; a++)
                    for (int b = 0; b < D; b++) c[a * D + b] += (S[i * D + a] - m[a]) * (S[i * D + b] - m[b]) / n;
            for (int a = 0; a < D; a++) {
                ld want_c[2];
                for (int b = 0; b < D; b++) want_c[b] = C[a * D + b] + mk[t].m2 * H[a * D + b];
                ld se = sqrtl(want_c[a] / n);
                CHECK(fabsl(m[a] - mu[a]) < 5 * se, "sample mean %s geo %d dim %d: %.5Lf want %.5Lf", fname(mk[t].f), geo, a, m[a], mu[a]);
                for (int b = 0; b < D; b++) {
                    ld vb = C[b * D + b] + mk[t].m2 * H[b * D + b];
                    ld se_c = sqrtl(3 * (want_c[a] * vb + want_c[b] * want_c[b]) / n); /* loose: kurtosis up to ~3x gaussian */
                    CHECK(fabsl(c[a * D + b] - want_c[b]) < 5 * se_c, "sample cov %s geo %d (%d,%d): %.5Lf want %.5Lf", fname(mk[t].f),
                          geo, a, b, c[a * D + b], want_c[b]);
                }
            }
            gram_kde_destroy(kk);
        }
    }

    /* 1-D Kolmogorov–Smirnov against the KDE's own CDF, every samplable kernel; then with
     * reflection at 0. */
    const int ns = 50000, m = 40000;
    double *tgrid = malloc(sizeof(double) * (m + 1));
    ld *cdf = malloc(sizeof(ld) * (m + 1));
    double x1[40];
    for (int i = 0; i < N; i++) x1[i] = X[i * D];
    const gram_family sf[] = {GRAM_GAUSSIAN, GRAM_TOPHAT, GRAM_EPANECHNIKOV, GRAM_EXPONENTIAL, GRAM_TRIANGULAR,
                              GRAM_COSINE_WINDOW, GRAM_MATERN32, GRAM_MATERN52, GRAM_CAUCHY};
    for (int t = 0; t < 9; t++)
        for (int refl = 0; refl < 2; refl++) {
            if (sf[t] == GRAM_CAUCHY && refl) continue;
            double h = 0.4, lo = -0.3, inf = INFINITY, xr[40];
            for (int i = 0; i < N; i++) xr[i] = refl ? fmax(x1[i], lo) : x1[i];
            gram_kde *kk = refl ? fit_bounded(sf[t], h, xr, N, 1, w, &lo, &inf, GRAM_BW_FIXED)
                                : fit(sf[t], GRAM_KDE_ISOTROPIC, GRAM_BW_FIXED, &h, 1, xr, N, 1, w, GRAM_OK);
            if (!kk || !sample(kk, 555 + t, S, ns, 1)) {
                gram_kde_destroy(kk);
                continue;
            }
            int below = 0;
            for (int i = 0; i < ns; i++) below += refl && S[i] < lo;
            CHECK(below == 0, "reflected samples below the bound: %d", below);
            double dn;
            if (sf[t] == GRAM_CAUCHY) { /* analytic CDF: Σ w_j (1/2 + atan((x - x_j)/h)/π) */
                qsort(S, ns, sizeof(double), cmp_double);
                ld W1 = 0;
                for (int j = 0; j < N; j++) W1 += w[j];
                dn = 0;
                for (int i = 0; i < ns; i++) {
                    ld F = 0;
                    for (int j = 0; j < N; j++) F += w[j] / W1 * (0.5L + atanl((S[i] - (ld)xr[j]) / h) / PI_L);
                    double d1 = fabs((double)((ld)(i + 1) / ns - F)), d2 = fabs((double)(F - (ld)i / ns));
                    dn = fmax(dn, fmax(d1, d2));
                }
            } else {
                kde_cdf(kk, refl ? lo : -60, 60, m, tgrid, cdf);
                CHECK(fabsl(cdf[m] - 1) < 1e-3, "KS: the CDF of %s ends at %.12Lg", fname(sf[t]), cdf[m]);
                dn = ks_distance(S, ns, tgrid, cdf, m);
            }
            CHECK(dn < 1.6 / sqrt(ns), "KS %s reflect=%d: D_n = %.5f, sqrt(n) D_n = %.3f", fname(sf[t]), refl, dn, dn * sqrt(ns));
            gram_kde_destroy(kk);
        }

    /* The radial law of each multivariate kernel draw: one data point at the origin in D = 3, KS
     * of |x| against ∫_0^r s² k(s) ds / ∫_0^∞ s² k(s) ds (trapezoid on a fine grid). */
    const double origin[3] = {0, 0, 0};
    for (int t = 0; t < 8; t++) {
        double h1 = 1.0;
        gram_kde *kk = fit(sf[t], GRAM_KDE_ISOTROPIC, GRAM_BW_FIXED, &h1, 1, origin, 1, 3, NULL, GRAM_OK);
        if (!kk || !sample(kk, 999 + t, S, ns, 3)) {
            gram_kde_destroy(kk);
            continue;
        }
        ld cut = radial_cut(sf[t], 3);
        for (int i = 0; i <= m; i++) tgrid[i] = (double)(cut * i / m);
        cdf[0] = 0;
        for (int i = 0; i < m; i++) {
            ld a = tgrid[i], b = tgrid[i + 1];
            cdf[i + 1] = cdf[i] + (b - a) / 2 * (a * a * ref_k(sf[t], a) + b * b * ref_k(sf[t], b));
        }
        for (int i = 0; i <= m; i++) cdf[i] /= cdf[m];
        double sx[3] = {0, 0, 0};
        for (int i = 0; i < ns; i++) {
            double r = sqrt(S[3 * i] * S[3 * i] + S[3 * i + 1] * S[3 * i + 1] + S[3 * i + 2] * S[3 * i + 2]);
            for (int d = 0; d < 3; d++) sx[d] += S[3 * i + d] / r / ns;
            S[i] = r;
        }
        double dn = ks_distance(S, ns, tgrid, cdf, m);
        CHECK(dn < 1.6 / sqrt(ns), "radial KS %s D=3: D_n = %.5f, sqrt(n) D_n = %.3f", fname(sf[t]), dn, dn * sqrt(ns));
        for (int d = 0; d < 3; d++) /* E[x/|x|] = 0, each coordinate has variance 1/3 */
            CHECK(fabs(sx[d]) < 5 * sqrt(1.0 / 3 / ns), "direction mean %s dim %d: %.5f", fname(sf[t]), d, sx[d]);
        gram_kde_destroy(kk);
    }
    free(tgrid), free(cdf);
    free(S), free(S2), free(X);
}

/* ---- 8. bad input ------------------------------------------------------------------------------ */

static int msg_has(const char *needle)
{
    const char *m = gram_context_message(ctx);
    int ok = strstr(m, needle) != NULL;
    if (!ok) fprintf(stderr, "  message was: \"%s\" (wanted \"%s\")\n", m, needle);
    return ok;
}

static gram_status try_fit(const gram_kde_options *o, const double *X, int N, int D, const double *w, int wrows, int wcols)
{
    gram_array A = gram_array_f64(X, N, D), W = gram_array_f64(w, wrows, wcols);
    gram_kde *k = (gram_kde *)&k; /* must come back NULL on failure */
    gram_status s = gram_kde_fit(ctx, o, &A, w ? &W : NULL, &k);
    if (s) CHECK(k == NULL, "a failed fit must set *out to NULL");
    gram_kde_destroy(s ? NULL : k);
    return s;
}

static void test_bad_input(void)
{
    check_rng g = {21};
    const int N = 30, D = 3;
    double *X = random_data(&g, N, D, 1.0), w[30], h = 0.5, hb[3] = {0.5, 0.6, 0.7};
    for (int i = 0; i < N; i++) w[i] = 1;
    gram_kde_options o;
    gram_kde_options_init(&o);
    CHECK(o.kernel == GRAM_GAUSSIAN && o.geometry == GRAM_KDE_ISOTROPIC && o.rule == GRAM_BW_SCOTT &&
              o.precision == GRAM_FLOAT64 && !o.lower && !o.upper && !o.bandwidth,
          "options defaults");
    gram_kde_options_init(NULL); /* harmless */

    /* NULL arguments. */
    gram_array A = gram_array_f64(X, N, D);
    gram_kde *k = NULL;
    CHECK_STATUS(gram_kde_fit(ctx, &o, &A, NULL, NULL), GRAM_EINVAL);
    CHECK_STATUS(gram_kde_fit(ctx, NULL, &A, NULL, &k), GRAM_EINVAL);
    CHECK_STATUS(gram_kde_fit(ctx, &o, NULL, NULL, &k), GRAM_EINVAL);
    CHECK_STATUS(gram_kde_fit(NULL, &o, NULL, NULL, &k), GRAM_EINVAL); /* NULL context: no message */
    CHECK(k == NULL, "out stays NULL");
    /* Shapes. */
    CHECK_STATUS(try_fit(&o, X, 0, D, NULL, 0, 0), GRAM_ESHAPE);
    CHECK(msg_has("no data points"), "N = 0 message");
    CHECK_STATUS(try_fit(&o, X, N, 0, NULL, 0, 0), GRAM_ESHAPE);
    CHECK_STATUS(try_fit(&o, X, N, D, w, N - 1, 1), GRAM_ESHAPE);
    CHECK(msg_has("weights"), "weights shape message");
    CHECK_STATUS(try_fit(&o, X, N, D, w, 2, N / 2), GRAM_ESHAPE);
    CHECK_STATUS(try_fit(&o, X, N, D, w, 1, N), GRAM_OK); /* a row of weights is fine */
    /* Non-finite data and weights. */
    double keep = X[4 * D + 1];
    X[4 * D + 1] = NAN;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_ENONFINITE);
    CHECK(msg_has("row 4, column 1"), "NaN position");
    X[4 * D + 1] = INFINITY;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_ENONFINITE);
    X[4 * D + 1] = keep;
    w[7] = INFINITY;
    CHECK_STATUS(try_fit(&o, X, N, D, w, N, 1), GRAM_ENONFINITE);
    CHECK(msg_has("row 7"), "weight Inf position");
    w[7] = -0.5;
    CHECK_STATUS(try_fit(&o, X, N, D, w, N, 1), GRAM_EDOMAIN);
    CHECK(msg_has("negative"), "negative weight message");
    for (int i = 0; i < N; i++) w[i] = 0;
    CHECK_STATUS(try_fit(&o, X, N, D, w, N, 1), GRAM_EDOMAIN);
    CHECK(msg_has("sum to 0"), "zero weights message");
    /* One positive weight: fine for a fixed h, but no spread for Scott, and no leave-one-out. */
    w[5] = 2;
    CHECK_STATUS(try_fit(&o, X, N, D, w, N, 1), GRAM_EDOMAIN);
    o.rule = GRAM_BW_FIXED, o.bandwidth = &h, o.n_bandwidth = 1;
    A = gram_array_f64(X, N, D);
    gram_array W = gram_array_f64(w, N, 1);
    CHECK_STATUS(gram_kde_fit(ctx, &o, &A, &W, &k), GRAM_OK);
    double loo[30];
    gram_array L = gram_array_f64(loo, N, 1);
    CHECK_STATUS(gram_kde_logpdf_loo(ctx, k, &L), GRAM_EDOMAIN);
    CHECK(msg_has("row 5"), "loo with one positive weight names the row");
    gram_kde_destroy(k);
    k = NULL;
    for (int i = 0; i < N; i++) w[i] = 1;
    /* Bandwidths. */
    const double badh[] = {0.0, -1.0, NAN, INFINITY};
    for (int t = 0; t < 4; t++) {
        o.bandwidth = &badh[t];
        CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    }
    o.bandwidth = &badh[1];
    try_fit(&o, X, N, D, NULL, 0, 0);
    CHECK(msg_has("bandwidth must be > 0"), "bandwidth message");
    o.bandwidth = hb, o.n_bandwidth = 2;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    o.n_bandwidth = 0;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    o.n_bandwidth = 3;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_OK);
    o.geometry = GRAM_KDE_COVARIANCE;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL); /* one factor only */
    o.n_bandwidth = 1, o.bandwidth = NULL;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    o.bandwidth = &h;
    /* Enumerations and kernel families. */
    gram_kde_options_init(&o);
    o.rule = GRAM_BW_FIXED, o.bandwidth = &h, o.n_bandwidth = 1;
    const gram_family nonint[] = {GRAM_PERIODIC, GRAM_LINEAR, GRAM_NEG_L2, GRAM_WHITE, GRAM_RATIONAL_QUADRATIC, GRAM_LAPLACIAN_L1};
    for (int t = 0; t < 6; t++) {
        o.kernel = nonint[t];
        CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EDOMAIN);
    }
    o.kernel = GRAM_CAUCHY;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EDOMAIN);
    CHECK(msg_has("D = 1"), "cauchy message");
    CHECK_STATUS(try_fit(&o, X, N, 1, NULL, 0, 0), GRAM_OK);
    o.kernel = (gram_family)99;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    o.kernel = GRAM_GAUSSIAN, o.geometry = (gram_kde_geometry)5;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    o.geometry = GRAM_KDE_ISOTROPIC, o.rule = (gram_bandwidth_rule)42;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    o.rule = GRAM_BW_FIXED, o.precision = (gram_dtype)7;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    o.precision = GRAM_FLOAT64;
    /* Rules that do not fit the geometry, the kernel or the data. */
    gram_kde_options_init(&o);
    o.geometry = GRAM_KDE_COVARIANCE, o.rule = GRAM_BW_SCOTT_UNSCALED;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    o.rule = GRAM_BW_SILVERMAN_UNSCALED;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    o.geometry = GRAM_KDE_ISOTROPIC, o.rule = GRAM_BW_ISJ;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EDOMAIN);
    o.rule = GRAM_BW_CV_LS, o.kernel = GRAM_EPANECHNIKOV;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EDOMAIN);
    CHECK(msg_has("gaussian"), "cv_ls message");
    o.kernel = GRAM_GAUSSIAN;
    /* Data-driven rules need two points and spread. */
    const gram_bandwidth_rule dd[] = {GRAM_BW_SCOTT, GRAM_BW_SILVERMAN, GRAM_BW_CV_ML, GRAM_BW_CV_LS};
    for (int t = 0; t < 4; t++)
        for (int geo = 0; geo < 2; geo++) {
            o.rule = dd[t], o.geometry = geo;
            CHECK_STATUS(try_fit(&o, X, 1, D, NULL, 0, 0), GRAM_ESHAPE);
        }
    o.rule = GRAM_BW_ISJ, o.geometry = GRAM_KDE_ISOTROPIC;
    CHECK_STATUS(try_fit(&o, X, 1, 1, NULL, 0, 0), GRAM_ESHAPE);
    double *Xc = malloc(sizeof(double) * N * D);
    memcpy(Xc, X, sizeof(double) * N * D);
    for (int i = 0; i < N; i++) Xc[i * D + 2] = 4.25; /* dimension 2 is constant */
    for (int t = 0; t < 4; t++)
        for (int geo = 0; geo < 2; geo++) {
            o.rule = dd[t], o.geometry = geo;
            CHECK_STATUS(try_fit(&o, Xc, N, D, NULL, 0, 0), GRAM_EDOMAIN);
            CHECK(msg_has("dimension 2 has zero variance"), "zero variance message (rule %d geometry %d)", (int)dd[t], geo);
        }
    o.rule = GRAM_BW_FIXED, o.bandwidth = &h, o.n_bandwidth = 1, o.geometry = GRAM_KDE_COVARIANCE;
    CHECK_STATUS(try_fit(&o, Xc, N, D, NULL, 0, 0), GRAM_EDOMAIN);
    CHECK(msg_has("dimension 2 has zero variance: the covariance bandwidth is singular"), "covariance zero variance message");
    o.geometry = GRAM_KDE_ISOTROPIC;
    CHECK_STATUS(try_fit(&o, Xc, N, D, NULL, 0, 0), GRAM_OK); /* a fixed h needs no spread */
    o.rule = GRAM_BW_ISJ;
    gram_array col2 = {Xc + 2, GRAM_FLOAT64, N, 1, D, 1}; /* the constant column, as a strided view */
    k = (gram_kde *)&k;
    CHECK_STATUS(gram_kde_fit(ctx, &o, &col2, NULL, &k), GRAM_EDOMAIN);
    CHECK(k == NULL && msg_has("dimension 0 has zero variance"), "ISJ on constant data");
    for (int i = 0; i < N; i++) Xc[i * D + 2] = X[i * D] + 2 * X[i * D + 1]; /* collinear */
    o.rule = GRAM_BW_SCOTT, o.geometry = GRAM_KDE_COVARIANCE;
    CHECK_STATUS(try_fit(&o, Xc, N, D, NULL, 0, 0), GRAM_ENOTPD);
    CHECK(msg_has("pivot 2"), "not positive definite names the pivot");
    /* CV-ML on duplicated points: the likelihood grows without bound as h → 0. */
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) Xc[i * D + d] = X[(i / 2) * D + d];
    o.rule = GRAM_BW_CV_ML, o.geometry = GRAM_KDE_ISOTROPIC;
    CHECK_STATUS(try_fit(&o, Xc, N, D, NULL, 0, 0), GRAM_EDOMAIN);
    CHECK(msg_has("duplicated"), "cv_ml duplicated points message");
    /* ISJ on three equally spaced points: t - ξγ(t) stays negative on (0, 0.1). (Discrete data
     * with many repeats do have a root, at a tiny t: ISJ then resolves the atoms.) */
    for (int i = 0; i < 3; i++) Xc[i] = i;
    o.rule = GRAM_BW_ISJ;
    gram_status sisj = try_fit(&o, Xc, 3, 1, NULL, 0, 0);
    CHECK(sisj == GRAM_EDOMAIN, "ISJ on three points: %d (%s)", (int)sisj, gram_context_message(ctx));
    CHECK(msg_has("scott"), "ISJ failure suggests scott");
    free(Xc);
    /* Bounds. */
    gram_kde_options_init(&o);
    o.rule = GRAM_BW_FIXED, o.bandwidth = &h, o.n_bandwidth = 1;
    double lo[3] = {-INFINITY, -100, -INFINITY}, hi[3] = {INFINITY, 100, INFINITY};
    o.lower = lo, o.upper = hi;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_OK);
    lo[1] = X[9 * D + 1] + 1e-9;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EDOMAIN);
    lo[1] = -100;
    hi[1] = X[9 * D + 1] - 1e-9;
    try_fit(&o, X, N, D, NULL, 0, 0);
    CHECK(gram_context_message(ctx)[0], "bounds message set");
    hi[1] = 100;
    lo[0] = 5, hi[0] = 5;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    lo[0] = NAN;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    lo[0] = INFINITY;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EINVAL);
    lo[0] = -INFINITY, hi[0] = INFINITY;
    o.geometry = GRAM_KDE_COVARIANCE;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EUNSUPPORTED);
    CHECK(msg_has("reflection needs the isotropic geometry"), "reflection + covariance message");
    o.geometry = GRAM_KDE_ISOTROPIC, o.rule = GRAM_BW_CV_LS;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EUNSUPPORTED);
    o.lower = o.upper = NULL, o.rule = GRAM_BW_FIXED;
    double row_lo[3] = {-INFINITY, -INFINITY, -INFINITY};
    row_lo[2] = X[11 * D + 2] + 0.5;
    o.lower = row_lo;
    CHECK_STATUS(try_fit(&o, X, N, D, NULL, 0, 0), GRAM_EDOMAIN);
    CHECK(msg_has("column 2"), "outside-bounds message names the column");

    /* Evaluation: dimension, shapes, non-finite queries, NULLs. */
    gram_kde_options_init(&o);
    o.rule = GRAM_BW_FIXED, o.bandwidth = &h, o.n_bandwidth = 1;
    CHECK_STATUS(gram_kde_fit(ctx, &o, &A, NULL, &k), GRAM_OK);
    double Y[12] = {0}, out[4];
    gram_array Y2 = gram_array_f64(Y, 4, 2), Y3 = gram_array_f64(Y, 4, 3), O = gram_array_f64(out, 4, 1), O3 = gram_array_f64(out, 3, 1);
    CHECK_STATUS(gram_kde_logpdf(ctx, k, &Y2, &O), GRAM_ESHAPE);
    CHECK(msg_has("columns"), "dimension mismatch message");
    CHECK_STATUS(gram_kde_pdf(ctx, k, &Y3, &O3), GRAM_ESHAPE);
    CHECK_STATUS(gram_kde_logpdf(ctx, NULL, &Y3, &O), GRAM_EINVAL);
    CHECK_STATUS(gram_kde_logpdf(ctx, k, NULL, &O), GRAM_EINVAL);
    CHECK_STATUS(gram_kde_logpdf(ctx, k, &Y3, NULL), GRAM_EINVAL);
    Y[5] = NAN;
    CHECK_STATUS(gram_kde_logpdf(ctx, k, &Y3, &O), GRAM_ENONFINITE);
    CHECK(msg_has("row 1, column 2"), "query NaN position");
    Y[5] = 0;
    gram_array Oalias = gram_array_f64(Y, 4, 1);
    CHECK_STATUS(gram_kde_logpdf(ctx, k, &Y3, &Oalias), GRAM_EINVAL);
    gram_array Y0 = gram_array_f64(Y, 0, 3), O0 = gram_array_f64(out, 0, 1);
    CHECK_STATUS(gram_kde_logpdf(ctx, k, &Y0, &O0), GRAM_OK);
    CHECK_STATUS(gram_kde_logpdf_loo(ctx, k, &O), GRAM_ESHAPE);
    CHECK_STATUS(gram_kde_logpdf_loo(ctx, NULL, &O), GRAM_EINVAL);
    gram_array S2 = gram_array_f64(Y, 4, 2);
    CHECK_STATUS(gram_kde_sample(ctx, k, 1, &S2), GRAM_ESHAPE);
    CHECK_STATUS(gram_kde_sample(ctx, k, 1, NULL), GRAM_EINVAL);
    CHECK_STATUS(gram_kde_sample(ctx, NULL, 1, &Y3), GRAM_EINVAL);
    CHECK_STATUS(gram_kde_bandwidth(NULL, Y), GRAM_EINVAL);
    CHECK_STATUS(gram_kde_bandwidth(k, NULL), GRAM_EINVAL);
    CHECK_STATUS(gram_kde_bandwidth_matrix(k, NULL), GRAM_EINVAL);
    CHECK(gram_kde_n(NULL) == 0 && gram_kde_dim(NULL) == 0 && gram_kde_neff(NULL) == 0 && gram_kde_factor(NULL) == 0,
          "accessors on NULL");
    /* A successful call clears the previous message. */
    CHECK_STATUS(gram_kde_logpdf(ctx, k, &Y3, &O), GRAM_OK);
    CHECK(gram_context_message(ctx)[0] == 0, "message cleared after success: \"%s\"", gram_context_message(ctx));
    gram_kde_destroy(k);
    gram_kde_destroy(NULL);
    /* One data point: leave-one-out is undefined. */
    CHECK_STATUS(try_fit(&o, X, 1, D, NULL, 0, 0), GRAM_OK);
    A = gram_array_f64(X, 1, D);
    CHECK_STATUS(gram_kde_fit(ctx, &o, &A, NULL, &k), GRAM_OK);
    L = gram_array_f64(loo, 1, 1);
    CHECK_STATUS(gram_kde_logpdf_loo(ctx, k, &L), GRAM_EDOMAIN);
    gram_kde_destroy(k);
    free(X);
}


/* ---- 12. the covariance geometry at sizes past one block of rows ------------------------------ */

/* The covariance is built from blocks of rows and the data whitened by BLAS: N spanning several
 * blocks (the last one partial), with weights (one zero), against the long-double reference that
 * does its own covariance and Cholesky. */
static void test_covariance_blocks(void)
{
    check_rng g = {23};
    const int D = 16, M = 12;
    const int sizes[] = {255, 256, 257, 700};
    for (int si = 0; si < 4; si++) {
        const int N = sizes[si];
        double *X = random_data(&g, N, D, 1.0), *w = malloc(sizeof(double) * N);
        for (int i = 0; i < N; i++) w[i] = 0.1 + check_uniform(&g);
        w[N / 2] = 0.0;
        const double factor = 0.7;
        for (int weighted = 0; weighted < 2; weighted++) {
            gram_kde *k = fit(GRAM_GAUSSIAN, GRAM_KDE_COVARIANCE, GRAM_BW_FIXED, &factor, 1, X, N, D,
                              weighted ? w : NULL, GRAM_OK);
            if (!k) continue;
            ref_kde r;
            ref_init(&r, GRAM_GAUSSIAN, N, D, X, weighted ? w : NULL, 1, NULL, 1, factor);
            double Y[12 * 16], out[12], H[16 * 16];
            for (int i = 0; i < M; i++)
                for (int d = 0; d < D; d++) Y[i * D + d] = X[(i * 37 % N) * D + d] + 0.5 * check_normal(&g);
            logpdf(k, Y, M, D, out);
            for (int i = 0; i < M; i++) {
                ld want = ref_logpdf(&r, Y + i * D, -1);
                CHECK(close_log(out[i], want, 1e-11), "covariance N=%d weighted=%d query %d: got %.17g want %.17Lg", N,
                      weighted, i, out[i], want);
            }
            CHECK_STATUS(gram_kde_bandwidth_matrix(k, H), GRAM_OK);
            for (int a = 0; a < D; a++)
                for (int b = 0; b < D; b++) CHECK_CLOSE(H[a * D + b], ref_H(&r, a, b), 1e-12, 1e-15, "blocked covariance H");
            ref_free(&r);
            gram_kde_destroy(k);
        }
        if (si == 0) { /* finite data whose covariance overflows: refused, not a NaN factor */
            for (int t = 0; t < N * D; t++) X[t] *= 1e200;
            gram_kde *k = fit(GRAM_GAUSSIAN, GRAM_KDE_COVARIANCE, GRAM_BW_FIXED, &factor, 1, X, N, D, NULL, GRAM_EDOMAIN);
            CHECK(!k && strstr(gram_context_message(ctx), "variance of dimension 0 overflows"), "overflow message: \"%s\"",
                  gram_context_message(ctx));
        }
        free(X), free(w);
    }
}

/* ---- 13. inputs larger than memory --------------------------------------------------------- */

/* A broadcast view (row stride 0) of 10¹² rows is 24 TB to copy: the fit must say so at once,
 * before scanning 3·10¹² values for NaN (which took tens of minutes), and leave nothing behind. */
static void test_larger_than_memory(void)
{
    double row[3] = {1.0, 2.0, 3.0}, one = 0.5;
    gram_kde_options o;
    gram_kde_options_init(&o);
    o.rule = GRAM_BW_FIXED, o.bandwidth = &one, o.n_bandwidth = 1;
    gram_array X = {row, GRAM_FLOAT64, 1000000000000LL, 3, 0, 1};
    gram_kde *k = (gram_kde *)&k;
    CHECK_STATUS(gram_kde_fit(ctx, &o, &X, NULL, &k), GRAM_ENOMEM);
    CHECK(k == NULL, "no KDE on ENOMEM");
    const char *m = gram_context_message(ctx);
    CHECK(strstr(m, "1000000000000×3") && strstr(m, "GB"), "the message gives the size: \"%s\"", m);
    /* weights of that length are not scanned first either */
    double wv = 1.0;
    gram_array W = {&wv, GRAM_FLOAT64, 1000000000000LL, 1, 0, 1};
    k = (gram_kde *)&k;
    CHECK_STATUS(gram_kde_fit(ctx, &o, &X, &W, &k), GRAM_ENOMEM);
    CHECK(k == NULL, "no KDE on ENOMEM (weights)");
}

int main(void)
{
    gram_context_create(&ctx);
    static const struct { const char *name; void (*fn)(void); } tests[] = {
        {"logpdf_reference", test_logpdf_reference}, {"precision_and_views", test_precision_and_views},
        {"high_dimension", test_high_dimension},     {"loo_identity", test_loo_identity},
        {"normalisation", test_normalisation},       {"reflection", test_reflection},
        {"rule_of_thumb", test_rule_of_thumb},       {"isj", test_isj},
        {"cross_validation", test_cross_validation}, {"sampling", test_sampling},
        {"bad_input", test_bad_input},               {"covariance_blocks", test_covariance_blocks},
        {"larger_than_memory", test_larger_than_memory},
    };
    for (size_t t = 0; t < sizeof tests / sizeof tests[0]; t++) {
        long before = check_failed;
        clock_t c0 = clock();
        tests[t].fn();
        fprintf(stderr, "%-20s %s (%.2f s cpu)\n", tests[t].name, check_failed == before ? "ok" : "FAILED",
                (double)(clock() - c0) / CLOCKS_PER_SEC);
    }
    gram_context_destroy(ctx);
    return check_done();
}
