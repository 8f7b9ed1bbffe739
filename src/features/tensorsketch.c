/* TensorSketch: random features for the polynomial kernel (γ s + c0)^p (Pham & Pagh 2013, "Fast
 * and scalable polynomial kernels via explicit feature maps", KDD).
 *
 * With x' = [√γ·x/ℓ, √c0], (γ s + c0)^p = (x'·y')^p = ⟨x'^⊗p, y'^⊗p⟩. A count sketch of the
 * tensor power with hash H(i_1..i_p) = Σ_k h_k(i_k) mod R and sign Π_k s_k(i_k) is the circular
 * convolution of p count sketches CS_k(x')[h_k(d)] += s_k(d)·x'_d, i.e. IFFT(Π_k FFT(CS_k(x'))),
 * computed in O(p·(D + R log R)) per point without forming the tensor. Hashes and signs are
 * fully random (Philox stream k for degree k), so E[φ(x)·φ(y)] = (x'·y')^p exactly: the cross
 * terms of different tensor indices carry independent signs or collide with mean zero. The FFT is
 * gram's own radix-2 one (so R must be a power of two). */
#include "features.h"

#include "../base/rng.h"

#include <math.h>
#include <string.h>

#define GRAM__PI 3.14159265358979323846

gram_status gram__tensorsketch_draw(gram_context *ctx, gram_features *f)
{
    const int64_t D1 = f->D + 1, R = f->R;
    int64_t n;
    size_t bh, bs, bt;
    if (!gram__mul_i64(f->ts_p, D1, &n) || !gram__bytes(n, sizeof(int32_t), &bh) || !gram__bytes(n, 1, &bs) ||
        !gram__bytes(R, sizeof(double), &bt))
        return gram__fail(ctx, GRAM_EOVERFLOW, "TensorSketch of degree %d in dimension %lld: tables overflow",
                          f->ts_p, (long long)f->D);
    f->ts_hash = gram__alloc(bh);
    f->signs = gram__alloc(bs);
    f->twiddle = gram__alloc(bt < 64 ? 64 : bt);
    if (!f->ts_hash || !f->signs || !f->twiddle)
        return gram__fail(ctx, GRAM_ENOMEM, "out of memory for a TensorSketch of degree %d", f->ts_p);
    for (int k = 0; k < f->ts_p; k++) {
        gram__rng r;
        gram__rng_init(&r, f->seed, (uint64_t)k);
        for (int64_t d = 0; d < D1; d++) {
            const uint32_t h = gram__rng_u32(&r), s = gram__rng_u32(&r);
            f->ts_hash[k * D1 + d] = (int32_t)(h & (uint32_t)(R - 1)); /* R a power of two: uniform */
            f->signs[k * D1 + d] = s & 1 ? 1 : -1;
        }
    }
    for (int64_t j = 0; j < R / 2; j++) {
        f->twiddle[2 * j] = cos(2.0 * GRAM__PI * (double)j / (double)R);
        f->twiddle[2 * j + 1] = -sin(2.0 * GRAM__PI * (double)j / (double)R);
    }
    return GRAM_OK;
}

/* In-place radix-2 FFT of n complex values (re, im interleaved), e^{-2πi jk/n} (inverse: e^{+}),
 * unnormalised; tw holds (cos, -sin)(2πj/n) for j < n/2. */
static void fft(double *a, int64_t n, const double *tw, int inverse)
{
    for (int64_t i = 1, j = 0; i < n; i++) {
        int64_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double t0 = a[2 * i], t1 = a[2 * i + 1];
            a[2 * i] = a[2 * j], a[2 * i + 1] = a[2 * j + 1];
            a[2 * j] = t0, a[2 * j + 1] = t1;
        }
    }
    for (int64_t len = 2; len <= n; len *= 2) {
        const int64_t half = len / 2, step = n / len;
        for (int64_t i = 0; i < n; i += len)
            for (int64_t j = 0; j < half; j++) {
                const double wr = tw[2 * j * step], wi = inverse ? -tw[2 * j * step + 1] : tw[2 * j * step + 1];
                double *u = a + 2 * (i + j), *v = a + 2 * (i + j + half);
                const double vr = v[0] * wr - v[1] * wi, vi = v[0] * wi + v[1] * wr;
                v[0] = u[0] - vr, v[1] = u[1] - vi;
                u[0] += vr, u[1] += vi;
            }
    }
}

void gram__tensorsketch_row(const gram_features *f, const double *xs, double *work, double *out)
{
    const int64_t R = f->R, D1 = f->D + 1;
    double *acc = work, *tmp = work + 2 * R;
    for (int k = 0; k < f->ts_p; k++) {
        double *cs = k == 0 ? acc : tmp;
        memset(cs, 0, (size_t)(2 * R) * sizeof(double));
        for (int64_t d = 0; d < D1; d++) cs[2 * f->ts_hash[k * D1 + d]] += f->signs[k * D1 + d] * xs[d];
        fft(cs, R, f->twiddle, 0);
        if (k == 0) continue;
        for (int64_t j = 0; j < R; j++) {
            const double ar = acc[2 * j], ai = acc[2 * j + 1], br = tmp[2 * j], bi = tmp[2 * j + 1];
            acc[2 * j] = ar * br - ai * bi;
            acc[2 * j + 1] = ar * bi + ai * br;
        }
    }
    fft(acc, R, f->twiddle, 1);
    const double inv = 1.0 / (double)R;
    for (int64_t j = 0; j < R; j++) out[j] = acc[2 * j] * inv;
}
