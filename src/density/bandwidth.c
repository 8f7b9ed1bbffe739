/* Bandwidth selection: the fixed value, Scott and Silverman (scaled as scipy.stats.gaussian_kde,
 * unscaled as scikit-learn's KernelDensity), the Improved Sheather–Jones plug-in, and
 * cross-validation by likelihood (CV-ML) or least squares (CV-LS).
 *
 * Scaled rules use the weighted standard deviation with the unbiased correction 1/(1 - Σw²) and
 * the effective sample size n_eff = 1/Σw²; the unscaled ones use N, exactly as scikit-learn. */
#include "density.h"

#include "../engine/engine.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

/* ---- per-dimension spread ------------------------------------------------------------------- */

/* σ_d² = Σ w (x_d - μ_d)² / (1 - Σw²); Z holds x - μ (isotropic geometry). */
static gram_status weighted_sd(gram_context *ctx, const gram_kde *kde, const char *rule, double *sd)
{
    const int64_t N = kde->N, D = kde->D;
    long double denom = 0.0L;
    for (int64_t i = 0; i < N; i++) denom += (long double)kde->w[i] * kde->w_rest[i];
    if (!(denom > 0.0L))
        return gram__fail(ctx, GRAM_EDOMAIN, "%s: only one data point has a positive weight, so the data have no spread", rule);
    for (int64_t d = 0; d < D; d++) {
        long double s = 0.0L;
        if (kde->geometry == GRAM_KDE_COVARIANCE) s = (long double)kde->cov[d * D + d] * denom;
        else
            for (int64_t i = 0; i < N; i++) s += (long double)kde->w[i] * kde->Z[i * D + d] * kde->Z[i * D + d];
        sd[d] = (double)sqrtl(s / denom);
        if (!(sd[d] > 0.0) || !isfinite(sd[d]))
            return gram__fail(ctx, GRAM_EDOMAIN, "dimension %lld has zero variance: the %s bandwidth is 0", (long long)d, rule);
    }
    return GRAM_OK;
}

/* ---- one-dimensional optimisation ------------------------------------------------------------ */

typedef gram_status (*cv_objective)(gram_context *ctx, gram_kde *kde, double u, double *val);

/* The scalar a CV rule varies: one h for every dimension (isotropic) or the factor. */
static gram_status set_scalar(gram_context *ctx, gram_kde *kde, double s)
{
    if (kde->geometry == GRAM_KDE_COVARIANCE) kde->factor = s;
    else
        for (int64_t d = 0; d < kde->D; d++) kde->h[d] = s;
    return gram__kde_set_kernel(ctx, kde);
}

/* Σ_i w_i log f_{-i}(x_i) at bandwidth exp(u); points of weight 0 do not count. */
static gram_status cv_ml(gram_context *ctx, gram_kde *kde, double u, double *val)
{
    gram_status s = set_scalar(ctx, kde, exp(u));
    if (s) return s;
    double *loo = gram__alloc(sizeof(double) * (size_t)kde->N);
    if (!loo) return gram__fail(ctx, GRAM_ENOMEM, "cv-ml: out of memory");
    s = gram__kde_loo(ctx, kde, GRAM_FLOAT64, loo);
    if (!s) {
        long double acc = 0.0L;
        for (int64_t i = 0; i < kde->N; i++)
            if (kde->w[i] > 0.0) acc += (long double)kde->w[i] * loo[i];
        *val = (double)acc;
    }
    gram__free(loo);
    return s;
}

/* -LSCV(h) = 2 Σ_i w_i f_{-i}(x_i) - ∫f² for the gaussian kernel, in kernel space. With
 * A = Σ_ij w_i w_j e^{-|z_i-z_j|²/(4h²)} and B = Σ_i w_i/(1-w_i) Σ_{j≠i} w_j e^{-|z_i-z_j|²/(2h²)},
 * -LSCV = (2B - 2^{-D/2} A) / ((2π)^{D/2} h^D). The objective (maximised) is its log, dropping the
 * constant; where -LSCV ≤ 0 (h so small that ∫f² dominates) it is -inf. */
