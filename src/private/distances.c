/* distances: private sums of ℓ1, ℓ2 and ℓp^p distances (issue 14; docs/private.md).
 *
 * ℓ1 and ℓp^p (the paper's one-dimensional decomposition, Backurs et al. 2024 §4): Σ_x f(x, y) =
 * Σ_j Σ_x g(|x_j − y_j|), so each coordinate is a one-dimensional problem. Per coordinate the
 * interval [−R, R] (the box, or the ball's enclosing box) is cut into B = 2^L cells of width
 * h = 2R/B and a dyadic tree of counts is built over them; the released statistic is every node's
 * count at levels 1..L (level ℓ has 2^ℓ nodes). The root is n, public under replace-one; under
 * add/remove it is released too (levels 0..L).
 *
 * A query is post-processing of the released counts: per coordinate the noisy CDF F̂(e) (points
 * in cells < e) at every cell edge, the cell counts ĉ_c = F̂(c+1) − F̂(c), and Σ_c ĉ_c g(|m_c − y_j|)
 * with m_c the midpoint of cell c. The cell counts are the least-squares estimate from all the
 * released nodes (Hay et al.'s consistency, build_cdf): every CDF value and every query has the
 * least variance of any unbiased linear estimate from them — below the plain estimate from the
 * O(L) canonical nodes of [0, e), and below the average of that with n minus the suffix's nodes
 * (about half that average's variance in the tests' configuration), at no privacy cost.
 *
 * Error (summation by parts): Σ_c ĉ_c g_c = Σ_{e=1}^{B−1} F̂(e)(g_{e−1} − g_e) + F̂(B) g_{B−1}, so
 * the noise error of one coordinate is at most TV(g on the cells)·max_e |F̂(e) − F(e)| (≤ 2R·max
 * for ℓ1, (2R)^p for ℓp^p), and moving each point to its cell's midpoint adds at most n·h/2·Lip(g)
 * (ℓ1: n·h/2; ℓp^p with p ≤ 1: n·(h/2)^p; 1 < p ≤ 2: n·h/2·p(2R)^(p−1)). F̂(e) − F(e) has at
 * most the variance of a sum of O(L) Laplace(b) terms, b = 2dL/ε, so the ℓ1 error is
 * O(R·d^1.5·L^1.5/ε) over d independent coordinates — the paper's additive d^1.5/ε dependence
 * without its (1+α) multiplicative factor, which this estimator does not need: the paper rounds
 * distances to (1+α)-spaced shells around the query, while summation by parts bounds the error of
 * the exact cell-midpoint sum directly.
 *
 * ℓ2 (the paper's embedding of ℓ2 into ℓ1): k Gaussian vectors g_i ~ N(0, I_d) (Philox stream i of
 * the public seed), z_i = g_i·x, and E|g·v| = √(2/π)|v|₂, so |x − y|₂ ≈ √(π/2)/k·Σ_i |z_i(x) −
 * z_i(y)|: the ℓ1 structure on the k projected coordinates. z_i lies in [−r_i, r_i] with r_i =
 * |g_i|₂R (ball, Cauchy–Schwarz) or |g_i|₁R (box): public, derived from g and R. The embedding's
 * error per pair has relative standard deviation √((π/2 − 1)/k) (the sum's is at most that); the
 * noise error is the ℓ1 structure's on k coordinates times √(π/2)/k.
 *
 * Baseline for ℓ1 (GRAM_PRIVATE_BASELINE), standing in for Huang & Roth, "Exploiting Metric
 * Structure for Efficient Private Query Release" (SODA 2014, arXiv 1211.7302), the prior work the
 * paper compares with. Their mechanism learns an answer function online (a public hypothesis,
 * updated privately where a noisy check finds it wrong), with an offline version that outputs a
 * data structure; it is NOT reproduced here — only the paper's abstract and secondary summaries
 * could be read when this was written. What is built is the plain one-dimensional-histogram
 * baseline in the same setting: per coordinate a flat histogram of 2^L cells released with the
 * Laplace (or Gaussian) mechanism (sensitivity 2d under replace-one, d under add/remove), queried
 * as above from its prefix sums. Its noise error grows as √(2^L) per coordinate where the tree's
 * grows as L^1.5 — the gap the paper's hierarchical decomposition closes.
 *
 * Saved layout (n_params = 0):
 *   paper: for each coordinate j (d of them; k for ℓ2) a block of 2^(L+1) − 2^b values, b = 1
 *          (replace) or 0 (add/remove: the root first): level ℓ (b ≤ ℓ ≤ L) at offset 2^ℓ − 2^b,
 *          its node i covering cells [i·2^(L−ℓ), (i+1)·2^(L−ℓ)).
 *   baseline: for each coordinate j the 2^L cell counts. */
