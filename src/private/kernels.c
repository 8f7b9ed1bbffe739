/* kernels: private sketches of Σ_x f(x, y) for the gaussian exp(-|x-y|²/σ²), the exponential
 * exp(-|x-y|/σ) and the cauchy 1/(1 + |x-y|²/σ²) similarities (issue 14; docs/private.md).
 *
 * The paper's mechanism (Backurs, Lin, Mahabadi, Silwal & Tarnawski, ICLR 2024): a
 * Johnson–Lindenstrauss projection P = G/√k (G k×d standard normal, k = reduced_dim; none when
 * k ≥ d) and then random Fourier features φ of the kernel in k dimensions (gram's RFF map: R/2
 * frequencies, φ = √(2/R)·[cos Ωz, sin Ωz], so |φ(z)|₂ = 1 for every z). The released vector is
 * Σ_x φ(Px) plus noise, and a query is φ(Py)·(that vector): its cost is O(k·d + R·k) per query,
 * independent of n and, past the projection, of d. The baseline is the same without the
 * projection (random features in all d dimensions), the mechanism the paper compares with.
 *
 * Cauchy (the paper's sparse function approximation): 1/(1 + t²) ≈ Σ_j a_j e^(-b_j t) on
 * t ∈ [0, T], T = the domain's diameter over σ, so the cauchy sum is Σ_j a_j times an
 * exponential-kernel sum of bandwidth σ/b_j. The J terms share P and each has its own map; the
 * released vector stacks w_j·Σ_x φ_j(Px) with w_j = |a_j|/Σ|a|, so one noise scale serves every
 * term (the same as giving term j the share ε_j ∝ |a_j| of ε), and a query weighs term j by
 * a_j/w_j = ±Σ|a|.
 *
 * Privacy. Each row's stacked features u(x) are quantised to the grid 2^-32 (q = round(2^32·u),
 * integers) and summed exactly in int64, so the released statistic is an integer vector whose
 * sensitivity is proved for integers (gram__release adds exact integer noise; private.h):
 *   ℓ1: a frequency pair contributes w·(|cos| + |sin|)·√(2/R) ≤ 2w/√R, so |u(x)|₁ ≤ √R·Σw, and
 *       each rounding adds at most 1/2 unit: |q(x)|₁ ≤ 2^32·√R·Σw + J·R/2 =: B1.
 *   ℓ2: |u(x)|₂² = Σ w_j²|φ_j|² = Σw², and Σ(|u_i| + 1/2)² = |u|² + |u|₁ + JR/4 (in units):
 *       |q(x)|₂² ≤ 2^64·Σw² + 2^32·√R·Σw + J·R/4 =: B2².
 * B1 and B2² are computed with a relative margin of 2^-30 over the exact-arithmetic values (the
 * computed cos, sin and scales are within a few ulps of the exact ones), and every row is then
 * checked against them in integers: a row that broke them (never seen) would be shrunk until it
 * does not, so the bounds hold by construction, not by trust in libm. By the triangle inequality
 * replacing one row changes the statistic by at most 2·B1 in ℓ1 and 2·B2 in ℓ2; adding or
 * removing one by B1 and B2.
 *
 * Every seeded object comes from s->seed alone (public): P's row i from Philox stream
 * JL_STREAM + i of s->seed, term j's map from the seed mix(s->seed, j) (gram_features_create), so
 * prepare rebuilds the same maps from a loaded sketch. The cauchy a_j and b_j are saved in
 * s->params ([a_0..a_{J-1}, b_0..b_{J-1}]) because they come from libm's exp through a fit. */
#include "private.h"

#include "../base/rng.h"
#include "../linalg/linalg.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FINE_BITS 32          /* the statistic's unit is 2^-FINE_BITS */
#define MAX_TERMS 64          /* cauchy: as private.c allows; the normal equations are solved in long double */
#define MAX_COMPONENTS ((int64_t)1 << 24)
#define MAX_VALUES ((int64_t)1 << 28)
#define JL_STREAM 0x4a4c000000000000ULL /* "JL": far from the streams a feature map uses */
#define BOUND_MARGIN 0x1p-30L
/* cauchy: the largest Σ|a_j| a fit may have; the noise of a query grows with it (module comment) */
#define CAUCHY_MAX_L1 4.0L
#define CAUCHY_MAX_T 1e12     /* T beyond this makes the slowest rate underflow the map's ℓ */

typedef struct kplan {
    int64_t d, k, R;
    int32_t J;
    double *P;                      /* k×d row-major, or NULL (no projection, k = d) */
    gram_features *maps[MAX_TERMS];
    double a[MAX_TERMS], b[MAX_TERMS], w[MAX_TERMS];
    double coef[MAX_TERMS];         /* query weight of term j: a_j/w_j (0 where w_j = 0) */
} kplan;

