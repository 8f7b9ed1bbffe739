/* near: the index behind DEANN's split of sampling (docs/approx.md, "Sampling"): a clustering of X,
 * each query's near set, and a bound on the kernel over the rest.
 *
 * Karppa, Aumüller & Pagh ("DEANN: speeding up kernel-density estimation using approximate nearest
 * neighbor search", AISTATS 2022) sum the points nearest a query exactly and sample the rest; the
 * estimate stays unbiased for any near set chosen independently of the sample, so the near set may
 * come from an approximate index. Ours is a clustering: C centres drawn uniformly from X (stream 1
 * of the seed; the sample uses stream 0, so the index is independent of it), refined by LLOYD
 * Lloyd steps, each point then assigned to its nearest centre. Per cluster we keep the least and
 * largest distance of its members to the centre, [rlo, rhi]. Queries are grouped by their nearest
 * centre; a group's near set is the clusters that its queries may come closest to, whole clusters
 * in that order until they hold at least k points, so one engine call sums a group's near set.
 *
 * The bound. For a query q and a point x of cluster c (centre z), the triangle inequality gives
 *     d(q, x) ≥ max(d(q, z) − rhi_c, rlo_c − d(q, z), 0) = lb(q, c),
 * so for a kernel scale·f(t) with f non-increasing in the scaled distance (t = d² or, for the L1
 * families, t = d) every point outside q's near set has k(q, x) ≤ scale·f(min_c lb(q, c)²), the
 * smallest lb over the clusters outside the set: a range for the Bernstein–Serfling bound of the
 * remainder far narrower than k(0) when the near set holds the points that matter. Distances come
 * from the engine (neg_l2 or neg_l1 with the kernel's own lengthscales), never from a loop here.
 * They are rounded: with ε the data's epsilon, T the squared scaled extent of X ∪ Y, the engine's
 * t is within rel·t + tau of the exact one (rel = 2(D + 4)ε, tau = 16ε·T; the tree's widening), so
 * a distance is within e = √(rel·T + tau) of its exact value; the bound subtracts 2e from lb (two
 * computed distances), then widens the statistic t of the sampled pairs by rel and tau and the
 * kernel value by 64ε, as the tree does.
 *
 * Kernels without such a profile (sums, products, periodic, the dot-product families) get the same
 * clustering in the unscaled Euclidean metric and no bound (kmax = +∞: the caller uses the
 * kernel's global range): their split still cuts the variance, not the range.
 *
 * Cost: LLOYD + 1 passes of N·C distances over X and two of M·C over Y, in blocks of BLOCK rows
 * (engine calls of gram_kernel_matrix); memory O(C·(C + D) + BLOCK·C + N + M).
 */
#include "approx.h"

#include "../base/rng.h"
#include "../engine/engine.h"
#include "../kernel/kernel.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_SHARE 0.04
enum {
    BLOCK = 2048,    /* rows per distance block */
    LLOYD = 3,       /* Lloyd steps after the random centres, */
    SAMPLE_PER = 16, /* on this many rows per centre */
    MAX_C = 2048     /* clusters at most: the plan holds C × C centre distances */
};

int64_t gram__near_clusters(int64_t N, int64_t M)
{
    /* The index costs about (N + M)·C distances: C is held to INDEX_SHARE of the exact M·N pairs.
     * Finer clusters give tighter bounds (measured: noisy digits, N = M = 10⁵, gaussian(2), rtol
     * 0.1: C = 1000 evaluated 52% of the pairs, C = 2000 3.7%). */
    const double c = INDEX_SHARE * (double)M * (double)N / ((double)N + (double)M);
    if (!(c >= 1.0)) return 1;
    return c > MAX_C ? MAX_C : (int64_t)c;
}

void gram__near_free(gram__near *ix)
{
    if (!ix) return;
    gram__free(ix->order);
    gram__free(ix->start);
    gram__free(ix->cluster);
    gram__free(ix->rlo);
    gram__free(ix->rhi);
    gram__free(ix->centres);
    gram_kernel_destroy(ix->dist);
    memset(ix, 0, sizeof *ix);
}

