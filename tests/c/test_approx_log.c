/* gram_kernel_logsum_approx: the log of an approximate sum that meets its tolerance on the linear
 * scale, checked against a long-double loop written here; rows whose sums underflow a double are
 * summed exactly in log space (finite, equal to gram_kernel_logsum's, err 0, counted in info);
 * its refusals (a kernel that can be negative, negative weights, the options) and float32 out. */
#include "check.h"
#include "gram.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef long double ld;
static gram_context *ctx;

/* log Σ_j w_j exp(-|y - x_j|² / 2ℓ²), in long double with the largest exponent factored out, so
 * that it is finite where the double sum underflows. */
static ld naive_log(const double *y, const double *X, const double *w, int64_t N, int64_t D, double ell)
{
    ld mx = -INFINITY;
    ld *e = malloc(sizeof(ld) * (size_t)N);
    for (int64_t j = 0; j < N; j++) {
        ld r2 = 0;
        for (int64_t d = 0; d < D; d++) {
            ld t = (ld)y[d] - X[j * D + d];
            r2 += t * t;
        }
        e[j] = -r2 / (2.0L * ell * ell) + logl(w ? (ld)w[j] : 1.0L);
        if (e[j] > mx) mx = e[j];
    }
    ld s = 0;
    for (int64_t j = 0; j < N; j++) s += expl(e[j] - mx);
    free(e);
    return mx + logl(s);
}

/* Two clusters of 2000 points in D = 8, 0.2 apart per coordinate around 0; queries near them (sums
 * of normal size) and queries 40 lengthscales away (sums near e^-800: underflow). */
static void test_values(void)
{
    check_rng r = {5};
    const int64_t N = 4000, M = 60, D = 8;
    const double ell = 0.25;
    double *X = malloc(sizeof(double) * N * D), *Y = malloc(sizeof(double) * M * D), *w = malloc(sizeof(double) * N);
    double *out = malloc(sizeof(double) * M), *err = malloc(sizeof(double) * M), *ex = malloc(sizeof(double) * M);
    for (int64_t j = 0; j < N; j++) {
        for (int64_t d = 0; d < D; d++) X[j * D + d] = (j % 2 ? 0.2 : -0.2) + 0.1 * check_normal(&r);
        w[j] = 0.5 + check_uniform(&r);
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t d = 0; d < D; d++) Y[i * D + d] = (i % 3 == 2 ? 10.0 + 0.3 * d : 0.0) + 0.1 * check_normal(&r);
    gram_kernel *k = check_kernel(ctx, "gaussian(0.25)");
    if (!k) return;
    gram_array Ya = gram_array_f64(Y, M, D), Xa = gram_array_f64(X, N, D), Wa = gram_array_f64(w, N, 1);
    gram_array oa = gram_array_f64(out, M, 1), ea = gram_array_f64(err, M, 1), xa = gram_array_f64(ex, M, 1);
    CHECK_STATUS(gram_kernel_logsum(ctx, k, &Ya, &Xa, &Wa, &xa), GRAM_OK);
    const gram_approx_method methods[] = {GRAM_APPROX_AUTO, GRAM_APPROX_TREE, GRAM_APPROX_SAMPLING};
    const double rtols[] = {1e-3, 1e-6, 5e-2};
    for (int t = 0; t < 3; t++) {
        gram_approx_options o;
        gram_approx_options_init(&o);
        o.rtol = rtols[t];
        o.method = methods[t];
        o.delta = 1e-9; /* sampling: a miss among 40 queries at 4e-8 is a false alarm we accept */
        gram_approx_info info;
        CHECK_STATUS(gram_kernel_logsum_approx(ctx, k, &Ya, &Xa, &Wa, &o, &oa, &ea, &info), GRAM_OK);
        int64_t low = 0;
        for (int64_t i = 0; i < M; i++) {
            ld want = naive_log(Y + i * D, X, w, N, D, ell);
            CHECK(isfinite(out[i]), "method %d query %lld: log sum %g not finite", (int)methods[t], (long long)i,
                  out[i]);
            if (i % 3 == 2) {
                /* underflow: the exact log-space sum, bit for bit, bound 0 */
                low++;
                CHECK(want < logl(DBL_MIN), "query %lld should underflow (log %Lg)", (long long)i, want);
                CHECK(out[i] == ex[i], "method %d query %lld: %.17g, gram_kernel_logsum %.17g", (int)methods[t],
                      (long long)i, out[i], ex[i]);
                CHECK(err[i] == 0.0, "underflowing row %lld: err %g, want 0", (long long)i, err[i]);
                CHECK_CLOSE(out[i], want, 1e-13, 0, "underflowing row vs long double");
            } else {
                /* the tolerance on the linear scale, and err bounding the true error */
                ld lin = expl(want), got = expl((ld)out[i]);
                ld d = fabsl(got - lin);
                CHECK(d <= rtols[t] * lin * (1 + 1e-9L) + 1e-300L, "method %d query %lld: |exp(out) - exact| = %Lg "
                      "> rtol·exact = %Lg", (int)methods[t], (long long)i, d, rtols[t] * lin);
                CHECK(d <= (ld)err[i] * (1 + 1e-9L) + lin * 1e-14L, "method %d query %lld: error %Lg > err %g",
                      (int)methods[t], (long long)i, d, err[i]);
            }
        }
        CHECK(low == M / 3, "expected %lld underflowing rows", (long long)(M / 3));
        CHECK(info.kernel_evaluations >= low * N, "info counts the log-space rows' %lld pairs, got %lld",
              (long long)(low * N), (long long)info.kernel_evaluations);
    }
    /* float32 out: the log rounded once */
    float o32[60];
    gram_array o32a = {o32, GRAM_FLOAT32, M, 1, 1, 1};
    gram_approx_options o;
    gram_approx_options_init(&o);
    o.rtol = 1e-3;
    CHECK_STATUS(gram_kernel_logsum_approx(ctx, k, &Ya, &Xa, &Wa, &o, &o32a, NULL, NULL), GRAM_OK);
    for (int64_t i = 0; i < M; i++) {
        ld want = naive_log(Y + i * D, X, w, N, D, ell);
        CHECK(fabsl((ld)o32[i] - want) <= 1.1e-3L + fabsl(want) * 2e-7L, "float32 query %lld: %g vs %Lg", (long long)i,
              (double)o32[i], want);
    }
    /* rtol = atol = 0: exactly gram_kernel_logsum, bit for bit */
    o.rtol = 0;
    CHECK_STATUS(gram_kernel_logsum_approx(ctx, k, &Ya, &Xa, &Wa, &o, &oa, NULL, NULL), GRAM_OK);
    for (int64_t i = 0; i < M; i++)
        CHECK(out[i] == ex[i] || fabs(out[i] - ex[i]) <= 1e-15 * fabs(ex[i]), "exact path row %lld: %.17g vs %.17g",
              (long long)i, out[i], ex[i]);
    gram_kernel_destroy(k);
    free(X), free(Y), free(w), free(out), free(err), free(ex);
}