static void plan_free(void *p)
{
    kplan *pl = p;
    if (!pl) return;
    for (int j = 0; j < MAX_TERMS; j++) gram_features_destroy(pl->maps[j]);
    free(pl->P);
    free(pl);
}

/* Zeroes what was derived from private rows, with stores the compiler may not drop because the
 * buffer is freed next. */
static void wipe(void *p, size_t bytes)
{
    if (!p) return;
    volatile unsigned char *b = p;
    for (size_t i = 0; i < bytes; i++) b[i] = 0;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t term_seed(uint64_t seed, int j) { return mix64(seed ^ mix64(0x4b45524e00000000ULL + (uint64_t)j)); }

static int is_kernel(gram_private_similarity f)
{
    return f == GRAM_PRIVATE_GAUSSIAN || f == GRAM_PRIVATE_EXPONENTIAL || f == GRAM_PRIVATE_CAUCHY;
}

/* The projected dimension the sketch uses. */
static int64_t eff_k(const gram_private_sketch *s)
{
    if (s->mechanism == GRAM_PRIVATE_BASELINE || s->reduced_dim >= s->dim) return s->dim;
    return s->reduced_dim;
}

static int32_t n_terms_of(const gram_private_sketch *s)
{
    return s->similarity == GRAM_PRIVATE_CAUCHY ? s->n_terms : 1;
}

/* Everything the family needs from the public fields, refused with a message when unusable. */
static gram_status check_params(gram_context *ctx, const gram_private_sketch *s)
{
    if (!is_kernel(s->similarity))
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: similarity %d is not gaussian, exponential or cauchy",
                          (int)s->similarity);
    if (s->mechanism != GRAM_PRIVATE_PAPER && s->mechanism != GRAM_PRIVATE_BASELINE)
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: unknown mechanism %d", (int)s->mechanism);
    if (s->mechanism == GRAM_PRIVATE_BASELINE && s->similarity == GRAM_PRIVATE_CAUCHY)
        return gram__fail(ctx, GRAM_EINVAL,
                          "private kernels: no baseline mechanism for cauchy (baselines exist for gaussian and exponential)");
    if (s->domain != GRAM_PRIVATE_BALL && s->domain != GRAM_PRIVATE_BOX)
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: unknown domain %d", (int)s->domain);
    if (s->neighbours != GRAM_PRIVATE_REPLACE && s->neighbours != GRAM_PRIVATE_ADD_REMOVE)
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: unknown neighbours %d", (int)s->neighbours);
    if (!(s->radius > 0) || !isfinite(s->radius))
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: radius must be > 0 and finite, got %g", s->radius);
    if (!(s->bandwidth > 0) || !isfinite(s->bandwidth))
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: bandwidth must be > 0 and finite, got %g", s->bandwidth);
    if (s->dim < 1)
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: dimension must be >= 1, got %lld", (long long)s->dim);
    if (s->n_components < 2 || s->n_components % 2 != 0 || s->n_components > MAX_COMPONENTS)
        return gram__fail(ctx, GRAM_EINVAL,
                          "private kernels: n_components must be even, >= 2 and <= %lld (cos/sin pairs), got %lld",
                          (long long)MAX_COMPONENTS, (long long)s->n_components);
    if (s->mechanism == GRAM_PRIVATE_PAPER && s->reduced_dim < 1)
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: reduced_dim must be >= 1, got %lld",
                          (long long)s->reduced_dim);
    if (s->similarity == GRAM_PRIVATE_CAUCHY && (s->n_terms < 1 || s->n_terms > MAX_TERMS))
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: n_terms must be in [1, %d] for cauchy, got %d",
                          MAX_TERMS, (int)s->n_terms);
    int64_t kd, m;
    if (!gram__mul_i64(eff_k(s), s->dim, &kd) || kd > MAX_VALUES)
        return gram__fail(ctx, GRAM_EINVAL,
                          "private kernels: the projection (reduced_dim %lld x dim %lld) is too large",
                          (long long)eff_k(s), (long long)s->dim);
    int64_t freq;
    if (!gram__mul_i64((int64_t)n_terms_of(s) * (s->n_components / 2), eff_k(s), &freq) || freq > MAX_VALUES)
        return gram__fail(ctx, GRAM_EINVAL,
                          "private kernels: the frequency tables (n_terms %d x n_components/2 %lld x dim %lld) exceed 2^28 "
                          "values",
                          (int)n_terms_of(s), (long long)(s->n_components / 2), (long long)eff_k(s));
    if (!gram__mul_i64(n_terms_of(s), s->n_components, &m) || m > MAX_VALUES)
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: n_terms x n_components = %lld values is too many",
                          (long long)n_terms_of(s) * (long long)s->n_components);
    return GRAM_OK;
}

/* ---- cauchy: 1/(1 + t²) ≈ Σ_j a_j e^(-b_j t) on [0, T] ------------------------------------- */

