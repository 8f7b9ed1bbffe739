/* diagnose: the participation ratio of kernel sums and the Biroli–Mézard regimes of a Gaussian KDE
 * (docs/approx.md, "Diagnostics"). */
#include "approx.h"

#include <math.h>

/* Both sums are taken in log space: the ratio matters most where the kernel values underflow (a
 * bandwidth far below the typical distance, the extreme-value regime), and there Σk and Σk² are 0
 * in doubles while their logs and the ratio exp(2·log Σkw − log Σ(kw)²) are finite. */
gram_status gram_kernel_sum_participation(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                                          const gram_array *X, const double *w, gram_array *out)
{
    gram__clear(ctx);
    if (!k) return gram__fail(ctx, GRAM_EINVAL, "kernel must not be NULL");
    if (!X) return gram__fail(ctx, GRAM_EINVAL, "X must not be NULL");
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "out must not be NULL");
    if (!gram_kernel_is_nonnegative(k))
        return gram__fail(ctx, GRAM_EDOMAIN,
                          "the participation ratio needs a kernel that is never negative; this one can be");
    const int64_t N = X->rows, M = Y ? Y->rows : N;
    if (out->rows != M || out->cols != 1)
        return gram__fail(ctx, GRAM_ESHAPE, "out is %lld×%lld but must be %lld×1 (one ratio per query)",
                          (long long)out->rows, (long long)out->cols, (long long)M);
    if (w)
        for (int64_t j = 0; j < N; j++)
            if (!(w[j] >= 0) || isinf(w[j]))
                return gram__fail(ctx, GRAM_EDOMAIN,
                                  "w[%lld] = %g: the participation ratio needs finite weights ≥ 0",
                                  (long long)j, w[j]);

    gram_status s = GRAM_OK;
    gram_kernel *k2 = NULL;
    double *buf = NULL, *w2 = NULL;
    size_t bytes;
    int64_t M2;
    if (!gram__mul_i64(M > 0 ? M : 1, 2, &M2) || !gram__bytes(M2, sizeof(double), &bytes)) {
        s = gram__fail(ctx, GRAM_EOVERFLOW, "participation: %lld queries need more memory than can be addressed",
                       (long long)M);
        goto done;
    }
    if (!(buf = gram__alloc(bytes))) {
        s = gram__fail(ctx, GRAM_ENOMEM, "participation: no memory for %lld queries", (long long)M);
        goto done;
    }
    if (w) {
        if (!gram__bytes(N > 0 ? N : 1, sizeof(double), &bytes) || !(w2 = gram__alloc(bytes))) {
            s = gram__fail(ctx, GRAM_ENOMEM, "participation: no memory for %lld weights", (long long)N);
            goto done;
        }
        for (int64_t j = 0; j < N; j++) w2[j] = w[j] * w[j];
    }
    if ((s = gram_kernel_pow(ctx, k, 2.0, &k2))) goto done;

    gram_array l1 = gram_array_f64(buf, M, 1), l2 = gram_array_f64(buf + M, M, 1);
    gram_array W1 = gram_array_f64(w, N, 1), W2 = gram_array_f64(w2, N, 1);
    if ((s = gram_kernel_logsum(ctx, k, Y, X, w ? &W1 : NULL, &l1))) goto done;
    if ((s = gram_kernel_logsum(ctx, k2, Y, X, w ? &W2 : NULL, &l2))) goto done;

    for (int64_t i = 0; i < M; i++) {
        /* A query whose sum is exactly 0 (no weight, or a compact kernel with every point out of
         * reach) has no point carrying it: 0, not the NaN of -inf - (-inf). */
        double r = isinf(buf[i]) && buf[i] < 0 ? 0.0 : exp(2.0 * buf[i] - buf[M + i]);
        char *p = (char *)out->data;
        if (out->dtype == GRAM_FLOAT64)
            *(double *)(void *)(p + (size_t)(i * out->row_stride) * sizeof(double)) = r;
        else
            *(float *)(void *)(p + (size_t)(i * out->row_stride) * sizeof(float)) = (float)r;
    }
done:
    gram_kernel_destroy(k2);
    gram__free(w2);
    gram__free(buf);
    return s;
}

/*
 * The Biroli–Mézard thresholds for Gaussian data. Data y ~ N(0, I_D), a query x drawn from the same
 * law (|x|² ≈ D), the kernel exp(-|x - y|²/2h²), N = e^{αD} points. The sum Σ_j k(x, y_j) is the
 * partition function of a random-energy model, and its behaviour changes where the points that
 * dominate a moment E[k^m] stop being present among the N: the law of y tilted by k^m is
 * N(m x/(h² + m), h²/(h² + m) I), and its Kullback–Leibler divergence from N(0, I) per dimension is
 *     s(t) = ½ [ ln(1 + t) − t/(1 + t)² ],   t = m/h²,
 * (increasing from s(0) = 0), so about N·e^{−D s(t)} points look like the dominant ones:
 *   - m = 2 (the variance of the sum): while s(2/h²) < α the variance is carried by typical points
 *     and the CLT holds; h_CLT solves s(2/h²) = α;
 *   - m = 1 (the mean): below h_G, s(1/h²) > α, even the mean is carried by points that are not in
 *     the sample, and the sum is its largest few terms (extreme-value statistics); h_G solves
 *     s(1/h²) = α.
 * Hence h_CLT = √2·h_G for every α. These are the paper's regimes as its abstract and Sections 3–4
 * define them; the closed form above is our derivation from that set-up (the paper's own equation
 * numbers could not be checked from here: docs/approx.md says so).
 */
static double bm_s(double t) { return 0.5 * (log1p(t) - t / ((1.0 + t) * (1.0 + t))); }

/* t* with s(t*) = alpha: s is increasing, so bisection on a bracket grown by doubling. */
static double bm_root(double alpha)
{
    double lo = 0.0, hi = 1.0;
    while (bm_s(hi) < alpha && hi < 1e300) hi *= 2.0;
    for (int it = 0; it < 200 && hi - lo > 1e-16 * hi; it++) {
        double mid = 0.5 * (lo + hi);
        if (bm_s(mid) < alpha) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

gram_status gram_kde_regime_of(double N, double D, double h, double *h_clt, double *h_g, gram_kde_regime *regime)
{
    if (!(N >= 2) || isinf(N) || !(D >= 1) || isinf(D) || !(h > 0) || isinf(h)) return GRAM_EINVAL;
    const double alpha = log(N) / D;
    const double t = bm_root(alpha);
    const double g = 1.0 / sqrt(t), c = sqrt(2.0) * g;
    if (h_g) *h_g = g;
    if (h_clt) *h_clt = c;
    if (regime) *regime = h >= c ? GRAM_KDE_REGIME_CLT : h >= g ? GRAM_KDE_REGIME_HEAVY : GRAM_KDE_REGIME_EXTREME;
    return GRAM_OK;
}
