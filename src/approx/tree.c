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
 * for non-negative and signed weights alike. Each query block walks the X tree nearer child first,
 * each node of the walk carrying the set of sub-blocks still undecided about it: a sub-block prunes
 * a node when its width fits its share of the tolerance (below), and an X leaf that a sub-block
 * cannot prune is summed exactly for it at once, by the engine over X packed once in the tree's
 * order (gram__packed_sum: no copy, no re-packing; consecutive sub-blocks in one call), so that
 * the sums found so far tighten the lower bound of every later decision. Every query ends with an
 * interval [L, U] that holds its exact sum. No kernel value is computed here: only the family's
 * scalar function at box distances (bounds), never a pair loop.
 *
 * Pruning (Gray & Moore 2003, "Nonparametric density estimation: toward computational
 * tractability", SDM: the budget split by weight, with what exact and cheaply pruned nodes leave
 * unused passed on), per sub-block and column v: G = [Glo, Ghi] is the sum of the box bounds of
 * the nodes still on the walk's stack for it; a query i of the sub-block has its exact part E_i and
 * the pruned nodes' bounds [Lp_i, Up_i] from its own point, so its exact sum lies in
 * [E_i + Lp_i + Glo, E_i + Up_i + Ghi] and
 *     τ = atol + rtol·min_i max(0, E_i + Lp_i + Glo, −(E_i + Up_i + Ghi))
 * is at most atol + rtol·|exact_i| for every query of the sub-block. With share_v(n) =
 * (wp + wn)_v(n) / (wp + wn)_v(root), S the shares of the nodes it has already pruned or summed
 * exactly and U the half-widths it has pruned, the sub-block prunes n when
 *     U + width_v(n)/2 ≤ (S + share_v(n))·τ.
 * Each step only narrows the queries' intervals (a pruned node's per-query bound and an exact sum
 * lie within its box bound, children's boxes within their parent's), so τ only grows, U ≤ S·τ holds
 * after every step, and S ≤ 1 at the end: the final half-width U ≤ atol + rtol·|exact|, the
 * tolerance a priori. It is nevertheless checked per query at the end, with the query's own
 * interval [L, U] = [E + Lp, E + Up]: exact ∈ [L, U], hence
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
 * edge (tophat at t ≈ 1) cannot fall on the wrong side. The packed X holds the same points as X
 * (leaves padded with copies of their last point, weight 0), so the engine centres and scales them
 * as gram_kernel_sum over X does and every pair's value is bit for bit gram_kernel_sum's; the
 * exact parts' own rounding (a few ulps of Σ|k·w|, in another order) is outside the bound, as for
 * gram_kernel_sum.
 *
 * Blocks run on OpenMP threads; each block's walk and sums are fixed by the data alone, so the
 * result is bit-identical for every thread count. The progress callback sees query blocks; a
 * cancelled call leaves out partly written. Memory: X, Y and W permuted (in float64 for the
 * bounds, and packed by the engine), two boxes per node, O((N + M)·(D + V)) in all. */
#include "approx.h"

#include "../engine/engine.h"
#include "../base/progress.h"
#include "../kernel/kernel.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Small query boxes prune far more in several dimensions (flights, D = 8, rtol 1e-3: 11% of the
 * pairs summed with sub-blocks of 16, 4.3% with 4), and the walk's cost grows only slowly as
 * they shrink; a block's sub-blocks share its walk and, where consecutive, its engine calls. */
enum {
    LEAF_X = 64,  /* X points per leaf */
    BLOCK_Y = 16, /* queries per block */
    SUB_Y = 4,    /* queries per leaf of Y's tree: a block's sub-blocks (a node of ≤ 16 queries has
                     at most 8 leaves: every leaf under it holds ≥ 2) */
    MAX_SUB = 8,
    PILOT = 32    /* blocks AUTO's pilot runs (512 queries) */
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
    double *sc;        /* the inverse scale of each of the D dimensions */
    double rel, tau, kslack; /* widening of t (relative, absolute) and of k (relative) */
    double t_far;            /* tmax − tmin beyond which kmin is taken as 0 (k_range) */
} tkern;

static double inv_of(const tkern *K, int64_t d) { return K->inv[K->n_inv == 1 ? 0 : d]; }

/* t's interval between boxes [alo, ahi] and [blo, bhi] (a point is a box with lo = hi), widened.
 * The walk's most frequent computation: branch-free so that it vectorises. */