/* The diameter of the domain over σ: the largest t a pair of clipped points can have. */
static double cauchy_T(const gram_private_sketch *s)
{
    const double diam = s->domain == GRAM_PRIVATE_BALL ? 2.0 * s->radius : 2.0 * s->radius * sqrt((double)s->dim);
    return diam / s->bandwidth;
}

/* Points where the fit is made (G) or checked: uniform on [0, min(T, 8)], where 1/(1+t²) has its
 * peak and curvature, and uniform on [0, T], where its tail is; a grid uniform on [0, T] alone
 * would step over the peak when T is large. */
static long double grid_t(double T, int64_t G, int64_t i)
{
    const long double a = T < 8 ? T : 8;
    return i < G ? a * (long double)i / (long double)(G - 1) : (long double)T * (long double)(i - G) / (long double)(G - 1);
}

/* e[i] = e^(-b t_i) on the 2G points of grid_t, by products of the step's exponential re-anchored
 * every 256 points (a relative error ~256 ulps of long double, far below what the fit resolves):
 * one expl per 256 points instead of one per point. */
static void grid_exps(double T, int64_t G, long double b, long double *e)
{
    for (int seg = 0; seg < 2; seg++) {
        long double v = 1, step = 0;
        for (int64_t i = 0; i < G; i++) {
            const long double t = grid_t(T, G, seg * G + i);
            if (i % 256 == 0) {
                v = expl(-b * t);
                step = expl(-b * (grid_t(T, G, seg * G + 1) - grid_t(T, G, seg * G)));
            }
            e[seg * G + i] = v;
            v *= step;
        }
    }
}

/* Max |f - Σ a e^(-b t)| over the check grid (into *out). */
#define CHECK_G 8001
static gram_status cauchy_max_err(gram_context *ctx, double T, int J, const long double *a, const long double *b,
                                  long double *out)
{
    const int64_t G = CHECK_G;
    long double *g = calloc((size_t)(2 * G), sizeof(long double)), *e = malloc((size_t)(2 * G) * sizeof(long double));
    if (!g || !e) {
        free(g);
        free(e);
        return gram__fail(ctx, GRAM_ENOMEM, "private kernels: out of memory");
    }
    for (int j = 0; j < J; j++) {
        grid_exps(T, G, b[j], e);
        for (int64_t i = 0; i < 2 * G; i++) g[i] += a[j] * e[i];
    }
    long double worst = 0;
    for (int64_t i = 0; i < 2 * G; i++) {
        const long double t = grid_t(T, G, i), err = fabsl(g[i] - 1.0L / (1.0L + t * t));
        if (err > worst) worst = err;
    }
    free(g);
    free(e);
    *out = worst;
    return GRAM_OK;
}

/* Solves (M + λI) a = c for the J×J Gram M by Cholesky in long double; 0 if not positive definite. */
static int ridge_solve(int J, const long double *M, const long double *c, long double lam, long double *a)
{
    long double L[MAX_TERMS * MAX_TERMS], y[MAX_TERMS];
    for (int i = 0; i < J; i++)
        for (int j = 0; j <= i; j++) {
            long double v = M[i * J + j] + (i == j ? lam : 0);
            for (int p = 0; p < j; p++) v -= L[i * J + p] * L[j * J + p];
            if (i == j) {
                if (!(v > 0)) return 0;
                L[i * J + i] = sqrtl(v);
            } else
                L[i * J + j] = v / L[j * J + j];
        }
    for (int i = 0; i < J; i++) {
        long double v = c[i];
        for (int p = 0; p < i; p++) v -= L[i * J + p] * y[p];
        y[i] = v / L[i * J + i];
    }
    for (int i = J - 1; i >= 0; i--) {
        long double v = y[i];
        for (int p = i + 1; p < J; p++) v -= L[p * J + i] * a[p];
        a[i] = v / L[i * J + i];
    }
    return 1;
}

/* The fit. Rates: J values geometric from b_lo = min(0.5/T, 0.5) (the tail ~ 1/t² over [0, T]
 * needs a rate near 1/T; for small T the function is 1 - t² and slow rates suffice) to
 * b_hi = max(8, 4·b_lo) (the peak's width is 1); one rate b_lo when J = 1. Coefficients: ridge
 * least squares on the fit grid (2·1001 points), normal equations in long double, with λ from the
 * ladder 1e-3, 1e-4, ..., 1e-10 (the Gram matrix is averaged over the grid, so its diagonal is
 * ≤ 1): the λ with the smallest max error on the check grid among those whose Σ|a_j| ≤ 4, because
 * the noise error of a query is proportional to Σ|a_j| (a fit with cancelling large coefficients
 * would be exact and useless). Measured (max error, Σ|a|), J = 8: T = 0.04: 2.4e-7, 1.8; T = 2:
 * 3.5e-3, 2.8; T = 16: 1.0e-3, 3.6; J = 16, T = 16: 2.7e-3, 3.1 (test_private_kernels). A JL
 * projection may stretch a distance past T: there the sum of decaying exponentials still tracks
 * 1/(1 + t²) (in the design experiments its error up to 3T stayed within a few times the error on
 * [0, T]), but approx_error only covers [0, T]. */
