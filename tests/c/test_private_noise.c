/* The private layer's noise: ChaCha20 against RFC 8439, the exact samplers against their exact
 * laws (goodness of fit on counts), the calibration of gram__release against the bounds it claims,
 * and an empirical privacy audit of the release.
 *
 * Every statistical check uses a fixed seed (gram__csprng_init_seed), so the outcome is
 * reproducible; the false-alarm rate stated with each is the chance that a correct implementation
 * fails it for a seed drawn at random. */
#include "private/private.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef long double ld;

/* ---- statistics helpers (independent of the library) -------------------------------------- */

/* Regularized upper incomplete gamma Q(a, x): the series of P for x < a + 1, else the continued
 * fraction of Q (modified Lentz). */
static ld gamma_q(ld a, ld x)
{
    if (x <= 0) return 1;
    ld lg = lgammal(a);
    if (x < a + 1) {
        ld term = 1 / a, sum = term;
        for (int n = 1; n < 100000; n++) {
            term *= x / (a + n);
            sum += term;
            if (fabsl(term) < fabsl(sum) * 1e-19L) break;
        }
        return 1 - sum * expl(-x + a * logl(x) - lg);
    }
    ld tiny = 1e-300L, b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
    for (int i = 1; i < 100000; i++) {
        ld an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (fabsl(d) < tiny) d = tiny;
        c = b + an / c;
        if (fabsl(c) < tiny) c = tiny;
        d = 1 / d;
        ld del = d * c;
        h *= del;
        if (fabsl(del - 1) < 1e-19L) break;
    }
    return expl(-x + a * logl(x) - lg) * h;
}

static ld chi2_pvalue(ld chi, int df) { return gamma_q(df / 2.0L, chi / 2); }

/* log of the binomial pmf. */
static ld log_binom(int64_t n, int64_t k, ld p)
{
    if (p <= 0) return k == 0 ? 0 : -INFINITY;
    if (p >= 1) return k == n ? 0 : -INFINITY;
    return lgammal(n + 1.0L) - lgammal(k + 1.0L) - lgammal(n - k + 1.0L) + k * logl(p) + (n - k) * log1pl(-p);
}

/* P(X ≤ k), X ~ Binomial(n, p), summed from the mode outward in long double. */
static ld binom_cdf(int64_t n, int64_t k, ld p)
{
    if (k < 0) return 0;
    if (k >= n) return 1;
    ld s = 0;
    for (int64_t j = k; j >= 0; j--) {
        ld t = expl(log_binom(n, j, p));
        s += t;
        if (j < (ld)n * p && t < s * 1e-22L) break;
    }
    return s < 1 ? s : 1;
}

/* Two-sided exact binomial p-value: twice the smaller tail, capped at 1. */
static ld binom_pvalue(int64_t n, int64_t k, ld p)
{
    ld lo = binom_cdf(n, k, p), hi = 1 - binom_cdf(n, k - 1, p);
    ld v = 2 * (lo < hi ? lo : hi);
    return v < 1 ? v : 1;
}

/* Clopper–Pearson one-sided upper bound on p from k successes in n at level alpha: the p with
 * P(X ≤ k; p) = alpha (bisection; the cdf decreases in p). */
static ld cp_upper(int64_t n, int64_t k, ld alpha)
{
    if (k >= n) return 1;
    ld lo = (ld)k / n, hi = 1;
    for (int i = 0; i < 60; i++) {
        ld mid = (lo + hi) / 2;
        if (binom_cdf(n, k, mid) > alpha) lo = mid;
        else hi = mid;
    }
    return hi;
}

/* Chi-square goodness of fit of counts[x + L] (x in [-L, L], tails below -L and above L counted
 * in lo/hi) against weights w(x) normalised by summing the series out to where it stops
 * changing. Bins are runs of consecutive x holding an expected count ≥ 20; the tails pool into
 * the outer bins. Returns the p-value; *bins gets the number of bins. */
typedef ld (*weight_fn)(int64_t x, const void *par);

static ld gof_pvalue(const int64_t *counts, int64_t lo, int64_t hi, int64_t L, int64_t N, weight_fn w,
                     const void *par, int *bins)
{
    ld z = w(0, par);
    for (int64_t x = 1;; x++) {
        ld t = w(x, par) + w(-x, par);
        z += t;
        if (t < z * 1e-25L || x > 100000000) break;
    }
    int64_t n = 2 * L + 1;
    ld *pe = malloc((size_t)n * sizeof *pe), *rest = malloc((size_t)(n + 1) * sizeof *rest);
    ld inside = 0;
    for (int64_t x = -L; x <= L; x++) inside += pe[x + L] = w(x, par) / z * N;
    ld below = (N - inside) / 2; /* expected count beyond each end: the laws tested are symmetric */
    rest[n] = below;
    for (int64_t i = n - 1; i >= 0; i--) rest[i] = rest[i + 1] + pe[i];
    ld chi = 0, e = below, o = (ld)lo;
    int nb = 0;
    for (int64_t i = 0; i < n; i++) {
        e += pe[i];
        o += (ld)counts[i];
        /* close the bin once it expects 20, if what is left can still fill one */
        if (e >= 20 && rest[i + 1] >= 20) {
            chi += (o - e) * (o - e) / e;
            nb++;
            e = 0, o = 0;
        }
    }
    e += below, o += (ld)hi;
    chi += (o - e) * (o - e) / e;
    nb++;
    free(pe);
    free(rest);
    *bins = nb;
    return chi2_pvalue(chi, nb - 1);
}

