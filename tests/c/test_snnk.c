/* Scalable neural network kernels (src/features/snnk.c): the layer's estimates against the exact
 * layer computed here in long double, statistically, and the layer's plumbing exactly.
 *
 * Every statistical check uses fixed seeds, so it is deterministic; the false-alarm rate quoted is
 * the probability that a correct implementation would fail it on fresh seeds.
 *
 * The variance of one random vector's term Z (the estimate is the mean of m such terms: m = R/2
 * for SIN/COS, R otherwise), with s = |x|², t = |w|², c = x·w:
 *   COS, SIN  Z = e^(s/2) e^(g·w - t/2) cos(g·x + b) (sin):
 *             E[Z²] = e^(s+t)/2 ± e^(t-s) cos(4c + 2b)/2 (+ for cos), from cos² = (1 + cos 2·)/2 and
 *             the Gaussian trick E[e^(g·(2w + 2ix))] = e^(2(t - s) + 4ic).
 *   EXP       Z = e^b e^(g·x - s/2) e^(g·w - t/2): Var Z = f² (e^(|x + w|²) - 1) (Choromanski et al.
 *             2021, Lemma 2: the positive random features' variance).
 *   RELU      Z = max(g·x̃, 0) max(g·w̃, 0): E[Z] = |x̃||w̃| J1(θ)/2π and E[Z²] = |x̃|²|w̃|² J2(θ)/2π,
 *             J1 = sin θ + (π - θ) cos θ, J2 = 3 sin θ cos θ + (π - θ)(1 + 2 cos² θ) (Cho & Saul
 *             2009, arc-cosine kernels of degrees 1 and 2, eq. (6) with their factor 2).
 * The SNNK paper (arXiv 2310.13225) reports its point-wise estimation errors only as plots, so the
 * layer's error is held against these variance formulas instead of a quoted number.
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const gram_activation acts[] = {GRAM_ACT_SIN, GRAM_ACT_COS, GRAM_ACT_EXP, GRAM_ACT_RELU};
static const char *aname(gram_activation a)
{
    return a == GRAM_ACT_SIN ? "SIN" : a == GRAM_ACT_COS ? "COS" : a == GRAM_ACT_EXP ? "EXP" : "RELU";
}

/* The exact output f(w·x + b) (ReLU: the arc-cosine target of the ReLU-SNNK) and the variance of one
 * term Z, in long double. bias: whether the layer has b (ReLU then augments x and w). */
static void exact(gram_activation a, int64_t d, const double *x, const double *w, double b, int bias,
                  long double *f, long double *var)
{
    long double s = 0, t = 0, c = 0;
    for (int64_t k = 0; k < d; k++) {
        s += (long double)x[k] * x[k];
        t += (long double)w[k] * w[k];
        c += (long double)x[k] * w[k];
    }
    switch (a) {
    case GRAM_ACT_SIN: case GRAM_ACT_COS: {
        const long double sg = a == GRAM_ACT_COS ? 1 : -1;
        *f = a == GRAM_ACT_COS ? cosl(c + b) : sinl(c + b);
        *var = expl(s + t) / 2 + sg * expl(t - s) * cosl(4 * c + 2 * (long double)b) / 2 - *f * *f;
        break;
    }
    case GRAM_ACT_EXP:
        *f = expl(c + b);
        *var = *f * *f * (expl(s + t + 2 * c) - 1);
        break;
    default: {
        if (bias) {
            s += 1;
            t += (long double)b * b;
            c += b;
        }
        const long double nx = sqrtl(s), nw = sqrtl(t), pi = 3.14159265358979323846264338327950288L;
        long double ct = c / (nx * nw);
        ct = ct > 1 ? 1 : ct < -1 ? -1 : ct;
        const long double th = acosl(ct), st = sinl(th);
        *f = nx * nw * (st + (pi - th) * ct) / (2 * pi);
        *var = s * t * (3 * st * ct + (pi - th) * (1 + 2 * ct * ct)) / (2 * pi) - *f * *f;
        break;
    }
    }
}

