/* Random features of the dot-product families: positive and hyperbolic features of softmax
 * (exp(x·y), Choromanski et al. 2021) and arc-cosine features (Cho & Saul 2009), statistically.
 *
 * Fixed seeds, so every check is deterministic; the false-alarm rate quoted is the probability
 * that a correct implementation fails on fresh seeds. z-tests use |z| ≤ 5 (two-sided normal tail
 * 5.7e-7 per check; about 120 checks here, below 1e-4 for the file), the standard error estimated
 * from the same S draws.
 *
 * Variances (R features, s = (x + y)/ℓ, k the kernel value with its factor c):
 *   softmax positive     Var = k²(exp(|s|²) - 1)/R: each term is c·exp(ω·s - |x|²/2 - |y|²/2) and
 *                        E exp(2ω·s) = exp(2|s|²) (Choromanski et al. 2021, Lemma 2; the same as
 *                        the gaussian's, whose prefactor cancels in the ratio)
 *   softmax hyperbolic   Var = k² exp(-|s|²)(exp(|s|²) - 1)²/R (R/2 frequencies, each
 *                        2·cosh(ω·s), Var cosh(ω·s) = (e^{|s|²} - 1)²/2)
 *   arccos degree n      Var = (2c²·k_2n(x, y) - k²)/R, k_2n = |x|^2n |y|^2n J_2n(θ)/π: each term is
 *                        2c·Θ(a)Θ(b)(ab)^n (a = ω·x, b = ω·y), whose square has mean 4c²·k_2n/2 by
 *                        Cho & Saul's integral for degree 2n (J_4 by quadrature, arccos_ref.h)
 */
#include "arccos_ref.h"
#include "check.h"
#include "features/features.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *mname(gram_features_method m)
{
    static const char *n[] = {"RFF", "RFF_PHASE", "ORF", "SORF", "POSITIVE", "POSITIVE_ORF", "HYPERBOLIC",
                              "HYPERBOLIC_ORF", "TENSORSKETCH", "ARCCOS", "NYSTROM"};
    return (int)m >= 0 && (int)m <= 10 ? n[m] : "?";
}

/* φ(x)·φ(y) of one map (x, y as float64 or, f32, rounded to float32 first). */
static double feature_dot(gram_context *ctx, const gram_kernel *k, int64_t D, gram_features_method m, int64_t R,
                          uint64_t seed, const double *x, const double *y, int f32)
{
    gram_features *f = NULL;
    gram_status s = gram_features_create(ctx, k, D, m, R, seed, &f);
    CHECK(s == GRAM_OK, "create %s: %s", mname(m), gram_context_message(ctx));
    if (s) return NAN;
    long double dot = 0;
    if (f32) {
        float *in = malloc((size_t)(2 * D) * sizeof(float)), *out = malloc((size_t)(2 * R) * sizeof(float));
        for (int64_t d = 0; d < D; d++) in[d] = (float)x[d], in[D + d] = (float)y[d];
        gram_array X = gram_array_f32(in, 2, D), O = gram_array_f32(out, 2, R);
        s = gram_features_transform(ctx, f, &X, &O);
        for (int64_t j = 0; j < R; j++) dot += (long double)out[j] * out[R + j];
        free(in), free(out);
    } else {
        double *in = malloc((size_t)(2 * D) * sizeof(double)), *out = malloc((size_t)(2 * R) * sizeof(double));
        memcpy(in, x, (size_t)D * sizeof(double));
        memcpy(in + D, y, (size_t)D * sizeof(double));
        gram_array X = gram_array_f64(in, 2, D), O = gram_array_f64(out, 2, R);
        s = gram_features_transform(ctx, f, &X, &O);
        for (int64_t j = 0; j < R; j++) dot += (long double)out[j] * out[R + j];
        free(in), free(out);
    }
    CHECK(s == GRAM_OK, "transform %s: %s", mname(m), gram_context_message(ctx));
    gram_features_destroy(f);
    return (double)dot;
}

static double kval(gram_context *ctx, const gram_kernel *k, int64_t D, const double *x, const double *y)
{
    double v = NAN;
    CHECK_STATUS(gram_kernel_eval(ctx, k, D, y, x, 0, &v, NULL), GRAM_OK);
    return v;
}

/* Three pairs in D = 3: close, at a wide angle, nearly opposite (arc-cosine's J_n small). */
static const double PX[3][3] = {{0.4, -0.2, 0.3}, {0.7, 0.1, -0.5}, {0.6, -0.3, 0.2}};
static const double PY[3][3] = {{0.3, 0.1, 0.2}, {-0.2, 0.8, 0.3}, {-0.5, 0.35, -0.1}};

