/* Gaussian-process regression (Rasmussen & Williams 2006, Algorithm 2.1 and §5.4.1).
 *
 * One N×N buffer does all the work of a likelihood evaluation: K(X, X) + diag(noise) is written
 * into it by the engine, factored in place into L, then (for the gradient) overwritten by K⁻¹
 * (LAPACK dpotri on L) and then by W = Σ_t α_t α_tᵀ - T K⁻¹ (lower triangle). The gradient
 * ∂LML/∂θ_p = ½ Σ_ij W_ij ∂K_ij/∂θ_p is then a sum over the lower triangle of pairs with the
 * kernel's analytic per-pair derivatives (gram__kernel_eval_grad), in chunks of rows on threads,
 * each chunk with its own partial sums added in chunk order: no N×N×P tensor, and the result does
 * not depend on the thread count.
 */
#include "regress.h"

#include "../base/rng.h"
#include "../linalg/linalg.h"
#include "../optim/lbfgsb.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define GRAD_ROWS 32   /* rows of the lower triangle per gradient chunk */
#define GRAD_BLOCK 128 /* pairs per forward/backward pass of the kernel program */

void gram_gp_options_init(gram_gp_options *opt)
{
    if (!opt) return;
    memset(opt, 0, sizeof *opt);
    opt->n_alpha = 1;
    opt->alpha = NULL;
    opt->max_iter = 15000;
}

/* ---- inputs ------------------------------------------------------------------------------------ */

gram_status gram__regress_copy(gram_context *ctx, const gram_array *a, const char *what, double **out)
{
    *out = NULL;
    gram_status s;
    if ((s = gram__check_array(ctx, a, what))) return s;
    if ((s = gram__check_finite(ctx, a, what))) return s;
    size_t bytes;
    int64_t cnt;
    if (!gram__mul_i64(a->rows, a->cols, &cnt) || !gram__bytes(cnt, sizeof(double), &bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: %lld x %lld is too large", what,
                          (long long)a->rows, (long long)a->cols);
    double *p = gram__alloc(bytes ? bytes : sizeof(double));
    if (!p) return gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory copying %zu bytes", what, bytes);
    for (int64_t i = 0; i < a->rows; i++)
        for (int64_t j = 0; j < a->cols; j++) p[i * a->cols + j] = gram__get(a, i, j);
    *out = p;
    return GRAM_OK;
}

gram_status gram__regress_check_out(gram_context *ctx, const gram_array *out, int64_t rows,
                                    int64_t cols, const char *name)
{
    gram_status s;
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "%s is NULL", name);
    if ((s = gram__check_array(ctx, out, name))) return s;
    if (out->rows != rows || out->cols != cols)
        return gram__fail(ctx, GRAM_ESHAPE, "%s must be %lld x %lld, got %lld x %lld", name,
                          (long long)rows, (long long)cols, (long long)out->rows,
                          (long long)out->cols);
    return GRAM_OK;
}

/* ---- the likelihood ---------------------------------------------------------------------------- */

typedef struct lml_problem {
    int64_t n, d, t;
    const double *X, *Y;
    const double *noise;
    int64_t n_noise;
} lml_problem;

/* A ← K(X, X) + diag(noise) + jitter·I (lower triangle). A kernel that overflows for finite inputs
 * (a linear or polynomial kernel at |x| ~ 1e155) leaves inf or NaN here, and OpenBLAS's dpotrf
 * factors a NaN pivot without complaint: refused here, before anything is built on it. */
static gram_status build_k(gram_context *ctx, const gram_kernel *k, const lml_problem *pb, double jitter,
                           double *A)
{
    int64_t n = pb->n;
    gram_array Xa = gram_array_f64(pb->X, n, pb->d);
    gram_array Aa = gram_array_f64(A, n, n);
    gram_status s = gram__kernel_matrix_lower(ctx, k, &Xa, &Aa); /* only the lower triangle is used */
    if (s) return s;
    for (int64_t i = 0; i < n; i++) {
        A[i * n + i] += pb->noise[pb->n_noise == 1 ? 0 : i] + jitter;
        for (int64_t j = 0; j <= i; j++)
            if (!isfinite(A[i * n + j]))
                return gram__fail(ctx, GRAM_EDOMAIN,
                                  "the kernel matrix K(X, X) is not finite at row %lld, column %lld "
                                  "(%g): the kernel overflows for these inputs; scale X (or the "
                                  "kernel's parameters)",
                                  (long long)i, (long long)j, A[i * n + j]);
    }
    return GRAM_OK;
}

int gram__gp_pivot_ok(double lii, double kii)
{
    /* A pivot of a genuine factorisation is a difference of numbers of K_ii's size, so it is 0
     * (refused) or above rounding's reach; one below eps²·K_ii has no digit that is not noise and
     * makes the triangular solves overflow. */
    return isfinite(lii) && lii > 0.0 && lii * lii >= DBL_EPSILON * DBL_EPSILON * kii;
}

/* Checks the factor LAPACK left in A against the diagonal of K it came from (kd). */
static gram_status check_factor(gram_context *ctx, int64_t n, const double *A, const double *kd)
{
    for (int64_t i = 0; i < n; i++)
        if (!gram__gp_pivot_ok(A[i * n + i], kd[i]))
            return gram__fail(ctx, GRAM_ENOTPD,
                              "the kernel matrix K(X, X) + alpha*I is numerically singular: pivot "
                              "%lld of %lld is %.6g for a diagonal entry %.6g; add noise to the "
                              "diagonal (alpha) or enable the jitter schedule",
                              (long long)i, (long long)n, A[i * n + i] * A[i * n + i], kd[i]);
    return GRAM_OK;
}

/* alpha (n×t) ← L⁻ᵀ L⁻¹ Y; returns the log marginal likelihood. */
static double solve_lml(const lml_problem *pb, const double *L, double *alpha)
{
    int64_t n = pb->n, t = pb->t;
    memcpy(alpha, pb->Y, (size_t)(n * t) * sizeof *alpha);
    gram__trsm_lower(n, t, L, n, alpha, t, 0);
    gram__trsm_lower(n, t, L, n, alpha, t, 1);
    double fit = 0.0, logdet = 0.0;
    for (int64_t i = 0; i < n; i++) {
        logdet += log(L[i * n + i]);
        for (int64_t c = 0; c < t; c++) fit += pb->Y[i * t + c] * alpha[i * t + c];
    }
    return -0.5 * fit - (double)t * logdet - (double)t * 0.5 * (double)n * GRAM__LOG_2PI;
}