static gram_status cv_ls(gram_context *ctx, gram_kde *kde, double u, double *val)
{
    const int64_t N = kde->N, D = kde->D;
    double h = exp(u), h2 = h * sqrt(2.0);
    gram_kernel *k1 = NULL, *k2 = NULL;
    double *a = gram__alloc(sizeof(double) * (size_t)N), *b = gram__alloc(sizeof(double) * (size_t)N);
    gram_status s = GRAM_OK;
    if (!a || !b) s = gram__fail(ctx, GRAM_ENOMEM, "cv-ls: out of memory");
    if (!s) s = gram_kernel_create(ctx, GRAM_GAUSSIAN, 1, &h, 0, NULL, &k1);
    if (!s) s = gram_kernel_create(ctx, GRAM_GAUSSIAN, 1, &h2, 0, NULL, &k2);
    if (!s) {
        gram_array Z = gram_array_f64(kde->Z, N, D), W = gram_array_f64(kde->w, N, 1);
        gram_array A = gram_array_f64(a, N, 1), Bv = gram_array_f64(b, N, 1);
        s = gram__kernel_reduce(ctx, k2, 0, NULL, &Z, &W, &A, 0);
        if (!s) s = gram__kernel_reduce(ctx, k1, 0, NULL, &Z, &W, &Bv, 1);
    }
    if (!s) {
        long double A = 0.0L, B = 0.0L;
        for (int64_t i = 0; i < N; i++) {
            A += (long double)kde->w[i] * a[i];
            B += (long double)kde->w[i] * b[i] / kde->w_rest[i];
        }
        long double g = 2.0L * B - A * powl(2.0L, -0.5L * (long double)D);
        *val = g > 0.0L ? (double)(logl(g) - (long double)D * u) : -INFINITY;
    }
    gram_kernel_destroy(k1);
    gram_kernel_destroy(k2);
    gram__free(a);
    gram__free(b);
    return s;
}

/* Maximises f(u) on [a, c] from an interior point b with f(b) ≥ f(a), f(c): Brent's method
 * (parabolic steps through the three best points, golden-section steps when a parabola is not
 * trusted), stopping when the bracket is within tol of the best point. */
static gram_status brent_max(gram_context *ctx, gram_kde *kde, cv_objective f, double a, double b, double c,
                             double fb, double tol, double *best_u, double *best_f)
{
    const double golden = 0.3819660112501051; /* (3 - √5) / 2 */
    double x = b, w = b, v = b, fx = -fb, fw = -fb, fv = -fb; /* minimise -f */
    double d = 0.0, e = 0.0;
    gram_status s = GRAM_OK;
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (a + c), tol1 = tol + 1e-12 * fabs(x), tol2 = 2.0 * tol1;
        if (fabs(x - mid) <= tol2 - 0.5 * (c - a)) break;
        int parabolic = 0;
        if (fabs(e) > tol1 && isfinite(fx) && isfinite(fw) && isfinite(fv)) {
            double r = (x - w) * (fx - fv), q = (x - v) * (fx - fw), p = (x - v) * q - (x - w) * r;
            q = 2.0 * (q - r);
            if (q > 0.0) p = -p;
            q = fabs(q);
            double e_prev = e;
            if (q != 0.0 && fabs(p) < fabs(0.5 * q * e_prev) && p > q * (a - x) && p < q * (c - x)) {
                e = d;
                d = p / q;
                double u = x + d;
                if (u - a < tol2 || c - u < tol2) d = mid > x ? tol1 : -tol1;
                parabolic = 1;
            }
        }
        if (!parabolic) {
            e = x >= mid ? a - x : c - x;
            d = golden * e;
        }
        double u = fabs(d) >= tol1 ? x + d : x + (d > 0 ? tol1 : -tol1), fu;
        if ((s = f(ctx, kde, u, &fu))) return s;
        fu = -fu;
        if (fu <= fx) {
            if (u >= x) a = x;
            else c = x;
            v = w, fv = fw;
            w = x, fw = fx;
            x = u, fx = fu;
        } else {
            if (u < x) a = u;
            else c = u;
            if (fu <= fw || w == x) {
                v = w, fv = fw;
                w = u, fw = fu;
            } else if (fu <= fv || v == x || v == w) {
                v = u, fv = fu;
            }
        }
    }
    *best_u = x;
    *best_f = -fx;
    return GRAM_OK;
}

/* Brackets the maximum of f on a log grid of 20 points spanning centre·[1e-2, 1e1] (walking
 * further out while the best point is at an end), then refines it with Brent's method to 1e-4
 * relative in the bandwidth. */