typedef struct { const char *spec; int arccos; } kcase;
static const kcase kernels[] = {
    {"softmax", 0},
    {"softmax(1.4)", 0},
    {"2.5*softmax(lengthscale=[0.9, 1.3, 1.1])", 0},
    {"arccos(degree=0)", 1},
    {"arccos(degree=1)", 1},
    {"arccos(degree=2)", 1},
    {"arccos(lengthscale=[0.8, 1.5, 1.2], degree=1)", 1},
    {"constant(3) * arccos(0.7, degree=2)", 1},
};
#define NK ((int)(sizeof kernels / sizeof kernels[0]))

/* Mean of φ(x)·φ(y) over S seeds within 5 standard errors of k(x, y), every method that covers
 * the kernel, float64 and float32 inputs (whose rounding moves the mean far less than 5 se). */
static void test_unbiased(gram_context *ctx)
{
    const int S = 300;
    const int64_t R = 64;
    const gram_features_method sm[4] = {GRAM_FEATURES_POSITIVE, GRAM_FEATURES_POSITIVE_ORF, GRAM_FEATURES_HYPERBOLIC,
                                        GRAM_FEATURES_HYPERBOLIC_ORF};
    for (int kc = 0; kc < NK; kc++) {
        gram_kernel *k = check_kernel(ctx, kernels[kc].spec);
        if (!k) continue;
        const int nm = kernels[kc].arccos ? 1 : 4;
        for (int mi = 0; mi < nm; mi++) {
            const gram_features_method m = kernels[kc].arccos ? GRAM_FEATURES_ARCCOS : sm[mi];
            for (int p = 0; p < 3; p++)
                for (int f32 = 0; f32 <= 1; f32++) {
                    const double want = kval(ctx, k, 3, PX[p], PY[p]);
                    long double s1 = 0, s2 = 0;
                    for (int seed = 0; seed < S; seed++) {
                        const double v = feature_dot(ctx, k, 3, m, R, 500 + (uint64_t)seed, PX[p], PY[p], f32);
                        s1 += v;
                        s2 += (long double)v * v;
                    }
                    const double mean = (double)(s1 / S), se = sqrt((double)((s2 - s1 * s1 / S) / (S - 1)) / S);
                    CHECK(fabs(mean - want) <= 5 * se + 1e-12, "%s %s pair %d f32=%d: mean %.6g, k %.6g, se %.3g (z = %.2f)",
                          kernels[kc].spec, mname(m), p, f32, mean, want, se, (mean - want) / se);
                }
        }
        gram_kernel_destroy(k);
    }
}

/* The variance formula of each estimator (header): the mean squared error over S seeds against
 * it, as a z-test on the squared errors. */
static void test_variance(gram_context *ctx)
{
    const int S = 800;
    const int64_t R = 16;
    for (int kc = 0; kc < NK; kc++) {
        gram_kernel *k = check_kernel(ctx, kernels[kc].spec);
        if (!k) continue;
        const gram__leaf *L = &k->leaves[k->n_leaves - 1]; /* the family leaf (after a constant) */
        const double c = k->n_leaves == 2 ? k->leaves[0].value : k->n_ops == 2 ? k->ops[1].c : 1.0;
        const int nm = kernels[kc].arccos ? 1 : 2;
        for (int mi = 0; mi < nm; mi++) {
            const gram_features_method m = kernels[kc].arccos ? GRAM_FEATURES_ARCCOS
                                           : mi == 0         ? GRAM_FEATURES_POSITIVE
                                                             : GRAM_FEATURES_HYPERBOLIC;
            for (int p = 0; p < 3; p++) {
                const double *x = PX[p], *y = PY[p];
                const double kd = kval(ctx, k, 3, x, y);
                long double ss = 0, xx = 0, yy = 0, sxy = 0;
                for (int d = 0; d < 3; d++) {
                    const long double is = L->inv_scale[L->n_scale == 1 ? 0 : d], u = x[d] * is, v = y[d] * is;
                    ss += (u + v) * (u + v), xx += u * u, yy += v * v, sxy += u * v;
                }
                double want;
                if (m == GRAM_FEATURES_POSITIVE) want = kd * kd * expm1((double)ss) / (double)R;
                else if (m == GRAM_FEATURES_HYPERBOLIC) want = kd * kd * exp((double)-ss) * expm1((double)ss) * expm1((double)ss) / (double)R;
                else {
                    const int n = L->degree;
                    long double cs = sxy / sqrtl(xx * yy), th = acosl(cs > 1 ? 1 : cs < -1 ? -1 : cs);
                    long double k2n = powl(xx * yy, n) * arccos_ref_J(2 * n, th) / 3.14159265358979323846264338327950288L;
                    want = (double)((2 * (long double)c * c * k2n - (long double)kd * kd) / R);
                }
                long double s1 = 0, s2 = 0;
                for (int seed = 0; seed < S; seed++) {
                    const double e = feature_dot(ctx, k, 3, m, R, 9000 + (uint64_t)seed, x, y, 0) - kd;
                    s1 += (long double)e * e;
                    s2 += (long double)e * e * e * e;
                }
                const double mse = (double)(s1 / S), se = sqrt((double)((s2 - s1 * s1 / S) / (S - 1)) / S);
                CHECK(fabs(mse - want) <= 5 * se + 1e-15, "%s %s pair %d: MSE %.6g, variance formula %.6g, se %.3g (z = %.2f)",
                      kernels[kc].spec, mname(m), p, mse, want, se, (mse - want) / se);
            }
        }
        gram_kernel_destroy(k);
    }
}

