/* Dense N×N algebra for the regression layer on OpenBLAS (CBLAS + LAPACK).
 *
 * The Cholesky factorisation is gram's own right-looking blocked algorithm so that a failure can
 * name the pivot that broke it (LAPACK's dpotrf only says which leading minor): the diagonal
 * block is factored by a scalar loop, the panel below it by a triangular solve (dtrsm) and the
 * trailing matrix updated by a rank-nb product (dsyrk), where all the O(n³) work is. Row-major
 * lower-triangular storage is column-major upper-triangular storage of the transpose, which is
 * how the LAPACK routines are called. */
#include "linalg.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

/* LAPACK (Fortran) entry points; gfortran passes character lengths as trailing size_t values. */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t);
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t, size_t);

/* OpenBLAS's thread control (the library gram links; see CMakeLists.txt). */
extern int openblas_get_num_threads(void);
extern void openblas_set_num_threads(int);

#define NB 128
#define SERIAL_BELOW 768 /* matrix order under which OpenBLAS's threads cost more than they save */

int gram__blas_serial_begin(int64_t n)
{
    if (n >= SERIAL_BELOW) return 0;
    int t = openblas_get_num_threads();
    if (t > 1) openblas_set_num_threads(1);
    return t;
}

void gram__blas_serial_end(int saved)
{
    if (saved > 1) openblas_set_num_threads(saved);
}

static int fits_int(int64_t n) { return n >= 0 && n <= 2147483647; }

gram_status gram__chol_dense(gram_context *ctx, int64_t n, double *A, int64_t lda, const char *what,
                             const char *hint, int64_t *bad)
{
    if (bad) *bad = -1;
    if (!fits_int(n) || !fits_int(lda))
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: %lld rows is more than BLAS can index", what,
                          (long long)n);
    for (int64_t k0 = 0; k0 < n; k0 += NB) {
        int64_t kb = n - k0 < NB ? n - k0 : NB;
        /* Diagonal block, left-looking scalar Cholesky. */
        for (int64_t j = k0; j < k0 + kb; j++) {
            double *Aj = A + j * lda;
            double d = Aj[j];
            for (int64_t p = k0; p < j; p++) d -= Aj[p] * Aj[p];
            if (!(d > 0.0) || !isfinite(d)) {
                if (bad) *bad = j;
                return gram__fail(ctx, GRAM_ENOTPD,
                                  "%s is not numerically positive definite: pivot %lld of %lld is "
                                  "%.6g (diagonal entry %.6g)%s%s",
                                  what, (long long)j, (long long)n, d, Aj[j], hint ? "; " : "",
                                  hint ? hint : "");
            }
            double ljj = sqrt(d);
            Aj[j] = ljj;
            for (int64_t i = j + 1; i < k0 + kb; i++) {
                double *Ai = A + i * lda;
                double s = Ai[j];
                for (int64_t p = k0; p < j; p++) s -= Ai[p] * Aj[p];
                Ai[j] = s / ljj;
            }
        }
        int64_t m = n - k0 - kb;
        if (m == 0) break;
        double *L11 = A + k0 * lda + k0, *A21 = A + (k0 + kb) * lda + k0,
               *A22 = A + (k0 + kb) * lda + k0 + kb;
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)m, (int)kb,
                    1.0, L11, (int)lda, A21, (int)lda);
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)m, (int)kb, -1.0, A21, (int)lda,
                    1.0, A22, (int)lda);
    }
    return GRAM_OK;
}

int gram__chol_lapack(int64_t n, double *A, int64_t lda)
{
    if (n == 0) return 0;
    if (!fits_int(n) || !fits_int(lda)) return -1;
    int nn = (int)n, la = (int)lda, info = 0;
    dpotrf_("U", &nn, A, &la, &info, 1);
    return info;
}