#include "private.h"

#include "../base/rng.h"
#include "../linalg/linalg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* d·2^(L+1) values at most: the tree, its prefix sums and the query cache stay within a few
 * hundred MiB. */
#define MAX_TREE_VALUES ((int64_t)1 << 26)
/* Caps of the automatic depth (levels = 0): 2^22 values (32 MiB) and 16 levels. */
#define AUTO_MAX_VALUES ((int64_t)1 << 22)
#define AUTO_MAX_L 16
#define DEFAULT_PROJECTIONS 64
#define ROW_BLOCK 512

typedef struct geometry {
    int64_t nc;   /* coordinates: d, or k projections for ℓ2 */
    int L;
    int base;     /* first stored level: 1 (replace) or 0 (add/remove) */
    int flat;     /* baseline: 2^L cell counts per coordinate, no tree */
    int64_t B;    /* cells per coordinate */
    int64_t nb;   /* values per coordinate */
} geometry;

static int is_distance(gram_private_similarity f)
{
    return f == GRAM_PRIVATE_L1 || f == GRAM_PRIVATE_L2 || f == GRAM_PRIVATE_LPP;
}

/* sqrt(x) rounded up, so that a derived ℓ2 sensitivity is never below the true one. */
static double sqrt_up(double x)
{
    double q = sqrt(x);
    if (fma(q, q, -x) < 0) q = nextafter(q, INFINITY);
    return q;
}

static void sensitivities(const gram_private_sketch *s, const geometry *g, uint64_t *l1, double *l2)
{
    /* replace: one row leaves one node and joins one node per stored level and coordinate (two
     * changed counts, ±1 each, unless both fall in the same node); add/remove: one node per level
     * including the root changes by 1. The flat histogram has one "level". */
    const int64_t per = g->flat ? 1 : (s->neighbours == GRAM_PRIVATE_REPLACE ? g->L : g->L + 1);
    const int64_t changed = (s->neighbours == GRAM_PRIVATE_REPLACE ? 2 : 1) * per * g->nc;
    *l1 = (uint64_t)changed;
    *l2 = sqrt_up((double)changed);
}

/* Levels chosen when the caller left 0, by a stated rule: the smallest L ≥ 1 at which the
 * discretisation bound of one coordinate, n·h/2 = n·R/2^L, is at most the noise error of one
 * coordinate, ≈ R·b·√L for the tree (a CDF value sums O(L) nodes) and R·b·2^(L/2) for the flat
 * histogram, with b the noise scale of one count (sens_l1/ε; for δ > 0 the classical Gaussian
 * mechanism's sens_l2·√(2 ln(1.25/δ))/ε — a rule of thumb: the release calibrates exactly). R
 * cancels. n is the public n (replace) or the released one (add/remove), never the private n. */
static int rule_levels(const gram_private_sketch *s, geometry g, double n, int64_t max_L)
{
    for (int L = 1; L <= max_L; L++) {
        g.L = L;
        uint64_t l1;
        double l2;
        sensitivities(s, &g, &l1, &l2);
        const double b = s->delta_main > 0 ? l2 * sqrt(2 * log(1.25 / s->delta_main)) / s->eps_main
                                           : (double)l1 / s->eps_main;
        const double noise = g.flat ? b * pow(2, 0.5 * L) : b * sqrt((double)L);
        if (n / ldexp(1, L) <= noise) return L;
    }
    return (int)max_L;
}

