/* Kernel density estimation: fit (validation, weights, geometry, reflection), log-density and
 * density at queries, leave-one-out log-density at the data.
 *
 * Every density is one log-sum-exp engine call: log f(y) = log Σ_j w_j k(z(y) - z_j) - log_norm,
 * so it stays exact where every kernel value underflows (high D, small h); nothing here takes the
 * log of a direct sum. */
#include "density.h"

#include "../engine/engine.h"
#include "../kernel/kernel.h"
#include "../linalg/linalg.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Queries are copied into kernel space in chunks of this many values, so evaluation needs
 * O(chunk) extra memory whatever M is. */
#define GRAM__KDE_CHUNK_VALUES ((int64_t)1 << 20)

static double logaddexp(double a, double b)
{
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    double m = a > b ? a : b;
    return m + log1p(exp(-fabs(a - b)));
}

int gram__kde_family_ok(gram_family f, int64_t D)
{
    switch (f) {
    case GRAM_GAUSSIAN:
    case GRAM_TOPHAT:
    case GRAM_EPANECHNIKOV:
    case GRAM_EXPONENTIAL:
    case GRAM_TRIANGULAR:
    case GRAM_COSINE_WINDOW:
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_MATERN32:
    case GRAM_MATERN52: return 1;
    case GRAM_CAUCHY: return D == 1;
    default: return 0;
    }
}

/* Compactly supported families: zero at scaled distance r ≥ 1. */
static int family_compact(gram_family f)
{
    return f == GRAM_TOPHAT || f == GRAM_EPANECHNIKOV || f == GRAM_TRIANGULAR || f == GRAM_COSINE_WINDOW;
}

void gram_kde_options_init(gram_kde_options *opt)
{
    if (!opt) return;
    memset(opt, 0, sizeof *opt);
    opt->kernel = GRAM_GAUSSIAN;
    opt->geometry = GRAM_KDE_ISOTROPIC;
    opt->rule = GRAM_BW_SCOTT;
    opt->n_bandwidth = 0;
    opt->bandwidth = NULL;
    opt->lower = NULL;
    opt->upper = NULL;
    opt->precision = GRAM_FLOAT64;
}

void gram_kde_destroy(gram_kde *kde)
{
    if (!kde) return;
    if (kde->E != kde->Z) gram__free(kde->E);
    if (kde->We != kde->w) gram__free(kde->We);
    gram__free(kde->E32);
    gram__free(kde->X);
    gram__free(kde->w);
    gram__free(kde->w_rest);
    gram__free(kde->center);
    gram__free(kde->Z);
    gram__free(kde->cov);
    gram__free(kde->L);
    gram__free(kde->h);
    gram__free(kde->lower);
    gram__free(kde->upper);
    gram_kernel_destroy(kde->k);
    gram__free(kde);
}

/* ---- the kernel for the current bandwidth ---------------------------------------------------- */

gram_status gram__kde_set_kernel(gram_context *ctx, gram_kde *kde)
{
    gram_status s;
    const int64_t D = kde->D;
    gram_kernel *k = NULL;
    if (kde->geometry == GRAM_KDE_COVARIANCE) {
        if (!(kde->factor > 0.0) || !isfinite(kde->factor))
            return gram__fail(ctx, GRAM_EDOMAIN, "the bandwidth factor must be > 0 and finite, got %g", kde->factor);
        for (int64_t d = 0; d < D; d++) kde->h[d] = kde->factor * sqrt(kde->cov[d * D + d]);
        s = gram_kernel_create(ctx, kde->family, 1, &kde->factor, 0, NULL, &k);
    } else {
        int equal = 1;
        for (int64_t d = 0; d < D; d++) {
            if (!(kde->h[d] > 0.0) || !isfinite(kde->h[d]))
                return gram__fail(ctx, GRAM_EDOMAIN, "bandwidth[%lld] must be > 0 and finite, got %g",
                                  (long long)d, kde->h[d]);
            equal &= kde->h[d] == kde->h[0];
        }
        kde->factor = kde->h[0];
        s = gram_kernel_create(ctx, kde->family, equal ? 1 : D, kde->h, 0, NULL, &k);
    }
    if (s) return s;
    double ln;
    if ((s = gram_kernel_log_normalizer(ctx, k, D, &ln))) {
        gram_kernel_destroy(k);
        return s;
    }
    if (kde->geometry == GRAM_KDE_COVARIANCE) ln += kde->log_det_L;
    if (!isfinite(ln)) {
        gram_kernel_destroy(k);
        return gram__fail(ctx, GRAM_EDOMAIN, "the kernel's normaliser is not finite (log %g) for these bandwidths", ln);
    }
    gram_kernel_destroy(kde->k);
    kde->k = k;
    kde->log_norm = ln;
    return GRAM_OK;
}

/* ---- reflection ------------------------------------------------------------------------------ */

/* Copy `code` (mixed radix over the bounded dimensions: digit 0 = as is, 1 = reflected at the
 * lower bound, 2 = at the upper bound; a dimension with one bound has digits 0 and 1) of data row
 * x, in data space. Returns 0 when the copy is not a valid combination. */
typedef struct refl_dim {
    int64_t d;
    int n;          /* 2 or 3 options */
    double opt[2];  /* the bounds to reflect at, for digits 1 and 2 */
} refl_dim;

static int64_t refl_dims(const gram_kde *kde, refl_dim *rd)
{
    int64_t nb = 0;
    for (int64_t d = 0; d < kde->D; d++) {
        int n = 1;
        if (isfinite(kde->lower[d])) rd[nb].opt[n++ - 1] = kde->lower[d];
        if (isfinite(kde->upper[d])) rd[nb].opt[n++ - 1] = kde->upper[d];
        if (n > 1) {
            rd[nb].d = d;
            rd[nb].n = n;
            nb++;
        }
    }
    return nb;
}