/* arccos_ref.h's two routes to J_0..J_2 agree (the quadrature of the derivatives, and Cho & Saul's
 * angular integral), and family.c's J_n/π matches them as θ approaches π, where the closed forms
 * cancel (J_1 ~ φ³/3, J_2 ~ 4φ⁵/15, φ = π - θ): relative 1e-13 at every φ from 1.5 down to 1e-6,
 * the reference taken at the angle of the double c = cos θ family.c is given. */
static void test_arccos_near_pi(void)
{
    const long double PI = 3.14159265358979323846264338327950288L;
    const double phis[] = {1.5, 1.0, 0.999, 0.7, 0.3, 0.1, 1e-2, 1e-3, 1e-4, 1e-6};
    for (int n = 0; n <= 2; n++)
        for (size_t i = 0; i < sizeof phis / sizeof *phis; i++) {
            const double c = -cos(phis[i]);
            const long double phi = acosl(-(long double)c);
            const long double a = n == 0 ? phi : n == 1 ? arccos_j1_ld(phi) : arccos_j2_ld(phi);
            if (phis[i] >= 1e-2) {
                const long double b = arccos_ref_J(n, PI - phi);
                CHECK(fabsl(a - b) <= 1e-15L * fabsl(a), "J_%d(π - %g): quadratures %.17Lg and %.17Lg", n, phis[i], a, b);
            }
            double dj = 0;
            const double got = gram__arccos_angular(n, c, &dj);
            CHECK(fabsl(got - a / PI) <= 1e-13L * (a / PI), "J_%d(π - %g)/π = %.17g, want %.17Lg (rel err %.3Lg)", n,
                  phis[i], got, a / PI, fabsl(got - a / PI) / (a / PI));
            /* the derivative in cos θ: dJ_1/dc = φ, dJ_2/dc = 4 J_1 (n = 0: 1/sin θ) */
            const long double dw = n == 0 ? 1 / sinl(phi) : n == 1 ? phi : 4 * arccos_j1_ld(phi);
            CHECK(fabsl(dj - dw / PI) <= 1e-13L * (dw / PI), "dJ_%d/dc at π - %g: %.17g, want %.17Lg", n, phis[i], dj,
                  dw / PI);
        }
}