void gram__trsm_lower(int64_t n, int64_t m, const double *L, int64_t lda, double *B, int64_t ldb,
                      int transpose)
{
    if (n == 0 || m == 0) return;
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, transpose ? CblasTrans : CblasNoTrans,
                CblasNonUnit, (int)n, (int)m, 1.0, L, (int)lda, B, (int)ldb);
}

void gram__trsm_right_lower_t(int64_t m, int64_t n, const double *L, int64_t lda, double *B,
                              int64_t ldb)
{
    if (n == 0 || m == 0) return;
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)m, (int)n, 1.0,
                L, (int)lda, B, (int)ldb);
}

void gram__trmm_lower(int64_t n, int64_t m, const double *L, int64_t lda, double *B, int64_t ldb,
                      int transpose)
{
    if (n == 0 || m == 0) return;
    cblas_dtrmm(CblasRowMajor, CblasLeft, CblasLower, transpose ? CblasTrans : CblasNoTrans,
                CblasNonUnit, (int)n, (int)m, 1.0, L, (int)lda, B, (int)ldb);
}

void gram__syrk_sub(int64_t m, int64_t k, const double *A, int64_t lda, double *C, int64_t ldc)
{
    if (m == 0 || k == 0) return;
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)m, (int)k, -1.0, A, (int)lda, 1.0, C,
                (int)ldc);
}

gram_status gram__chol_inverse(gram_context *ctx, int64_t n, double *A, int64_t lda)
{
    if (n == 0) return GRAM_OK;
    int nn = (int)n, la = (int)lda, info = 0;
    dpotri_("U", &nn, A, &la, &info, 1);
    if (info != 0)
        return gram__fail(ctx, info > 0 ? GRAM_ENOTPD : GRAM_EINTERNAL,
                          "inverse of the Cholesky factor failed (LAPACK dpotri info %d)", info);
    return GRAM_OK;
}

gram_status gram__sym_eig(gram_context *ctx, int64_t n, double *A, int64_t lda, double *w)
{
    if (n == 0) return GRAM_OK;
    if (!fits_int(n) || !fits_int(lda))
        return gram__fail(ctx, GRAM_EOVERFLOW, "eigendecomposition: %lld rows is too many",
                          (long long)n);
    /* LAPACK prints (xerbla, dlascl) and may not return on NaN or inf: refuse them first. */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++)
            if (!isfinite(A[i * lda + j]))
                return gram__fail(ctx, GRAM_EDOMAIN, "eigendecomposition: entry (%lld, %lld) of the "
                                  "matrix is %g", (long long)i, (long long)j, A[i * lda + j]);
    int nn = (int)n, la = (int)lda, info = 0, lwork = -1, liwork = -1, iq = 0;
    double wq = 0.0;
    dsyevd_("V", "U", &nn, A, &la, w, &wq, &lwork, &iq, &liwork, &info, 1, 1);
    if (info != 0) return gram__fail(ctx, GRAM_EINTERNAL, "dsyevd workspace query failed (%d)", info);
    lwork = (int)wq + 1;
    liwork = iq;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)(liwork > 0 ? liwork : 1) * sizeof *iwork);
    if (!work || !iwork) {
        free(work);
        free(iwork);
        return gram__fail(ctx, GRAM_ENOMEM, "eigendecomposition: out of memory");
    }
    dsyevd_("V", "U", &nn, A, &la, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (info < 0)
        return gram__fail(ctx, GRAM_EINTERNAL, "dsyevd: argument %d is invalid", -info);
    if (info > 0) /* finite input that LAPACK's iteration could not resolve: the data's, not a bug */
        return gram__fail(ctx, GRAM_EDOMAIN, "eigendecomposition did not converge (dsyevd info %d)",
                          info);
    return GRAM_OK;
}

void gram__gemm(int transA, int64_t m, int64_t p, int64_t k, double alpha, const double *A,
                int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc)
{
    if (m == 0 || p == 0) return;
    cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, CblasNoTrans, (int)m, (int)p,
                (int)k, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}