/* Decodes copy index c into per-bounded-dimension digits. */
static void refl_digits(int64_t c, int64_t nb, const refl_dim *rd, int *digit)
{
    for (int64_t b = 0; b < nb; b++) {
        digit[b] = (int)(c % rd[b].n);
        c /= rd[b].n;
    }
}

/* The number of copies (including the identity), or -1 on overflow. */
static int64_t refl_count(int64_t nb, const refl_dim *rd)
{
    int64_t n = 1;
    for (int64_t b = 0; b < nb; b++)
        if (!gram__mul_i64(n, rd[b].n, &n)) return -1;
    return n;
}

/* Builds the evaluation set: with bounds, the data and every reflected copy that can reach the
 * box (compact kernels let copies whose reflected coordinate lies ≥ h away be dropped exactly). The
 * identity copy comes first, so E's first N rows are Z. */
static gram_status build_eval_set(gram_context *ctx, gram_kde *kde)
{
    const int64_t N = kde->N, D = kde->D;
    if (kde->E != kde->Z) gram__free(kde->E);
    if (kde->We != kde->w) gram__free(kde->We);
    gram__free(kde->E32);
    kde->E = NULL, kde->We = NULL, kde->E32 = NULL;
    if (!kde->lower) {
        kde->Ne = N;
        kde->E = kde->Z;
        kde->We = kde->w;
    } else {
        refl_dim rd[64];
        int digit[64];
        int64_t nb = refl_dims(kde, rd);
        int64_t nc = refl_count(nb, rd);
        if (nc < 0) return gram__fail(ctx, GRAM_EOVERFLOW, "reflection: too many reflected copies");
        int compact = family_compact(kde->family);
        /* Pass 1 counts the rows, pass 2 fills them. */
        int64_t Ne = 0;
        double *E = NULL, *We = NULL;
        for (int pass = 0; pass < 2; pass++) {
            int64_t row = 0;
            for (int64_t c = 0; c < nc; c++) {
                refl_digits(c, nb, rd, digit);
                for (int64_t j = 0; j < N; j++) {
                    if (kde->w[j] == 0.0 && c > 0) continue;
                    int keep = 1;
                    for (int64_t b = 0; b < nb && keep; b++) {
                        if (!digit[b]) continue;
                        double bound = rd[b].opt[digit[b] - 1], x = kde->X[j * D + rd[b].d];
                        if (compact && fabs(x - bound) >= kde->h[rd[b].d]) keep = 0;
                    }
                    if (!keep) continue;
                    if (pass == 1) {
                        for (int64_t d = 0; d < D; d++) E[row * D + d] = kde->X[j * D + d];
                        for (int64_t b = 0; b < nb; b++)
                            if (digit[b]) {
                                int64_t d = rd[b].d;
                                E[row * D + d] = 2.0 * rd[b].opt[digit[b] - 1] - E[row * D + d];
                            }
                        for (int64_t d = 0; d < D; d++) E[row * D + d] -= kde->center[d];
                        We[row] = kde->w[j];
                    }
                    row++;
                }
            }
            if (pass == 0) {
                size_t bytes;
                int64_t cnt;
                Ne = row;
                if (!gram__mul_i64(Ne, D, &cnt) || !gram__bytes(cnt, sizeof(double), &bytes))
                    return gram__fail(ctx, GRAM_EOVERFLOW, "reflection: %lld reflected rows overflow", (long long)Ne);
                E = gram__alloc(bytes);
                We = gram__alloc(sizeof(double) * (size_t)Ne);
                if (!E || !We) {
                    gram__free(E);
                    gram__free(We);
                    return gram__fail(ctx, GRAM_ENOMEM, "reflection: out of memory for %lld reflected rows", (long long)Ne);
                }
            }
        }
        kde->Ne = Ne;
        kde->E = E;
        kde->We = We;
    }
    if (kde->precision == GRAM_FLOAT32) {
        int64_t cnt = kde->Ne * D;
        kde->E32 = gram__alloc(sizeof(float) * (size_t)cnt);
        if (!kde->E32) return gram__fail(ctx, GRAM_ENOMEM, "out of memory for the float32 copy of the data");
        for (int64_t i = 0; i < cnt; i++) kde->E32[i] = (float)kde->E[i];
    }
    return GRAM_OK;
}

/* ---- fit ------------------------------------------------------------------------------------- */

