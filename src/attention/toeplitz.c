/* Toeplitz products by FFT, for FAVOR+'s relative positional encodings (Luo et al. 2021, "Stable,
 * fast and accurate: kernelized attention with relative positional encoding", NeurIPS, §3.2: the
 * product of the Toeplitz matrix C[i][j] = c_(j−i) with a vector is a slice of a circular
 * convolution, so it costs O(n log n) instead of O(L·S)).
 *
 * With u[t] = c[L + S − 2 − t] (c reversed), c[j − i + L − 1] = u[(i + S − 1) − j], so
 * y_i = (u ∗ z)[i + S − 1], a linear convolution read at S − 1 ≤ t ≤ S + L − 2. A circular one
 * of size n agrees with it there when n ≥ L + S − 1 (the wrapped terms land at t < S − 1 or
 * t > S + L − 2). */
#include "attention.h"

#include <math.h>
#include <string.h>

void gram__fft(double *a, int64_t n, const double *tw, int inverse)
{
    for (int64_t i = 1, j = 0; i < n; i++) { /* bit reversal */
        int64_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double r = a[2 * i], m = a[2 * i + 1];
            a[2 * i] = a[2 * j], a[2 * i + 1] = a[2 * j + 1];
            a[2 * j] = r, a[2 * j + 1] = m;
        }
    }
    for (int64_t len = 2; len <= n; len <<= 1) {
        const int64_t half = len >> 1, step = n / len;
        for (int64_t i = 0; i < n; i += len)
            for (int64_t k = 0; k < half; k++) {
                const double wr = tw[2 * k * step], wi = inverse ? -tw[2 * k * step + 1] : tw[2 * k * step + 1];
                double *p = a + 2 * (i + k), *q = a + 2 * (i + k + half);
                const double xr = q[0] * wr - q[1] * wi, xi = q[0] * wi + q[1] * wr;
                q[0] = p[0] - xr, q[1] = p[1] - xi;
                p[0] += xr, p[1] += xi;
            }
    }
}

gram_status gram__toeplitz_init(gram_context *ctx, gram__toeplitz *t, int64_t L, int64_t S, const double *c)
{
    memset(t, 0, sizeof *t);
    t->L = L, t->S = S;
    int64_t n = 1;
    while (n < L + S - 1) n <<= 1;
    t->n = n;
    t->tw = gram__alloc(sizeof(double) * (size_t)(n + 2));
    t->cf = gram__alloc(sizeof(double) * (size_t)(2 * n));
    if (!t->tw || !t->cf) {
        gram__toeplitz_free(t);
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for a Toeplitz product's transform of size %lld", (long long)n);
    }
    for (int64_t k = 0; k < n / 2; k++) {
        const double th = 2.0 * 3.14159265358979323846 * (double)k / (double)n;
        t->tw[2 * k] = cos(th);
        t->tw[2 * k + 1] = -sin(th);
    }
    memset(t->cf, 0, sizeof(double) * (size_t)(2 * n));
    for (int64_t q = 0; q < L + S - 1; q++) t->cf[2 * q] = c[L + S - 2 - q];
    gram__fft(t->cf, n, t->tw, 0);
    for (int64_t q = 0; q < 2 * n; q++) t->cf[q] /= (double)n;
    return GRAM_OK;
}

void gram__toeplitz_free(gram__toeplitz *t)
{
    gram__free(t->tw);
    gram__free(t->cf);
    t->tw = t->cf = NULL;
}

void gram__toeplitz_apply(const gram__toeplitz *t, const double *za, const double *zb, double *ya, double *yb,
                          double *work)
{
    const int64_t n = t->n, S = t->S, L = t->L;
    memset(work, 0, sizeof(double) * (size_t)(2 * n));
    for (int64_t j = 0; j < S; j++) {
        work[2 * j] = za[j];
        work[2 * j + 1] = zb ? zb[j] : 0.0;
    }
    gram__fft(work, n, t->tw, 0);
    for (int64_t q = 0; q < n; q++) { /* times the real sequence's transform: each part stays real */
        const double ar = work[2 * q], ai = work[2 * q + 1], br = t->cf[2 * q], bi = t->cf[2 * q + 1];
        work[2 * q] = ar * br - ai * bi;
        work[2 * q + 1] = ar * bi + ai * br;
    }
    gram__fft(work, n, t->tw, 1);
    for (int64_t i = 0; i < L; i++) {
        ya[i] = work[2 * (i + S - 1)];
        if (zb) yb[i] = work[2 * (i + S - 1) + 1];
    }
}