/* A layer's apply; NULL-free: a failure is recorded and out left as NAN. */
static gram_status apply(gram_context *ctx, gram_activation a, const double *W, const double *b, int64_t no, int64_t d,
                         int64_t R, uint64_t seed, const double *X, int64_t N, double *out)
{
    gram_snnk *L = NULL;
    gram_array Wa = gram_array_f64(W, no, d), Xa = gram_array_f64(X, N, d), Oa = gram_array_f64(out, N, no);
    gram_status s = gram_snnk_create(ctx, a, &Wa, b, R, seed, &L);
    if (!s) s = gram_snnk_apply(ctx, L, &Xa, &Oa);
    gram_snnk_destroy(L);
    return s;
}

static void fill(check_rng *r, double *v, int64_t n, double scale)
{
    for (int64_t i = 0; i < n; i++) v[i] = scale * check_normal(r);
}

/* Unbiasedness and the variance of every output of a small layer, over S seeds. */
static void test_unbiased(gram_context *ctx)
{
    enum { d = 6, no = 5, N = 4, S = 300, R = 32 };
    check_rng rng = {42};
    double W[no * d], X[N * d], b[no], out[N * no];
    /* |x|², |w|² ≈ 0.3: e^(s+t) ≈ 1.8 keeps the features' tails mild, so the means of S estimates
     * are close to normal */
    fill(&rng, W, no * d, sqrt(0.3 / d));
    fill(&rng, X, N * d, sqrt(0.3 / d));
    for (int j = 0; j < no; j++) b[j] = 2 * check_uniform(&rng) - 1;
    for (size_t ai = 0; ai < sizeof acts / sizeof *acts; ai++) {
        const gram_activation a = acts[ai];
        const int64_t m = a == GRAM_ACT_SIN || a == GRAM_ACT_COS ? R / 2 : R;
        long double sum[N * no] = {0}, sq[N * no] = {0};
        int ok = 1;
        for (uint64_t seed = 0; seed < S && ok; seed++) {
            gram_status s = apply(ctx, a, W, b, no, d, R, 1000 + seed, X, N, out);
            CHECK(s == GRAM_OK, "%s apply: %s", aname(a), gram_context_message(ctx));
            ok = s == GRAM_OK;
            for (int e = 0; e < N * no; e++) {
                sum[e] += out[e];
                sq[e] += (long double)out[e] * out[e];
            }
        }
        if (!ok) continue;
        /* (a) |mean - f| ≤ 4.5 standard errors from the formula (two-sided 6.8e-6 per entry, 80
         *     entries: below 6e-4 for the file; S·m ≥ 4800 terms, so the normal tail applies);
         * (b) the spread of the S estimates within [0.65, 1.5] of the formula's variance (its
         *     sample variance has a relative sd near √(2/S) = 0.08; the bounds are ≥ 4 sd);
         * (c) power: targets moved by 0.15 in b (ReLU: scaled by 1.1) must be rejected by (a) for
         *     most entries, so (a) is not vacuous. */
        int rejected = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < no; j++) {
                const int e = i * no + j;
                long double f, var, f2, var2;
                exact(a, d, X + i * d, W + j * d, b[j], 1, &f, &var);
                exact(a, d, X + i * d, W + j * d, b[j] + 0.15, 1, &f2, &var2);
                if (a == GRAM_ACT_RELU) f2 = 1.1L * f;
                const long double mean = sum[e] / S, se = sqrtl(var / m / S);
                const long double svar = (sq[e] - S * mean * mean) / (S - 1);
                CHECK(fabsl(mean - f) <= 4.5L * se, "%s: output (%d, %d): mean %.10Lg over %d seeds, exact %.10Lg, "
                      "z = %.2Lf", aname(a), i, j, mean, S, f, (mean - f) / se);
                CHECK(svar >= 0.65L * var / m && svar <= 1.5L * var / m,
                      "%s: output (%d, %d): variance over seeds %.4Lg, formula %.4Lg", aname(a), i, j, svar, var / m);
                rejected += fabsl(mean - f2) > 4.5L * se;
            }
        CHECK(rejected >= N * no / 2, "%s: only %d of %d perturbed targets rejected", aname(a), rejected, N * no);
    }
}

