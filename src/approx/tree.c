/* tree: kernel sums with deterministic bounds from kd-trees (docs/approx.md, "Tree").
 *
 * X is split into a kd-tree whose nodes carry their bounding box and, per weight column, the sums
 * of the positive weights (wp) and of the magnitudes of the negative ones (wn). Y is split by the
 * same builder into leaves of SUB_Y queries; its largest nodes of at most BLOCK_Y queries are the
 * query blocks, their leaves the sub-blocks, each with its box. For a monotone radial kernel
 * f (non-increasing in the scaled distance t) and any y in a box A and x in a box B,
 *     f(tmax(A, B)) ≤ k(y, x) ≤ f(tmin(A, B)),
 * so with kmin ≤ k ≤ kmax and k ≥ 0 a node's contribution Σ_j k(y, x_j) w_j lies in
 *     [kmin·wp − kmax·wn,  kmax·wp − kmin·wn],   width (kmax − kmin)·(wp + wn),
 * for non-negative and signed weights alike. Each query block walks the X tree nearer child first;
 * a node is pruned when its width fits its share of the tolerance in every sub-block (below), X
 * leaves that some sub-blocks cannot prune are summed exactly for those by the engine (gathered
 * rows, one call per batch, the whole block's 64 rows where all need it: the engine is ~1.5×
 * faster per pair on 64 rows than on 16), and every query ends with an interval [L, U] that holds
 * its exact sum. No kernel value is computed here: only
 * the family's scalar function at box distances (bounds), never a pair loop.
 *
 * Pruning (Gray & Moore 2003, "Nonparametric density estimation: toward computational
 * tractability", SDM: the budget split by weight, with what exact and cheaply pruned nodes leave
 * unused passed on), per sub-block: with F = [Flo, Fhi] its running interval (the sum over the
 * walk's frontier of the nodes' bounds for its box, valid for each of its queries), τ = atol + rtol·
 * max(0, Flo_v, −Fhi_v), share_v(n) = (wp + wn)_v(n) / (wp + wn)_v(root), S the shares of the
 * nodes already pruned or summed exactly and U the half-widths already pruned, a node n is pruned
 * for column v when
 *     U + width_v(n)/2 ≤ (S + share_v(n))·τ.
 * F only narrows as the walk refines it, so τ only grows, U ≤ S·τ holds after every step, and S ≤ 1
 * at the end: the final half-width U ≤ atol + rtol·max(0, Flo, −Fhi) ≤ atol + rtol·|exact|, the
 * tolerance a priori. It is nevertheless checked per query at the end, with the query's own (tighter)
 * interval [L, U] = [E + Lp, E + Up] (E the exact part): exact ∈ [L, U], hence
 *     |exact| ≥ max(0, L, −U)     (L ≥ 0: every value in the interval is ≥ L; U ≤ 0 likewise),
 * and out = (L + U)/2 is within (U − L)/2 = (Up − Lp)/2 of exact, so
 *     (Up − Lp)/2 ≤ atol + rtol·max(0, L, −U)
 * proves the tolerance. A query that fails it (rounding of the bounds, NaN from overflowing
 * weights) is summed exactly against all of X instead.
 *
 * Rounding. The bounds are computed in float64 from box coordinates, while the engine rounds the
 * scaled, centred coordinates and the statistic in the data's dtype; t's interval is widened by the
 * engine's error (relative (D + 4)·2ε and absolute 16ε·Σ r_d², r_d the largest scaled coordinate
 * about X's centre, ε of the data's dtype) and k's by 64 ulps, so a point on a compact kernel's
 * edge (tophat at t ≈ 1) cannot fall on the wrong side. The exact parts are the engine's sums,
 * whose own rounding (a few ulps of Σ|k·w|) is outside the bound, as for gram_kernel_sum.
 *
 * Blocks run on OpenMP threads; each block's walk, batches and sums are fixed by the data alone, so
 * the result is bit-identical for every thread count. The progress callback sees query blocks; a
 * cancelled call leaves out partly written. Memory: the permuted copies of X (in double
 * and in its dtype), of Y and of W, two boxes per node, O((N + M)·(D + V)) in all, and per thread a
 * batch of at most BATCH rows. */
#include "approx.h"

#include "../engine/engine.h"
#include "../base/progress.h"
#include "../kernel/kernel.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum {
    LEAF_X = 64,  /* X points per leaf */
    BLOCK_Y = 64, /* queries per block: the engine runs ~1.5× faster per pair on 64 rows than on 16 */
    SUB_Y = 16,   /* queries per leaf of Y's tree: a block's sub-blocks, at most MAX_SUB of them */
    MAX_SUB = 8,
    PILOT = 32,   /* blocks AUTO's pilot walks */
    BATCH = 4096  /* X rows gathered for one engine call */
};

