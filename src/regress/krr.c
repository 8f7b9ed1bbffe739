/* Kernel ridge regression, as scikit-learn's KernelRidge (its _solve_cholesky_kernel): with
 * s = sqrt(sample_weight), solve (diag(s) K diag(s) + λ_t I) z_t = s ⊙ y_t by Cholesky and set
 * c_t = s ⊙ z_t, which is (K + λ_t diag(1/w)) c_t = y_t where every w > 0. Targets sharing a λ
 * share one factorisation. Predictions are the engine's kernel sums with the dual coefficients as
 * weights. */
#include "regress.h"

#include "../linalg/linalg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Dual coefficients from the kernel matrix (lower triangle of K, n×n contiguous; K is
 * overwritten). Y and out are n×t contiguous; w is NULL or n weights ≥ 0. */
static gram_status solve_dual(gram_context *ctx, const char *what, int64_t n, int64_t t, double *K,
                              const double *Y, const double *w, int64_t n_lambda, const double *lambda,
                              double *out)
{
    gram_status s = GRAM_OK;
    double *A = NULL, *rhs = NULL;
    int shared = 1;
    for (int64_t c = 1; c < n_lambda; c++) shared &= lambda[c] == lambda[0];
    if (w)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j <= i; j++) K[i * n + j] *= sqrt(w[i]) * sqrt(w[j]);
    rhs = gram__alloc((size_t)(n * (t > 0 ? t : 1)) * sizeof(double));
    if (!shared) A = gram__alloc((size_t)(n * n) * sizeof(double));
    if (!rhs || (!shared && !A)) {
        s = gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory", what);
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < t; c++) rhs[i * t + c] = w ? sqrt(w[i]) * Y[i * t + c] : Y[i * t + c];
    if (shared) { /* one factorisation for every target */
        for (int64_t i = 0; i < n; i++) K[i * n + i] += lambda[0];
        if ((s = gram__chol_dense(ctx, n, K, n, "the kernel ridge system K + alpha*I",
                                      "increase alpha", NULL))) goto done;
        gram__trsm_lower(n, t, K, n, rhs, t, 0);
        gram__trsm_lower(n, t, K, n, rhs, t, 1);
        for (int64_t i = 0; i < n; i++)
            for (int64_t c = 0; c < t; c++) out[i * t + c] = rhs[i * t + c];
    } else {
        double *col = gram__alloc((size_t)n * sizeof(double));
        if (!col) {
            s = gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory", what);
            goto done;
        }
        for (int64_t c = 0; c < t && !s; c++) {
            for (int64_t i = 0; i < n; i++) {
                memcpy(A + i * n, K + i * n, (size_t)(i + 1) * sizeof(double));
                A[i * n + i] += lambda[c];
                col[i] = rhs[i * t + c];
            }
            char msg[80];
            snprintf(msg, sizeof msg, "the kernel ridge system K + alpha*I of target %lld", (long long)c);
            if ((s = gram__chol_dense(ctx, n, A, n, msg, "increase alpha", NULL))) break;
            gram__trsm_lower(n, 1, A, n, col, 1, 0);
            gram__trsm_lower(n, 1, A, n, col, 1, 1);
            for (int64_t i = 0; i < n; i++) out[i * t + c] = col[i];
        }
        gram__free(col);
        if (s) goto done;
    }
    if (w)
        for (int64_t i = 0; i < n; i++)
            for (int64_t c = 0; c < t; c++) out[i * t + c] *= sqrt(w[i]);
    /* Pivots that passed can still make the solves overflow (targets too large for the system's
     * smallest eigenvalues): no inf or NaN coefficient leaves, and it is not a failed factorisation
     * (whose least-squares fallback, in the Python layer, would not help). */
    for (int64_t i = 0; i < n * t; i++)
        if (!isfinite(out[i])) {
            double big = 0.0;
            for (int64_t j = 0; j < n * t; j++) big = fmax(big, fabs(Y[j]));
            s = gram__fail(ctx, GRAM_EDOMAIN, "%s: the dual coefficients overflow for targets up to %g; "
                                              "scale y or increase alpha", what, big);
            break;
        }
