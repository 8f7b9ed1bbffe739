/* The Matérn kernel of any smoothness ν (scikit-learn's Matern(nu=...)): values, log-values and
 * lengthscale gradients against two references written here in long double — the closed forms at
 * half-integer ν (Rasmussen & Williams 2006, eq. 4.16) and, for any ν, the integral
 * representation of K_ν (matern_ref.h) — from tiny to overflowing distances, ν from 0.05 to 1e4;
 * scikit-learn's own test values (ν = 0.5+1e-10, ..., ν = 100 against the gaussian); the engine's
 * sums, log-sums and Gram blocks; the normaliser; bad ν. */
#include "check.h"
#include "gram.h"
#include "matern_ref.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef long double ld;
static gram_context *ctx;

static gram_kernel *P(const char *spec) { return check_kernel(ctx, spec); }

static gram_kernel *matern(double nu, double ls)
{
    char spec[128];
    snprintf(spec, sizeof spec, "matern(nu=%.17g, lengthscale=%.17g)", nu, ls);
    return P(spec);
}

/* R&W eq. 4.16: ν = p + 1/2, k = e^-z p!/(2p)! Σ_i (p+i)!/(i!(p-i)!) (2z)^(p-i), z = √(2ν) r/ℓ */
static ld half_integer(int p, ld z)
{
    ld s = 0, fp = tgammal(p + 1.0L), f2p = tgammal(2.0L * p + 1.0L);
    for (int i = 0; i <= p; i++)
        s += tgammal((ld)p + i + 1) / (tgammal(i + 1.0L) * tgammal((ld)p - i + 1)) * powl(2 * z, p - i);
    return expl(-z) * fp / f2p * s;
}

/* One-dimensional evaluation at distance r (lengthscale 1): value, log-value (through a one-point
 * log-sum) and the lengthscale derivative. */
static void eval1(const gram_kernel *k, double r, double *v, double *lv, double *g)
{
    double y = 0.0, x = r;
    CHECK_STATUS(gram_kernel_eval(ctx, k, 1, &y, &x, 0, v, g), GRAM_OK);
    gram_array ya = gram_array_f64(&y, 1, 1), xa = gram_array_f64(&x, 1, 1), oa = gram_array_f64(lv, 1, 1);
    CHECK_STATUS(gram_kernel_logsum(ctx, k, &ya, &xa, NULL, &oa), GRAM_OK);
}

static void test_half_integers(void)
{
    const int ps[] = {3, 4, 5, 10, 30};
    for (size_t pi = 0; pi < sizeof ps / sizeof *ps; pi++) {
        int p = ps[pi];
        ld nu = p + 0.5L;
        gram_kernel *k = matern((double)nu, 1.0);
        if (!k) continue;
        for (double r = 1e-9; r < 1e4; r *= 1.37) {
            ld z = sqrtl(2 * nu) * r, want = half_integer(p, z);
            double v, lv, g;
            eval1(k, r, &v, &lv, &g);
            char what[96];
            snprintf(what, sizeof what, "matern nu=%d.5 at r=%g: value", p, r);
            if (want > 1e-30L) CHECK_CLOSE(v, want, 2e-14, 0, what);
            else CHECK(v >= 0 && v <= 2 * want + 1e-300, "%s: got %g want %Lg", what, v, want);
            snprintf(what, sizeof what, "matern nu=%d.5 at r=%g: log-value", p, r);
            if (want > 0) CHECK_CLOSE(lv, logl(want), 0, 1e-14 * (1 + fabsl(logl(want))), what);
        }
        gram_kernel_destroy(k);
    }
    /* 0.5, 1.5, 2.5 are matern12/32/52 exactly, and print so */
    const char *names[] = {"matern12", "matern32", "matern52"};
    for (int i = 0; i < 3; i++) {
        gram_kernel *a = matern(0.5 + i, 1.3), *b = NULL;
        char spec[64], buf[128];
        snprintf(spec, sizeof spec, "%s(1.3)", names[i]);
        b = P(spec);
        if (a && b) {
            gram_kernel_spec(a, buf, sizeof buf);
            CHECK(!strncmp(buf, names[i], strlen(names[i])), "matern(nu=%g) prints as %s", 0.5 + i, buf);
            double y[2] = {0.1, 0.2}, x[2] = {0.9, -0.4}, va, vb;
            gram_kernel_eval(ctx, a, 2, y, x, 0, &va, NULL);
            gram_kernel_eval(ctx, b, 2, y, x, 0, &vb, NULL);
            CHECK(va == vb, "matern(nu=%g) is %s", 0.5 + i, names[i]);
        }
        gram_kernel_destroy(a);
        gram_kernel_destroy(b);
    }
}

