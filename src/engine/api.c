/* The engine's public entry points: validate every argument, then hand a plan to the driver. */
#include "engine.h"

#include <math.h>

static gram_status check_common(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                                const gram_array *X, const gram_array *out)
{
    gram_status s;
    if (!k) return gram__fail(ctx, GRAM_EINVAL, "kernel must not be NULL");
    if ((s = gram__check_array(ctx, X, "X"))) return s;
    if ((s = gram__check_array(ctx, Y, "Y"))) return s;
    if ((s = gram__check_array(ctx, out, "out"))) return s;
    if (X->dtype != Y->dtype)
        return gram__fail(ctx, GRAM_EINVAL, "X and Y must have the same dtype (X is %s, Y is %s)",
                          X->dtype == GRAM_FLOAT64 ? "float64" : "float32",
                          Y->dtype == GRAM_FLOAT64 ? "float64" : "float32");
    if (X->cols != Y->cols)
        return gram__fail(ctx, GRAM_ESHAPE, "X has %lld columns but Y has %lld: points must have the same dimension",
                          (long long)X->cols, (long long)Y->cols);
    if (k->dim > 0 && X->cols != k->dim)
        return gram__fail(ctx, GRAM_ESHAPE, "the kernel's ARD lengthscales fix D = %lld but the data have %lld columns",
                          (long long)k->dim, (long long)X->cols);
    if (k->stack_depth > 64)
        return gram__fail(ctx, GRAM_EUNSUPPORTED, "kernel expression is nested too deeply (%d levels; at most 64)",
                          k->stack_depth);
    if ((s = gram__check_finite(ctx, X, "X"))) return s;
    if (!gram__same_view(X, Y) && (s = gram__check_finite(ctx, Y, "Y"))) return s;
    if ((s = gram__check_no_overlap(ctx, out, X, "out", "X"))) return s;
    if ((s = gram__check_no_overlap(ctx, out, Y, "out", "Y"))) return s;
    return GRAM_OK;
}

static gram_status run(gram_context *ctx, const gram_kernel *k, gram__op_mode mode, const gram_array *Y,
                       const gram_array *X, const gram_array *W, const gram_array *out, int exclude_self,
                       int lower_only)
{
    gram__plan p;
    gram_status s = gram__plan_build(&p, ctx, k, mode, Y, X, W, out);
    p.exclude_self = exclude_self && p.sym;
    p.lower_only = mode == GRAM_MODE_MATRIX && lower_only && p.sym; /* see gram__kernel_matrix_lower */
    if (!s) s = gram__plan_run(&p);
    gram__plan_free(&p);
    return s;
}

gram_status gram__check_weights_out(gram_context *ctx, const gram_array *Y, const gram_array *X, const gram_array *W,
                                    const gram_array *out)
{
    gram_status s;
    int64_t V = 1;
    if (W) {
        if ((s = gram__check_array(ctx, W, "W"))) return s;
        if (W->rows != X->rows)
            return gram__fail(ctx, GRAM_ESHAPE, "W has %lld rows but X has %lld: one weight row per data point",
                              (long long)W->rows, (long long)X->rows);
        V = W->cols;
    }
    if (out->rows != Y->rows || out->cols != V)
        return gram__fail(ctx, GRAM_ESHAPE, "out is %lld×%lld but must be %lld×%lld (queries × weight columns)",
                          (long long)out->rows, (long long)out->cols, (long long)Y->rows, (long long)V);
    return GRAM_OK;
}

gram_status gram__check_sum_args(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                 const gram_array *W, const gram_array *out)
{
    gram_status s;
    if ((s = check_common(ctx, k, Y, X, out))) return s;
    if ((s = gram__check_weights_out(ctx, Y, X, W, out))) return s;
    if (W && ((s = gram__check_finite(ctx, W, "W")) || (s = gram__check_no_overlap(ctx, out, W, "out", "W")))) return s;
    return GRAM_OK;
}