static gram_status check_options(gram_context *ctx, const gram_kde_options *opt, int64_t N, int64_t D)
{
    if ((int)opt->kernel < 0 || (int)opt->kernel >= GRAM_FAMILY_COUNT)
        return gram__fail(ctx, GRAM_EINVAL, "opt->kernel: unknown kernel family %d", (int)opt->kernel);
    if (!gram__kde_family_ok(opt->kernel, D)) {
        if (opt->kernel == GRAM_CAUCHY)
            return gram__fail(ctx, GRAM_EDOMAIN, "the cauchy kernel is a density kernel only in D = 1 (the data have D = %lld)",
                              (long long)D);
        return gram__fail(ctx, GRAM_EDOMAIN,
                          "kernel family %s does not integrate to a finite positive value, so it cannot be a density kernel "
                          "(use gaussian, tophat, epanechnikov, exponential, triangular, cosine_window, laplacian, "
                          "matern12, matern32, matern52 or cauchy)",
                          gram__family_name(opt->kernel));
    }
    if (opt->geometry != GRAM_KDE_ISOTROPIC && opt->geometry != GRAM_KDE_COVARIANCE)
        return gram__fail(ctx, GRAM_EINVAL, "opt->geometry: unknown geometry %d", (int)opt->geometry);
    if ((int)opt->rule < GRAM_BW_FIXED || (int)opt->rule > GRAM_BW_CV_LS)
        return gram__fail(ctx, GRAM_EINVAL, "opt->rule: unknown bandwidth rule %d", (int)opt->rule);
    if (opt->precision != GRAM_FLOAT64 && opt->precision != GRAM_FLOAT32)
        return gram__fail(ctx, GRAM_EINVAL, "opt->precision: unknown dtype %d", (int)opt->precision);
    int cov = opt->geometry == GRAM_KDE_COVARIANCE;
    if (opt->rule == GRAM_BW_FIXED) {
        if (opt->n_bandwidth != 1 && !(opt->n_bandwidth == D && !cov)) {
            if (cov)
                return gram__fail(ctx, GRAM_EINVAL,
                                  "the covariance geometry takes one bandwidth factor (n_bandwidth = 1), got n_bandwidth = %lld",
                                  (long long)opt->n_bandwidth);
            return gram__fail(ctx, GRAM_EINVAL, "n_bandwidth must be 1 or D = %lld, got %lld", (long long)D,
                              (long long)opt->n_bandwidth);
        }
        if (!opt->bandwidth) return gram__fail(ctx, GRAM_EINVAL, "opt->bandwidth is NULL with the fixed rule");
        for (int64_t d = 0; d < opt->n_bandwidth; d++) {
            double v = opt->bandwidth[d];
            if (!(v > 0.0) || !isfinite(v)) {
                if (opt->n_bandwidth == 1) return gram__fail(ctx, GRAM_EINVAL, "bandwidth must be > 0 and finite, got %g", v);
                return gram__fail(ctx, GRAM_EINVAL, "bandwidth[%lld] must be > 0 and finite, got %g", (long long)d, v);
            }
        }
    }
    if (cov && (opt->rule == GRAM_BW_SCOTT_UNSCALED || opt->rule == GRAM_BW_SILVERMAN_UNSCALED))
        return gram__fail(ctx, GRAM_EINVAL,
                          "the unscaled %s rule ignores the data's scale and is only for the isotropic geometry",
                          opt->rule == GRAM_BW_SCOTT_UNSCALED ? "Scott" : "Silverman");
    if (opt->rule == GRAM_BW_ISJ && D != 1)
        return gram__fail(ctx, GRAM_EDOMAIN, "the ISJ rule is defined for 1-D data only (D = %lld); use scott, silverman or cv-ml",
                          (long long)D);
    if (opt->rule == GRAM_BW_ISJ && opt->kernel == GRAM_CAUCHY)
        return gram__fail(ctx, GRAM_EDOMAIN, "the ISJ rule needs a kernel with a finite variance; cauchy has none");
    if (opt->rule == GRAM_BW_CV_LS && opt->kernel != GRAM_GAUSSIAN)
        return gram__fail(ctx, GRAM_EDOMAIN,
                          "least-squares cross-validation is implemented for the gaussian kernel only (got %s); use cv-ml",
                          gram__family_name(opt->kernel));
    int data_driven = opt->rule != GRAM_BW_FIXED && opt->rule != GRAM_BW_SCOTT_UNSCALED &&
                      opt->rule != GRAM_BW_SILVERMAN_UNSCALED;
    if (N < 2 && data_driven)
        return gram__fail(ctx, GRAM_ESHAPE, "a data-driven bandwidth rule needs at least 2 data points, got %lld", (long long)N);
    if (N < 2 && cov)
        return gram__fail(ctx, GRAM_ESHAPE, "the covariance geometry needs at least 2 data points, got %lld", (long long)N);
    if (opt->lower || opt->upper) {
        for (int64_t d = 0; d < D; d++) {
            double lo = opt->lower ? opt->lower[d] : -INFINITY, hi = opt->upper ? opt->upper[d] : INFINITY;
            if (isnan(lo) || isnan(hi))
                return gram__fail(ctx, GRAM_EINVAL, "%s[%lld] is NaN", isnan(lo) ? "lower" : "upper", (long long)d);
            if (lo == INFINITY || hi == -INFINITY || !(lo < hi))
                return gram__fail(ctx, GRAM_EINVAL, "bounds of dimension %lld are empty: lower %g must be < upper %g",
                                  (long long)d, lo, hi);
            if (cov && (isfinite(lo) || isfinite(hi)))
                return gram__fail(ctx, GRAM_EUNSUPPORTED, "reflection needs the isotropic geometry (dimension %lld is bounded)",
                                  (long long)d);
        }
        if (opt->rule == GRAM_BW_CV_LS)
            return gram__fail(ctx, GRAM_EUNSUPPORTED, "least-squares cross-validation does not support reflection bounds");
    }
    return GRAM_OK;
}

static gram_status check_weights(gram_context *ctx, const gram_array *W, int64_t N)
{
    gram_status s;
    if ((s = gram__check_array(ctx, W, "weights"))) return s;
    if (!((W->rows == N && W->cols == 1) || (W->rows == 1 && W->cols == N)))
        return gram__fail(ctx, GRAM_ESHAPE, "weights is %lld×%lld but must be %lld×1 or 1×%lld (one weight per data point)",
                          (long long)W->rows, (long long)W->cols, (long long)N, (long long)N);
    if ((s = gram__check_finite(ctx, W, "weights"))) return s;
    int column = W->cols == 1;
    for (int64_t i = 0; i < N; i++) {
        double v = gram__get(W, column ? i : 0, column ? 0 : i);
        if (v < 0.0)
            return gram__fail(ctx, GRAM_EDOMAIN, "weights: element %lld is negative (%.17g); weights must be >= 0",
                              (long long)i, v);
    }
    return GRAM_OK;
}