/* Any ν against the integral representation: value, log-value and ∂k/∂log ℓ. */
static void test_general(void)
{
    const double nus[] = {0.05, 0.3, 0.5 + 1e-10, 0.7, 1.0, 1.2, 1.5 + 1e-10, 2.0, 2.5 + 1e-10, 3.3, 17.3, 100, 1000};
    for (size_t ni = 0; ni < sizeof nus / sizeof *nus; ni++) {
        double nu = nus[ni];
        gram_kernel *k = matern(nu, 1.0);
        if (!k) continue;
        for (double r = 1e-7; r < 3e3; r *= 1.9) {
            ld z = sqrtl(2.0L * nu) * r;
            if (z > 1e4) break; /* the quadrature's own range */
            ld lw = matern_ref_log_value(nu, z), lg = matern_ref_log_dlogl(nu, z);
            double v, lv, g;
            eval1(k, r, &v, &lv, &g);
            char what[96];
            snprintf(what, sizeof what, "matern nu=%.12g at r=%g", nu, r);
            /* the logarithms of the z > 2 path carry an error of about z ulps */
            double rel = 3e-14 + 4e-16 * (double)z;
            if (lw > -23) CHECK_CLOSE(v, expl(lw), rel, 0, what); /* k ≥ 1e-10 */
            CHECK_CLOSE(lv, lw, 0, 3e-14 * (1 + fabsl(lw)), what);
            if (lg > -23) CHECK_CLOSE(g, expl(lg), 1e-13 + 4e-16 * (double)z, 1e-16, what);
            else CHECK(g >= 0 && g < 1e-9, "%s: derivative %g", what, g);
        }
        gram_kernel_destroy(k);
    }
}

/* scikit-learn's test_matern_kernel: ν near the half-integers agrees with the closed forms, and
 * ν = 100 is close to the gaussian. */
static void test_sklearn_values(void)
{
    for (int i = 0; i < 3; i++) {
        gram_kernel *a = matern(0.5 + i + 1e-10, 1.0), *b = matern(0.5 + i, 1.0);
        for (double r = 0.0; a && b && r < 6; r += 0.05) {
            double va, vb, la, lb, ga, gb;
            eval1(a, r, &va, &la, &ga);
            eval1(b, r, &vb, &lb, &gb);
            CHECK(fabs(va - vb) < 1e-9, "nu=%g+1e-10 vs closed form at r=%g: %.17g %.17g", 0.5 + i, r, va, vb);
            CHECK(fabs(ga - gb) < 1e-9, "nu=%g+1e-10 gradient at r=%g: %.17g %.17g", 0.5 + i, r, ga, gb);
        }
        gram_kernel_destroy(a);
        gram_kernel_destroy(b);
    }
    gram_kernel *a = matern(100, 1.0), *b = P("rbf(1)");
    for (double r = 0.0; a && b && r < 6; r += 0.05) {
        double va, vb, l, g;
        eval1(a, r, &va, &l, &g);
        eval1(b, r, &vb, &l, &g);
        CHECK(fabs(va - vb) < 5e-3, "nu=100 vs gaussian at r=%g: %g %g", r, va, vb);
    }
    gram_kernel_destroy(a);
    gram_kernel_destroy(b);
    /* k(0) = 1 exactly; on a diagonal too */
    gram_kernel *k = matern(3.3, 0.7);
    if (k) {
        double x[3] = {1, 2, 3}, v, g;
        gram_kernel_eval(ctx, k, 3, x, x, 1, &v, &g);
        CHECK(v == 1.0 && g == 0.0, "k(x, x) = %.17g, gradient %g", v, g);
        gram_kernel_destroy(k);
    }
}

