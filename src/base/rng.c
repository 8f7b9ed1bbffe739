/* Philox4x32-10 and the variates built on it. See rng.h. */
#include "rng.h"

#include <math.h>

/* The published Philox4x32 constants: round multipliers and the key's Weyl increments. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void gram__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void gram__rng_init(gram__rng *r, uint64_t seed, uint64_t stream)
{
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = 0;
    r->ctr[1] = 0;
    r->ctr[2] = (uint32_t)stream;
    r->ctr[3] = (uint32_t)(stream >> 32);
    r->avail = 0;
    r->has_spare = 0;
    r->spare = 0.0;
}

uint32_t gram__rng_u32(gram__rng *r)
{
    if (r->avail == 0) {
        gram__philox4x32_10(r->ctr, r->key, r->buf);
        if (++r->ctr[0] == 0) ++r->ctr[1]; /* 2^64 blocks per stream before this wraps */
        r->avail = 4;
    }
    return r->buf[4 - r->avail--];
}

uint64_t gram__rng_u64(gram__rng *r)
{
    uint64_t hi = gram__rng_u32(r);
    return (hi << 32) | gram__rng_u32(r);
}

double gram__rng_uniform(gram__rng *r)
{
    uint64_t k;
    do k = gram__rng_u64(r) >> 11;
    while (k == 0);
    return (double)k * 0x1.0p-53;
}

double gram__rng_normal(gram__rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    const double two_pi = 6.283185307179586476925286766559;
    double u1 = gram__rng_uniform(r), u2 = gram__rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1)), a = two_pi * u2;
    r->spare = rad * sin(a);
    r->has_spare = 1;
    return rad * cos(a);
}

double gram__rng_gamma(gram__rng *r, double shape)
{
    if (shape < 1.0) {
        /* Gamma(a) = Gamma(a + 1) · U^(1/a); in logs, so tiny shapes do not underflow early. */
        double g = gram__rng_gamma(r, shape + 1.0);
        double u = gram__rng_uniform(r);
        return exp(log(g) + log(u) / shape);
    }
    const double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = gram__rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = gram__rng_uniform(r);
        if (u < 1.0 - 0.0331 * (x * x) * (x * x)) return d * v;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}

double gram__rng_beta(gram__rng *r, double a, double b)
{
    double x = gram__rng_gamma(r, a), y = gram__rng_gamma(r, b);
    return x / (x + y);
}
