/* density: kernel density estimation over the engine. Internal.
 *
 * A fitted KDE keeps its data in "kernel space", the coordinates the kernel sees:
 *   isotropic   z = x - c                (the kernel carries the lengthscales h_d)
 *   covariance  z = L⁻¹ (x - c)          (Σ = L Lᵀ; the kernel carries the scalar factor)
 * with c the weighted mean (centring costs nothing and keeps float32 evaluation accurate for
 * data far from the origin). A density is then one log-sum-exp engine call over the evaluation
 * set (the data, plus reflected copies when bounds are set) minus log_norm.
 */
#ifndef GRAM_DENSITY_H
#define GRAM_DENSITY_H

#include "../base/base.h"

struct gram_kde {
    int64_t N, D;
    gram_family family;
    gram_kde_geometry geometry;
    gram_bandwidth_rule rule;
    gram_dtype precision;

    double *X;      /* N×D, the data as given */
    double *w;      /* N weights, normalised to sum 1 */
    double *w_rest; /* N: Σ_{j≠i} w_j, computed without cancellation (leave-one-out) */
    double neff;    /* 1 / Σ w² */
    double *center; /* D: the weighted mean */
    double *Z;      /* N×D, kernel space */

    /* covariance geometry */
    double *cov;      /* D×D weighted covariance Σ (unbiased correction 1/(1 - Σw²)) */
    double *L;        /* D×D chol(Σ), lower */
    double log_det_L; /* Σ log L_dd */

    /* bandwidth */
    double factor; /* covariance: the factor; isotropic: h[0] */
    double *h;     /* D: sqrt(H_dd) */
    gram_kernel *k;  /* the family with lengthscale(s) h (isotropic) or factor (covariance) */
    double log_norm; /* log of the normaliser in data space: log ∫k_h + log|det L| */

    /* reflection (isotropic only); lower/upper are NULL when there are no bounds */
    double *lower, *upper;
    int n_bounded;

    /* evaluation set: Ne rows in kernel space with their weights (the data itself when there
     * are no bounds; then E == Z and We == w, not separately owned) */
    int64_t Ne;
    double *E;
    float *E32; /* float32 copy of E when precision is GRAM_FLOAT32 */
    double *We;
};

/* kde.c ------------------------------------------------------------------------------------- */

/* Integrable for KDE in dimension D (cauchy only for D = 1). */
int gram__kde_family_ok(gram_family f, int64_t D);

/* Sets the bandwidth from kde->h (isotropic, D values) or kde->factor (covariance): creates the
 * kernel and the normaliser. */
gram_status gram__kde_set_kernel(gram_context *ctx, gram_kde *kde);

/* log f_{-i}(x_i) for every i into out (N values), computing in dtype. */
gram_status gram__kde_loo(gram_context *ctx, const gram_kde *kde, gram_dtype dtype, double *out);

/* bandwidth.c --------------------------------------------------------------------------------- */

/* Chooses the bandwidth by opt->rule (the data, weights, centre and, for the covariance
 * geometry, Σ and L are set) and sets the kernel. */
gram_status gram__kde_choose_bandwidth(gram_context *ctx, gram_kde *kde, const gram_kde_options *opt);

/* Improved Sheather–Jones bandwidth of the gaussian kernel for 1-D weighted data (w sums to 1;
 * n the sample size used in the plug-in formulas). */
gram_status gram__isj_bandwidth(gram_context *ctx, const double *x, const double *w, int64_t N,
                                double n, double *h);

#endif