/* Distances that overflow, and log-sums where every value underflows. */
static void test_extremes(void)
{
    const double nus[] = {0.3, 1.7, 40.2};
    for (int i = 0; i < 3; i++) {
        gram_kernel *k = matern(nus[i], 1.0);
        if (!k) continue;
        double y = 1e200, x = -1e200, v, g;
        CHECK_STATUS(gram_kernel_eval(ctx, k, 1, &y, &x, 0, &v, &g), GRAM_OK);
        CHECK(v == 0.0 && g == 0.0, "nu=%g at an overflowing distance: %g, %g", nus[i], v, g);
        /* log-sum of 3 points at r = 1e5 and 1e120: log k is -√(2ν)·r + O(log r) */
        double X[3] = {1e5, 1e5, 1e120}, Y[1] = {0}, out[1];
        gram_array xa = gram_array_f64(X, 3, 1), ya = gram_array_f64(Y, 1, 1), oa = gram_array_f64(out, 1, 1);
        CHECK_STATUS(gram_kernel_logsum(ctx, k, &ya, &xa, NULL, &oa), GRAM_OK);
        ld z = sqrtl(2.0L * nus[i]) * 1e5L, want = logl(2.0L) + matern_ref_log_value(nus[i], z);
        CHECK_CLOSE(out[0], want, 1e-14, 0, "log-sum where every value underflows");
        X[0] = X[1] = 1e150; /* now the point at 1e120 dominates */
        CHECK_STATUS(gram_kernel_logsum(ctx, k, &ya, &xa, NULL, &oa), GRAM_OK);
        CHECK_CLOSE(out[0], -sqrtl(2.0L * nus[i]) * 1e120L, 1e-14, 0, "log-sum at 1e120 and 1e150");
        gram_kernel_destroy(k);
    }
}

/* The engine: sums, log-sums and Gram blocks with ARD lengthscales, and the gradient in each. */
static void test_engine(void)
{
    enum { M = 11, N = 140, D = 3 };
    const double ls[D] = {0.7, 1.9, 1.2}, nu = 3.3;
    gram_kernel *k = P("matern(nu=3.3, lengthscale=[0.7, 1.9, 1.2])");
    if (!k) return;
    check_rng r = {17};
    double X[N * D], Y[M * D], K[M * N], S[M], LS[M], *G = malloc(sizeof(double) * M * N * D);
    for (int i = 0; i < N * D; i++) X[i] = check_normal(&r);
    for (int i = 0; i < M * D; i++) Y[i] = check_normal(&r);
    gram_array xa = gram_array_f64(X, N, D), ya = gram_array_f64(Y, M, D);
    gram_array ka = gram_array_f64(K, M, N), sa = gram_array_f64(S, M, 1), la = gram_array_f64(LS, M, 1);
    CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, &ya, &xa, &ka, G), GRAM_OK);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, NULL, &sa), GRAM_OK);
    CHECK_STATUS(gram_kernel_logsum(ctx, k, &ya, &xa, NULL, &la), GRAM_OK);
    for (int i = 0; i < M; i++) {
        ld tot = 0;
        for (int j = 0; j < N; j++) {
            ld t = 0, z2[D];
            for (int d = 0; d < D; d++) {
                ld q = ((ld)Y[i * D + d] - X[j * D + d]) / ls[d];
                z2[d] = q * q;
                t += q * q;
            }
            ld z = sqrtl(2 * nu * t), v = expl(matern_ref_log_value(nu, z)), g = expl(matern_ref_log_dlogl(nu, z));
            tot += v;
            CHECK_CLOSE(K[i * N + j], v, 3e-14, 0, "Gram block");
            for (int d = 0; d < D; d++) CHECK_CLOSE(G[(i * N + j) * D + d], g * z2[d] / t, 1e-13, 1e-16, "gradient");
        }
        CHECK_CLOSE(S[i], tot, 3e-14, 0, "sum");
        CHECK_CLOSE(LS[i], logl(tot), 0, 3e-14, "log-sum");
    }
    free(G);
    gram_kernel_destroy(k);
}

