/* grid: gaussian kernel sums on a regular grid with high-order interpolation (docs/approx.md,
 * "Grid").
 *
 * In lengthscale units u = x·inv_d the kernel is k(y, x) = s·Π_d φ(u_yd − u_xd), φ(t) = e^{−t²/2}.
 * Each axis gets a regular grid of spacing h (one h for every axis, in lengthscale units) and every
 * point its stencil of p consecutive nodes g_b with Lagrange weights L_b. Then
 *     k(y, x) ≈ Σ_a Σ_b L_a(y) L_b(x) k(g_a − g_b),
 * so (1) X is binned, c_b = Σ_j w_j L_b(x_j) (no kernel value), (2) the grid is convolved with the
 * kernel's values on the lattice, one axis at a time with the tap vector φ(h·m), |m| ≤ T (the
 * gaussian is separable), (3) each query reads out(y) = Σ_a L_a(y) conv_a.
 *
 * Bound (per value, a priori up to two measured constants; the derivation is in docs/approx.md):
 *  - 1-D interpolation of t ↦ φ(c − t) on a p-node stencil whose central interval holds the
 *    point: |error| ≤ max|φ^(p)|·h^p·Ω_p/p! ≤ E = K·h^p·Ω_p/√(p!), since φ^(p)(t) =
 *    (−1)^p He_p(t)·φ(t) and Cramér's inequality gives |He_p(t)|·e^{−t²/4} ≤ K·√(p!),
 *    K = 1.086435 (Abramowitz & Stegun 22.14.17, written for He_p); Ω_p = max |Π_j (r − j)| over
 *    the central interval, in closed form (nodal_max).
 *  - double interpolation of one axis (x's stencil, then y's): E2 = E·(1 + Λx), Λx the largest
 *    Lebesgue sum Σ_b |L_b(x_d)| met while binning;
 *  - the D axes (a product of factors |φ| ≤ 1, each interpolated within E2): (1 + E2)^D − 1;
 *  - the taps cut at T: Λx^D·Λy^D·φ(h(T + 1)); rounding: ε·(n + D(2T + 2) + p^D + 2D(2p + 1) + 2)·
 *    Λx^D·Λy^D, n the most terms one cell of a binning chunk adds; the rounding of each point's
 *    grid coordinate: e^{−1/2}·2D·ε·(2·span + 3p·h) (a point moved by Δu moves k by ≤ e^{−1/2}·Δu).
 * Every term is a multiple of s·Σ_j |w_jv|, so err[i,v] = s·A_v·η is the same for all queries of a
 * column. A query is certified when err ≤ atol + rtol·max(0, |out| − err) (|exact| ≥ |out| − err);
 * the others are summed exactly by gram_kernel_sum (err 0), so no value leaves with an unproven
 * bound.
 *
 * Choosing (p, h, T): a pilot sums up to PILOT queries exactly (evenly spaced rows of Y); the
 * target η* = min_v (atol + rtol·MARGIN·q_v)/(s·A_v), q_v a low quantile of the pilot's |exact|,
 * so that all but the lowest tail of queries pass; then the cheapest (p, h, T) by the cost model
 * whose predicted η meets η*, within the grid's memory. A forced order (opt->order) fixes p.
 *
 * Threads: binning in a fixed number of chunks of X (from N and the grid's size, not the thread
 * count), each into its own copy of the grid, merged in chunk order; convolution by grid lines;
 * interpolation by queries. So the result is bit-identical for every thread count. */
#include "approx.h"

#include "../engine/engine.h"
#include "../kernel/kernel.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum {
    GRID_MAX_D = 6,
    MAX_ORDER = 32,      /* a forced order beyond this is refused */
    AUTO_ORDER = 20,     /* the orders the plan tries: 1 to this */
    PILOT = 64,          /* queries the pilot sums exactly, at most */
    CHUNK_MIN = 4096,    /* points per binning chunk, at least */
    CHUNK_MAX = 16       /* binning chunks, at most */
};
#define GRID_MAX_CELLS ((int64_t)1 << 27)
#define CHUNK_BYTES ((double)((int64_t)1 << 28)) /* the binning copies of the grid, at most */
#define CRAMER 1.086435
#define PILOT_MARGIN 0.1 /* η* aims this far below the pilot's low quantile: the tail under it is refined or exact */
#define RELAX_MAX 1e6     /* the first pass's aim may be this much coarser than η* when η* is out of reach */
#define DEAR_SLACK 67108864.0 /* a plan this much (in pairs) beyond 4× the exact sum is not run */
#define MAX_SPACING 4.0   /* in lengthscales: beyond it taps are φ(4) and below; nothing gained */

/* Cost model, in units of one gaussian pair of gram_kernel_sum on one thread (docs/approx.md,
 * "Grid", gives the measurement): per point, axis and stencil node (the weights), per point and
 * stencil cell and column (binning, interpolation), per cell, tap, axis and column (convolution),
 * per cell, copy and column (zeroing, merging). Measured in one run beside gram_kernel_sum at
 * D = 1, 2, 3 (its time per pair is within 10% across D ≤ 3 there: the exp dominates). */