/* ---- ChaCha20 and the generator ----------------------------------------------------------- */

static void test_chacha20_rfc8439(void)
{
    /* RFC 8439 §2.3.2: key 00:01:...:1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00, block
     * counter 1; the serialized block's words (little-endian), as the RFC lists them. */
    uint32_t key[8], out[16];
    for (int i = 0; i < 8; i++)
        key[i] = (uint32_t)(4 * i) | (uint32_t)(4 * i + 1) << 8 | (uint32_t)(4 * i + 2) << 16 |
                 (uint32_t)(4 * i + 3) << 24;
    const uint32_t nonce[3] = {0x09000000u, 0x4a000000u, 0x00000000u};
    static const uint32_t want[16] = {0xe4e7f110, 0x15593bd1, 0x1fdd0f50, 0xc47120a3,
                                      0xc7f4d1c7, 0x0368c033, 0x9aaa2204, 0x4e6cd4c3,
                                      0x466482d2, 0x09aa9f07, 0x05d7c214, 0xa2028bd9,
                                      0xd19c12b5, 0xb94e16de, 0xe883d0cb, 0x4e3c50a2};
    gram__chacha20_block(key, 1, nonce, out);
    for (int i = 0; i < 16; i++)
        CHECK(out[i] == want[i], "RFC 8439 2.3.2 word %d: got %08x want %08x", i, (unsigned)out[i],
              (unsigned)want[i]);

    /* The generator's stream is block(key, 0, 0), block(key, 1, 0), ... word by word; at the
     * counter's wrap the nonce moves on, so no (key, counter, nonce) repeats. */
    gram__csprng r;
    gram__csprng_init_seed(&r, 99);
    CHECK(r.seeded == 1, "a seeded generator says so");
    uint32_t blk[16];
    const uint32_t n0[3] = {0, 0, 0};
    gram__chacha20_block(r.key, 0, n0, blk);
    for (int i = 0; i < 16; i++) CHECK(gram__csprng_u32(&r) == blk[i], "stream block 0 word %d", i);
    gram__chacha20_block(r.key, 1, n0, blk);
    CHECK(gram__csprng_u32(&r) == blk[0], "stream block 1 word 0");
    r.counter = 0xffffffffu, r.used = 16;
    const uint32_t n1[3] = {1, 0, 0};
    gram__chacha20_block(r.key, 0xffffffffu, n0, blk);
    for (int i = 0; i < 16; i++) CHECK(gram__csprng_u32(&r) == blk[i], "last block before the wrap, word %d", i);
    CHECK(r.counter == 0 && r.nonce[0] == 1, "counter wrap moves the nonce: counter %u nonce %u",
          (unsigned)r.counter, (unsigned)r.nonce[0]);
    gram__chacha20_block(r.key, 0, n1, blk);
    CHECK(gram__csprng_u32(&r) == blk[0], "first block after the wrap uses nonce 1");

    /* Different seeds, different keys; a wipe leaves nothing. */
    gram__csprng a, b;
    gram__csprng_init_seed(&a, 1);
    gram__csprng_init_seed(&b, 2);
    CHECK(memcmp(a.key, b.key, sizeof a.key) != 0, "seeds 1 and 2 give the same key");
    gram__csprng_u32(&a);
    gram__csprng_wipe(&a);
    const unsigned char *p = (const unsigned char *)&a;
    size_t nz = 0;
    for (size_t i = 0; i < sizeof a; i++) nz += p[i] != 0;
    CHECK(nz == 0, "wipe left %zu nonzero bytes", nz);
}

static void test_os_keyed(void)
{
    gram_context *ctx;
    gram_context_create(&ctx);
    gram__csprng a, b;
    CHECK_STATUS(gram__csprng_init_os(ctx, &a), GRAM_OK);
    CHECK_STATUS(gram__csprng_init_os(ctx, &b), GRAM_OK);
    CHECK(a.seeded == 0 && b.seeded == 0, "OS-keyed generators are not marked seeded");
    /* Two keys of 256 bits from the OS agree with probability 2^-256. */
    CHECK(memcmp(a.key, b.key, sizeof a.key) != 0, "two OS-keyed generators share a key");
    int same = 0;
    for (int i = 0; i < 8; i++) same += gram__csprng_u32(&a) == gram__csprng_u32(&b);
    CHECK(same < 8, "two OS-keyed generators give the same words");
    gram__csprng_wipe(&a);
    gram__csprng_wipe(&b);
    gram_context_destroy(ctx);
}