static void t_range(const tkern *K, const double *alo, const double *ahi, const double *blo, const double *bhi,
                    double *tmin, double *tmax)
{
    double mn = 0.0, mx = 0.0;
    const double *sc = K->sc;
    if (K->l1)
        for (int64_t d = 0; d < K->D; d++) {
            const double g1 = blo[d] - ahi[d], g2 = alo[d] - bhi[d], f1 = ahi[d] - blo[d], f2 = bhi[d] - alo[d];
            const double g = g1 > g2 ? g1 : g2;
            mn += (g > 0.0 ? g : 0.0) * sc[d], mx += (f1 > f2 ? f1 : f2) * sc[d];
        }
    else
        for (int64_t d = 0; d < K->D; d++) {
            const double g1 = blo[d] - ahi[d], g2 = alo[d] - bhi[d], f1 = ahi[d] - blo[d], f2 = bhi[d] - alo[d];
            double g = g1 > g2 ? g1 : g2, f = f1 > f2 ? f1 : f2;
            g = (g > 0.0 ? g : 0.0) * sc[d], f *= sc[d];
            mn += g * g, mx += f * f;
        }
    mn = mn * (1.0 - K->rel) - K->tau;
    *tmin = mn > 0.0 ? mn : 0.0;
    *tmax = mx * (1.0 + K->rel) + K->tau;
}

/* kmin is taken as 0 where f(tmax)/f(tmin) < 1e-10 is known from t alone (gaussian: e^{-(tmax -
 * tmin)/2}, laplacian_l1: e^{-(tmax - tmin)}): a valid bound, as tight as the exact one but for
 * 1e-10·kmax, and one exp fewer on most of the walk's far nodes. */
static void k_range(const tkern *K, double tmin, double tmax, double *kmin, double *kmax)
{
    *kmax = K->scale * gram__leaf_radial(K->leaf, tmin) * (1.0 + K->kslack);
    if (tmax - tmin > K->t_far) {
        *kmin = 0.0;
        return;
    }
    *kmin = K->scale * gram__leaf_radial(K->leaf, tmax) * (1.0 - K->kslack);
    if (!(*kmin > 0.0)) *kmin = 0.0;
}

/* A coordinate and its row, for the splits' selections. */
typedef struct keyrow {
    double key;
    int64_t row;
} keyrow;

static void swap_kr(keyrow *a, keyrow *b) { const keyrow t = *a; *a = *b; *b = t; }

/* Puts the k-th smallest key of a[0..n) at k, smaller ones before, larger after (three-way
 * partitions, so runs of equal coordinates cost one pass). */
static void select_nth(keyrow *a, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n;
    while (hi - lo > 1) {
        double p0 = a[lo].key, p1 = a[lo + (hi - lo) / 2].key, p2 = a[hi - 1].key;
        double p = p0 < p1 ? (p1 < p2 ? p1 : (p0 < p2 ? p2 : p0)) : (p0 < p2 ? p0 : (p1 < p2 ? p2 : p1));
        int64_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            const double v = a[i].key;
            if (v < p) swap_kr(&a[lt++], &a[i++]);
            else if (v > p) swap_kr(&a[i], &a[--gt]);
            else i++;
        }
        if (k < lt) hi = lt;
        else if (k >= gt) lo = gt;
        else return;
    }
}

/* Where node [s, e) splits: at the median, rounded up to a whole panel of the engine's packed
 * data when leaves hold at least a panel, so that every leaf starts on a panel (gram__packed_sum's
 * ranges) without padding. */
static int64_t split_at(int64_t s, int64_t e, int64_t leaf)
{
    const int64_t h = (e - s) / 2, m = (h + GRAM_PANEL - 1) / GRAM_PANEL * GRAM_PANEL;
    return s + (leaf >= GRAM_PANEL && m < e - s ? m : h);
}

static int64_t count_nodes(int64_t s, int64_t e, int64_t leaf, int64_t depth, int64_t *max_depth)
{
    if (depth > *max_depth) *max_depth = depth;
    if (e - s <= leaf) return 1;
    const int64_t m = split_at(s, e, leaf);
    return 1 + count_nodes(s, m, leaf, depth + 1, max_depth) + count_nodes(m, e, leaf, depth + 1, max_depth);
}

/* A kd-tree over the rows of a point set: nodes in depth-first order, boxes from their points. */
typedef struct kdtree {
    int64_t n, D, V, n_nodes, depth;
    int64_t *perm;             /* row of the input at each position */
    double *pd;                /* n × D, permuted, double */
    double *lo, *hi;           /* n_nodes × D */
    int64_t *start, *end, *left, *right; /* left = -1: a leaf */
    int64_t *ps, *pe;          /* X's tree: the node's rows in the packed X (on whole panels, but for
                                  the last leaf's end; padding rows have weight 0) */
    int64_t n_packed;          /* rows of the packed X */
    double *wp, *wn;           /* n_nodes × V (X's tree) */
    double *share;             /* n_nodes × V: (wp + wn) / (wp + wn) of the root, 0 where that is 0 */
    double *w;                 /* n × V permuted weights (X's tree) */
    void *pt;                  /* Y's tree: n × D permuted rows in the data's dtype */
} kdtree;