/* grad ← ½ Σ_ij W_ij ∂K_ij/∂θ, W in the lower triangle of A. */
static gram_status grad_tiles(gram_context *ctx, const gram_kernel *k, const lml_problem *pb,
                              const double *A, double *grad)
{
    int64_t n = pb->n, d = pb->d, P = k->n_hyper;
    int64_t chunks = (n + GRAD_ROWS - 1) / GRAD_ROWS;
    if (P == 0) return GRAM_OK;
    double *part = gram__calloc((size_t)(chunks * P), sizeof *part);
    if (!part) return gram__fail(ctx, GRAM_ENOMEM, "log marginal likelihood gradient: out of memory");
    gram_arch arch;
    gram_status st = gram__resolve_arch(ctx, &arch);
    if (st) {
        gram__free(part);
        return st;
    }
    void (*vexp)(int64_t, const double *, double *) = gram__ukr_for(arch)->exp_f64;
    int threads = gram__threads(ctx);
    if (n < 128) threads = 1; /* a few thousand pairs: waking threads costs more than it saves */
    threads = gram__team_size(threads);
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        gram__grad_ws ws;
        double wblk[GRAD_BLOCK];
        int ok = gram__grad_ws_init(&ws, k, GRAD_BLOCK, vexp) == GRAM_OK;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
        /* Chunks of late rows hold more pairs: hand them out dynamically; each chunk's sums go to
         * its own slot, so the result does not depend on which thread ran it. */
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = chunks - 1; c >= 0; c--) {
            if (!ok) continue;
            double *acc = part + c * P;
            int64_t i1 = (c + 1) * GRAD_ROWS < n ? (c + 1) * GRAD_ROWS : n;
            for (int64_t i = c * GRAD_ROWS; i < i1; i++) {
                const double *xi = pb->X + i * d, *Wi = A + i * n;
                for (int64_t j0 = 0; j0 <= i; j0 += GRAD_BLOCK) {
                    int B = (int)(i + 1 - j0 < GRAD_BLOCK ? i + 1 - j0 : GRAD_BLOCK);
                    for (int j = 0; j < B; j++) wblk[j] = j0 + j == i ? 0.5 * Wi[j0 + j] : Wi[j0 + j];
                    gram__kernel_grad_block(k, &ws, d, xi, pb->X + j0 * d, d, B, (int)(i - j0), wblk, acc);
                }
            }
        }
        gram__grad_ws_free(&ws);
    }
    if (failed) {
        gram__free(part);
        return gram__fail(ctx, GRAM_ENOMEM, "log marginal likelihood gradient: out of memory");
    }
    for (int64_t p = 0; p < P; p++) grad[p] = 0.0;
    for (int64_t c = 0; c < chunks; c++)
        for (int64_t p = 0; p < P; p++) grad[p] += part[c * P + p];
    gram__free(part);
    return GRAM_OK;
}

/* The algebra after K is built, shared by the kernel path and the precomputed one: A holds
 * K + noise (lower triangle) on entry; factor it in place (rebuild refills A when LAPACK failed,
 * so that gram's own Cholesky can name the pivot), check the factor and solve: A ← L,
 * alpha ← K⁻¹Y, *lml. Nothing that is not finite gets through: GRAM_ENOTPD (the factor) or
 * GRAM_EDOMAIN (overflow) instead. */
typedef gram_status (*rebuild_fn)(gram_context *ctx, void *user, double *A);

static gram_status factor_solve(gram_context *ctx, const lml_problem *pb, double *A, rebuild_fn rebuild,
                                void *user, double *alpha, double *lml)
{
    gram_status s;
    int64_t n = pb->n, t = pb->t;
    double *kd = gram__alloc((size_t)n * sizeof *kd);
    if (!kd) return gram__fail(ctx, GRAM_ENOMEM, "log marginal likelihood: out of memory");
    for (int64_t i = 0; i < n; i++) kd[i] = A[i * n + i];
    if (gram__chol_lapack(n, A, n) != 0) {
        /* LAPACK does not say which pivot failed: factor again with gram's own Cholesky, which
         * names it (and decides, should rounding make the two disagree) */
        if ((s = rebuild(ctx, user, A))) goto done;
        if ((s = gram__chol_dense(ctx, n, A, n, "the kernel matrix K(X, X) + alpha*I",
                                  "add noise to the diagonal (alpha) or enable the jitter schedule",
                                  NULL))) goto done;
    }
    if ((s = check_factor(ctx, n, A, kd))) goto done;
    *lml = solve_lml(pb, A, alpha);
    /* Finite pivots above the floor can still make K⁻¹y (or yᵀK⁻¹y) overflow: the scale of y
     * against K's smallest eigenvalues, not a factorisation that failed. */
    for (int64_t i = 0; i < n * t && isfinite(*lml); i++)
        if (!isfinite(alpha[i])) *lml = NAN;
    if (!isfinite(*lml)) {
        double big = 0.0;
        for (int64_t i = 0; i < n * t; i++) big = fmax(big, fabs(pb->Y[i]));
        s = gram__fail(ctx, GRAM_EDOMAIN, "the log marginal likelihood overflows: K^-1 y is not finite "
                                          "for targets up to %g; scale y (normalize_y) or add noise to "
                                          "the diagonal (alpha)", big);
    }
done:
    gram__free(kd);
    return s;
}

/* A (holding L) ← W = Σ_t α_t α_tᵀ - T K⁻¹, lower triangle. */
static gram_status form_w(gram_context *ctx, const lml_problem *pb, double *A, const double *alpha)
{
    int64_t n = pb->n, t = pb->t;
    gram_status s = gram__chol_inverse(ctx, n, A, n);
    if (s) return s;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double aa = 0.0;
            for (int64_t c = 0; c < t; c++) aa += alpha[i * t + c] * alpha[j * t + c];
            A[i * n + j] = aa - (double)t * A[i * n + j];
        }
    return GRAM_OK;
}

static gram_status check_grad(gram_context *ctx, int64_t P, const double *grad, const gram_kernel *k)
{
    for (int64_t p = 0; p < P; p++)
        if (!isfinite(grad[p])) {
            char name[32];
            snprintf(name, sizeof name, "theta[%lld]", (long long)p);
            return gram__fail(ctx, GRAM_EDOMAIN, "the gradient of the log marginal likelihood in %s "
                                                 "overflows; scale y (normalize_y) or add noise to "
                                                 "the diagonal (alpha)",
                              k ? gram_kernel_hyper_name(k, p) : name);
        }
    return GRAM_OK;
}

typedef struct kernel_rebuild {
    const gram_kernel *k;
    const lml_problem *pb;
    double jitter;
} kernel_rebuild;

static gram_status rebuild_kernel(gram_context *ctx, void *user, double *A)
{
    kernel_rebuild *r = user;
    return build_k(ctx, r->k, r->pb, r->jitter, A);
}

/* The log marginal likelihood of kernel k (and its gradient when grad is not NULL) using A (n×n)
 * and alpha (n×t) as work space. On return without grad, A holds L (lower) and alpha holds K⁻¹Y. */
static gram_status lml_eval_blas(gram_context *ctx, const gram_kernel *k, const lml_problem *pb,
                                 double jitter, double *A, double *alpha, double *lml, double *grad)
{
    gram_status s;
    kernel_rebuild rb = {k, pb, jitter};
    if ((s = build_k(ctx, k, pb, jitter, A))) return s;
    if ((s = factor_solve(ctx, pb, A, rebuild_kernel, &rb, alpha, lml))) return s;
    if (!grad) return GRAM_OK;
    if ((s = form_w(ctx, pb, A, alpha))) return s;
    if ((s = grad_tiles(ctx, k, pb, A, grad))) return s;
    return check_grad(ctx, k->n_hyper, grad, k);
}

