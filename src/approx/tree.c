/* tree: kernel sums with deterministic bounds from kd-trees (docs/approx.md, "Tree").
 *
 * X is split into a kd-tree whose nodes carry their bounding box and, per weight column, the sums
 * of the positive weights (wp) and of the magnitudes of the negative ones (wn). Y is split by the
 * same builder; its leaves are the query blocks, each with its box. For a monotone radial kernel
 * f (non-increasing in the scaled distance t) and any y in a box A and x in a box B,
 *     f(tmax(A, B)) ≤ k(y, x) ≤ f(tmin(A, B)),
 * so with kmin ≤ k ≤ kmax and k ≥ 0 a node's contribution Σ_j k(y, x_j) w_j lies in
 *     [kmin·wp − kmax·wn,  kmax·wp − kmin·wn],   width (kmax − kmin)·(wp + wn),
 * for non-negative and signed weights alike. Each query block walks the X tree nearer child first;
 * a node is pruned when its width fits its share of the tolerance (below), X leaves that cannot be
 * pruned are summed exactly by the engine (gathered rows, one call per batch), and every query
 * ends with an interval [L, U] that holds its exact sum. No kernel value is computed here: only
 * the family's scalar function at box distances (bounds), never a pair loop.
 *
 * Pruning (Gray & Moore 2003, "Nonparametric density estimation: toward computational
 * tractability", SDM; the budget split by weight as in their dual-tree KDE): with F = [Flo, Fhi]
 * the block's running interval (the sum over the walk's frontier of the nodes' block bounds, valid
 * for every query of the block), a node n is pruned for column v when
 *     width_v(n) ≤ 2·share_v(n)·(atol + rtol·max(0, Flo_v, −Fhi_v)),
 *     share_v(n) = (wp + wn)_v(n) / (wp + wn)_v(root).
 * The shares of the pruned nodes add up to ≤ 1 and F only narrows as the walk refines it, so the
 * final half-width Σ width/2 ≤ atol + rtol·max(0, Flo, −Fhi) ≤ atol + rtol·|exact|: the tolerance
 * holds a priori. It is nevertheless checked per query at the end, with the query's own (tighter)
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
 * the result is bit-identical for every thread count. Memory: the permuted copies of X (in double
 * and in its dtype), of Y and of W, two boxes per node, O((N + M)·(D + V)) in all, and per thread a
 * batch of at most BATCH rows. */
#include "approx.h"