static gram_status reduce(gram_context *ctx, const gram_kernel *k, gram__op_mode mode,
                          const gram_array *Y, const gram_array *X, const gram_array *W, gram_array *out,
                          int exclude_self)
{
    gram__clear(ctx);
    gram_status s;
    if (!Y) Y = X;
    if ((s = gram__check_sum_args(ctx, k, Y, X, W, out))) return s;
    if (mode == GRAM_MODE_LOGSUM) {
        if (!k->nonnegative)
            return gram__fail(ctx, GRAM_EDOMAIN, "logsum needs a kernel that is never negative; this one can be");
        if (W && (s = gram__check_nonnegative(ctx, W, "W"))) return s;
    }
    if (exclude_self && !gram__same_view(Y, X))
        return gram__fail(ctx, GRAM_EINVAL, "leave-one-out sums need Y to be X");
    return run(ctx, k, mode, Y, X, W, out, exclude_self, 0);
}

gram_status gram_kernel_sum(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                            const gram_array *X, const gram_array *W, gram_array *out)
{
    return reduce(ctx, k, GRAM_MODE_SUM, Y, X, W, out, 0);
}

gram_status gram_kernel_logsum(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                               const gram_array *X, const gram_array *W, gram_array *out)
{
    return reduce(ctx, k, GRAM_MODE_LOGSUM, Y, X, W, out, 0);
}

gram_status gram__kernel_reduce(gram_context *ctx, const gram_kernel *k, int logspace, const gram_array *Y,
                                const gram_array *X, const gram_array *W, gram_array *out, int exclude_self)
{
    return reduce(ctx, k, logspace ? GRAM_MODE_LOGSUM : GRAM_MODE_SUM, Y, X, W, out, exclude_self);
}

gram_status gram_kernel_matrix(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                               const gram_array *X, gram_array *out)
{
    gram__clear(ctx);
    gram_status s;
    if (!Y) Y = X;
    if ((s = check_common(ctx, k, Y, X, out))) return s;
    if (out->rows != Y->rows || out->cols != X->rows)
        return gram__fail(ctx, GRAM_ESHAPE, "out is %lld×%lld but must be %lld×%lld (rows of Y × rows of X)",
                          (long long)out->rows, (long long)out->cols, (long long)Y->rows, (long long)X->rows);
    return run(ctx, k, GRAM_MODE_MATRIX, Y, X, NULL, out, 0, 0);
}

gram_status gram_kernel_matrix_grad(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                                    const gram_array *X, gram_array *out, double *grad)
{
    gram__clear(ctx);
    gram_status s;
    if (!Y) Y = X;
    /* The size of grad first: a block too large to hold is refused before any scan of the data. */
    int64_t mn = 0, mnp = 0;
    size_t bytes;
    if (k && X && Y && (!gram__mul_i64(Y->rows, X->rows, &mn) || !gram__mul_i64(mn, k->n_hyper, &mnp) ||
                        !gram__bytes(mnp, sizeof(double), &bytes)))
        return gram__fail(ctx, GRAM_EOVERFLOW, "the gradient of a %lld×%lld block in %lld hyperparameters "
                          "has more elements than memory can hold", (long long)Y->rows, (long long)X->rows,
                          (long long)k->n_hyper);
    if ((s = check_common(ctx, k, Y, X, out))) return s;
    if (out->rows != Y->rows || out->cols != X->rows)
        return gram__fail(ctx, GRAM_ESHAPE, "out is %lld×%lld but must be %lld×%lld (rows of Y × rows of X)",
                          (long long)out->rows, (long long)out->cols, (long long)Y->rows, (long long)X->rows);
    if (grad && mnp > 0) {
        gram_array g = {grad, GRAM_FLOAT64, 1, mnp, mnp, 1};
        if ((s = gram__check_no_overlap(ctx, &g, X, "grad", "X"))) return s;
        if ((s = gram__check_no_overlap(ctx, &g, Y, "grad", "Y"))) return s;
        if ((s = gram__check_no_overlap(ctx, out, &g, "out", "grad"))) return s;
    }
    if ((s = run(ctx, k, GRAM_MODE_MATRIX, Y, X, NULL, out, 0, 0))) return s;
    if (!grad || mnp == 0) return GRAM_OK;
    return gram__matrix_grad_run(ctx, k, Y, X, gram__same_view(Y, X), grad);
}