void gram__near_plan_free(gram__near_plan *p)
{
    if (!p) return;
    gram__free(p->qorder);
    gram__free(p->qstart);
    gram__free(p->near);
    gram__free(p->kmax);
    gram__free(p->cw);
    gram__free(p->rest);
    memset(p, 0, sizeof *p);
}

/* Rows a0..a0+n of A as a view. */
static gram_array rows_of(const gram_array *A, int64_t a0, int64_t n)
{
    gram_array v = *A;
    const size_t es = A->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);
    v.data = (char *)A->data + (size_t)(a0 * A->row_stride) * es;
    v.rows = n;
    return v;
}

/* Distances of rows a0..a0+n of A to every centre: dst (n × C) = −neg_l2 (or −neg_l1). */
static gram_status distances(gram_context *ctx, const gram__near *ix, const gram_array *A, int64_t a0, int64_t n,
                             double *dst)
{
    gram_array R = rows_of(A, a0, n);
    gram_array Z = {ix->centres, A->dtype, ix->C, ix->D, ix->D, 1};
    gram_array O = gram_array_f64(dst, n, ix->C);
    gram_status s = gram_kernel_matrix(ctx, ix->dist, &R, &Z, &O);
    if (s) return s;
    for (int64_t i = 0; i < n * ix->C; i++) dst[i] = dst[i] < 0.0 ? -dst[i] : 0.0;
    return GRAM_OK;
}

static uint64_t uniform_below(gram__rng *r, uint64_t m)
{
    const uint64_t reject = (0 - m) % m;
    uint64_t x;
    do x = gram__rng_u64(r);
    while (x < reject);
    return x % m;
}

/* Each row of X to its nearest centre (the first on ties); dist_out[j] its distance. */
static gram_status assign(gram_context *ctx, gram__near *ix, const gram_array *X, double *dblock, double *dist_out)
{
    const int64_t N = X->rows, C = ix->C;
    for (int64_t a0 = 0; a0 < N; a0 += BLOCK) {
        const int64_t n = N - a0 < BLOCK ? N - a0 : BLOCK;
        gram_status s = distances(ctx, ix, X, a0, n, dblock);
        if (s) return s;
        for (int64_t r = 0; r < n; r++) {
            const double *d = dblock + r * C;
            int64_t b = 0;
            for (int64_t c = 1; c < C; c++)
                if (d[c] < d[b]) b = c;
            ix->cluster[a0 + r] = b;
            dist_out[a0 + r] = d[b];
        }
    }
    ix->evaluations += N * C;
    return GRAM_OK;
}