static void test_below_uniform(void)
{
    /* Chi-square on counts, false-alarm rate 1e-6 each. n = 7 (small, not a power of two) and
     * n ≈ (2/3)·2^64, where taking a 64-bit word modulo n without rejection would make the lower
     * half of the range twice as likely (caught at once). */
    gram__csprng r;
    gram__csprng_init_seed(&r, 7);
    const int64_t N = 700000;
    int64_t c7[7] = {0};
    for (int64_t i = 0; i < N; i++) {
        uint64_t x = gram__csprng_below(&r, 7);
        if (x >= 7) {
            CHECK(0, "below(7) gave %llu", (unsigned long long)x);
            return;
        }
        c7[x]++;
    }
    ld chi = 0;
    for (int j = 0; j < 7; j++) chi += (c7[j] - N / 7.0L) * (c7[j] - N / 7.0L) / (N / 7.0L);
    ld pv = chi2_pvalue(chi, 6);
    CHECK(pv > 1e-6, "below(7) not uniform: chi2 %.3Lf, p %.3Lg", chi, pv);

    const uint64_t n = 0xAAAAAAAAAAAAAAABull;
    int64_t c6[6] = {0};
    const int64_t M = 600000;
    for (int64_t i = 0; i < M; i++) {
        uint64_t x = gram__csprng_below(&r, n);
        CHECK(x < n, "below(n) out of range");
        __extension__ unsigned __int128 q = (unsigned __int128)x * 6 / n;
        c6[(int)q]++;
    }
    chi = 0;
    for (int j = 0; j < 6; j++) chi += (c6[j] - M / 6.0L) * (c6[j] - M / 6.0L) / (M / 6.0L);
    pv = chi2_pvalue(chi, 5);
    CHECK(pv > 1e-6, "below(2/3 2^64) not uniform: chi2 %.3Lf, p %.3Lg", chi, pv);
    CHECK(gram__csprng_below(&r, 1) == 0, "below(1) is 0");
}

/* ---- the samplers ------------------------------------------------------------------------- */

static void test_bernoulli_exp(void)
{
    /* Exact two-sided binomial test of the success count against e^-γ, false-alarm rate 1e-6
     * each; γ > 1 exercises the loop of Bernoulli(e^-1). */
    static const uint64_t g[][2] = {{1, 3}, {1, 1}, {7, 4}, {5, 2}, {10, 3}, {123, 20}, {1, 1000000007}};
    gram__csprng r;
    gram__csprng_init_seed(&r, 11);
    const int64_t N = 200000;
    for (size_t t = 0; t < sizeof g / sizeof g[0]; t++) {
        int64_t k = 0;
        for (int64_t i = 0; i < N; i++) k += gram__bernoulli_exp(&r, g[t][0], g[t][1]);
        ld p = expl(-(ld)g[t][0] / g[t][1]);
        ld pv = binom_pvalue(N, k, p);
        CHECK(pv > 1e-6, "Bernoulli(exp(-%llu/%llu)): %lld of %lld, want %.6Lf, p %.3Lg",
              (unsigned long long)g[t][0], (unsigned long long)g[t][1], (long long)k, (long long)N,
              p * N, pv);
    }
    int64_t k = 0;
    for (int i = 0; i < 1000; i++) k += gram__bernoulli_exp(&r, 0, 5);
    CHECK(k == 1000, "Bernoulli(exp(0)) failed %lld times", (long long)(1000 - k));
}

/* Little-endian multiword helpers on 32-bit limbs (the test's own arithmetic). */
static void limbs_of(const uint64_t *w, int nw, uint32_t *l)
{
    for (int i = 0; i < nw; i++) l[2 * i] = (uint32_t)w[i], l[2 * i + 1] = (uint32_t)(w[i] >> 32);
}

/* out (na + nb limbs) = a·b */
static void limbs_mul(const uint32_t *a, int na, const uint32_t *b, int nb, uint32_t *out)
{
    memset(out, 0, (size_t)(na + nb) * sizeof *out);
    for (int i = 0; i < na; i++) {
        uint64_t carry = 0;
        for (int j = 0; j < nb; j++) {
            uint64_t t = (uint64_t)a[i] * b[j] + out[i + j] + carry;
            out[i + j] = (uint32_t)t;
            carry = t >> 32;
        }
        for (int k = i + nb; carry; k++) {
            uint64_t t = (uint64_t)out[k] + carry;
            out[k] = (uint32_t)t;
            carry = t >> 32;
        }
    }
}

static void test_square_divmod(void)
{
    /* The 256-bit step of the discrete Gaussian (reached only for proposals thousands of scales
     * out, so no sampling test sees it): w² = q·D + rem and rem < D, checked in 32-bit limbs. */
    check_rng g = {12345};
    for (int t = 0; t < 2000; t++) {
        uint64_t w[2], D[2];
        switch (t) {
        case 0: w[0] = ~0ull, w[1] = ((uint64_t)1 << 50) - 1, D[0] = 1, D[1] = 0; break;
        case 1: w[0] = ~0ull, w[1] = ((uint64_t)1 << 50) - 1, D[0] = ~0ull, D[1] = ((uint64_t)1 << 58) - 1; break;
        case 2: w[0] = 0, w[1] = 0, D[0] = 7, D[1] = 0; break;
        case 3: w[0] = 3, w[1] = 0, D[0] = 10, D[1] = 0; break;
        default:
            w[0] = check_u64(&g), w[1] = check_u64(&g) >> (14 + check_u64(&g) % 50);
            D[0] = check_u64(&g) | 1, D[1] = check_u64(&g) >> (6 + check_u64(&g) % 58);
        }
        uint64_t q[4], rem[2];
        gram__square_divmod(w, D, q, rem);
        uint32_t lw[4], lD[4], lq[8], lr[4], sq[8], qd[12];
        limbs_of(w, 2, lw);
        limbs_of(D, 2, lD);
        limbs_of(q, 4, lq);
        limbs_of(rem, 2, lr);
        limbs_mul(lw, 4, lw, 4, sq);
        limbs_mul(lq, 8, lD, 4, qd);
        uint64_t carry = 0; /* qd += rem */
        for (int i = 0; i < 12; i++) {
            uint64_t x = (uint64_t)qd[i] + (i < 4 ? lr[i] : 0) + carry;
            qd[i] = (uint32_t)x;
            carry = x >> 32;
        }
        int same = carry == 0 && qd[8] == 0 && qd[9] == 0 && qd[10] == 0 && qd[11] == 0 &&
                   memcmp(qd, sq, sizeof sq) == 0;
        int less = rem[1] < D[1] || (rem[1] == D[1] && rem[0] < D[0]);
        CHECK(same && less, "square_divmod case %d: w = %016llx%016llx, D = %016llx%016llx", t,
              (unsigned long long)w[1], (unsigned long long)w[0], (unsigned long long)D[1],
              (unsigned long long)D[0]);
    }
}