static gram_status cauchy_fit(gram_context *ctx, double T, int J, double *a_out, double *b_out, double *err_out)
{
    if (!(T > 0) || !(T <= CAUCHY_MAX_T))
        return gram__fail(ctx, GRAM_EINVAL,
                          "private kernels: cauchy needs diameter/bandwidth in (0, %g], got %g (raise the bandwidth)",
                          CAUCHY_MAX_T, T);
    const int64_t G = 1001;
    long double b[MAX_TERMS], M[MAX_TERMS * MAX_TERMS] = {0}, c[MAX_TERMS] = {0};
    const long double blo = 0.5L / T < 0.5L ? 0.5L / T : 0.5L, bhi = 4 * blo > 8 ? 4 * blo : 8;
    for (int j = 0; j < J; j++) b[j] = J == 1 ? blo : blo * powl(bhi / blo, (long double)j / (J - 1));
    long double *E = malloc((size_t)(2 * G * J) * sizeof(long double));
    if (!E) return gram__fail(ctx, GRAM_ENOMEM, "private kernels: out of memory");
    for (int j = 0; j < J; j++) grid_exps(T, G, b[j], E + j * 2 * G);
    for (int64_t i = 0; i < 2 * G; i++) {
        const long double t = grid_t(T, G, i), f = 1.0L / (1.0L + t * t);
        for (int p = 0; p < J; p++) {
            const long double ep = E[p * 2 * G + i];
            c[p] += ep * f / (2 * G);
            for (int q = 0; q <= p; q++) M[p * J + q] += ep * E[q * 2 * G + i] / (2 * G);
        }
    }
    free(E);
    for (int p = 0; p < J; p++)
        for (int q = p + 1; q < J; q++) M[p * J + q] = M[q * J + p];
    long double best[MAX_TERMS], best_err = -1, best_l1 = 0;
    for (int e10 = 3; e10 <= 10; e10++) {
        long double a[MAX_TERMS];
        if (!ridge_solve(J, M, c, powl(10.0L, -e10), a)) continue;
        long double l1 = 0;
        for (int j = 0; j < J; j++) l1 += fabsl(a[j]);
        long double err;
        gram_status st = cauchy_max_err(ctx, T, J, a, b, &err);
        if (st) return st;
        /* the first candidate is kept whatever its Σ|a| so that some fit is always returned */
        const int ok = l1 <= CAUCHY_MAX_L1, best_ok = best_err >= 0 && best_l1 <= CAUCHY_MAX_L1;
        if (best_err < 0 || (ok && (!best_ok || err < best_err)) || (!ok && !best_ok && l1 < best_l1)) {
            memcpy(best, a, sizeof(long double) * (size_t)J);
            best_err = err;
            best_l1 = l1;
        }
    }
    if (best_err < 0) return gram__fail(ctx, GRAM_EINTERNAL, "private kernels: the cauchy fit failed (T = %g)", T);
    for (int j = 0; j < J; j++) {
        a_out[j] = (double)best[j];
        b_out[j] = (double)b[j];
    }
    /* the error of the rounded coefficients, which are what the query uses */
    long double ad[MAX_TERMS], bd[MAX_TERMS];
    for (int j = 0; j < J; j++) {
        ad[j] = a_out[j];
        bd[j] = b_out[j];
    }
    long double err;
    gram_status st = cauchy_max_err(ctx, T, J, ad, bd, &err);
    *err_out = (double)err;
    return st;
}

gram_status gram__private_cauchy_coefficients(gram_context *ctx, const gram_private_sketch *s, double *a,
                                              double *b, double *max_err)
{
    gram_status st = check_params(ctx, s);
    if (st) return st;
    if (s->similarity != GRAM_PRIVATE_CAUCHY)
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: coefficients exist for cauchy only");
    return cauchy_fit(ctx, cauchy_T(s), s->n_terms, a, b, max_err);
}

/* ---- the plan: projection and maps ---------------------------------------------------------- */

/* Builds the projection and the J maps from the public fields; a, b are the cauchy coefficients
 * (ignored otherwise). */