#define COST_WEIGHTS 1.0
#define COST_BIN 1.4
#define COST_INTERP 1.1
#define COST_CONV 0.35
#define COST_CELL 0.3

int gram__approx_grid_supports(const gram_kernel *k, int64_t D, const char **why)
{
    const char *w = NULL;
    if (!k) w = "no kernel";
    else if (k->n_leaves != 1 || k->n_ops < 1 || k->ops[0].kind != GRAM_OP_LEAF || k->leaves[0].family != GRAM_GAUSSIAN)
        w = "the grid's interpolation bound needs a smooth, separable kernel: only a single gaussian (optionally "
            "times a constant > 0) is supported";
    else {
        for (int o = 1; o < k->n_ops && !w; o++)
            if (k->ops[o].kind != GRAM_OP_SCALE || !(k->ops[o].c > 0))
                w = "the grid's interpolation bound needs a smooth, separable kernel: only a single gaussian "
                    "(optionally times a constant > 0) is supported";
        if (!w && (D < 1 || D > GRID_MAX_D))
            w = D < 1 ? "the grid needs at least one dimension"
                      : "the grid covers D <= 6 (its work grows as order^D per point and its cells as span^D)";
    }
    if (why) *why = w;
    return w == NULL;
}

/* max |Π_{j<p} (r − j)| over the central interval r ∈ [p/2 − 1, p/2]. p = 2m: with r = m − ½ + e,
 * |e| ≤ ½, the factors pair into Π_{i≤m} ((i − ½)² − e²), largest at e = 0. p = 2m + 1: r = m + e,
 * |e|·Π_{i≤m} (i² − e²), increasing in |e| on [0, ½] (its log-derivative 1/e − Σ 2e/(i² − e²) is
 * 2/(2m + 1) > 0 at e = ½ and decreasing), so largest at e = ½. */
static double nodal_max(int p)
{
    const int m = p / 2;
    double w = p % 2 ? 0.5 : 1.0;
    for (int i = 1; i <= m; i++) w *= p % 2 ? (i - 0.5) * (i + 0.5) : (i - 0.5) * (i - 0.5);
    return w;
}

/* E: the 1-D interpolation bound of φ for order p and spacing h (rounded up a little). */
static double interp_bound(int p, double h)
{
    return exp(p * log(h) + log(CRAMER * nodal_max(p)) - 0.5 * lgamma(p + 1.0)) * (1.0 + 1e-12);
}

double gram__approx_grid_nodal_max(int p) { return nodal_max(p); }
double gram__approx_grid_interp_bound(int p, double h) { return interp_bound(p, h); }

/* The barycentric constants 1/Π_{i≠j} (j − i) of nodes 0..p−1. */
static void lagrange_den(int p, double *c)
{
    for (int j = 0; j < p; j++) {
        double d = 1.0;
        for (int i = 0; i < p; i++)
            if (i != j) d *= (double)(j - i);
        c[j] = 1.0 / d;
    }
}

/* L_j(r) for nodes 0..p−1 by prefix and suffix products (no division: r may be a node); returns
 * Σ_j |L_j(r)|. */
static double lagrange(int p, const double *c, double r, double *L)
{
    double pre = 1.0, suf = 1.0, lam = 0.0;
    for (int j = 0; j < p; j++) L[j] = pre, pre *= r - j;
    for (int j = p - 1; j >= 0; j--) {
        L[j] *= suf * c[j];
        suf *= r - j;
        lam += fabs(L[j]);
    }
    return lam;
}

/* The Lebesgue constant of the central interval, sampled (for planning only: the bound uses the
 * largest sum met on the data). */
static double lebesgue(int p)
{
    double c[MAX_ORDER], L[MAX_ORDER], lam = 1.0;
    lagrange_den(p, c);
    for (int i = 0; i <= 64; i++) {
        const double l = lagrange(p, c, p / 2.0 - 1.0 + i / 64.0, L);
        if (l > lam) lam = l;
    }
    return lam;
}

/* The kernel: s·Π φ, inv per dimension. */
typedef struct gkern {
    double s;
    double inv[GRID_MAX_D];
} gkern;

static void kern_of(const gram_kernel *k, int64_t D, gkern *K)
{
    const gram__leaf *L = &k->leaves[0];
    K->s = 1.0;
    for (int o = 1; o < k->n_ops; o++) K->s *= k->ops[o].c;
    for (int64_t d = 0; d < D; d++) K->inv[d] = L->inv_scale[L->n_scale == 1 ? 0 : d];
}

/* The box of X ∪ Y per dimension and its extent in lengthscales. */
static void box_of(const gram_array *Y, const gram_array *X, const gkern *K, int64_t D, double *lo, double *span)
{
    for (int64_t d = 0; d < D; d++) {
        double a = INFINITY, b = -INFINITY;
        for (int64_t j = 0; j < X->rows; j++) {
            const double v = gram__get(X, j, d);
            a = v < a ? v : a, b = v > b ? v : b;
        }
        for (int64_t i = 0; i < Y->rows; i++) {
            const double v = gram__get(Y, i, d);
            a = v < a ? v : a, b = v > b ? v : b;
        }
        lo[d] = a;
        span[d] = (b - a) * K->inv[d];
    }
}

