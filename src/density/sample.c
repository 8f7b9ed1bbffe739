/* Sampling from a fitted KDE: a component j with probability w_j, plus a draw from the kernel.
 *
 * Sample i uses stream i of the Philox generator under the caller's seed and nothing else, so the
 * samples are the same on every thread count (the loop is serial: no OpenMP outside the engine).
 * Kernel draws are radial: a uniform direction (normalised gaussian vector) times a radius with
 * the family's radial law, then scaled by h_d (isotropic) or factor·L (covariance). */
#include "density.h"

#include "../base/rng.h"
#include "../engine/engine.h"
#include "../linalg/linalg.h"

#include <math.h>

#define PI 3.14159265358979323846

/* Fills u (D values) with a uniformly distributed unit vector. */
static void unit_direction(gram__rng *r, int64_t D, double *u)
{
    double n2;
    do {
        n2 = 0.0;
        for (int64_t d = 0; d < D; d++) {
            u[d] = gram__rng_normal(r);
            n2 += u[d] * u[d];
        }
    } while (!(n2 > 0.0));
    double inv = 1.0 / sqrt(n2);
    for (int64_t d = 0; d < D; d++) u[d] *= inv;
}

static void scale(double *u, int64_t D, double r)
{
    for (int64_t d = 0; d < D; d++) u[d] *= r;
}

/* One draw from the unit kernel (lengthscale 1) of `family` in D dimensions into u; tmp holds
 * D + 2 values. Returns 0 if the rejection sampler gave up (it accepts with probability ≳ 1/D). */
static int kernel_draw(gram__rng *r, gram_family family, int64_t D, double *u, double *tmp)
{
    const double sqrt3 = 1.7320508075688772935, sqrt5 = 2.2360679774997896964;
    switch (family) {
    case GRAM_GAUSSIAN:
        for (int64_t d = 0; d < D; d++) u[d] = gram__rng_normal(r);
        return 1;
    case GRAM_TOPHAT: /* uniform in the unit ball */
        unit_direction(r, D, u);
        scale(u, D, pow(gram__rng_uniform(r), 1.0 / (double)D));
        return 1;
    case GRAM_EPANECHNIKOV: /* the first D coordinates of a uniform point of the (D+2)-ball */
        unit_direction(r, D + 2, tmp);
        scale(tmp, D + 2, pow(gram__rng_uniform(r), 1.0 / (double)(D + 2)));
        for (int64_t d = 0; d < D; d++) u[d] = tmp[d];
        return 1;
    case GRAM_EXPONENTIAL:
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12: /* radius density ∝ r^{D-1} e^{-r}: Gamma(D) */
        unit_direction(r, D, u);
        scale(u, D, gram__rng_gamma(r, (double)D));
        return 1;
    case GRAM_TRIANGULAR: /* ∝ r^{D-1} (1 - r): Beta(D, 2) */
        unit_direction(r, D, u);
        scale(u, D, gram__rng_beta(r, (double)D, 2.0));
        return 1;
    case GRAM_COSINE_WINDOW: /* the unit ball, accepted with probability cos(πr/2) */
        for (int tries = 0; tries < 1000000; tries++) {
            double rad = pow(gram__rng_uniform(r), 1.0 / (double)D);
            if (gram__rng_uniform(r) <= cos(0.5 * PI * rad)) {
                unit_direction(r, D, u);
                scale(u, D, rad);
                return 1;
            }
        }
        return 0;
    case GRAM_MATERN32: {
        /* ∝ r^{D-1}(1 + √3 r)e^{-√3 r}: Gamma(D) and Gamma(D+1) mixed 1 : D, over √3. */
        double shape = gram__rng_uniform(r) * (1.0 + (double)D) < 1.0 ? (double)D : (double)D + 1.0;
        unit_direction(r, D, u);
        scale(u, D, gram__rng_gamma(r, shape) / sqrt3);
        return 1;
    }
    case GRAM_MATERN52: {
        /* ∝ r^{D-1}(1 + √5 r + 5r²/3)e^{-√5 r}: Gamma(D), Gamma(D+1), Gamma(D+2) mixed
         * 1 : D : D(D+1)/3, over √5. */
        double a = 1.0, b = (double)D, c = (double)D * ((double)D + 1.0) / 3.0;
        double v = gram__rng_uniform(r) * (a + b + c);
        double shape = v < a ? (double)D : v < a + b ? (double)D + 1.0 : (double)D + 2.0;
        unit_direction(r, D, u);
        scale(u, D, gram__rng_gamma(r, shape) / sqrt5);
        return 1;
    }
    case GRAM_CAUCHY: /* D = 1 */
        u[0] = tan(PI * (gram__rng_uniform(r) - 0.5));
        return 1;
    default: return 0;
    }
}