/* Validates what the distance family needs of s and works out the shape of its statistic. */
static gram_status geometry_of(gram_context *ctx, const gram_private_sketch *s, double n_rule, geometry *g)
{
    if (!is_distance(s->similarity))
        return gram__fail(ctx, GRAM_EINVAL, "private distances: similarity %d is not l1, l2 or lpp",
                          (int)s->similarity);
    if (s->mechanism != GRAM_PRIVATE_PAPER &&
        !(s->mechanism == GRAM_PRIVATE_BASELINE && s->similarity == GRAM_PRIVATE_L1))
        return gram__fail(ctx, GRAM_EINVAL, "private distances: mechanism %d does not exist for this similarity "
                          "(the baseline is for l1 only)", (int)s->mechanism);
    if (!(s->radius > 0) || !isfinite(s->radius))
        return gram__fail(ctx, GRAM_EINVAL, "private distances: radius must be > 0 and finite, got %g", s->radius);
    if (s->domain != GRAM_PRIVATE_BALL && s->domain != GRAM_PRIVATE_BOX)
        return gram__fail(ctx, GRAM_EINVAL, "private distances: unknown domain %d", (int)s->domain);
    if (s->neighbours != GRAM_PRIVATE_REPLACE && s->neighbours != GRAM_PRIVATE_ADD_REMOVE)
        return gram__fail(ctx, GRAM_EINVAL, "private distances: unknown neighbours %d", (int)s->neighbours);
    if (s->similarity == GRAM_PRIVATE_LPP && !(s->p > 0 && s->p <= 2))
        return gram__fail(ctx, GRAM_EINVAL, "private distances: p must be in (0, 2] for lpp, got %g", s->p);
    if (s->dim < 1)
        return gram__fail(ctx, GRAM_EINVAL, "private distances: d must be >= 1, got %lld", (long long)s->dim);
    g->nc = s->dim;
    if (s->similarity == GRAM_PRIVATE_L2) {
        g->nc = s->n_components ? s->n_components : DEFAULT_PROJECTIONS;
        if (g->nc < 1 || (double)g->nc * (double)s->dim > (double)((int64_t)1 << 28))
            return gram__fail(ctx, GRAM_EINVAL, "private distances: n_components (the l1 projections of l2) must be "
                              ">= 1 with n_components x d <= 2^28, got %lld for d = %lld",
                              (long long)s->n_components, (long long)s->dim);
    }
    g->flat = s->mechanism == GRAM_PRIVATE_BASELINE;
    g->base = s->neighbours == GRAM_PRIVATE_REPLACE ? 1 : 0;
    /* the largest L with nc·2^(L+1) ≤ MAX_TREE_VALUES */
    int64_t max_L = 0;
    while (max_L < 30 && g->nc <= (MAX_TREE_VALUES >> (max_L + 2))) max_L++;
    const char *what = s->similarity == GRAM_PRIVATE_L2 ? "n_components" : "d";
    if (max_L < 1)
        return gram__fail(ctx, GRAM_EINVAL, "private distances: %s = %lld is too large for even one level (levels "
                          "x %s: %s x 2^(levels+1) must stay <= 2^26 values)", what, (long long)g->nc, what, what);
    int L = s->levels;
    if (L < 0 || L > max_L)
        return gram__fail(ctx, GRAM_EINVAL, "private distances: levels must be in 1..%lld for %s = %lld (%s x "
                          "2^(levels+1) <= 2^26 values; 0: chosen from n and epsilon), got %d",
                          (long long)max_L, what, (long long)g->nc, what, L);
    if (L == 0) {
        if (!(s->eps_main > 0) || !isfinite(s->eps_main) || !(s->delta_main >= 0 && s->delta_main < 1))
            return gram__fail(ctx, GRAM_EINVAL, "private distances: choosing levels needs epsilon > 0 and delta in "
                              "[0, 1), got %g and %g", s->eps_main, s->delta_main);
        /* the rule alone runs to max_L as ε grows (d = 2, ε = 1e9: 24 levels, a 537 MB sketch);
         * a default must stay small: at most AUTO_MAX_VALUES values and AUTO_MAX_L levels, where
         * the discretisation error n·R/2^L per coordinate is already below 2^-16 of n·R */
        int64_t auto_L = max_L < AUTO_MAX_L ? max_L : AUTO_MAX_L;
        while (auto_L > 1 && g->nc > (AUTO_MAX_VALUES >> (auto_L + 1))) auto_L--;
        L = rule_levels(s, *g, n_rule < 1 ? 1 : n_rule, auto_L);
    }
    g->L = L;
    g->B = (int64_t)1 << L;
    g->nb = g->flat ? g->B : ((int64_t)2 << L) - ((int64_t)1 << g->base);
    return GRAM_OK;
}

/* The public n the levels rule may use: exact under replace, the released one under add/remove. */
static double rule_n(const gram_private_sketch *s, int64_t n)
{
    return s->neighbours == GRAM_PRIVATE_REPLACE ? (double)n : s->n_released;
}