/* Normalised weights, Σ_{j≠i} w_j without cancellation (prefix + suffix sums), n_eff. */
static gram_status set_weights(gram_context *ctx, gram_kde *kde, const gram_array *W)
{
    const int64_t N = kde->N;
    if (!W) {
        for (int64_t i = 0; i < N; i++) kde->w[i] = 1.0 / (double)N;
    } else {
        int column = W->cols == 1;
        double mx = 0.0;
        for (int64_t i = 0; i < N; i++) {
            double v = gram__get(W, column ? i : 0, column ? 0 : i);
            if (v > mx) mx = v;
        }
        if (!(mx > 0.0)) return gram__fail(ctx, GRAM_EDOMAIN, "weights sum to 0: at least one weight must be positive");
        long double sum = 0.0L;
        for (int64_t i = 0; i < N; i++) {
            kde->w[i] = gram__get(W, column ? i : 0, column ? 0 : i) / mx; /* ≤ 1: the sum cannot overflow */
            sum += kde->w[i];
        }
        for (int64_t i = 0; i < N; i++) kde->w[i] = (double)(kde->w[i] / sum);
    }
    long double acc = 0.0L, sq = 0.0L;
    for (int64_t i = 0; i < N; i++) {
        kde->w_rest[i] = (double)acc; /* prefix Σ_{j<i} */
        acc += kde->w[i];
        sq += (long double)kde->w[i] * kde->w[i];
    }
    acc = 0.0L;
    for (int64_t i = N - 1; i >= 0; i--) {
        kde->w_rest[i] = (double)((long double)kde->w_rest[i] + acc);
        acc += kde->w[i];
    }
    kde->neff = (double)(1.0L / sq);
    return GRAM_OK;
}

/* Rows of Z per BLAS call: the covariance is built from blocks of this many rows (O(block·D)
 * extra memory), and triangular solves keep their row counts within BLAS's int. */
#define GRAM__KDE_BLOCK_ROWS 256
#define GRAM__KDE_TRSM_ROWS ((int64_t)1 << 20)

/* Z ← Z L⁻ᵀ (each row z ← L⁻¹ z) for N rows of D: one BLAS solve per slab of rows, since the
 * O(N·D²) whitening is most of a high-dimensional fit. */
static void whiten_rows(int64_t N, int64_t D, const double *L, double *Z)
{
    int saved = gram__blas_serial_begin(D);
    for (int64_t i0 = 0; i0 < N; i0 += GRAM__KDE_TRSM_ROWS) {
        int64_t b = N - i0 < GRAM__KDE_TRSM_ROWS ? N - i0 : GRAM__KDE_TRSM_ROWS;
        gram__trsm_right_lower_t(b, D, L, D, Z + i0 * D, D);
    }
    gram__blas_serial_end(saved);
}

/* L = chol(Σ) by LAPACK, held to the same standard as gram__cholesky (every pivot finite and above
 * 64·D·eps of its diagonal entry, so that data in a lower-dimensional subspace is refused; dpotrf
 * itself accepts a NaN pivot). On failure gram__cholesky refactors a copy to name the pivot. */
static gram_status factor_covariance(gram_context *ctx, gram_kde *kde)
{
    const int64_t D = kde->D;
    memcpy(kde->L, kde->cov, sizeof(double) * (size_t)(D * D));
    int saved = gram__blas_serial_begin(D);
    int info = gram__chol_lapack(D, kde->L, D);
    gram__blas_serial_end(saved);
    int ok = info == 0;
    for (int64_t j = 0; j < D && ok; j++) {
        double l = kde->L[j * D + j];
        ok = isfinite(l) && l > 0.0 && l * l > 64.0 * (double)D * DBL_EPSILON * kde->cov[j * D + j];
    }
    if (!ok) {
        memcpy(kde->L, kde->cov, sizeof(double) * (size_t)(D * D));
        gram_status s = gram__cholesky(ctx, D, kde->L, "the data covariance");
        return s; /* GRAM_OK where its pivots pass after all: then its factor is used */
    }
    for (int64_t i = 0; i < D; i++)
        for (int64_t j = i + 1; j < D; j++) kde->L[i * D + j] = 0.0;
    return GRAM_OK;
}

/* Σ = Σ_i w_i z_i z_iᵀ / (1 - Σw²) from the centred data Z, as rank-B updates of -Σ (gram__syrk_sub
 * subtracts) from blocks Tᵀ, T[i][d] = √w_i z_id, laid out D×B so that T Tᵀ is the block's sum. */
static gram_status compute_covariance(gram_context *ctx, gram_kde *kde)
{
    const int64_t N = kde->N, D = kde->D;
    /* 1 - Σw² = Σ_i w_i Σ_{j≠i} w_j, without cancellation. */
    long double denom = 0.0L;
    for (int64_t i = 0; i < N; i++) denom += (long double)kde->w[i] * kde->w_rest[i];
    if (!(denom > 0.0L))
        return gram__fail(ctx, GRAM_EDOMAIN, "only one data point has a positive weight: the covariance is undefined");
    const int64_t BR = GRAM__KDE_BLOCK_ROWS;
    double *T = gram__alloc(sizeof(double) * (size_t)(D * BR));
    if (!T) return gram__fail(ctx, GRAM_ENOMEM, "gram_kde_fit: out of memory for the covariance of D = %lld", (long long)D);
    memset(kde->cov, 0, sizeof(double) * (size_t)(D * D));
    int saved = gram__blas_serial_begin(D);
    for (int64_t i0 = 0; i0 < N; i0 += BR) {
        int64_t b = N - i0 < BR ? N - i0 : BR;
        for (int64_t i = 0; i < b; i++) {
            double r = sqrt(kde->w[i0 + i]);
            const double *z = kde->Z + (i0 + i) * D;
            for (int64_t d = 0; d < D; d++) T[d * BR + i] = r * z[d];
        }
        gram__syrk_sub(D, b, T, BR, kde->cov, D);
    }
    gram__blas_serial_end(saved);
    gram__free(T);
    const double scale = (double)(-1.0L / denom);
    for (int64_t a = 0; a < D; a++)
        for (int64_t b = 0; b <= a; b++) kde->cov[a * D + b] = kde->cov[b * D + a] = kde->cov[a * D + b] * scale;
    for (int64_t d = 0; d < D; d++) {
        if (!isfinite(kde->cov[d * D + d]))
            return gram__fail(ctx, GRAM_EDOMAIN, "the variance of dimension %lld overflows (the data are too large)",
                              (long long)d);
        if (!(kde->cov[d * D + d] > 0.0))
            return gram__fail(ctx, GRAM_EDOMAIN, "dimension %lld has zero variance: the covariance bandwidth is singular",
                              (long long)d);
    }
    return GRAM_OK;
}