static gram_status plan_make(gram_context *ctx, const gram_private_sketch *s, const double *a, const double *b,
                             kplan **out)
{
    *out = NULL;
    kplan *pl = calloc(1, sizeof *pl);
    if (!pl) return gram__fail(ctx, GRAM_ENOMEM, "private kernels: out of memory");
    pl->d = s->dim;
    pl->k = eff_k(s);
    pl->R = s->n_components;
    pl->J = n_terms_of(s);
    gram_status st = GRAM_OK;
    if (pl->k < pl->d) {
        pl->P = malloc((size_t)(pl->k * pl->d) * sizeof(double));
        if (!pl->P) {
            st = gram__fail(ctx, GRAM_ENOMEM, "private kernels: out of memory for the %lld x %lld projection",
                            (long long)pl->k, (long long)pl->d);
            plan_free(pl);
            return st;
        }
        const double scale = 1.0 / sqrt((double)pl->k);
        for (int64_t i = 0; i < pl->k; i++) {
            gram__rng r;
            gram__rng_init(&r, s->seed, JL_STREAM + (uint64_t)i);
            for (int64_t j = 0; j < pl->d; j++) pl->P[i * pl->d + j] = gram__rng_normal(&r) * scale;
        }
    }
    long double l1 = 0;
    for (int j = 0; j < pl->J; j++) {
        pl->a[j] = s->similarity == GRAM_PRIVATE_CAUCHY ? a[j] : 1.0;
        pl->b[j] = s->similarity == GRAM_PRIVATE_CAUCHY ? b[j] : 1.0;
        if (!isfinite(pl->a[j]) || !(pl->b[j] > 0) || !isfinite(pl->b[j])) {
            st = gram__fail(ctx, GRAM_EINVAL, "private kernels: cauchy term %d has a = %g, b = %g (need finite a, b > 0)",
                            j, pl->a[j], pl->b[j]);
            plan_free(pl);
            return st;
        }
        l1 += fabsl((long double)pl->a[j]);
    }
    if (!(l1 > 0)) {
        plan_free(pl);
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: every cauchy coefficient is 0");
    }
    for (int j = 0; j < pl->J; j++) {
        pl->w[j] = (double)(fabsl((long double)pl->a[j]) / l1);
        pl->coef[j] = pl->w[j] > 0 ? pl->a[j] / pl->w[j] : 0.0;
        /* gram's gaussian is exp(-r²/2), r = |x-y|/ℓ: ℓ = σ/√2 gives exp(-|x-y|²/σ²); laplacian is
         * exp(-r): ℓ = σ/b_j gives exp(-b_j|x-y|/σ) */
        const double ell = s->similarity == GRAM_PRIVATE_GAUSSIAN ? s->bandwidth / sqrt(2.0) : s->bandwidth / pl->b[j];
        const gram_family fam = s->similarity == GRAM_PRIVATE_GAUSSIAN ? GRAM_GAUSSIAN : GRAM_LAPLACIAN;
        if (!(ell > 0) || !isfinite(ell)) {
            plan_free(pl);
            return gram__fail(ctx, GRAM_EINVAL, "private kernels: term %d's lengthscale %g is not usable", j, ell);
        }
        gram_kernel *kern = NULL;
        st = gram_kernel_create(ctx, fam, 1, &ell, 0, NULL, &kern);
        if (!st) st = gram_features_create(ctx, kern, pl->k, GRAM_FEATURES_RFF, pl->R, term_seed(s->seed, j), &pl->maps[j]);
        gram_kernel_destroy(kern);
        if (st) {
            plan_free(pl);
            return st;
        }
    }
    *out = pl;
    return GRAM_OK;
}

/* Rows per block: a block's features (B×R doubles) about 1 MiB. */
static int64_t block_rows(int64_t R)
{
    int64_t B = ((int64_t)1 << 17) / R;
    return B < 16 ? 16 : B > 4096 ? 4096 : B;
}

/* Z (nb×k) = rows X (nb×d) projected, or X itself when there is no projection. The callers run
 * their blocks with OpenBLAS single-threaded (gram__blas_serial_begin): a block's product is small,
 * and OpenBLAS's threads spent most of a fit yielding to each other on a busy machine (perf). */
static const double *project(const kplan *pl, const double *X, int64_t nb, double *Z)
{
    if (!pl->P) return X;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)pl->k, (int)pl->d, 1.0, X, (int)pl->d, pl->P,
                (int)pl->d, 0.0, Z, (int)pl->k);
    return Z;
}

/* ---- the statistic ---------------------------------------------------------------------------- */

/* The per-row bounds of the module comment, with their margin. */
typedef struct rowbound {
    uint64_t l1;
    unsigned __int128 l2sq;
    long double sum_w, sum_w2;
} rowbound;

static rowbound row_bound(const kplan *pl)
{
    rowbound rb;
    long double sw = 0, sw2 = 0;
    for (int j = 0; j < pl->J; j++) {
        sw += pl->w[j];
        sw2 += (long double)pl->w[j] * pl->w[j];
    }
    const long double JR = (long double)pl->J * (long double)pl->R, rootR = sqrtl((long double)pl->R);
    const long double lin = ldexpl(rootR * sw, FINE_BITS) * (1 + BOUND_MARGIN);
    rb.l1 = (uint64_t)floorl(lin + JR / 2) + 1;
    rb.l2sq = (unsigned __int128)floorl(ldexpl(sw2, 2 * FINE_BITS) * (1 + BOUND_MARGIN) + lin + JR / 4) + 1;
    rb.sum_w = sw;
    rb.sum_w2 = sw2;
    return rb;
}