/* The builder's scratch, indexed as the rows: the selection's keys, the rows and perm in their new
 * order. */
typedef struct bwork {
    keyrow *kr;
    double *rows;
    int64_t *perm;
} bwork;

/* Builds node id over rows [s, e) of xd, whose box the caller wrote (moving the rows into the
 * tree's order, perm with them). The split selects on a compact copy of the coordinate, then moves
 * the rows once, writing the children's boxes as it goes: the rows are read in order, once per
 * level. Children's ids are fixed by the sizes alone (preorder), so large subtrees are built as
 * OpenMP tasks and the tree is the same for every thread count. */
static void build(kdtree *T, const tkern *K, const bwork *B, double *xd, int64_t *perm, int64_t id, int64_t s,
                  int64_t e, int64_t leaf)
{
    const int64_t D = T->D;
    const double *lo = T->lo + id * D, *hi = T->hi + id * D;
    T->start[id] = s, T->end[id] = e, T->left[id] = T->right[id] = -1;
    if (e - s <= leaf) return;
    int64_t dim = 0, unused = 0;
    double best = -1.0;
    for (int64_t d = 0; d < D; d++) {
        const double ext = (hi[d] - lo[d]) * inv_of(K, d);
        if (ext > best) best = ext, dim = d;
    }
    const int64_t mid = split_at(s, e, leaf), n = e - s, h = mid - s;
    const int64_t a = id + 1, c = id + 1 + count_nodes(s, mid, leaf, 0, &unused);
    double *llo = T->lo + a * D, *lhi = T->hi + a * D, *rlo = T->lo + c * D, *rhi = T->hi + c * D;
    for (int64_t d = 0; d < D; d++) llo[d] = rlo[d] = INFINITY, lhi[d] = rhi[d] = -INFINITY;
    keyrow *kr = B->kr + s;
    if (D > 0) {
        for (int64_t i = 0; i < n; i++) kr[i].key = xd[(s + i) * D + dim], kr[i].row = i;
        select_nth(kr, n, h);
    }
    double *rows = B->rows + s * D;
    int64_t *pm = B->perm + s;
    for (int64_t i = 0; i < n; i++) {
        const int64_t r = D > 0 ? kr[i].row : i;
        const double *x = xd + (s + r) * D;
        double *to = rows + i * D, *bl = i < h ? llo : rlo, *bh = i < h ? lhi : rhi;
        for (int64_t d = 0; d < D; d++) {
            to[d] = x[d];
            bl[d] = x[d] < bl[d] ? x[d] : bl[d];
            bh[d] = x[d] > bh[d] ? x[d] : bh[d];
        }
        pm[i] = perm[s + r];
    }
    memcpy(xd + s * D, rows, (size_t)(n * D) * sizeof(double));
    memcpy(perm + s, pm, (size_t)n * sizeof(int64_t));
    T->left[id] = a, T->right[id] = c;
    if (n >= 8192) {
#pragma omp task
        build(T, K, B, xd, perm, a, s, mid, leaf);
#pragma omp task
        build(T, K, B, xd, perm, c, mid, e, leaf);
    } else {
        build(T, K, B, xd, perm, a, s, mid, leaf);
        build(T, K, B, xd, perm, c, mid, e, leaf);
    }
}

static void tree_free(kdtree *T)
{
    gram__free(T->perm), gram__free(T->pd), gram__free(T->lo), gram__free(T->hi), gram__free(T->start);
    gram__free(T->end), gram__free(T->left), gram__free(T->right), gram__free(T->wp), gram__free(T->wn);
    gram__free(T->w), gram__free(T->pt), gram__free(T->ps), gram__free(T->pe), gram__free(T->share);
    memset(T, 0, sizeof *T);
}

/* The tree over A's rows (and W's columns for X's tree: W NULL means ones; V = 0 for queries, whose
 * rows are also kept in their dtype for the engine). */
