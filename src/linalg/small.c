/* Small dense helpers: Cholesky, triangular solves and products, log-determinant. */
#include "linalg.h"

#include <float.h>
#include <math.h>

gram_status gram__cholesky(gram_context *ctx, int64_t D, double *A, const char *what)
{
    for (int64_t j = 0; j < D; j++) {
        double ajj = A[j * D + j], s = ajj;
        for (int64_t k = 0; k < j; k++) s -= A[j * D + k] * A[j * D + k];
        if (!(s > 0.0) || !(s > 64.0 * (double)D * DBL_EPSILON * ajj) || !isfinite(s))
            return gram__fail(ctx, GRAM_ENOTPD,
                              "%s is not positive definite: pivot %lld is %.3g (diagonal entry %.3g); "
                              "its column is (numerically) a combination of the previous ones",
                              what, (long long)j, s, ajj);
        double l = sqrt(s);
        A[j * D + j] = l;
        for (int64_t i = j + 1; i < D; i++) {
            double t = A[i * D + j];
            for (int64_t k = 0; k < j; k++) t -= A[i * D + k] * A[j * D + k];
            A[i * D + j] = t / l;
        }
        for (int64_t i = 0; i < j; i++) A[i * D + j] = 0.0;
    }
    return GRAM_OK;
}

void gram__trsv_lower(int64_t D, const double *L, double *x)
{
    for (int64_t i = 0; i < D; i++) {
        double t = x[i];
        for (int64_t k = 0; k < i; k++) t -= L[i * D + k] * x[k];
        x[i] = t / L[i * D + i];
    }
}

void gram__trsv_lower_t(int64_t D, const double *L, double *x)
{
    for (int64_t i = D - 1; i >= 0; i--) {
        double t = x[i];
        for (int64_t k = i + 1; k < D; k++) t -= L[k * D + i] * x[k];
        x[i] = t / L[i * D + i];
    }
}

void gram__trmv_lower(int64_t D, const double *L, const double *x, double *y)
{
    for (int64_t i = 0; i < D; i++) {
        double t = 0.0;
        for (int64_t k = 0; k <= i; k++) t += L[i * D + k] * x[k];
        y[i] = t;
    }
}

double gram__chol_logdet(int64_t D, const double *L)
{
    double s = 0.0;
    for (int64_t i = 0; i < D; i++) s += log(L[i * D + i]);
    return s;
}