typedef struct { ld num, den; } ratio;

static ld w_laplace(int64_t x, const void *par)
{
    const ratio *b = par;
    return expl(-(ld)llabs(x) * b->den / b->num);
}

static ld w_gauss(int64_t x, const void *par)
{
    const ratio *s2 = par;
    return expl(-(ld)x * (ld)x * s2->den / (2 * s2->num));
}

static void gof_sampler(int gaussian, uint64_t num, uint64_t den, int64_t N, uint64_t seed)
{
    gram__csprng r;
    gram__csprng_init_seed(&r, seed);
    ld scale = gaussian ? sqrtl((ld)num / den) : (ld)num / den;
    int64_t L = (int64_t)(40 * scale) + 10;
    int64_t *counts = calloc((size_t)(2 * L + 1), sizeof *counts);
    int64_t lo = 0, hi = 0;
    ld sum = 0;
    for (int64_t i = 0; i < N; i++) {
        int64_t x = gaussian ? gram__discrete_gaussian(&r, num, den) : gram__discrete_laplace(&r, num, den);
        sum += x;
        if (x < -L) lo++;
        else if (x > L) hi++;
        else counts[x + L]++;
    }
    ratio par = {(ld)num, (ld)den};
    int bins;
    ld pv = gof_pvalue(counts, lo, hi, L, N, gaussian ? w_gauss : w_laplace, &par, &bins);
    CHECK(pv > 1e-6 && bins >= 2, "%s %llu/%llu: chi-square p %.3Lg over %d bins (mean %.4Lf)",
          gaussian ? "discrete Gaussian sigma2" : "discrete Laplace b", (unsigned long long)num,
          (unsigned long long)den, pv, bins, sum / N);
    free(counts);
}

static void test_discrete_laplace(void)
{
    /* Chi-square goodness of fit against the exact pmf e^(-|x|/b)/Σ, bins of ≥ 20 expected,
     * false-alarm rate 1e-6 each. b = 0.5 (nearly all mass at 0 and ±1), 1, 3.7, 50, 1000, and
     * b = 3 written as 3·2^40/2^40 (a den like the release's). */
    gof_sampler(0, 1, 2, 200000, 21);
    gof_sampler(0, 1, 1, 200000, 22);
    gof_sampler(0, 37, 10, 200000, 23);
    gof_sampler(0, 50, 1, 200000, 24);
    gof_sampler(0, 1000, 1, 200000, 25);
    gof_sampler(0, (uint64_t)3 << 40, (uint64_t)1 << 40, 200000, 26);
}

static void test_discrete_gaussian(void)
{
    /* The same against e^(-x²/(2σ²))/Σ: σ = 0.5, 1, √(7/3), 10, 1000, and σ² with a den of 2^40
     * (the release's largest). */
    gof_sampler(1, 1, 4, 200000, 31);
    gof_sampler(1, 1, 1, 200000, 32);
    gof_sampler(1, 7, 3, 200000, 33);
    gof_sampler(1, 100, 1, 200000, 34);
    gof_sampler(1, 1000000, 1, 200000, 35);
    gof_sampler(1, (uint64_t)5 << 40 | 12345, (uint64_t)1 << 40, 200000, 36);
}

/* ---- release: calibration ----------------------------------------------------------------- */

/* a·ε ≥ c·2^k exactly, the test's own way: ε = mant·2^ex with a 53-bit integer mant, both sides
 * brought to integers in 128 bits (a ≤ 2^62 here, so a·mant < 2^115). */
static int exact_ge(uint64_t a, double eps, uint64_t c, int k)
{
    int ex;
    double fr = frexp(eps, &ex);
    uint64_t mant = (uint64_t)ldexp(fr, 53);
    ex -= 53;
    __extension__ typedef unsigned __int128 u128;
    u128 lhs = (u128)a * mant; /* < 2^117 */
    int sh = k - ex;           /* compare lhs with c·2^sh */
    int cbits = 0;
    while (cbits < 64 && (c >> cbits) != 0) cbits++;
    if (sh >= 0) {
        if (cbits + sh > 127) return 0; /* c·2^sh ≥ 2^127 > lhs */
        return lhs >= ((u128)c << sh);
    }
    /* lhs ≥ c·2^sh ⟺ lhs ≥ ⌈c / 2^-sh⌉ */
    int ns = -sh;
    if (ns >= 64) return lhs >= 1 || c == 0;
    u128 q = ((u128)c >> ns) + (((u128)c & (((u128)1 << ns) - 1)) != 0);
    return lhs >= q;
}

static int log2_exact(uint64_t den)
{
    int k = 0;
    while (((uint64_t)1 << k) < den) k++;
    return ((uint64_t)1 << k) == den ? k : -1;
}