static gram_status lml_eval(gram_context *ctx, const gram_kernel *k, const lml_problem *pb,
                            double jitter, double *A, double *alpha, double *lml, double *grad)
{
    int saved = gram__blas_serial_begin(pb->n);
    gram_status s = lml_eval_blas(ctx, k, pb, jitter, A, alpha, lml, grad);
    gram__blas_serial_end(saved);
    return s;
}

/* ---- fitting ------------------------------------------------------------------------------------- */

typedef struct objective_data {
    gram_context *ctx;
    const gram_kernel *k; /* the template: values replaced by θ */
    const lml_problem *pb;
    double *A, *alpha, *grad;
    int64_t evals, max_evals;
} objective_data;

/* A likelihood that is not defined at θ (K not numerically positive definite, or overflowing):
 * -inf for the caller, +inf for the optimiser, as scikit-learn's; any other failure is an error. */
static int undefined_here(gram_status s) { return s == GRAM_ENOTPD || s == GRAM_EDOMAIN; }

/* -LML and its gradient for L-BFGS-B; +inf where the likelihood is not defined. */
static double objective(void *user, const double *theta, double *g, gram_status *status)
{
    objective_data *o = user;
    gram_context *ctx = o->ctx;
    int64_t P = o->k->n_hyper;
    o->evals++;
    if (ctx && ctx->progress && ctx->progress(ctx->progress_user, o->evals, o->max_evals)) {
        *status = gram__fail(ctx, GRAM_ECANCELLED, "gram_gp_fit: cancelled");
        return NAN;
    }
    gram_kernel *kt;
    gram_status s = gram_kernel_set_hyper(ctx, o->k, theta, &kt);
    if (s == GRAM_EINVAL) { /* exp(θ) out of range: not a usable point */
        gram__clear(ctx);
        return INFINITY;
    }
    if (s) {
        *status = s;
        return NAN;
    }
    double lml;
    s = lml_eval(ctx, kt, o->pb, 0.0, o->A, o->alpha, &lml, o->grad);
    gram_kernel_destroy(kt);
    if (undefined_here(s)) {
        gram__clear(ctx);
        return INFINITY;
    }
    if (s) {
        *status = s;
        return NAN;
    }
    for (int64_t p = 0; p < P; p++) g[p] = -o->grad[p];
    return -lml;
}

static void gp_free(gram_gp *gp)
{
    if (!gp) return;
    gram_kernel_destroy(gp->kernel);
    gram__free(gp->X);
    gram__free(gp->Y);
    gram__free(gp->noise);
    gram__free(gp->ymean);
    gram__free(gp->ystd);
    gram__free(gp->L);
    gram__free(gp->alpha);
    free(gp->starts);
    free(gp);
}

void gram_gp_destroy(gram_gp *gp) { gp_free(gp); }

/* Maximises the likelihood from the kernel's θ and n_restarts random starts; *best gets the θ
 * with the highest likelihood, and gp->starts each start's outcome. Where the likelihood is
 * defined at no start, *best is the kernel's θ projected into the bounds (what SciPy's L-BFGS-B
 * returns to scikit-learn there), and the final factorisation reports why. */
static gram_status optimize(gram_context *ctx, const gram_gp_options *opt, const gram_kernel *k,
                            const lml_problem *pb, gram_gp *gp, double *best)
{
    int64_t P = k->n_hyper;
    gram_status s = GRAM_OK;
    double *buf = gram__alloc((size_t)(5 * P + 1) * sizeof(double));
    gp->starts = calloc((size_t)opt->n_restarts + 1, 2 * sizeof *gp->starts);
    if (!buf || !gp->starts) {
        gram__free(buf);
        return gram__fail(ctx, GRAM_ENOMEM, "gram_gp_fit: out of memory");
    }
    double *lo = buf, *hi = lo + P, *theta = hi + P, *grad = theta + P, *theta0 = grad + P;
    gram_kernel_get_bounds(k, lo, hi);
    gram_kernel_get_hyper(k, theta0);
    for (int64_t p = 0; p < P; p++) {
        /* SciPy reads a NaN bound (scikit-learn's log of a bound <= 0 that is not 0) as none */
        if (isnan(lo[p])) lo[p] = -INFINITY;
        if (isnan(hi[p])) hi[p] = INFINITY;
        if (opt->n_restarts > 0 && !(isfinite(lo[p]) && isfinite(hi[p]))) {
            gram__free(buf);
            return gram__fail(ctx, GRAM_EINVAL,
                              "gram_gp_fit: restarts draw starting points inside the bounds, so every "
                              "bound must be finite; %s has log-bounds [%g, %g]",
                              gram_kernel_hyper_name(k, p), lo[p], hi[p]);
        }
        best[p] = theta0[p] < lo[p] ? lo[p] : theta0[p] > hi[p] ? hi[p] : theta0[p];
    }
    objective_data od = {ctx, k, pb, gp->L, gp->alpha, grad, 0, 0};
    gram__lbfgsb_options lo_opt;
    gram__lbfgsb_options_init(&lo_opt);
    if (opt->max_iter > 0) lo_opt.max_iter = opt->max_iter;
    od.max_evals = (int64_t)(opt->n_restarts + 1) * lo_opt.max_eval;
    double fbest = INFINITY;
    gram__rng rng;
    gram__rng_init(&rng, opt->seed, 0);
    for (int r = 0; r <= opt->n_restarts; r++) {
        if (r == 0) memcpy(theta, theta0, (size_t)P * sizeof *theta);
        else
            for (int64_t p = 0; p < P; p++) theta[p] = lo[p] + (hi[p] - lo[p]) * gram__rng_uniform(&rng);
        gram__lbfgsb_result res;
        s = gram__lbfgsb(ctx, (int)P, theta, lo, hi, objective, &od, &lo_opt, &res);
        gp->n_starts = r + 1;
        gp->starts[2 * r + 1] = res.iterations;
        gp->n_iter += res.iterations;
        if (s == GRAM_EDOMAIN) { /* the likelihood is not defined at this start: try the others */
            gp->starts[2 * r] = GRAM_GP_START_UNDEFINED;
            s = GRAM_OK;
            gram__clear(ctx);
            continue;
        }
        if (s) break;
        gp->starts[2 * r] = res.reason == GRAM__LBFGSB_MAX_ITER ? GRAM_GP_START_MAX_ITER
                          : res.reason == GRAM__LBFGSB_MAX_EVAL ? GRAM_GP_START_MAX_EVAL
                          : res.reason == GRAM__LBFGSB_LINE_SEARCH_FAILED ? GRAM_GP_START_ABNORMAL
                                                                            : GRAM_GP_START_CONVERGED;
        if (res.f < fbest) {
            fbest = res.f;
            memcpy(best, theta, (size_t)P * sizeof *best);
        }
    }
    gp->n_eval = od.evals;
    gram__free(buf);
    return s;
}

