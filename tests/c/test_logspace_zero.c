/* Zero factors in the kernel program: a zero scale (0, or the -0.0 a product of numbers underflows
 * to) of a kernel that can be negative or that overflows, a compact kernel outside its support
 * times a kernel that overflows, and log-values of +inf. Each once gave NaN in the log-space sum
 * (log of a negative value, -inf + inf) or in the direct sum and the gradients (0 · inf); the
 * answers are checked against the direct sum and long-double sums written here. */
#include "check.h"
#include "gram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef long double ld;
static gram_context *ctx;

static gram_kernel *P(const char *spec) { return check_kernel(ctx, spec); }

enum { M = 13, N = 300, D = 3 };

/* log Σ_j exp(-|y_i - x_j|²/2), the gaussian part, in long double */
static ld log_gauss_sum(const double *y, const double *X, int n)
{
    ld s = 0;
    for (int j = 0; j < n; j++) {
        ld t = 0;
        for (int d = 0; d < D; d++) t += ((ld)y[d] - X[j * D + d]) * ((ld)y[d] - X[j * D + d]);
        s += expl(-t / 2);
    }
    return logl(s);
}

/* "gaussian + 0*linear" and its -0.0 form, whose linear term is negative for about half the pairs:
 * the log-sum must be the gaussian's, as the direct sum is. */
static void test_zero_scale(void)
{
    check_rng r = {7};
    double X[N * D], Y[M * D], ls[M], s[M];
    for (int i = 0; i < N * D; i++) X[i] = check_normal(&r);
    for (int i = 0; i < M * D; i++) Y[i] = check_normal(&r);
    gram_array xa = gram_array_f64(X, N, D), ya = gram_array_f64(Y, M, D);
    gram_array la = gram_array_f64(ls, M, 1), sa = gram_array_f64(s, M, 1);
    gram_kernel *lin = P("linear(sigma0=0.5)"), *g = P("gaussian"), *z = NULL, *k3 = NULL;
    if (!lin || !g) return;
    CHECK_STATUS(gram_kernel_scale(ctx, -0.0, lin, &z), GRAM_OK);
    if (z) CHECK_STATUS(gram_kernel_add(ctx, g, z, &k3), GRAM_OK);
    gram_kernel *ks[4] = {P("gaussian + 0*linear"), P("gaussian + -1e-200*1e-200*linear(sigma0=1)"), k3,
                          P("0*(cosine*linear) + gaussian*(1 + 0*neg_l2)")};
    for (int c = 0; c < 4; c++) {
        gram_kernel *k = ks[c];
        if (!k) continue;
        CHECK(gram_kernel_is_nonnegative(k), "case %d is non-negative", c);
        for (int arch = 0; arch < 3; arch++) {
            if (gram_context_set_arch(ctx, arch == 0 ? "ref" : arch == 1 ? "avx2" : "avx512")) continue;
            for (int f32 = 0; f32 < 2; f32++) {
                float Xf[N * D], Yf[M * D];
                for (int i = 0; i < N * D; i++) Xf[i] = (float)X[i];
                for (int i = 0; i < M * D; i++) Yf[i] = (float)Y[i];
                gram_array xf = gram_array_f32(Xf, N, D), yf = gram_array_f32(Yf, M, D);
                CHECK_STATUS(gram_kernel_logsum(ctx, k, f32 ? &yf : &ya, f32 ? &xf : &xa, NULL, &la), GRAM_OK);
                CHECK_STATUS(gram_kernel_sum(ctx, k, f32 ? &yf : &ya, f32 ? &xf : &xa, NULL, &sa), GRAM_OK);
                for (int i = 0; i < M; i++) {
                    ld want = log_gauss_sum(Y + i * D, X, N);
                    CHECK(!isnan(ls[i]) && !isnan(s[i]), "case %d row %d: NaN (log-sum %g, sum %g)", c, i, ls[i], s[i]);
                    CHECK_CLOSE(ls[i], want, 0, f32 ? 1e-6 : 1e-13, "log-sum with a zero-scaled term");
                    CHECK_CLOSE(ls[i], logl(s[i]), 0, f32 ? 1e-6 : 1e-13, "log-sum against the direct sum");
                }
            }
        }
        gram_context_set_arch(ctx, "auto");
    }
    for (int c = 0; c < 4; c++) gram_kernel_destroy(ks[c]);
    gram_kernel_destroy(lin);
    gram_kernel_destroy(g);
    gram_kernel_destroy(z);
}