static gram_status tree_build(gram_context *ctx, kdtree *T, const tkern *K, const gram_array *A, const gram_array *W,
                              int64_t V, int64_t leaf, const char *name)
{
    memset(T, 0, sizeof *T);
    const int64_t n = A->rows, D = A->cols;
    int64_t depth = 0;
    const int64_t nn = n > 0 ? count_nodes(0, n, leaf, 1, &depth) : 1;
    T->n = n, T->D = D, T->V = V, T->n_nodes = nn, T->depth = depth;
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
    int ok = T->perm && T->pd && T->lo && T->hi && T->start && T->end && T->left && T->right;
    if (ok && V == 0) ok = (T->pt = gram__alloc(b_pt)) != NULL;
    if (ok && V > 0) {
        size_t b_w;
        ok = gram__bytes(n * V, sizeof(double), &b_w);
        if (ok) {
            T->wp = gram__alloc(b_nv), T->wn = gram__alloc(b_nv), T->w = gram__alloc(b_w > 0 ? b_w : sizeof(double));
            T->share = gram__alloc(b_nv);
            T->ps = gram__alloc((size_t)nn * sizeof(int64_t)), T->pe = gram__alloc((size_t)nn * sizeof(int64_t));
            ok = T->wp && T->wn && T->w && T->ps && T->pe && T->share;
        }
    }
    if (!ok) {
        tree_free(T);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for the tree over %s (%lld×%lld)", name, (long long)n,
                          (long long)D);
    }
    for (int64_t i = 0; i < n; i++) {
        T->perm[i] = i;
        for (int64_t d = 0; d < D; d++) T->pd[i * D + d] = gram__get(A, i, d);
    }
    if (n > 0) {
        bwork B;
        B.kr = gram__alloc((size_t)n * sizeof(keyrow)), B.rows = gram__alloc(b_nd), B.perm = gram__alloc(b_n);
        if (!B.kr || !B.rows || !B.perm) {
            gram__free(B.kr), gram__free(B.rows), gram__free(B.perm);
            tree_free(T);
            return gram__fail(ctx, GRAM_ENOMEM, "out of memory for the tree over %s (%lld×%lld)", name, (long long)n,
                              (long long)D);
        }
        /* the root's box; the splits write their children's */
        for (int64_t d = 0; d < D; d++) T->lo[d] = INFINITY, T->hi[d] = -INFINITY;
        for (int64_t i = 0; i < n; i++)
            for (int64_t d = 0; d < D; d++) {
                const double v = T->pd[i * D + d];
                T->lo[d] = v < T->lo[d] ? v : T->lo[d];
                T->hi[d] = v > T->hi[d] ? v : T->hi[d];
            }
        int nt = gram__threads(ctx);
        nt = gram__team_size(n >= 16384 ? nt : 1);
#pragma omp parallel num_threads(nt)
#pragma omp single
        build(T, K, &B, T->pd, T->perm, 0, 0, n, leaf);
        gram__free(B.kr), gram__free(B.rows), gram__free(B.perm);
    } else T->n_nodes = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t r = T->perm[i];
        for (int64_t d = 0; d < D && T->pt; d++) {
            if (A->dtype == GRAM_FLOAT64) ((double *)T->pt)[i * D + d] = T->pd[i * D + d];
            else ((float *)T->pt)[i * D + d] = (float)T->pd[i * D + d];
        }
        for (int64_t v = 0; v < V; v++) T->w[i * V + v] = W ? gram__get(W, r, v) : 1.0;
    }
    /* Weight sums and packed ranges bottom-up: children follow their parent in depth-first order,
     * and leaves appear in row order, so a leaf's packed start is known from the leaves before it
     * (filled in preorder first). */
    if (V > 0) {
        int64_t pos = 0;
        for (int64_t id = 0; id < T->n_nodes; id++)
            if (T->left[id] < 0) {
                pos = (pos + GRAM_PANEL - 1) / GRAM_PANEL * GRAM_PANEL;
                T->ps[id] = pos, pos += T->end[id] - T->start[id], T->pe[id] = pos;
            }
        T->n_packed = pos;
        /* a leaf's range ends on a panel (or at the end): its padding rows have weight 0 */
        for (int64_t id = 0; id < T->n_nodes; id++)
            if (T->left[id] < 0 && T->pe[id] % GRAM_PANEL) {
                const int64_t e = (T->pe[id] + GRAM_PANEL - 1) / GRAM_PANEL * GRAM_PANEL;
                T->pe[id] = e < pos ? e : pos;
            }
    }
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
            T->ps[id] = T->ps[a], T->pe[id] = T->pe[b];
        }
    }
    for (int64_t id = 0; id < T->n_nodes && V > 0; id++)
        for (int64_t v = 0; v < V; v++) {
            const double tot = T->wp[v] + T->wn[v];
            T->share[id * V + v] = tot > 0 ? (T->wp[id * V + v] + T->wn[id * V + v]) / tot : 0.0;
        }
    return GRAM_OK;
}

