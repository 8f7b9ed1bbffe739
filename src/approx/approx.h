/* approx: approximate kernel sums with a tolerance (internal to libgram; public API in gram.h,
 * "Approximate kernel sums with a tolerance"; docs/approx.md).
 *   approx.c    front end: options, validation, the automatic choice, exact
 *   tree.c      kd-trees over X and Y, deterministic node bounds, leaves by the engine
 *   sampling.c  uniform sampling with empirical-Bernstein bounds
 *   diagnose.c  participation ratio, Biroli–Mézard regimes
 *   near.c      DEANN's split for sampling: a cluster index, each query's nearest points
 *   grid.c      gaussian kernels in D ≤ 6: binning, grid convolution, interpolation
 *   fgt.c       the improved fast Gauss transform
 *   rff.c       the feature-map route: random Fourier features with an empirical-Bernstein bound
 * Every method writes out (M × V, caller's dtype) and, when err is not NULL, its bound per value. */
#ifndef GRAM_APPROX_H
#define GRAM_APPROX_H

#include "gram.h"
#include "../base/base.h"

/* The tolerance a value must meet: atol + rtol·|exact|. Methods receive validated options. */
gram_status gram__approx_tree(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_array *W, const gram_approx_options *opt, gram_array *out, gram_array *err,
                              gram_approx_info *info);
gram_status gram__approx_sampling(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                  const gram_array *W, const gram_approx_options *opt, gram_array *out,
                                  gram_array *err, gram_approx_info *info);
/* Whether the tree's bounds apply to k: a single radial, non-negative, non-increasing family (with
 * optional constant scale); a message naming why not otherwise (for the front end's errors). */
int gram__approx_tree_supports(const gram_kernel *k, const char **why);
/* The tree with AUTO's pilot: when max_fraction < 1 and declined is not NULL, up to 32 query blocks
 * of 16 spread over Y are run first, on one thread, counting the pairs they sum exactly (the walk
 * depends on its sums, so the pilot is the real thing); above max_fraction·(their queries)·N the
 * rest is not run and *declined = 1 (the caller then sums exactly, overwriting those rows), else
 * the pilot's results stand. gram__approx_tree is this with no pilot. */
gram_status gram__approx_tree_run(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                  const gram_array *W, const gram_approx_options *opt, gram_array *out,
                                  gram_array *err, gram_approx_info *info, double max_fraction, int *declined);
/* Whether sampling's bounds apply to k: every family of it has a finite range (kernels of both signs
 * included; not linear, polynomial, softmax, arccos, neg_l1, neg_l2) and it has no white noise; a
 * message naming why not otherwise (for the front end's errors). */
int gram__approx_sampling_supports(const gram_kernel *k, const char **why);
/* AUTO's cost model for sampling (with the split opt->near_neighbours asks for): a pilot of up to
 * 16 queries spread over Y runs the method itself (near index and query groups built on the whole
 * of X and Y, so its sample sizes are the real ones); the predicted time of the whole call, in
 * units of one kernel pair of gram_kernel_sum at this D on one thread (the exact sum costs M·N),
 * is the index's distances plus M/16 times the pilot's pairs, each kind weighted by its measured
 * cost (docs/approx.md, "Sampling"). INFINITY where sampling cannot run (kernel) or the pilot
 * fails (its message is then left on ctx, its status not returned). */
double gram__approx_sampling_cost(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                  const gram_array *W, const gram_approx_options *opt);
/* Sampling's near set for near_neighbours = requested: 0 for plain sampling, else k (the method's
 * choice for 0) with the index's cluster count in *clusters. */
int64_t gram__approx_sampling_near(const gram_kernel *k, int64_t N, int64_t M, int64_t requested, int64_t *clusters);

/* near.c: DEANN's near sets. X clustered into C clusters (centres from stream 1 of the seed, Lloyd
 * steps), rows listed cluster by cluster; each cluster's least and largest member distance to its
 * centre. Queries grouped by nearest centre; a group's near set is whole clusters, those its queries
 * may come closest to first, until ≥ k_near rows; kmax[i] bounds k(y_i, x) over every x outside
 * query i's near set (+∞ when k is not scale·f(distance) with f non-increasing; 0 when no row is
 * outside). */