/* Weighted mean, and for the covariance geometry Σ, L = chol(Σ) and Z = L⁻¹(X - μ). */
static gram_status set_geometry(gram_context *ctx, gram_kde *kde)
{
    const int64_t N = kde->N, D = kde->D;
    long double *m = gram__alloc(sizeof(long double) * (size_t)D);
    if (!m) return gram__fail(ctx, GRAM_ENOMEM, "gram_kde_fit: out of memory for the mean of D = %lld", (long long)D);
    for (int64_t d = 0; d < D; d++) m[d] = 0.0L;
    for (int64_t i = 0; i < N; i++)
        for (int64_t d = 0; d < D; d++) m[d] += (long double)kde->w[i] * kde->X[i * D + d];
    for (int64_t d = 0; d < D; d++) kde->center[d] = (double)m[d];
    gram__free(m);
    for (int64_t i = 0; i < N; i++)
        for (int64_t d = 0; d < D; d++) kde->Z[i * D + d] = kde->X[i * D + d] - kde->center[d];
    if (kde->geometry != GRAM_KDE_COVARIANCE) return GRAM_OK;
    gram_status s;
    if ((s = compute_covariance(ctx, kde)) || (s = factor_covariance(ctx, kde))) return s;
    kde->log_det_L = gram__chol_logdet(D, kde->L);
    whiten_rows(N, D, kde->L, kde->Z);
    return GRAM_OK;
}

gram_status gram_kde_fit(gram_context *ctx, const gram_kde_options *opt, const gram_array *X,
                         const gram_array *weights, gram_kde **out)
{
    gram__clear(ctx);
    gram_status s;
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "gram_kde_fit: out is NULL");
    *out = NULL;
    if (!opt) return gram__fail(ctx, GRAM_EINVAL, "gram_kde_fit: opt is NULL (fill one with gram_kde_options_init)");
    if ((s = gram__check_array(ctx, X, "X"))) return s;
    const int64_t N = X->rows, D = X->cols;
    if (N == 0) return gram__fail(ctx, GRAM_ESHAPE, "X: no data points (N = 0)");
    if (D == 0) return gram__fail(ctx, GRAM_ESHAPE, "X has no columns (D = 0)");
    if (D > 65536) return gram__fail(ctx, GRAM_EUNSUPPORTED, "KDE supports D ≤ 65536, got %lld", (long long)D);
    if ((s = check_options(ctx, opt, N, D))) return s;

    /* Sizes and memory before any O(N·D) scan: an input too large to copy (a broadcast view of
     * 10¹² rows, say) fails at once instead of after minutes of checking. */
    int64_t ND, DD;
    size_t bytes_nd, bytes_dd;
    if (!gram__mul_i64(N, D, &ND) || !gram__bytes(ND, sizeof(double), &bytes_nd) || !gram__mul_i64(D, D, &DD) ||
        !gram__bytes(DD, sizeof(double), &bytes_dd))
        return gram__fail(ctx, GRAM_EOVERFLOW, "X: %lld×%lld is too large", (long long)N, (long long)D);
    /* The copy X and kernel-space Z together (float32 adds a third, smaller copy later). */
    size_t need = bytes_nd > SIZE_MAX / 2 ? SIZE_MAX : 2 * bytes_nd;
    if (!gram__memory_fits(need))
        return gram__fail(ctx, GRAM_ENOMEM, "gram_kde_fit: %lld×%lld data need %.3g GB (two float64 copies) but the system "
                          "can provide %.3g GB now", (long long)N, (long long)D, (double)need / 1e9,
                          (double)gram__memory_available() / 1e9);
    gram_kde *kde = gram__calloc(1, sizeof *kde);
    if (!kde) return gram__fail(ctx, GRAM_ENOMEM, "gram_kde_fit: out of memory");
    kde->N = N;
    kde->D = D;
    kde->family = opt->kernel;
    kde->geometry = opt->geometry;
    kde->rule = opt->rule;
    kde->precision = opt->precision;
    int cov = opt->geometry == GRAM_KDE_COVARIANCE;
    kde->X = gram__alloc(bytes_nd);
    kde->Z = gram__alloc(bytes_nd);
    kde->w = gram__alloc(sizeof(double) * (size_t)N);
    kde->w_rest = gram__alloc(sizeof(double) * (size_t)N);
    kde->center = gram__alloc(sizeof(double) * (size_t)D);
    kde->h = gram__alloc(sizeof(double) * (size_t)D);
    if (cov) {
        kde->cov = gram__alloc(bytes_dd);
        kde->L = gram__alloc(bytes_dd);
    }
    int bounded = 0;
    for (int64_t d = 0; d < D; d++)
        bounded += (opt->lower && isfinite(opt->lower[d])) || (opt->upper && isfinite(opt->upper[d]));
    if (bounded) {
        kde->lower = gram__alloc(sizeof(double) * (size_t)D);
        kde->upper = gram__alloc(sizeof(double) * (size_t)D);
    }
    if (!kde->X || !kde->Z || !kde->w || !kde->w_rest || !kde->center || !kde->h || (cov && (!kde->cov || !kde->L)) ||
        (bounded && (!kde->lower || !kde->upper))) {
        gram_kde_destroy(kde);
        return gram__fail(ctx, GRAM_ENOMEM, "gram_kde_fit: out of memory for %lld×%lld data", (long long)N, (long long)D);
    }
    if (bounded > 64) {
        gram_kde_destroy(kde);
        return gram__fail(ctx, GRAM_EUNSUPPORTED, "reflection: at most 64 bounded dimensions (got %d)", bounded);
    }
    if ((s = gram__check_finite(ctx, X, "X")) || (weights && (s = check_weights(ctx, weights, N)))) {
        gram_kde_destroy(kde);
        return s;
    }
    if (opt->lower || opt->upper)
        for (int64_t i = 0; i < N; i++)
            for (int64_t d = 0; d < D; d++) {
                double v = gram__get(X, i, d);
                double lo = opt->lower ? opt->lower[d] : -INFINITY, hi = opt->upper ? opt->upper[d] : INFINITY;
                if (v < lo || v > hi) {
                    gram_kde_destroy(kde);
                    return gram__fail(ctx, GRAM_EDOMAIN, "X: row %lld, column %lld is %.17g, outside the bounds [%g, %g]",
                                      (long long)i, (long long)d, v, lo, hi);
                }
            }
    kde->n_bounded = bounded;
    if (bounded)
        for (int64_t d = 0; d < D; d++) {
            kde->lower[d] = opt->lower ? opt->lower[d] : -INFINITY;
            kde->upper[d] = opt->upper ? opt->upper[d] : INFINITY;
        }
    for (int64_t i = 0; i < N; i++)
        for (int64_t d = 0; d < D; d++) kde->X[i * D + d] = gram__get(X, i, d);

    if ((s = set_weights(ctx, kde, weights)) || (s = set_geometry(ctx, kde)) ||
        (s = gram__kde_choose_bandwidth(ctx, kde, opt)) || (s = build_eval_set(ctx, kde))) {
        gram_kde_destroy(kde);
        return s;
    }
    *out = kde;
    return GRAM_OK;
}