gram_status gram__near_build(gram_context *ctx, const gram_kernel *k, const gram_array *X, const gram_array *Y,
                             uint64_t seed, int64_t C, gram__near *ix)
{
    memset(ix, 0, sizeof *ix);
    const int64_t N = X->rows, D = X->cols;
    if (C > N) C = N;
    if (C < 1) C = 1;
    ix->N = N, ix->C = C, ix->D = D, ix->kmax_inf = 1;
    const size_t es = X->dtype == GRAM_FLOAT64 ? sizeof(double) : sizeof(float);
    gram_status s;
    /* The metric: the kernel's own scaled distance where its value is scale·f(t), f non-increasing. */
    const gram__leaf *L = NULL;
    if (gram__approx_tree_supports(k, NULL)) {
        L = &k->leaves[0];
        ix->leaf = L;
        ix->scale = 1.0;
        for (int o = 1; o < k->n_ops; o++) ix->scale *= k->ops[o].c;
        ix->l1 = L->structure == GRAM_STRUCT_L1;
        ix->kmax_inf = 0;
        s = gram_kernel_create(ctx, ix->l1 ? GRAM_NEG_L1 : GRAM_NEG_L2, L->n_scale, L->lengthscale, 0, NULL, &ix->dist);
    } else {
        s = gram_kernel_create(ctx, GRAM_NEG_L2, 0, NULL, 0, NULL, &ix->dist);
    }
    if (s) return s;

    ix->order = gram__approx_buffer(N, sizeof(int64_t));
    ix->start = gram__approx_buffer(C + 1, sizeof(int64_t));
    ix->cluster = gram__approx_buffer(N, sizeof(int64_t));
    ix->rlo = gram__approx_buffer(C, sizeof(double));
    ix->rhi = gram__approx_buffer(C, sizeof(double));
    ix->centres = gram__approx_buffer(C * D, es);
    double *dblock = gram__approx_buffer(BLOCK * C, sizeof(double)), *dist = gram__approx_buffer(N, sizeof(double));
    double *sum = gram__approx_buffer(C * D, sizeof(double));
    int64_t *count = gram__approx_buffer(C, sizeof(int64_t));
    if (!ix->order || !ix->start || !ix->cluster || !ix->rlo || !ix->rhi || !ix->centres || !dblock || !dist || !sum ||
        !count) {
        s = gram__approx_sampling_oom(ctx, "the near index");
        goto done;
    }

    /* The extent of X ∪ Y, scaled as the metric sees it, for the rounding slack. */
    {
        double T = 0.0, T1 = 0.0;
        for (int64_t d = 0; d < D; d++) {
            double lo = INFINITY, hi = -INFINITY;
            for (int64_t j = 0; j < N; j++) {
                const double x = gram__get(X, j, d);
                lo = x < lo ? x : lo, hi = x > hi ? x : hi;
            }
            for (int64_t i = 0; Y && i < Y->rows; i++) {
                const double y = gram__get(Y, i, d);
                lo = y < lo ? y : lo, hi = y > hi ? y : hi;
            }
            const double inv = L ? L->inv_scale[L->n_scale == 1 ? 0 : d] : 1.0;
            const double e = (hi - lo) * inv;
            T += e * e, T1 += e;
        }
        const double eps = X->dtype == GRAM_FLOAT64 ? DBL_EPSILON : FLT_EPSILON;
        ix->rel = 2.0 * (double)(D + 4) * eps;
        ix->tau = ix->l1 ? 4.0 * eps * T1 : 16.0 * eps * T;
        ix->derr = ix->l1 ? ix->rel * T1 + ix->tau : sqrt(ix->rel * T + ix->tau);
        ix->kslack = 64.0 * eps;
    }

    /* Centres: C distinct rows drawn uniformly (a partial Fisher–Yates over an index), refined by
     * LLOYD Lloyd steps on a uniform sample of SAMPLE_PER·C rows (the first rows of the same
     * shuffle), so that the index costs about one pass of N·C distances, the final assignment. */
    {
        gram__rng rng;
        gram__rng_init(&rng, seed, 1);
        int64_t S = SAMPLE_PER * C < N ? SAMPLE_PER * C : N;
        int64_t *pick = ix->order; /* scratch until the final order is written */
        for (int64_t j = 0; j < N; j++) pick[j] = j;
        for (int64_t c = 0; c < S; c++) {
            const int64_t j = c + (int64_t)uniform_below(&rng, (uint64_t)(N - c));
            const int64_t t = pick[c];
            pick[c] = pick[j], pick[j] = t;
        }
        for (int64_t c = 0; c < C; c++)
            for (int64_t d = 0; d < D; d++) {
                const double v = gram__get(X, pick[c], d);
                if (X->dtype == GRAM_FLOAT64) ((double *)ix->centres)[c * D + d] = v;
                else ((float *)ix->centres)[c * D + d] = (float)v;
            }
        if (S > C) {
            void *xs = gram__approx_buffer(S * D, es);
            if (!xs) {
                s = gram__approx_sampling_oom(ctx, "the near index");
                goto done;
            }
            for (int64_t r = 0; r < S; r++)
                for (int64_t d = 0; d < D; d++) {
                    const double v = gram__get(X, pick[r], d);
                    if (X->dtype == GRAM_FLOAT64) ((double *)xs)[r * D + d] = v;
                    else ((float *)xs)[r * D + d] = (float)v;
                }
            gram_array XS = {xs, X->dtype, S, D, D, 1};
            for (int it = 0; it < LLOYD && !s; it++) {
                if ((s = assign(ctx, ix, &XS, dblock, dist))) break;
                memset(sum, 0, (size_t)(C * D) * sizeof(double));
                memset(count, 0, (size_t)C * sizeof(int64_t));
                for (int64_t j = 0; j < S; j++) {
                    const int64_t c = ix->cluster[j];
                    count[c]++;
                    for (int64_t d = 0; d < D; d++) sum[c * D + d] += gram__get(&XS, j, d);
                }
                for (int64_t c = 0; c < C; c++) {
                    if (!count[c]) continue; /* an empty cluster keeps its centre */
                    for (int64_t d = 0; d < D; d++) {
                        const double v = sum[c * D + d] / (double)count[c];
                        if (X->dtype == GRAM_FLOAT64) ((double *)ix->centres)[c * D + d] = v;
                        else ((float *)ix->centres)[c * D + d] = (float)v;
                    }
                }
            }
            gram__free(xs);
            if (s) goto done;
        }
    }
    if ((s = assign(ctx, ix, X, dblock, dist))) goto done;
    /* Rows by cluster (counting sort: stable, so each cluster keeps X's order) and the radii. */
    memset(count, 0, (size_t)C * sizeof(int64_t));
    for (int64_t j = 0; j < N; j++) count[ix->cluster[j]]++;
    ix->start[0] = 0;
    for (int64_t c = 0; c < C; c++) {
        ix->start[c + 1] = ix->start[c] + count[c];
        ix->rlo[c] = INFINITY, ix->rhi[c] = 0.0;
        count[c] = ix->start[c];
    }
    for (int64_t j = 0; j < N; j++) {
        const int64_t c = ix->cluster[j];
        ix->order[count[c]++] = j;
        if (dist[j] < ix->rlo[c]) ix->rlo[c] = dist[j];
        if (dist[j] > ix->rhi[c]) ix->rhi[c] = dist[j];
    }
    s = GRAM_OK;
done:
    gram__free(dblock);
    gram__free(dist);
    gram__free(sum);
    gram__free(count);
    if (s) gram__near_free(ix);
    return s;
}