static gram_status cv_maximise(gram_context *ctx, gram_kde *kde, cv_objective f, const char *name, double centre,
                               double *best)
{
    enum { G = 20, MAX_WALK = 24 };
    const double u0 = log(centre) + log(1e-2), step = log(1e3) / (G - 1);
    double u[G], val[G];
    gram_status s;
    int kb = -1;
    for (int k = 0; k < G; k++) {
        u[k] = u0 + k * step;
        if ((s = f(ctx, kde, u[k], &val[k]))) return s;
        if (isnan(val[k])) return gram__fail(ctx, GRAM_EINTERNAL, "%s: the objective is NaN at h = %g", name, exp(u[k]));
        if (val[k] > -INFINITY && (kb < 0 || val[k] > val[kb])) kb = k;
    }
    if (kb < 0)
        return gram__fail(ctx, GRAM_EDOMAIN, "%s: the objective is -inf for every bandwidth in [%g, %g]", name, exp(u[0]),
                          exp(u[G - 1]));
    double a, b, c, fa, fb, fc;
    if (kb > 0 && kb < G - 1) {
        a = u[kb - 1], b = u[kb], c = u[kb + 1], fa = val[kb - 1], fb = val[kb], fc = val[kb + 1];
    } else {
        /* Walk outward from the end that holds the best value. */
        double dir = kb == 0 ? -1.0 : 1.0;
        b = u[kb], fb = val[kb];
        c = kb == 0 ? u[1] : u[G - 2];
        fc = kb == 0 ? val[1] : val[G - 2];
        int walked = 0;
        for (;;) {
            a = b + dir * step;
            if ((s = f(ctx, kde, a, &fa))) return s;
            if (isnan(fa)) return gram__fail(ctx, GRAM_EINTERNAL, "%s: the objective is NaN at h = %g", name, exp(a));
            if (fa < fb) break;
            if (++walked >= MAX_WALK)
                return gram__fail(ctx, GRAM_EDOMAIN,
                                  "%s: the objective keeps increasing as the bandwidth %s (h = %g); %s",
                                  name, dir < 0 ? "shrinks" : "grows", exp(a),
                                  dir < 0 ? "are there duplicated data points?" : "the data look too few or too spread out for this rule");
            c = b, fc = fb;
            b = a, fb = fa;
        }
        if (a > c) {
            double t = a;
            a = c, c = t;
            t = fa, fa = fc, fc = t;
        }
    }
    (void)fa;
    (void)fc;
    double ub, fbest;
    if ((s = brent_max(ctx, kde, f, a, b, c, fb, 2.5e-5, &ub, &fbest))) return s;
    *best = exp(ub);
    return GRAM_OK;
}

/* ---- ISJ ------------------------------------------------------------------------------------------ */

/* In-place iterative radix-2 complex FFT (forward, e^{-2πi jk/n}); n a power of two. */
static void fft(int64_t n, double *re, double *im)
{
    for (int64_t i = 1, j = 0; i < n; i++) {
        int64_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double t = re[i];
            re[i] = re[j], re[j] = t;
            t = im[i], im[i] = im[j], im[j] = t;
        }
    }
    for (int64_t len = 2; len <= n; len <<= 1) {
        int64_t half = len >> 1;
        for (int64_t k = 0; k < half; k++) {
            double ang = -2.0 * PI * (double)k / (double)len, wr = cos(ang), wi = sin(ang);
            for (int64_t i = k; i < n; i += len) {
                int64_t j = i + half;
                double xr = re[j] * wr - im[j] * wi, xi = re[j] * wi + im[j] * wr;
                re[j] = re[i] - xr, im[j] = im[i] - xi;
                re[i] += xr, im[i] += xi;
            }
        }
    }
}

/* c_k = Σ_j p_j cos(π k (2j + 1) / (2n)), k = 0..n-1 (DCT-II), through one complex FFT of the
 * even samples followed by the odd ones reversed (Makhoul 1980). */