/* The ℓ2 projections, d × k (column i is g_i, from Philox stream i of the public seed), and the
 * half-widths r_i of the intervals the projected domain fills. */
static gram_status projections(gram_context *ctx, const gram_private_sketch *s, int64_t k, double **GT_out,
                               double **r_out)
{
    const int64_t d = s->dim;
    double *GT = gram__alloc((size_t)(d * k) * sizeof(double));
    double *r = gram__alloc((size_t)k * sizeof(double));
    if (!GT || !r) {
        gram__free(GT);
        gram__free(r);
        return gram__fail(ctx, GRAM_ENOMEM, "private distances: out of memory for %lld x %lld projections",
                          (long long)k, (long long)d);
    }
    for (int64_t i = 0; i < k; i++) {
        gram__rng rng;
        gram__rng_init(&rng, s->seed, (uint64_t)i);
        long double sum = 0;
        for (int64_t j = 0; j < d; j++) {
            const double v = gram__rng_normal(&rng);
            GT[j * k + i] = v;
            sum += s->domain == GRAM_PRIVATE_BALL ? (long double)v * v : fabsl((long double)v);
        }
        const double norm = s->domain == GRAM_PRIVATE_BALL ? (double)sqrtl(sum) : (double)sum;
        r[i] = norm * s->radius;
        if (!(r[i] > 0) || !isfinite(r[i])) r[i] = s->radius; /* g_i = 0 (never in practice): z_i = 0 */
    }
    *GT_out = GT;
    *r_out = r;
    return GRAM_OK;
}

static inline int64_t cell_of(double t, double r, int64_t B)
{
    const double u = (t + r) * ((double)B / (2 * r));
    if (!(u >= 0)) return 0; /* also NaN: cannot occur for clipped data */
    if (u >= (double)B) return B - 1;
    return (int64_t)u;
}

static void count_row(const geometry *g, const double *z, const double *r, double R, int64_t *v)
{
    for (int64_t j = 0; j < g->nc; j++) {
        const int64_t c = cell_of(z[j], r ? r[j] : R, g->B);
        int64_t *blk = v + j * g->nb;
        if (g->flat) {
            blk[c]++;
            continue;
        }
        for (int l = g->base; l <= g->L; l++) blk[((int64_t)1 << l) - ((int64_t)1 << g->base) + (c >> (g->L - l))]++;
    }
}

static gram_status counts(gram_context *ctx, const gram_private_sketch *s, const geometry *g, const double *X,
                          int64_t n, int64_t *v)
{
    if (s->similarity != GRAM_PRIVATE_L2) {
        for (int64_t i = 0; i < n; i++) count_row(g, X + i * s->dim, NULL, s->radius, v);
        return GRAM_OK;
    }
    double *GT, *r;
    gram_status st = projections(ctx, s, g->nc, &GT, &r);
    if (st) return st;
    double *Z = gram__alloc((size_t)(ROW_BLOCK * g->nc) * sizeof(double));
    if (!Z) {
        gram__free(GT);
        gram__free(r);
        return gram__fail(ctx, GRAM_ENOMEM, "private distances: out of memory projecting X");
    }
    for (int64_t i0 = 0; i0 < n; i0 += ROW_BLOCK) {
        const int64_t rows = n - i0 < ROW_BLOCK ? n - i0 : ROW_BLOCK;
        gram__gemm(0, rows, g->nc, s->dim, 1.0, X + i0 * s->dim, s->dim, GT, g->nc, 0.0, Z, g->nc);
        for (int64_t i = 0; i < rows; i++) count_row(g, Z + i * g->nc, r, s->radius, v);
    }
    /* the projections of private rows are wiped with the rest of the exact statistic's inputs */
    for (volatile double *p = Z; p < Z + ROW_BLOCK * g->nc; p++) *p = 0;
    gram__free(Z);
    gram__free(GT);
    gram__free(r);
    return GRAM_OK;
}