static void row_norms(const int64_t *q, int64_t m, uint64_t *l1, unsigned __int128 *l2sq)
{
    uint64_t a = 0;
    unsigned __int128 b = 0;
    for (int64_t i = 0; i < m; i++) {
        const uint64_t u = (uint64_t)(q[i] < 0 ? -q[i] : q[i]);
        a += u;
        b += (unsigned __int128)u * u;
    }
    *l1 = a;
    *l2sq = b;
}

/* Quantises row i's features of term j into q (R values): round(2^32·w_j·φ·shrink). */
static void quantise(const double *phi, int64_t R, double w, double shrink, int64_t *q)
{
    const double scale = ldexp(w, FINE_BITS) * shrink;
    for (int64_t r = 0; r < R; r++) q[r] = llround(phi[r] * scale);
}

/* A row whose quantised features break the bound is requantised smaller (from its features made
 * again one row at a time), and zeroed if that fails: the bound then holds for every row whatever
 * the floating point did. */
static gram_status enforce_row(gram_context *ctx, const kplan *pl, const rowbound *rb, const double *z, int64_t *q)
{
    const int64_t R = pl->R, m = (int64_t)pl->J * R;
    uint64_t l1;
    unsigned __int128 l2sq;
    row_norms(q, m, &l1, &l2sq);
    if (l1 <= rb->l1 && l2sq <= rb->l2sq) return GRAM_OK;
    double *phi = malloc((size_t)R * sizeof(double));
    if (!phi) return gram__fail(ctx, GRAM_ENOMEM, "private kernels: out of memory");
    double shrink = 1.0;
    for (int tries = 0; tries < 4 && (l1 > rb->l1 || l2sq > rb->l2sq); tries++) {
        const double f1 = (double)rb->l1 / (double)l1, f2 = sqrt((double)rb->l2sq / (double)l2sq);
        shrink *= (f1 < f2 ? f1 : f2) * (1 - 1e-9);
        for (int j = 0; j < pl->J; j++) {
            gram_array Zr = gram_array_f64(z, 1, pl->k), Pr = gram_array_f64(phi, 1, R);
            gram_status st = gram_features_transform(ctx, pl->maps[j], &Zr, &Pr);
            if (st) {
                wipe(phi, (size_t)R * sizeof(double));
                free(phi);
                return st;
            }
            quantise(phi, R, pl->w[j], shrink, q + j * R);
        }
        row_norms(q, m, &l1, &l2sq);
    }
    if (l1 > rb->l1 || l2sq > rb->l2sq) memset(q, 0, (size_t)m * sizeof(int64_t));
    wipe(phi, (size_t)R * sizeof(double));
    free(phi);
    return GRAM_OK;
}

/* The largest n whose sums cannot leave int64: |q| ≤ 2^32·w/√(R/2)·(1 + margin) + 1/2 ≤ 2^32 + 2 */
#define MAX_ROWS (INT64_MAX / (((int64_t)1 << FINE_BITS) + 2))

static gram_status compute_statistic(gram_context *ctx, const kplan *pl, const double *X, int64_t n, int64_t *v,
                                     const rowbound *rb)
{
    const int64_t R = pl->R, J = pl->J, m = J * R, B = block_rows(R);
    double *Z = pl->P ? malloc((size_t)(B * pl->k) * sizeof(double)) : NULL;
    double *phi = malloc((size_t)(B * R) * sizeof(double));
    int64_t *q = malloc((size_t)(B * m) * sizeof(int64_t));
    gram_status st = GRAM_OK;
    int blas = 0;
    if ((pl->P && !Z) || !phi || !q) {
        st = gram__fail(ctx, GRAM_ENOMEM, "private kernels: out of memory for a block of %lld rows", (long long)B);
        goto done;
    }
    memset(v, 0, (size_t)m * sizeof(int64_t));
    blas = gram__blas_serial_begin(0);
    for (int64_t i0 = 0; i0 < n; i0 += B) {
        const int64_t nb = n - i0 < B ? n - i0 : B;
        const double *zb = project(pl, X + i0 * pl->d, nb, Z);
        for (int64_t j = 0; j < J; j++) {
            gram_array Za = gram_array_f64(zb, nb, pl->k), Pa = gram_array_f64(phi, nb, R);
            if ((st = gram_features_transform(ctx, pl->maps[j], &Za, &Pa))) goto done;
            for (int64_t i = 0; i < nb; i++) quantise(phi + i * R, R, pl->w[j], 1.0, q + i * m + j * R);
        }
        for (int64_t i = 0; i < nb; i++) {
            if ((st = enforce_row(ctx, pl, rb, zb + i * pl->k, q + i * m))) goto done;
            const int64_t *qi = q + i * m;
            for (int64_t r = 0; r < m; r++) v[r] += qi[r];
        }
    }
done:
    gram__blas_serial_end(blas);
    /* the rows' projections and features are as private as the rows */
    if (Z) wipe(Z, (size_t)(B * pl->k) * sizeof(double));
    if (phi) wipe(phi, (size_t)(B * R) * sizeof(double));
    if (q) wipe(q, (size_t)(B * m) * sizeof(int64_t));
    free(Z);
    free(phi);
    free(q);
    return st;
}

