/* rng: a counter-based random stream (Philox4x32-10, Salmon et al., SC'11 "Parallel random
 * numbers: as easy as 1, 2, 3").
 *
 * A stream is named by (seed, stream): the 64-bit seed is the Philox key, and block b of stream s
 * is the bijection applied to the 128-bit counter (b low word first, then s), so the numbers a
 * caller draws depend only on (seed, stream, how many it drew before) and never on threads: a
 * sampler gives sample i its own stream i. Each block gives four 32-bit words, used in order. */
#ifndef GRAM_RNG_H
#define GRAM_RNG_H

#include <stdint.h>

typedef struct gram__rng {
    uint32_t key[2];
    uint32_t ctr[4]; /* ctr[0..1]: the next block of this stream, ctr[2..3]: the stream */
    uint32_t buf[4];
    int avail;       /* words of buf not used yet (taken from buf[4 - avail]) */
    int has_spare;   /* Box–Muller makes normals in pairs; the second waits here */
    double spare;
} gram__rng;

/* The Philox4x32 bijection with 10 rounds: out = philox(ctr, key). */
void gram__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Positions r at the start of stream `stream` under `seed`. */
void gram__rng_init(gram__rng *r, uint64_t seed, uint64_t stream);

uint32_t gram__rng_u32(gram__rng *r);
/* Two consecutive words, the first in the high half. */
uint64_t gram__rng_u64(gram__rng *r);
/* Uniform in the open interval (0, 1): k·2^-53 for a uniform 53-bit k ≠ 0 (k = 0 is redrawn). */
double gram__rng_uniform(gram__rng *r);
/* Standard normal, Box–Muller on two uniforms (pairs; the second value is kept for the next
 * call). */
double gram__rng_normal(gram__rng *r);
/* Gamma(shape, 1), shape > 0: Marsaglia & Tsang (2000) for shape ≥ 1; for shape < 1,
 * Gamma(shape + 1) · U^(1/shape). */
double gram__rng_gamma(gram__rng *r, double shape);
/* Beta(a, b), a, b > 0, as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). */
double gram__rng_beta(gram__rng *r, double a, double b);

#endif