/* ---- accessors --------------------------------------------------------------------------------- */

int64_t gram_kde_n(const gram_kde *kde) { return kde ? kde->N : 0; }
int64_t gram_kde_dim(const gram_kde *kde) { return kde ? kde->D : 0; }
double gram_kde_neff(const gram_kde *kde) { return kde ? kde->neff : 0.0; }
double gram_kde_factor(const gram_kde *kde) { return kde ? kde->factor : 0.0; }

gram_status gram_kde_bandwidth_matrix(const gram_kde *kde, double *H)
{
    if (!kde || !H) return GRAM_EINVAL;
    const int64_t D = kde->D;
    for (int64_t a = 0; a < D; a++)
        for (int64_t b = 0; b < D; b++) {
            if (kde->geometry == GRAM_KDE_COVARIANCE) H[a * D + b] = kde->factor * kde->factor * kde->cov[a * D + b];
            else H[a * D + b] = a == b ? kde->h[a] * kde->h[a] : 0.0;
        }
    return GRAM_OK;
}

gram_status gram_kde_bandwidth(const gram_kde *kde, double *h)
{
    if (!kde || !h) return GRAM_EINVAL;
    memcpy(h, kde->h, sizeof(double) * (size_t)kde->D);
    return GRAM_OK;
}

/* ---- evaluation -------------------------------------------------------------------------------- */

static gram_status check_out_vector(gram_context *ctx, const gram_array *out, int64_t M, const char *what)
{
    gram_status s;
    if ((s = gram__check_array(ctx, out, "out"))) return s;
    if (!((out->rows == M && out->cols == 1) || (out->rows == 1 && out->cols == M)))
        return gram__fail(ctx, GRAM_ESHAPE, "out is %lld×%lld but must be %lld×1 or 1×%lld (one value per %s)",
                          (long long)out->rows, (long long)out->cols, (long long)M, (long long)M, what);
    return GRAM_OK;
}

static void put_vector(const gram_array *out, int64_t i, double v)
{
    if (out->cols == 1) gram__put(out, i, 0, v);
    else gram__put(out, 0, i, v);
}

/* opt NULL: exact. Otherwise the sums go through gram_kernel_sum_approx, the tolerance carried
 * over from the density to the sum Σ w k = f·norm: rtol unchanged, atol·norm. */