gram_status gram_gp_fit(gram_context *ctx, const gram_kernel *kernel, const gram_gp_options *opt_in,
                        const gram_array *X, const gram_array *Y, gram_gp **out)
{
    gram__clear(ctx);
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "gram_gp_fit: out is NULL");
    *out = NULL;
    if (!kernel) return gram__fail(ctx, GRAM_EINVAL, "gram_gp_fit: kernel is NULL");
    gram_gp_options opt;
    if (opt_in) opt = *opt_in;
    else gram_gp_options_init(&opt);
    gram_status s;
    if (!X || !Y) return gram__fail(ctx, GRAM_EINVAL, "gram_gp_fit: %s is NULL", !X ? "X" : "Y");
    if ((s = gram__check_array(ctx, X, "X")) || (s = gram__check_array(ctx, Y, "y"))) return s;
    int64_t n = X->rows, d = X->cols;
    if (n < 1)
        return gram__fail(ctx, GRAM_ESHAPE, "gram_gp_fit: X has %lld samples; at least 1 is needed",
                          (long long)n);
    if (kernel->dim && d != kernel->dim)
        return gram__fail(ctx, GRAM_ESHAPE,
                          "gram_gp_fit: X has %lld features but the kernel has %lld ARD lengthscales",
                          (long long)d, (long long)kernel->dim);
    gram_array Yc = *Y;
    if (Yc.rows == 1 && Yc.cols == n && n > 1) { /* a row vector of targets */
        Yc.rows = n;
        Yc.cols = 1;
        Yc.row_stride = Y->col_stride;
        Yc.col_stride = Y->row_stride;
    }
    if (Yc.rows != n)
        return gram__fail(ctx, GRAM_ESHAPE, "gram_gp_fit: X has %lld samples but y has %lld",
                          (long long)n, (long long)Yc.rows);
    if (Yc.cols < 1) return gram__fail(ctx, GRAM_ESHAPE, "gram_gp_fit: y has no targets (0 columns)");
    if (opt.n_alpha != 1 && opt.n_alpha != n)
        return gram__fail(ctx, GRAM_ESHAPE,
                          "gram_gp_fit: alpha must have 1 value or one per sample (%lld), got %lld",
                          (long long)n, (long long)opt.n_alpha);
    if (opt.n_restarts < 0 || opt.jitter_tries < 0 || opt.max_iter < 0)
        return gram__fail(ctx, GRAM_EINVAL, "gram_gp_fit: n_restarts, jitter_tries and max_iter must "
                                            "be >= 0");
    int64_t nn;
    size_t bytes;
    if (!gram__mul_i64(n, n, &nn) || !gram__bytes(nn, sizeof(double), &bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "gram_gp_fit: %lld samples: the %lld x %lld kernel "
                                               "matrix does not fit in memory", (long long)n,
                          (long long)n, (long long)n);

    gram_gp *gp = calloc(1, sizeof *gp);
    if (!gp) return gram__fail(ctx, GRAM_ENOMEM, "gram_gp_fit: out of memory");
    gp->n = n;
    gp->d = d;
    gp->t = Yc.cols;
    gp->normalize_y = opt.normalize_y != 0;
    gp->n_noise = opt.n_alpha;
    int64_t t = gp->t;
    if ((s = gram__regress_copy(ctx, X, "X", &gp->X)) || (s = gram__regress_copy(ctx, &Yc, "y", &gp->Y)))
        goto fail;
    gp->noise = gram__alloc((size_t)opt.n_alpha * sizeof(double));
    gp->ymean = gram__alloc((size_t)t * sizeof(double));
    gp->ystd = gram__alloc((size_t)t * sizeof(double));
    gp->alpha = gram__alloc((size_t)(n * t) * sizeof(double));
    gp->L = gram__alloc(bytes);
    if (!gp->noise || !gp->ymean || !gp->ystd || !gp->alpha || !gp->L) {
        s = gram__fail(ctx, GRAM_ENOMEM, "gram_gp_fit: out of memory for %lld samples (the kernel "
                                         "matrix needs %zu bytes)", (long long)n, bytes);
        goto fail;
    }
    for (int64_t i = 0; i < opt.n_alpha; i++) {
        double a = opt.alpha ? opt.alpha[i] : 1e-10;
        if (!isfinite(a) || a < 0.0) {
            s = gram__fail(ctx, GRAM_EINVAL, "gram_gp_fit: alpha[%lld] = %g; it must be finite and >= 0",
                           (long long)i, a);
            goto fail;
        }
        gp->noise[i] = a;
    }
    for (int64_t c = 0; c < t && gp->normalize_y; c++) {
        /* Mean and standard deviation of y/2^e, 2^e >= max |y|: exact scaling, so the same bits as
         * the plain formulas wherever those do not overflow (|y| ~ 1e154 squared, 1e308 summed). */
        double big = 0.0, m = 0.0, v = 0.0;
        int e = 0;
        for (int64_t i = 0; i < n; i++) big = fmax(big, fabs(gp->Y[i * t + c]));
        if (big > 0.0) frexp(big, &e);
        for (int64_t i = 0; i < n; i++) m += ldexp(gp->Y[i * t + c], -e);
        m /= (double)n;
        for (int64_t i = 0; i < n; i++) v += (ldexp(gp->Y[i * t + c], -e) - m) * (ldexp(gp->Y[i * t + c], -e) - m);
        v = sqrt(v / (double)n);
        /* scikit-learn's _handle_zeros_in_scale: a constant target keeps scale 1 */
        int constant = v < 10.0 * DBL_EPSILON * (fabs(m) > 1.0 ? fabs(m) : 1.0);
        for (int64_t i = 0; i < n; i++)
            gp->Y[i * t + c] = constant ? ldexp(ldexp(gp->Y[i * t + c], -e) - m, e)
                                        : (ldexp(gp->Y[i * t + c], -e) - m) / v;
        gp->ymean[c] = ldexp(m, e);
        gp->ystd[c] = constant ? 1.0 : ldexp(v, e);
        if (!isfinite(gp->ystd[c])) {
            s = gram__fail(ctx, GRAM_EDOMAIN, "gram_gp_fit: the standard deviation of target %lld "
                           "overflows (its values span more than the float64 range)", (long long)c);
            goto fail;
        }
    }
    for (int64_t c = 0; c < t && !gp->normalize_y; c++) {
        gp->ymean[c] = 0.0;
        gp->ystd[c] = 1.0;
    }

    lml_problem pb = {n, d, t, gp->X, gp->Y, gp->noise, gp->n_noise};
    gram_kernel *fitted = NULL;
    if (opt.optimize && kernel->n_hyper > 0) {
        double *best = gram__alloc((size_t)kernel->n_hyper * sizeof(double));
        if (!best) {
            s = gram__fail(ctx, GRAM_ENOMEM, "gram_gp_fit: out of memory");
            goto fail;
        }
        s = optimize(ctx, &opt, kernel, &pb, gp, best);
        if (!s) s = gram_kernel_set_hyper(ctx, kernel, best, &fitted);
        gram__free(best);
    } else {
        s = gram_kernel_copy(ctx, kernel, &fitted);
    }
    if (s) goto fail;
    gp->kernel = fitted;

    /* The final factorisation, with the opt-in jitter schedule. */
    s = lml_eval(ctx, gp->kernel, &pb, 0.0, gp->L, gp->alpha, &gp->lml, NULL);
    if (s == GRAM_ENOTPD && opt.jitter_tries > 0) {
        char msg[GRAM_MSG_SIZE];
        memcpy(msg, gram_context_message(ctx), sizeof msg);
        double mean_diag = 0.0;
        gram_array Xa = gram_array_f64(gp->X, n, d);
        double *diag = gram__alloc((size_t)n * sizeof(double));
        if (!diag) {
            s = gram__fail(ctx, GRAM_ENOMEM, "gram_gp_fit: out of memory");
            goto fail;
        }
        gram_array Da = gram_array_f64(diag, n, 1);
        s = gram_kernel_diag(ctx, gp->kernel, &Xa, &Da);
        for (int64_t i = 0; i < n && !s; i++) mean_diag += fabs(diag[i]) / (double)n;
        gram__free(diag);
        if (s) goto fail;
        if (!(mean_diag > 0.0)) mean_diag = 1.0;
        s = GRAM_ENOTPD;
        for (int tr = 0; tr < opt.jitter_tries && s == GRAM_ENOTPD; tr++) {
            gp->jitter = 1e-10 * mean_diag * pow(10.0, tr);
            s = lml_eval(ctx, gp->kernel, &pb, gp->jitter, gp->L, gp->alpha, &gp->lml, NULL);
        }
        if (s == GRAM_ENOTPD)
            s = gram__fail(ctx, GRAM_ENOTPD, "%s (still not positive definite with jitter %.3g after "
                                             "%d tries)", msg, gp->jitter, opt.jitter_tries);
    }
    if (s) goto fail;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) gp->L[i * n + j] = 0.0;
    *out = gp;
    return GRAM_OK;