typedef struct gplan {
    int p;
    int64_t T, chunks;
    double h, lam, cost, cells_d, bytes; /* cells_d, bytes: also for refusals beyond int64 */
    int64_t n[GRID_MAX_D], cells;
} gplan;

static int64_t chunks_for(int64_t N, double cells, int64_t V)
{
    int64_t c = N / CHUNK_MIN;
    if (c > CHUNK_MAX) c = CHUNK_MAX;
    while (c > 1 && (double)c * cells * (double)V * sizeof(double) > CHUNK_BYTES) c--;
    return c < 1 ? 1 : c;
}

static double ipow(double b, int64_t e)
{
    double r = 1.0;
    while (e-- > 0) r *= b;
    return r;
}

/* The plan of order p for target η (a relative-to-mass bound), or 0 when p cannot reach it. The
 * rounding and position terms are predicted with the binning's worst case; the truncation gets a
 * tenth of η, interpolation the rest. */
static int plan_for(int p, double eta, int64_t D, const double *span, int64_t N, int64_t M, int64_t V, gplan *P)
{
    memset(P, 0, sizeof *P);
    const double lam = lebesgue(p), l2d = ipow(lam, 2 * D), pd = ipow(p, D);
    double smax = 0.0;
    for (int64_t d = 0; d < D; d++) smax = span[d] > smax ? span[d] : smax;
    const int64_t c0 = chunks_for(N, 1.0, V);
    const double nbin = (double)(N / c0 + 1);
    /* T is not known yet: allow 64 taps per axis in the rounding term (T is below that for any η ≥ 1e-300) */
    const double rho = DBL_EPSILON * (nbin + D * 130.0 + pd + 2.0 * D * (2 * p + 1) + 2.0) * l2d;
    const double pos = exp(-0.5) * 2.0 * D * DBL_EPSILON * (2.0 * smax + 3.0 * p * MAX_SPACING);
    const double bi = 0.9 * eta - rho - pos;
    if (!(bi > 0.25 * eta)) return 0;
    const double E2 = expm1(log1p(bi) / (double)D), E = E2 / (1.0 + lam);
    double h = exp((log(E) - log(CRAMER * nodal_max(p)) + 0.5 * lgamma(p + 1.0)) / p);
    if (!(h > 0)) return 0;
    if (h > MAX_SPACING) h = MAX_SPACING;
    while (h > 0 && expm1(D * log1p(interp_bound(p, h) * (1.0 + lam))) > bi) h *= 0.999; /* rounding of the pow */
    const double reach = sqrt(2.0 * (log(l2d) - log(0.1 * eta)));
    double T = ceil(reach / h) - 1.0;
    if (T < 1) T = 1;
    double cells = 1.0;
    for (int64_t d = 0; d < D; d++) {
        const double n = ceil(span[d] / h) + p + 2.0;
        P->n[d] = n < 9e15 ? (int64_t)n : INT64_MAX;
        cells *= n;
    }
    P->p = p, P->h = h, P->lam = lam, P->T = (int64_t)T, P->cells_d = cells;
    if (!(cells <= (double)GRID_MAX_CELLS) || !(T <= 1e6)) {
        P->bytes = cells * (double)V * sizeof(double);
        return 0;
    }
    P->cells = (int64_t)cells;
    P->chunks = chunks_for(N, cells, V);
    P->bytes = cells * (double)V * sizeof(double) * (double)(P->chunks + 1);
    if (!gram__memory_fits(P->bytes > 1e18 ? (size_t)-1 : (size_t)P->bytes)) return 0;
    P->cost = COST_WEIGHTS * (double)(N + M) * (double)(D * p) + (COST_BIN * (double)N + COST_INTERP * (double)M) * pd *
              (double)V + COST_CONV * cells * (double)D * (2.0 * T + 1.0) * (double)V +
              COST_CELL * cells * (double)V * (P->chunks + 1.0);
    return 1;
}

/* The cheapest plan for η (order fixed when order > 0); 0 if none fits, *P then the smallest grid
 * tried (for the message). */
static int plan_best(int order, double eta, int64_t D, const double *span, int64_t N, int64_t M, int64_t V, gplan *P)
{
    int found = 0;
    gplan best, small;
    memset(&small, 0, sizeof small);
    small.cells_d = INFINITY;
    const int p0 = order > 0 ? order : 1, p1 = order > 0 ? order : AUTO_ORDER;
    for (int p = p0; p <= p1; p++) {
        gplan c;
        if (plan_for(p, eta, D, span, N, M, V, &c)) {
            if (!found || c.cost < best.cost) best = c;
            found = 1;
        } else if (c.p && c.cells_d < small.cells_d) small = c;
    }
    *P = found ? best : small;
    return found;
}

/* The d-axis stencil of a coordinate: first node and the p weights; returns the Lebesgue sum. */
static inline double stencil(const gplan *P, const double *c, double x, double lo, double f, int64_t n, int64_t *s,
                             double *L)
{
    const double q = (x - lo) * f, fl = floor(q);
    int64_t st = (int64_t)fl + 1;
    if (st > n - P->p) st = n - P->p; /* the margin makes this unreachable; memory safety only */
    if (st < 0) st = 0;
    *s = st;
    return lagrange(P->p, c, (q - fl) + (P->p / 2.0 - 1.0), L);
}

