/* Kernel attention (src/attention, the engine's attention reduction).
 *
 * Exact attention against a naive long-double loop in log space (out_i = Σ_j e^(l_ij − m_i) v_j /
 * Σ_j e^(l_ij − m_i), l_ij the log-weight, m_i its row maximum), in float64 to 1e-12 of the scale
 * Σ_j w_ij |v_j| / Σ_j w_ij (the weighted average of |v|: the relative bound of a sum of signed
 * terms), on every microkernel table, float32 to the bound stated with its check; causal, Toeplitz
 * biases, logits of ±1e4, S ≠ L, dv ≠ d, zero-weight rows, bit-identity over thread counts.
 * FAVOR+ against the same formula computed here from the feature map itself (the features of
 * gram_features_create(gaussian, d, POSITIVE_ORF, R, seed), the softmax kernel's as those times
 * exp(|x'|²/2)), directly in O(L·S) with the Toeplitz coefficients: 1e-10; causal FAVOR+ equals
 * non-causal FAVOR+ on each prefix; its error against exact attention falls as 1/√R (statistical,
 * fixed seeds); bad input.
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *ARCHS[] = {"ref", "avx2", "avx512"};

static double *randn(check_rng *g, int64_t n, double s)
{
    double *a = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) a[i] = s * check_normal(g);
    return a;
}

/* log k(q, x) for the reference: the softmax and gaussian in long double from their formulas,
 * any other kernel through gram_kernel_eval (its log). */
typedef struct lk {
    int kind; /* 0 softmax exp(q·x/√d), 1 gaussian(ℓ), 2 gram_kernel_eval */
    double ls;
    gram_kernel *k;
    gram_context *ctx;
} lk;

static long double logk(const lk *f, int64_t d, const double *q, const double *x)
{
    long double s = 0;
    if (f->kind == 0) {
        for (int64_t c = 0; c < d; c++) s += (long double)q[c] * x[c];
        return s / sqrtl((long double)d);
    }
    if (f->kind == 1) {
        for (int64_t c = 0; c < d; c++) s += ((long double)q[c] - x[c]) * ((long double)q[c] - x[c]);
        return -s / (2.0L * f->ls * f->ls);
    }
    double v = 0;
    gram_kernel_eval(f->ctx, f->k, d, q, x, 0, &v, NULL);
    return v > 0 ? logl((long double)v) : -INFINITY;
}

/* The reference: out (L×dv) and scale (L values, Σ w|v|/Σ w, max over columns). */
static void ref_attention(const lk *f, int64_t L, int64_t S, int64_t d, int64_t dv, const double *Q, const double *K,
                          const double *V, const double *bias, int causal, double *out, double *scale)
{
    long double *l = malloc((size_t)(S > 0 ? S : 1) * sizeof(long double));
    for (int64_t i = 0; i < L; i++) {
        long double m = -INFINITY;
        for (int64_t j = 0; j < S; j++) {
            l[j] = causal && j > i ? -INFINITY : logk(f, d, Q + i * d, K + j * d) + (bias ? bias[j - i + L - 1] : 0.0);
            if (l[j] > m) m = l[j];
        }
        long double den = 0, sc = 0;
        for (int64_t j = 0; j < S; j++) den += expl(l[j] - m);
        for (int64_t c = 0; c < dv; c++) {
            long double num = 0, ab = 0;
            for (int64_t j = 0; j < S; j++) {
                long double w = expl(l[j] - m);
                num += w * V[j * dv + c];
                ab += w * fabsl((long double)V[j * dv + c]);
            }
            out[i * dv + c] = (double)(num / den);
            if (ab / den > sc) sc = ab / den;
        }
        scale[i] = (double)sc;
    }
    free(l);
}

/* max_i,c |a − b| / scale_i */
static double scaled_err(int64_t L, int64_t dv, const double *a, const double *b, const double *scale)
{
    double e = 0;
    for (int64_t i = 0; i < L; i++)
        for (int64_t c = 0; c < dv; c++) {
            double r = fabs(a[i * dv + c] - b[i * dv + c]) / (scale[i] > 0 ? scale[i] : 1.0);
            if (!(r <= e)) e = r;
        }
    return e;
}

static gram_status run_att(gram_context *ctx, const gram_kernel *k, gram_attention_method m, int causal,
                           const double *rpe, int64_t R, uint64_t seed, int64_t L, int64_t S, int64_t d, int64_t dv,
                           const double *Q, const double *K, const double *V, double *out)
{
    gram_attention_options o;
    gram_attention_options_init(&o);
    o.kernel = k;
    o.method = m;
    o.causal = causal;
    o.rpe = rpe;
    o.n_features = R;
    o.seed = seed;
    gram_array q = gram_array_f64(Q, L, d), kk = gram_array_f64(K, S, d), v = gram_array_f64(V, S, dv),
               ou = gram_array_f64(out, L, dv);
    return gram_attention(ctx, &o, &q, &kk, &v, &ou);
}