static gram_status dist_statistic(gram_context *ctx, const gram_private_sketch *s, const double *X, int64_t n,
                                  gram__statistic *st)
{
    memset(st, 0, sizeof *st);
    geometry g;
    gram_status rc = geometry_of(ctx, s, rule_n(s, n), &g);
    if (rc) return rc;
    if (n < 0 || (n > 0 && !X))
        return gram__fail(ctx, GRAM_EINVAL, "private distances: bad data (%lld rows)", (long long)n);
    const int64_t m = g.nc * g.nb;
    /* gram__calloc refuses what the system cannot give (free() releases it, as private.h's callers do) */
    int64_t *v = gram__calloc((size_t)m, sizeof *v);
    if (!v) return gram__fail(ctx, GRAM_ENOMEM, "private distances: out of memory for %lld counts", (long long)m);
    if ((rc = counts(ctx, s, &g, X, n, v))) {
        free(v);
        return rc;
    }
    st->m = m;
    st->v = v;
    st->unit = 1;
    st->allow_coarsen = 0;
    sensitivities(s, &g, &st->sens_l1, &st->sens_l2);
    return GRAM_OK;
}

static void describe(gram_private_sketch *s, const geometry *g, const gram__statistic *st)
{
    const int rep = s->neighbours == GRAM_PRIVATE_REPLACE;
    const char *coords = s->similarity == GRAM_PRIVATE_L2 ? "projection" : "coordinate";
    const char nc = s->similarity == GRAM_PRIVATE_L2 ? 'k' : 'd';
    char formula[16];
    if (g->flat) snprintf(formula, sizeof formula, rep ? "2%c" : "%c", nc);
    else snprintf(formula, sizeof formula, rep ? "2%cL" : "%c(L+1)", nc);
    if (g->flat)
        snprintf(s->sensitivity, sizeof s->sensitivity,
                 "l1 baseline (flat histograms, standing in for Huang & Roth 2014): one histogram of 2^%d cells "
                 "per coordinate; %s one row changes %s per coordinate: sens_l1 = %s = %llu, sens_l2 = sqrt(%s) = "
                 "%.17g",
                 g->L, rep ? "replacing" : "adding or removing", rep ? "two counts (-1 and +1)" : "one count (by 1)",
                 formula, (unsigned long long)st->sens_l1, formula, st->sens_l2);
    else
        snprintf(s->sensitivity, sizeof s->sensitivity,
                 "%s: one dyadic tree of 2^%d cells per %s (%c = %lld), levels %d..%d released; %s one row changes "
                 "%s per level and %s: sens_l1 = %s = %llu, sens_l2 = sqrt(%s) = %.17g",
                 gram__private_similarity_name(s->similarity), g->L, coords, nc, (long long)g->nc, g->base, g->L,
                 rep ? "replacing" : "adding or removing", rep ? "two counts (-1 and +1)" : "one count (by 1)", coords,
                 formula, (unsigned long long)st->sens_l1, formula, st->sens_l2);
}

static gram_status dist_fit(gram_context *ctx, gram_private_sketch *s, const double *X, int64_t n, gram__csprng *r)
{
    if (n < 1) return gram__fail(ctx, GRAM_ESHAPE, "private distances: the data set is empty");
    gram__statistic st;
    gram_status rc = dist_statistic(ctx, s, X, n, &st);
    if (rc) return rc;
    geometry g;
    geometry_of(ctx, s, rule_n(s, n), &g); /* cannot fail: the statistic's call just passed */
    double *values = gram__alloc((size_t)st.m * sizeof(double));
    gram__release_record rec;
    if (!values) rc = gram__fail(ctx, GRAM_ENOMEM, "private distances: out of memory for %lld values", (long long)st.m);
    else rc = gram__release(ctx, &st, s->eps_main, s->delta_main, r, values, &rec);
    for (volatile int64_t *p = st.v; p < st.v + st.m; p++) *p = 0;
    if (rc) {
        free(st.v);
        gram__free(values);
        return rc;
    }
    s->levels = g.L;
    if (s->similarity == GRAM_PRIVATE_L2) s->n_components = g.nc;
    describe(s, &g, &st);
    free(st.v);
    s->rec = rec;
    s->approx_error = 0;
    free(s->values);
    s->values = values;
    s->n_values = st.m;
    return GRAM_OK;
}

/* ---- queries --------------------------------------------------------------------------------- */

typedef struct dcache {
    geometry g;
    double *F;  /* nc × (B+1): the noisy CDF at the cell edges */
    double *M;  /* nc × (B+1): Σ_{c<e} ĉ_c m_c */
    double *r;  /* nc half-widths */
    double *GT; /* ℓ2: d × k */
} dcache;