int gram__approx_tree_supports(const gram_kernel *k, const char **why)
{
    const char *w = NULL;
    if (!k) w = "no kernel";
    else if (k->n_leaves != 1 || k->n_ops < 1 || k->ops[0].kind != GRAM_OP_LEAF)
        w = "the tree bounds a single family (optionally times a constant > 0), not a sum, product or power";
    else {
        for (int o = 1; o < k->n_ops && !w; o++)
            if (k->ops[o].kind != GRAM_OP_SCALE || !(k->ops[o].c > 0))
                w = "the tree bounds a single family (optionally times a constant > 0), not a sum, product or power";
        if (!w) switch (k->leaves[0].family) {
            case GRAM_GAUSSIAN: case GRAM_LAPLACIAN: case GRAM_MATERN12: case GRAM_MATERN32: case GRAM_MATERN52:
            case GRAM_MATERN: case GRAM_RATIONAL_QUADRATIC: case GRAM_CAUCHY: case GRAM_TOPHAT:
            case GRAM_EPANECHNIKOV: case GRAM_EXPONENTIAL: case GRAM_TRIANGULAR: case GRAM_COSINE_WINDOW:
            case GRAM_LAPLACIAN_L1: break;
            default:
                w = "its family is not a non-negative, non-increasing function of the distance (the tree's node "
                    "bounds need one: gaussian, laplacian, exponential, matern*, rational_quadratic, cauchy, tophat, "
                    "epanechnikov, triangular, cosine_window, laplacian_l1)";
            }
    }
    if (why) *why = w;
    return w == NULL;
}

/* The kernel as the bounds see it: scale·f(t), t the scaled squared (or L1) distance. */
typedef struct tkern {
    const gram__leaf *leaf;
    double scale;
    int l1;
    const double *inv; /* inv_scale: 1 or D values */
    int64_t n_inv, D;
    double rel, tau, kslack; /* widening of t (relative, absolute) and of k (relative) */
} tkern;

static double inv_of(const tkern *K, int64_t d) { return K->inv[K->n_inv == 1 ? 0 : d]; }

/* t's interval between boxes [alo, ahi] and [blo, bhi] (a point is a box with lo = hi), widened. */
static void t_range(const tkern *K, const double *alo, const double *ahi, const double *blo, const double *bhi,
                    double *tmin, double *tmax)
{
    double mn = 0.0, mx = 0.0;
    for (int64_t d = 0; d < K->D; d++) {
        const double s = inv_of(K, d);
        double g = blo[d] - ahi[d], g2 = alo[d] - bhi[d], f = ahi[d] - blo[d], f2 = bhi[d] - alo[d];
        g = (g > g2 ? g : g2);
        g = g > 0.0 ? g * s : 0.0;
        f = (f > f2 ? f : f2) * s;
        if (K->l1) mn += g, mx += f;
        else mn += g * g, mx += f * f;
    }
    mn = mn * (1.0 - K->rel) - K->tau;
    *tmin = mn > 0.0 ? mn : 0.0;
    *tmax = mx * (1.0 + K->rel) + K->tau;
}

static void k_range(const tkern *K, double tmin, double tmax, double *kmin, double *kmax)
{
    *kmax = K->scale * gram__leaf_radial(K->leaf, tmin) * (1.0 + K->kslack);
    *kmin = K->scale * gram__leaf_radial(K->leaf, tmax) * (1.0 - K->kslack);
    if (!(*kmin > 0.0)) *kmin = 0.0;
}

/* A kd-tree over the rows of a point set: nodes in depth-first order, boxes from their points. */
typedef struct kdtree {
    int64_t n, D, V, n_nodes;
    int64_t *perm;             /* row of the input at each position */
    double *pd;                /* n × D, permuted, double */
    double *lo, *hi;           /* n_nodes × D */
    int64_t *start, *end, *left, *right; /* left = -1: a leaf */
    double *wp, *wn;           /* n_nodes × V (X's tree) */
    double *w;                 /* n × V permuted weights (X's tree) */
    void *pt;                  /* n × D permuted rows in the data's dtype */
} kdtree;

static int64_t count_nodes(int64_t n, int64_t leaf)
{
    return n <= leaf ? 1 : 1 + count_nodes(n / 2, leaf) + count_nodes(n - n / 2, leaf);
}

static void swap64(int64_t *a, int64_t *b) { int64_t t = *a; *a = *b; *b = t; }

/* Puts the k-th smallest key of a[0..n) at k, smaller ones before, larger after (three-way
 * partitions, so runs of equal coordinates cost one pass). */
static void select_nth(int64_t *a, int64_t n, int64_t k, const double *x, int64_t D, int64_t dim)
{
    int64_t lo = 0, hi = n;
    while (hi - lo > 1) {
        double p0 = x[a[lo] * D + dim], p1 = x[a[lo + (hi - lo) / 2] * D + dim], p2 = x[a[hi - 1] * D + dim];
        double p = p0 < p1 ? (p1 < p2 ? p1 : (p0 < p2 ? p2 : p0)) : (p0 < p2 ? p0 : (p1 < p2 ? p2 : p1));
        int64_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            const double v = x[a[i] * D + dim];
            if (v < p) swap64(&a[lt++], &a[i++]);
            else if (v > p) swap64(&a[i], &a[--gt]);
            else i++;
        }
        if (k < lt) hi = lt;
        else if (k >= gt) lo = gt;
        else return;
    }
}