/* A wider layer against the exact one: its mean squared error over all outputs against Σ Var/m. */
static void test_layer_error(gram_context *ctx)
{
    enum { d = 32, no = 48, N = 96, R = 1024, S = 8 };
    check_rng rng = {7};
    double *W = malloc(sizeof(double) * no * d), *X = malloc(sizeof(double) * N * d), b[no];
    double *out = malloc(sizeof(double) * N * no);
    /* the paper's layers see normalised inputs (its code divides by d^(1/4)); |x|², |w|² ≈ 0.5 */
    fill(&rng, W, no * d, sqrt(0.5 / d));
    fill(&rng, X, N * d, sqrt(0.5 / d));
    for (int j = 0; j < no; j++) b[j] = 0.5 * check_normal(&rng);
    for (size_t ai = 0; ai < sizeof acts / sizeof *acts; ai++) {
        const gram_activation a = acts[ai];
        const int64_t m = a == GRAM_ACT_SIN || a == GRAM_ACT_COS ? R / 2 : R;
        long double sse = 0, pred = 0, norm = 0;
        for (uint64_t seed = 0; seed < S; seed++) {
            gram_status s = apply(ctx, a, W, b, no, d, R, 77 + seed, X, N, out);
            CHECK(s == GRAM_OK, "%s apply: %s", aname(a), gram_context_message(ctx));
            if (s) break;
            for (int i = 0; i < N; i++)
                for (int j = 0; j < no; j++) {
                    long double f, var;
                    exact(a, d, X + i * d, W + j * d, b[j], 1, &f, &var);
                    sse += (out[i * no + j] - f) * (out[i * no + j] - f);
                    pred += var / m;
                    norm += f * f;
                }
        }
        /* The outputs of one seed share G, so their errors are correlated and the ratio is noisier
         * than N·no independent terms would make it; over S = 8 seeds, [0.6, 1.6] is wide enough
         * for that (the ratios measured: SIN 1.03, COS 0.93, EXP 0.95, RELU 0.95) and still rejects
         * an estimator with the variance of one feature doubled or halved. */
        CHECK(sse >= 0.6L * pred && sse <= 1.6L * pred, "%s: layer MSE %.4Lg, variance formula %.4Lg (ratio %.3Lf)",
              aname(a), sse / (S * N * no), pred / (S * N * no), sse / pred);
        if (getenv("GRAM_TEST_VERBOSE"))
            printf("%s: R = %d: relative Frobenius error %.4Lf, predicted %.4Lf, MSE/formula %.3Lf\n", aname(a), R,
                   sqrtl(sse / norm), sqrtl(pred / norm), sse / pred);
    }
    free(W);
    free(X);
    free(out);
}