static void free_dcache(void *p)
{
    dcache *c = p;
    if (!c) return;
    gram__free(c->F);
    gram__free(c->M);
    gram__free(c->r);
    gram__free(c->GT);
    free(c);
}

/* The least-squares (consistent) estimate of every node of a tree whose stored nodes carry iid
 * noise (Hay, Rastogi, Miklau & Suciu, "Boosting the Accuracy of Differentially Private Histograms
 * Through Consistency", VLDB 2010, §4): bottom-up, z(v) combines v's own count with its children's
 * z by inverse variance (a node of height t ≥ 1, leaves at 1, has Var z = σ²·2^(t−1)/(2^t − 1));
 * top-down, each pair of children shares equally what their parent's estimate leaves unexplained.
 * The root is n exactly under replace-one (known, not observed); under add/remove it is observed
 * like the others. By Gauss–Markov every linear functional of the result — each CDF value, each
 * query — has the least variance of any unbiased linear estimate from the released counts. The
 * leaves' estimates give the cell counts; F is their prefix sum. work: 2·2^(L+1) doubles. */
static void build_cdf(const geometry *g, const double *v, double root, double *F, double *work)
{
    const int64_t B = g->B;
    F[0] = 0;
    if (g->flat) {
        for (int64_t e = 1; e <= B; e++) F[e] = F[e - 1] + v[e - 1];
        return;
    }
    /* heap order: node 2^l + i is node i of level l; observed value v[2^l + i − 2^base] */
    double *z = work, *hb = work + 2 * B;
    const double *obs = v - ((int64_t)1 << g->base);
    for (int64_t id = 2 * B - 1; id >= B; id--) z[id] = obs[id];
    for (int l = g->L - 1; l >= g->base; l--) {
        const int t = g->L - l + 1;
        const double own = ldexp(1, t - 1) / (ldexp(1, t) - 1);
        for (int64_t id = (int64_t)1 << l; id < (int64_t)2 << l; id++)
            z[id] = own * obs[id] + (1 - own) * (z[2 * id] + z[2 * id + 1]);
    }
    hb[1] = g->base == 1 ? root : z[1];
    for (int64_t id = 2; id < 2 * B; id += 2) {
        const double share = 0.5 * (hb[id / 2] - z[id] - z[id + 1]);
        hb[id] = z[id] + share;
        hb[id + 1] = z[id + 1] + share;
    }
    for (int64_t e = 1; e < B; e++) F[e] = F[e - 1] + hb[B + e - 1];
    F[B] = hb[1];
}

static gram_status dist_prepare(gram_context *ctx, gram_private_sketch *s)
{
    if (s->cache && s->free_cache) s->free_cache(s->cache);
    s->cache = NULL;
    s->free_cache = NULL;
    if (s->levels < 1)
        return gram__fail(ctx, GRAM_EFORMAT, "private distances: the sketch has levels = %d (>= 1 after a fit)",
                          (int)s->levels);
    geometry g;
    gram_status rc = geometry_of(ctx, s, 1, &g);
    if (rc) return rc;
    if (s->n_values != g.nc * g.nb || !s->values)
        return gram__fail(ctx, GRAM_EFORMAT, "private distances: the sketch holds %lld values; its similarity, "
                          "levels and dimensions imply %lld", (long long)s->n_values, (long long)(g.nc * g.nb));
    for (int64_t i = 0; i < s->n_values; i++)
        if (!isfinite(s->values[i]))
            return gram__fail(ctx, GRAM_EFORMAT, "private distances: released value %lld is not finite", (long long)i);
    if (!g.flat && g.base == 1 && !isfinite(s->n_released))
        return gram__fail(ctx, GRAM_EFORMAT, "private distances: n is not finite");
    dcache *c = calloc(1, sizeof *c);
    if (!c) return gram__fail(ctx, GRAM_ENOMEM, "private distances: out of memory");
    c->g = g;
    const int64_t B = g.B, nc = g.nc;
    c->F = gram__alloc((size_t)(nc * (B + 1)) * sizeof(double));
    c->M = gram__alloc((size_t)(nc * (B + 1)) * sizeof(double));
    if (s->similarity == GRAM_PRIVATE_L2) {
        if ((rc = projections(ctx, s, nc, &c->GT, &c->r))) {
            free_dcache(c);
            return rc;
        }
    } else {
        c->r = gram__alloc((size_t)nc * sizeof(double));
        if (c->r)
            for (int64_t j = 0; j < nc; j++) c->r[j] = s->radius;
    }
    if (!c->F || !c->M || !c->r) {
        free_dcache(c);
        return gram__fail(ctx, GRAM_ENOMEM, "private distances: out of memory for the query cache (%lld x %lld)",
                          (long long)nc, (long long)(B + 1));
    }
    double *work = gram__alloc((size_t)(4 * B) * sizeof(double));
    if (!work) {
        free_dcache(c);
        return gram__fail(ctx, GRAM_ENOMEM, "private distances: out of memory for the query cache");
    }
    for (int64_t j = 0; j < nc; j++) {
        const double *v = s->values + j * g.nb;
        double *F = c->F + j * (B + 1), *M = c->M + j * (B + 1);
        build_cdf(&g, v, s->n_released, F, work);
        const double r = c->r[j], h = 2 * r / (double)B;
        M[0] = 0;
        for (int64_t e = 0; e < B; e++) M[e + 1] = M[e] + (F[e + 1] - F[e]) * (-r + (e + 0.5) * h);
    }
    gram__free(work);
    s->cache = c;
    s->free_cache = free_dcache;
    return GRAM_OK;
}