static void test_laplace_calibration(void)
{
    static const struct { uint64_t sens; double eps; } c[] = {
        {1, 1}, {3, 0.1}, {7, 2.5}, {1000, 0.37}, {1, 1e-3}, {5, 1e9}, {12345, 3.3e-5}};
    gram_context *ctx;
    gram_context_create(&ctx);
    gram__csprng r;
    gram__csprng_init_seed(&r, 41);
    for (size_t t = 0; t < sizeof c / sizeof c[0]; t++) {
        int64_t v = 17;
        double out = -1;
        gram__statistic st = {1, &v, 0.5, c[t].sens, (double)c[t].sens, 0};
        gram__release_record rec;
        CHECK_STATUS(gram__release(ctx, &st, c[t].eps, 0, &r, &out, &rec), GRAM_OK);
        int k = log2_exact(rec.den);
        CHECK(rec.kind == GRAM__NOISE_LAPLACE && rec.shift == 0 && rec.sens_l1 == c[t].sens,
              "laplace record: kind %d shift %d sens %llu", (int)rec.kind, rec.shift,
              (unsigned long long)rec.sens_l1);
        CHECK(k >= 0, "den %llu is a power of two", (unsigned long long)rec.den);
        if (k < 0) continue;
        /* The guarantee after rounding: b·ε ≥ Δ exactly; and b is the smallest such num/2^k. */
        CHECK(exact_ge(rec.num, c[t].eps, c[t].sens, k), "b*eps < sens: %llu/2^%d * %g < %llu",
              (unsigned long long)rec.num, k, c[t].eps, (unsigned long long)c[t].sens);
        CHECK(rec.num == 1 || !exact_ge(rec.num - 1, c[t].eps, c[t].sens, k),
              "b is not the smallest: (%llu-1)/2^%d still meets sens/eps", (unsigned long long)rec.num, k);
        ld b = ldexpl((ld)rec.num, -k), want = (ld)c[t].sens / c[t].eps;
        /* With den = 2^k as large as keeps num ≤ 2^62, b is within 2^-60 relative of Δ/ε (the
         * floor at den 2^62 aside). */
        if (want > 0x1p-20L) CHECK(fabsl(b / want - 1) < 0x1p-59L, "b %.17Lg vs sens/eps %.17Lg", b, want);
        CHECK_CLOSE(rec.scale, (double)(b * 0.5L), 1e-15, 0, "scale in released units");
        CHECK(out == floor(out / 0.5) * 0.5, "released value %g is on the unit grid", out);
    }
    gram_context_destroy(ctx);
}

/* δ of ρ-zCDP at ε by the same formula as the library's (CKS 2020, Corollary 13), minimised
 * over α by a grid and a golden-section search on log(α − 1) instead of the library's bisection on
 * the derivative: an independent upper bound on the same infimum. */
static ld ref_zcdp_delta(ld rho, ld eps)
{
    /* log δ as a function of u = log(α − 1), on a grid from e^-14 to 1e6, then a golden-section
     * search in the grid cell pair around the best point. */
#define REF_LOGD(u) ((expl(u)) * ((1 + expl(u)) * rho - eps) + (1 + expl(u)) * log1pl(-1 / (1 + expl(u))) - (u))
    const int G = 2000;
    const ld u0 = -14, u1 = logl(1e6L), du = (u1 - u0) / G;
    int bi = 0;
    ld bv = INFINITY;
    for (int i = 0; i <= G; i++) {
        ld v = REF_LOGD(u0 + i * du);
        if (v < bv) bv = v, bi = i;
    }
    ld a = u0 + (bi - 1) * du, b = u0 + (bi + 1) * du;
    const ld gr = (sqrtl(5) - 1) / 2;
    for (int i = 0; i < 100; i++) {
        ld c = b - gr * (b - a), d = a + gr * (b - a);
        if (REF_LOGD(c) < REF_LOGD(d)) b = d;
        else a = c;
    }
    ld v = REF_LOGD((a + b) / 2);
    if (v < bv) bv = v;
#undef REF_LOGD
    ld dd = expl(bv);
    return dd < 1 ? dd : 1;
}

/* The exact δ(ε) of adding N_Z(0, σ²) to a scalar count that moves by Δ: Σ_x max(0, P(x) −
 * e^ε P(x − Δ)), summed directly in long double. */
static ld exact_scalar_delta(ld sigma2, int64_t D, ld eps)
{
    int64_t L = (int64_t)(60 * sqrtl(sigma2)) + 60 + D;
    ld z = 0, s = 0;
    for (int64_t x = -L; x <= L; x++) z += expl(-(ld)x * x / (2 * sigma2));
    for (int64_t x = -L; x <= L; x++) {
        ld p = expl(-(ld)x * x / (2 * sigma2)) / z, q = expl(-(ld)(x - D) * (x - D) / (2 * sigma2)) / z;
        ld d = p - expl(eps) * q;
        if (d > 0) s += d;
    }
    return s;
}