static gram_status kde_eval(gram_context *ctx, const gram_kde *kde, const gram_array *Y, gram_array *out, int log_out,
                            const gram_approx_options *opt, gram_approx_info *info)
{
    gram__clear(ctx);
    gram_status s;
    if (!kde) return gram__fail(ctx, GRAM_EINVAL, "kde is NULL");
    if ((s = gram__check_array(ctx, Y, "Y"))) return s;
    const int64_t M = Y->rows, D = kde->D;
    if (Y->cols != D)
        return gram__fail(ctx, GRAM_ESHAPE, "Y has %lld columns but the KDE was fitted on D = %lld", (long long)Y->cols,
                          (long long)D);
    if ((s = check_out_vector(ctx, out, M, "query"))) return s;
    if ((s = gram__check_finite(ctx, Y, "Y"))) return s;
    if ((s = gram__check_no_overlap(ctx, out, Y, "out", "Y"))) return s;
    if (M == 0) return GRAM_OK;

    int64_t B = GRAM__KDE_CHUNK_VALUES / D;
    if (B < 1) B = 1;
    if (B > M) B = M;
    const int f32 = kde->precision == GRAM_FLOAT32;
    double *yk = gram__alloc(sizeof(double) * (size_t)(B * D));
    float *yk32 = f32 ? gram__alloc(sizeof(float) * (size_t)(B * D)) : NULL;
    double *res = gram__alloc(sizeof(double) * (size_t)B), *lres = gram__alloc(sizeof(double) * (size_t)B);
    int64_t *idx = gram__alloc(sizeof(int64_t) * (size_t)B);
    if (!yk || !res || !lres || !idx || (f32 && !yk32)) {
        s = gram__fail(ctx, GRAM_ENOMEM, "KDE evaluation: out of memory");
        goto done;
    }
    gram_array E = f32 ? gram_array_f32(kde->E32, kde->Ne, D) : gram_array_f64(kde->E, kde->Ne, D);
    gram_array W = gram_array_f64(kde->We, kde->Ne, 1);
    for (int64_t i0 = 0; i0 < M && !s; i0 += B) {
        int64_t b = M - i0 < B ? M - i0 : B;
        for (int64_t i = 0; i < b; i++) {
            double *z = yk + i * D;
            for (int64_t d = 0; d < D; d++) z[d] = gram__get(Y, i0 + i, d) - kde->center[d];
        }
        if (kde->geometry == GRAM_KDE_COVARIANCE) whiten_rows(b, D, kde->L, yk);
        if (f32)
            for (int64_t t = 0; t < b * D; t++) yk32[t] = (float)yk[t];
        gram_array Yk = f32 ? gram_array_f32(yk32, b, D) : gram_array_f64(yk, b, D);
        gram_array R = gram_array_f64(res, b, 1);
        /* The plain sum is exact wherever it is far above the underflow threshold: the weights sum
         * to 1 and every kernel value is at most 1, so terms lost to underflow add at most the
         * smallest normal number in total. Only rows below the threshold (far tails, tiny
         * bandwidths, high D) are redone in log space, which never underflows. */
        if (!opt) {
            if ((s = gram_kernel_sum(ctx, kde->k, &Yk, &E, &W, &R))) break;
        } else {
            gram_approx_options o = *opt;
            double norm = exp(kde->log_norm);
            /* 0, negative and NaN pass unchanged, for gram_kernel_sum_approx to refuse */
            if (opt->atol > 0 && isfinite(opt->atol)) o.atol = isfinite(opt->atol * norm) ? opt->atol * norm : DBL_MAX;
            gram_approx_info ci = {GRAM_APPROX_EXACT, 0.0, 0};
            if ((s = gram_kernel_sum_approx(ctx, kde->k, &Yk, &E, &W, &o, &R, NULL, &ci))) break;
            if (info) {
                if (i0 == 0) info->method = ci.method;
                if (ci.delta > info->delta) info->delta = ci.delta;
                info->kernel_evaluations += ci.kernel_evaluations;
            }
        }
        const double floor = f32 ? 1e-28 : 1e-280;
        int64_t nlow = 0;
        for (int64_t i = 0; i < b; i++) {
            if (res[i] >= floor) { res[i] = log(res[i]); continue; }
            if (nlow != i) memmove(yk + nlow * D, yk + i * D, sizeof(double) * (size_t)D);
            if (f32 && nlow != i) memmove(yk32 + nlow * D, yk32 + i * D, sizeof(float) * (size_t)D);
            idx[nlow++] = i;
        }
        if (nlow > 0) {
            gram_array Yl = f32 ? gram_array_f32(yk32, nlow, D) : gram_array_f64(yk, nlow, D);
            gram_array Rl = gram_array_f64(lres, nlow, 1);
            if ((s = gram_kernel_logsum(ctx, kde->k, &Yl, &E, &W, &Rl))) break;
            for (int64_t t = 0; t < nlow; t++) res[idx[t]] = lres[t];
        }
        for (int64_t i = 0; i < b; i++) {
            double v = res[i] - kde->log_norm;
            if (kde->lower)
                for (int64_t d = 0; d < D; d++) {
                    double y = gram__get(Y, i0 + i, d);
                    if (y < kde->lower[d] || y > kde->upper[d]) v = -INFINITY;
                }
            put_vector(out, i0 + i, log_out ? v : exp(v));
        }
    }
done:
    gram__free(yk);
    gram__free(yk32);
    gram__free(res);
    gram__free(lres);
    gram__free(idx);
    return s;
}

gram_status gram_kde_logpdf(gram_context *ctx, const gram_kde *kde, const gram_array *Y, gram_array *out)
{
    return kde_eval(ctx, kde, Y, out, 1, NULL, NULL);
}

gram_status gram_kde_pdf(gram_context *ctx, const gram_kde *kde, const gram_array *Y, gram_array *out)
{
    return kde_eval(ctx, kde, Y, out, 0, NULL, NULL);
}

gram_status gram_kde_eval_approx(gram_context *ctx, const gram_kde *kde, const gram_array *Y,
                                 const gram_approx_options *opt, int log_out, gram_array *out, gram_approx_info *info)
{
    gram_approx_options dflt;
    if (!opt) {
        gram_approx_options_init(&dflt);
        opt = &dflt;
    }
    if (info) *info = (gram_approx_info){GRAM_APPROX_EXACT, 0.0, 0};
    /* refused here too, so that no query (M = 0) is no way past the checks */
    if (!(opt->rtol >= 0) || isinf(opt->rtol))
        return gram__fail(ctx, GRAM_EINVAL, "rtol must be finite and >= 0, got %g", opt->rtol);
    if (!(opt->atol >= 0) || isinf(opt->atol))
        return gram__fail(ctx, GRAM_EINVAL, "atol must be finite and >= 0, got %g", opt->atol);
    if (!(opt->delta > 0 && opt->delta < 1))
        return gram__fail(ctx, GRAM_EINVAL, "delta (the failure probability of randomized bounds) must be in (0, 1), "
                                            "got %g", opt->delta);
    return kde_eval(ctx, kde, Y, out, log_out ? 1 : 0, opt, info);
}

/* ---- leave-one-out ------------------------------------------------------------------------------ */

/* Reflected copies' contribution to the leave-one-out sums: for each non-identity copy c,
 * log Σ_{j≠i} w_j k(z_i - c(z_j)) is added (log-sum-exp) into acc. The engine gives the sum with
 * j = i included; the self term k(z_i - c(z_i)) is known in closed form. Where it is less than half
 * of the sum, subtracting it loses at most a factor 2 of relative accuracy; where it dominates,
 * the row is recomputed exactly from the two ranges j < i and j > i. */
