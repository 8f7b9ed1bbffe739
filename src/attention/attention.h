/* attention: kernel attention (gram.h's gram_attention). Internal.
 *
 * attention.c  the front (options, the softmax kernel, checks) and FAVOR+ (Choromanski et al.
 *              2021): positive random features, streamed non-causal and causal (prefix) passes;
 *              exact attention is one engine call (gram__kernel_attention).
 * toeplitz.c   relative positional encodings for FAVOR+ (Luo et al. 2021): Σ_j c_(j−i) z_j for
 *              every i by a radix-2 FFT, O((L + S) log(L + S)) per sequence. */
#ifndef GRAM_ATTENTION_H
#define GRAM_ATTENTION_H

#include "../base/base.h"

/* A plan for the Toeplitz products y_i = Σ_{j<S} c[j − i + L − 1] z_j (i < L) of one coefficient
 * vector c (L + S − 1 values) with any number of sequences z (S values each): c's transform is
 * computed once. Two real sequences go through one complex transform (c is real). */
typedef struct gram__toeplitz {
    int64_t L, S, n; /* n: the transform size, a power of two ≥ L + S − 1 */
    double *tw;      /* n/2 twiddles (cos, −sin)(2πk/n), interleaved */
    double *cf;      /* the transform of c reversed, n complex values, interleaved, scaled by 1/n */
} gram__toeplitz;

gram_status gram__toeplitz_init(gram_context *ctx, gram__toeplitz *t, int64_t L, int64_t S, const double *c);
void gram__toeplitz_free(gram__toeplitz *t);
/* ya[i] = Σ_j c[j − i + L − 1] za[j] and the same for zb (NULL: none; yb then untouched), i < L;
 * work: 2n doubles. */
void gram__toeplitz_apply(const gram__toeplitz *t, const double *za, const double *zb, double *ya, double *yb,
                          double *work);
/* In-place radix-2 transform of n = 2^k complex values (interleaved), forward (e^{−2πi jk/n}) or
 * inverse (unnormalised), with tw from gram__toeplitz_init's table for this n. */
void gram__fft(double *a, int64_t n, const double *tw, int inverse);

#endif