static void test_gaussian_calibration(void)
{
    static const struct { double sens2, eps, delta; } c[] = {
        {1, 1, 1e-5}, {1, 0.1, 1e-6}, {3, 2, 1e-3}, {10, 0.5, 1e-9}, {1, 5, 1e-5}, {2, 0.01, 1e-5}};
    gram_context *ctx;
    gram_context_create(&ctx);
    gram__csprng r;
    gram__csprng_init_seed(&r, 43);
    for (size_t t = 0; t < sizeof c / sizeof c[0]; t++) {
        int64_t v = 0;
        double out;
        gram__statistic st = {1, &v, 1.0, (uint64_t)ceil(c[t].sens2), c[t].sens2, 0};
        gram__release_record rec;
        CHECK_STATUS(gram__release(ctx, &st, c[t].eps, c[t].delta, &r, &out, &rec), GRAM_OK);
        CHECK(rec.kind == GRAM__NOISE_GAUSSIAN && rec.shift == 0, "gaussian record: kind %d shift %d",
              (int)rec.kind, rec.shift);
        ld sigma2 = (ld)rec.num / rec.den;
        /* The library's own conversion at the σ it chose meets (ε, δ). */
        ld d_lib = gram__gauss_delta(c[t].sens2, sigma2, c[t].eps);
        CHECK(d_lib <= c[t].delta, "case %zu: delta at the chosen sigma %.6Lg > %g", t, d_lib, c[t].delta);
        /* So does the independent grid evaluation of the same bound. */
        ld rho = (ld)c[t].sens2 * c[t].sens2 / (2 * sigma2);
        ld d_ref = ref_zcdp_delta(rho, c[t].eps);
        CHECK(d_ref <= c[t].delta * (1 + 1e-6), "case %zu: reference delta %.6Lg > %g", t, d_ref, c[t].delta);
        /* The smallest σ the reference conversion allows, by bisection on σ²: the chosen one is
         * within 2% above it (and not below it beyond the grid's resolution). */
        ld lo = 1e-6L, hi = 1e12L;
        for (int i = 0; i < 100; i++) {
            ld mid = sqrtl(lo * hi);
            if (ref_zcdp_delta((ld)c[t].sens2 * c[t].sens2 / (2 * mid), c[t].eps) <= c[t].delta) hi = mid;
            else lo = mid;
        }
        ld ratio = sqrtl(sigma2 / hi);
        CHECK(ratio <= 1.02L && ratio >= 0.999L, "case %zu: sigma %.6Lg is %.5Lf x the smallest valid %.6Lg", t,
              sqrtl(sigma2), ratio, sqrtl(hi));
        /* Tighter than Bun & Steinke 2016 (ε = ρ + 2√(ρ log 1/δ)). */
        ld Lg = logl(1 / (ld)c[t].delta);
        ld rho_bs = (sqrtl(Lg + c[t].eps) - sqrtl(Lg)) * (sqrtl(Lg + c[t].eps) - sqrtl(Lg));
        ld sigma2_bs = (ld)c[t].sens2 * c[t].sens2 / (2 * rho_bs);
        CHECK(sigma2 <= sigma2_bs, "case %zu: sigma2 %.6Lg above Bun-Steinke's %.6Lg", t, sigma2, sigma2_bs);
        /* For an integer sensitivity the exact δ of the scalar mechanism is below the bound. */
        if (c[t].sens2 == floor(c[t].sens2) && sigma2 < 1e7L) {
            ld d_exact = exact_scalar_delta(sigma2, (int64_t)c[t].sens2, c[t].eps);
            CHECK(d_exact <= c[t].delta, "case %zu: exact delta %.6Lg > %g", t, d_exact, c[t].delta);
        }
        CHECK_CLOSE(rec.scale, (double)sqrtl(sigma2), 1e-15, 0, "gaussian scale");
    }
    gram_context_destroy(ctx);
}

static int64_t round_half_away(int64_t v, int s)
{
    ld q = (ld)v / ldexpl(1, s);
    return (int64_t)(q >= 0 ? floorl(q + 0.5L) : -floorl(-q + 0.5L));
}