/* apply = Φ Ψᵀ; the same bits for every thread count, strides and dtype of out; float32. */
static void test_plumbing(gram_context *ctx)
{
    enum { d = 9, no = 13, N = 1100, R = 64 };
    check_rng rng = {99};
    double *W = malloc(sizeof(double) * no * d), *X = malloc(sizeof(double) * N * d), b[no];
    double *out = malloc(sizeof(double) * N * no), *out2 = malloc(sizeof(double) * N * no);
    double *phi = malloc(sizeof(double) * N * R), *psi = malloc(sizeof(double) * no * R);
    double *Xt = malloc(sizeof(double) * N * d), *outT = malloc(sizeof(double) * N * no);
    float *X32 = malloc(sizeof(float) * N * d), *o32 = malloc(sizeof(float) * N * no);
    fill(&rng, W, no * d, 0.3);
    fill(&rng, X, N * d, 0.3);
    for (int j = 0; j < no; j++) b[j] = check_normal(&rng);
    for (int i = 0; i < N * d; i++) X32[i] = (float)X[i];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < d; k++) Xt[k * N + i] = X[i * d + k];
    for (size_t ai = 0; ai < sizeof acts / sizeof *acts; ai++) {
        const gram_activation a = acts[ai];
        gram_snnk *L = NULL;
        gram_array Wa = gram_array_f64(W, no, d), Xa = gram_array_f64(X, N, d), Oa = gram_array_f64(out, N, no),
                   O2 = gram_array_f64(out2, N, no), Pa = gram_array_f64(phi, N, R), Sa = gram_array_f64(psi, no, R);
        CHECK_STATUS(gram_snnk_create(ctx, a, &Wa, b, R, 5, &L), GRAM_OK);
        if (!L) continue;
        CHECK(gram_snnk_n_inputs(L) == d && gram_snnk_n_outputs(L) == no && gram_snnk_n_components(L) == R &&
              gram_snnk_activation(L) == a && gram_snnk_seed(L) == 5, "%s: accessors", aname(a));
        CHECK_STATUS(gram_context_set_threads(ctx, 1), GRAM_OK);
        CHECK_STATUS(gram_snnk_apply(ctx, L, &Xa, &Oa), GRAM_OK);
        CHECK_STATUS(gram_context_set_threads(ctx, 3), GRAM_OK);
        CHECK_STATUS(gram_snnk_apply(ctx, L, &Xa, &O2), GRAM_OK);
        CHECK(!memcmp(out, out2, sizeof(double) * N * no), "%s: 1 and 3 threads differ", aname(a));
        /* X as a column-major view and out transposed: the same bits */
        gram_array XT = {Xt, GRAM_FLOAT64, N, d, 1, N}, OT = {outT, GRAM_FLOAT64, N, no, 1, N};
        CHECK_STATUS(gram_snnk_apply(ctx, L, &XT, &OT), GRAM_OK);
        int same = 1;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < no; j++) same &= outT[j * N + i] == out[i * no + j];
        CHECK(same, "%s: strided X and out change the result", aname(a));
        CHECK_STATUS(gram_snnk_input_features(ctx, L, &Xa, &Pa), GRAM_OK);
        CHECK_STATUS(gram_snnk_weight_features(ctx, L, &Sa), GRAM_OK);
        long double worst = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < no; j++) {
                long double dot = 0, mag = 0;
                for (int r = 0; r < R; r++) {
                    dot += (long double)phi[i * R + r] * psi[j * R + r];
                    mag += fabsl((long double)phi[i * R + r] * psi[j * R + r]);
                }
                const long double e = fabsl(dot - out[i * no + j]) / mag;
                worst = e > worst ? e : worst;
            }
        CHECK(worst <= 1e-14L, "%s: apply vs input_features·weight_featuresᵀ: relative error %.3Lg", aname(a), worst);
        if (a == GRAM_ACT_EXP) {
            int pos = 1;
            for (int i = 0; i < N * R; i++) pos &= phi[i] > 0;
            for (int i = 0; i < no * R; i++) pos &= psi[i] > 0;
            CHECK(pos, "EXP: features must be positive");
        }
        /* float32 inputs and outputs: computed in float32. A feature's rounding error is relative
         * to |g||x| (the projection's terms), not to the feature, which cancellation can make small
         * (ReLU near g·x = 0), so the scale is the row's largest feature times Σ|Ψ|. */
        gram_array X3 = gram_array_f32(X32, N, d), O3 = gram_array_f32(o32, N, no);
        CHECK_STATUS(gram_snnk_apply(ctx, L, &X3, &O3), GRAM_OK);
        worst = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < no; j++) {
                long double mag = 0, top = 0;
                for (int r = 0; r < R; r++) top = fabsl(phi[i * R + r]) > top ? fabsl(phi[i * R + r]) : top;
                for (int r = 0; r < R; r++) mag += top * fabsl(psi[j * R + r]);
                const long double e = fabsl((long double)o32[i * no + j] - out[i * no + j]) / mag;
                worst = e > worst ? e : worst;
            }
        CHECK(worst <= 2e-5L, "%s: float32 vs float64: relative error %.3Lg", aname(a), worst);
        /* float64 X into a float32 out: the float64 result rounded */
        CHECK_STATUS(gram_snnk_apply(ctx, L, &Xa, &O3), GRAM_OK);
        same = 1;
        for (int i = 0; i < N * no; i++) same &= o32[i] == (float)out[i];
        CHECK(same, "%s: a float32 out of float64 X is not the float64 result rounded", aname(a));
        gram_snnk_destroy(L);
    }
    CHECK_STATUS(gram_context_set_threads(ctx, 0), GRAM_OK);
    /* the same seed gives the same layer; another seed another one */
    CHECK_STATUS(apply(ctx, GRAM_ACT_COS, W, b, no, d, R, 11, X, 10, out), GRAM_OK);
    CHECK_STATUS(apply(ctx, GRAM_ACT_COS, W, b, no, d, R, 11, X, 10, out2), GRAM_OK);
    CHECK(!memcmp(out, out2, sizeof(double) * 10 * no), "same seed, different layer");
    CHECK_STATUS(apply(ctx, GRAM_ACT_COS, W, b, no, d, R, 12, X, 10, out2), GRAM_OK);
    CHECK(memcmp(out, out2, sizeof(double) * 10 * no), "seeds 11 and 12 give the same layer");
    /* ReLU without a bias is the paper's layer on x and w themselves */
    long double f, var;
    CHECK_STATUS(apply(ctx, GRAM_ACT_RELU, W, NULL, no, d, 1 << 16, 3, X, 1, out), GRAM_OK);
    exact(GRAM_ACT_RELU, d, X, W, 0, 0, &f, &var);
    CHECK(fabsl(out[0] - f) <= 5 * sqrtl(var / (1 << 16)), "RELU without b: %.8g, exact %.8Lg (sd %.3Lg)", out[0], f,
          sqrtl(var / (1 << 16)));
    free(W);
    free(X);
    free(out);
    free(out2);
    free(phi);
    free(psi);
    free(Xt);
    free(outT);
    free(X32);
    free(o32);
}