/* ---- exact ------------------------------------------------------------------------------------ */

static void exact_case(gram_context *ctx, const char *what, const lk *f, const gram_kernel *k, int64_t L, int64_t S,
                       int64_t d, int64_t dv, double qs, int causal, int with_bias, uint64_t seed)
{
    check_rng g = {seed};
    double *Q = randn(&g, L * d, qs), *K = randn(&g, S * d, qs), *V = randn(&g, S * dv, 1.0);
    double *bias = with_bias ? randn(&g, L + S - 1, 2.0) : NULL;
    double *ref = malloc((size_t)(L * dv + 1) * sizeof(double)), *out = malloc((size_t)(L * dv + 1) * sizeof(double)),
           *sc = malloc((size_t)(L + 1) * sizeof(double));
    ref_attention(f, L, S, d, dv, Q, K, V, bias, causal, ref, sc);
    for (int a = 0; a < 3; a++) {
        if (gram_context_set_arch(ctx, ARCHS[a]) != GRAM_OK) continue;
        gram_status s = run_att(ctx, k, GRAM_ATTENTION_EXACT, causal, bias, 0, 0, L, S, d, dv, Q, K, V, out);
        CHECK(s == GRAM_OK, "%s [%s]: %s", what, ARCHS[a], gram_context_message(ctx));
        double e = scaled_err(L, dv, out, ref, sc);
        CHECK(e <= 1e-12, "%s [%s] L=%lld S=%lld d=%lld dv=%lld causal=%d bias=%d: error %.3g of the scale > 1e-12", what,
              ARCHS[a], (long long)L, (long long)S, (long long)d, (long long)dv, causal, with_bias, e);
    }
    gram_context_set_arch(ctx, "auto");
    free(Q), free(K), free(V), free(bias), free(ref), free(out), free(sc);
}

static void test_exact(gram_context *ctx)
{
    gram_kernel *g2 = check_kernel(ctx, "gaussian(2.0)"), *m52 = check_kernel(ctx, "matern52(lengthscale=[1.5, 0.7, 2, 1])"),
                *comp = check_kernel(ctx, "rbf(1.3) * 2.0 + 0.5 * laplacian(0.8)");
    lk sm = {0, 0, NULL, ctx}, ga = {1, 2.0, NULL, ctx}, ev52 = {2, 0, m52, ctx}, evc = {2, 0, comp, ctx};
    /* softmax (NULL): several chunks of 256 keys, edge tiles, S ≠ L, dv ≠ d */
    exact_case(ctx, "softmax", &sm, NULL, 37, 600, 16, 5, 1.0, 0, 0, 1);
    exact_case(ctx, "softmax L=1", &sm, NULL, 1, 1000, 8, 3, 1.0, 0, 0, 2);
    exact_case(ctx, "softmax S=1", &sm, NULL, 50, 1, 8, 3, 1.0, 0, 0, 3);
    exact_case(ctx, "softmax dv=1, d=1", &sm, NULL, 20, 300, 1, 1, 1.0, 0, 0, 4);
    exact_case(ctx, "softmax causal", &sm, NULL, 300, 300, 16, 7, 1.0, 1, 0, 5);
    exact_case(ctx, "softmax rpe", &sm, NULL, 70, 530, 16, 4, 1.0, 0, 1, 6);
    exact_case(ctx, "softmax causal rpe", &sm, NULL, 290, 290, 8, 4, 1.0, 1, 1, 7);
    /* logits around ±1e4: q·k/√d with entries ~ 100 in d = 4 (the reference in log space) */
    exact_case(ctx, "softmax logits ±1e4", &sm, NULL, 40, 400, 4, 3, 100.0, 0, 0, 8);
    exact_case(ctx, "softmax logits ±1e4 causal", &sm, NULL, 270, 270, 4, 3, 100.0, 1, 1, 9);
    exact_case(ctx, "gaussian", &ga, g2, 33, 520, 6, 9, 1.5, 0, 0, 10);
    exact_case(ctx, "gaussian far (every weight underflows)", &ga, g2, 20, 300, 3, 2, 40.0, 0, 0, 11);
    exact_case(ctx, "matern52 ARD", &ev52, m52, 300, 300, 4, 3, 1.0, 1, 0, 12);
    exact_case(ctx, "composite", &evc, comp, 25, 300, 3, 2, 1.0, 0, 1, 13);
    gram_kernel_destroy(g2), gram_kernel_destroy(m52), gram_kernel_destroy(comp);

    /* one logit of +1e4 in a row of small ones: the row is that key's value (the others' weights
     * e^(-1e4) vanish) — no overflow, no NaN */
    {
        double Q[2] = {100.0, 0.0}, K[3 * 2] = {0.0, 1.0, 141.42135623730951, 0.0, -1.0, 3.0}, V[3] = {1.0, 2.0, 3.0}, out[1];
        CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_EXACT, 0, NULL, 0, 0, 1, 3, 2, 1, Q, K, V, out), GRAM_OK);
        CHECK(out[0] == 2.0, "logit 1e4: out %.17g, want 2", out[0]);
    }
}

