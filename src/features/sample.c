/* Drawing a feature map's frequencies from the kernel's spectral density.
 *
 * Bochner: a continuous shift-invariant positive-definite k with k(0) = 1 is E_ω[cos(ω·(x - y))]
 * for ω from its spectral law p(ω) (Rahimi & Recht 2007). With the coordinates scaled by 1/ℓ_d,
 * ω_d is divided by ℓ_d. The laws used (z ~ N(0, I_D), each a Gaussian scale mixture, which holds
 * in every dimension D):
 *   gaussian exp(-r²/2)                 ω = z
 *   matern ν (z = √(2ν)·r)              ω = z·√(ν/g), g ~ Gamma(ν, 1): the multivariate Student t
 *                                       with 2ν degrees of freedom, whose density is proportional
 *                                       to (2ν + |ω|²)^-(ν + D/2) (Rasmussen & Williams 2006,
 *                                       eq. 4.15); ν = 1/2 (laplacian, matern12, exponential) is the
 *                                       multivariate Cauchy law
 *   rational_quadratic (1 + r²/(2α))^-α  ω = z·√(g/α), g ~ Gamma(α, 1), since
 *                                       E_g[exp(-g·r²/(2α))] = (1 + r²/(2α))^-α
 *   cauchy 1/(1 + r²)                   ω = z·√(2s), s ~ Exp(1): E_s[exp(-s r²)] = 1/(1 + r²)
 *                                       (the 1-D statement is the Laplace spectrum e^-|ω|/2)
 *   laplacian_l1 exp(-Σ|t_d|)           ω_d independent standard Cauchy, tan(π(u - 1/2))
 * Not spectra, but the same Gaussian ω = z: the positive features of softmax (and the gaussian),
 * exp(x·y) = E[exp(z·x - |x|²/2) exp(z·y - |y|²/2)], and arc-cosine features, whose kernel is
 * 2·E[Θ(z·x)Θ(z·y)(z·x)^n (z·y)^n] (Cho & Saul 2009, eq. 1).
 * Orthogonal features (Yu et al. 2016, "Orthogonal Random Features", NeurIPS): blocks of D
 * directions, the rows of a Haar-random orthogonal matrix (Gram–Schmidt of i.i.d. Gaussian rows),
 * each given the norm |z|·(mixture factor) of an independent draw, |z| ~ χ_D. Each row then has
 * exactly the law of an i.i.d. one (the laws above are isotropic), so the estimator stays
 * unbiased; the rows of a block are dependent, which is what lowers the variance.
 * SORF draws only the ±1 diagonals; its rows are applied in transform.c.
 *
 * Streams: frequency i (i.i.d.) or block i (orthogonal, Hadamard) takes Philox stream i of the
 * seed, so a map is a function of (kernel, method, D, R, seed) alone. */
#include "features.h"

#include "../base/rng.h"

#include <math.h>

#define GRAM__PI 3.14159265358979323846

/* The mixture factor of one frequency for the isotropic families (gaussian: 1). */
static double radial_factor(const gram__leaf *L, gram__rng *r)
{
    double nu;
    switch (L->family) {
    case GRAM_GAUSSIAN:
    case GRAM_SOFTMAX: /* positive features: ω ~ N(0, I) */
    case GRAM_ARCCOS: return 1.0; /* Cho & Saul's Gaussian weights */
    case GRAM_LAPLACIAN: case GRAM_MATERN12: case GRAM_EXPONENTIAL: nu = 0.5; break;
    case GRAM_MATERN32: nu = 1.5; break;
    case GRAM_MATERN52: nu = 2.5; break;
    case GRAM_MATERN: nu = L->nu; break;
    case GRAM_RATIONAL_QUADRATIC: return sqrt(gram__rng_gamma(r, L->alpha) / L->alpha);
    case GRAM_CAUCHY: return sqrt(-2.0 * log(gram__rng_uniform(r)));
    default: return NAN; /* not reached: features.c admits only the families above */
    }
    return sqrt(nu / gram__rng_gamma(r, nu));
}

static void draw_iid(gram_features *f)
{
    const int64_t D = f->D;
    for (int64_t i = 0; i < f->F; i++) {
        gram__rng r;
        gram__rng_init(&r, f->seed, (uint64_t)i);
        double *w = f->omega + i * D;
        if (f->leaf->family == GRAM_LAPLACIAN_L1) {
            for (int64_t d = 0; d < D; d++) w[d] = tan(GRAM__PI * (gram__rng_uniform(&r) - 0.5));
        } else {
            for (int64_t d = 0; d < D; d++) w[d] = gram__rng_normal(&r);
            const double s = radial_factor(f->leaf, &r);
            for (int64_t d = 0; d < D; d++) w[d] *= s;
        }
        if (f->phase) f->phase[i] = 2.0 * GRAM__PI * gram__rng_uniform(&r);
    }
}