done:
    gram__free(A);
    gram__free(rhs);
    return s;
}

/* Checks Y against n rows (a 1×n row is taken as a column) and the weights and λ; copies Y and w. */
static gram_status prepare(gram_context *ctx, const char *what, int64_t n, const gram_array *Y,
                           const gram_array *sw, int64_t n_lambda, const double *lambda, double **Yc,
                           int64_t *t, double **w)
{
    gram_status s;
    *Yc = *w = NULL;
    if (!Y) return gram__fail(ctx, GRAM_EINVAL, "%s: y is NULL", what);
    if ((s = gram__check_array(ctx, Y, "y"))) return s;
    gram_array Ya = *Y;
    if (Ya.rows == 1 && Ya.cols == n && n > 1) {
        Ya.rows = n;
        Ya.cols = 1;
        Ya.row_stride = Y->col_stride;
        Ya.col_stride = Y->row_stride;
    }
    if (Ya.rows != n)
        return gram__fail(ctx, GRAM_ESHAPE, "%s: X has %lld samples but y has %lld", what, (long long)n,
                          (long long)Ya.rows);
    if (Ya.cols < 1) return gram__fail(ctx, GRAM_ESHAPE, "%s: y has no targets (0 columns)", what);
    *t = Ya.cols;
    if (n_lambda != 1 && n_lambda != *t)
        return gram__fail(ctx, GRAM_ESHAPE, "%s: alpha must have 1 value or one per target (%lld), got %lld",
                          what, (long long)*t, (long long)n_lambda);
    if (!lambda) return gram__fail(ctx, GRAM_EINVAL, "%s: alpha is NULL", what);
    for (int64_t c = 0; c < n_lambda; c++)
        if (!isfinite(lambda[c]) || lambda[c] < 0.0)
            return gram__fail(ctx, GRAM_EINVAL, "%s: alpha[%lld] = %g; it must be finite and >= 0", what,
                              (long long)c, lambda[c]);
    if (sw) {
        if ((s = gram__check_array(ctx, sw, "sample_weight"))) return s;
        if (!((sw->rows == n && sw->cols == 1) || (sw->rows == 1 && sw->cols == n)))
            return gram__fail(ctx, GRAM_ESHAPE, "%s: sample_weight must have %lld values, got %lld x %lld",
                              what, (long long)n, (long long)sw->rows, (long long)sw->cols);
        if ((s = gram__check_finite(ctx, sw, "sample_weight"))) return s;
        if ((s = gram__check_nonnegative(ctx, sw, "sample_weight"))) return s;
        *w = gram__alloc((size_t)(n > 0 ? n : 1) * sizeof(double));
        if (!*w) return gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory", what);
        for (int64_t i = 0; i < n; i++) (*w)[i] = sw->rows == n ? gram__get(sw, i, 0) : gram__get(sw, 0, i);
    }
    if ((s = gram__regress_copy(ctx, &Ya, "y", Yc))) {
        gram__free(*w);
        *w = NULL;
    }
    return s;
}