fail:
    gp_free(gp);
    return s;
}

/* ---- accessors ----------------------------------------------------------------------------------- */

int64_t gram_gp_n(const gram_gp *gp) { return gp ? gp->n : 0; }
int64_t gram_gp_dim(const gram_gp *gp) { return gp ? gp->d : 0; }
int64_t gram_gp_n_targets(const gram_gp *gp) { return gp ? gp->t : 0; }
const gram_kernel *gram_gp_kernel(const gram_gp *gp) { return gp ? gp->kernel : NULL; }
double gram_gp_log_marginal_likelihood_value(const gram_gp *gp) { return gp ? gp->lml : NAN; }
double gram_gp_jitter(const gram_gp *gp) { return gp ? gp->jitter : NAN; }
int64_t gram_gp_n_iterations(const gram_gp *gp) { return gp ? gp->n_iter : 0; }
int64_t gram_gp_n_evaluations(const gram_gp *gp) { return gp ? gp->n_eval : 0; }
int64_t gram_gp_n_starts(const gram_gp *gp) { return gp ? gp->n_starts : 0; }

gram_status gram_gp_start(const gram_gp *gp, int64_t r, gram_gp_start_status *status, int64_t *iterations)
{
    if (!gp || r < 0 || r >= gp->n_starts) return GRAM_EINVAL;
    if (status) *status = (gram_gp_start_status)gp->starts[2 * r];
    if (iterations) *iterations = gp->starts[2 * r + 1];
    return GRAM_OK;
}

gram_status gram_gp_target_scaling(const gram_gp *gp, int64_t t, double *mean, double *scale)
{
    if (!gp || t < 0 || t >= gp->t || !mean || !scale) return GRAM_EINVAL;
    *mean = gp->ymean[t];
    *scale = gp->ystd[t];
    return GRAM_OK;
}

gram_status gram__regress_copy_out(const double *src, int64_t rows, int64_t cols, gram_array *out)
{
    if (!out || !out->data || out->rows != rows || out->cols != cols) return out ? GRAM_ESHAPE : GRAM_EINVAL;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) gram__put(out, i, j, src[i * cols + j]);
    return GRAM_OK;
}

gram_status gram_gp_get_x(const gram_gp *gp, gram_array *out)
{
    return gp ? gram__regress_copy_out(gp->X, gp->n, gp->d, out) : GRAM_EINVAL;
}
gram_status gram_gp_get_y(const gram_gp *gp, gram_array *out)
{
    return gp ? gram__regress_copy_out(gp->Y, gp->n, gp->t, out) : GRAM_EINVAL;
}
gram_status gram_gp_get_alpha(const gram_gp *gp, gram_array *out)
{
    return gp ? gram__regress_copy_out(gp->alpha, gp->n, gp->t, out) : GRAM_EINVAL;
}
gram_status gram_gp_get_cholesky(const gram_gp *gp, gram_array *out)
{
    return gp ? gram__regress_copy_out(gp->L, gp->n, gp->n, out) : GRAM_EINVAL;
}

/* ---- likelihood at θ ----------------------------------------------------------------------------- */

gram_status gram_gp_log_marginal_likelihood(gram_context *ctx, const gram_gp *gp, const double *theta,
                                            double *lml, double *grad)
{
    gram__clear(ctx);
    if (!gp || !lml) return gram__fail(ctx, GRAM_EINVAL, "gram_gp_log_marginal_likelihood: %s is NULL",
                                       !gp ? "gp" : "lml");
    int64_t P = gp->kernel->n_hyper, n = gp->n;
    gram_kernel *k = NULL;
    gram_status s;
    if (theta) {
        for (int64_t p = 0; p < P; p++)
            if (!isfinite(theta[p]))
                return gram__fail(ctx, GRAM_ENONFINITE,
                                  "gram_gp_log_marginal_likelihood: theta[%lld] is %g", (long long)p,
                                  theta[p]);
        s = gram_kernel_set_hyper(ctx, gp->kernel, theta, &k);
        if (s == GRAM_EINVAL) { /* exp(θ) not representable: no kernel there, as the optimiser sees it */
            gram__clear(ctx);
            *lml = -INFINITY;
            for (int64_t p = 0; grad && p < P; p++) grad[p] = 0.0;
            return GRAM_OK;
        }
        if (s) return s;
    } else if ((s = gram_kernel_copy(ctx, gp->kernel, &k))) {
        return s;
    }
    double *A = gram__alloc((size_t)(n * n) * sizeof(double));
    double *alpha = gram__alloc((size_t)(n * gp->t) * sizeof(double));
    if (!A || !alpha) {
        s = gram__fail(ctx, GRAM_ENOMEM, "gram_gp_log_marginal_likelihood: out of memory");
    } else {
        lml_problem pb = {n, gp->d, gp->t, gp->X, gp->Y, gp->noise, gp->n_noise};
        s = lml_eval(ctx, k, &pb, gp->jitter, A, alpha, lml, grad);
        if (undefined_here(s)) { /* as scikit-learn: -inf and a zero gradient */
            gram__clear(ctx);
            s = GRAM_OK;
            *lml = -INFINITY;
            if (grad)
                for (int64_t p = 0; p < P; p++) grad[p] = 0.0;
        }
    }
    gram__free(A);
    gram__free(alpha);
    gram_kernel_destroy(k);
    return s;
}