/* Rows [b·D, b·D + n) of Ω: n orthonormal directions (modified Gram–Schmidt, a second pass
 * restoring orthogonality to rounding), each times an independent χ_D norm and mixture factor. */
static gram_status draw_orthogonal(gram_context *ctx, gram_features *f)
{
    const int64_t D = f->D;
    for (int64_t b = 0; b * D < f->F; b++) {
        gram__rng r;
        gram__rng_init(&r, f->seed, (uint64_t)b);
        const int64_t n = f->F - b * D < D ? f->F - b * D : D;
        double *Q = f->omega + b * D * D;
        for (int64_t j = 0; j < n * D; j++) Q[j] = gram__rng_normal(&r);
        for (int64_t j = 0; j < n; j++) {
            double *q = Q + j * D;
            for (int pass = 0; pass < 2; pass++)
                for (int64_t p = 0; p < j; p++) {
                    const double *u = Q + p * D;
                    double dot = 0;
                    for (int64_t d = 0; d < D; d++) dot += u[d] * q[d];
                    for (int64_t d = 0; d < D; d++) q[d] -= dot * u[d];
                }
            double nn = 0;
            for (int64_t d = 0; d < D; d++) nn += q[d] * q[d];
            /* n ≤ D Gaussian rows are independent with probability 1 */
            if (!(nn > 0)) return gram__fail(ctx, GRAM_EINTERNAL, "orthogonal features: a degenerate Gaussian block");
            const double inv = 1.0 / sqrt(nn);
            for (int64_t d = 0; d < D; d++) q[d] *= inv;
        }
        for (int64_t j = 0; j < n; j++) {
            const double rho = sqrt(2.0 * gram__rng_gamma(&r, 0.5 * (double)D)) * radial_factor(f->leaf, &r);
            for (int64_t d = 0; d < D; d++) Q[j * D + d] *= rho;
        }
    }
    return GRAM_OK;
}

static void draw_signs(gram_features *f)
{
    const int64_t n = 3 * f->Dp;
    for (int64_t b = 0; b < f->n_blocks; b++) {
        gram__rng r;
        gram__rng_init(&r, f->seed, (uint64_t)b);
        uint32_t w = 0;
        for (int64_t j = 0; j < n; j++) {
            if (j % 32 == 0) w = gram__rng_u32(&r);
            f->signs[b * n + j] = (w >> (j % 32)) & 1 ? 1 : -1;
        }
    }
}

gram_status gram__features_draw(gram_context *ctx, gram_features *f)
{
    const int64_t D = f->D, F = f->F;
    if (f->draw == GRAM__FDRAW_SKETCH) return gram__tensorsketch_draw(ctx, f);
    if (f->draw == GRAM__FDRAW_HADAMARD) {
        int64_t Dp = 1;
        while (Dp < D) Dp *= 2;
        f->Dp = Dp;
        f->n_blocks = (F + Dp - 1) / Dp;
        size_t bytes;
        if (!gram__bytes(f->n_blocks * 3 * Dp, 1, &bytes) || !(f->signs = gram__alloc(bytes)))
            return gram__fail(ctx, GRAM_ENOMEM, "out of memory for a feature map's signs");
        draw_signs(f);
        return GRAM_OK;
    }
    /* F·D·(8 + 4) bytes were checked by the caller */
    f->omega = gram__alloc((size_t)(F * D) * sizeof(double));
    f->omega32 = gram__alloc((size_t)(F * D) * sizeof(float));
    if (f->map == GRAM__FMAP_PHASE) f->phase = gram__alloc((size_t)F * sizeof(double));
    if (!f->omega || !f->omega32 || (f->map == GRAM__FMAP_PHASE && !f->phase))
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for a feature map's %lld×%lld frequencies",
                          (long long)F, (long long)D);
    if (f->draw == GRAM__FDRAW_IID) draw_iid(f);
    else {
        gram_status s = draw_orthogonal(ctx, f);
        if (s) return s;
    }
    /* A tiny lengthscale with a heavy-tailed law (a Cauchy draw of 1e15) can take ω past the
     * largest double, and more easily past the largest float: refused here, where the cause is
     * known, rather than as NaN features later. */
    f->omega32_finite = 1;
    for (int64_t i = 0; i < F; i++)
        for (int64_t d = 0; d < D; d++) {
            const double w = f->omega[i * D + d] *= f->inv_ls[d];
            if (!isfinite(w))
                return gram__fail(ctx, GRAM_EDOMAIN, "a frequency of the map overflows (dimension %lld: lengthscale "
                                  "%.17g is too small for these features); rescale the data", (long long)d,
                                  1.0 / f->inv_ls[d]);
            f->omega32[i * D + d] = (float)w;
            if (!isfinite(f->omega32[i * D + d])) f->omega32_finite = 0;
        }
    return GRAM_OK;
}