/* float32: computed in float32 (log-weights, exp), accumulated in float64. Each log-weight carries
 * about (d + 2)·2⁻²⁴·Σ|q_c k_c|/√d of rounding, so the bound is relative to the logits' size:
 * for |logits| ≲ 10 the outputs are within 1e-5 of the scale. */
static void test_float32(gram_context *ctx)
{
    const int64_t L = 60, S = 700, d = 16, dv = 6;
    check_rng g = {21};
    double *Q = randn(&g, L * d, 1.0), *K = randn(&g, S * d, 1.0), *V = randn(&g, S * dv, 1.0), *bias = randn(&g, L + S - 1, 1.0);
    float *Qf = malloc(sizeof(float) * (size_t)(L * d)), *Kf = malloc(sizeof(float) * (size_t)(S * d)),
          *Vf = malloc(sizeof(float) * (size_t)(S * dv)), *of = malloc(sizeof(float) * (size_t)(L * dv));
    for (int64_t e = 0; e < L * d; e++) Q[e] = Qf[e] = (float)Q[e];
    for (int64_t e = 0; e < S * d; e++) K[e] = Kf[e] = (float)K[e];
    for (int64_t e = 0; e < S * dv; e++) V[e] = Vf[e] = (float)V[e];
    double *ref = malloc(sizeof(double) * (size_t)(L * dv)), *sc = malloc(sizeof(double) * (size_t)L),
           *o64 = malloc(sizeof(double) * (size_t)(L * dv));
    lk sm = {0, 0, NULL, ctx};
    {
        ref_attention(&sm, L, S, d, dv, Q, K, V, bias, 0, ref, sc);
        for (int a = 0; a < 3; a++) {
            if (gram_context_set_arch(ctx, ARCHS[a]) != GRAM_OK) continue;
            gram_attention_options o;
            gram_attention_options_init(&o);
            o.rpe = bias;
            gram_array q = gram_array_f32(Qf, L, d), k = gram_array_f32(Kf, S, d), v = gram_array_f32(Vf, S, dv),
                       ou = gram_array_f32(of, L, dv);
            CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_OK);
            for (int64_t e = 0; e < L * dv; e++) o64[e] = of[e];
            double err = scaled_err(L, dv, o64, ref, sc);
            CHECK(err <= 1e-5, "float32 [%s]: error %.3g of the scale > 1e-5", ARCHS[a], err);
            CHECK(err > 0, "float32 [%s]: bit-equal to the long-double reference (not computed in float32?)", ARCHS[a]);
        }
    }
    gram_context_set_arch(ctx, "auto");
    free(Q), free(K), free(V), free(bias), free(Qf), free(Kf), free(Vf), free(of), free(ref), free(sc), free(o64);
}

static void test_threads(gram_context *ctx)
{
    const int64_t shapes[][2] = {{5, 1000}, {300, 700}, {3000, 40}};
    for (int t = 0; t < 3; t++) {
        const int64_t L = shapes[t][0], S = shapes[t][1], d = 8, dv = 5;
        check_rng g = {(uint64_t)(31 + t)};
        double *Q = randn(&g, L * d, 1.0), *K = randn(&g, S * d, 1.0), *V = randn(&g, S * dv, 1.0),
               *bias = randn(&g, L + S - 1, 1.0);
        double *o1 = malloc(sizeof(double) * (size_t)(L * dv)), *on = malloc(sizeof(double) * (size_t)(L * dv));
        for (int causal = 0; causal < 2; causal++) {
            if (causal && L != S) continue;
            gram_context_set_threads(ctx, 1);
            CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_EXACT, causal, bias, 0, 0, L, S, d, dv, Q, K, V, o1), GRAM_OK);
            const int nts[] = {2, 3, 7, 16};
            for (int n = 0; n < 4; n++) {
                gram_context_set_threads(ctx, nts[n]);
                CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_EXACT, causal, bias, 0, 0, L, S, d, dv, Q, K, V, on), GRAM_OK);
                CHECK(!memcmp(o1, on, sizeof(double) * (size_t)(L * dv)), "exact L=%lld S=%lld: %d threads differ from 1",
                      (long long)L, (long long)S, nts[n]);
                /* FAVOR+ too */
                gram_context_set_threads(ctx, 1);
                CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_FAVOR, 0, t == 1 ? bias : NULL, 64, 5, L, S, d, dv, Q, K, V, o1),
                             GRAM_OK);
                gram_context_set_threads(ctx, nts[n]);
                CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_FAVOR, 0, t == 1 ? bias : NULL, 64, 5, L, S, d, dv, Q, K, V, on),
                             GRAM_OK);
                CHECK(!memcmp(o1, on, sizeof(double) * (size_t)(L * dv)), "FAVOR L=%lld S=%lld: %d threads differ from 1",
                      (long long)L, (long long)S, nts[n]);
                gram_context_set_threads(ctx, 1);
                CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_EXACT, causal, bias, 0, 0, L, S, d, dv, Q, K, V, o1), GRAM_OK);
            }
        }
        gram_context_set_threads(ctx, 0);
        free(Q), free(K), free(V), free(bias), free(o1), free(on);
    }
}