/* Where the kernel and method do not match, the message names the family, why, and what applies. */
static void test_errors(gram_context *ctx)
{
    struct { const char *spec; gram_features_method m; const char *want[3]; } bad[] = {
        {"softmax", GRAM_FEATURES_RFF, {"RFF features do not cover the softmax kernel", "not shift-invariant",
                                        "POSITIVE, POSITIVE_ORF, HYPERBOLIC, HYPERBOLIC_ORF"}},
        {"softmax(2)", GRAM_FEATURES_ORF, {"ORF", "no spectral density", "HYPERBOLIC"}},
        {"softmax", GRAM_FEATURES_SORF, {"SORF", "softmax", "POSITIVE"}},
        {"softmax", GRAM_FEATURES_ARCCOS, {"ARCCOS features do not cover the softmax kernel", "POSITIVE", "softmax"}},
        {"arccos", GRAM_FEATURES_RFF, {"arccos", "not shift-invariant", "methods that do: ARCCOS"}},
        {"arccos(degree=2)", GRAM_FEATURES_POSITIVE, {"POSITIVE features do not cover the arccos kernel", "ARCCOS", "arccos"}},
        {"rbf(1)", GRAM_FEATURES_ARCCOS, {"ARCCOS features do not cover the gaussian kernel", "RFF", "POSITIVE"}},
        {"softmax + arccos", GRAM_FEATURES_POSITIVE, {"a sum of kernels", "softmax", "ARCCOS arccos"}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gram_kernel *k = check_kernel(ctx, bad[i].spec);
        if (!k) continue;
        gram_features *f = (gram_features *)1;
        CHECK_STATUS(gram_features_create(ctx, k, 2, bad[i].m, 8, 1, &f), GRAM_EINVAL);
        const char *msg = gram_context_message(ctx);
        CHECK(f == NULL && strstr(msg, bad[i].want[0]) && strstr(msg, bad[i].want[1]) && strstr(msg, bad[i].want[2]),
              "%s with %s: message \"%s\"", bad[i].spec, mname(bad[i].m), msg);
        gram_kernel_destroy(k);
    }
    /* R: ARCCOS and POSITIVE take any R >= 1, HYPERBOLIC an even one */
    gram_kernel *sm = check_kernel(ctx, "softmax"), *ac = check_kernel(ctx, "arccos");
    if (sm && ac) {
        gram_features *f = NULL;
        CHECK_STATUS(gram_features_create(ctx, ac, 3, GRAM_FEATURES_ARCCOS, 7, 1, &f), GRAM_OK);
        gram_features_destroy(f);
        CHECK_STATUS(gram_features_create(ctx, ac, 3, GRAM_FEATURES_ARCCOS, 0, 1, &f), GRAM_EINVAL);
        CHECK_STATUS(gram_features_create(ctx, sm, 3, GRAM_FEATURES_POSITIVE, 7, 1, &f), GRAM_OK);
        gram_features_destroy(f);
        CHECK_STATUS(gram_features_create(ctx, sm, 3, GRAM_FEATURES_HYPERBOLIC, 7, 1, &f), GRAM_EINVAL);
        CHECK(strstr(gram_context_message(ctx), "must be even"), "%s", gram_context_message(ctx));
    }
    gram_kernel_destroy(sm);
    gram_kernel_destroy(ac);
}

/* Exact values: the features are what the header says for a map whose frequencies are read back
 * (gram_features_frequencies), in float64 and float32, including Θ(0) = 1/2 at x = 0 for n = 0;
 * and φ(0)·φ(0) = 1/2 exactly there, gram.h's k_0(0, 0). */
static void test_exact(gram_context *ctx)
{
    const char *specs[] = {"arccos(degree=0)", "arccos(lengthscale=[0.5, 2, 1], degree=1)", "3*arccos(1.5, degree=2)",
                           "softmax(lengthscale=[1.2, 0.8, 1])", "2*softmax(1.3)"};
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++) {
        gram_kernel *k = check_kernel(ctx, specs[si]);
        if (!k) continue;
        const int arc = strstr(specs[si], "arccos") != NULL;
        const gram__leaf *L = &k->leaves[k->n_leaves - 1];
        const double c = k->n_ops == 2 ? k->ops[1].c : 1.0;
        for (int mi = 0; mi < (arc ? 1 : 2); mi++) {
            const gram_features_method m = arc ? GRAM_FEATURES_ARCCOS : mi ? GRAM_FEATURES_HYPERBOLIC : GRAM_FEATURES_POSITIVE;
            const int64_t R = 10, D = 3, F = m == GRAM_FEATURES_HYPERBOLIC ? R / 2 : R;
            gram_features *f = NULL;
            CHECK_STATUS(gram_features_create(ctx, k, D, m, R, 31, &f), GRAM_OK);
            if (!f) continue;
            double W[30], X[9] = {0.3, -0.7, 0.2, 0, 0, 0, -1.1, 0.4, 0.9}, out[30];
            float X32[9], out32[30];
            for (int j = 0; j < 9; j++) X32[j] = (float)X[j];
            gram_array Om = gram_array_f64(W, F, D), A = gram_array_f64(X, 3, D), O = gram_array_f64(out, 3, R);
            gram_array A32 = gram_array_f32(X32, 3, D), O32 = gram_array_f32(out32, 3, R);
            CHECK_STATUS(gram_features_frequencies(f, &Om, NULL), GRAM_OK);
            CHECK_STATUS(gram_features_transform(ctx, f, &A, &O), GRAM_OK);
            CHECK_STATUS(gram_features_transform(ctx, f, &A32, &O32), GRAM_OK);
            for (int i = 0; i < 3; i++) {
                long double nrm = 0;
                for (int d = 0; d < D; d++) {
                    const long double u = X[i * D + d] * (long double)L->inv_scale[L->n_scale == 1 ? 0 : d];
                    nrm += u * u;
                }
                for (int64_t j = 0; j < F; j++) {
                    long double p = 0, want, want2 = 0;
                    for (int d = 0; d < D; d++) p += (long double)W[j * D + d] * X[i * D + d];
                    if (arc) {
                        const int n = L->degree;
                        want = sqrtl(2 * (long double)c / R) * (p > 0 ? powl(p, n) : p == 0 && n == 0 ? 0.5L : 0);
                    } else {
                        want = sqrtl((long double)c / R) * expl(p - nrm / 2);
                        want2 = sqrtl((long double)c / R) * expl(-p - nrm / 2);
                    }
                    CHECK(fabsl(out[i * R + j] - want) <= 1e-14L * fabsl(want) + 1e-300L, "%s %s row %d feature %lld: %.17g, want %.17Lg",
                          specs[si], mname(m), i, (long long)j, out[i * R + j], want);
                    CHECK(fabsl(out32[i * R + j] - want) <= 2e-6L * fabsl(want) + 1e-7L * sqrtl(2 * (long double)c / R),
                          "%s %s float32 row %d feature %lld: %.9g, want %.9Lg", specs[si], mname(m), i, (long long)j,
                          out32[i * R + j], want);
                    if (m == GRAM_FEATURES_HYPERBOLIC)
                        CHECK(fabsl(out[i * R + F + j] - want2) <= 1e-14L * want2, "%s hyperbolic row %d feature %lld: %.17g, want %.17Lg",
                              specs[si], i, (long long)(F + j), out[i * R + F + j], want2);
                }
            }
            if (arc && L->degree == 0) {
                long double dd = 0;
                for (int64_t j = 0; j < R; j++) dd += (long double)out[R + j] * out[R + j];
                CHECK(fabsl(dd - 0.5L) <= 1e-15L, "arccos(degree=0): φ(0)·φ(0) = %.17Lg, k(0, 0) = 1/2", dd);
            }
            gram_features_destroy(f);
        }
        gram_kernel_destroy(k);
    }
}

