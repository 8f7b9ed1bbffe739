/* The counter-based generator: Philox4x32-10 known answers (Random123's kat_vectors), stream
 * independence and reproducibility, and the moments of every variate the samplers use. */
#include "base/rng.h"
#include "check.h"

#include <math.h>
#include <string.h>

typedef long double ld;

static void test_known_answers(void)
{
    /* Random123 kat_vectors, "philox4x32 10": counter (4 words), key (2 words), expected. */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int t = 0; t < 3; t++) {
        uint32_t out[4];
        gram__philox4x32_10(kat[t], kat[t] + 4, out);
        for (int w = 0; w < 4; w++)
            CHECK(out[w] == kat[t][6 + w], "philox KAT %d word %d: got %08x want %08x", t, w,
                  (unsigned)out[w], (unsigned)kat[t][6 + w]);
    }
    /* The stream layout: block 0 of stream 0 under seed 0 is the first KAT; the words come out
     * in order. */
    gram__rng r;
    gram__rng_init(&r, 0, 0);
    for (int w = 0; w < 4; w++) {
        uint32_t v = gram__rng_u32(&r);
        CHECK(v == kat[0][6 + w], "stream word %d: got %08x want %08x", w, (unsigned)v,
              (unsigned)kat[0][6 + w]);
    }
    /* Seed (key) and stream (high counter words) land where rng.h says. */
    uint64_t seed = ((uint64_t)0x299f31d0 << 32) | 0xa4093822u;
    uint64_t stream = ((uint64_t)0x03707344 << 32) | 0x13198a2eu;
    gram__rng_init(&r, seed, stream);
    r.ctr[0] = 0x243f6a88, r.ctr[1] = 0x85a308d3;
    for (int w = 0; w < 4; w++) {
        uint32_t v = gram__rng_u32(&r);
        CHECK(v == kat[2][6 + w], "seeded stream word %d: got %08x want %08x", w, (unsigned)v,
              (unsigned)kat[2][6 + w]);
    }
    /* The block counter carries into its high word. */
    gram__rng_init(&r, 5, 7);
    r.ctr[0] = 0xffffffffu;
    for (int w = 0; w < 4; w++) gram__rng_u32(&r);
    CHECK(r.ctr[0] == 0 && r.ctr[1] == 1, "block counter carry: %08x %08x", (unsigned)r.ctr[0],
          (unsigned)r.ctr[1]);
}

static void test_reproducible(void)
{
    gram__rng a, b, c;
    gram__rng_init(&a, 42, 3);
    gram__rng_init(&b, 42, 3);
    gram__rng_init(&c, 42, 4);
    int same = 1, diff = 0;
    for (int i = 0; i < 1000; i++) {
        double x = gram__rng_normal(&a), y = gram__rng_normal(&b), z = gram__rng_normal(&c);
        same &= x == y;
        diff += x != z;
    }
    CHECK(same, "same (seed, stream) must give the same numbers");
    CHECK(diff > 990, "different streams gave %d/1000 different numbers", diff);
    gram__rng_init(&a, 42, 3);
    gram__rng_init(&b, 43, 3);
    diff = 0;
    for (int i = 0; i < 1000; i++) diff += gram__rng_u32(&a) != gram__rng_u32(&b);
    CHECK(diff > 990, "different seeds gave %d/1000 different words", diff);
}

static void test_uniform(void)
{
    const int n = 1000000;
    gram__rng r;
    gram__rng_init(&r, 12345, 0);
    ld s = 0, s2 = 0;
    double mn = 1, mx = 0;
    int low_bits = 0;
    long bins[16] = {0};
    for (int i = 0; i < n; i++) {
        double u = gram__rng_uniform(&r);
        s += u, s2 += (ld)u * u;
        if (u < mn) mn = u;
        if (u > mx) mx = u;
        /* 53 bits: the lowest mantissa bit of k must be set about half of the time. */
        low_bits += (int)(((uint64_t)(u * 0x1.0p53)) & 1);
        bins[(int)(u * 16)]++;
    }
    ld mean = s / n, var = s2 / n - mean * mean;
    CHECK(mn > 0 && mx < 1, "uniform outside (0,1): min %g max %g", mn, mx);
    CHECK(fabsl(mean - 0.5L) < 5 * sqrtl(1.0L / 12 / n), "uniform mean %.6Lf", mean);
    CHECK(fabsl(var - 1.0L / 12) < 5 * sqrtl(1.0L / 180 / n), "uniform variance %.6Lf", var);
    CHECK(fabs(low_bits - n / 2.0) < 5 * sqrt(n / 4.0), "lowest bit set %d times of %d", low_bits, n);
    /* Chi-square over 16 bins, 15 degrees of freedom: 99.99% quantile ≈ 44.3. */
    double chi = 0, e = n / 16.0;
    for (int b = 0; b < 16; b++) chi += (bins[b] - e) * (bins[b] - e) / e;
    CHECK(chi < 44.3, "uniform chi-square over 16 bins %.2f", chi);
}