static void test_coarsening(void)
{
    gram_context *ctx;
    gram_context_create(&ctx);
    gram__csprng r;
    gram__csprng_init_seed(&r, 47);
    /* ℓ1: m = 10 values, S₁ = 2^40 + 5 fine units. The largest s with m ≤ 0.1% of ⌈S₁/2^s⌉ + m
     * is found here by the definition; the sensitivity is ⌈S₁/2^s⌉ + m; ε = 1e9 makes the noise
     * (b = sens/ε < 1e-4, P(Z ≠ 0) < 2e^-10^4) vanish so the rounding shows. */
    {
        const uint64_t S = ((uint64_t)1 << 40) + 5;
        const int64_t m = 10;
        int want_s = 0;
        for (int s = 1; s <= 62; s++) {
            uint64_t q = (S + ((uint64_t)1 << s) - 1) >> s;
            if ((ld)m <= 1e-3L * (ld)(q + (uint64_t)m)) want_s = s;
            else break;
        }
        int64_t h = (int64_t)1 << (want_s - 1);
        int64_t v[10] = {h, -h, h - 1, -(h - 1), 3 * h, -3 * h, 0, (int64_t)1 << 50, -((int64_t)1 << 50) - h, 7};
        double out[10];
        gram__statistic st = {m, v, 0x1p-32, S, (double)S, 1};
        gram__release_record rec;
        CHECK_STATUS(gram__release(ctx, &st, 1e9, 0, &r, out, &rec), GRAM_OK);
        uint64_t want_sens = ((S + ((uint64_t)1 << want_s) - 1) >> want_s) + (uint64_t)m;
        CHECK(rec.shift == want_s, "l1 coarsening shift %d, want %d", rec.shift, want_s);
        CHECK(rec.sens_l1 == want_sens, "coarse l1 sensitivity %llu, want %llu", (unsigned long long)rec.sens_l1,
              (unsigned long long)want_sens);
        for (int i = 0; i < m; i++) {
            double want = (double)round_half_away(v[i], want_s) * ldexp(0x1p-32, want_s);
            CHECK(out[i] == want, "value %d: released %.17g, want %.17g (v = %lld, s = %d)", i, out[i], want,
                  (long long)v[i], want_s);
        }
        /* s = 0 for counts whatever the sizes. */
        st.allow_coarsen = 0;
        st.sens_l1 = 1000;
        CHECK_STATUS(gram__release(ctx, &st, 1e9, 0, &r, out, &rec), GRAM_OK);
        CHECK(rec.shift == 0 && rec.sens_l1 == 1000, "counts are not coarsened: shift %d sens %llu", rec.shift,
              (unsigned long long)rec.sens_l1);
        for (int i = 0; i < m; i++) CHECK(out[i] == (double)v[i] * 0x1p-32, "count %d released exactly", i);
    }
    /* ℓ2: m = 100, S₂ = 2^30: the largest s with √m ≤ 0.1% of S₂/2^s + √m, and the sensitivity
     * S₂/2^s + √m (rounded up). */
    {
        const int64_t m = 100;
        const double S2 = 0x1p30;
        int want_s = 0;
        for (int s = 1; s <= 62; s++) {
            if (sqrtl(m) <= 1e-3L * (ldexpl(S2, -s) + sqrtl(m))) want_s = s;
            else break;
        }
        int64_t v[100];
        double out[100];
        for (int i = 0; i < m; i++) v[i] = (int64_t)i * 1000003 - 50000000;
        gram__statistic st = {m, v, 1.0, (uint64_t)1 << 40, S2, 1};
        gram__release_record rec;
        CHECK_STATUS(gram__release(ctx, &st, 1.0, 1e-6, &r, out, &rec), GRAM_OK);
        CHECK(rec.shift == want_s, "l2 coarsening shift %d, want %d", rec.shift, want_s);
        ld want_sens = ldexpl(S2, -want_s) + sqrtl(m);
        CHECK(rec.sens_l2 >= want_sens && rec.sens_l2 <= want_sens * (1 + 1e-12L), "coarse l2 sensitivity %.17g, want %.17Lg",
              rec.sens_l2, want_sens);
        /* The noise is calibrated to that coarse sensitivity. */
        ld d = gram__gauss_delta(rec.sens_l2, (ld)rec.num / rec.den, 1.0);
        CHECK(d <= 1e-6, "coarse gaussian delta %.6Lg", d);
        /* Released values sit on the 2^s grid. */
        for (int i = 0; i < m; i++) {
            double q = out[i] / ldexp(1, want_s);
            CHECK(q == floor(q), "value %d off the coarse grid", i);
        }
    }
    gram_context_destroy(ctx);
}

static void test_release_errors(void)
{
    gram_context *ctx;
    gram_context_create(&ctx);
    gram__csprng r, r0;
    gram__csprng_init_seed(&r, 53);
    r0 = r;
    int64_t v[2] = {1, 2};
    double out[2] = {-7, -7};
    gram__release_record rec;
    gram__statistic st = {2, v, 1.0, 1, 1.0, 0};
    static const double bad_eps[] = {0, -1, NAN, INFINITY};
    for (size_t i = 0; i < 4; i++) {
        CHECK_STATUS(gram__release(ctx, &st, bad_eps[i], 0, &r, out, &rec), GRAM_EINVAL);
        CHECK(strstr(gram_context_message(ctx), "epsilon") != NULL, "message names epsilon: %s",
              gram_context_message(ctx));
    }
    static const double bad_delta[] = {-1e-9, 1, 2, NAN};
    for (size_t i = 0; i < 4; i++) {
        CHECK_STATUS(gram__release(ctx, &st, 1, bad_delta[i], &r, out, &rec), GRAM_EINVAL);
        CHECK(strstr(gram_context_message(ctx), "delta") != NULL, "message names delta: %s",
              gram_context_message(ctx));
    }
    /* Noise beyond the exact samplers' range, for counts (no coarsening allowed): refused. */
    gram__statistic big = {2, v, 1.0, (uint64_t)1 << 50, 0x1p50, 0};
    CHECK_STATUS(gram__release(ctx, &big, 1, 0, &r, out, &rec), GRAM_EOVERFLOW);
    CHECK_STATUS(gram__release(ctx, &big, 1, 1e-5, &r, out, &rec), GRAM_EOVERFLOW);
    /* A value that noise could push out of int64. */
    int64_t huge[2] = {1, (int64_t)1 << 62};
    gram__statistic hv = {2, huge, 1.0, 1, 1.0, 0};
    CHECK_STATUS(gram__release(ctx, &hv, 1, 0, &r, out, &rec), GRAM_EOVERFLOW);
    CHECK(out[0] == -7 && out[1] == -7, "a failed release wrote to out: %g %g", out[0], out[1]);
    CHECK(memcmp(&r, &r0, sizeof r) == 0, "a refused release drew noise");
    gram_context_destroy(ctx);
}