static int has(const gram_context *ctx, const char *what)
{
    const char *m = gram_context_message(ctx);
    return m && strstr(m, what);
}

static void test_bad_input(gram_context *ctx)
{
    enum { d = 3, no = 2 };
    double W[no * d] = {0.1, 0.2, 0.3, -0.1, 0.0, 0.2}, b[no] = {0.5, -0.5}, X[4 * d] = {0}, out[4 * no];
    float X32[4 * d] = {0}, o32[4 * no];
    gram_array Wa = gram_array_f64(W, no, d), Xa = gram_array_f64(X, 4, d), Oa = gram_array_f64(out, 4, no);
    gram_snnk *L = (gram_snnk *)1;
    static const int not_covered[] = {0, 4, 6, 7, 8, -1, 99};
    for (size_t i = 0; i < sizeof not_covered / sizeof *not_covered; i++) {
        CHECK_STATUS(gram_snnk_create(ctx, (gram_activation)not_covered[i], &Wa, b, 8, 0, &L), GRAM_EINVAL);
        CHECK(!L && has(ctx, "SIN (1), COS (2), EXP (3) and RELU (5)"), "activation %d: %s", not_covered[i],
              gram_context_message(ctx));
    }
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_COS, &Wa, b, 8, 0, NULL), GRAM_EINVAL);
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_COS, NULL, b, 8, 0, &L), GRAM_EINVAL);
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_COS, &Wa, b, 0, 0, &L), GRAM_EINVAL);
    CHECK(has(ctx, "n_components"), "R = 0: %s", gram_context_message(ctx));
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_EXP, &Wa, b, -5, 0, &L), GRAM_EINVAL);
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_SIN, &Wa, b, 7, 0, &L), GRAM_EINVAL);
    CHECK(has(ctx, "even"), "odd R: %s", gram_context_message(ctx));
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_RELU, &Wa, b, 7, 0, &L), GRAM_OK);
    gram_snnk_destroy(L);
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_EXP, &Wa, b, (int64_t)1 << 40, 0, &L), GRAM_EOVERFLOW);
    CHECK(!L, "failed create leaves out NULL");
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_EXP, &Wa, b, INT64_MAX, 0, &L), GRAM_EOVERFLOW);
    gram_array W0 = gram_array_f64(W, 0, d);
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_EXP, &W0, b, 8, 0, &L), GRAM_ESHAPE);
    W[4] = NAN;
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_COS, &Wa, b, 8, 0, &L), GRAM_ENONFINITE);
    CHECK(has(ctx, "W"), "NaN in W: %s", gram_context_message(ctx));
    W[4] = INFINITY;
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_COS, &Wa, b, 8, 0, &L), GRAM_ENONFINITE);
    W[4] = 0;
    b[1] = NAN;
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_COS, &Wa, b, 8, 0, &L), GRAM_ENONFINITE);
    CHECK(has(ctx, "b: entry 1"), "NaN in b: %s", gram_context_message(ctx));
    /* e^(b + g·w - |w|²/2) past the largest double: refused at create, naming the row */
    b[1] = 800;
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_EXP, &Wa, b, 8, 0, &L), GRAM_EDOMAIN);
    CHECK(has(ctx, "row 1"), "overflowing parameter features: %s", gram_context_message(ctx));
    /* past the largest float only: float64 data work, float32 data are refused */
    b[1] = 100;
    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_EXP, &Wa, b, 8, 0, &L), GRAM_OK);
    gram_array X3 = gram_array_f32(X32, 4, d), O3 = gram_array_f32(o32, 4, no);
    CHECK_STATUS(gram_snnk_apply(ctx, L, &Xa, &Oa), GRAM_OK);
    CHECK(isfinite(out[1]) && out[1] > 1e40, "EXP with b = 100: %g", out[1]);
    CHECK_STATUS(gram_snnk_apply(ctx, L, &X3, &O3), GRAM_EDOMAIN);
    CHECK(has(ctx, "float64"), "float32 overflow: %s", gram_context_message(ctx));
    gram_snnk_destroy(L);
    b[1] = -0.5;

    CHECK_STATUS(gram_snnk_create(ctx, GRAM_ACT_COS, &Wa, b, 8, 0, &L), GRAM_OK);
    CHECK_STATUS(gram_snnk_apply(ctx, NULL, &Xa, &Oa), GRAM_EINVAL);
    gram_array Xw = gram_array_f64(X, 4, d - 1), Ow = gram_array_f64(out, 4, no - 1), Or = gram_array_f64(out, 3, no);
    CHECK_STATUS(gram_snnk_apply(ctx, L, &Xw, &Oa), GRAM_ESHAPE);
    CHECK(has(ctx, "3 inputs"), "dimension mismatch: %s", gram_context_message(ctx));
    CHECK_STATUS(gram_snnk_apply(ctx, L, &Xa, &Ow), GRAM_ESHAPE);
    CHECK_STATUS(gram_snnk_apply(ctx, L, &Xa, &Or), GRAM_ESHAPE);
    gram_array Pw = gram_array_f64(out, 4, 2);
    CHECK_STATUS(gram_snnk_input_features(ctx, L, &Xa, &Pw), GRAM_ESHAPE);
    CHECK_STATUS(gram_snnk_weight_features(ctx, L, &Pw), GRAM_ESHAPE);
    CHECK_STATUS(gram_snnk_weight_features(ctx, NULL, &Pw), GRAM_EINVAL);
    X[2 * d + 1] = NAN;
    CHECK_STATUS(gram_snnk_apply(ctx, L, &Xa, &Oa), GRAM_ENONFINITE);
    CHECK(has(ctx, "row 2"), "NaN in X: %s", gram_context_message(ctx));
    /* e^(|x|²/2) of a row with |x| = 40 overflows: GRAM_EDOMAIN naming it, never an inf */
    X[2 * d + 1] = 0;
    X[3 * d] = 40;
    CHECK_STATUS(gram_snnk_apply(ctx, L, &Xa, &Oa), GRAM_EDOMAIN);
    CHECK(has(ctx, "row 3"), "|x| = 40: %s", gram_context_message(ctx));
    /* |x| = 15 is fine in float64 but past float32's e^(s/2) */
    X[3 * d] = 15;
    X32[3 * d] = 15;
    CHECK_STATUS(gram_snnk_apply(ctx, L, &Xa, &Oa), GRAM_OK);
    CHECK_STATUS(gram_snnk_apply(ctx, L, &X3, &O3), GRAM_EDOMAIN);
    CHECK(has(ctx, "row 3") && has(ctx, "float64"), "float32 |x| = 15: %s", gram_context_message(ctx));
    /* N = 0 is a no-op */
    gram_array X0 = gram_array_f64(X, 0, d), O0 = gram_array_f64(out, 0, no);
    CHECK_STATUS(gram_snnk_apply(ctx, L, &X0, &O0), GRAM_OK);
    /* out overlapping X */
    gram_array Oo = gram_array_f64(X, 4, no);
    CHECK_STATUS(gram_snnk_apply(ctx, L, &Xa, &Oo), GRAM_EINVAL);
    gram_snnk_destroy(L);
    gram_snnk_destroy(NULL);
    CHECK(gram_snnk_n_components(NULL) == 0 && gram_snnk_n_inputs(NULL) == 0, "accessors of NULL");
}

int main(void)
{
    gram_context *ctx = NULL;
    if (gram_context_create(&ctx)) return 1;
    test_bad_input(ctx);
    test_plumbing(ctx);
    test_unbiased(ctx);
    test_layer_error(ctx);
    gram_context_destroy(ctx);
    return check_done();
}