/* Builds node *next over idx[s, e) of xd (rows in input order); returns its index. */
static int64_t build(kdtree *T, const tkern *K, const double *xd, int64_t *idx, int64_t s, int64_t e, int64_t leaf,
                     int64_t *next)
{
    const int64_t id = (*next)++, D = T->D;
    double *lo = T->lo + id * D, *hi = T->hi + id * D;
    for (int64_t d = 0; d < D; d++) lo[d] = INFINITY, hi[d] = -INFINITY;
    for (int64_t i = s; i < e; i++)
        for (int64_t d = 0; d < D; d++) {
            const double v = xd[idx[i] * D + d];
            if (v < lo[d]) lo[d] = v;
            if (v > hi[d]) hi[d] = v;
        }
    T->start[id] = s, T->end[id] = e, T->left[id] = T->right[id] = -1;
    if (e - s <= leaf) return id;
    int64_t dim = 0;
    double best = -1.0;
    for (int64_t d = 0; d < D; d++) {
        const double ext = (hi[d] - lo[d]) * inv_of(K, d);
        if (ext > best) best = ext, dim = d;
    }
    const int64_t mid = s + (e - s) / 2;
    if (D > 0) select_nth(idx + s, e - s, mid - s, xd, D, dim);
    T->left[id] = build(T, K, xd, idx, s, mid, leaf, next);
    T->right[id] = build(T, K, xd, idx, mid, e, leaf, next);
    return id;
}

static void tree_free(kdtree *T)
{
    gram__free(T->perm), gram__free(T->pd), gram__free(T->lo), gram__free(T->hi), gram__free(T->start);
    gram__free(T->end), gram__free(T->left), gram__free(T->right), gram__free(T->wp), gram__free(T->wn);
    gram__free(T->w), gram__free(T->pt);
    memset(T, 0, sizeof *T);
}

/* The tree over A's rows (and W's columns for X's tree: W NULL means ones; V = 0 for queries). */
static gram_status tree_build(gram_context *ctx, kdtree *T, const tkern *K, const gram_array *A, const gram_array *W,
                              int64_t V, int64_t leaf, const char *name)
{
    memset(T, 0, sizeof *T);
    const int64_t n = A->rows, D = A->cols, nn = count_nodes(n, leaf);
    T->n = n, T->D = D, T->V = V, T->n_nodes = nn;
    const size_t es = A->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);
    size_t b_nd, b_nodes, b_nv, b_n, b_pt;
    if (!gram__bytes(n * (D > 0 ? D : 1), sizeof(double), &b_nd) || !gram__bytes(nn * (D > 0 ? D : 1), sizeof(double), &b_nodes) ||
        !gram__bytes(nn * (V > 0 ? V : 1), sizeof(double), &b_nv) || !gram__bytes(n > 0 ? n : 1, sizeof(int64_t), &b_n) ||
        !gram__bytes(n * (D > 0 ? D : 1), es, &b_pt))
        return gram__fail(ctx, GRAM_EOVERFLOW, "the tree over %s (%lld×%lld) is too large to index", name,
                          (long long)n, (long long)D);
    T->perm = gram__alloc(b_n), T->pd = gram__alloc(b_nd), T->lo = gram__alloc(b_nodes), T->hi = gram__alloc(b_nodes);
    T->start = gram__alloc((size_t)nn * sizeof(int64_t)), T->end = gram__alloc((size_t)nn * sizeof(int64_t));
    T->left = gram__alloc((size_t)nn * sizeof(int64_t)), T->right = gram__alloc((size_t)nn * sizeof(int64_t));
    T->pt = gram__alloc(b_pt);
    double *xd = gram__alloc(b_nd);
    int ok = T->perm && T->pd && T->lo && T->hi && T->start && T->end && T->left && T->right && T->pt && xd;
    if (ok && V > 0) {
        size_t b_w;
        ok = gram__bytes(n * V, sizeof(double), &b_w);
        if (ok) {
            T->wp = gram__alloc(b_nv), T->wn = gram__alloc(b_nv), T->w = gram__alloc(b_w > 0 ? b_w : sizeof(double));
            ok = T->wp && T->wn && T->w;
        }
    }
    if (!ok) {
        gram__free(xd);
        tree_free(T);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for the tree over %s (%lld×%lld)", name, (long long)n,
                          (long long)D);
    }
    for (int64_t i = 0; i < n; i++) {
        T->perm[i] = i;
        for (int64_t d = 0; d < D; d++) xd[i * D + d] = gram__get(A, i, d);
    }
    int64_t next = 0;
    if (n > 0) build(T, K, xd, T->perm, 0, n, leaf, &next);
    else T->n_nodes = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t r = T->perm[i];
        for (int64_t d = 0; d < D; d++) {
            T->pd[i * D + d] = xd[r * D + d];
            if (A->dtype == GRAM_FLOAT64) ((double *)T->pt)[i * D + d] = xd[r * D + d];
            else ((float *)T->pt)[i * D + d] = (float)xd[r * D + d];
        }
        for (int64_t v = 0; v < V; v++) T->w[i * V + v] = W ? gram__get(W, r, v) : 1.0;
    }
    gram__free(xd);
    /* Weight sums bottom-up: children follow their parent in depth-first order. */
    for (int64_t id = T->n_nodes - 1; id >= 0 && V > 0; id--) {
        double *p = T->wp + id * V, *q = T->wn + id * V;
        if (T->left[id] < 0) {
            for (int64_t v = 0; v < V; v++) p[v] = q[v] = 0.0;
            for (int64_t i = T->start[id]; i < T->end[id]; i++)
                for (int64_t v = 0; v < V; v++) {
                    const double w = T->w[i * V + v];
                    if (w > 0) p[v] += w;
                    else q[v] -= w;
                }
        } else {
            const int64_t a = T->left[id], b = T->right[id];
            for (int64_t v = 0; v < V; v++) p[v] = T->wp[a * V + v] + T->wp[b * V + v], q[v] = T->wn[a * V + v] + T->wn[b * V + v];
        }
    }
    return GRAM_OK;
}

