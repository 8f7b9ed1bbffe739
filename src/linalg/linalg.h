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


/* ---- Dense N×N algebra on OpenBLAS (dense.c): row-major, leading dimension lda ------------- */

/* For small orders (n < 768) OpenBLAS runs single-threaded between begin and end: at the CO₂
 * example's size (468) its threads made a fit 30% slower. Returns what end needs. (OpenBLAS's
 * thread count is process-wide: calls from several threads at once may see either setting.) */
int gram__blas_serial_begin(int64_t n);
void gram__blas_serial_end(int saved);

/* Blocked Cholesky A = L Lᵀ in place (lower triangle; the strict upper triangle is not touched).
 * A pivot that is not positive or not finite gives GRAM_ENOTPD with a message naming `what`, the
 * pivot's 0-based index and value and then `hint` (what the user can do; NULL for none), and *bad
 * (if not NULL) set to that index. */
gram_status gram__chol_dense(gram_context *ctx, int64_t n, double *A, int64_t lda, const char *what,
                             const char *hint, int64_t *bad);
/* The same by LAPACK's dpotrf (faster; on failure A is partly overwritten and nothing says which
 * pivot failed): 0 on success, else LAPACK's info (> 0: not positive definite; -1: too large). */
int gram__chol_lapack(int64_t n, double *A, int64_t lda);
/* B (n×m, row-major, ldb) ← L⁻¹ B or L⁻ᵀ B for lower-triangular L. */
void gram__trsm_lower(int64_t n, int64_t m, const double *L, int64_t lda, double *B, int64_t ldb,
                      int transpose);
/* B (m×n, row-major, ldb) ← B L⁻ᵀ for lower-triangular L (n×n). */
void gram__trsm_right_lower_t(int64_t m, int64_t n, const double *L, int64_t lda, double *B,
                              int64_t ldb);
/* B (n×m, row-major, ldb) ← L B or Lᵀ B for lower-triangular L (n×n). */
void gram__trmm_lower(int64_t n, int64_t m, const double *L, int64_t lda, double *B, int64_t ldb,
                      int transpose);
/* Lower triangle of C (m×m, ldc) ← C - A Aᵀ, A m×k (lda). */
void gram__syrk_sub(int64_t m, int64_t k, const double *A, int64_t lda, double *C, int64_t ldc);
/* A ← (L Lᵀ)⁻¹ in place, lower triangle (LAPACK dpotri). */
gram_status gram__chol_inverse(gram_context *ctx, int64_t n, double *A, int64_t lda);
/* Symmetric eigendecomposition of A (lower triangle read) in place: on return row j of A holds
 * the j-th unit eigenvector and w[j] its eigenvalue, ascending (LAPACK dsyevd). A non-finite entry
 * (refused before LAPACK sees it) or an iteration that does not converge gives GRAM_EDOMAIN. */
gram_status gram__sym_eig(gram_context *ctx, int64_t n, double *A, int64_t lda, double *w);
/* C (m×p) ← alpha·op(A)·B + beta·C, row-major; op(A) = Aᵀ when transA (A is k×m), else A (m×k). */
void gram__gemm(int transA, int64_t m, int64_t p, int64_t k, double alpha, const double *A,
                int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc);

#endif