typedef struct gjob {
    const gplan *P;
    int64_t D, V;
    double lo[GRID_MAX_D], f[GRID_MAX_D];
    int64_t stride[GRID_MAX_D]; /* cells per step of each axis */
    double c[MAX_ORDER];
} gjob;

/* Adds coef·Π_d L_d[i_d] · wv[v] into the grid over the stencil at s (the innermost axis is
 * contiguous in cells, V values per cell). */
static void scatter(const gjob *J, double *G, const int64_t *s, const double (*L)[MAX_ORDER], const double *wv)
{
    const int64_t D = J->D, V = J->V, p = J->P->p;
    int64_t idx[GRID_MAX_D] = {0};
    for (;;) {
        double coef = 1.0;
        int64_t base = 0;
        for (int64_t d = 0; d + 1 < D; d++) coef *= L[d][idx[d]], base += (s[d] + idx[d]) * J->stride[d];
        base += s[D - 1];
        const double *Li = L[D - 1];
        if (V == 1) {
            const double cw = coef * wv[0];
            double *g = G + base;
            for (int64_t i = 0; i < p; i++) g[i] += cw * Li[i];
        } else {
            for (int64_t i = 0; i < p; i++) {
                const double cl = coef * Li[i];
                double *g = G + (base + i) * V;
                for (int64_t v = 0; v < V; v++) g[v] += cl * wv[v];
            }
        }
        int64_t d = D - 2;
        while (d >= 0 && ++idx[d] == p) idx[d--] = 0;
        if (d < 0) break;
    }
}

static void gather(const gjob *J, const double *G, const int64_t *s, const double (*L)[MAX_ORDER], double *acc)
{
    const int64_t D = J->D, V = J->V, p = J->P->p;
    int64_t idx[GRID_MAX_D] = {0};
    for (int64_t v = 0; v < V; v++) acc[v] = 0.0;
    for (;;) {
        double coef = 1.0;
        int64_t base = 0;
        for (int64_t d = 0; d + 1 < D; d++) coef *= L[d][idx[d]], base += (s[d] + idx[d]) * J->stride[d];
        base += s[D - 1];
        const double *Li = L[D - 1];
        if (V == 1) {
            const double *g = G + base;
            double t = 0.0;
            for (int64_t i = 0; i < p; i++) t += Li[i] * g[i];
            acc[0] += coef * t;
        } else {
            for (int64_t i = 0; i < p; i++) {
                const double cl = coef * Li[i];
                const double *g = G + (base + i) * V;
                for (int64_t v = 0; v < V; v++) acc[v] += cl * g[v];
            }
        }
        int64_t d = D - 2;
        while (d >= 0 && ++idx[d] == p) idx[d--] = 0;
        if (d < 0) break;
    }
}

/* One axis of the convolution, from grid `in` into grid `to`: to[.., a, ..] = Σ_{|a−b|≤T} tap[|a − b|]·
 * in[.., b, ..] along axis ax, the cells after the axis (contiguous) in the innermost loop. Each value
 * is one sum in a fixed order, so the bits do not depend on the thread count. */
static void convolve_axis(const gjob *J, const double *in, double *to, int64_t ax, const double *tap, int nt)
{
    const gplan *P = J->P;
    const int64_t n = P->n[ax], st = J->stride[ax] * J->V, T = P->T, lines = P->cells / (n * J->stride[ax]);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t oa = 0; oa < lines * n; oa++) {
        const int64_t o = oa / n, a = oa % n, b0 = a - T > 0 ? a - T : 0, b1 = a + T < n - 1 ? a + T : n - 1;
        double *dst = to + oa * st;
        const double *src = in + o * n * st;
        if (st == 1) {
            double t = 0.0;
            for (int64_t b = b0; b <= b1; b++) t += tap[b > a ? b - a : a - b] * src[b];
            dst[0] = t;
            continue;
        }
        for (int64_t i = 0; i < st; i++) dst[i] = 0.0;
        for (int64_t b = b0; b <= b1; b++) {
            const double t = tap[b > a ? b - a : a - b], *sb = src + b * st;
            for (int64_t i = 0; i < st; i++) dst[i] += t * sb[i];
        }
    }
}

/* AUTO's guess of η* without the pilot: the queries' sums taken as the kernel's share of uniformly
 * spread mass (√(2π) lengthscales of each axis's span), the pilot's margin and a factor 10 for
 * data that is not uniform. */
static double eta_guess(const gram_approx_options *opt, const gkern *K, int64_t D, const double *span, int64_t N)
{
    double frac = 1.0;
    for (int64_t d = 0; d < D; d++) frac *= span[d] > 2.5066 ? 2.5066 / span[d] : 1.0;
    const double rtol = opt ? opt->rtol : 0.0, atol = opt ? opt->atol : 0.0;
    double eta = rtol * frac * PILOT_MARGIN * 0.1;
    if (atol > 0) { /* weights unknown here: the KDE's 1/N */
        const double e2 = atol / K->s;
        if (e2 > eta) eta = e2;
    }
    (void)N;
    return eta;
}