/* One thread's buffers. */
typedef struct work {
    gram_context *ctx;
    double *E, *Lp, *Up, *tmp;   /* BLOCK_Y × V */
    /* per sub-block and column (MAX_SUB × V): the running interval F, a node's interval, the
     * shares walked past and the half-widths pruned */
    double *flo, *fhi, *clo, *chi, *spent, *used;
    double *slo, *shi;           /* the stack's intervals: depth × MAX_SUB × V */
    int64_t *stack, *exact;      /* exact: leaves summed for the whole block */
    int64_t *pnode;              /* leaves summed for some sub-blocks only, */
    unsigned *pmask;             /* and which */
    void *xb, *yb;               /* batch × D and BLOCK_Y × D, data dtype */
    double *wb;                  /* batch × V */
} work;

typedef struct job {
    const gram_kernel *k;
    const tkern *K;
    const kdtree *X, *Y;
    int64_t V, D, batch, np; /* np phantom rows lead every batch (see flush) */
    double rtol, atol;
    gram_dtype dtype;
    size_t es;
} job;

/* Node n's interval per column for every query in the box [blo, bhi]; returns tmin. */
static double node_bounds(const job *J, const double *blo, const double *bhi, int64_t n, double *lo, double *hi)
{
    const kdtree *X = J->X;
    double tmin, tmax, kmin, kmax;
    t_range(J->K, blo, bhi, X->lo + n * J->D, X->hi + n * J->D, &tmin, &tmax);
    k_range(J->K, tmin, tmax, &kmin, &kmax);
    for (int64_t v = 0; v < J->V; v++) {
        const double p = X->wp[n * J->V + v], q = X->wn[n * J->V + v];
        lo[v] = kmin * p - kmax * q;
        hi[v] = kmax * p - kmin * q;
    }
    return tmin;
}

/* E += the engine's sums of the block's nq queries (yb) against the nrows gathered rows.
 * The engine centres radial data on the midpoint of X's range (rounded to a multiple of the finest
 * ulp of X's coordinates) before scaling, so a pair's kernel value depends, in its last bits, on
 * the other rows of X: on a compact kernel's edge (a tophat at t = 1 ± 1 ulp) even its 0 or 1.
 * Each batch therefore starts with np rows of weight 0 holding X's per-dimension minima, maxima
 * and coordinates of least magnitude, which give the batch X's range and finest ulp: the engine
 * then packs every pair exactly as gram_kernel_sum over all of X does, and only the order of the
 * additions differs. */
static gram_status flush(const job *J, work *w, int64_t q, int64_t nq, int64_t nrows, int64_t *evals)
{
    if (nrows == 0) return GRAM_OK;
    const gram_array Yb = {(char *)w->yb + (size_t)(q * J->D) * J->es, J->dtype, nq, J->D, J->D, 1},
                     Xb = {w->xb, J->dtype, J->np + nrows, J->D, J->D, 1};
    const gram_array Wb = gram_array_f64(w->wb, J->np + nrows, J->V);
    gram_array O = gram_array_f64(w->tmp, nq, J->V);
    gram_status s = gram_kernel_sum(w->ctx, J->k, &Yb, &Xb, &Wb, &O);
    if (s) return s;
    for (int64_t i = 0; i < nq * J->V; i++) w->E[q * J->V + i] += w->tmp[i];
    *evals += nq * nrows;
    return GRAM_OK;
}

/* Node n's share of column v's tolerance: its part of Σ|w|. */
static double share_of(const kdtree *X, int64_t n, int64_t v)
{
    const double tot = X->wp[v] + X->wn[v];
    return tot > 0 ? (X->wp[n * X->V + v] + X->wn[n * X->V + v]) / tot : 0.0;
}

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Gathers the leaves list[0, n) (preorder ids, so rows in order) of X into batches and sums them
 * for queries [q, q + nq) of the block. */
static gram_status sum_leaves(const job *J, work *w, const int64_t *list, int64_t n, int64_t q, int64_t nq,
                              int64_t *evals)
{
    const kdtree *X = J->X;
    const int64_t V = J->V;
    const size_t rowb = (size_t)J->D * J->es;
    gram_status s;
    int64_t nrows = 0;
    for (int64_t e = 0; e < n; e++) {
        const int64_t r0 = X->start[list[e]], len = X->end[list[e]] - r0;
        if (nrows + len > J->batch) {
            if ((s = flush(J, w, q, nq, nrows, evals))) return s;
            nrows = 0;
        }
        const int64_t at = J->np + nrows;
        if (rowb) memcpy((char *)w->xb + (size_t)at * rowb, (const char *)X->pt + (size_t)r0 * rowb, (size_t)len * rowb);
        memcpy(w->wb + at * V, X->w + r0 * V, (size_t)len * (size_t)V * sizeof(double));
        nrows += len;
    }
    return flush(J, w, q, nq, nrows, evals);
}