/* X and W in the packed order of X's tree: each leaf's rows from its panel-aligned start, the gaps
 * filled with copies of the leaf's last point with weight 0 (the same points, so the engine's
 * centre is X's), then packed by the engine together with Y in its tree's order. */
static gram_status pack_x(gram_context *ctx, gram__packed *pk, const gram_kernel *k, const kdtree *TX, const kdtree *TY,
                          gram_dtype dtype)
{
    const int64_t D = TX->D, V = TX->V, NP = TX->n_packed;
    const size_t es = dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);
    size_t bx, bw;
    if (!gram__bytes(NP * (D > 0 ? D : 1), es, &bx) || !gram__bytes(NP * V, sizeof(double), &bw))
        return gram__fail(ctx, GRAM_EOVERFLOW, "the packed X (%lld×%lld) is too large to index", (long long)NP,
                          (long long)D);
    void *xs = gram__alloc(bx);
    double *ws = gram__alloc(bw > 0 ? bw : sizeof(double));
    if (!xs || !ws) {
        gram__free(xs), gram__free(ws);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for the packed X (%lld×%lld)", (long long)NP, (long long)D);
    }
    for (int64_t id = 0; id < TX->n_nodes; id++) {
        if (TX->left[id] >= 0) continue;
        const int64_t s = TX->start[id], e = TX->end[id];
        for (int64_t q = TX->ps[id]; q < TX->pe[id]; q++) {
            const int64_t i = q - TX->ps[id] < e - s ? s + q - TX->ps[id] : e - 1;
            for (int64_t d = 0; d < D; d++) {
                if (dtype == GRAM_FLOAT64) ((double *)xs)[q * D + d] = TX->pd[i * D + d];
                else ((float *)xs)[q * D + d] = (float)TX->pd[i * D + d];
            }
            for (int64_t v = 0; v < V; v++) ws[q * V + v] = i == s + q - TX->ps[id] ? TX->w[i * V + v] : 0.0;
        }
    }
    const gram_array Xp = {xs, dtype, NP, D, D, 1}, Yp = {TY->pt, dtype, TY->n, D, D, 1};
    const gram_array Wp = gram_array_f64(ws, NP, V);
    gram_status s = gram__packed_create(pk, ctx, k, &Yp, &Xp, &Wp);
    gram__free(xs), gram__free(ws);
    return s;
}

/* One thread's buffers. */
typedef struct work {
    double *E, *Lp, *Up;          /* BLOCK_Y × V */
    /* per sub-block and column (MAX_SUB × V): the stack's box bounds G, the shares walked past,
     * the half-widths pruned, the tolerance now */
    double *glo, *ghi, *spent, *used, *tau;
    double *slo, *shi;            /* the stack's intervals: depth × MAX_SUB × V */
    int64_t *stack;
    unsigned *smask;              /* per stack entry: the sub-blocks still undecided about it */
    void *scratch;                /* gram__packed_sum's */
} work;