/* lb(q, c) from d = d(q, z_c): no point of c is nearer q (exact arithmetic; 0 for an empty one
 * is never used: empty clusters hold no remainder). */
static double lower(const gram__near *ix, int64_t c, double d)
{
    double a = d - ix->rhi[c], b = ix->rlo[c] - d;
    a = a > b ? a : b;
    return a > 0.0 ? a : 0.0;
}

double gram__near_kmax(const gram__near *ix, double lb)
{
    if (ix->kmax_inf) return INFINITY;
    if (isinf(lb)) return 0.0;
    double r = lb - 2.0 * ix->derr;
    r = r > 0.0 ? r : 0.0;
    double t = ix->l1 ? r : r * r;
    t = t * (1.0 - ix->rel) - ix->tau;
    t = t > 0.0 ? t : 0.0;
    return ix->scale * gram__leaf_radial(ix->leaf, t) * (1.0 + ix->kslack);
}

typedef struct rank {
    double lb, d;
    int64_t c;
} rank;

static int cmp_rank(const void *a, const void *b)
{
    const rank *p = a, *q = b;
    if (p->lb != q->lb) return p->lb < q->lb ? -1 : 1;
    if (p->d != q->d) return p->d < q->d ? -1 : 1;
    return p->c < q->c ? -1 : p->c > q->c;
}