/* A compactly supported kernel: a query beyond every key's reach has no weight. Its row is 0 and
 * the call says which row; the other rows are right. */
static void test_empty_row(gram_context *ctx)
{
    gram_kernel *th = check_kernel(ctx, "tophat(1.0)");
    double Q[3] = {0.0, 50.0, 0.5}, K[4] = {0.1, -0.3, 0.6, 2.0}, V[4] = {1, 2, 3, 4}, out[3] = {-1, -1, -1};
    CHECK_STATUS(run_att(ctx, th, GRAM_ATTENTION_EXACT, 0, NULL, 0, 0, 3, 4, 1, 1, Q, K, V, out), GRAM_EDOMAIN);
    CHECK(strstr(gram_context_message(ctx), "row 1 ") != NULL, "empty row message: %s", gram_context_message(ctx));
    CHECK(out[1] == 0.0, "empty row: %g, want 0", out[1]);
    CHECK_CLOSE(out[0], 2.0, 1e-15, 0, "row 0 (keys 0.1, -0.3, 0.6)");
    CHECK_CLOSE(out[2], 2.0, 1e-15, 0, "row 2 (keys 0.1, -0.3, 0.6; 2.0 at distance 1.5 is outside)");
    /* no keys at all */
    CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_EXACT, 0, NULL, 0, 0, 3, 0, 1, 1, Q, K, V, out), GRAM_EDOMAIN);
    CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_FAVOR, 0, NULL, 0, 0, 3, 0, 1, 1, Q, K, V, out), GRAM_EDOMAIN);
    /* no queries: nothing to do */
    CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_EXACT, 0, NULL, 0, 0, 0, 4, 1, 1, Q, K, V, out), GRAM_OK);
    CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_FAVOR, 0, NULL, 0, 0, 0, 4, 1, 1, Q, K, V, out), GRAM_OK);
    gram_kernel_destroy(th);
}

/* ---- FAVOR+ ----------------------------------------------------------------------------------- */

/* Φ (n×R) of the map gram_attention uses, computed here with the feature map's own transform: the
 * gaussian's positive features, times exp(|x'|²/2) for the softmax kernel (ℓ = d^(1/4)). */
static double *favor_features(gram_context *ctx, int softmax, double ls, int64_t n, int64_t d, const double *X, int64_t R,
                              uint64_t seed)
{
    gram_kernel *gk = NULL;
    CHECK_STATUS(gram_kernel_create(ctx, GRAM_GAUSSIAN, 1, &ls, 0, NULL, &gk), GRAM_OK);
    gram_features *f = NULL;
    CHECK_STATUS(gram_features_create(ctx, gk, d, GRAM_FEATURES_POSITIVE_ORF, R, seed, &f), GRAM_OK);
    double *P = malloc(sizeof(double) * (size_t)(n * R + 1));
    gram_array x = gram_array_f64(X, n, d), o = gram_array_f64(P, n, R);
    CHECK_STATUS(gram_features_transform(ctx, f, &x, &o), GRAM_OK);
    if (softmax)
        for (int64_t i = 0; i < n; i++) {
            double s = 0;
            for (int64_t c = 0; c < d; c++) s += (X[i * d + c] / ls) * (X[i * d + c] / ls);
            for (int64_t r = 0; r < R; r++) P[i * R + r] *= exp(s / 2);
        }
    gram_features_destroy(f);
    gram_kernel_destroy(gk);
    return P;
}

/* The FAVOR+ output from explicit features, directly: Σ_j c_(j−i) (φ_i·φ_j) v_j / Σ_j c_(j−i) (φ_i·φ_j). */
static void favor_direct(int64_t L, int64_t S, int64_t R, int64_t dv, const double *PQ, const double *PK, const double *V,
                         const double *bias, int causal, double *out, double *scale)
{
    for (int64_t i = 0; i < L; i++) {
        long double den = 0, *num = calloc((size_t)dv, sizeof(long double)), *ab = calloc((size_t)dv, sizeof(long double));
        for (int64_t j = 0; j < S; j++) {
            if (causal && j > i) continue;
            long double w = 0;
            for (int64_t r = 0; r < R; r++) w += (long double)PQ[i * R + r] * PK[j * R + r];
            if (bias) w *= expl((long double)bias[j - i + L - 1]);
            den += w;
            for (int64_t c = 0; c < dv; c++) num[c] += w * V[j * dv + c], ab[c] += w * fabsl((long double)V[j * dv + c]);
        }
        scale[i] = 0;
        for (int64_t c = 0; c < dv; c++) {
            out[i * dv + c] = (double)(num[c] / den);
            if ((double)(ab[c] / den) > scale[i]) scale[i] = (double)(ab[c] / den);
        }
        free(num), free(ab);
    }
}

