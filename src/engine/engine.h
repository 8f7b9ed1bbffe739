/* engine: argument checks → driver (packing, tiling, threads) → microkernels. Internal. */
#ifndef GRAM_ENGINE_H
#define GRAM_ENGINE_H

#include "kernels/ukr.h"

typedef enum gram__op_mode { GRAM_MODE_SUM = 0, GRAM_MODE_LOGSUM, GRAM_MODE_MATRIX, GRAM_MODE_ATTENTION } gram__op_mode;

/* Data of one metric group (leaves sharing a scaling share one packed copy of X and Y). */
typedef struct gram__group {
    const gram__leaf *leaf; /* the first leaf of the group: its inv_scale defines the scaling */
    int centred;            /* radial groups: the data minus the plan's centre, then scaled */
    void *xp;  /* packed X: Npad/PANEL panels of D × PANEL, scaled */
    void *yp;  /* Y rows, M × D, scaled, contiguous */
    void *xx;  /* |x_j|² of the scaled points (Npad) */
    void *yy;  /* |y_i|² of the scaled rows (M) */
} gram__group;

typedef struct gram__plan {
    gram_context *ctx;
    const gram_kernel *k;
    const gram__ukr *ukr;
    gram__op_mode mode;
    gram_dtype dtype; /* of X and Y: the compute type */
    int64_t M, N, D, V, Npad;
    int sym;
    int exclude_self; /* symmetric calls only: drop the pairs i == j (leave-one-out) */
    int lower_only;   /* symmetric matrix calls only: skip the chunks wholly above the diagonal */
    int inf_retry;    /* a non-negative kernel with a product, scale or power: direct tiles holding
                         ±inf are recomputed from their log-values (driver.c, eval_tile_direct) */
    int n_groups;
    gram__group *groups;
    int *leaf_group;   /* per leaf: its group, or -1 for CONST leaves */
    double *center;    /* D values subtracted from X and Y before the scaling of radial groups */
    double *W;         /* Npad × V weights (sum) or log-weights (logsum); padding 0 / -inf */
    const gram_array *out;
    int threads;
    /* GRAM_MODE_ATTENTION: W is [V, 1] (the plan's V counts the ones column, out has V - 1
     * columns); log-weights log k + bias[j - i + bias_off] (bias NULL: none), -inf for j > i when
     * causal. The first row whose weights are all 0 (att_empty) or whose weights or result
     * overflow (att_inf) is recorded there (-1: none); the caller turns them into errors. */
    const double *bias;
    int64_t bias_off;
    int causal;
    int64_t *att_empty, *att_inf;
} gram__plan;

/* Checks (check.c). Each returns GRAM_OK or a failure with a message naming the argument. */
gram_status gram__check_array(gram_context *ctx, const gram_array *a, const char *name);
gram_status gram__check_finite(gram_context *ctx, const gram_array *a, const char *name);
gram_status gram__check_nonnegative(gram_context *ctx, const gram_array *a, const char *name);
gram_status gram__check_no_overlap(gram_context *ctx, const gram_array *out, const gram_array *in,
                                   const char *out_name, const char *in_name);
int gram__same_view(const gram_array *a, const gram_array *b);

/* The argument checks of a weighted sum (api.c), for the front ends above the engine that take the
 * same arguments, so that they fail with the engine's messages. check_weights_out: W (or none) has
 * a row per row of X and out is rows(Y) × columns(W) (× 1 without W). check_sum_args: every check
 * of gram_kernel_sum (kernel, arrays, dtypes, shapes, finiteness, overlaps); Y must not be NULL. */
gram_status gram__check_weights_out(gram_context *ctx, const gram_array *Y, const gram_array *X, const gram_array *W,
                                    const gram_array *out);
gram_status gram__check_sum_args(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                 const gram_array *W, const gram_array *out);

/* Element access for any dtype. */
static inline double gram__get(const gram_array *a, int64_t i, int64_t j)
{
    int64_t off = i * a->row_stride + j * a->col_stride;
    return a->dtype == GRAM_FLOAT64 ? ((const double *)a->data)[off] : (double)((const float *)a->data)[off];
}
static inline void gram__put(const gram_array *a, int64_t i, int64_t j, double v)
{
    int64_t off = i * a->row_stride + j * a->col_stride;
    if (a->dtype == GRAM_FLOAT64) ((double *)a->data)[off] = v;
    else ((float *)a->data)[off] = (float)v;
}