/* The tolerance of column v for every query of a sub-block now, from its running interval (entry i
 * of F): atol + rtol·(a lower bound of |exact|). */
static double tol_of(const job *J, const work *w, int64_t i, int64_t v)
{
    (void)v;
    double lb = w->flo[i] > -w->fhi[i] ? w->flo[i] : -w->fhi[i];
    return J->atol + J->rtol * (lb > 0 ? lb : 0.0);
}

/* Adds node n's per-query bounds to queries [q0, q1) of the block (rows from the block's first, b0). */
static void add_bounds(const job *J, work *w, int64_t n, int64_t b0, int64_t q0, int64_t q1)
{
    const kdtree *X = J->X;
    const int64_t V = J->V, D = J->D;
    const double *xlo = X->lo + n * D, *xhi = X->hi + n * D;
    for (int64_t i = q0; i < q1; i++) {
        const double *y = J->Y->pd + (b0 + i) * D;
        double tmin, tmax, kmin, kmax;
        t_range(J->K, y, y, xlo, xhi, &tmin, &tmax);
        k_range(J->K, tmin, tmax, &kmin, &kmax);
        for (int64_t v = 0; v < V; v++) {
            const double p = X->wp[n * V + v], q = X->wn[n * V + v];
            w->Lp[i * V + v] += kmin * p - kmax * q;
            w->Up[i * V + v] += kmax * p - kmin * q;
        }
    }
}

/* Node n's intervals for the ns sub-blocks (ns × V values each); returns tmin from the block's box. */
static double sub_bounds(const job *J, const int64_t *sub, int64_t ns, const double *blo, const double *bhi, int64_t n,
                         double *lo, double *hi)
{
    const kdtree *Y = J->Y;
    for (int64_t t = 0; t < ns; t++)
        node_bounds(J, Y->lo + sub[t] * J->D, Y->hi + sub[t] * J->D, n, lo + t * J->V, hi + t * J->V);
    double tmin, tmax;
    t_range(J->K, blo, bhi, J->X->lo + n * J->D, J->X->hi + n * J->D, &tmin, &tmax);
    return tmin;
}

/* One query block (node b of Y's tree, at most BLOCK_Y queries, whose leaves are its sub-blocks):
 * the walk, the exact leaves, the check, the output rows. Bounds, running intervals and budgets
 * are kept per sub-block (a block that straddles two clusters would otherwise see only loose
 * bounds); a node is pruned or split for the whole block, but an X leaf that some sub-blocks
 * cannot prune is summed exactly for those only. */