static void test_favor_direct(gram_context *ctx)
{
    const int64_t d = 8, dv = 3, R = 40;
    const int64_t shapes[][2] = {{50, 50}, {23, 70}, {300, 300}, {70, 20}};
    for (int t = 0; t < 4; t++) {
        const int64_t L = shapes[t][0], S = shapes[t][1];
        check_rng g = {(uint64_t)(100 + t)};
        double *Q = randn(&g, L * d, 0.5), *K = randn(&g, S * d, 0.5), *V = randn(&g, S * dv, 1.0),
               *bias = randn(&g, L + S - 1, 1.0);
        double *out = malloc(sizeof(double) * (size_t)(L * dv)), *ref = malloc(sizeof(double) * (size_t)(L * dv)),
               *sc = malloc(sizeof(double) * (size_t)L);
        const double lsm = pow((double)d, 0.25);
        gram_kernel *g15 = check_kernel(ctx, "gaussian(1.5)");
        for (int softmax = 0; softmax < 2; softmax++) {
            const double ls = softmax ? lsm : 1.5;
            double *PQ = favor_features(ctx, softmax, ls, L, d, Q, R, 77), *PK = favor_features(ctx, softmax, ls, S, d, K, R, 77);
            for (int causal = 0; causal < 2; causal++) {
                if (causal && L != S) continue;
                for (int wb = 0; wb < 2; wb++) {
                    favor_direct(L, S, R, dv, PQ, PK, V, wb ? bias : NULL, causal, ref, sc);
                    gram_status s = run_att(ctx, softmax ? NULL : g15, GRAM_ATTENTION_FAVOR, causal, wb ? bias : NULL, R, 77,
                                            L, S, d, dv, Q, K, V, out);
                    CHECK(s == GRAM_OK, "favor: %s", gram_context_message(ctx));
                    double e = scaled_err(L, dv, out, ref, sc);
                    /* the FFT path (rpe) 1e-10 as the brief asks; the others agree to rounding */
                    CHECK(e <= (wb ? 1e-10 : 1e-12), "FAVOR+ %s L=%lld S=%lld causal=%d rpe=%d: %.3g from the direct "
                          "O(L·S) product", softmax ? "softmax" : "gaussian", (long long)L, (long long)S, causal, wb, e);
                }
            }
            free(PQ), free(PK);
        }
        gram_kernel_destroy(g15);
        free(Q), free(K), free(V), free(bias), free(out), free(ref), free(sc);
    }
}

/* Causal FAVOR+'s row i is non-causal FAVOR+ over the prefix Q[i], K[0..i], V[0..i]. */
static void test_favor_prefix(gram_context *ctx)
{
    const int64_t L = 200, d = 16, dv = 4, R = 96;
    check_rng g = {200};
    double *Q = randn(&g, L * d, 0.7), *K = randn(&g, L * d, 0.7), *V = randn(&g, L * dv, 1.0);
    double *oc = malloc(sizeof(double) * (size_t)(L * dv)), one[4];
    CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_FAVOR, 1, NULL, R, 9, L, L, d, dv, Q, K, V, oc), GRAM_OK);
    const int64_t rows[] = {0, 1, 63, 64, 65, 130, 199};
    for (int t = 0; t < 7; t++) {
        const int64_t i = rows[t];
        CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_FAVOR, 0, NULL, R, 9, 1, i + 1, d, dv, Q + i * d, K, V, one), GRAM_OK);
        double m = 0;
        for (int64_t j = 0; j <= i; j++)
            for (int64_t c = 0; c < dv; c++) m = fabs(V[j * dv + c]) > m ? fabs(V[j * dv + c]) : m;
        for (int64_t c = 0; c < dv; c++)
            CHECK(fabs(oc[i * dv + c] - one[c]) <= 1e-12 * m, "causal FAVOR+ row %lld col %lld: %.17g, prefix %.17g",
                  (long long)i, (long long)c, oc[i * dv + c], one[c]);
    }
    free(Q), free(K), free(V), free(oc);
}