/* Σ_c ĉ_c |m_c − y| in O(1) from the prefix sums: the cells whose midpoint is ≤ y contribute
 * y·F(k) − M(k), the others (M(B) − M(k)) − y·(F(B) − F(k)). */
static inline double l1_coord(const double *F, const double *M, int64_t B, double r, double y)
{
    const double u = (y + r) * ((double)B / (2 * r)) + 0.5;
    const int64_t k = !(u > 0) ? 0 : u >= (double)B ? B : (int64_t)u;
    return y * F[k] - M[k] + (M[B] - M[k]) - y * (F[B] - F[k]);
}

static double lpp_coord(const double *F, int64_t B, double r, double p, double y)
{
    const double h = 2 * r / (double)B;
    double sum = 0;
    for (int64_t c = 0; c < B; c++) sum += (F[c + 1] - F[c]) * pow(fabs(-r + (c + 0.5) * h - y), p);
    return sum;
}

static gram_status dist_query(gram_context *ctx, const gram_private_sketch *s, const double *Y, int64_t m,
                              double *out)
{
    const dcache *c = s->cache;
    if (!c) return gram__fail(ctx, GRAM_EINVAL, "private distances: the sketch is not prepared");
    const geometry *g = &c->g;
    const int64_t B = g->B, d = s->dim;
    if (s->similarity != GRAM_PRIVATE_L2) {
        const int lpp = s->similarity == GRAM_PRIVATE_LPP && s->p != 1;
        for (int64_t i = 0; i < m; i++) {
            const double *y = Y + i * d;
            double sum = 0;
            for (int64_t j = 0; j < d; j++) {
                const double *F = c->F + j * (B + 1);
                sum += lpp ? lpp_coord(F, B, c->r[j], s->p, y[j])
                           : l1_coord(F, c->M + j * (B + 1), B, c->r[j], y[j]);
            }
            out[i] = sum;
        }
        return GRAM_OK;
    }
    const int64_t k = g->nc;
    double *Z = gram__alloc((size_t)(ROW_BLOCK * k) * sizeof(double));
    if (!Z) return gram__fail(ctx, GRAM_ENOMEM, "private distances: out of memory projecting Y");
    const double scale = 1.2533141373155002512 /* sqrt(pi/2) */ / (double)k;
    for (int64_t i0 = 0; i0 < m; i0 += ROW_BLOCK) {
        const int64_t rows = m - i0 < ROW_BLOCK ? m - i0 : ROW_BLOCK;
        gram__gemm(0, rows, k, d, 1.0, Y + i0 * d, d, c->GT, k, 0.0, Z, k);
        for (int64_t i = 0; i < rows; i++) {
            double sum = 0;
            for (int64_t j = 0; j < k; j++)
                sum += l1_coord(c->F + j * (B + 1), c->M + j * (B + 1), B, c->r[j], Z[i * k + j]);
            out[i0 + i] = scale * sum;
        }
    }
    gram__free(Z);
    return GRAM_OK;
}

const gram__private_family gram__private_distances = {dist_fit, dist_statistic, dist_prepare, dist_query};