static gram_status loo_reflections(gram_context *ctx, const gram_kde *kde, gram_dtype dtype, const void *Zt,
                                   double *acc)
{
    const int64_t N = kde->N, D = kde->D;
    refl_dim rd[64];
    int digit[64];
    int64_t nb = refl_dims(kde, rd), nc = refl_count(nb, rd);
    const int f32 = dtype == GRAM_FLOAT32;
    const size_t es = f32 ? sizeof(float) : sizeof(double);
    double *C = gram__alloc(sizeof(double) * (size_t)(N * D));
    float *C32 = f32 ? gram__alloc(sizeof(float) * (size_t)(N * D)) : NULL;
    double *T = gram__alloc(sizeof(double) * (size_t)N);
    gram_status s = GRAM_OK;
    if (!C || !T || (f32 && !C32)) {
        s = gram__fail(ctx, GRAM_ENOMEM, "leave-one-out with reflection: out of memory");
        goto done;
    }
    const gram__leaf *leaf = &kde->k->leaves[0];
    gram_array Zarr = {(void *)(uintptr_t)Zt, dtype, N, D, D, 1};
    gram_array Warr = gram_array_f64(kde->w, N, 1);
    for (int64_t c = 1; c < nc && !s; c++) {
        refl_digits(c, nb, rd, digit);
        for (int64_t j = 0; j < N; j++) {
            double *row = C + j * D;
            for (int64_t d = 0; d < D; d++) row[d] = kde->X[j * D + d];
            for (int64_t b = 0; b < nb; b++)
                if (digit[b]) row[rd[b].d] = 2.0 * rd[b].opt[digit[b] - 1] - row[rd[b].d];
            for (int64_t d = 0; d < D; d++) row[d] -= kde->center[d];
        }
        if (f32)
            for (int64_t t = 0; t < N * D; t++) C32[t] = (float)C[t];
        const void *Cd = f32 ? (const void *)C32 : (const void *)C;
        gram_array Carr = {(void *)(uintptr_t)Cd, dtype, N, D, D, 1};
        gram_array Tarr = gram_array_f64(T, N, 1);
        if ((s = gram_kernel_logsum(ctx, kde->k, &Zarr, &Carr, &Warr, &Tarr))) break;
        for (int64_t i = 0; i < N && !s; i++) {
            double self = -INFINITY;
            if (kde->w[i] > 0.0) {
                double t = 0.0;
                for (int64_t b = 0; b < nb; b++)
                    if (digit[b]) {
                        int64_t d = rd[b].d;
                        double u = 2.0 * (kde->X[i * D + d] - rd[b].opt[digit[b] - 1]) / kde->h[d];
                        t += u * u;
                    }
                self = log(kde->w[i]) + gram__leaf_log_radial(leaf, t);
            }
            double v;
            if (self == -INFINITY) v = T[i];
            else if (T[i] - self > 0.6931471805599453) v = T[i] + log1p(-exp(self - T[i]));
            else {
                /* Exact: the rows j < i and j > i of the copy, as two engine calls. */
                double part[2] = {-INFINITY, -INFINITY};
                gram_array Yi = {(void *)((const char *)Zt + (size_t)(i * D) * es), dtype, 1, D, D, 1};
                int64_t lo[2] = {0, i + 1}, n[2] = {i, N - i - 1};
                for (int r = 0; r < 2 && !s; r++) {
                    if (n[r] == 0) continue;
                    gram_array Xr = {(void *)((const char *)Cd + (size_t)(lo[r] * D) * es), dtype, n[r], D, D, 1};
                    gram_array Wr = gram_array_f64(kde->w + lo[r], n[r], 1);
                    gram_array Pr = gram_array_f64(&part[r], 1, 1);
                    s = gram_kernel_logsum(ctx, kde->k, &Yi, &Xr, &Wr, &Pr);
                }
                v = logaddexp(part[0], part[1]);
            }
            acc[i] = logaddexp(acc[i], v);
        }
    }
done:
    gram__free(C);
    gram__free(C32);
    gram__free(T);
    return s;
}

gram_status gram__kde_loo(gram_context *ctx, const gram_kde *kde, gram_dtype dtype, double *out)
{
    const int64_t N = kde->N, D = kde->D;
    if (N < 2) return gram__fail(ctx, GRAM_EDOMAIN, "leave-one-out needs at least 2 data points, got %lld", (long long)N);
    for (int64_t i = 0; i < N; i++)
        if (!(kde->w_rest[i] > 0.0))
            return gram__fail(ctx, GRAM_EDOMAIN,
                              "leave-one-out at row %lld is undefined: every other data point has weight 0", (long long)i);
    gram_status s;
    float *Z32 = NULL;
    const void *Zt = kde->Z;
    if (dtype == GRAM_FLOAT32) {
        if (kde->E32) Zt = kde->E32; /* E's first N rows are Z */
        else {
            Z32 = gram__alloc(sizeof(float) * (size_t)(N * D));
            if (!Z32) return gram__fail(ctx, GRAM_ENOMEM, "leave-one-out: out of memory");
            for (int64_t t = 0; t < N * D; t++) Z32[t] = (float)kde->Z[t];
            Zt = Z32;
        }
    }
    gram_array Zarr = {(void *)(uintptr_t)Zt, dtype, N, D, D, 1};
    gram_array Warr = gram_array_f64(kde->w, N, 1);
    gram_array Oarr = gram_array_f64(out, N, 1);
    s = gram__kernel_reduce(ctx, kde->k, 1, NULL, &Zarr, &Warr, &Oarr, 1);
    if (!s && kde->lower) s = loo_reflections(ctx, kde, dtype, Zt, out);
    if (!s)
        for (int64_t i = 0; i < N; i++) out[i] = out[i] - log(kde->w_rest[i]) - kde->log_norm;
    gram__free(Z32);
    return s;
}

gram_status gram_kde_logpdf_loo(gram_context *ctx, const gram_kde *kde, gram_array *out)
{
    gram__clear(ctx);
    gram_status s;
    if (!kde) return gram__fail(ctx, GRAM_EINVAL, "kde is NULL");
    if ((s = check_out_vector(ctx, out, kde->N, "data point"))) return s;
    double *tmp = gram__alloc(sizeof(double) * (size_t)kde->N);
    if (!tmp) return gram__fail(ctx, GRAM_ENOMEM, "leave-one-out: out of memory");
    s = gram__kde_loo(ctx, kde, kde->precision, tmp);
    if (!s)
        for (int64_t i = 0; i < kde->N; i++) put_vector(out, i, tmp[i]);
    gram__free(tmp);
    return s;
}