typedef struct gram__near {
    int64_t N, C, D;
    int64_t *order;        /* N: rows of X, cluster by cluster */
    int64_t *start;        /* C + 1: cluster c holds order[start[c] .. start[c + 1]) */
    int64_t *cluster;      /* N: each row's cluster */
    double *rlo, *rhi;     /* C: least and largest member distance to the centre */
    void *centres;         /* C × D in X's dtype */
    gram_kernel *dist;     /* neg_l2 or neg_l1 in the kernel's scaled metric */
    const struct gram__leaf *leaf;
    double scale;
    int l1, kmax_inf;
    double rel, tau, derr, kslack; /* rounding: t's relative and absolute, a distance's, k's */
    int64_t evaluations;   /* distance pairs computed */
} gram__near;
typedef struct gram__near_plan {
    int64_t C, V;
    int64_t *qorder;       /* M queries, group by group (group g: the queries nearest centre g) */
    int64_t *qstart;       /* C + 1 */
    unsigned char *near;   /* C × C: near[g·C + c] = 1 when cluster c is in group g's near set */
    double *kmax;          /* M */
    double *cw;            /* C × 2V: each cluster's Σ w⁺ (v) and Σ |w⁻| (V + v) per column */
    double *rest;          /* M × 2V: bounds on Σ k·w⁺ and Σ k·|w⁻| over the rows outside the near set
                              (radial kernels only: kmax finite) */
    int64_t evaluations;   /* distance pairs computed */
} gram__near_plan;
/* The default C: 4% of M·N/(N + M) (the index's (N + M)·C distances against the exact M·N), in [1, 2048]. */
int64_t gram__near_clusters(int64_t N, int64_t M);
gram_status gram__near_build(gram_context *ctx, const gram_kernel *k, const gram_array *X, const gram_array *Y,
                             uint64_t seed, int64_t C, gram__near *ix);
gram_status gram__near_plan_make(gram_context *ctx, const gram__near *ix, const gram_array *Y, const gram_array *W,
                                 int64_t k_near, gram__near_plan *p);
/* The bound on k over points at least lb (a distance computed by the index) from a query. */
double gram__near_kmax(const gram__near *ix, double lb);
void gram__near_free(gram__near *ix);
void gram__near_plan_free(gram__near_plan *p);
/* sampling.c's allocation helpers, shared with near.c: a buffer of count·elem bytes (count may be 0:
 * a one-byte block, so NULL always means failure, an overflowing size included), and GRAM_ENOMEM
 * naming what could not be allocated. */
void *gram__approx_buffer(int64_t count, size_t elem);
gram_status gram__approx_sampling_oom(gram_context *ctx, const char *what);
/* A kernel whose values are k(y, x)² (sampling's sums of squared terms): one leaf of the same family
 * for a gaussian, laplacian or exponential kernel (optionally scaled), k·k otherwise. */
gram_status gram__approx_kernel_square(gram_context *ctx, const gram_kernel *k, gram_kernel **out);
/* The sum over an empty X: every value of out is 0, and so is its bound in err (when not NULL). */
void gram__approx_zero(gram_array *out, gram_array *err);

/* The methods of the later part (grid.c, fgt.c, rff.c), with the same contract as the tree's and
 * sampling's: validated arguments and options, out (and err) written for every query, each value
 * within its tolerance (deterministically, or with probability ≥ 1 − delta for FEATURES), info's
 * fields set. A query a method cannot certify is summed exactly (its err then 0).
 * supports: whether the method's bounds apply to k in D dimensions, a message naming why not
 * (for the front end's errors).
 * cost: AUTO's cost model: the method's predicted time for this call, in units of one kernel pair
 * of gram_kernel_sum at this D on one thread (so the exact sum costs M·N); INFINITY where the
 * method cannot run (kernel, dimension, memory). It may read X and Y (O((M + N)·D) work) and run
 * a pilot of a bounded size, independent of M and N (fgt: at most 64 × 4096 engine pairs; features:
 * 64 frequencies on 64 queries and 1024 rows). Its constants are measured and documented in
 * docs/approx.md. */
int gram__approx_grid_supports(const gram_kernel *k, int64_t D, const char **why);
double gram__approx_grid_cost(const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_approx_options *opt);
gram_status gram__approx_grid(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_array *W, const gram_approx_options *opt, gram_array *out, gram_array *err,
                              gram_approx_info *info);
/* The grid's constants, for its tests: max |Π_{j<p} (r − j)| over the central interval of a p-point
 * stencil (closed form), and its bound on the error of interpolating e^{−t²/2} at spacing h. */
double gram__approx_grid_nodal_max(int p);
double gram__approx_grid_interp_bound(int p, double h);
int gram__approx_fgt_supports(const gram_kernel *k, int64_t D, const char **why);
double gram__approx_fgt_cost(const gram_kernel *k, const gram_array *Y, const gram_array *X,
                             const gram_approx_options *opt);
gram_status gram__approx_fgt(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                             const gram_array *W, const gram_approx_options *opt, gram_array *out, gram_array *err,
                             gram_approx_info *info);
/* fgt's truncation bound per unit weight (fgt.c derives it): the error of the order-p Taylor series
 * of one term exp(−|y − x|²) (coordinates scaled so that the gaussian is exp(−|·|²)) for a point x
 * within r of its cluster's centre and a query y at distance beta from it. */
double gram__approx_fgt_trunc_bound(int p, double r, double beta);
int gram__approx_features_supports(const gram_kernel *k, int64_t D, const char **why);
double gram__approx_features_cost(const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                  const gram_approx_options *opt);
gram_status gram__approx_features(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                                  const gram_array *X, const gram_array *W, const gram_approx_options *opt,
                                  gram_array *out, gram_array *err, gram_approx_info *info);

#endif
