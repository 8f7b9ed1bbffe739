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
 * method cannot run (kernel, dimension, memory). It may read X and Y (O((M + N)·D) work) but never
 * evaluates the kernel on pairs. Its constants are measured and documented in docs/approx.md. */
int gram__approx_grid_supports(const gram_kernel *k, int64_t D, const char **why);
double gram__approx_grid_cost(const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_approx_options *opt);
gram_status gram__approx_grid(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_array *W, const gram_approx_options *opt, gram_array *out, gram_array *err,
                              gram_approx_info *info);
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
