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

/* In-place radix-2 FFT of n complex values in TS_W lanes (value j, part c, lane l at
 * a[(2j + c)·TS_W + l]: TS_W independent transforms whose every butterfly is one vector
 * operation), e^{-2πi jk/n} (inverse: e^{+}), unnormalised; tw holds (cos, -sin)(2πj/n), j < n/2.
 * Each lane runs exactly the operations of a one-lane transform, so a point's result does not
 * depend on the other points of its group. */
static inline void fft(double *a, int64_t n, const double *tw, int inverse)
{
    enum { W = GRAM__TS_W };
    for (int64_t i = 1, j = 0; i < n; i++) {
        int64_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j)
            for (int64_t l = 0; l < 2 * W; l++) {
                const double t0 = a[2 * i * W + l];
                a[2 * i * W + l] = a[2 * j * W + l];
                a[2 * j * W + l] = t0;
            }
    }
    for (int64_t len = 2; len <= n; len *= 2) {
        const int64_t half = len / 2, step = n / len;
        for (int64_t i = 0; i < n; i += len)
            for (int64_t j = 0; j < half; j++) {
                const double wr = tw[2 * j * step], wi = inverse ? -tw[2 * j * step + 1] : tw[2 * j * step + 1];
                double *ur = a + 2 * (i + j) * W, *ui = ur + W, *vr = a + 2 * (i + j + half) * W, *vi = vr + W;
                for (int l = 0; l < W; l++) {
                    const double xr = vr[l] * wr - vi[l] * wi, xi = vr[l] * wi + vi[l] * wr;
                    vr[l] = ur[l] - xr, vi[l] = ui[l] - xi;
                    ur[l] += xr, ui[l] += xi;
                }
            }
    }
}

void gram__tensorsketch_rows(const gram_features *f, const double *xs, int64_t n, double *work, double *out)
{
    enum { W = GRAM__TS_W };
    const int64_t R = f->R, D1 = f->D + 1;
    double *acc = work, *tmp = work + 2 * R * W;
    for (int k = 0; k < f->ts_p; k++) {
        double *cs = k == 0 ? acc : tmp;
        memset(cs, 0, (size_t)(2 * R * W) * sizeof(double));
        for (int64_t d = 0; d < D1; d++) {
            double *b = cs + 2 * f->ts_hash[k * D1 + d] * W;
            const double sg = f->signs[k * D1 + d];
            for (int64_t l = 0; l < n; l++) b[l] += sg * xs[l * D1 + d];
        }
        fft(cs, R, f->twiddle, 0);
        if (k == 0) continue;
        for (int64_t j = 0; j < R; j++) {
            double *ar = acc + 2 * j * W, *ai = ar + W;
            const double *br = tmp + 2 * j * W, *bi = br + W;
            for (int l = 0; l < W; l++) {
                const double r0 = ar[l] * br[l] - ai[l] * bi[l], i0 = ar[l] * bi[l] + ai[l] * br[l];
                ar[l] = r0, ai[l] = i0;
            }
        }
    }
    fft(acc, R, f->twiddle, 1);
    const double inv = 1.0 / (double)R;
    for (int64_t l = 0; l < n; l++)
        for (int64_t j = 0; j < R; j++) out[l * R + j] = acc[2 * j * W + l] * inv;
}