/* Fills st (v malloc'ed) for X under the plan; text (if not NULL) gets the derivation. */
static gram_status statistic_with(gram_context *ctx, const gram_private_sketch *s, const kplan *pl, const double *X,
                                  int64_t n, gram__statistic *st, char *text, size_t text_size)
{
    memset(st, 0, sizeof *st);
    if (n < 0) return gram__fail(ctx, GRAM_EINVAL, "private kernels: n must be >= 0, got %lld", (long long)n);
    if (n > MAX_ROWS)
        return gram__fail(ctx, GRAM_EOVERFLOW,
                          "private kernels: n = %lld rows is more than the exact 64-bit sums allow (%lld)", (long long)n,
                          (long long)MAX_ROWS);
    const int64_t m = (int64_t)pl->J * pl->R;
    const rowbound rb = row_bound(pl);
    int64_t *v = malloc((size_t)m * sizeof(int64_t));
    if (!v) return gram__fail(ctx, GRAM_ENOMEM, "private kernels: out of memory for %lld values", (long long)m);
    gram_status rc = compute_statistic(ctx, pl, X, n, v, &rb);
    if (rc) {
        wipe(v, (size_t)m * sizeof(int64_t));
        free(v);
        return rc;
    }
    const int replace = s->neighbours == GRAM_PRIVATE_REPLACE;
    st->m = m;
    st->v = v;
    st->unit = ldexp(1.0, -FINE_BITS);
    st->sens_l1 = replace ? 2 * rb.l1 : rb.l1;
    /* sqrt of an integer below 2^67 in long double, then rounded up to a double */
    long double l2 = sqrtl((long double)rb.l2sq) * (replace ? 2 : 1);
    double l2d = (double)l2;
    if ((long double)l2d < l2) l2d = nextafter(l2d, INFINITY);
    st->sens_l2 = nextafter(l2d, INFINITY);
    st->allow_coarsen = 1;
    if (text) {
        char wtxt[128] = "";
        if (pl->J > 1) snprintf(wtxt, sizeof wtxt, ", w_j = |a_j|/sum|a| (sum w = %.6Lg, sum w^2 = %.6Lg)", rb.sum_w, rb.sum_w2);
        snprintf(text, text_size,
                 "%s; released: the sum over rows of %d x %lld random Fourier features (|cos|+|sin| <= sqrt(2) per "
                 "pair, |phi|_2 = 1%s), each rounded to the grid 2^-32; per row l1 <= 2^32*sqrt(R)*sum w + J*R/2 = "
                 "%llu units, l2 <= sqrt(2^64*sum w^2 + 2^32*sqrt(R)*sum w + J*R/4) = %.10Lg units (+2^-30 "
                 "margin; enforced per row); sensitivity %s the row bound: l1 <= %llu, l2 <= %.17g units of 2^-32",
                 replace ? "replace-one row" : "add/remove one row", (int)pl->J, (long long)pl->R, wtxt,
                 (unsigned long long)rb.l1, sqrtl((long double)rb.l2sq), replace ? "= 2 x" : "=",
                 (unsigned long long)st->sens_l1, st->sens_l2);
    }
    return GRAM_OK;
}

static gram_status kern_statistic(gram_context *ctx, const gram_private_sketch *s, const double *X, int64_t n,
                                  gram__statistic *st)
{
    memset(st, 0, sizeof *st);
    gram_status rc = check_params(ctx, s);
    if (rc) return rc;
    double a[MAX_TERMS], b[MAX_TERMS], err = 0;
    if (s->similarity == GRAM_PRIVATE_CAUCHY && (rc = cauchy_fit(ctx, cauchy_T(s), s->n_terms, a, b, &err))) return rc;
    kplan *pl = NULL;
    if ((rc = plan_make(ctx, s, a, b, &pl))) return rc;
    rc = statistic_with(ctx, s, pl, X, n, st, NULL, 0);
    plan_free(pl);
    return rc;
}