/* Zero factors against values that overflow: "gaussian + 0*linear" at |x| = 1e200 (x·y = inf),
 * a tophat outside its support times an overflowing square, and a log-value of +inf. */
static void test_overflow(void)
{
    double X[2 * D] = {1e200, 1e200, 0, 1e200, 1e200, 1}, Y[D] = {1e200, 1e200, 0.5}, out[2], G[2 * 4];
    gram_array xa = gram_array_f64(X, 2, D), ya = gram_array_f64(Y, 1, D), o1 = gram_array_f64(out, 1, 1);
    gram_kernel *k = P("gaussian + 0*linear(sigma0=1)");
    if (k) {
        /* |y - x|² = 0.25 for both points */
        ld want = 2 * expl(-0.125L);
        CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, NULL, &o1), GRAM_OK);
        CHECK_CLOSE(out[0], want, 1e-15, 0, "sum with 0 * an overflowing linear term");
        CHECK_STATUS(gram_kernel_logsum(ctx, k, &ya, &xa, NULL, &o1), GRAM_OK);
        CHECK_CLOSE(out[0], logl(want), 0, 1e-15, "log-sum with 0 * an overflowing linear term");
        double v, g[3];
        CHECK_STATUS(gram_kernel_eval(ctx, k, D, Y, X, 0, &v, g), GRAM_OK);
        CHECK(v == (double)expl(-0.125L) && g[1] == 0.0 && g[2] == 0.0 && !isnan(g[0]),
              "one pair: %g, gradient %g %g %g", v, g[0], g[1], g[2]);
        gram_array oa = gram_array_f64(out, 1, 2);
        CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, &ya, &xa, &oa, G), GRAM_OK);
        for (int i = 0; i < 2 * 3; i++) CHECK(isfinite(G[i]), "gradient entry %d: %g", i, G[i]);
        CHECK(out[0] == v && out[1] == v, "Gram block with 0 * overflow: %g %g", out[0], out[1]);
        gram_kernel_destroy(k);
    }
    /* the points 2 apart: tophat(1) is 0 while the square of x·y + 1 overflows */
    double Xc[D] = {1e200, 1e200, 2}, Yc[D] = {1e200, 1e200, 0};
    gram_array xc = gram_array_f64(Xc, 1, D), yc = gram_array_f64(Yc, 1, D);
    k = P("tophat(1) * poly(degree=2, gamma=1, coef0=1) + gaussian(10)");
    if (k) {
        ld want = expl(-0.02L); /* the gaussian at distance 2, lengthscale 10 */
        CHECK_STATUS(gram_kernel_sum(ctx, k, &yc, &xc, NULL, &o1), GRAM_OK);
        CHECK_CLOSE(out[0], want, 1e-15, 0, "sum: 0 (outside the support) * inf");
        CHECK_STATUS(gram_kernel_logsum(ctx, k, &yc, &xc, NULL, &o1), GRAM_OK);
        CHECK_CLOSE(out[0], logl(want), 0, 1e-15, "log-sum: log 0 + log inf");
        gram_kernel_destroy(k);
    }
    /* a log-value of +inf: an even polynomial that overflows gives +inf, not NaN */
    k = P("poly(degree=2, gamma=1, coef0=1)");
    if (k) {
        double Xp[2 * D] = {1e200, 0, 0, 1, 0, 0}, Yp[D] = {1e200, 0, 0};
        gram_array xp = gram_array_f64(Xp, 2, D), yp = gram_array_f64(Yp, 1, D);
        for (int arch = 0; arch < 3; arch++) {
            if (gram_context_set_arch(ctx, arch == 0 ? "ref" : arch == 1 ? "avx2" : "avx512")) continue;
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &yp, &xp, NULL, &o1), GRAM_OK);
            CHECK(out[0] == INFINITY, "log-sum of an overflowing term: %g", out[0]);
        }
        gram_context_set_arch(ctx, "auto");
        gram_kernel_destroy(k);
    }
}

int main(void)
{
    if (gram_context_create(&ctx)) return 1;
    test_zero_scale();
    test_overflow();
    gram_context_destroy(ctx);
    return check_done();
}