/* A posterior quantity that came out inf or NaN from finite data and a validated model: the kernel
 * overflowed between a query and the training points (or a factor is too close to singular for
 * these queries). An error, never a NaN returned as a result. */
static gram_status check_outputs(gram_context *ctx, const double *v, int64_t rows, int64_t cols,
                                 const char *what)
{
    for (int64_t i = 0; i < rows * cols; i++)
        if (!isfinite(v[i]))
            return gram__fail(ctx, GRAM_EDOMAIN,
                              "the posterior %s is not finite (%g): the kernel "
                              "overflows between these queries and the training points, or the "
                              "model's Cholesky factor is too close to singular for them",
                              what, v[i]);
    return GRAM_OK;
}

/* ---- precomputed kernel matrices ------------------------------------------------------------------ */

typedef struct matrix_rebuild {
    const gram_array *K;
    const double *noise;
    int64_t n_noise;
} matrix_rebuild;

/* A ← K + diag(noise) (lower triangle); a non-finite entry of K is GRAM_EDOMAIN, as an overflowing
 * kernel on the kernel path: the likelihood is not defined there. */
static gram_status rebuild_matrix(gram_context *ctx, void *user, double *A)
{
    matrix_rebuild *r = user;
    int64_t n = r->K->rows;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j <= i; j++) {
            double v = gram__get(r->K, i, j);
            if (!isfinite(v))
                return gram__fail(ctx, GRAM_EDOMAIN, "the kernel matrix K is not finite at row %lld, "
                                  "column %lld (%g)", (long long)i, (long long)j, v);
            A[i * n + j] = v;
        }
        A[i * n + i] += r->noise[r->n_noise == 1 ? 0 : i];
    }
    return GRAM_OK;
}

static gram_status check_noise(gram_context *ctx, const char *fn, int64_t n, int64_t n_alpha,
                               const double *alpha, double *one)
{
    if (n_alpha != 1 && n_alpha != n)
        return gram__fail(ctx, GRAM_ESHAPE, "%s: alpha must have 1 value or one per sample (%lld), got "
                          "%lld", fn, (long long)n, (long long)n_alpha);
    for (int64_t i = 0; alpha && i < n_alpha; i++)
        if (!isfinite(alpha[i]) || alpha[i] < 0.0)
            return gram__fail(ctx, GRAM_EINVAL, "%s: alpha[%lld] = %g; it must be finite and >= 0", fn,
                              (long long)i, alpha[i]);
    if (!alpha) *one = 1e-10;
    return GRAM_OK;
}

gram_status gram_gp_solve(gram_context *ctx, const gram_array *K, int64_t n_alpha, const double *alpha,
                          const gram_array *Y, const gram_array *dK, double *lml, double *grad,
                          gram_array *L, gram_array *coef)
{
    gram__clear(ctx);
    static const char fn[] = "gram_gp_solve";
    gram_status s;
    if (!K || !Y) return gram__fail(ctx, GRAM_EINVAL, "%s: %s is NULL", fn, !K ? "K" : "Y");
    if ((s = gram__check_array(ctx, K, "K")) || (s = gram__check_array(ctx, Y, "y"))) return s;
    int64_t n = K->rows, t = Y->cols, P = 0, nn;
    size_t bytes;
    if (n < 1 || K->cols != n)
        return gram__fail(ctx, GRAM_ESHAPE, "%s: K must be square with at least 1 row, got %lld x %lld",
                          fn, (long long)K->rows, (long long)K->cols);
    if (Y->rows != n || t < 1)
        return gram__fail(ctx, GRAM_ESHAPE, "%s: y must be %lld x T (T >= 1), got %lld x %lld", fn,
                          (long long)n, (long long)Y->rows, (long long)t);
    double one = 0.0;
    if ((s = check_noise(ctx, fn, n, n_alpha, alpha, &one))) return s;
    if (grad) {
        if (!dK) return gram__fail(ctx, GRAM_EINVAL, "%s: the gradient needs dK", fn);
        if ((s = gram__check_array(ctx, dK, "dK"))) return s;
        P = dK->cols;
        if (!gram__mul_i64(n, n, &nn) || dK->rows != nn)
            return gram__fail(ctx, GRAM_ESHAPE, "%s: dK must have N*N = %lld rows (one per pair i*N + "
                              "j), got %lld", fn, (long long)n * n, (long long)dK->rows);
        if ((s = gram__check_finite(ctx, dK, "dK"))) return s;
    }
    if (L && (s = gram__regress_check_out(ctx, L, n, n, "L"))) return s;
    if (coef && (s = gram__regress_check_out(ctx, coef, n, t, "coef"))) return s;
    if (!gram__mul_i64(n, n, &nn) || !gram__bytes(nn, sizeof(double), &bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: %lld samples: the %lld x %lld matrix does not fit "
                          "in memory", fn, (long long)n, (long long)n, (long long)n);
    double *Yc = NULL, *A = gram__alloc(bytes), *al = gram__alloc((size_t)(n * t) * sizeof(double));
    if (!A || !al) {
        s = gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory (%zu bytes)", fn, bytes);
        goto done;
    }
    if ((s = gram__regress_copy(ctx, Y, "y", &Yc))) goto done;
    matrix_rebuild rb = {K, alpha ? alpha : &one, alpha ? n_alpha : 1};
    lml_problem pb = {n, 0, t, NULL, Yc, rb.noise, rb.n_noise};
    double value = 0.0;
    int saved = gram__blas_serial_begin(n);
    if (!(s = rebuild_matrix(ctx, &rb, A))) s = factor_solve(ctx, &pb, A, rebuild_matrix, &rb, al, &value);
    if (!s) {
        if (lml) *lml = value;
        if (coef) gram__regress_copy_out(al, n, t, coef);
        if (L)
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) gram__put(L, i, j, j <= i ? A[i * n + j] : 0.0);
        if (grad && !(s = form_w(ctx, &pb, A, al))) {
            /* scikit-learn's ½ Σ_ij W_ij ∂K_ij/∂θ_p over every pair, W symmetric */
            for (int64_t p = 0; p < P; p++) grad[p] = 0.0;
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j <= i; j++) {
                    double w = 0.5 * A[i * n + j];
                    for (int64_t p = 0; p < P; p++)
                        grad[p] += j == i ? w * gram__get(dK, i * n + i, p)
                                          : w * (gram__get(dK, i * n + j, p) + gram__get(dK, j * n + i, p));
                }
            s = check_grad(ctx, P, grad, NULL);
        }
    }
    gram__blas_serial_end(saved);
done:
    gram__free(A);
    gram__free(al);
    gram__free(Yc);
    return s;
}