static void test_normal(void)
{
    const int n = 1000000;
    gram__rng r;
    gram__rng_init(&r, 7, 99);
    ld m[5] = {0};
    long tail = 0;
    for (int i = 0; i < n; i++) {
        ld z = gram__rng_normal(&r), p = 1;
        for (int k = 1; k <= 4; k++) p *= z, m[k] += p;
        tail += fabsl(z) > 1.959963984540054L;
    }
    for (int k = 1; k <= 4; k++) m[k] /= n;
    CHECK(fabsl(m[1]) < 5 / sqrtl(n), "normal mean %.5Lf", m[1]);
    CHECK(fabsl(m[2] - 1) < 5 * sqrtl(2.0L / n), "normal variance %.5Lf", m[2]);
    CHECK(fabsl(m[3]) < 5 * sqrtl(15.0L / n), "normal third moment %.5Lf", m[3]);
    CHECK(fabsl(m[4] - 3) < 5 * sqrtl(96.0L / n), "normal fourth moment %.5Lf", m[4]);
    CHECK(fabs(tail / (double)n - 0.05) < 5 * sqrt(0.05 * 0.95 / n), "normal two-sided 5%% tail %.5f",
          tail / (double)n);
}

/* Gamma(a): mean a, variance a, E[X^3] = a(a+1)(a+2). */
static void test_gamma(void)
{
    const double shapes[] = {0.3, 1.0, 2.0, 7.5, 100.0};
    const int n = 400000;
    for (int t = 0; t < 5; t++) {
        double a = shapes[t];
        gram__rng r;
        gram__rng_init(&r, 2024, (uint64_t)t);
        ld s = 0, s2 = 0, s3 = 0;
        int bad = 0;
        for (int i = 0; i < n; i++) {
            ld x = gram__rng_gamma(&r, a);
            bad += !(x > 0) || !isfinite((double)x);
            s += x, s2 += x * x, s3 += x * x * x;
        }
        ld mean = s / n, var = s2 / n - mean * mean, m3 = s3 / n;
        CHECK(!bad, "gamma(%g): %d non-positive or non-finite draws", a, bad);
        CHECK(fabsl(mean - a) < 5 * sqrtl(a / n), "gamma(%g) mean %.5Lf", a, mean);
        /* Var of the sample variance ≈ (μ4 - σ⁴)/n with μ4 = 3a² + 6a for the gamma. */
        CHECK(fabsl(var - a) < 5 * sqrtl((2 * a * a + 6 * a) / n), "gamma(%g) variance %.5Lf", a, var);
        ld want3 = (ld)a * (a + 1) * (a + 2);
        CHECK(fabsl(m3 - want3) < 0.03L * want3, "gamma(%g) third moment %.5Lf want %.5Lf", a, m3, want3);
    }
}

static void test_beta(void)
{
    const double ab[][2] = {{1, 2}, {3, 2}, {7, 2}, {0.5, 0.5}};
    const int n = 400000;
    for (int t = 0; t < 4; t++) {
        double a = ab[t][0], b = ab[t][1];
        gram__rng r;
        gram__rng_init(&r, 77, (uint64_t)t);
        ld s = 0, s2 = 0;
        int out = 0;
        for (int i = 0; i < n; i++) {
            ld x = gram__rng_beta(&r, a, b);
            out += !(x >= 0 && x <= 1);
            s += x, s2 += x * x;
        }
        ld mean = s / n, var = s2 / n - mean * mean;
        ld wm = a / (a + b), wv = a * b / ((a + b) * (a + b) * (a + b + 1));
        CHECK(!out, "beta(%g,%g): %d draws outside [0,1]", a, b, out);
        CHECK(fabsl(mean - wm) < 5 * sqrtl(wv / n), "beta(%g,%g) mean %.5Lf want %.5Lf", a, b, mean, wm);
        CHECK(fabsl(var - wv) < 0.02L * wv, "beta(%g,%g) variance %.6Lf want %.6Lf", a, b, var, wv);
    }
}

int main(void)
{
    test_known_answers();
    test_reproducible();
    test_uniform();
    test_normal();
    test_gamma();
    test_beta();
    return check_done();
}