/* FAVOR+ against exact softmax attention: the root-mean-square error over seeds falls as 1/√R
 * (Choromanski et al. 2021: the features' variance is O(1/R), the ratio's bias O(1/R), below the
 * spread here). Inputs of small norm (|q'|, |k'| ~ 0.6) keep the positive features' log-normal
 * tails light, so that an RMS over 16 seeds is a stable statistic. R = 64 … 4096 (R ≫ d, where
 * orthogonal blocks vary as i.i.d. ones up to a constant): the least-squares slope of log RMS
 * against log R must lie in [-0.62, -0.38] (-1/2 expected) and every 4× step must lower the error;
 * the bias (the seeds' mean error) must stay within 4 standard errors of a mean. */
static void test_favor_rate(gram_context *ctx)
{
    const int64_t L = 64, S = 256, d = 16, dv = 4, NS = 16;
    check_rng g = {300};
    double *Q = randn(&g, L * d, 0.3), *K = randn(&g, S * d, 0.3), *V = randn(&g, S * dv, 1.0);
    double *ex = malloc(sizeof(double) * (size_t)(L * dv)), *fo = malloc(sizeof(double) * (size_t)(L * dv)),
           *sum = malloc(sizeof(double) * (size_t)(L * dv));
    CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_EXACT, 0, NULL, 0, 0, L, S, d, dv, Q, K, V, ex), GRAM_OK);
    double lx[4], ly[4];
    int nr = 0;
    for (int64_t R = 64; R <= 4096; R *= 4, nr++) {
        double se = 0;
        memset(sum, 0, sizeof(double) * (size_t)(L * dv));
        for (int64_t s = 0; s < NS; s++) {
            CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_FAVOR, 0, NULL, R, (uint64_t)(1000 + s), L, S, d, dv, Q, K, V, fo),
                         GRAM_OK);
            for (int64_t e = 0; e < L * dv; e++) {
                se += (fo[e] - ex[e]) * (fo[e] - ex[e]);
                sum[e] += fo[e] - ex[e];
            }
        }
        const double rms = sqrt(se / (double)(NS * L * dv));
        double bias2 = 0;
        for (int64_t e = 0; e < L * dv; e++) bias2 += (sum[e] / NS) * (sum[e] / NS);
        const double bias = sqrt(bias2 / (double)(L * dv)); /* RMS over entries of the seeds' mean error */
        printf("FAVOR+ R=%5lld: RMS error %.4g, RMS bias %.4g (standard error of a mean %.3g)\n", (long long)R, rms, bias,
               rms / sqrt((double)NS));
        CHECK(bias <= 4 * rms / sqrt((double)NS), "FAVOR+ R=%lld: bias %.3g beyond 4 standard errors",
              (long long)R, bias);
        if (nr > 0) CHECK(rms < ly[nr - 1] / 1.3, "FAVOR+: RMS error %.4g at R=%lld, not below %.4g at R/4", rms, (long long)R,
                          ly[nr - 1]);
        lx[nr] = log((double)R), ly[nr] = rms;
    }
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (int i = 0; i < nr; i++) mx += lx[i] / nr, my += log(ly[i]) / nr;
    for (int i = 0; i < nr; i++) sxy += (lx[i] - mx) * (log(ly[i]) - my), sxx += (lx[i] - mx) * (lx[i] - mx);
    const double slope = sxy / sxx;
    printf("FAVOR+ error ~ R^%.3f\n", slope);
    CHECK(slope >= -0.62 && slope <= -0.38, "FAVOR+: error ~ R^%.3f, want R^-0.5", slope);
    free(Q), free(K), free(V), free(ex), free(fo), free(sum);
}

/* ---- bad input -------------------------------------------------------------------------------- */

