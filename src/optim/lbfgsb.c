/* L-BFGS-B after Byrd, Lu, Nocedal & Zhu (1995), written from the paper's mathematics.
 *
 * The model matrix is held densely. The compact form B = θI − W M Wᵀ (W = [Y θS]) is the same
 * matrix as the stored BFGS updates applied in order to θI (Byrd, Nocedal & Schnabel 1994), and
 * for n up to a few hundred forming it that way costs little and turns the Cauchy point, the
 * subspace step and their updates into plain dense operations. */
#include "lbfgsb.h"

#include "../linalg/linalg.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The paper's strong Wolfe constants, and the reference code's trials per line search. */
#define LS_C1 1e-3
#define LS_C2 0.9
#define LS_MAX_TRIALS 20
/* Bracketing multiplies the step by this while f still falls and the slope is still steep. */
#define LS_EXPAND 4.0
/* Zoom trials stay this fraction of the bracket away from its ends, so it always shrinks. */
#define LS_MARGIN 0.1

void gram__lbfgsb_options_init(gram__lbfgsb_options *o)
{
    o->memory = 10;
    o->max_iter = 15000;
    o->max_eval = 15000;
    o->pgtol = 1e-5;
    o->factr = 1e7;
}

typedef struct {
    double t;
    int i;
} breakpoint;

typedef struct {
    int n, m;
    gram__objective fn;
    void *user;
    int evals, max_eval;
    double *l, *u;         /* the bounds, ±∞ where there are none */
    double *S, *Y;         /* m correction pairs, n values each, a ring from `head` */
    int npairs, head;
    double theta;          /* yᵀy / sᵀy of the newest pair; 1 with an empty memory */
    double *B, *BFF;       /* the model matrix and the free block of it (n×n each) */
    double *g, *d, *Bd, *Bz, *r, *xc, *xbar;
    double *xt, *gt;       /* line search trial */
    double *xlo, *glo;     /* line search's best point so far, and the accepted one */
    breakpoint *bp;
    int *free_idx;
} lbfgsb;