static gram_status kern_fit(gram_context *ctx, gram_private_sketch *s, const double *X, int64_t n, gram__csprng *r)
{
    gram_status rc = check_params(ctx, s);
    if (rc) return rc;
    const int32_t J = n_terms_of(s);
    double a[MAX_TERMS], b[MAX_TERMS], err = 0;
    if (s->similarity == GRAM_PRIVATE_CAUCHY && (rc = cauchy_fit(ctx, cauchy_T(s), J, a, b, &err))) return rc;
    kplan *pl = NULL;
    if ((rc = plan_make(ctx, s, a, b, &pl))) return rc;
    gram__statistic st;
    char text[sizeof s->sensitivity];
    rc = statistic_with(ctx, s, pl, X, n, &st, text, sizeof text);
    plan_free(pl);
    if (rc) return rc;
    double *values = malloc((size_t)st.m * sizeof(double));
    double *params = s->similarity == GRAM_PRIVATE_CAUCHY ? malloc((size_t)(2 * J) * sizeof(double)) : NULL;
    gram__release_record rec;
    memset(&rec, 0, sizeof rec);
    if (!values || (s->similarity == GRAM_PRIVATE_CAUCHY && !params))
        rc = gram__fail(ctx, GRAM_ENOMEM, "private kernels: out of memory for %lld values", (long long)st.m);
    else
        rc = gram__release(ctx, &st, s->eps_main, s->delta_main, r, values, &rec);
    wipe(st.v, (size_t)st.m * sizeof(int64_t)); /* the exact statistic is never kept */
    free(st.v);
    if (rc) {
        free(values);
        free(params);
        return rc;
    }
    free(s->values);
    free(s->params);
    s->values = values;
    s->n_values = st.m;
    s->params = params;
    s->n_params = params ? 2 * J : 0;
    if (params) {
        memcpy(params, a, sizeof(double) * (size_t)J);
        memcpy(params + J, b, sizeof(double) * (size_t)J);
    }
    s->rec = rec;
    s->approx_error = s->similarity == GRAM_PRIVATE_CAUCHY ? err : 0.0;
    memcpy(s->sensitivity, text, sizeof text);
    return GRAM_OK;
}

/* ---- prepare and query -------------------------------------------------------------------------- */

static gram_status kern_prepare(gram_context *ctx, gram_private_sketch *s)
{
    gram_status rc = check_params(ctx, s);
    if (rc) return rc;
    const int32_t J = n_terms_of(s);
    if (s->n_values != (int64_t)J * s->n_components || !s->values)
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: the sketch has %lld values, expected %d x %lld",
                          (long long)s->n_values, (int)J, (long long)s->n_components);
    const int cauchy = s->similarity == GRAM_PRIVATE_CAUCHY;
    if (cauchy ? (s->n_params != 2 * J || !s->params) : s->n_params != 0)
        return gram__fail(ctx, GRAM_EINVAL, "private kernels: the sketch has %lld parameters, expected %d",
                          (long long)s->n_params, cauchy ? 2 * (int)J : 0);
    kplan *pl = NULL;
    if ((rc = plan_make(ctx, s, cauchy ? s->params : NULL, cauchy ? s->params + J : NULL, &pl))) return rc;
    if (s->free_cache) s->free_cache(s->cache);
    s->cache = pl;
    s->free_cache = plan_free;
    return GRAM_OK;
}

static gram_status kern_query(gram_context *ctx, const gram_private_sketch *s, const double *Y, int64_t m, double *out)
{
    const kplan *pl = s->cache;
    if (!pl) return gram__fail(ctx, GRAM_EINVAL, "private kernels: the sketch is not prepared");
    if (m <= 0) return GRAM_OK;
    const int64_t R = pl->R, B = block_rows(R);
    double *Z = pl->P ? malloc((size_t)(B * pl->k) * sizeof(double)) : NULL;
    double *phi = malloc((size_t)(B * R) * sizeof(double));
    gram_status st = GRAM_OK;
    int blas = 0;
    if ((pl->P && !Z) || !phi) {
        st = gram__fail(ctx, GRAM_ENOMEM, "private kernels: out of memory for a block of %lld queries", (long long)B);
        goto done;
    }
    blas = gram__blas_serial_begin(0);
    for (int64_t i0 = 0; i0 < m; i0 += B) {
        const int64_t nb = m - i0 < B ? m - i0 : B;
        const double *zb = project(pl, Y + i0 * pl->d, nb, Z);
        for (int j = 0; j < pl->J; j++) {
            gram_array Za = gram_array_f64(zb, nb, pl->k), Pa = gram_array_f64(phi, nb, R);
            if ((st = gram_features_transform(ctx, pl->maps[j], &Za, &Pa))) goto done;
            cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)nb, (int)R, pl->coef[j], phi, (int)R, s->values + j * R, 1,
                        j == 0 ? 0.0 : 1.0, out + i0, 1);
        }
    }
done:
    gram__blas_serial_end(blas);
    free(Z);
    free(phi);
    return st;
}

const gram__private_family gram__private_kernels = {kern_fit, kern_statistic, kern_prepare, kern_query};