static gram_status run_block(const job *J, work *w, int64_t b, gram_array *out, gram_array *err, int64_t *evals,
                             int dry)
{
    const kdtree *X = J->X, *Y = J->Y;
    const int64_t V = J->V, D = J->D, q0 = Y->start[b], nq = Y->end[b] - q0;
    const double *blo = Y->lo + b * D, *bhi = Y->hi + b * D;
    const size_t vb = (size_t)V * sizeof(double), rowb = (size_t)D * J->es;
    gram_status s;
    *evals = 0;
    memset(w->E, 0, (size_t)nq * vb), memset(w->Lp, 0, (size_t)nq * vb), memset(w->Up, 0, (size_t)nq * vb);
    if (rowb) memcpy(w->yb, (const char *)Y->pt + (size_t)q0 * rowb, (size_t)nq * rowb);
    /* the sub-blocks: Y's leaves under b, in preorder (so in row order) */
    int64_t sub[MAX_SUB], ns = 0;
    for (int64_t n = b; n < Y->n_nodes && Y->start[n] < Y->end[b] && ns < MAX_SUB; n++)
        if (Y->left[n] < 0) sub[ns++] = n;
    const unsigned all = (1u << ns) - 1u;
    const int64_t sv = ns * V; /* values per stack entry */
    const size_t svb = (size_t)sv * sizeof(double);

    int64_t sp = 1, ne = 0, np = 0;
    w->stack[0] = 0;
    sub_bounds(J, sub, ns, blo, bhi, 0, w->slo, w->shi);
    memcpy(w->flo, w->slo, svb), memcpy(w->fhi, w->shi, svb);
    memset(w->spent, 0, svb), memset(w->used, 0, svb);
    while (sp > 0) {
        const int64_t n = w->stack[--sp];
        double *nlo = w->slo + sp * sv, *nhi = w->shi + sp * sv;
        unsigned mask = 0; /* the sub-blocks that cannot prune n */
        for (int64_t t = 0; t < ns; t++)
            for (int64_t v = 0; v < V; v++) {
                const int64_t i = t * V + v;
                if (!(0.5 * (nhi[i] - nlo[i]) + w->used[i] <= (w->spent[i] + share_of(X, n, v)) * tol_of(J, w, i, v)))
                    mask |= 1u << t;
            }
        if (mask == 0 || X->left[n] < 0) {
            for (int64_t t = 0; t < ns; t++) {
                const int ok = !(mask >> t & 1u);
                for (int64_t v = 0; v < V; v++) {
                    const int64_t i = t * V + v;
                    w->spent[i] += share_of(X, n, v);
                    if (ok) w->used[i] += 0.5 * (nhi[i] - nlo[i]);
                }
                if (ok) add_bounds(J, w, n, q0, Y->start[sub[t]] - q0, Y->end[sub[t]] - q0);
            }
            if (mask == all) w->exact[ne++] = n;
            else if (mask) w->pnode[np] = n, w->pmask[np++] = mask;
        } else {
            /* The children replace n on the frontier; the nearer one is walked first. */
            memcpy(w->clo, nlo, svb), memcpy(w->chi, nhi, svb);
            int64_t a = X->left[n], c = X->right[n];
            double *alo = w->slo + sp * sv, *ahi = w->shi + sp * sv, *clo = alo + sv, *chi = ahi + sv;
            const double ta = sub_bounds(J, sub, ns, blo, bhi, a, alo, ahi);
            const double tc = sub_bounds(J, sub, ns, blo, bhi, c, clo, chi);
            for (int64_t i = 0; i < sv; i++) {
                w->flo[i] += alo[i] + clo[i] - w->clo[i];
                w->fhi[i] += ahi[i] + chi[i] - w->chi[i];
            }
            if (ta <= tc) { /* a on top */
                for (int64_t i = 0; i < sv; i++) {
                    double t = alo[i];
                    alo[i] = clo[i], clo[i] = t;
                    t = ahi[i];
                    ahi[i] = chi[i], chi[i] = t;
                }
                const int64_t t = a;
                a = c, c = t;
            }
            w->stack[sp] = a, w->stack[sp + 1] = c;
            sp += 2;
        }
    }

    if (dry) { /* the pilot: the pairs the sums would take (the walk never depends on them) */
        for (int64_t e = 0; e < ne; e++) *evals += nq * (X->end[w->exact[e]] - X->start[w->exact[e]]);
        for (int64_t e = 0; e < np; e++)
            for (int64_t t = 0; t < ns; t++)
                if (w->pmask[e] >> t & 1u)
                    *evals += (Y->end[sub[t]] - Y->start[sub[t]]) * (X->end[w->pnode[e]] - X->start[w->pnode[e]]);
        return GRAM_OK;
    }

    /* Exact leaves in the order of X's permuted rows (preorder ids), gathered into batches: those
     * of the whole block with all its queries, the others per sub-block. */
    qsort(w->exact, (size_t)ne, sizeof(int64_t), cmp_i64);
    if ((s = sum_leaves(J, w, w->exact, ne, 0, nq, evals))) return s;
    for (int64_t t = 0; t < ns && np > 0; t++) {
        int64_t m = 0;
        for (int64_t e = 0; e < np; e++)
            if (w->pmask[e] >> t & 1u) w->exact[m++] = w->pnode[e];
        qsort(w->exact, (size_t)m, sizeof(int64_t), cmp_i64);
        const int64_t a = Y->start[sub[t]] - q0, c = Y->end[sub[t]] - q0;
        if ((s = sum_leaves(J, w, w->exact, m, a, c - a, evals))) return s;
    }

    /* The per-query check (the derivation is at the top of the file); failures are summed exactly. */
    int64_t nfail = 0;
    for (int64_t i = 0; i < nq; i++) {
        int fail = 0;
        for (int64_t v = 0; v < V && !fail; v++) {
            const double E = w->E[i * V + v], L = E + w->Lp[i * V + v], U = E + w->Up[i * V + v];
            double lb = L > -U ? L : -U;
            if (!(lb > 0)) lb = 0.0;
            fail = !(0.5 * (w->Up[i * V + v] - w->Lp[i * V + v]) <= J->atol + J->rtol * lb);
        }
        if (fail) {
            if (rowb && nfail != i) memmove((char *)w->yb + (size_t)nfail * rowb, (char *)w->yb + (size_t)i * rowb, rowb);
            w->exact[nfail++] = i;
        }
    }
    if (nfail > 0) {
        const gram_array Yf = {w->yb, J->dtype, nfail, D, D, 1}, Xa = {X->pt, J->dtype, X->n, D, D, 1};
        const gram_array Wa = gram_array_f64(X->w, X->n, V);
        gram_array O = gram_array_f64(w->tmp, nfail, V);
        if ((s = gram_kernel_sum(w->ctx, J->k, &Yf, &Xa, &Wa, &O))) return s;
        for (int64_t f = 0; f < nfail; f++) {
            const int64_t i = w->exact[f];
            for (int64_t v = 0; v < V; v++)
                w->E[i * V + v] = w->tmp[f * V + v], w->Lp[i * V + v] = w->Up[i * V + v] = 0.0;
        }
        *evals += nfail * X->n;
    }
    for (int64_t i = 0; i < nq; i++) {
        const int64_t r = Y->perm[q0 + i];
        for (int64_t v = 0; v < V; v++) {
            const double lp = w->Lp[i * V + v], up = w->Up[i * V + v];
            gram__put(out, r, v, w->E[i * V + v] + 0.5 * (lp + up));
            if (err) gram__put(err, r, v, 0.5 * (up - lp));
        }
    }
    return GRAM_OK;
}

/* The node after n's subtree in preorder (n_nodes at the end). */
static int64_t next_after(const kdtree *T, int64_t n)
{
    int64_t m = n + 1;
    while (m < T->n_nodes && T->start[m] < T->end[n]) m++;
    return m;
}

static int64_t tree_depth(int64_t n, int64_t leaf) { return n <= leaf ? 1 : 1 + tree_depth(n - n / 2, leaf); }