gram_status gram__kernel_matrix_lower(gram_context *ctx, const gram_kernel *k, const gram_array *X,
                                      gram_array *out)
{
    gram__clear(ctx);
    gram_status s;
    if ((s = check_common(ctx, k, X, X, out))) return s;
    if (out->rows != X->rows || out->cols != X->rows)
        return gram__fail(ctx, GRAM_ESHAPE, "out is %lld×%lld but must be %lld×%lld", (long long)out->rows,
                          (long long)out->cols, (long long)X->rows, (long long)X->rows);
    return run(ctx, k, GRAM_MODE_MATRIX, X, X, NULL, out, 0, 1);
}

gram_status gram_kernel_diag(gram_context *ctx, const gram_kernel *k, const gram_array *X, gram_array *out)
{
    gram__clear(ctx);
    gram_status s;
    if (!k) return gram__fail(ctx, GRAM_EINVAL, "kernel must not be NULL");
    if ((s = gram__check_array(ctx, X, "X"))) return s;
    if ((s = gram__check_array(ctx, out, "out"))) return s;
    if (k->dim > 0 && X->cols != k->dim)
        return gram__fail(ctx, GRAM_ESHAPE, "the kernel's ARD lengthscales fix D = %lld but X has %lld columns",
                          (long long)k->dim, (long long)X->cols);
    int column = out->cols == 1 && out->rows == X->rows, row = out->rows == 1 && out->cols == X->rows;
    if (!column && !row)
        return gram__fail(ctx, GRAM_ESHAPE, "out is %lld×%lld but must be %lld×1 or 1×%lld", (long long)out->rows,
                          (long long)out->cols, (long long)X->rows, (long long)X->rows);
    if ((s = gram__check_finite(ctx, X, "X"))) return s;
    if ((s = gram__check_no_overlap(ctx, out, X, "out", "X"))) return s;
    const int64_t D = X->cols;
    double *x = gram__alloc(sizeof(double) * (size_t)(D + 1));
    if (!x) return gram__fail(ctx, GRAM_ENOMEM, "out of memory");
    for (int64_t i = 0; i < X->rows && !s; i++) {
        for (int64_t d = 0; d < D; d++) x[d] = gram__get(X, i, d);
        double v;
        s = gram_kernel_eval(ctx, k, D, x, x, 1, &v, NULL);
        if (!s) {
            if (X->dtype == GRAM_FLOAT32) v = (double)(float)v;
            gram__put(out, column ? i : 0, column ? 0 : i, v);
        }
    }
    gram__free(x);
    return s;
}