/* One map with many features: K̂ within 5 of its standard deviations (the variance formula) of k,
 * so a map whose scale were off by a few percent (a wrong amplitude or law) is seen, which the
 * S-seed means at R = 64 might not. */
static void test_large_R(gram_context *ctx)
{
    const int64_t R = 1 << 17;
    const char *specs[] = {"arccos(degree=0)", "arccos(degree=1)", "arccos(lengthscale=[0.8, 1.5, 1.2], degree=2)",
                           "softmax(1.4)"};
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++) {
        gram_kernel *k = check_kernel(ctx, specs[si]);
        if (!k) continue;
        const int arc = strstr(specs[si], "arccos") != NULL;
        const gram__leaf *L = &k->leaves[k->n_leaves - 1];
        for (int p = 0; p < 2; p++) {
            const double *x = PX[p], *y = PY[p];
            const double kd = kval(ctx, k, 3, x, y);
            long double ss = 0, xx = 0, yy = 0, sxy = 0;
            for (int d = 0; d < 3; d++) {
                const long double is = L->inv_scale[L->n_scale == 1 ? 0 : d], u = x[d] * is, v = y[d] * is;
                ss += (u + v) * (u + v), xx += u * u, yy += v * v, sxy += u * v;
            }
            long double var;
            if (arc) {
                const int n = L->degree;
                long double cs = sxy / sqrtl(xx * yy);
                var = (2 * powl(xx * yy, n) * arccos_ref_J(2 * n, acosl(cs)) / 3.14159265358979323846264338327950288L -
                       (long double)kd * kd) / R;
            } else {
                var = (long double)kd * kd * expm1l(ss) / R;
            }
            const double got = feature_dot(ctx, k, 3, arc ? GRAM_FEATURES_ARCCOS : GRAM_FEATURES_POSITIVE, R, 2024, x, y, 0);
            const double sd = (double)sqrtl(var);
            CHECK(fabs(got - kd) <= 5 * sd, "%s pair %d, R = %lld: K̂ %.8g, k %.8g, sd %.3g (z = %.2f)", specs[si], p,
                  (long long)R, got, kd, sd, (got - kd) / sd);
        }
        gram_kernel_destroy(k);
    }
}

int main(void)
{
    gram_context *ctx = NULL;
    if (gram_context_create(&ctx) != GRAM_OK) return 1;
    test_arccos_near_pi();
    test_errors(ctx);
    test_exact(ctx);
    test_unbiased(ctx);
    test_variance(ctx);
    test_large_R(ctx);
    gram_context_destroy(ctx);
    return check_done();
}