typedef struct job {
    const tkern *K;
    const kdtree *X, *Y;
    const gram__packed *pk;
    int64_t V, D;
    double rtol, atol;
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

/* Node n's share of column v's tolerance: its part of Σ|w|. */
static double share_of(const kdtree *X, int64_t n, int64_t v) { return X->share[n * X->V + v]; }

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

/* τ of sub-block t (queries [a, c) of the block), every column, from its queries' intervals now. */
static void update_tau(const job *J, work *w, int64_t t, int64_t a, int64_t c)
{
    const int64_t V = J->V;
    for (int64_t v = 0; v < V; v++) {
        const int64_t s = t * V + v;
        const double glo = w->glo[s], ghi = w->ghi[s];
        double m = INFINITY;
        for (int64_t i = a; i < c; i++) {
            const double lo = w->E[i * V + v] + w->Lp[i * V + v] + glo, hi = w->E[i * V + v] + w->Up[i * V + v] + ghi;
            double lb = lo > -hi ? lo : -hi;
            if (!(lb > 0)) lb = 0.0; /* NaN (overflowing weights) gives no credit */
            if (lb < m) m = lb;
        }
        w->tau[s] = J->atol + J->rtol * m;
    }
}

/* One query block (node b of Y's tree, at most BLOCK_Y queries, whose leaves are its sub-blocks):
 * the walk with its exact sums, the check, the output rows. */
static void run_block(const job *J, work *w, int64_t b, gram_array *out, gram_array *err, int64_t *evals)
{
    const kdtree *X = J->X, *Y = J->Y;
    const int64_t V = J->V, D = J->D, q0 = Y->start[b], nq = Y->end[b] - q0;
    const size_t vb = (size_t)V * sizeof(double);
    *evals = 0;
    memset(w->E, 0, (size_t)nq * vb), memset(w->Lp, 0, (size_t)nq * vb), memset(w->Up, 0, (size_t)nq * vb);
    /* the sub-blocks: Y's leaves under b, in preorder (so in row order, each after the last) */
    int64_t sub[MAX_SUB], qa[MAX_SUB + 1], ns = 0;
    for (int64_t n = b; n < Y->n_nodes && Y->start[n] < Y->end[b] && ns < MAX_SUB; n++)
        if (Y->left[n] < 0) qa[ns] = Y->start[n] - q0, sub[ns++] = n;
    qa[ns] = nq;
    const unsigned all = (1u << ns) - 1u;
    const int64_t sv = ns * V; /* values per stack entry */
    const size_t svb = (size_t)sv * sizeof(double);

    int64_t sp = 1;
    w->stack[0] = 0, w->smask[0] = all;
    for (int64_t t = 0; t < ns; t++) node_bounds(J, Y->lo + sub[t] * D, Y->hi + sub[t] * D, 0, w->slo + t * V, w->shi + t * V);
    memcpy(w->glo, w->slo, svb), memcpy(w->ghi, w->shi, svb);
    memset(w->spent, 0, svb), memset(w->used, 0, svb);
    for (int64_t t = 0; t < ns; t++) update_tau(J, w, t, qa[t], qa[t + 1]);
    while (sp > 0) {
        const int64_t n = w->stack[--sp];
        const unsigned active = w->smask[sp];
        const double *nlo = w->slo + sp * sv, *nhi = w->shi + sp * sv;
        unsigned rest = 0; /* the active sub-blocks that cannot prune n */
        for (int64_t t = 0; t < ns; t++) {
            if (!(active >> t & 1u)) continue;
            for (int64_t v = 0; v < V; v++) {
                const int64_t i = t * V + v;
                if (!(0.5 * (nhi[i] - nlo[i]) + w->used[i] <= (w->spent[i] + share_of(X, n, v)) * w->tau[i])) {
                    rest |= 1u << t;
                    break;
                }
            }
        }
        const int leaf = X->left[n] < 0;
        /* pruned (or, at a leaf, summed exactly): n leaves the stack's bounds for these sub-blocks,
         * its share is spent, and its per-query bounds (or exact sums) join the queries' */
        const unsigned done = leaf ? active : active & ~rest;
        for (int64_t t = 0; t < ns; t++) {
            if (!(done >> t & 1u)) continue;
            const int pruned = !(rest >> t & 1u);
            for (int64_t v = 0; v < V; v++) {
                const int64_t i = t * V + v;
                w->glo[i] -= nlo[i], w->ghi[i] -= nhi[i];
                w->spent[i] += share_of(X, n, v);
                if (pruned) w->used[i] += 0.5 * (nhi[i] - nlo[i]);
            }
            if (pruned) add_bounds(J, w, n, q0, qa[t], qa[t + 1]);
        }
        if (leaf) /* the exact sums, consecutive sub-blocks in one call */
            for (int64_t t = 0; t < ns;) {
                if (!(rest >> t & 1u)) { t++; continue; }
                int64_t u = t;
                while (u < ns && (rest >> u & 1u)) u++;
                gram__packed_sum(J->pk, q0 + qa[t], q0 + qa[u], X->ps[n], X->pe[n], w->scratch, w->E + qa[t] * V);
                *evals += (qa[u] - qa[t]) * (X->end[n] - X->start[n]);
                t = u;
            }
        else if (rest) {
            /* The children replace n on the stack of the undecided sub-blocks; the nearer one is
             * walked first. */
            int64_t a = X->left[n], c = X->right[n];
            double *alo = w->slo + sp * sv, *ahi = w->shi + sp * sv, *clo = alo + sv, *chi = ahi + sv;
            /* n's bounds sit in the slot a takes: take them out of G first */
            for (int64_t t = 0; t < ns; t++)
                if (rest >> t & 1u)
                    for (int64_t v = 0; v < V; v++) w->glo[t * V + v] -= alo[t * V + v], w->ghi[t * V + v] -= ahi[t * V + v];
            double ta = INFINITY, tc = INFINITY; /* the children's least tmin over the sub-blocks */
            for (int64_t t = 0; t < ns; t++) {
                if (!(rest >> t & 1u)) continue;
                const double *ylo = Y->lo + sub[t] * D, *yhi = Y->hi + sub[t] * D;
                const double u = node_bounds(J, ylo, yhi, a, alo + t * V, ahi + t * V);
                const double z = node_bounds(J, ylo, yhi, c, clo + t * V, chi + t * V);
                ta = u < ta ? u : ta, tc = z < tc ? z : tc;
                for (int64_t v = 0; v < V; v++) {
                    const int64_t i = t * V + v;
                    w->glo[i] += alo[i] + clo[i], w->ghi[i] += ahi[i] + chi[i];
                }
            }
            if (ta <= tc) { /* a on top */
                const int64_t x = a;
                a = c, c = x;
                for (int64_t i = 0; i < sv; i++) {
                    double y = alo[i];
                    alo[i] = clo[i], clo[i] = y;
                    y = ahi[i];
                    ahi[i] = chi[i], chi[i] = y;
                }
            }
            w->stack[sp] = a, w->smask[sp] = rest, w->stack[sp + 1] = c, w->smask[sp + 1] = rest;
            sp += 2;
        }
        for (int64_t t = 0; t < ns; t++)
            if (active >> t & 1u) update_tau(J, w, t, qa[t], qa[t + 1]);
    }

    /* The per-query check (the derivation is at the top of the file); failures are summed exactly. */
    for (int64_t i = 0; i < nq; i++) {
        int fail = 0;
        for (int64_t v = 0; v < V && !fail; v++) {
            const double E = w->E[i * V + v], L = E + w->Lp[i * V + v], U = E + w->Up[i * V + v];
            double lb = L > -U ? L : -U;
            if (!(lb > 0)) lb = 0.0;
            fail = !(0.5 * (w->Up[i * V + v] - w->Lp[i * V + v]) <= J->atol + J->rtol * lb);
        }
        if (fail) {
            for (int64_t v = 0; v < V; v++) w->E[i * V + v] = w->Lp[i * V + v] = w->Up[i * V + v] = 0.0;
            gram__packed_sum(J->pk, q0 + i, q0 + i + 1, 0, X->n_packed, w->scratch, w->E + i * V);
            *evals += X->n;
        }
    }
    for (int64_t i = 0; i < nq; i++) {
        const int64_t r = Y->perm[q0 + i];
        for (int64_t v = 0; v < V; v++) {
            const double lp = w->Lp[i * V + v], up = w->Up[i * V + v];
            gram__put(out, r, v, w->E[i * V + v] + 0.5 * (lp + up));
            if (err) gram__put(err, r, v, 0.5 * (up - lp));
        }
    }
}

/* The node after n's subtree in preorder (n_nodes at the end). */
static int64_t next_after(const kdtree *T, int64_t n)
{
    int64_t m = n + 1;
    while (m < T->n_nodes && T->start[m] < T->end[n]) m++;
    return m;
}

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
    if (!(K.sc = gram__alloc((size_t)(D > 0 ? D : 1) * sizeof(double))))
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for the tree's scales");
    for (int64_t d = 0; d < D; d++) K.sc[d] = inv_of(&K, d);
    K.rel = 2.0 * (double)(D + 4) * eps;
    K.tau = K.l1 ? 4.0 * eps * r1 : 16.0 * eps * r2;
    K.kslack = 64.0 * eps;
    K.t_far = K.leaf->family == GRAM_GAUSSIAN ? 2.0 * 23.1 : K.leaf->family == GRAM_LAPLACIAN_L1 ? 23.1 : INFINITY;

    const int64_t leaf = opt && opt->leaf_size > 0 ? opt->leaf_size : LEAF_X;
    kdtree TX, TY;
    gram__packed pk;
    memset(&pk, 0, sizeof pk);
    gram_status s = tree_build(ctx, &TX, &K, X, W, V, leaf, "X");
    if (s) {
        gram__free(K.sc);
        return s;
    }
    if ((s = tree_build(ctx, &TY, &K, Y, NULL, 0, SUB_Y, "Y")) || (s = pack_x(ctx, &pk, k, &TX, &TY, X->dtype))) {
        tree_free(&TX), tree_free(&TY), gram__free(K.sc);
        return s;
    }
    /* The blocks: the largest nodes of Y's tree with at most BLOCK_Y queries (preorder). */
    int64_t nb = 0;
    for (int64_t n = 0; n < TY.n_nodes; n = TY.left[n] >= 0 && TY.end[n] - TY.start[n] > BLOCK_Y ? n + 1 : next_after(&TY, n))
        if (TY.end[n] - TY.start[n] <= BLOCK_Y) nb++;
    int64_t *blocks = gram__alloc((size_t)nb * sizeof(int64_t)), *bev = gram__calloc((size_t)nb, sizeof(int64_t));
    int nt = gram__threads(ctx);
    if (nt > nb) nt = (int)nb;
    nt = gram__team_size(nt);
    job J = {&K, &TX, &TY, &pk, V, D, opt ? opt->rtol : 0.0, opt ? opt->atol : 0.0};
    const int64_t depth = TX.depth + 2;
    work *ws = gram__calloc((size_t)nt, sizeof(work));
    int ok = blocks && bev && ws;
    for (int t = 0; ok && t < nt; t++) {
        work *w = &ws[t];
        const size_t qv = (size_t)BLOCK_Y * (size_t)V * sizeof(double), sv = (size_t)MAX_SUB * (size_t)V * sizeof(double),
                     dv = (size_t)depth * sv;
        w->E = gram__alloc(qv), w->Lp = gram__alloc(qv), w->Up = gram__alloc(qv);
        w->glo = gram__alloc(sv), w->ghi = gram__alloc(sv), w->spent = gram__alloc(sv), w->used = gram__alloc(sv);
        w->tau = gram__alloc(sv), w->slo = gram__alloc(dv), w->shi = gram__alloc(dv);
        w->stack = gram__alloc((size_t)depth * sizeof(int64_t)), w->smask = gram__alloc((size_t)depth * sizeof(unsigned));
        w->scratch = gram__alloc(pk.scratch);
        ok = w->E && w->Lp && w->Up && w->glo && w->ghi && w->spent && w->used && w->tau && w->slo && w->shi &&
             w->stack && w->smask && w->scratch;
    }
    int64_t pilot = 0; /* blocks already run by the pilot */
    if (ok) {
        nb = 0;
        for (int64_t n = 0; n < TY.n_nodes; n = TY.left[n] >= 0 && TY.end[n] - TY.start[n] > BLOCK_Y ? n + 1 : next_after(&TY, n))
            if (TY.end[n] - TY.start[n] <= BLOCK_Y) blocks[nb++] = n;
        if (declined && max_fraction < 1.0) {
            /* The pilot: the first blocks, spread over Y's order, run on one thread; their pairs
             * decide whether the rest runs. Their results stand when it does. */
            const int64_t np = nb < PILOT ? nb : PILOT;
            double pairs = 0.0, queries = 0.0;
            for (int64_t i = 0; i < np; i++) {
                const int64_t bi = i * nb / np, b = blocks[bi];
                run_block(&J, &ws[0], b, out, err, &bev[bi]);
                blocks[bi] = -1 - b;
                pairs += (double)bev[bi], queries += (double)(TY.end[b] - TY.start[b]);
            }
            pilot = np;
            if (pairs > max_fraction * queries * (double)N) *declined = 1;
        }
    }
    if (ok && !(declined && *declined)) {
        gram__progress ps = {0, nb, 0};
        if (pilot) gram__progress_report(ctx, &ps, pilot);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t bi = 0; bi < nb; bi++) {
            if (blocks[bi] < 0 || gram__progress_cancelled(&ps)) continue;
            run_block(&J, &ws[omp_get_thread_num()], blocks[bi], out, err, &bev[bi]);
            gram__progress_report(ctx, &ps, 1);
        }
        int64_t total = 0;
        for (int64_t bi = 0; bi < nb; bi++) total = total > INT64_MAX - bev[bi] ? INT64_MAX : total + bev[bi];
        if (ps.cancelled)
            s = gram__fail(ctx, GRAM_ECANCELLED, "cancelled by the progress callback after %lld of %lld query blocks",
                           (long long)ps.done, (long long)nb);
        if (info) info->kernel_evaluations = total;
    } else if (!ok) {
        s = gram__fail(ctx, GRAM_ENOMEM, "out of memory for the tree's buffers (%d threads)", nt);
    }
    for (int t = 0; ws && t < nt; t++) {
        work *w = &ws[t];
        gram__free(w->E), gram__free(w->Lp), gram__free(w->Up), gram__free(w->glo), gram__free(w->ghi);
        gram__free(w->spent), gram__free(w->used), gram__free(w->tau), gram__free(w->slo), gram__free(w->shi);
        gram__free(w->stack), gram__free(w->smask), gram__free(w->scratch);
    }
    gram__free(ws), gram__free(blocks), gram__free(bev);
    gram__packed_free(&pk);
    tree_free(&TX), tree_free(&TY), gram__free(K.sc);
    return s;
}