gram_status gram_krr_solve(gram_context *ctx, const gram_array *K, const gram_array *Y,
                           const gram_array *sample_weight, int64_t n_lambda, const double *lambda,
                           gram_array *out)
{
    gram__clear(ctx);
    gram_status s;
    if (!K) return gram__fail(ctx, GRAM_EINVAL, "gram_krr_solve: K is NULL");
    if ((s = gram__check_array(ctx, K, "K"))) return s;
    if (K->rows != K->cols)
        return gram__fail(ctx, GRAM_ESHAPE, "gram_krr_solve: K must be square, got %lld x %lld",
                          (long long)K->rows, (long long)K->cols);
    int64_t n = K->rows, t;
    if (n < 1) return gram__fail(ctx, GRAM_ESHAPE, "gram_krr_solve: K is empty; at least 1 sample is needed");
    double *Yc, *w, *Kc = NULL, *dual = NULL;
    if ((s = prepare(ctx, "gram_krr_solve", n, Y, sample_weight, n_lambda, lambda, &Yc, &t, &w))) return s;
    if ((s = gram__regress_check_out(ctx, out, n, t, "out"))) goto done;
    if ((s = gram__regress_copy(ctx, K, "K", &Kc))) goto done;
    dual = gram__alloc((size_t)(n * t) * sizeof(double));
    if (!dual) {
        s = gram__fail(ctx, GRAM_ENOMEM, "gram_krr_solve: out of memory");
        goto done;
    }
    if ((s = solve_dual(ctx, "gram_krr_solve", n, t, Kc, Yc, w, n_lambda, lambda, dual))) goto done;
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < t; c++) gram__put(out, i, c, dual[i * t + c]);
done:
    gram__free(Yc);
    gram__free(w);
    gram__free(Kc);
    gram__free(dual);
    return s;
}

static void krr_free(gram_krr *m)
{
    if (!m) return;
    gram_kernel_destroy(m->kernel);
    gram__free(m->X);
    gram__free(m->dual);
    free(m);
}

void gram_krr_destroy(gram_krr *krr) { krr_free(krr); }

gram_status gram_krr_fit(gram_context *ctx, const gram_kernel *kernel, const gram_array *X,
                         const gram_array *Y, const gram_array *sample_weight, int64_t n_lambda,
                         const double *lambda, gram_krr **out)
{
    gram__clear(ctx);
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "gram_krr_fit: out is NULL");
    *out = NULL;
    if (!kernel) return gram__fail(ctx, GRAM_EINVAL, "gram_krr_fit: kernel is NULL");
    if (!X) return gram__fail(ctx, GRAM_EINVAL, "gram_krr_fit: X is NULL");
    gram_status s;
    if ((s = gram__check_array(ctx, X, "X"))) return s;
    int64_t n = X->rows, d = X->cols, t, nn;
    size_t bytes;
    if (n < 1)
        return gram__fail(ctx, GRAM_ESHAPE, "gram_krr_fit: X has %lld samples; at least 1 is needed",
                          (long long)n);
    if (kernel->dim && d != kernel->dim)
        return gram__fail(ctx, GRAM_ESHAPE,
                          "gram_krr_fit: X has %lld features but the kernel has %lld ARD lengthscales",
                          (long long)d, (long long)kernel->dim);
    if (!gram__mul_i64(n, n, &nn) || !gram__bytes(nn, sizeof(double), &bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "gram_krr_fit: %lld samples: the kernel matrix does not "
                                               "fit in memory", (long long)n);
    double *Yc, *w, *K = NULL;
    if ((s = prepare(ctx, "gram_krr_fit", n, Y, sample_weight, n_lambda, lambda, &Yc, &t, &w))) return s;
    gram_krr *m = calloc(1, sizeof *m);
    if (!m) {
        s = gram__fail(ctx, GRAM_ENOMEM, "gram_krr_fit: out of memory");
        goto done;
    }
    m->n = n;
    m->d = d;
    m->t = t;
    if ((s = gram__regress_copy(ctx, X, "X", &m->X))) goto done;
    if ((s = gram_kernel_copy(ctx, kernel, &m->kernel))) goto done;
    K = gram__alloc(bytes);
    m->dual = gram__alloc((size_t)(n * t) * sizeof(double));
    if (!K || !m->dual) {
        s = gram__fail(ctx, GRAM_ENOMEM, "gram_krr_fit: out of memory (the kernel matrix needs %zu bytes)",
                       bytes);
        goto done;
    }
    gram_array Xa = gram_array_f64(m->X, n, d), Ka = gram_array_f64(K, n, n);
    if ((s = gram_kernel_matrix(ctx, m->kernel, NULL, &Xa, &Ka))) goto done;
    for (int64_t i = 0; i < n && !s; i++) /* the lower triangle is what the solve reads */
        for (int64_t j = 0; j <= i; j++)
            if (!isfinite(K[i * n + j])) {
                s = gram__fail(ctx, GRAM_EDOMAIN, "gram_krr_fit: the kernel matrix K(X, X) is not finite "
                               "at row %lld, column %lld (%g): the kernel overflows for these inputs; "
                               "scale X (or the kernel's parameters)", (long long)i, (long long)j,
                               K[i * n + j]);
                break;
            }
    if (s) goto done;
    s = solve_dual(ctx, "gram_krr_fit", n, t, K, Yc, w, n_lambda, lambda, m->dual);
done:
    gram__free(Yc);
    gram__free(w);
    gram__free(K);
    if (s) krr_free(m);
    else *out = m;
    return s;
}