/* The sums for the layers above (density, regression): gram_kernel_sum / gram_kernel_logsum with
 * one more option. exclude_self (only when Y is NULL or the same view as X) leaves out the pairs
 * i == j, exactly: leave-one-out sums without cancellation. */
gram_status gram__kernel_reduce(gram_context *ctx, const gram_kernel *k, int logspace,
                                const gram_array *Y, const gram_array *X, const gram_array *W,
                                gram_array *out, int exclude_self);

/* Kernel attention through the engine (api.c checks, driver.c runs): for queries Q (L×d), keys
 * K (S×d) and values V (S×dv),
 *     out[i,:] = Σ_j w_ij V[j,:] / Σ_j w_ij,   w_ij = k(q_i, k_j) · exp(bias[j - i + L - 1]),
 * w_ij = 0 for j > i when causal (L == S). bias: NULL or L + S - 1 finite values. k must be
 * non-negative. Every tile's log-weights are merged online (running row maximum, rescaled sums of
 * [V, 1]), so logits of any finite size work and the bits do not depend on the thread count. A row
 * whose weights are all exactly 0 gets zeros and GRAM_EDOMAIN naming it; so does one whose
 * weights or result overflow. */
gram_status gram__kernel_attention(gram_context *ctx, const gram_kernel *k, const gram_array *Q,
                                   const gram_array *K, const gram_array *V, const double *bias,
                                   int causal, gram_array *out);

/* K(X, X) with only the lower triangle (and the diagonal, white noise included) guaranteed: the
 * chunks of columns wholly above the diagonal are skipped, so the entries there are partly
 * written, partly left as they were. For the regression layer, which factors the lower triangle. */
gram_status gram__kernel_matrix_lower(gram_context *ctx, const gram_kernel *k, const gram_array *X,
                                      gram_array *out);

/* The driver (driver.c): packs, runs the tiles on threads, writes out. */
gram_status gram__plan_build(gram__plan *p, gram_context *ctx, const gram_kernel *k,
                             gram__op_mode mode, const gram_array *Y, const gram_array *X,
                             const gram_array *W, const gram_array *out);
gram_status gram__plan_run(gram__plan *p);
void gram__plan_free(gram__plan *p);

/* A weighted kernel sum over sub-ranges of X, packed once (the approximate methods' exact parts,
 * src/approx/tree.c): gram__packed_create packs Y, X and W (rows as given, validated by the caller,
 * N ≥ 1) as gram_kernel_sum would, the same centre and scaling, so every pair's kernel value is
 * bit for bit the one gram_kernel_sum computes for it; gram__packed_sum then adds, for query rows
 * r0 ≤ i < r1 and every weight column v,
 *     acc[(i - r0)·V + v] += Σ_{j0 ≤ j < j1} k(y_i, x_j) · W[j, v]
 * one chunk of GRAM_KC points at a time from j0, each chunk's partial added to acc in chunk order,
 * as the driver does: with acc = 0 and [j0, j1) = [0, N) the result is gram_kernel_sum's, bit for
 * bit. j0 must be a multiple of GRAM_PANEL, and j1 one too or N (a packed panel is summed whole;
 * callers that need other boundaries give the rows between weight 0). Serial, no allocation:
 * scratch is gram__packed_scratch bytes of the caller's (one per thread), so threads may share pk.
 * Sums only (not log-sums). */
typedef struct gram__packed {
    gram__plan plan;
    size_t scratch; /* bytes of scratch one gram__packed_sum needs */
} gram__packed;
gram_status gram__packed_create(gram__packed *pk, gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                                const gram_array *X, const gram_array *W);
void gram__packed_sum(const gram__packed *pk, int64_t r0, int64_t r1, int64_t j0, int64_t j1, void *scratch,
                      double *acc);
void gram__packed_free(gram__packed *pk);

/* The gradient half of gram_kernel_matrix_grad (driver.c), for validated Y (M×D) and X (N×D):
 * grad[(i·N + j)·P + p] = ∂k(y_i, x_j)/∂θ_p for P = n_hyper, white on the diagonal when sym. Rows
 * on threads, each entry computed alone, so the bits do not depend on the thread count. */
gram_status gram__matrix_grad_run(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                                  const gram_array *X, int sym, double *grad);

#endif