gram_status gram__kernel_attention(gram_context *ctx, const gram_kernel *k, const gram_array *Q,
                                   const gram_array *K, const gram_array *V, const double *bias,
                                   int causal, gram_array *out)
{
    gram_status s;
    if (!k) return gram__fail(ctx, GRAM_EINVAL, "kernel must not be NULL");
    if ((s = gram__check_array(ctx, Q, "Q")) || (s = gram__check_array(ctx, K, "K")) ||
        (s = gram__check_array(ctx, V, "V")) || (s = gram__check_array(ctx, out, "out")))
        return s;
    if (Q->dtype != K->dtype)
        return gram__fail(ctx, GRAM_EINVAL, "Q and K must have the same dtype (Q is %s, K is %s)",
                          Q->dtype == GRAM_FLOAT64 ? "float64" : "float32", K->dtype == GRAM_FLOAT64 ? "float64" : "float32");
    if (Q->cols != K->cols)
        return gram__fail(ctx, GRAM_ESHAPE, "Q has %lld columns but K has %lld: queries and keys must have the same dimension",
                          (long long)Q->cols, (long long)K->cols);
    if (V->rows != K->rows)
        return gram__fail(ctx, GRAM_ESHAPE, "V has %lld rows but K has %lld: one value row per key", (long long)V->rows,
                          (long long)K->rows);
    if (out->rows != Q->rows || out->cols != V->cols)
        return gram__fail(ctx, GRAM_ESHAPE, "out is %lld×%lld but must be %lld×%lld (queries × value columns)",
                          (long long)out->rows, (long long)out->cols, (long long)Q->rows, (long long)V->cols);
    if (causal && Q->rows != K->rows)
        return gram__fail(ctx, GRAM_ESHAPE, "causal attention needs as many queries as keys (position i attends to "
                          "keys j <= i); got %lld queries and %lld keys", (long long)Q->rows, (long long)K->rows);
    if (k->dim > 0 && K->cols != k->dim)
        return gram__fail(ctx, GRAM_ESHAPE, "the kernel's ARD lengthscales fix D = %lld but Q and K have %lld columns",
                          (long long)k->dim, (long long)K->cols);
    if (k->stack_depth > 64)
        return gram__fail(ctx, GRAM_EUNSUPPORTED, "kernel expression is nested too deeply (%d levels; at most 64)",
                          k->stack_depth);
    if (!k->nonnegative)
        return gram__fail(ctx, GRAM_EDOMAIN, "attention weights must be non-negative: this kernel can be negative "
                          "(use a non-negative kernel: softmax, gaussian, laplacian, matern, ...)");
    if (V->cols == INT64_MAX) return gram__fail(ctx, GRAM_EOVERFLOW, "V has too many columns");
    if ((s = gram__check_finite(ctx, Q, "Q"))) return s;
    if (!gram__same_view(Q, K) && (s = gram__check_finite(ctx, K, "K"))) return s;
    if ((s = gram__check_finite(ctx, V, "V"))) return s;
    if (bias) {
        const int64_t nb = Q->rows + K->rows - 1;
        for (int64_t t = 0; t < nb; t++)
            if (!isfinite(bias[t]))
                return gram__fail(ctx, GRAM_ENONFINITE, "rpe: bias %lld (offset j - i = %lld) is %s", (long long)t,
                                  (long long)(t - (Q->rows - 1)), isnan(bias[t]) ? "NaN" : "infinite");
    }
    if ((s = gram__check_no_overlap(ctx, out, Q, "out", "Q")) || (s = gram__check_no_overlap(ctx, out, K, "out", "K")) ||
        (s = gram__check_no_overlap(ctx, out, V, "out", "V")))
        return s;

    int64_t empty = -1, inf = -1;
    gram__plan p;
    s = gram__plan_build(&p, ctx, k, GRAM_MODE_ATTENTION, Q, K, V, out);
    p.bias = bias;
    p.bias_off = Q->rows - 1;
    p.causal = causal;
    p.att_empty = &empty;
    p.att_inf = &inf;
    if (!s) s = gram__plan_run(&p);
    gram__plan_free(&p);
    if (s) return s;
    if (inf >= 0)
        return gram__fail(ctx, GRAM_EDOMAIN, "attention row %lld is not finite: a kernel value or the weighted sum of "
                          "V overflows a double (its row of out is set to 0)", (long long)inf);
    if (empty >= 0)
        return gram__fail(ctx, GRAM_EDOMAIN, "attention row %lld has no key with a positive weight (every kernel value "
                          "is 0, e.g. all keys outside a compactly supported kernel's reach): its average is undefined "
                          "and its row of out is set to 0", (long long)empty);
    return GRAM_OK;
}