gram_status gram_gp_posterior(gram_context *ctx, const gram_array *L, const gram_array *coef,
                              const gram_array *Ks, const gram_array *kss, gram_array *mean,
                              gram_array *std, gram_array *cov)
{
    gram__clear(ctx);
    static const char fn[] = "gram_gp_posterior";
    gram_status s;
    if (!L || !coef || !Ks)
        return gram__fail(ctx, GRAM_EINVAL, "%s: %s is NULL", fn, !L ? "L" : !coef ? "coef" : "Ks");
    if ((s = gram__check_array(ctx, L, "L")) || (s = gram__check_array(ctx, coef, "coef")) ||
        (s = gram__check_array(ctx, Ks, "Ks")))
        return s;
    int64_t n = L->rows, t = coef->cols, m = Ks->rows;
    if (n < 1 || L->cols != n || coef->rows != n || Ks->cols != n)
        return gram__fail(ctx, GRAM_ESHAPE, "%s: L must be N x N, coef N x T and Ks M x N; got L %lld x "
                          "%lld, coef %lld x %lld, Ks %lld x %lld", fn, (long long)L->rows,
                          (long long)L->cols, (long long)coef->rows, (long long)coef->cols,
                          (long long)Ks->rows, (long long)Ks->cols);
    if ((std || cov) && !kss) return gram__fail(ctx, GRAM_EINVAL, "%s: std and cov need kss", fn);
    if (std && cov) return gram__fail(ctx, GRAM_EINVAL, "%s: ask for std or cov, not both", fn);
    if (kss) {
        if ((s = gram__check_array(ctx, kss, "kss"))) return s;
        if (kss->rows != m || kss->cols != (cov ? m : 1))
            return gram__fail(ctx, GRAM_ESHAPE, "%s: kss must be %lld x %lld, got %lld x %lld", fn,
                              (long long)m, (long long)(cov ? m : 1), (long long)kss->rows,
                              (long long)kss->cols);
    }
    if (mean && (s = gram__regress_check_out(ctx, mean, m, t, "mean"))) return s;
    if (std && (s = gram__regress_check_out(ctx, std, m, 1, "std"))) return s;
    if (cov && (s = gram__regress_check_out(ctx, cov, m, m, "cov"))) return s;
    double *Lc = NULL, *Cc = NULL, *Kc = NULL, *Sc = NULL, *out = NULL;
    if ((s = gram__regress_copy(ctx, L, "L", &Lc)) || (s = gram__regress_copy(ctx, coef, "coef", &Cc)) ||
        (s = gram__regress_copy(ctx, Ks, "Ks", &Kc)) || (kss && (s = gram__regress_copy(ctx, kss, "kss", &Sc))))
        goto done;
    for (int64_t i = 0; i < n; i++)
        if (!(Lc[i * n + i] > 0.0)) {
            s = gram__fail(ctx, GRAM_EINVAL, "%s: L[%lld, %lld] = %g; a Cholesky factor's diagonal is "
                           "positive", fn, (long long)i, (long long)i, Lc[i * n + i]);
            goto done;
        }
    if (m == 0) goto done;
    int64_t cnt;
    size_t ob;
    if (!gram__mul_i64(m, cov ? m : t, &cnt) || !gram__bytes(cnt, sizeof(double), &ob)) {
        s = gram__fail(ctx, GRAM_EOVERFLOW, "%s: %lld queries is too many", fn, (long long)m);
        goto done;
    }
    out = gram__alloc(ob ? ob : 8);
    if (!out) {
        s = gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory", fn);
        goto done;
    }
    if (mean) {
        gram__gemm(0, m, t, n, 1.0, Kc, n, Cc, t, 0.0, out, t);
        if ((s = check_outputs(ctx, out, m, t, "mean"))) goto done;
        gram__regress_copy_out(out, m, t, mean);
    }
    if (std || cov) {
        gram__trsm_right_lower_t(m, n, Lc, n, Kc, n); /* Ks ← Ks L⁻ᵀ = (L⁻¹ Ksᵀ)ᵀ */
        if (std)
            for (int64_t i = 0; i < m; i++) {
                double v = Sc[i];
                for (int64_t j = 0; j < n; j++) v -= Kc[i * n + j] * Kc[i * n + j];
                if ((s = check_outputs(ctx, &v, 1, 1, "variance"))) goto done;
                gram__put(std, i, 0, v > 0.0 ? sqrt(v) : 0.0); /* rounding; as scikit-learn, clipped */
            }
        if (cov) {
            memcpy(out, Sc, (size_t)(m * m) * sizeof *out);
            gram__syrk_sub(m, n, Kc, n, out, m);
            for (int64_t i = 0; i < m && !s; i++) s = check_outputs(ctx, out + i * m, 1, i + 1, "covariance");
            for (int64_t i = 0; i < m && !s; i++)
                for (int64_t j = 0; j <= i; j++) {
                    gram__put(cov, i, j, out[i * m + j]);
                    gram__put(cov, j, i, out[i * m + j]);
                }
        }
    }
done:
    gram__free(Lc);
    gram__free(Cc);
    gram__free(Kc);
    gram__free(Sc);
    gram__free(out);
    return s;
}

/* ---- prediction ---------------------------------------------------------------------------------- */

static gram_status check_queries(gram_context *ctx, const gram_gp *gp, const gram_array *Xq)
{
    gram_status s;
    if (!Xq) return gram__fail(ctx, GRAM_EINVAL, "X is NULL");
    if ((s = gram__check_array(ctx, Xq, "X"))) return s;
    if (Xq->cols != gp->d)
        return gram__fail(ctx, GRAM_ESHAPE, "X has %lld features but the model was fitted with %lld",
                          (long long)Xq->cols, (long long)gp->d);
    return gram__check_finite(ctx, Xq, "X");
}

#define QBLOCK 256 /* queries per block of the variance computation */


