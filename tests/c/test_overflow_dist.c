/* Scaled distances that overflow: a lengthscale so small that t = (r/ℓ)² is +inf (in float64,
 * or in float32 for float32 data) for every pair but equal points. Every radial family decays to
 * 0 there, so sums count the equal points, log-sums are the log of that count (or -inf) and Gram
 * blocks hold 0 and 1 — in every microkernel table. The AVX2/AVX-512 Matérn 3/2 and 5/2 formulas
 * gave (1 + a)·e^-a = inf·0 = NaN (found by the spec fuzzer: fuzz/corpus/spec/simd_matern_*).
 * Also the Matérn 5/2 log where a = √5·r/ℓ is finite but a² overflows (1.34e154 < a): the log of
 * (1 + a + a²/3)·e^-a is -a + 2 log a - log 3 + O(1/a), not +inf. */
#include "check.h"
#include "gram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static gram_context *ctx;
static const char *ARCH[] = {"ref", "avx2", "avx512"};

static gram_kernel *P(const char *spec) { return check_kernel(ctx, spec); }

static const char *FAMS[] = {"gaussian", "laplacian", "matern12", "matern32", "matern52",
                             "rq",       "cauchy",    "exponential"};

/* N points 0, 1, ..., N-1 (D = 1) and queries that hit points 0 and 7 exactly and miss all. */
static void check_family(const char *fam, double l, int f32)
{
    enum { N = 37, M = 3 };
    double X[N], Y[M] = {0.0, 7.0, 2.5}, s[M], ls[M], K[M * N], sx[N];
    float Xf[N], Yf[M];
    for (int j = 0; j < N; j++) X[j] = j, Xf[j] = (float)j;
    for (int i = 0; i < M; i++) Yf[i] = (float)Y[i];
    gram_array xa = f32 ? gram_array_f32(Xf, N, 1) : gram_array_f64(X, N, 1);
    gram_array ya = f32 ? gram_array_f32(Yf, M, 1) : gram_array_f64(Y, M, 1);
    gram_array sa = gram_array_f64(s, M, 1), la = gram_array_f64(ls, M, 1);
    gram_array ka = gram_array_f64(K, M, N), sxa = gram_array_f64(sx, N, 1);
    char spec[64];
    snprintf(spec, sizeof spec, "%s(%.17g)", fam, l);
    gram_kernel *k = P(spec);
    if (!k) return;
    for (int a = 0; a < 3; a++) {
        if (gram_context_set_arch(ctx, ARCH[a])) continue;
        char what[128];
        snprintf(what, sizeof what, "%s %s %s", spec, ARCH[a], f32 ? "float32" : "float64");
        CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, NULL, &sa), GRAM_OK);
        CHECK_STATUS(gram_kernel_logsum(ctx, k, &ya, &xa, NULL, &la), GRAM_OK);
        CHECK_STATUS(gram_kernel_matrix(ctx, k, &ya, &xa, &ka), GRAM_OK);
        for (int i = 0; i < M; i++) {
            double want = i < 2 ? 1.0 : 0.0;
            CHECK(s[i] == want, "%s: sum %d = %.17g, want %g", what, i, s[i], want);
            CHECK(ls[i] == log(want), "%s: log-sum %d = %.17g, want %g", what, i, ls[i], log(want));
            for (int j = 0; j < N; j++) {
                double kw = (double)j == Y[i] ? 1.0 : 0.0;
                CHECK(K[i * N + j] == kw, "%s: K[%d,%d] = %.17g, want %g", what, i, j, K[i * N + j], kw);
            }
        }
        /* the symmetric sum of X with itself: the diagonal only */
        CHECK_STATUS(gram_kernel_sum(ctx, k, &xa, &xa, NULL, &sxa), GRAM_OK);
        for (int j = 0; j < N; j++) CHECK(sx[j] == 1.0, "%s: self sum %d = %.17g", what, j, sx[j]);
    }
    gram_context_set_arch(ctx, "auto");
    gram_kernel_destroy(k);
}

/* log k of matern52 where a = √5·r/ℓ is past 1.34e154 (a² overflows) but t = (r/ℓ)² is not
 * (r/ℓ < 1.34e154; beyond, t itself is inf and the log is -inf), against long double (a² fits
 * there); the value is 0 and its log finite. */