/* ∫ k over R^D at ν = 7/2 by the closed form's moments, against (2π/ν)^(D/2) Γ(ν+D/2)/Γ(ν) ℓ^D. */
static void test_normalizer(void)
{
    gram_kernel *k = P("matern(nu=3.5, lengthscale=1.7)");
    if (!k) return;
    for (int D = 1; D <= 4; D++) {
        /* ∫ k = S_(D-1) ∫_0^∞ k(r) r^(D-1) dr, r = z/√(2ν) ℓ, k = e^-z Σ c_i z^(p-i) */
        int p = 3;
        ld nu = 3.5L, l = 1.7L, sum = 0, fp = tgammal(p + 1.0L), f2p = tgammal(2.0L * p + 1.0L);
        for (int i = 0; i <= p; i++) {
            ld c = fp / f2p * tgammal((ld)p + i + 1) / (tgammal(i + 1.0L) * tgammal((ld)p - i + 1)) * powl(2, p - i);
            sum += c * tgammal((ld)(p - i + D));
        }
        ld sphere = 2 * powl(3.141592653589793238462643383279502884L, D / 2.0L) / tgammal(D / 2.0L);
        ld want = sphere * sum * powl(l / sqrtl(2 * nu), D);
        double got;
        CHECK_STATUS(gram_kernel_log_normalizer(ctx, k, D, &got), GRAM_OK);
        CHECK_CLOSE(got, logl(want), 0, 1e-14, "log normalizer");
    }
    gram_kernel_destroy(k);
}

static void test_errors(void)
{
    const char *bad[] = {"matern(nu=0)", "matern(nu=-1)", "matern(nu=inf)", "matern(nu=1e5)",
                         "matern(nu=1.2, nu_bounds=[1, 2])", "matern(nu=[1, 2])"};
    const char *why[] = {"must be > 0", "must be > 0", "finite", "<= 10000", "fixed, as in scikit-learn", "single number"};
    for (int i = 0; i < 6; i++) {
        gram_kernel *k = NULL;
        gram_status s = gram_kernel_parse(ctx, bad[i], &k);
        CHECK(s == GRAM_EPARSE || s == GRAM_EINVAL, "%s: status %d", bad[i], (int)s);
        CHECK(k == NULL && strstr(gram_context_message(ctx), why[i]), "%s: message %s", bad[i],
              gram_context_message(ctx));
    }
    double nu = 1e5;
    gram_kernel *k = NULL;
    CHECK_STATUS(gram_kernel_create(ctx, GRAM_MATERN, 0, NULL, 1, &nu, &k), GRAM_EINVAL);
    /* nu is no hyperparameter */
    k = P("matern(nu=0.7, lengthscale=[1, 2])");
    if (k) {
        CHECK(gram_kernel_n_hyper(k) == 2, "hyperparameters: %lld", (long long)gram_kernel_n_hyper(k));
        char buf[128];
        gram_kernel_spec(k, buf, sizeof buf);
        CHECK(!strcmp(buf, "matern(lengthscale=[1, 2], nu=0.69999999999999996)"), "spec %s", buf);
        gram_kernel_destroy(k);
    }
}

int main(void)
{
    if (gram_context_create(&ctx)) return 1;
    test_half_integers();
    test_general();
    test_sklearn_values();
    test_extremes();
    test_engine();
    test_normalizer();
    test_errors();
    gram_context_destroy(ctx);
    return check_done();
}