gram_status gram_gp_predict(gram_context *ctx, const gram_gp *gp, const gram_array *Xq,
                            gram_array *mean, gram_array *std, int64_t target, gram_array *cov)
{
    gram__clear(ctx);
    if (!gp) return gram__fail(ctx, GRAM_EINVAL, "gram_gp_predict: gp is NULL");
    gram_status s;
    if ((s = check_queries(ctx, gp, Xq))) return s;
    int64_t m = Xq->rows, n = gp->n, t = gp->t;
    if (mean && (s = gram__regress_check_out(ctx, mean, m, t, "mean"))) return s;
    if (std && (s = gram__regress_check_out(ctx, std, m, t, "std"))) return s;
    if (cov) {
        if (target < 0 || target >= t)
            return gram__fail(ctx, GRAM_EINVAL, "gram_gp_predict: target %lld is not in [0, %lld)",
                              (long long)target, (long long)t);
        if ((s = gram__regress_check_out(ctx, cov, m, m, "cov"))) return s;
    }
    double *Xc = NULL, *buf = NULL, *Ks = NULL, *kd = NULL;
    if ((s = gram__regress_copy(ctx, Xq, "X", &Xc))) return s;
    gram_array Xa = gram_array_f64(Xc, m, gp->d), Xt = gram_array_f64(gp->X, n, gp->d);

    if (mean && m > 0) {
        buf = gram__alloc((size_t)(m * t) * sizeof(double));
        if (!buf) {
            s = gram__fail(ctx, GRAM_ENOMEM, "gram_gp_predict: out of memory");
            goto done;
        }
        gram_array Wa = gram_array_f64(gp->alpha, n, t), Ba = gram_array_f64(buf, m, t);
        if ((s = gram_kernel_sum(ctx, gp->kernel, &Xa, &Xt, &Wa, &Ba))) goto done;
        for (int64_t i = 0; i < m * t; i++) buf[i] = buf[i] * gp->ystd[i % t] + gp->ymean[i % t];
        if ((s = check_outputs(ctx, buf, m, t, "mean"))) goto done;
        for (int64_t i = 0; i < m; i++)
            for (int64_t c = 0; c < t; c++) gram__put(mean, i, c, buf[i * t + c]);
    }
    if ((std || cov) && m > 0) {
        int64_t rows = cov ? m : (m < QBLOCK ? m : QBLOCK); /* cov needs every row of L⁻¹K(X, Xq) */
        size_t kb;
        int64_t cnt;
        if (!gram__mul_i64(rows, n, &cnt) || !gram__bytes(cnt, sizeof(double), &kb)) {
            s = gram__fail(ctx, GRAM_EOVERFLOW, "gram_gp_predict: too many queries");
            goto done;
        }
        Ks = gram__alloc(kb ? kb : 8);
        kd = gram__alloc((size_t)m * sizeof(double));
        if (!Ks || !kd) {
            s = gram__fail(ctx, GRAM_ENOMEM, "gram_gp_predict: out of memory (%zu bytes)", kb);
            goto done;
        }
        gram_array Da = gram_array_f64(kd, m, 1);
        if ((s = gram_kernel_diag(ctx, gp->kernel, &Xa, &Da))) goto done;
        for (int64_t i0 = 0; i0 < m; i0 += rows) {
            int64_t b = m - i0 < rows ? m - i0 : rows;
            gram_array Qa = gram_array_f64(Xc + i0 * gp->d, b, gp->d), Ka = gram_array_f64(Ks, b, n);
            if ((s = gram_kernel_matrix(ctx, gp->kernel, &Qa, &Xt, &Ka))) goto done;
            /* Ks ← Ks L⁻ᵀ = (L⁻¹ K(X, Xq))ᵀ */
            if (b > 0 && n > 0)
                gram__trsm_right_lower_t(b, n, gp->L, n, Ks, n);
            if (std)
                for (int64_t i = 0; i < b; i++) {
                    double v = kd[i0 + i];
                    for (int64_t j = 0; j < n; j++) v -= Ks[i * n + j] * Ks[i * n + j];
                    if (!isfinite(v)) {
                        s = check_outputs(ctx, &v, 1, 1, "variance");
                        goto done;
                    }
                    if (!(v > 0.0)) v = 0.0; /* rounding; as scikit-learn, clipped */
                    for (int64_t c = 0; c < t; c++) {
                        double sd = sqrt(v) * gp->ystd[c];
                        if ((s = check_outputs(ctx, &sd, 1, 1, "standard deviation"))) goto done;
                        gram__put(std, i0 + i, c, sd);
                    }
                }
        }
        if (cov) {
            double *C = gram__alloc((size_t)(m * m) * sizeof(double));
            if (!C) {
                s = gram__fail(ctx, GRAM_ENOMEM, "gram_gp_predict: out of memory for the %lld x %lld "
                                                 "covariance", (long long)m, (long long)m);
                goto done;
            }
            gram_array Ca = gram_array_f64(C, m, m);
            s = gram_kernel_matrix(ctx, gp->kernel, NULL, &Xa, &Ca);
            if (!s) {
                gram__syrk_sub(m, n, Ks, n, C, m);
                double sc = gp->ystd[target] * gp->ystd[target];
                for (int64_t i = 0; i < m && !s; i++) {
                    for (int64_t j = 0; j <= i; j++) C[i * m + j] *= sc;
                    s = check_outputs(ctx, C + i * m, 1, i + 1, "covariance");
                }
            }
            if (!s) {
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j <= i; j++) {
                        gram__put(cov, i, j, C[i * m + j]);
                        gram__put(cov, j, i, C[i * m + j]);
                    }
            }
            gram__free(C);
        }
    }
done:
    gram__free(Xc);
    gram__free(buf);
    gram__free(Ks);
    gram__free(kd);
    return s;
}

gram_status gram_gp_sample(gram_context *ctx, const gram_gp *gp, const gram_array *Xq, int64_t target,
                           uint64_t seed, gram_array *out)
{
    gram__clear(ctx);
    if (!gp) return gram__fail(ctx, GRAM_EINVAL, "gram_gp_sample: gp is NULL");
    gram_status s;
    if ((s = check_queries(ctx, gp, Xq))) return s;
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "gram_gp_sample: out is NULL");
    if ((s = gram__check_array(ctx, out, "out"))) return s;
    int64_t m = Xq->rows, S = out->cols, t = gp->t;
    if (out->rows != m)
        return gram__fail(ctx, GRAM_ESHAPE, "gram_gp_sample: out has %lld rows but there are %lld "
                                            "query points", (long long)out->rows, (long long)m);
    if (target < 0 || target >= t)
        return gram__fail(ctx, GRAM_EINVAL, "gram_gp_sample: target %lld is not in [0, %lld)",
                          (long long)target, (long long)t);
    if (m == 0 || S == 0) return GRAM_OK;
    double *mu = gram__alloc((size_t)(m * t) * sizeof(double));
    double *C = gram__alloc((size_t)(m * m) * sizeof(double));
    double *w = gram__alloc((size_t)m * sizeof(double));
    double *Z = gram__alloc((size_t)(m * S) * sizeof(double));
    double *R = gram__alloc((size_t)(m * S) * sizeof(double));
    if (!mu || !C || !w || !Z || !R) {
        s = gram__fail(ctx, GRAM_ENOMEM, "gram_gp_sample: out of memory");
        goto done;
    }
    gram_array Ma = gram_array_f64(mu, m, t), Ca = gram_array_f64(C, m, m);
    if ((s = gram_gp_predict(ctx, gp, Xq, &Ma, NULL, target, &Ca))) goto done;
    if ((s = gram__sym_eig(ctx, m, C, m, w))) goto done;
    /* Row j of C is eigenvector j. Z[j, s] = sqrt(λ_j) z_js with z from stream s. */
    for (int64_t c = 0; c < S; c++) {
        gram__rng r;
        gram__rng_init(&r, seed, (uint64_t)c);
        for (int64_t j = 0; j < m; j++) {
            double z = gram__rng_normal(&r);
            Z[j * S + c] = (w[j] > 0.0 ? sqrt(w[j]) : 0.0) * z;
        }
    }
    gram__gemm(1, m, S, m, 1.0, C, m, Z, S, 0.0, R, S);
    for (int64_t i = 0; i < m * S; i++) R[i] += mu[(i / S) * t + target];
    if ((s = check_outputs(ctx, R, m, S, "sample"))) goto done;
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = 0; c < S; c++) gram__put(out, i, c, R[i * S + c]);
done:
    gram__free(mu);
    gram__free(C);
    gram__free(w);
    gram__free(Z);
    gram__free(R);
    return s;
}

void gram_free(void *p) { gram__free(p); }