static gram_status dct2(gram_context *ctx, int64_t n, const double *p, double *c)
{
    double *re = gram__alloc(sizeof(double) * (size_t)n), *im = gram__calloc((size_t)n, sizeof(double));
    if (!re || !im) {
        gram__free(re);
        gram__free(im);
        return gram__fail(ctx, GRAM_ENOMEM, "ISJ: out of memory");
    }
    for (int64_t j = 0; j < n / 2; j++) {
        re[j] = p[2 * j];
        re[n - 1 - j] = p[2 * j + 1];
    }
    fft(n, re, im);
    for (int64_t k = 0; k < n; k++) {
        double a = -PI * (double)k / (2.0 * (double)n);
        c[k] = re[k] * cos(a) - im[k] * sin(a);
    }
    gram__free(re);
    gram__free(im);
    return GRAM_OK;
}

typedef struct isj_problem {
    int64_t K;        /* frequencies k = 1..K */
    const double *c2; /* c_k², k = 1..K (index k-1) */
    double n;         /* sample size */
} isj_problem;

/* ‖f^(s)‖² of the diffusion estimate at time t on [0, 1]: 2 π^{2s} Σ_k k^{2s} c_k² e^{-k²π²t}. */
static double isj_norm(const isj_problem *P, int s, double t)
{
    long double acc = 0.0L;
    for (int64_t k = 1; k <= P->K; k++) {
        double kk = (double)k * (double)k, e = exp(-kk * (PI * PI) * t), p = kk;
        if (e == 0.0) break; /* e decreases with k */
        for (int m = 1; m < s; m++) p *= kk; /* k^{2s} ≤ 16383^14 < 1e59: no overflow */
        acc += (long double)(p * P->c2[k - 1] * e);
    }
    return (double)(2.0L * powl((long double)PI, 2 * s) * acc);
}

/* t - ξγ^[l](t) with l = 7 (Botev, Grotowski & Kroese 2010, Section 5): the functional ‖f^(s)‖²
 * is estimated at the time that is AMISE-optimal given ‖f^(s+1)‖², from s = l down to 2, and the
 * last stage gives the gaussian kernel's AMISE-optimal time (2n√π ‖f''‖²)^{-2/5}. */
static double isj_fixed_point(const isj_problem *P, double t)
{
    const int l = 7;
    double f = isj_norm(P, l, t);
    for (int s = l - 1; s >= 2; s--) {
        if (!(f > 0.0) || !isfinite(f)) return NAN;
        double odd = 1.0; /* (2s - 1)!! */
        for (int m = 3; m <= 2 * s - 1; m += 2) odd *= m;
        double c = (1.0 + pow(2.0, -(s + 0.5))) / 3.0;
        double time = pow(c * odd / (P->n * sqrt(PI / 2.0) * f), 2.0 / (3.0 + 2.0 * s));
        f = isj_norm(P, s, time);
    }
    if (!(f > 0.0) || !isfinite(f)) return NAN;
    return t - pow(2.0 * P->n * sqrt(PI) * f, -0.4);
}

/* A root of g on [a, b] where g(a) and g(b) differ in sign: Brent's method (inverse quadratic
 * interpolation and secant steps, bisection whenever they do not shrink the bracket enough). */
static int isj_root(const isj_problem *P, double a, double b, double fa, double fb, double *root)
{
    double c = a, fc = fa, d = b - a, e = d;
    for (int it = 0; it < 300; it++) {
        if ((fb > 0.0) == (fc > 0.0)) {
            c = a, fc = fa;
            d = e = b - a;
        }
        if (fabs(fc) < fabs(fb)) {
            a = b, b = c, c = a;
            fa = fb, fb = fc, fc = fa;
        }
        double tol = 2.0 * DBL_EPSILON * fabs(b) + 1e-300, m = 0.5 * (c - b);
        if (fabs(m) <= tol || fb == 0.0) {
            *root = b;
            return 1;
        }
        if (fabs(e) >= tol && fabs(fa) > fabs(fb)) {
            double p, q, r, s = fb / fa;
            if (a == c) {
                p = 2.0 * m * s;
                q = 1.0 - s;
            } else {
                q = fa / fc, r = fb / fc;
                p = s * (2.0 * m * q * (q - r) - (b - a) * (r - 1.0));
                q = (q - 1.0) * (r - 1.0) * (s - 1.0);
            }
            if (p > 0.0) q = -q;
            else p = -p;
            if (2.0 * p < fmin(3.0 * m * q - fabs(tol * q), fabs(e * q))) {
                e = d;
                d = p / q;
            } else {
                d = m;
                e = m;
            }
        } else {
            d = m;
            e = m;
        }
        a = b, fa = fb;
        b += fabs(d) > tol ? d : (m > 0 ? tol : -tol);
        fb = isj_fixed_point(P, b);
        if (isnan(fb)) return 0;
    }
    *root = b;
    return 1;
}