static void test_matern52_log_huge(void)
{
    const double ratio[] = {7e153, 1e154, 1.3e154}, l = 1e-200;
    for (size_t q = 0; q < sizeof ratio / sizeof *ratio; q++) {
        double X[1] = {0.0}, Y[1] = {ratio[q] * l}, s[1], lg[1];
        gram_array xa = gram_array_f64(X, 1, 1), ya = gram_array_f64(Y, 1, 1);
        gram_array sa = gram_array_f64(s, 1, 1), la = gram_array_f64(lg, 1, 1);
        char spec[64];
        snprintf(spec, sizeof spec, "matern52(%.17g)", l);
        gram_kernel *k = P(spec);
        if (!k) continue;
        long double a = sqrtl(5.0L) * ((long double)Y[0] / (long double)l);
        long double want = log1pl(a + a * a / 3.0L) - a;
        for (int ar = 0; ar < 3; ar++) {
            if (gram_context_set_arch(ctx, ARCH[ar])) continue;
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &ya, &xa, NULL, &la), GRAM_OK);
            CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, NULL, &sa), GRAM_OK);
            CHECK(s[0] == 0.0, "%s %s: sum %.17g, want 0", spec, ARCH[ar], s[0]);
            CHECK_CLOSE(lg[0], (double)want, 1e-15, 0, "matern52 log far past a² overflow");
        }
        gram_context_set_arch(ctx, "auto");
        gram_kernel_destroy(k);
    }
}

/* D >= 32: the fused GEMM form t = |y|² + |x|² - 2 y·x (ukr_bigd.inc) with a lengthscale of 1e-160
 * in one dimension, so the scaled norms overflow (inf - inf = NaN) while pairs that agree in that
 * coordinate have a finite distance. The sums are against long double: before the fix the SIMD
 * tables returned NaN (found by the spec fuzzer: fuzz/corpus/spec/simd_gemm_guard_nan*). */
static void test_gemm_norm_overflow(void)
{
    enum { N = 40, M = 3, D = 32 };
    double X[N * D], Y[M * D], s[M], w[N];
    check_rng r = {7};
    for (int j = 0; j < N; j++) {
        X[j * D] = j % 2 ? 2.0 : 1.0;
        for (int d = 1; d < D; d++) X[j * D + d] = 0.2 * check_normal(&r);
        w[j] = 1.0;
    }
    for (int i = 0; i < M; i++) {
        Y[i * D] = i == 2 ? 1.5 : (double)(i + 1); /* rows 0 and 1 meet half the points; row 2 none */
        for (int d = 1; d < D; d++) Y[i * D + d] = 0.2 * check_normal(&r);
    }
    char spec[512] = "gaussian(lengthscale=[1e-160";
    for (int d = 1; d < D; d++) strcat(spec, ", 1");
    strcat(spec, "])");
    gram_kernel *k = P(spec);
    if (!k) return;
    gram_array xa = gram_array_f64(X, N, D), ya = gram_array_f64(Y, M, D), sa = gram_array_f64(s, M, 1);
    gram_array wa = gram_array_f64(w, N, 1);
    for (int a = 0; a < 3; a++) {
        if (gram_context_set_arch(ctx, ARCH[a])) continue;
        for (int weighted = 0; weighted < 2; weighted++) {
            CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, weighted ? &wa : NULL, &sa), GRAM_OK);
            for (int i = 0; i < M; i++) {
                long double want = 0;
                for (int j = 0; j < N; j++) {
                    if (X[j * D] != Y[i * D]) continue;
                    long double t = 0;
                    for (int d = 1; d < D; d++) {
                        long double q = (long double)Y[i * D + d] - X[j * D + d];
                        t += q * q;
                    }
                    want += expl(-t / 2);
                }
                char what[96];
                snprintf(what, sizeof what, "%s D=32 gemm form, one lengthscale 1e-160: row %d", ARCH[a], i);
                CHECK_CLOSE(s[i], (double)want, 1e-12, 1e-300, what);
            }
        }
    }
    gram_context_set_arch(ctx, "auto");
    gram_kernel_destroy(k);
}