static void test_bad(gram_context *ctx)
{
    double Q[12] = {0}, K[12] = {0}, V[12] = {0}, out[12], rpe[8] = {0};
    gram_attention_options o;
    gram_attention_options_init(&o);
    gram_array q = gram_array_f64(Q, 3, 2), k = gram_array_f64(K, 4, 2), v = gram_array_f64(V, 4, 2), ou = gram_array_f64(out, 3, 2);
    for (int m = 0; m < 2; m++) {
        o.method = (gram_attention_method)m;
        gram_array bad = gram_array_f64(V, 3, 2); /* V rows != K rows */
        CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &bad, &ou), GRAM_ESHAPE);
        bad = gram_array_f64(out, 3, 3);
        CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &bad), GRAM_ESHAPE);
        bad = gram_array_f64(K, 4, 3);
        CHECK_STATUS(gram_attention(ctx, &o, &q, &bad, &v, &ou), GRAM_ESHAPE);
        CHECK(strstr(gram_context_message(ctx), "same dimension") != NULL, "%s", gram_context_message(ctx));
        gram_array qf = gram_array_f32((const float *)Q, 3, 2);
        CHECK_STATUS(gram_attention(ctx, &o, &qf, &k, &v, &ou), GRAM_EINVAL);
        o.causal = 1; /* L = 3, S = 4 */
        CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_ESHAPE);
        CHECK(strstr(gram_context_message(ctx), "causal") != NULL, "%s", gram_context_message(ctx));
        o.causal = 2;
        CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_EINVAL);
        o.causal = 0;
        Q[3] = NAN;
        CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_ENONFINITE);
        CHECK(strstr(gram_context_message(ctx), "Q: row 1, column 1") != NULL, "%s", gram_context_message(ctx));
        Q[3] = 0, K[7] = INFINITY;
        CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_ENONFINITE);
        CHECK(strstr(gram_context_message(ctx), "K:") != NULL, "%s", gram_context_message(ctx));
        K[7] = 0, V[0] = NAN;
        CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_ENONFINITE);
        CHECK(strstr(gram_context_message(ctx), "V:") != NULL, "%s", gram_context_message(ctx));
        V[0] = 0, rpe[5] = NAN, o.rpe = rpe; /* 3 + 4 - 1 = 6 biases */
        CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_ENONFINITE);
        CHECK(strstr(gram_context_message(ctx), "rpe") != NULL, "%s", gram_context_message(ctx));
        rpe[5] = 0, o.rpe = NULL;
        /* a kernel with negative values */
        gram_kernel *lin = check_kernel(ctx, "linear");
        o.kernel = lin;
        CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_EDOMAIN);
        CHECK(strstr(gram_context_message(ctx), "negative") != NULL, "%s", gram_context_message(ctx));
        o.kernel = NULL;
        gram_kernel_destroy(lin);
        CHECK_STATUS(gram_attention(ctx, &o, NULL, &k, &v, &ou), GRAM_EINVAL);
        CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_OK);
    }
    /* FAVOR: R < 1, a kernel without positive features */
    o.method = GRAM_ATTENTION_FAVOR;
    o.n_features = -1;
    CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_EINVAL);
    CHECK(strstr(gram_context_message(ctx), "n_features") != NULL, "%s", gram_context_message(ctx));
    o.n_features = (int64_t)1 << 40;
    CHECK(gram_attention(ctx, &o, &q, &k, &v, &ou) != GRAM_OK, "n_features 2^40 accepted");
    o.n_features = 0;
    gram_kernel *m32 = check_kernel(ctx, "matern32");
    o.kernel = m32;
    CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_EINVAL);
    CHECK(strstr(gram_context_message(ctx), "softmax or the gaussian") != NULL, "%s", gram_context_message(ctx));
    o.method = GRAM_ATTENTION_EXACT; /* exact covers it */
    CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_OK);
    gram_kernel_destroy(m32);
    o.kernel = NULL;
    o.method = (gram_attention_method)7;
    CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_EINVAL);
    /* out overlapping an input */
    o.method = GRAM_ATTENTION_EXACT;
    gram_array ov = gram_array_f64(V, 3, 2);
    CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ov), GRAM_EINVAL);
    /* NULL options: softmax, exact */
    CHECK_STATUS(gram_attention(NULL, NULL, &q, &k, &v, &ou), GRAM_OK);
}

static int cancel_at_2(void *user, int64_t done, int64_t total)
{
    (void)total;
    ++*(int *)user;
    return done >= 2;
}