gram_status gram__isj_bandwidth(gram_context *ctx, const double *x, const double *w, int64_t N, double n, double *h)
{
    const int64_t nbins = (int64_t)1 << 14;
    /* The range of the points with positive weight. */
    double mn = INFINITY, mx = -INFINITY;
    for (int64_t i = 0; i < N; i++)
        if (w[i] > 0.0) {
            if (x[i] < mn) mn = x[i];
            if (x[i] > mx) mx = x[i];
        }
    double range = mx - mn;
    if (!(range > 0.0) || !isfinite(range))
        return gram__fail(ctx, GRAM_EDOMAIN, "ISJ: the data have zero range (all points equal), so no bandwidth can be chosen");
    double lo = mn - range / 10.0, len = range * 1.2;
    double *p = gram__calloc((size_t)nbins, sizeof(double)), *c = gram__alloc(sizeof(double) * (size_t)nbins);
    gram_status s = GRAM_OK;
    if (!p || !c) {
        s = gram__fail(ctx, GRAM_ENOMEM, "ISJ: out of memory");
        goto done;
    }
    /* Weighted histogram with bins of width len/nbins: bin j covers the point (j + ½)/nbins of [0, 1]. */
    for (int64_t i = 0; i < N; i++) {
        int64_t j = (int64_t)((x[i] - lo) / len * (double)nbins);
        if (j < 0) j = 0;
        if (j >= nbins) j = nbins - 1;
        p[j] += w[i];
    }
    if ((s = dct2(ctx, nbins, p, c))) goto done;
    for (int64_t k = 1; k < nbins; k++) c[k - 1] = c[k] * c[k];
    isj_problem P = {nbins - 1, c, n};
    /* The equation can have several roots when the data are discrete (rounded values, ties): the
     * histogram's spikes make a spurious root at times where the kernel barely spans a few bins.
     * Take the largest root in (0, 0.1): scan a log grid downwards from 0.1 to the first sign change
     * and refine it there. For continuous data the root is unique and this is Botev's root. */
    const double t_hi = 0.1;
    double a = 0.0, b = t_hi, ga = NAN, gb = isj_fixed_point(&P, t_hi), t;
    int found = 0;
    for (int k = 1; k <= 96 && !isnan(gb); k++) {
        double tk = k == 96 ? 0.0 : t_hi * pow(10.0, -k / 8.0), gk = isj_fixed_point(&P, tk);
        if (isnan(gk)) break;
        if ((gk > 0.0) != (gb > 0.0)) {
            a = tk, ga = gk, found = 1;
            break;
        }
        b = tk, gb = gk;
    }
    if (!found || !isj_root(&P, a, b, ga, gb, &t) || !(t > 0.0)) {
        s = gram__fail(ctx, GRAM_EDOMAIN,
                       "ISJ: the fixed-point equation t = ξγ(t) has no root in (0, 0.1) for these data (too few points, "
                       "or too discrete); use the scott or silverman rule");
        goto done;
    }
    *h = sqrt(t) * len;
done:
    gram__free(p);
    gram__free(c);
    return s;
}

/* The AMISE-optimal bandwidth of kernel K is proportional to (R(K) / μ₂(K)²)^{1/5}, R(K) = ∫K²
 * and μ₂(K) = ∫x²K for K normalised; ISJ gives the gaussian's, and this ratio converts it (1-D
 * values for each family with unit lengthscale). */
static double amise_ratio(gram_family f)
{
    double R, mu2;
    const double sqrt3 = 1.7320508075688772935, sqrt5 = 2.2360679774997896964;
    switch (f) {
    case GRAM_TOPHAT: R = 0.5, mu2 = 1.0 / 3.0; break;
    case GRAM_EPANECHNIKOV: R = 0.6, mu2 = 0.2; break;
    case GRAM_TRIANGULAR: R = 2.0 / 3.0, mu2 = 1.0 / 6.0; break;
    case GRAM_EXPONENTIAL:
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12: R = 0.25, mu2 = 2.0; break;
    case GRAM_COSINE_WINDOW: R = PI * PI / 16.0, mu2 = 1.0 - 8.0 / (PI * PI); break;
    case GRAM_MATERN32: R = 5.0 * sqrt3 / 32.0, mu2 = 4.0 / 3.0; break;
    case GRAM_MATERN52: R = 63.0 * sqrt5 / 512.0, mu2 = 1.2; break;
    default: return 1.0;
    }
    double gauss = 1.0 / (2.0 * sqrt(PI));
    return pow((R / (mu2 * mu2)) / gauss, 0.2);
}