static double dot(int n, const double *a, const double *b)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double clip(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* max_i |P(x − g)_i − x_i|, written so a tiny g next to a large x is not lost to rounding. */
static double pg_norm(int n, const double *x, const double *g, const double *l, const double *u)
{
    double m = 0.0;
    for (int i = 0; i < n; i++) {
        double p = 0.0;
        if (g[i] < 0) p = -fmax(x[i] - u[i], g[i]);
        else if (g[i] > 0) p = fmin(x[i] - l[i], g[i]);
        if (p > m) m = p;
    }
    return m;
}

/* Calls the objective; a non-finite value or gradient comes back as f = +∞. The derivative in a
 * fixed variable (lower == upper) is set to 0, as if the variable were not there: left in, it
 * enters every y = g_{k+1} − g_k while s is 0 there, so θ = yᵀy / sᵀy and the updates measure
 * curvature along a direction the iterates never take. Where that derivative is large and varies
 * (a GP likelihood in a fixed period) the model then undersizes every step, and convergence takes
 * ten times the iterations. */
static gram_status evaluate(lbfgsb *w, const double *x, double *g, double *fx)
{
    gram_status st = GRAM_OK;
    double v = w->fn(w->user, x, g, &st);
    w->evals++;
    if (st != GRAM_OK) return st;
    for (int i = 0; i < w->n; i++)
        if (w->l[i] == w->u[i]) g[i] = 0.0;
    for (int i = 0; i < w->n && isfinite(v); i++)
        if (!isfinite(g[i])) v = INFINITY;
    *fx = isfinite(v) ? v : INFINITY;
    return GRAM_OK;
}

static void reset_memory(lbfgsb *w)
{
    w->npairs = 0;
    w->head = 0;
    w->theta = 1.0;
}

static void push_pair(lbfgsb *w, const double *s, const double *y, double theta)
{
    int slot;
    if (w->npairs < w->m) slot = (w->head + w->npairs++) % w->m;
    else slot = w->head, w->head = (w->head + 1) % w->m;
    memcpy(w->S + (size_t)slot * (size_t)w->n, s, sizeof(double) * (size_t)w->n);
    memcpy(w->Y + (size_t)slot * (size_t)w->n, y, sizeof(double) * (size_t)w->n);
    w->theta = theta;
}

/* B = θI updated by the stored pairs, oldest first. A pair whose sᵀBs or sᵀy rounding has made
 * non-positive is left out, so that B stays positive definite. */
static void form_model(lbfgsb *w)
{
    const int n = w->n;
    double *B = w->B, *Bs = w->r;
    memset(B, 0, sizeof(double) * (size_t)n * (size_t)n);
    for (int i = 0; i < n; i++) B[(size_t)i * n + i] = w->theta;
    for (int k = 0; k < w->npairs; k++) {
        int slot = (w->head + k) % w->m;
        const double *s = w->S + (size_t)slot * n, *y = w->Y + (size_t)slot * n;
        for (int i = 0; i < n; i++) Bs[i] = dot(n, B + (size_t)i * n, s);
        double sBs = dot(n, s, Bs), sy = dot(n, s, y);
        if (!(sBs > 0) || !(sy > 0) || !isfinite(sBs) || !isfinite(sy)) continue;
        for (int i = 0; i < n; i++) {
            double *Bi = B + (size_t)i * n, yi = y[i] / sy, bi = Bs[i] / sBs;
            for (int j = 0; j < n; j++) Bi[j] += yi * y[j] - bi * Bs[j];
        }
    }
}

static int by_time(const void *a, const void *b)
{
    const breakpoint *p = a, *q = b;
    if (p->t != q->t) return p->t < q->t ? -1 : 1;
    return (p->i > q->i) - (p->i < q->i);
}

/* The generalized Cauchy point: the first local minimiser of the model
 * m(x + z) = f + gᵀz + ½ zᵀBz along the path t ↦ P(x − t g), examined segment by segment between
 * the breakpoints where variables reach their bounds. On segment j the path is x + z_j + Δt d
 * with m' = gᵀd + dᵀB z_j and m'' = dᵀB d; B z and B d are carried along and corrected by one
 * column of B when a variable stops. False when the model is unbounded below along the path
 * (B has lost positive definiteness). */
static bool cauchy_point(lbfgsb *w, const double *x, const double *g, double *xc)
{
    const int n = w->n;
    const double *B = w->B, *l = w->l, *u = w->u;
    double *d = w->d, *Bd = w->Bd, *Bz = w->Bz;
    int nb = 0;
    for (int i = 0; i < n; i++) {
        double t = INFINITY;
        if (g[i] < 0 && u[i] < INFINITY) t = (x[i] - u[i]) / g[i];
        else if (g[i] > 0 && l[i] > -INFINITY) t = (x[i] - l[i]) / g[i];
        d[i] = t > 0 && g[i] != 0 ? -g[i] : 0.0;
        if (t > 0 && t < INFINITY) w->bp[nb].t = t, w->bp[nb].i = i, nb++;
        xc[i] = x[i];
        Bz[i] = 0.0;
    }
    qsort(w->bp, (size_t)nb, sizeof *w->bp, by_time);
    for (int i = 0; i < n; i++) Bd[i] = dot(n, B + (size_t)i * n, d);
    double fp = -dot(n, d, d), fpp = dot(n, d, Bd);
    if (fp == 0) return true; /* projected gradient is zero: x is the Cauchy point */
    double dt_min = fpp > 0 ? -fp / fpp : INFINITY, t_old = 0.0;
    for (int j = 0; j < nb; j++) {
        int b = w->bp[j].i;
        double dt = w->bp[j].t - t_old;
        if (dt_min < dt) break;
        t_old = w->bp[j].t;
        for (int i = 0; i < n; i++) Bz[i] += dt * Bd[i];
        double db = d[b];
        xc[b] = db > 0 ? u[b] : l[b];
        d[b] = 0.0;
        for (int i = 0; i < n; i++) Bd[i] -= B[(size_t)i * n + b] * db;
        fp = dot(n, g, d) + dot(n, d, Bz);
        fpp = dot(n, d, Bd);
        dt_min = fpp > 0 ? -fp / fpp : fp < 0 ? INFINITY : 0.0;
    }
    if (!(dt_min < INFINITY)) return false;
    double t = t_old + fmax(dt_min, 0.0);
    for (int i = 0; i < n; i++)
        if (d[i] != 0) xc[i] = clip(x[i] + t * d[i], l[i], u[i]);
    return true;
}

/* Minimises the model over the variables strictly inside their bounds at the Cauchy point, the
 * others held there (the paper's direct primal method), then truncates the step so the result
 * stays in the box. If the free block is numerically singular the Cauchy point is kept. */
static void subspace_step(lbfgsb *w, const double *x, const double *g, const double *xc, double *xbar)
{
    const int n = w->n;
    const double *B = w->B, *l = w->l, *u = w->u;
    double *z = w->Bz, *r = w->r, *BFF = w->BFF;
    int *F = w->free_idx, nf = 0;
    for (int i = 0; i < n; i++) {
        xbar[i] = xc[i];
        z[i] = xc[i] - x[i];
        if (l[i] < xc[i] && xc[i] < u[i]) F[nf++] = i;
    }
    if (nf == 0) return;
    /* Reduced gradient of the model at xc, and the reduced matrix. */
    for (int a = 0; a < nf; a++) {
        const double *Bi = B + (size_t)F[a] * n;
        r[a] = -(g[F[a]] + dot(n, Bi, z));
        for (int c = 0; c < nf; c++) BFF[(size_t)a * nf + c] = Bi[F[c]];
    }
    if (gram__cholesky(NULL, nf, BFF, "the reduced L-BFGS-B model") != GRAM_OK) return;
    gram__trsv_lower(nf, BFF, r);
    gram__trsv_lower_t(nf, BFF, r);
    double alpha = 1.0;
    for (int a = 0; a < nf; a++) {
        int i = F[a];
        if (r[a] > 0 && u[i] < INFINITY) alpha = fmin(alpha, (u[i] - xc[i]) / r[a]);
        else if (r[a] < 0 && l[i] > -INFINITY) alpha = fmin(alpha, (l[i] - xc[i]) / r[a]);
    }
    if (!(alpha > 0)) return;
    for (int a = 0; a < nf; a++) {
        int i = F[a];
        xbar[i] = clip(xc[i] + alpha * r[a], l[i], u[i]);
    }
}

/* The minimiser of the cubic (or, failing that, quadratic) through the bracket's ends, kept
 * LS_MARGIN of the bracket away from them. With a non-finite f at `hi` nothing can be fitted, and
 * the bracket is halved. */
static double zoom_trial(double lo, double flo, double dlo, double hi, double fhi, double dhi)
{
    double delta = hi - lo, t = NAN;
    if (isfinite(fhi)) {
        double d1 = dlo + dhi - 3.0 * (flo - fhi) / (lo - hi);
        double disc = d1 * d1 - dlo * dhi;
        if (isfinite(dhi) && disc >= 0) {
            double d2 = copysign(sqrt(disc), delta);
            t = hi - delta * (dhi + d2 - d1) / (dhi - dlo + 2.0 * d2);
        }
        if (!isfinite(t)) {
            double c = fhi - flo - dlo * delta;
            if (c > 0) t = lo - dlo * delta * delta / (2.0 * c);
        }
    }
    double a = fmin(lo, hi), b = fmax(lo, hi), margin = LS_MARGIN * (b - a);
    if (!isfinite(t)) t = 0.5 * (lo + hi);
    return clip(t, a + margin, b - margin);
}

/* Looks along x + λd, 0 < λ <= lam_max, for a step satisfying the strong Wolfe conditions
 * f(λ) <= f0 + c1 λ f'(0) and |f'(λ)| <= c2 |f'(0)|: bracketing by expansion, then zooming
 * (Nocedal & Wright, Algorithms 3.5 and 3.6). A non-finite f counts as a failed decrease, so the
 * step shrinks. When the trials run out, or lam_max is reached with f still falling, the best
 * point satisfying the decrease condition is taken. *found says whether there is one; it is in
 * (w->xlo, *fout, w->glo). */
static gram_status line_search(lbfgsb *w, const double *x, double f0, const double *g0,
                               const double *d, double lam_max, double lam, double *fout, bool *found)
{
    const int n = w->n;
    const double *l = w->l, *u = w->u;
    const double dphi0 = dot(n, g0, d);
    double lo = 0.0, flo = f0, dlo = dphi0, hi = 0.0, fhi = 0.0, dhi = 0.0;
    bool bracketed = false, have_lo = false;
    *found = false;
    for (int trial = 0; trial < LS_MAX_TRIALS && w->evals < w->max_eval; trial++) {
        for (int i = 0; i < n; i++) w->xt[i] = clip(x[i] + lam * d[i], l[i], u[i]);
        double ft;
        gram_status st = evaluate(w, w->xt, w->gt, &ft);
        if (st != GRAM_OK) return st;
        double dt = isfinite(ft) ? dot(n, w->gt, d) : NAN;
        if (!(ft <= f0 + LS_C1 * lam * dphi0) || ft >= flo) {
            hi = lam, fhi = ft, dhi = dt, bracketed = true;
        } else {
            if (fabs(dt) <= -LS_C2 * dphi0) {
                memcpy(w->xlo, w->xt, sizeof(double) * (size_t)n);
                memcpy(w->glo, w->gt, sizeof(double) * (size_t)n);
                *fout = ft;
                *found = true;
                return GRAM_OK;
            }
            if (bracketed ? dt * (hi - lo) >= 0 : dt >= 0) hi = lo, fhi = flo, dhi = dlo, bracketed = true;
            lo = lam, flo = ft, dlo = dt, have_lo = true;
            memcpy(w->xlo, w->xt, sizeof(double) * (size_t)n);
            memcpy(w->glo, w->gt, sizeof(double) * (size_t)n);
            if (!bracketed) {
                if (lam >= lam_max) break;
                lam = fmin(lam_max, LS_EXPAND * lam);
                continue;
            }
        }
        if (fabs(hi - lo) <= DBL_EPSILON * fmax(lo, hi)) break;
        lam = zoom_trial(lo, flo, dlo, hi, fhi, dhi);
        /* Below this the predicted change of f is under an ulp of f0: whatever f says there is
         * rounding, and shrinking further only spends evaluations. */
        if (lam * -dphi0 <= DBL_EPSILON * fabs(f0)) break;
    }
    if (have_lo) *fout = flo, *found = true;
    return GRAM_OK;
}

static gram_status check_arguments(gram_context *ctx, int n, const double *x, const double *lower,
                                   const double *upper, gram__objective f, const gram__lbfgsb_options *o)
{
    if (n < 0) return gram__fail(ctx, GRAM_EINVAL, "L-BFGS-B: n = %d is negative", n);
    if (!f) return gram__fail(ctx, GRAM_EINVAL, "L-BFGS-B: the objective is NULL");
    if (n > 0 && !x) return gram__fail(ctx, GRAM_EINVAL, "L-BFGS-B: x is NULL");
    if (o->memory < 1) return gram__fail(ctx, GRAM_EINVAL, "L-BFGS-B: memory = %d, must be at least 1", o->memory);
    if (o->max_iter < 0)
        return gram__fail(ctx, GRAM_EINVAL, "L-BFGS-B: max_iter = %d is negative", o->max_iter);
    if (o->max_eval < 1)
        return gram__fail(ctx, GRAM_EINVAL, "L-BFGS-B: max_eval = %d, must be at least 1", o->max_eval);
    if (!(o->pgtol >= 0))
        return gram__fail(ctx, GRAM_EINVAL, "L-BFGS-B: pgtol = %g, must be non-negative", o->pgtol);
    if (!(o->factr >= 0))
        return gram__fail(ctx, GRAM_EINVAL, "L-BFGS-B: factr = %g, must be non-negative", o->factr);
    for (int i = 0; i < n; i++) {
        double lo = lower ? lower[i] : -INFINITY, hi = upper ? upper[i] : INFINITY;
        if (isnan(lo) || isnan(hi) || lo == INFINITY || hi == -INFINITY || lo > hi)
            return gram__fail(ctx, GRAM_EINVAL,
                              "L-BFGS-B: bounds [%g, %g] of variable %d are not an interval "
                              "(NaN, lower > upper, or an infinity on the wrong side)",
                              lo, hi, i);
        if (isnan(x[i])) return gram__fail(ctx, GRAM_EINVAL, "L-BFGS-B: start x[%d] is NaN", i);
        if (!isfinite(clip(x[i], lo, hi)))
            return gram__fail(ctx, GRAM_EINVAL, "L-BFGS-B: start x[%d] = %g is infinite even after "
                              "projection into its bounds", i, x[i]);
    }
    return GRAM_OK;
}

/* One block for every array: 13 vectors of n, the m pairs, B and its free block. */
static gram_status allocate(gram_context *ctx, lbfgsb *w)
{
    int64_t n = w->n, pairs, sq, total;
    size_t bytes, bp_bytes, idx_bytes;
    if (!gram__mul_i64(2 * (int64_t)w->m, n, &pairs) || !gram__mul_i64(n, n, &sq) ||
        !gram__mul_i64(sq, 2, &sq) || !gram__add_i64(pairs, sq, &total) ||
        !gram__add_i64(total, 13 * n, &total) || !gram__bytes(total, sizeof(double), &bytes) ||
        !gram__bytes(n, sizeof(breakpoint), &bp_bytes) || !gram__bytes(n, sizeof(int), &idx_bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "L-BFGS-B: workspace for n = %d, memory = %d overflows",
                          w->n, w->m);
    double *p = gram__alloc(bytes);
    w->bp = gram__alloc(bp_bytes);
    w->free_idx = gram__alloc(idx_bytes);
    if (!p || !w->bp || !w->free_idx) {
        gram__free(p);
        gram__free(w->bp);
        gram__free(w->free_idx);
        return gram__fail(ctx, GRAM_ENOMEM, "L-BFGS-B: out of memory for the workspace (%zu bytes)", bytes);
    }
    double **vec[] = {&w->l, &w->u, &w->g, &w->d, &w->Bd, &w->Bz, &w->r,
                      &w->xc, &w->xbar, &w->xt, &w->gt, &w->xlo, &w->glo};
    for (size_t k = 0; k < sizeof vec / sizeof *vec; k++) *vec[k] = p, p += n;
    w->S = p, p += (size_t)w->m * n;
    w->Y = p, p += (size_t)w->m * n;
    w->B = p, p += (size_t)(n * n);
    w->BFF = p;
    return GRAM_OK;
}

gram_status gram__lbfgsb(gram_context *ctx, int n, double *x, const double *lower, const double *upper,
                         gram__objective f, void *user, const gram__lbfgsb_options *opt,
                         gram__lbfgsb_result *res)
{
    if (!res) return gram__fail(ctx, GRAM_EINVAL, "L-BFGS-B: res is NULL");
    memset(res, 0, sizeof *res);
    gram__lbfgsb_options o;
    if (opt) o = *opt;
    else gram__lbfgsb_options_init(&o);
    gram_status st = check_arguments(ctx, n, x, lower, upper, f, &o);
    if (st != GRAM_OK) return st;

    if (n == 0) {
        double none = 0.0, fx;
        st = GRAM_OK;
        fx = f(user, x, &none, &st);
        res->evaluations = 1;
        if (st != GRAM_OK) return st;
        if (!isfinite(fx))
            return gram__fail(ctx, GRAM_EDOMAIN, "L-BFGS-B: the objective is not finite (%g) at the start", fx);
        res->f = fx;
        res->reason = GRAM__LBFGSB_CONV_PGTOL;
        return GRAM_OK;
    }

    lbfgsb w = {.n = n, .m = o.memory, .fn = f, .user = user, .max_eval = o.max_eval};
    st = allocate(ctx, &w);
    if (st != GRAM_OK) return st;
    reset_memory(&w);
    for (int i = 0; i < n; i++) {
        w.l[i] = lower ? lower[i] : -INFINITY;
        w.u[i] = upper ? upper[i] : INFINITY;
        x[i] = clip(x[i], w.l[i], w.u[i]);
    }

    double fx = INFINITY, pg = INFINITY;
    int iter = 0;
    gram__lbfgsb_reason reason = GRAM__LBFGSB_CONV_PGTOL;
    st = evaluate(&w, x, w.g, &fx);
    if (st != GRAM_OK) goto done;
    if (!isfinite(fx)) {
        st = gram__fail(ctx, GRAM_EDOMAIN,
                        "L-BFGS-B: the objective or its gradient is not finite at the (projected) "
                        "start point");
        goto done;
    }
    pg = pg_norm(n, x, w.g, w.l, w.u);
    if (pg <= o.pgtol) goto done;
    for (;;) {
        if (iter >= o.max_iter) {
            reason = GRAM__LBFGSB_MAX_ITER;
            break;
        }
        if (w.evals >= o.max_eval) {
            reason = GRAM__LBFGSB_MAX_EVAL;
            break;
        }
        form_model(&w);
        bool ok = cauchy_point(&w, x, w.g, w.xc);
        double gd = 0.0, dd = 0.0;
        if (ok) {
            subspace_step(&w, x, w.g, w.xc, w.xbar);
            for (int i = 0; i < n; i++) {
                w.d[i] = w.xbar[i] - x[i];
                gd += w.g[i] * w.d[i];
                dd += w.d[i] * w.d[i];
            }
        }
        bool descent = ok && gd < 0;
        double fnew = fx;
        bool found = false;
        if (descent) {
            double lam_max = INFINITY;
            for (int i = 0; i < n; i++) {
                if (w.d[i] > 0 && w.u[i] < INFINITY) lam_max = fmin(lam_max, (w.u[i] - x[i]) / w.d[i]);
                else if (w.d[i] < 0 && w.l[i] > -INFINITY) lam_max = fmin(lam_max, (w.l[i] - x[i]) / w.d[i]);
            }
            lam_max = fmax(lam_max, 1.0); /* x̄ is in the box; rounding must not say otherwise */
            /* Without curvature information the step's scale is unknown: try unit length. */
            double lam0 = w.npairs > 0 ? 1.0 : fmin(1.0 / sqrt(dd), lam_max);
            st = line_search(&w, x, fx, w.g, w.d, lam_max, lam0, &fnew, &found);
            if (st != GRAM_OK) goto done;
        }
        if (!found) {
            if (descent && w.evals >= o.max_eval) {
                reason = GRAM__LBFGSB_MAX_EVAL;
                break;
            }
            if (w.npairs > 0) {
                reset_memory(&w);
                res->resets++;
                continue;
            }
            reason = GRAM__LBFGSB_LINE_SEARCH_FAILED;
            break;
        }
        /* s and y go through d and Bd, free until the next iteration. */
        double *s = w.d, *y = w.Bd, sy = 0.0, yy = 0.0;
        for (int i = 0; i < n; i++) {
            s[i] = w.xlo[i] - x[i];
            y[i] = w.glo[i] - w.g[i];
            sy += s[i] * y[i];
            yy += y[i] * y[i];
        }
        if (sy > DBL_EPSILON * yy) push_pair(&w, s, y, yy / sy);
        double fold = fx;
        memcpy(x, w.xlo, sizeof(double) * (size_t)n);
        memcpy(w.g, w.glo, sizeof(double) * (size_t)n);
        fx = fnew;
        iter++;
        pg = pg_norm(n, x, w.g, w.l, w.u);
        if (pg <= o.pgtol) {
            reason = GRAM__LBFGSB_CONV_PGTOL;
            break;
        }
        if (fold - fx <= o.factr * DBL_EPSILON * fmax(fmax(fabs(fold), fabs(fx)), 1.0)) {
            reason = GRAM__LBFGSB_CONV_FACTR;
            break;
        }
    }
done:
    res->f = fx;
    res->pgnorm = pg;
    res->iterations = iter;
    res->evaluations = w.evals;
    res->reason = reason;
    gram__free(w.l);
    gram__free(w.bp);
    gram__free(w.free_idx);
    return st;
}