/* Degenerate sizes and cancellation. */
static void test_edges(gram_context *ctx)
{
    check_rng g = {500};
    const int64_t L = 300, d = 4;
    double *Q = randn(&g, L * d, 1.0), *K = randn(&g, L * d, 1.0), *V = randn(&g, L * 2, 1.0), *out = malloc(sizeof(double) * (size_t)(L * 2));
    /* dv = 0: nothing to average, nothing written, no error */
    CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_EXACT, 1, NULL, 0, 0, L, L, d, 0, Q, K, V, out), GRAM_OK);
    CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_FAVOR, 1, NULL, 16, 0, L, L, d, 0, Q, K, V, out), GRAM_OK);
    /* d = 0: every logit is 0, the plain mean (causal: of the prefix) */
    CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_EXACT, 1, NULL, 0, 0, L, L, 0, 2, Q, K, V, out), GRAM_OK);
    long double m = 0;
    for (int64_t j = 0; j < L; j++) m += V[j * 2];
    CHECK_CLOSE(out[(L - 1) * 2], (double)(m / L), 1e-14, 1e-15, "d = 0: the mean of V");
    CHECK_CLOSE(out[0], V[0], 0, 0, "d = 0, causal: row 0 is v_0");
    CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_FAVOR, 0, NULL, 0, 0, L, L, 0, 2, Q, K, V, out), GRAM_ESHAPE);
    /* FAVOR+ computes in float64 for float32 inputs: the float32 result is the float64 one (on the
     * same, float-representable inputs) rounded once */
    {
        float *Qf = malloc(sizeof(float) * (size_t)(L * d)), *Kf = malloc(sizeof(float) * (size_t)(L * d)),
              *Vf = malloc(sizeof(float) * (size_t)(L * 2)), *of = malloc(sizeof(float) * (size_t)(L * 2));
        for (int64_t e = 0; e < L * d; e++) Q[e] = Qf[e] = (float)Q[e], K[e] = Kf[e] = (float)K[e];
        for (int64_t e = 0; e < L * 2; e++) V[e] = Vf[e] = (float)V[e];
        for (int causal = 0; causal < 2; causal++) {
            gram_attention_options o;
            gram_attention_options_init(&o);
            o.method = GRAM_ATTENTION_FAVOR, o.causal = causal, o.n_features = 48, o.seed = 3;
            gram_array q = gram_array_f32(Qf, L, d), k = gram_array_f32(Kf, L, d), v = gram_array_f32(Vf, L, 2),
                       ou = gram_array_f32(of, L, 2);
            CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_OK);
            CHECK_STATUS(run_att(ctx, NULL, GRAM_ATTENTION_FAVOR, causal, NULL, 48, 3, L, L, d, 2, Q, K, V, out), GRAM_OK);
            int same = 1;
            for (int64_t e = 0; e < L * 2; e++) same &= of[e] == (float)out[e];
            CHECK(same, "FAVOR+ float32 (causal %d) is not the float64 result rounded", causal);
        }
        free(Qf), free(Kf), free(Vf), free(of);
    }
    /* strided views (Q column-major, K rows reversed, V float32 with a column stride of 2, out
     * column-major) give the contiguous call's bits, on both methods */
    for (int m = 0; m < 2; m++) {
        double *Qc = malloc(sizeof(double) * (size_t)(L * d)), *Kr = malloc(sizeof(double) * (size_t)(L * d)),
               *oc = malloc(sizeof(double) * (size_t)(L * 2)), *ref = malloc(sizeof(double) * (size_t)(L * 2));
        float *Vs = malloc(sizeof(float) * (size_t)(L * 4));
        for (int64_t i = 0; i < L; i++)
            for (int64_t c = 0; c < d; c++) Qc[c * L + i] = Q[i * d + c], Kr[(L - 1 - i) * d + c] = K[i * d + c];
        for (int64_t j = 0; j < L; j++) Vs[j * 4] = (float)V[j * 2], Vs[j * 4 + 2] = (float)V[j * 2 + 1], V[j * 2] = Vs[j * 4],
                                        V[j * 2 + 1] = Vs[j * 4 + 2];
        gram_attention_options o;
        gram_attention_options_init(&o);
        o.method = (gram_attention_method)m, o.n_features = 40, o.seed = 8;
        CHECK_STATUS(run_att(ctx, NULL, o.method, 0, NULL, 40, 8, L, L, d, 2, Q, K, V, ref), GRAM_OK);
        gram_array q = {Qc, GRAM_FLOAT64, L, d, 1, L}, k = {Kr + (L - 1) * d, GRAM_FLOAT64, L, d, -d, 1},
                   v = {Vs, GRAM_FLOAT32, L, 2, 4, 2}, ou = {oc, GRAM_FLOAT64, L, 2, 1, L};
        CHECK_STATUS(gram_attention(ctx, &o, &q, &k, &v, &ou), GRAM_OK);
        int same = 1;
        for (int64_t i = 0; i < L; i++) same &= oc[i] == ref[i * 2] && oc[L + i] == ref[i * 2 + 1];
        CHECK(same, "method %d: strided views differ from the contiguous call", m);
        free(Qc), free(Kr), free(oc), free(ref), free(Vs);
    }
    /* cancellation through the progress callback, every path */
    for (int t = 0; t < 4; t++) {
        int calls = 0;
        gram_context_set_threads(ctx, 1);
        gram_context_set_progress(ctx, cancel_at_2, &calls);
        const gram_attention_method me = t == 0 ? GRAM_ATTENTION_EXACT : GRAM_ATTENTION_FAVOR;
        double *b = randn(&g, 2 * L - 1, 1.0);
        gram_status s = run_att(ctx, NULL, me, t == 2, t == 3 ? b : NULL, 32, 0, L, L, d, 2, Q, K, V, out);
        CHECK(s == GRAM_ECANCELLED, "path %d: cancel gave %d (%s)", t, (int)s, gram_context_message(ctx));
        CHECK(calls >= 1, "path %d: the progress callback was not called", t);
        gram_context_set_progress(ctx, NULL, NULL);
        gram_context_set_threads(ctx, 0);
        free(b);
    }
    free(Q), free(K), free(V), free(out);
}

int main(void)
{
    gram_context *ctx = NULL;
    gram_context_create(&ctx);
    test_exact(ctx);
    test_float32(ctx);
    test_threads(ctx);
    test_empty_row(ctx);
    test_favor_direct(ctx);
    test_favor_prefix(ctx);
    test_favor_rate(ctx);
    test_bad(ctx);
    test_edges(ctx);
    gram_context_destroy(ctx);
    return check_done();
}