/* ---- the rules --------------------------------------------------------------------------------------- */

gram_status gram__kde_choose_bandwidth(gram_context *ctx, gram_kde *kde, const gram_kde_options *opt)
{
    const int64_t N = kde->N, D = kde->D;
    const int cov = kde->geometry == GRAM_KDE_COVARIANCE;
    const double dim = (double)D;
    gram_status s = GRAM_OK;
    double *sd = NULL;
    if (opt->rule != GRAM_BW_FIXED && opt->rule != GRAM_BW_SCOTT_UNSCALED && opt->rule != GRAM_BW_SILVERMAN_UNSCALED) {
        sd = gram__alloc(sizeof(double) * (size_t)D);
        if (!sd) return gram__fail(ctx, GRAM_ENOMEM, "bandwidth: out of memory");
    }
    const char *rule_name[] = {"fixed", "scott", "silverman", "scott-unscaled", "silverman-unscaled", "isj", "cv-ml", "cv-ls"};
    if (sd && (s = weighted_sd(ctx, kde, rule_name[opt->rule], sd))) goto done;
    double scott = pow(kde->neff, -1.0 / (dim + 4.0));
    switch (opt->rule) {
    case GRAM_BW_FIXED:
        if (cov) kde->factor = opt->bandwidth[0];
        else
            for (int64_t d = 0; d < D; d++) kde->h[d] = opt->bandwidth[opt->n_bandwidth == 1 ? 0 : d];
        break;
    case GRAM_BW_SCOTT:
    case GRAM_BW_SILVERMAN: {
        double f = opt->rule == GRAM_BW_SCOTT ? scott : pow(kde->neff * (dim + 2.0) / 4.0, -1.0 / (dim + 4.0));
        if (cov) kde->factor = f;
        else
            for (int64_t d = 0; d < D; d++) kde->h[d] = sd[d] * f;
        break;
    }
    case GRAM_BW_SCOTT_UNSCALED:
    case GRAM_BW_SILVERMAN_UNSCALED: {
        /* scikit-learn: X.shape[0] ** (-1 / (d + 4)) and (X.shape[0] * (d + 2) / 4) ** (-1 / (d + 4)). */
        double n = (double)N;
        double f = opt->rule == GRAM_BW_SCOTT_UNSCALED ? pow(n, -1.0 / (dim + 4.0)) : pow(n * (dim + 2.0) / 4.0, -1.0 / (dim + 4.0));
        for (int64_t d = 0; d < D; d++) kde->h[d] = f;
        break;
    }
    case GRAM_BW_ISJ: {
        double h;
        if ((s = gram__isj_bandwidth(ctx, kde->X, kde->w, N, kde->neff, &h))) goto done;
        h *= amise_ratio(kde->family);
        if (cov) kde->factor = h / sd[0];
        else kde->h[0] = h;
        break;
    }
    case GRAM_BW_CV_ML:
    case GRAM_BW_CV_LS: {
        /* The grid is centred on Scott's choice: the factor, or h = factor × the geometric mean
         * of σ_d for one h shared by every dimension. */
        double centre = scott;
        if (!cov) {
            double lg = 0.0;
            for (int64_t d = 0; d < D; d++) lg += log(sd[d]);
            centre = scott * exp(lg / dim);
        }
        double best = 0.0;
        if ((s = cv_maximise(ctx, kde, opt->rule == GRAM_BW_CV_ML ? cv_ml : cv_ls, rule_name[opt->rule], centre, &best)))
            goto done;
        if (cov) kde->factor = best;
        else
            for (int64_t d = 0; d < D; d++) kde->h[d] = best;
        break;
    }
    }
    s = gram__kde_set_kernel(ctx, kde);
done:
    gram__free(sd);
    return s;
}