double gram__approx_grid_cost(const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_approx_options *opt)
{
    if (!X || !gram__approx_grid_supports(k, X->cols, NULL)) return INFINITY;
    if (!Y) Y = X;
    const int64_t D = X->cols, N = X->rows, M = Y->rows;
    if (N == 0 || M == 0) return 0.0;
    gkern K;
    kern_of(k, D, &K);
    double lo[GRID_MAX_D], span[GRID_MAX_D];
    box_of(Y, X, &K, D, lo, span);
    const double eta = eta_guess(opt, &K, D, span, N);
    gplan P;
    if (!(eta > 0)) return INFINITY;
    /* The guess assumes evenly spread mass, far too fine for data that fill a small part of their
     * box (a mixture's 3-D box is mostly empty): where it is out of reach, coarser aims as the
     * method's own first pass takes them (RELAX_MAX), each tenfold step charged 1% of the queries
     * summed exactly for the refinement and fallback it leaves. Without this AUTO never chose the
     * grid on N = M = 10⁶ 3-D mixtures, where it runs 25× faster than the tree AUTO chose. */
    double relax = 1.0, extra = 0.0;
    while (!plan_best(opt ? opt->order : 0, eta * relax, D, span, N, M, 1, &P)) {
        relax *= 10.0, extra += 0.01;
        if (relax > RELAX_MAX) return INFINITY;
    }
    const double m = (double)(M / 16 < 1 ? 1 : M / 16 > PILOT ? PILOT : M / 16);
    /* the pilot, the plan, and a fallback of 0.2% of the queries (a gaussian sample's tail under η*) */
    return m * (double)N + P.cost + (0.002 + extra) * (double)M * (double)N;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* What one pass of the grid knows: the data, the kernel, the box, the weights' mass per column. */
typedef struct gctx {
    gram_context *ctx;
    const gram_array *Y, *X, *W;
    int64_t M, N, D, V;
    gkern K;
    double lo[GRID_MAX_D], span[GRID_MAX_D];
    const double *A;
    int nt;
} gctx;

/* One pass with plan P: bins all of X, convolves, interpolates the nq queries rows[0..nq) (all
 * when rows is NULL) into val (nq × V, without the factor s), and sets *eta to the bound of every
 * value relative to s·A_v (from the Lebesgue sums and the binning's counts met on the data). */
static gram_status grid_pass(const gctx *g, const gplan *P, const int64_t *rows, int64_t nq, double *val, double *eta)
{
    const int64_t N = g->N, D = g->D, V = g->V, C = P->chunks, gsz = P->cells * V;
    gjob J;
    memset(&J, 0, sizeof J);
    J.P = P, J.D = D, J.V = V;
    lagrange_den(P->p, J.c);
    for (int64_t d = 0; d < D; d++) J.lo[d] = g->lo[d], J.f[d] = g->K.inv[d] / P->h;
    J.stride[D - 1] = 1;
    for (int64_t d = D - 2; d >= 0; d--) J.stride[d] = J.stride[d + 1] * P->n[d + 1];
    /* G: the merged grid; G + gsz: chunk copy 0 (C > 1) and the convolution's second buffer */
    double *G = gram__calloc((size_t)(gsz * (C + 1)), sizeof(double));
    double *tap = gram__alloc((size_t)(P->T + 1) * sizeof(double));
    int64_t *h = gram__calloc((size_t)P->n[0], sizeof(int64_t));
    if (!G || !tap || !h) {
        gram__free(G), gram__free(tap), gram__free(h);
        return gram__fail(g->ctx, GRAM_ENOMEM, "out of memory for the grid (%lld cells × %lld columns, %lld copies)",
                          (long long)P->cells, (long long)V, (long long)(C + 1));
    }
    const int nt = g->nt;

    /* (1) binning: chunk c of X into its copy, merged in chunk order */
    double lamx = 1.0, lams[CHUNK_MAX];
#pragma omp parallel for num_threads(gram__team_size(nt < C ? nt : (int)C)) schedule(dynamic, 1)
    for (int64_t c = 0; c < C; c++) {
        double *Gc = C > 1 ? G + (c + 1) * gsz : G, L[GRID_MAX_D][MAX_ORDER], wv[64], lam = 1.0;
        double *wbuf = V > 64 ? gram__alloc((size_t)V * sizeof(double)) : wv;
        int64_t st[GRID_MAX_D];
        lams[c] = INFINITY; /* a failed buffer poisons the bound: every query then falls back */
        if (!wbuf) continue;
        for (int64_t j = N * c / C; j < N * (c + 1) / C; j++) {
            for (int64_t d = 0; d < D; d++) {
                const double l = stencil(P, J.c, gram__get(g->X, j, d), J.lo[d], J.f[d], P->n[d], &st[d], L[d]);
                lam = l > lam ? l : lam;
            }
            for (int64_t v = 0; v < V; v++) wbuf[v] = g->W ? gram__get(g->W, j, v) : 1.0;
            scatter(&J, Gc, st, (const double(*)[MAX_ORDER])L, wbuf);
        }
        lams[c] = lam;
        if (wbuf != wv) gram__free(wbuf);
    }
    for (int64_t c = 0; c < C; c++) lamx = lams[c] > lamx ? lams[c] : lamx;
    if (C > 1) {
#pragma omp parallel for num_threads(gram__team_size(nt)) schedule(static)
        for (int64_t i = 0; i < gsz; i++) {
            double t = 0.0;
            for (int64_t c = 0; c < C; c++) t += G[(c + 1) * gsz + i];
            G[i] = t;
        }
    }
    /* the terms one cell of a chunk may add: at most the points whose first-axis stencil covers it */
    int64_t nbin = 0;
    const int64_t n0 = P->n[0];
    for (int64_t c = 0; c < C; c++) {
        memset(h, 0, (size_t)n0 * sizeof(int64_t));
        for (int64_t j = N * c / C; j < N * (c + 1) / C; j++) {
            int64_t st = (int64_t)floor((gram__get(g->X, j, 0) - J.lo[0]) * J.f[0]) + 1;
            h[st > n0 - P->p ? n0 - P->p : st < 0 ? 0 : st]++;
        }
        int64_t win = 0;
        for (int64_t a = 0; a < n0; a++) {
            win += h[a] - (a >= P->p ? h[a - P->p] : 0);
            nbin = win > nbin ? win : nbin;
        }
    }

    /* (2) convolution with the taps φ(h·m), m = 0..T, one axis at a time between G and G + gsz */
    for (int64_t t = 0; t <= P->T; t++) tap[t] = exp(-0.5 * (P->h * t) * (P->h * t));
    double *cur = G, *nxt = G + gsz;
    for (int64_t d = 0; d < D; d++) {
        convolve_axis(&J, cur, nxt, d, tap, gram__team_size(nt));
        double *t = cur;
        cur = nxt, nxt = t;
    }

    /* (3) interpolation */
    double lamy = 1.0;
#pragma omp parallel num_threads(gram__team_size(nt)) reduction(max : lamy)
    {
        double L[GRID_MAX_D][MAX_ORDER];
        int64_t st[GRID_MAX_D];
#pragma omp for schedule(static)
        for (int64_t q = 0; q < nq; q++) {
            const int64_t i = rows ? rows[q] : q;
            for (int64_t d = 0; d < D; d++) {
                const double l = stencil(P, J.c, gram__get(g->Y, i, d), J.lo[d], J.f[d], P->n[d], &st[d], L[d]);
                lamy = l > lamy ? l : lamy;
            }
            gather(&J, cur, st, (const double(*)[MAX_ORDER])L, val + q * V);
        }
    }
    gram__free(G), gram__free(tap), gram__free(h);

    double smax = 0.0;
    for (int64_t d = 0; d < D; d++) smax = g->span[d] > smax ? g->span[d] : smax;
    const double lxd = ipow(lamx, D), lyd = ipow(lamy, D), E2 = interp_bound(P->p, P->h) * (1.0 + lamx);
    const double interp = expm1(D * log1p(E2)), cut = P->h * (P->T + 1), trunc = lxd * lyd * exp(-0.5 * cut * cut);
    const double rho = DBL_EPSILON * ((double)nbin + (double)C + D * (2.0 * P->T + 2.0) + ipow(P->p, D) +
                                      2.0 * D * (2 * P->p + 1) + 2.0) * lxd * lyd;
    const double pos = exp(-0.5) * 2.0 * D * DBL_EPSILON * (2.0 * smax + 3.0 * P->p * P->h);
    *eta = (interp + trunc + rho + pos) * (1.0 + 16.0 * DBL_EPSILON);
    return GRAM_OK;
}

/* Checks the nq values of a pass: a certified query's values go to out (its bounds to err), the
 * others' rows to fails (*nf of them, in order). */
static void certify(const gctx *g, const gram_approx_options *opt, const int64_t *rows, int64_t nq, const double *val,
                    double eta, gram_array *out, gram_array *err, int64_t *fails, int64_t *nf)
{
    const int64_t V = g->V;
    const double rtol = opt ? opt->rtol : 0.0, atol = opt ? opt->atol : 0.0, s = g->K.s;
    const double f32 = out->dtype == GRAM_FLOAT32 ? ldexp(1.0, -24) * (1.0 + DBL_EPSILON) : 0.0; /* out's rounding */
    int64_t n = 0;
    for (int64_t q = 0; q < nq; q++) {
        const int64_t i = rows ? rows[q] : q;
        int ok = 1;
        for (int64_t v = 0; v < V && ok; v++) {
            const double o = s * val[q * V + v], e = s * g->A[v] * eta + f32 * fabs(o), lb = fabs(o) - e;
            ok = isfinite(o) && isfinite(e) && e <= atol + rtol * (lb > 0 ? lb : 0.0);
        }
        if (!ok) {
            fails[n++] = i;
            continue;
        }
        for (int64_t v = 0; v < V; v++) {
            const double o = s * val[q * V + v];
            gram__put(out, i, v, o);
            if (err) gram__put(err, i, v, s * g->A[v] * eta + f32 * fabs(o));
        }
    }
    *nf = n;
}

/* η for the queries a pass could not certify: the cheapest of a few candidates, each the η that the
 * k-th smallest need would pass at, counting what it leaves to the exact sum; 0 when summing
 * them all exactly is cheaper. need_i = (atol + rtol·|out_i|/2)/(s·A_v): |out_i| stands in for
 * |exact|, halved for the uncertainty. */
static double refine_eta(const gctx *g, const gram_approx_options *opt, int64_t nq, const double *val, double *need,
                         int order)
{
    const int64_t V = g->V, N = g->N, D = g->D;
    const double rtol = opt ? opt->rtol : 0.0, atol = opt ? opt->atol : 0.0, s = g->K.s;
    int64_t nn = 0;
    for (int64_t q = 0; q < nq; q++) {
        double e = INFINITY;
        for (int64_t v = 0; v < V; v++)
            if (g->A[v] > 0) {
                const double t = (atol + 0.5 * rtol * fabs(s * val[q * V + v])) / (s * g->A[v]);
                e = t < e ? t : e;
            }
        if (e > 0 && e < INFINITY) need[nn++] = e;
    }
    if (nn == 0) return 0.0;
    qsort(need, (size_t)nn, sizeof(double), cmp_double);
    double best = (double)nq * (double)N, eta = 0.0;
    const double fr[5] = {0.0, 0.001, 0.01, 0.1, 0.5};
    for (int c = 0; c < 5; c++) {
        const int64_t k = (int64_t)(fr[c] * (double)nn);
        const double e = need[k < nn ? k : nn - 1] * 0.5;
        gplan P;
        if (!(e > 0) || !plan_best(order, e > 0.5 ? 0.5 : e, D, g->span, N, nq, V, &P)) continue;
        const double t = P.cost + (double)(k + (nq - nn)) * (double)N;
        if (t < best) best = t, eta = e > 0.5 ? 0.5 : e;
    }
    return eta;
}

gram_status gram__approx_grid(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_array *W, const gram_approx_options *opt, gram_array *out, gram_array *err,
                              gram_approx_info *info)
{
    if (!Y) Y = X;
    const int64_t M = Y->rows, N = X->rows, D = X->cols, V = W ? W->cols : 1;
    const double rtol = opt ? opt->rtol : 0.0, atol = opt ? opt->atol : 0.0;
    const int order = opt ? opt->order : 0;
    const char *why = NULL;
    if (!gram__approx_grid_supports(k, D, &why))
        return gram__fail(ctx, GRAM_EINVAL, "method grid cannot meet a tolerance for this kernel: %s", why);
    if (order > MAX_ORDER)
        return gram__fail(ctx, GRAM_EINVAL, "the grid's order (interpolation points per dimension) must be <= %d, got %d",
                          MAX_ORDER, order);
    if (info) info->method = GRAM_APPROX_GRID, info->delta = 0.0, info->kernel_evaluations = 0;
    if (M == 0) return GRAM_OK;
    if (N == 0) {
        gram__approx_zero(out, err);
        return GRAM_OK;
    }
    gctx g;
    memset(&g, 0, sizeof g);
    g.ctx = ctx, g.Y = Y, g.X = X, g.W = W, g.M = M, g.N = N, g.D = D, g.V = V, g.nt = gram__threads(ctx);
    kern_of(k, D, &g.K);
    box_of(Y, X, &g.K, D, g.lo, g.span);

    gram_status s = GRAM_OK;
    double *A = gram__calloc((size_t)V, sizeof(double));
    const int64_t m = M / 16 < 1 ? 1 : M / 16 > PILOT ? PILOT : M / 16, step = M / m;
    double *pil = gram__alloc((size_t)(m * V) * sizeof(double)), *col = gram__alloc((size_t)m * sizeof(double));
    double *val = gram__alloc((size_t)(M * V) * sizeof(double)), *need = gram__alloc((size_t)M * sizeof(double));
    int64_t *fails = gram__alloc((size_t)M * sizeof(int64_t)), *rows = gram__alloc((size_t)M * sizeof(int64_t));
    int64_t evals = 0, nf = 0;
    if (!A || !pil || !col || !val || !need || !fails || !rows) {
        s = gram__fail(ctx, GRAM_ENOMEM, "out of memory for the grid's buffers (%lld queries × %lld columns)",
                       (long long)M, (long long)V);
        goto done;
    }
    g.A = A;
    for (int64_t j = 0; j < N; j++)
        for (int64_t v = 0; v < V; v++) A[v] += fabs(W ? gram__get(W, j, v) : 1.0);
    for (int64_t v = 0; v < V; v++) A[v] *= 1.0 + (double)(N + 2) * DBL_EPSILON; /* the rounding of the sum, up */

    /* The pilot: rows step/2 + i·step of Y, summed exactly; η* from a low quantile of each column. */
    {
        gram_array Yp = *Y;
        const size_t es = Y->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);
        Yp.data = (char *)Y->data + (size_t)((step / 2) * Y->row_stride) * es;
        Yp.rows = m;
        Yp.row_stride = Y->row_stride * step;
        gram_array Op = gram_array_f64(pil, m, V);
        if ((s = gram_kernel_sum(ctx, k, &Yp, X, W, &Op))) goto done;
        evals = m * N;
    }
    double eta = INFINITY;
    for (int64_t v = 0; v < V; v++) {
        if (!(A[v] > 0)) continue;
        int64_t nz = 0;
        for (int64_t i = 0; i < m; i++)
            if (pil[i * V + v] != 0.0) col[nz++] = fabs(pil[i * V + v]);
        qsort(col, (size_t)nz, sizeof(double), cmp_double);
        const double q = nz ? col[nz / 16] : 0.0, e = (atol + rtol * PILOT_MARGIN * q) / (g.K.s * A[v]);
        if (e > 0 && e < eta) eta = e;
    }
    if (eta == INFINITY) eta = rtol > 0 ? rtol * PILOT_MARGIN : 1e-3; /* every weight 0, or no pilot value off 0 */
    if (eta > 0.5) eta = 0.5;

    /* η* out of reach (memory, or double precision for the rounding terms): the first pass aims
     * coarser, up to RELAX_MAX times, leaving more to the refinement and the exact sums */
    gplan P;
    int found = 0;
    for (double relax = 1.0; relax <= RELAX_MAX && !found; relax *= 10.0)
        found = plan_best(order, eta * relax > 0.5 ? 0.5 : eta * relax, D, g.span, N, M, V, &P);
    /* a plan dearer than the exact sum (a forced low order, few pairs) leaves it all to the engine */
    const int dear = found && P.cost > 4.0 * (double)M * (double)N + DEAR_SLACK;
    if (dear) found = 0;
    if (!found && (P.p == 0 || dear)) {
        nf = M; /* or no order reaches even the coarsest aim in double precision: every query exact */
        for (int64_t i = 0; i < M; i++) fails[i] = i;
    } else if (!found) {
        s = gram__fail(ctx, GRAM_ENOMEM, "method grid: a grid of %.3g cells (order %d, spacing %.3g lengthscales) "
                       "for D = %lld at rtol %g, atol %g would need %.3g GiB (at most %lld cells and the memory "
                       "available)", P.cells_d, P.p, P.h, (long long)D, rtol, atol, P.bytes / 1073741824.0,
                       (long long)GRID_MAX_CELLS);
        goto done;
    }
    double eta_run;
    if (found) {
        if ((s = grid_pass(&g, &P, NULL, M, val, &eta_run))) goto done;
        certify(&g, opt, NULL, M, val, eta_run, out, err, fails, &nf);
        evals += P.T + 1;
    }
    /* Refinement: up to two more passes, finer, over the queries not yet certified, while one is
     * predicted cheaper than their exact sums. */
    for (int pass = 0; found && pass < 2 && nf > 0; pass++) {
        const int64_t nq = nf;
        memcpy(rows, fails, (size_t)nq * sizeof(int64_t));
        if (pass == 0) /* pass 1 wrote val by query: keep the failed ones' values, in order (rows[q] ≥ q) */
            for (int64_t q = 0; q < nq; q++)
                for (int64_t v = 0; v < V; v++) val[q * V + v] = val[rows[q] * V + v];
        const double e2 = refine_eta(&g, opt, nq, val, need, order);
        gplan P2;
        if (!(e2 > 0) || !plan_best(order, e2, D, g.span, N, nq, V, &P2)) break;
        if ((s = grid_pass(&g, &P2, rows, nq, val, &eta_run))) goto done;
        certify(&g, opt, rows, nq, val, eta_run, out, err, fails, &nf);
        evals += P2.T + 1;
    }

    /* Fallback: the uncertified queries, summed exactly in batches of gathered rows. */
    if (nf > 0) {
        const int64_t B = nf < 256 ? nf : 256;
        const size_t es = Y->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);
        void *yb = gram__alloc((size_t)(B * D) * es);
        double *ob = gram__alloc((size_t)(B * V) * sizeof(double));
        if (!yb || !ob) {
            gram__free(yb), gram__free(ob);
            s = gram__fail(ctx, GRAM_ENOMEM, "out of memory for the grid's exact fallback");
            goto done;
        }
        for (int64_t b0 = 0; b0 < nf && !s; b0 += B) {
            const int64_t nb = nf - b0 < B ? nf - b0 : B;
            for (int64_t r = 0; r < nb; r++)
                for (int64_t d = 0; d < D; d++) {
                    const double y = gram__get(Y, fails[b0 + r], d);
                    if (Y->dtype == GRAM_FLOAT64) ((double *)yb)[r * D + d] = y;
                    else ((float *)yb)[r * D + d] = (float)y;
                }
            gram_array Yb = Y->dtype == GRAM_FLOAT64 ? gram_array_f64(yb, nb, D) : gram_array_f32(yb, nb, D);
            gram_array Ob = gram_array_f64(ob, nb, V);
            if ((s = gram_kernel_sum(ctx, k, &Yb, X, W, &Ob))) break;
            for (int64_t r = 0; r < nb; r++)
                for (int64_t v = 0; v < V; v++) {
                    gram__put(out, fails[b0 + r], v, ob[r * V + v]);
                    if (err) gram__put(err, fails[b0 + r], v, 0.0);
                }
            evals += nb * N;
        }
        gram__free(yb), gram__free(ob);
    }
    if (info) info->kernel_evaluations = evals;

done:
    gram__free(A), gram__free(pil), gram__free(col), gram__free(val), gram__free(need), gram__free(fails);
    gram__free(rows);
    return s;
}
