/* linalg: small dense helpers (D×D, row-major) for the methods layer. Internal. */
#ifndef GRAM_LINALG_H
#define GRAM_LINALG_H

#include "../base/base.h"

/* Cholesky A = L Lᵀ in place: on success the lower triangle of A holds L and the strict upper
 * triangle is zeroed. A pivot that is not positive, or below 64·D·eps times its column's original
 * diagonal (the column is numerically a combination of the previous ones), gives GRAM_ENOTPD with
 * a message naming `what`, the pivot's index and value. On failure A is left partly factored. */
gram_status gram__cholesky(gram_context *ctx, int64_t D, double *A, const char *what);

/* x ← L⁻¹ x (forward substitution). */
void gram__trsv_lower(int64_t D, const double *L, double *x);
/* x ← L⁻ᵀ x (back substitution with the transpose). */
void gram__trsv_lower_t(int64_t D, const double *L, double *x);
/* y ← L x (y must not alias x). */
void gram__trmv_lower(int64_t D, const double *L, const double *x, double *y);
/* log det(L) = Σ log L_dd (half the log-determinant of A = L Lᵀ). */
double gram__chol_logdet(int64_t D, const double *L);

#endif