int64_t gram_krr_n(const gram_krr *krr) { return krr ? krr->n : 0; }
int64_t gram_krr_dim(const gram_krr *krr) { return krr ? krr->d : 0; }
int64_t gram_krr_n_targets(const gram_krr *krr) { return krr ? krr->t : 0; }
const gram_kernel *gram_krr_kernel(const gram_krr *krr) { return krr ? krr->kernel : NULL; }

gram_status gram_krr_get_x(const gram_krr *krr, gram_array *out)
{
    return krr ? gram__regress_copy_out(krr->X, krr->n, krr->d, out) : GRAM_EINVAL;
}
gram_status gram_krr_get_dual_coef(const gram_krr *krr, gram_array *out)
{
    return krr ? gram__regress_copy_out(krr->dual, krr->n, krr->t, out) : GRAM_EINVAL;
}

gram_status gram_krr_predict(gram_context *ctx, const gram_krr *krr, const gram_array *Xq, gram_array *out)
{
    gram__clear(ctx);
    if (!krr) return gram__fail(ctx, GRAM_EINVAL, "gram_krr_predict: model is NULL");
    gram_status s;
    if (!Xq) return gram__fail(ctx, GRAM_EINVAL, "gram_krr_predict: X is NULL");
    if ((s = gram__check_array(ctx, Xq, "X"))) return s;
    if (Xq->cols != krr->d)
        return gram__fail(ctx, GRAM_ESHAPE, "X has %lld features but the model was fitted with %lld",
                          (long long)Xq->cols, (long long)krr->d);
    if ((s = gram__regress_check_out(ctx, out, Xq->rows, krr->t, "out"))) return s;
    gram_array Xt = gram_array_f64(krr->X, krr->n, krr->d), Wa = gram_array_f64(krr->dual, krr->n, krr->t);
    if (Xq->dtype == GRAM_FLOAT64) {
        s = gram_kernel_sum(ctx, krr->kernel, Xq, &Xt, &Wa, out);
    } else {
        double *Xc; /* float32 queries: the model's data are float64 */
        if ((s = gram__regress_copy(ctx, Xq, "X", &Xc))) return s;
        gram_array Xa = gram_array_f64(Xc, Xq->rows, Xq->cols);
        s = gram_kernel_sum(ctx, krr->kernel, &Xa, &Xt, &Wa, out);
        gram__free(Xc);
    }
    for (int64_t i = 0; i < out->rows && !s; i++)
        for (int64_t c = 0; c < out->cols; c++)
            if (!isfinite(gram__get(out, i, c))) {
                s = gram__fail(ctx, GRAM_EDOMAIN, "gram_krr_predict: the prediction at query row %lld is "
                               "not finite: the kernel overflows between this query and the training "
                               "points", (long long)i);
                break;
            }
    return s;
}