#include "../engine/engine.h"
#include "../kernel/kernel.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum {
    LEAF_X = 64,  /* X points per leaf: one leaf is 8 engine tiles of 8 × 256 at BLOCK_Y = 64 */
    BLOCK_Y = 16, /* queries per block */
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
    double *flo, *fhi, *clo, *chi; /* V */
    double *slo, *shi;           /* the stack's intervals: depth × V */
    int64_t *stack, *exact;
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
static gram_status flush(const job *J, work *w, int64_t nq, int64_t nrows, int64_t *evals)
{
    if (nrows == 0) return GRAM_OK;
    const gram_array Yb = {w->yb, J->dtype, nq, J->D, J->D, 1}, Xb = {w->xb, J->dtype, J->np + nrows, J->D, J->D, 1};
    const gram_array Wb = gram_array_f64(w->wb, J->np + nrows, J->V);
    gram_array O = gram_array_f64(w->tmp, nq, J->V);
    gram_status s = gram_kernel_sum(w->ctx, J->k, &Yb, &Xb, &Wb, &O);
    if (s) return s;
    for (int64_t i = 0; i < nq * J->V; i++) w->E[i] += w->tmp[i];
    *evals += nq * nrows;
    return GRAM_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One query block (leaf b of Y's tree): the walk, the exact leaves, the check, the output rows. */
static gram_status run_block(const job *J, work *w, int64_t b, gram_array *out, gram_array *err, int64_t *evals)
{
    const kdtree *X = J->X, *Y = J->Y;
    const int64_t V = J->V, D = J->D, q0 = Y->start[b], nq = Y->end[b] - q0;
    const double *blo = Y->lo + b * D, *bhi = Y->hi + b * D;
    const size_t vb = (size_t)V * sizeof(double), rowb = (size_t)D * J->es;
    gram_status s;
    *evals = 0;
    memset(w->E, 0, (size_t)nq * vb), memset(w->Lp, 0, (size_t)nq * vb), memset(w->Up, 0, (size_t)nq * vb);
    if (rowb) memcpy(w->yb, (const char *)Y->pt + (size_t)q0 * rowb, (size_t)nq * rowb);

    int64_t sp = 1, ne = 0;
    w->stack[0] = 0;
    node_bounds(J, blo, bhi, 0, w->slo, w->shi);
    memcpy(w->flo, w->slo, vb), memcpy(w->fhi, w->shi, vb);
    while (sp > 0) {
        const int64_t n = w->stack[--sp];
        double *nlo = w->slo + sp * V, *nhi = w->shi + sp * V;
        int prune = 1;
        for (int64_t v = 0; v < V && prune; v++) {
            const double tot = X->wp[v] + X->wn[v];
            const double share = tot > 0 ? (X->wp[n * V + v] + X->wn[n * V + v]) / tot : 0.0;
            double lb = w->flo[v] > -w->fhi[v] ? w->flo[v] : -w->fhi[v];
            if (!(lb > 0)) lb = 0.0;
            prune = nhi[v] - nlo[v] <= 2.0 * share * (J->atol + J->rtol * lb);
        }
        if (prune) {
            const double *xlo = X->lo + n * D, *xhi = X->hi + n * D;
            for (int64_t i = 0; i < nq; i++) {
                const double *y = Y->pd + (q0 + i) * D;
                double tmin, tmax, kmin, kmax;
                t_range(J->K, y, y, xlo, xhi, &tmin, &tmax);
                k_range(J->K, tmin, tmax, &kmin, &kmax);
                for (int64_t v = 0; v < V; v++) {
                    const double p = X->wp[n * V + v], q = X->wn[n * V + v];
                    w->Lp[i * V + v] += kmin * p - kmax * q;
                    w->Up[i * V + v] += kmax * p - kmin * q;
                }
            }
        } else if (X->left[n] < 0) {
            w->exact[ne++] = n;
        } else {
            /* The children replace n on the frontier; the nearer one is walked first. */
            memcpy(w->clo, nlo, vb), memcpy(w->chi, nhi, vb);
            int64_t a = X->left[n], c = X->right[n];
            const double ta = node_bounds(J, blo, bhi, a, w->slo + sp * V, w->shi + sp * V);
            const double tc = node_bounds(J, blo, bhi, c, w->slo + (sp + 1) * V, w->shi + (sp + 1) * V);
            for (int64_t v = 0; v < V; v++) {
                w->flo[v] += w->slo[sp * V + v] + w->slo[(sp + 1) * V + v] - w->clo[v];
                w->fhi[v] += w->shi[sp * V + v] + w->shi[(sp + 1) * V + v] - w->chi[v];
            }
            if (ta <= tc) { /* a on top */
                for (int64_t v = 0; v < V; v++) {
                    double t = w->slo[sp * V + v];
                    w->slo[sp * V + v] = w->slo[(sp + 1) * V + v], w->slo[(sp + 1) * V + v] = t;
                    t = w->shi[sp * V + v];
                    w->shi[sp * V + v] = w->shi[(sp + 1) * V + v], w->shi[(sp + 1) * V + v] = t;
                }
                const int64_t t = a;
                a = c, c = t;
            }
            w->stack[sp] = a, w->stack[sp + 1] = c;
            sp += 2;
        }
    }

    /* Exact leaves in the order of X's permuted rows (preorder ids), gathered into batches. */
    qsort(w->exact, (size_t)ne, sizeof(int64_t), cmp_i64);
    int64_t nrows = 0;
    for (int64_t e = 0; e < ne; e++) {
        const int64_t n = w->exact[e], r0 = X->start[n], len = X->end[n] - r0;
        if (nrows + len > J->batch && (s = flush(J, w, nq, nrows, evals))) return s;
        if (nrows + len > J->batch) nrows = 0;
        const int64_t at = J->np + nrows;
        if (rowb) memcpy((char *)w->xb + (size_t)at * rowb, (const char *)X->pt + (size_t)r0 * rowb, (size_t)len * rowb);
        memcpy(w->wb + at * V, X->w + r0 * V, (size_t)len * vb);
        nrows += len;
    }
    if ((s = flush(J, w, nq, nrows, evals))) return s;

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

static int64_t tree_depth(int64_t n, int64_t leaf) { return n <= leaf ? 1 : 1 + tree_depth(n - n / 2, leaf); }

gram_status gram__approx_tree(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_array *W, const gram_approx_options *opt, gram_array *out, gram_array *err,
                              gram_approx_info *info)
{
    const char *why;
    if (!gram__approx_tree_supports(k, &why))
        return gram__fail(ctx, GRAM_EINVAL, "the tree method cannot bound this kernel: %s", why);
    const int64_t M = Y->rows, N = X->rows, D = X->cols, V = W ? W->cols : 1;
    if (info) info->method = GRAM_APPROX_TREE, info->delta = 0.0, info->kernel_evaluations = 0;
    if (M == 0 || V == 0) return GRAM_OK;
    if (N == 0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t v = 0; v < V; v++) {
                gram__put(out, i, v, 0.0);
                if (err) gram__put(err, i, v, 0.0);
            }
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

    const int64_t leaf = opt && opt->leaf_size > 0 ? opt->leaf_size : LEAF_X;
    kdtree TX, TY;
    gram_status s = tree_build(ctx, &TX, &K, X, W, V, leaf, "X");
    if (s) return s;
    if ((s = tree_build(ctx, &TY, &K, Y, NULL, 0, BLOCK_Y, "Y"))) {
        tree_free(&TX);
        return s;
    }
    int64_t nb = 0;
    for (int64_t n = 0; n < TY.n_nodes; n++) nb += TY.left[n] < 0;
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
        const size_t qv = (size_t)BLOCK_Y * (size_t)V * sizeof(double), dv = (size_t)depth * (size_t)V * sizeof(double);
        ok = gram_context_create(&w->ctx) == GRAM_OK;
        if (!ok) break;
        w->ctx->threads = 1;
        if (ctx) w->ctx->arch = ctx->arch;
        w->E = gram__alloc(qv), w->Lp = gram__alloc(qv), w->Up = gram__alloc(qv), w->tmp = gram__alloc(qv);
        w->flo = gram__alloc((size_t)V * sizeof(double)), w->fhi = gram__alloc((size_t)V * sizeof(double));
        w->clo = gram__alloc((size_t)V * sizeof(double)), w->chi = gram__alloc((size_t)V * sizeof(double));
        w->slo = gram__alloc(dv), w->shi = gram__alloc(dv);
        w->stack = gram__alloc((size_t)depth * sizeof(int64_t));
        w->exact = gram__alloc((size_t)(nleaves > BLOCK_Y ? nleaves : BLOCK_Y) * sizeof(int64_t));
        w->xb = gram__alloc((size_t)(J.batch + J.np) * (size_t)(D > 0 ? D : 1) * J.es);
        w->yb = gram__alloc((size_t)BLOCK_Y * (size_t)(D > 0 ? D : 1) * J.es);
        w->wb = gram__alloc((size_t)(J.batch + J.np) * (size_t)V * sizeof(double));
        ok = w->E && w->Lp && w->Up && w->tmp && w->flo && w->fhi && w->clo && w->chi && w->slo && w->shi &&
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
        for (int64_t n = 0; n < TY.n_nodes; n++)
            if (TY.left[n] < 0) blocks[nb++] = n;
        /* The first failure in block order is the one reported, with its thread's message. */
        int64_t bad = nb;
        char msg[GRAM_MSG_SIZE];
        msg[0] = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t bi = 0; bi < nb; bi++) {
            work *w = &ws[omp_get_thread_num()];
            bst[bi] = run_block(&J, w, blocks[bi], out, err, &bev[bi]);
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
        if (info) info->kernel_evaluations = total;
    } else {
        s = gram__fail(ctx, GRAM_ENOMEM, "out of memory for the tree's buffers (%d threads)", nt);
    }
    for (int t = 0; ws && t < nt; t++) {
        work *w = &ws[t];
        gram_context_destroy(w->ctx);
        gram__free(w->E), gram__free(w->Lp), gram__free(w->Up), gram__free(w->tmp), gram__free(w->flo);
        gram__free(w->fhi), gram__free(w->clo), gram__free(w->chi), gram__free(w->slo), gram__free(w->shi);
        gram__free(w->stack), gram__free(w->exact), gram__free(w->xb), gram__free(w->yb), gram__free(w->wb);
    }
    gram__free(ws), gram__free(blocks), gram__free(bev), gram__free(bst);
    tree_free(&TX), tree_free(&TY);
    return s;
}