gram_status gram__near_plan_make(gram_context *ctx, const gram__near *ix, const gram_array *Y, const gram_array *W,
                                 int64_t k_near, gram__near_plan *p)
{
    memset(p, 0, sizeof *p);
    const int64_t M = Y->rows, C = ix->C, V = W ? W->cols : 1;
    p->C = C, p->V = V;
    gram_status s = GRAM_OK;
    p->qorder = gram__approx_buffer(M, sizeof(int64_t));
    p->qstart = gram__approx_buffer(C + 1, sizeof(int64_t));
    p->near = gram__calloc((size_t)(C * C), 1);
    p->kmax = gram__approx_buffer(M, sizeof(double));
    p->cw = gram__calloc((size_t)(2 * C * V), sizeof(double));
    p->rest = gram__approx_buffer(2 * M * V, sizeof(double));
    int64_t *group = gram__approx_buffer(M, sizeof(int64_t)), *cnt = gram__approx_buffer(C, sizeof(int64_t));
    double *dblock = gram__approx_buffer(BLOCK * C, sizeof(double));
    double *score = gram__approx_buffer(C * C, sizeof(double));
    rank *rk = gram__approx_buffer(C, sizeof(rank));
    if (!p->qorder || !p->qstart || !p->near || !p->kmax || !p->cw || !p->rest || !group || !cnt || !dblock || !score ||
        !rk) {
        s = gram__approx_sampling_oom(ctx, "the near sets");
        goto done;
    }
    for (int64_t j = 0; j < ix->N; j++) {
        double *c = p->cw + ix->cluster[j] * 2 * V;
        for (int64_t v = 0; v < V; v++) {
            const double w = W ? gram__get(W, j, v) : 1.0;
            if (w > 0) c[v] += w;
            else c[V + v] -= w;
        }
    }
    /* Each group's near set, from the centres alone: clusters by max(0, d(z_g, z_c) − rhi_c), a
     * lower bound on how near the cluster's points come to the group's centre, then by d(z_g, z_c),
     * whole, until k_near rows. */
    {
        gram_array Z = {ix->centres, Y->dtype, C, ix->D, ix->D, 1};
        gram_array O = gram_array_f64(score, C, C);
        if ((s = gram_kernel_matrix(ctx, ix->dist, &Z, &Z, &O))) goto done;
    }
    for (int64_t g = 0; g < C; g++) {
        for (int64_t c = 0; c < C; c++) {
            const double d = score[g * C + c] < 0.0 ? -score[g * C + c] : 0.0;
            rk[c] = (rank){fmax(0.0, d - ix->rhi[c]), d, c};
        }
        qsort(rk, (size_t)C, sizeof(rank), cmp_rank);
        int64_t rows = 0;
        for (int64_t r = 0; r < C && rows < k_near; r++) {
            const int64_t c = rk[r].c;
            if (ix->start[c + 1] == ix->start[c]) continue;
            p->near[g * C + c] = 1;
            rows += ix->start[c + 1] - ix->start[c];
        }
    }
    /* One pass over Y: each query's group (its nearest centre) and, over the non-empty clusters
     * outside the group's near set, the largest kernel bound and the bounds on the rest's sums of
     * k·w⁺ and k·|w⁻|. */
    for (int64_t a0 = 0; a0 < M; a0 += BLOCK) {
        const int64_t n = M - a0 < BLOCK ? M - a0 : BLOCK;
        if ((s = distances(ctx, ix, Y, a0, n, dblock))) goto done;
        for (int64_t r = 0; r < n; r++) {
            const double *d = dblock + r * C;
            int64_t g = 0;
            for (int64_t c = 1; c < C; c++)
                if (d[c] < d[g]) g = c;
            group[a0 + r] = g;
            const unsigned char *nr = p->near + g * C;
            double m = INFINITY, *rest = p->rest + (a0 + r) * 2 * V;
            for (int64_t v = 0; v < 2 * V; v++) rest[v] = 0.0;
            for (int64_t c = 0; c < C; c++) {
                if (nr[c] || ix->start[c + 1] == ix->start[c]) continue;
                const double l = lower(ix, c, d[c]);
                if (l < m) m = l;
                if (!ix->kmax_inf) {
                    const double kc = gram__near_kmax(ix, l);
                    for (int64_t v = 0; v < 2 * V; v++) rest[v] += kc * p->cw[c * 2 * V + v];
                }
            }
            p->kmax[a0 + r] = gram__near_kmax(ix, m);
        }
    }
    memset(cnt, 0, (size_t)C * sizeof(int64_t));
    for (int64_t i = 0; i < M; i++) cnt[group[i]]++;
    p->qstart[0] = 0;
    for (int64_t g = 0; g < C; g++) p->qstart[g + 1] = p->qstart[g] + cnt[g], cnt[g] = p->qstart[g];
    for (int64_t i = 0; i < M; i++) p->qorder[cnt[group[i]]++] = i;
    p->evaluations = M * C + C * C;
done:
    gram__free(group);
    gram__free(cnt);
    gram__free(dblock);
    gram__free(score);
    gram__free(rk);
    if (s) gram__near_plan_free(p);
    return s;
}