/* The periodic family at r = ρ/p far beyond 2^53, where every double is an even integer and
 * sin(π r) = 0 exactly for the rounded r: every table, the pair path and the gradient give k = 1.
 * sin(PI * r) rounds π·r first and gave anything in [e^-2/ℓ², 1] (0.9796 in the reference engine,
 * 0.9738 in the pair path: found by the spec fuzzer, fuzz/corpus/spec/periodic_phase*). Also a
 * moderate r (1e3..1e4, exactly representable differences) against long double. */
static void test_periodic_phase(void)
{
    enum { N = 24, M = 3 };
    double X[N], Y[M] = {0.25, 1.5, 2.875}, K[M * N], s[M], ls[M];
    for (int j = 0; j < N; j++) X[j] = 0.125 * j;
    gram_array xa = gram_array_f64(X, N, 1), ya = gram_array_f64(Y, M, 1), ka = gram_array_f64(K, M, N);
    gram_array sa = gram_array_f64(s, M, 1), la = gram_array_f64(ls, M, 1);
    const char *specs[] = {"periodic(lengthscale=1, period=1e-154)", "periodic(lengthscale=0.7, period=1e-300)",
                           "periodic(lengthscale=0.5, period=0.0009765625)"}; /* 2^-10: r exact */
    for (int q = 0; q < 3; q++) {
        gram_kernel *k = P(specs[q]);
        if (!k) continue;
        long double want[M * N];
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                long double r = fabsl((long double)Y[i] - X[j]) * 1024.0L, l = 0.5L;
                long double sn = sinl(3.141592653589793238462643383279502884L * fmodl(r, 2.0L));
                want[i * N + j] = q < 2 ? 1.0L : expl(-2 * sn * sn / (l * l));
            }
        for (int a = 0; a < 3; a++) {
            if (gram_context_set_arch(ctx, ARCH[a])) continue;
            CHECK_STATUS(gram_kernel_matrix(ctx, k, &ya, &xa, &ka), GRAM_OK);
            CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, NULL, &sa), GRAM_OK);
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &ya, &xa, NULL, &la), GRAM_OK);
            char what[160];
            for (int i = 0; i < M; i++) {
                long double tot = 0;
                for (int j = 0; j < N; j++) {
                    snprintf(what, sizeof what, "%s %s: K[%d,%d]", specs[q], ARCH[a], i, j);
                    CHECK_CLOSE(K[i * N + j], (double)want[i * N + j], 1e-13, 0, what);
                    tot += want[i * N + j];
                }
                snprintf(what, sizeof what, "%s %s: sum %d", specs[q], ARCH[a], i);
                CHECK_CLOSE(s[i], (double)tot, 1e-13, 0, what);
                CHECK_CLOSE(ls[i], (double)logl(tot), 0, 1e-13, what);
            }
        }
        gram_context_set_arch(ctx, "auto");
        for (int i = 0; i < M; i++) /* the pair path, with the gradient */
            for (int j = 0; j < N; j++) {
                double v, g[2];
                CHECK_STATUS(gram_kernel_eval(ctx, k, 1, &Y[i], &X[j], 0, &v, g), GRAM_OK);
                char what[160];
                snprintf(what, sizeof what, "%s: pair (%d,%d)", specs[q], i, j);
                CHECK_CLOSE(v, (double)want[i * N + j], 1e-13, 0, what);
                if (q < 2) CHECK(g[0] == 0.0 && g[1] == 0.0, "%s: gradient %g %g, want 0", what, g[0], g[1]);
            }
        gram_kernel_destroy(k);
    }
}

int main(void)
{
    if (gram_context_create(&ctx)) return 1;
    for (size_t f = 0; f < sizeof FAMS / sizeof *FAMS; f++) {
        check_family(FAMS[f], 1e-160, 0); /* (1/1e-160)² = 1e320 = inf in float64 */
        check_family(FAMS[f], 1e-25, 1);  /* (1/1e-25)² = 1e50 = inf in float32 */
    }
    test_matern52_log_huge();
    test_gemm_norm_overflow();
    test_periodic_phase();
    gram_context_destroy(ctx);
    return check_done();
}