gram_status gram__approx_tree(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_array *W, const gram_approx_options *opt, gram_array *out, gram_array *err,
                              gram_approx_info *info)
{
    return gram__approx_tree_run(ctx, k, Y, X, W, opt, out, err, info, 2.0, NULL);
}

gram_status gram__approx_tree_run(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                  const gram_array *W, const gram_approx_options *opt, gram_array *out,
                                  gram_array *err, gram_approx_info *info, double max_fraction, int *declined)
{
    if (declined) *declined = 0;
    const char *why;
    if (!gram__approx_tree_supports(k, &why))
        return gram__fail(ctx, GRAM_EINVAL, "the tree method cannot bound this kernel: %s", why);
    const int64_t M = Y->rows, N = X->rows, D = X->cols, V = W ? W->cols : 1;
    if (info) info->method = GRAM_APPROX_TREE, info->delta = 0.0, info->kernel_evaluations = 0;
    if (M == 0 || V == 0) return GRAM_OK;
    if (N == 0) {
        gram__approx_zero(out, err);
        return GRAM_OK;
    }

    tkern K;
    K.leaf = &k->leaves[0];
    K.scale = 1.0;
    for (int o = 1; o < k->n_ops; o++) K.scale *= k->ops[o].c;
    K.l1 = K.leaf->structure == GRAM_STRUCT_L1;
    K.inv = K.leaf->inv_scale, K.n_inv = K.leaf->n_scale, K.D = D;
    const double eps = X->dtype == GRAM_FLOAT64 ? DBL_EPSILON : FLT_EPSILON;
    /* The engine's rounding of t (see the top of the file): coordinates about the centre of X's
     * range, scaled. */
    double r1 = 0.0, r2 = 0.0;
    for (int64_t d = 0; d < D; d++) {
        double xl = INFINITY, xh = -INFINITY, al = INFINITY, ah = -INFINITY;
        for (int64_t j = 0; j < N; j++) {
            const double x = gram__get(X, j, d);
            if (x < xl) xl = x;
            if (x > xh) xh = x;
        }
        al = xl, ah = xh;
        for (int64_t i = 0; i < M; i++) {
            const double y = gram__get(Y, i, d);
            if (y < al) al = y;
            if (y > ah) ah = y;
        }
        const double c = 0.5 * xl + 0.5 * xh, a = fabs(al - c), b = fabs(ah - c);
        const double r = (a > b ? a : b) * inv_of(&K, d);
        r1 += r, r2 += r * r;
    }
    K.rel = 2.0 * (double)(D + 4) * eps;
    K.tau = K.l1 ? 4.0 * eps * r1 : 16.0 * eps * r2;
    K.kslack = 64.0 * eps;

    int64_t leaf = opt && opt->leaf_size > 0 ? opt->leaf_size : LEAF_X;
    if (leaf > N) leaf = N; /* one leaf holds everything: its batch need not be larger */
    kdtree TX, TY;
    gram_status s = tree_build(ctx, &TX, &K, X, W, V, leaf, "X");
    if (s) return s;
    if ((s = tree_build(ctx, &TY, &K, Y, NULL, 0, SUB_Y, "Y"))) {
        tree_free(&TX);
        return s;
    }
    /* The blocks: the largest nodes of Y's tree with at most BLOCK_Y queries (preorder). */
    int64_t nb = 0;
    for (int64_t n = 0; n < TY.n_nodes; n = TY.left[n] >= 0 && TY.end[n] - TY.start[n] > BLOCK_Y ? n + 1 : next_after(&TY, n))
        if (TY.end[n] - TY.start[n] <= BLOCK_Y) nb++;
    int64_t *blocks = gram__alloc((size_t)nb * sizeof(int64_t)), *bev = gram__calloc((size_t)nb, sizeof(int64_t));
    gram_status *bst = gram__calloc((size_t)nb, sizeof(gram_status));
    int nt = gram__threads(ctx);
    if (nt > nb) nt = (int)nb;
    nt = gram__team_size(nt);
    job J = {k, &K, &TX, &TY, V, D, leaf > BATCH ? leaf : BATCH, D > 0 ? 3 : 0, opt ? opt->rtol : 0.0,
             opt ? opt->atol : 0.0, X->dtype, X->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float)};
    const int64_t depth = tree_depth(N, leaf) + 2, nleaves = (TX.n_nodes + 1) / 2 + 1;
    work *ws = gram__calloc((size_t)nt, sizeof(work));
    int ok = blocks && bev && bst && ws;
    for (int t = 0; ok && t < nt; t++) {
        work *w = &ws[t];
        const size_t qv = (size_t)BLOCK_Y * (size_t)V * sizeof(double), sv = (size_t)MAX_SUB * (size_t)V * sizeof(double),
                     dv = (size_t)depth * sv;
        ok = gram_context_create(&w->ctx) == GRAM_OK;
        if (!ok) break;
        w->ctx->threads = 1;
        if (ctx) w->ctx->arch = ctx->arch;
        w->E = gram__alloc(qv), w->Lp = gram__alloc(qv), w->Up = gram__alloc(qv), w->tmp = gram__alloc(qv);
        w->flo = gram__alloc(sv), w->fhi = gram__alloc(sv), w->clo = gram__alloc(sv), w->chi = gram__alloc(sv);
        w->spent = gram__alloc(sv), w->used = gram__alloc(sv);
        w->pnode = gram__alloc((size_t)nleaves * sizeof(int64_t)), w->pmask = gram__alloc((size_t)nleaves * sizeof(unsigned));
        w->slo = gram__alloc(dv), w->shi = gram__alloc(dv);
        w->stack = gram__alloc((size_t)depth * sizeof(int64_t));
        w->exact = gram__alloc((size_t)(nleaves > BLOCK_Y ? nleaves : BLOCK_Y) * sizeof(int64_t));
        w->xb = gram__alloc((size_t)(J.batch + J.np) * (size_t)(D > 0 ? D : 1) * J.es);
        w->yb = gram__alloc((size_t)BLOCK_Y * (size_t)(D > 0 ? D : 1) * J.es);
        w->wb = gram__alloc((size_t)(J.batch + J.np) * (size_t)V * sizeof(double));
        ok = w->E && w->Lp && w->Up && w->tmp && w->flo && w->fhi && w->clo && w->chi && w->spent && w->used && w->pnode && w->pmask && w->slo && w->shi &&
             w->stack && w->exact && w->xb && w->yb && w->wb;
        if (ok) { /* the phantom rows (flush): X's minima, maxima, least magnitudes; weight 0 */
            for (int64_t d = 0; d < D; d++) {
                double a = INFINITY, b = -INFINITY, c = INFINITY;
                for (int64_t j = 0; j < N; j++) {
                    const double x = TX.pd[j * D + d];
                    if (x < a) a = x;
                    if (x > b) b = x;
                    if (fabs(x) < fabs(c)) c = x;
                }
                const double ph[3] = {a, b, c};
                for (int64_t r = 0; r < J.np; r++) {
                    if (X->dtype == GRAM_FLOAT64) ((double *)w->xb)[r * D + d] = ph[r];
                    else ((float *)w->xb)[r * D + d] = (float)ph[r];
                }
            }
            memset(w->wb, 0, (size_t)(J.np * V) * sizeof(double));
        }
    }
    if (ok) {
        nb = 0;
        for (int64_t n = 0; n < TY.n_nodes; n = TY.left[n] >= 0 && TY.end[n] - TY.start[n] > BLOCK_Y ? n + 1 : next_after(&TY, n))
            if (TY.end[n] - TY.start[n] <= BLOCK_Y) blocks[nb++] = n;
        if (declined && max_fraction < 1.0) {
            /* The pilot: walks without sums over up to PILOT blocks spread over Y's order. */
            const int64_t ns = nb < PILOT ? nb : PILOT;
            double pairs = 0.0, queries = 0.0;
            for (int64_t i = 0; i < ns; i++) {
                const int64_t b = blocks[i * nb / ns];
                int64_t ev = 0;
                run_block(&J, &ws[0], b, out, err, &ev, 1);
                pairs += (double)ev, queries += (double)(TY.end[b] - TY.start[b]);
            }
            if (pairs > max_fraction * queries * (double)N) *declined = 1;
        }
    }
    if (ok && !(declined && *declined)) {
        /* The first failure in block order is the one reported, with its thread's message. */
        int64_t bad = nb;
        char msg[GRAM_MSG_SIZE];
        msg[0] = 0;
        gram__progress ps = {0, nb, 0};
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t bi = 0; bi < nb; bi++) {
            if (gram__progress_cancelled(&ps)) continue;
            work *w = &ws[omp_get_thread_num()];
            bst[bi] = run_block(&J, w, blocks[bi], out, err, &bev[bi], 0);
            gram__progress_report(ctx, &ps, 1);
            if (bst[bi]) {
#pragma omp critical(gram_approx_tree_fail)
                if (bi < bad) {
                    bad = bi;
                    memcpy(msg, w->ctx->message, sizeof msg);
                }
            }
        }
        int64_t total = 0;
        for (int64_t bi = 0; bi < nb; bi++) total = total > INT64_MAX - bev[bi] ? INT64_MAX : total + bev[bi];
        if (bad < nb) s = gram__fail(ctx, bst[bad], "tree: %s", msg);
        else if (ps.cancelled)
            s = gram__fail(ctx, GRAM_ECANCELLED, "cancelled by the progress callback after %lld of %lld query blocks",
                           (long long)ps.done, (long long)nb);
        if (info) info->kernel_evaluations = total;
    } else if (!ok) {
        s = gram__fail(ctx, GRAM_ENOMEM, "out of memory for the tree's buffers (%d threads)", nt);
    }
    for (int t = 0; ws && t < nt; t++) {
        work *w = &ws[t];
        gram_context_destroy(w->ctx);
        gram__free(w->E), gram__free(w->Lp), gram__free(w->Up), gram__free(w->tmp), gram__free(w->flo);
        gram__free(w->fhi), gram__free(w->clo), gram__free(w->chi), gram__free(w->spent), gram__free(w->used),
        gram__free(w->pnode), gram__free(w->pmask), gram__free(w->slo), gram__free(w->shi);
        gram__free(w->stack), gram__free(w->exact), gram__free(w->xb), gram__free(w->yb), gram__free(w->wb);
    }
    gram__free(ws), gram__free(blocks), gram__free(bev), gram__free(bst);
    tree_free(&TX), tree_free(&TY);
    return s;
}