/* Folds x back into [lo, hi] by reflecting at the bounds, as often as needed. */
static double reflect(double x, double lo, double hi)
{
    if (isfinite(lo) && isfinite(hi)) {
        double wdt = hi - lo, y = fmod(x - lo, 2.0 * wdt);
        if (y < 0.0) y += 2.0 * wdt;
        if (y > wdt) y = 2.0 * wdt - y;
        return lo + y;
    }
    if (isfinite(lo) && x < lo) return 2.0 * lo - x;
    if (isfinite(hi) && x > hi) return 2.0 * hi - x;
    return x;
}

gram_status gram_kde_sample(gram_context *ctx, const gram_kde *kde, uint64_t seed, gram_array *out)
{
    gram__clear(ctx);
    gram_status s;
    if (!kde) return gram__fail(ctx, GRAM_EINVAL, "kde is NULL");
    if ((s = gram__check_array(ctx, out, "out"))) return s;
    const int64_t N = kde->N, D = kde->D, n = out->rows;
    if (out->cols != D)
        return gram__fail(ctx, GRAM_ESHAPE, "out has %lld columns but the KDE has D = %lld", (long long)out->cols,
                          (long long)D);
    switch (kde->family) {
    case GRAM_GAUSSIAN:
    case GRAM_TOPHAT:
    case GRAM_EPANECHNIKOV:
    case GRAM_EXPONENTIAL:
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_TRIANGULAR:
    case GRAM_COSINE_WINDOW:
    case GRAM_MATERN32:
    case GRAM_MATERN52:
    case GRAM_CAUCHY: break;
    default: return gram__fail(ctx, GRAM_EUNSUPPORTED, "sampling is not available for this kernel family");
    }
    if (n == 0) return GRAM_OK;
    /* Cumulative weights; every entry from the last positive weight on is 2, so a uniform in
     * (0, 1) always lands on a point of positive weight. */
    double *cum = gram__alloc(sizeof(double) * (size_t)N);
    double *u = gram__alloc(sizeof(double) * (size_t)(D + 2));
    double *tmp = gram__alloc(sizeof(double) * (size_t)(D + 2));
    double *x = gram__alloc(sizeof(double) * (size_t)D);
    if (!cum || !u || !tmp || !x) {
        s = gram__fail(ctx, GRAM_ENOMEM, "gram_kde_sample: out of memory");
        goto done;
    }
    int64_t last = 0;
    long double acc = 0.0L;
    for (int64_t j = 0; j < N; j++) {
        acc += kde->w[j];
        cum[j] = (double)acc;
        if (kde->w[j] > 0.0) last = j;
    }
    for (int64_t j = last; j < N; j++) cum[j] = 2.0;
    for (int64_t i = 0; i < n; i++) {
        gram__rng r;
        gram__rng_init(&r, seed, (uint64_t)i);
        double v = gram__rng_uniform(&r);
        int64_t lo = 0, hi = N - 1; /* the first j with v < cum[j] */
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (v < cum[mid]) hi = mid;
            else lo = mid + 1;
        }
        const double *xj = kde->X + lo * D;
        if (!kernel_draw(&r, kde->family, D, u, tmp)) {
            s = gram__fail(ctx, GRAM_EINTERNAL, "gram_kde_sample: the rejection sampler did not accept in 10^6 tries");
            goto done;
        }
        if (kde->geometry == GRAM_KDE_COVARIANCE) {
            gram__trmv_lower(D, kde->L, u, tmp);
            for (int64_t d = 0; d < D; d++) x[d] = xj[d] + kde->factor * tmp[d];
        } else {
            for (int64_t d = 0; d < D; d++) x[d] = xj[d] + kde->h[d] * u[d];
        }
        if (kde->lower)
            for (int64_t d = 0; d < D; d++) x[d] = reflect(x[d], kde->lower[d], kde->upper[d]);
        for (int64_t d = 0; d < D; d++) gram__put(out, i, d, x[d]);
    }
done:
    gram__free(cum);
    gram__free(u);
    gram__free(tmp);
    gram__free(x);
    return s;
}