/* ---- release: empirical privacy audit ----------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Number of entries of the sorted array a (n) that are ≥ t. */
static int64_t count_ge(const int64_t *a, int64_t n, int64_t t)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (a[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    return n - lo;
}

/* The ε lower bound a threshold test "output ≥ t" certifies from n releases of each data set:
 * FPR = P(out ≥ t | v = 0), FNR = P(out < t | v = Δ), each replaced by its Clopper–Pearson
 * upper bound at level alpha; (ε, δ)-DP forces 1 − δ − FNR ≤ e^ε·FPR and 1 − δ − FPR ≤ e^ε·FNR. */
static ld eps_lower(const int64_t *a0, const int64_t *a1, int64_t n, int64_t t, ld delta, ld alpha)
{
    int64_t fp = count_ge(a0, n, t), fn = n - count_ge(a1, n, t);
    ld fpr = cp_upper(n, fp, alpha), fnr = cp_upper(n, fn, alpha);
    ld e1 = (1 - delta - fnr) > 0 ? logl((1 - delta - fnr) / fpr) : -INFINITY;
    ld e2 = (1 - delta - fpr) > 0 ? logl((1 - delta - fpr) / fnr) : -INFINITY;
    return e1 > e2 ? e1 : e2;
}

/* N releases of a one-value count v = 0 and N of v = Δ (sensitivity Δ), each through
 * gram__release; the threshold is chosen on the first half and the bound computed on the second,
 * so the selection does not bias it. With alpha = 1e-4 per Clopper–Pearson bound, a mechanism
 * that is (ε, δ)-DP gives ε_lower > ε with probability at most 2e-4 (the false-alarm rate). */
static ld audit(double eps, double delta, int64_t D, int64_t N, uint64_t seed)
{
    gram_context *ctx;
    gram_context_create(&ctx);
    gram__csprng r;
    gram__csprng_init_seed(&r, seed);
    int64_t *a0 = malloc((size_t)N * sizeof *a0), *a1 = malloc((size_t)N * sizeof *a1);
    for (int which = 0; which < 2; which++) {
        for (int64_t i = 0; i < N; i++) {
            int64_t v = which ? D : 0;
            double out;
            gram__statistic st = {1, &v, 1.0, (uint64_t)D, (double)D, 0};
            gram__release_record rec;
            if (gram__release(ctx, &st, eps, delta, &r, &out, &rec) != GRAM_OK) {
                CHECK(0, "audit release failed: %s", gram_context_message(ctx));
                free(a0), free(a1);
                gram_context_destroy(ctx);
                return INFINITY;
            }
            (which ? a1 : a0)[i] = (int64_t)out;
        }
    }
    int64_t h = N / 2;
    qsort(a0, (size_t)h, sizeof *a0, cmp_i64);
    qsort(a1, (size_t)h, sizeof *a1, cmp_i64);
    qsort(a0 + h, (size_t)(N - h), sizeof *a0, cmp_i64);
    qsort(a1 + h, (size_t)(N - h), sizeof *a1, cmp_i64);
    /* Candidate thresholds: every integer between the 1% and 99% points of the pooled first half,
     * at most 200 of them. */
    int64_t tlo = a0[h / 100], thi = a1[h - 1 - h / 100];
    int64_t step = (thi - tlo) / 200 + 1;
    int64_t best_t = tlo;
    ld best = -INFINITY;
    for (int64_t t = tlo; t <= thi; t += step) {
        ld e = eps_lower(a0, a1, h, t, delta, 1e-4L);
        if (e > best) best = e, best_t = t;
    }
    ld e = eps_lower(a0 + h, a1 + h, N - h, best_t, delta, 1e-4L);
    free(a0);
    free(a1);
    gram_context_destroy(ctx);
    return e;
}

static void test_privacy_audit(void)
{
    /* Pure ε = 1, Δ = 1: the best test's true ε is 1, so with 10^4 evaluation releases per side
     * the certified bound is near 0.9; ≥ 0.5 shows the audit has power. */
    ld e = audit(1.0, 0, 1, 20000, 61);
    printf("audit: Laplace eps 1, sens 1: eps_lower %.4Lf\n", e);
    CHECK(e <= 1.0L, "Laplace audit: eps_lower %.4Lf exceeds the claimed 1", e);
    CHECK(e >= 0.5L, "Laplace audit has no power: eps_lower %.4Lf", e);
    /* Δ = 3 at ε = 0.5. */
    e = audit(0.5, 0, 3, 20000, 62);
    printf("audit: Laplace eps 0.5, sens 3: eps_lower %.4Lf\n", e);
    CHECK(e <= 0.5L && e >= 0.2L, "Laplace audit (eps 0.5, sens 3): eps_lower %.4Lf", e);
    /* (ε, δ) = (1, 1e-5) with the discrete Gaussian. */
    e = audit(1.0, 1e-5, 1, 20000, 63);
    printf("audit: Gaussian (1, 1e-5), sens 1: eps_lower %.4Lf\n", e);
    CHECK(e <= 1.0L, "Gaussian audit: eps_lower %.4Lf exceeds the claimed 1", e);
    e = audit(1.0, 1e-5, 4, 20000, 64);
    printf("audit: Gaussian (1, 1e-5), sens 4: eps_lower %.4Lf\n", e);
    CHECK(e <= 1.0L, "Gaussian audit (sens 4): eps_lower %.4Lf exceeds the claimed 1", e);
}

int main(void)
{
    test_chacha20_rfc8439();
    test_os_keyed();
    test_below_uniform();
    test_bernoulli_exp();
    test_discrete_laplace();
    test_discrete_gaussian();
    test_square_divmod();
    test_laplace_calibration();
    test_gaussian_calibration();
    test_coarsening();
    test_release_errors();
    test_privacy_audit();
    return check_done();
}
