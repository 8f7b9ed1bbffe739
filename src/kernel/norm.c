/* log ∫_{R^D} k(0, x) dx for density kernels, in log space throughout (D may be in the
 * thousands, where the integral itself over- or underflows).
 *
 * A radial profile f(r) integrates to S_{D-1} ∫_0^∞ r^{D-1} f(r) dr, with the unit sphere's area
 * S_{D-1} = 2 π^{D/2} / Γ(D/2) and the unit ball's volume V_D = S_{D-1} / D. The radial integrals
 * are Gamma-function identities (∫ r^{D-1+m} e^{-a r} dr = Γ(D+m) / a^{D+m}), a Beta integral for
 * the rational quadratic, and polynomial integrals on [0, 1] for the compact kernels. Lengthscales
 * stretch the coordinates, adding Σ_d log ℓ_d.
 */
#include "kernel.h"

#include <math.h>

#define LOG_PI 1.14472988584940017414
#define LOG_2 0.69314718055994530942
#define HALF_PI 1.57079632679489661923

/* log ∫_0^1 r^{D-1} cos(π r / 2) dr. With s = 1 - r the integrand is (1-s)^{D-1} sin(π s / 2);
 * expanding the sine and using the Beta integral ∫_0^1 (1-s)^{D-1} s^{2k+1} ds = (2k+1)! Γ(D) /
 * Γ(D+2k+2) gives
 *     Σ_k (-1)^k (π/2)^{2k+1} / (D (D+1) ··· (D+2k+1)),
 * an alternating series whose term ratio is below (π/2)² / 12 < 0.21 for every D ≥ 1: no
 * cancellation, and a handful of terms for large D. */
static double log_cosine_window_radial(double D)
{
    double sum = 1.0, term = 1.0, q = HALF_PI * HALF_PI;
    for (int k = 1; k < 100; k++) {
        term *= -q / ((D + 2.0 * k) * (D + 2.0 * k + 1.0));
        sum += term;
        if (fabs(term) < 1e-18 * sum) break;
    }
    return log(HALF_PI) - log(D) - log1p(D) + log(sum);
}

gram_status gram_kernel_log_normalizer(gram_context *ctx, const gram_kernel *k, int64_t D,
                                       double *out)
{
    gram__clear(ctx);
    if (!k) return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_log_normalizer: kernel is NULL");
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "gram_kernel_log_normalizer: out is NULL");
    if (D < 1)
        return gram__fail(ctx, GRAM_ESHAPE, "gram_kernel_log_normalizer: D must be >= 1, got %lld",
                          (long long)D);
    if (k->n_ops < 1 || k->ops[0].kind != GRAM_OP_LEAF || k->n_leaves != 1)
        return gram__fail(ctx, GRAM_EDOMAIN,
                          "gram_kernel_log_normalizer: needs a single kernel (optionally scaled), "
                          "not a sum or product of %d kernels",
                          k->n_leaves);
    double log_c = 0.0;
    for (int i = 1; i < k->n_ops; i++) {
        if (k->ops[i].kind != GRAM_OP_SCALE)
            return gram__fail(ctx, GRAM_EDOMAIN,
                              "gram_kernel_log_normalizer: needs a single kernel (optionally scaled)");
        double c = k->ops[i].c;
        if (!(c > 0.0))
            return gram__fail(ctx, GRAM_EDOMAIN,
                              "gram_kernel_log_normalizer: the scale factor %g is not > 0, so the "
                              "kernel is not a density kernel",
                              c);
        log_c += log(c);
    }
    if (k->dim && D != k->dim)
        return gram__fail(ctx, GRAM_ESHAPE,
                          "gram_kernel_log_normalizer: the kernel has %lld ARD lengthscales but D = %lld",
                          (long long)k->dim, (long long)D);

    const gram__leaf *L = &k->leaves[0];
    double d = (double)D;
    double log_S = LOG_2 + 0.5 * d * LOG_PI - lgamma(0.5 * d); /* unit sphere S^{D-1} */
    double log_V = 0.5 * d * LOG_PI - lgamma(0.5 * d + 1.0);   /* unit ball */
    double v;
    switch (L->family) {
    case GRAM_GAUSSIAN: v = 0.5 * d * (LOG_2 + LOG_PI); break;
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_EXPONENTIAL: v = log_S + lgamma(d); break;
    case GRAM_MATERN32: /* (Γ(D) + Γ(D+1)) / √3^D */
        v = log_S + lgamma(d) + log1p(d) - 0.5 * d * log(3.0);
        break;
    case GRAM_MATERN52: /* (Γ(D) + Γ(D+1) + Γ(D+2)/3) / √5^D */
        v = log_S + lgamma(d) + log1p(d + d * (d + 1.0) / 3.0) - 0.5 * d * log(5.0);
        break;
    case GRAM_RATIONAL_QUADRATIC: /* S (2α)^{D/2} B(D/2, α - D/2) / 2 */
        if (!(2.0 * L->alpha > d))
            return gram__fail(ctx, GRAM_EDOMAIN,
                              "gram_kernel_log_normalizer: rational_quadratic integrates over R^D "
                              "only when 2*alpha > D (alpha = %g, D = %lld)",
                              L->alpha, (long long)D);
        v = 0.5 * d * (LOG_2 + LOG_PI + log(L->alpha)) + lgamma(L->alpha - 0.5 * d) - lgamma(L->alpha);
        break;
    case GRAM_CAUCHY:
        if (D != 1)
            return gram__fail(ctx, GRAM_EDOMAIN,
                              "gram_kernel_log_normalizer: cauchy integrates over R^D only for D = 1 "
                              "(got D = %lld)",
                              (long long)D);
        v = LOG_PI;
        break;
    case GRAM_TOPHAT: v = log_V; break;
    case GRAM_EPANECHNIKOV: v = log_V + LOG_2 - log(d + 2.0); break;
    case GRAM_TRIANGULAR: v = log_V - log1p(d); break;
    case GRAM_COSINE_WINDOW: v = log_S + log_cosine_window_radial(d); break;
    case GRAM_LAPLACIAN_L1: v = d * LOG_2; break; /* Π_d ∫ e^{-|x_d|} dx_d */
    case GRAM_MATERN: /* the spectral density at 0: (2π/ν)^{D/2} Γ(ν + D/2) / Γ(ν) */
        v = 0.5 * d * (LOG_2 + LOG_PI - log(L->nu)) + lgamma(L->nu + 0.5 * d) - lgamma(L->nu);
        break;
    default:
        return gram__fail(ctx, GRAM_EDOMAIN,
                          "gram_kernel_log_normalizer: %s does not integrate to a finite value "
                          "(density kernels: gaussian, laplacian, matern12, matern32, matern52, "
                          "exponential, rational_quadratic, cauchy, tophat, epanechnikov, "
                          "triangular, cosine_window, laplacian_l1, matern)",
                          gram__family_name(L->family));
    }
    if (L->n_scale > 1)
        for (int64_t j = 0; j < L->n_scale; j++) v += log(L->lengthscale[j]);
    else
        v += d * log(L->lengthscale[0]);
    *out = v + log_c;
    return GRAM_OK;
}