static void test_refusals(void)
{
    double X[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, w[6] = {1, 1, -1, 1, 1, 1}, out[6];
    gram_array Xa = gram_array_f64(X, 6, 2), Wa = gram_array_f64(w, 6, 1), oa = gram_array_f64(out, 6, 1);
    gram_approx_options o;
    gram_approx_options_init(&o);
    o.rtol = 1e-3;
    gram_kernel *k = check_kernel(ctx, "gaussian(1)");
    gram_kernel *lin = check_kernel(ctx, "linear");
    if (!k || !lin) return;
    CHECK_STATUS(gram_kernel_logsum_approx(ctx, k, NULL, &Xa, &Wa, &o, &oa, NULL, NULL), GRAM_EDOMAIN);
    CHECK(strstr(gram_context_message(ctx), "W") != NULL, "negative weight: %s", gram_context_message(ctx));
    CHECK_STATUS(gram_kernel_logsum_approx(ctx, lin, NULL, &Xa, NULL, &o, &oa, NULL, NULL), GRAM_EDOMAIN);
    CHECK(strstr(gram_context_message(ctx), "logsum needs a kernel that is never negative") != NULL, "%s",
          gram_context_message(ctx));
    o.rtol = -1;
    CHECK_STATUS(gram_kernel_logsum_approx(ctx, k, NULL, &Xa, NULL, &o, &oa, NULL, NULL), GRAM_EINVAL);
    CHECK(strstr(gram_context_message(ctx), "rtol must be finite and >= 0") != NULL, "%s", gram_context_message(ctx));
    gram_kernel_destroy(k);
    gram_kernel_destroy(lin);
}

int main(void)
{
    if (gram_context_create(&ctx)) return 1;
    test_values();
    test_refusals();
    gram_context_destroy(ctx);
    return check_done();
}
