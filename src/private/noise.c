/* noise: exact integer noise and the release step.
 *
 * Samplers: Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential Privacy" (NeurIPS
 * 2020, arXiv 2004.00010), Algorithm 1 (Bernoulli(e^-γ) for a rational γ), Algorithm 2 (discrete
 * Laplace with a rational scale) and Algorithm 3 (discrete Gaussian with a rational σ²), in
 * integers only: every probability they use is a ratio of integers, drawn as "a uniform integer
 * below q is below p", so the output distributions are exactly the stated ones (up to the
 * generator), with no floating-point rounding for the data to leak through (Mironov, CCS 2012).
 *
 * Integer bounds (u128 = unsigned __int128):
 *   - Bernoulli(e^(-num/den)): any num, den < 2^128, den ≥ 1; only ratios and a loop counter.
 *   - discrete Laplace, b = num/den: any num, den ≥ 1 in 64 bits. X = U + num·V < 2^128 for
 *     V < 2^64 (V is geometric with mean 1/(e-1): reaching 2^64 is never). |result| saturates at
 *     INT64_MAX, which gram__release treats as overflow; it keeps b ≤ 2^40 so that cannot happen
 *     in practice (P(|Z| ≥ 2^62) ≤ e^(-2^22)).
 *   - discrete Gaussian, σ² = num/den: num ≤ 2^60, den ≤ 2^40 (GAUSS_NUM_MAX, GAUSS_DEN_MAX).
 *     With t = floor(σ) + 1: den·t ≤ √(num·den) + den < 2^51 and den·t² ≤ num + 2√(num·den) + den
 *     < 2^61, so the acceptance exponent γ = (|Y|·t·den − num)² / (2·num·den·t²) has a
 *     denominator below 2^122 and |Y|·t·den below 2^114 for any int64 Y. Its square is taken in
 *     128 bits when |Y|·t·den − num < 2^64 and in 256 bits (two u128) otherwise.
 *
 * Release (gram__release): the integer statistic, optionally rounded to a coarser grid, plus
 * discrete Laplace noise (δ = 0) or discrete Gaussian noise (δ > 0) calibrated from its
 * sensitivity; see the comments there. */
#include "private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef unsigned __int128 u128;
__extension__ typedef __int128 i128;

#define GAUSS_NUM_MAX ((uint64_t)1 << 60)
#define GAUSS_DEN_MAX ((uint64_t)1 << 40)
#define LAPLACE_NUM_MAX ((uint64_t)1 << 62)
#define LAPLACE_B_MAX 1099511627776.0 /* 2^40 grid units */
#define VALUE_MAX ((int64_t)1 << 61)  /* |rounded value| before noise */

/* ---- the samplers ------------------------------------------------------------------------- */

/* Uniform on {0, ..., n - 1}, n ≥ 1, exactly (as gram__csprng_below, for 128-bit n). */
static u128 below128(gram__csprng *r, u128 n)
{
    if (n >> 64 == 0) return gram__csprng_below(r, (uint64_t)n);
    u128 floor_ = (0 - n) % n;
    u128 x;
    do x = (u128)gram__csprng_u64(r) << 64 | gram__csprng_u64(r);
    while (x < floor_);
    return x % n;
}

/* Bernoulli(p/q), 0 ≤ p ≤ q, q ≥ 1. */
static int bern_ratio(gram__csprng *r, u128 p, u128 q) { return below128(r, q) < p; }

/* Bernoulli(e^(-γ)) for γ = num/den ∈ [0, 1] (Algorithm 1's first branch): count K up while
 * Bernoulli(γ/K) succeeds; P(K odd) = Σ_k (-γ)^k/k! = e^(-γ). Bernoulli(γ/K) is drawn as
 * Bernoulli(num/den) and Bernoulli(1/K) both succeeding (independent), so no product num·K is
 * formed. */
static int bern_exp_le1(gram__csprng *r, u128 num, u128 den)
{
    uint64_t k = 1;
    while (bern_ratio(r, num, den) && gram__csprng_below(r, k) == 0) k++;
    return (int)(k & 1);
}

/* Bernoulli(e^(-(q + rem/den))) for rem < den: q independent Bernoulli(e^(-1)) all succeeding,
 * then Bernoulli(e^(-rem/den)) (Algorithm 1's second branch). q_hi ≠ 0 stands for q ≥ 2^128: the
 * loop then stops only at a failure, which differs from the algorithm only on an event of
 * probability below e^(-2^128). */
static int bern_exp_split(gram__csprng *r, u128 q_hi, u128 q, u128 rem, u128 den)
{
    if (q_hi) {
        while (bern_exp_le1(r, 1, 1)) {
        }
        return 0;
    }
    for (u128 i = 0; i < q; i++)
        if (!bern_exp_le1(r, 1, 1)) return 0;
    return bern_exp_le1(r, rem, den);
}

static int bern_exp128(gram__csprng *r, u128 num, u128 den)
{
    return bern_exp_split(r, 0, num / den, num % den, den);
}

int gram__bernoulli_exp(gram__csprng *r, uint64_t num, uint64_t den)
{
    if (den == 0) return num == 0; /* no γ: the caller broke the contract; refuse to draw */
    return bern_exp128(r, num, den);
}

/* Algorithm 2 with t = num, s = den: X = U + t·V is geometric with P(X = x) ∝ e^(-x/t) (U uniform
 * below t accepted with probability e^(-U/t), V geometric with P(V = v) ∝ e^(-v)), Y = ⌊X/s⌋ is
 * geometric with ratio e^(-s/t), and a random sign with Y = 0, B = 1 rejected makes
 * P(Z = z) ∝ e^(-|z|·s/t). */
int64_t gram__discrete_laplace(gram__csprng *r, uint64_t num, uint64_t den)
{
    if (num == 0 || den == 0) return 0;
    for (;;) {
        uint64_t u = gram__csprng_below(r, num);
        if (!bern_exp128(r, u, num)) continue;
        uint64_t v = 0;
        while (bern_exp_le1(r, 1, 1)) v++;
        u128 x = (u128)u + (u128)num * v;
        u128 y = x / den;
        int b = (int)(gram__csprng_u32(r) & 1);
        if (b && y == 0) continue;
        int64_t m = y > (u128)INT64_MAX ? INT64_MAX : (int64_t)y;
        return b ? -m : m;
    }
}

/* w² / D for w < 2^114, D < 2^122 (D ≥ 1), by schoolbook long division of the 256-bit square:
 * quotient (*q_hi, *q_lo) and remainder. Only reached when w ≥ 2^64, i.e. for a Laplace proposal
 * thousands of scales out. */
static void square_divmod(u128 w, u128 D, u128 *q_hi, u128 *q_lo, u128 *rem)
{
    u128 a = w >> 64, b = (uint64_t)w;
    u128 lo = b * b, mid = 2 * a * b, hi = a * a; /* a < 2^50: 2ab < 2^115, a² < 2^100 */
    u128 L = lo + (mid << 64);
    u128 H = hi + (mid >> 64) + (L < lo);
    u128 rr = 0, qh = 0, ql = 0;
    for (int i = 255; i >= 0; i--) {
        unsigned bit = i >= 128 ? (unsigned)(H >> (i - 128)) & 1u : (unsigned)(L >> i) & 1u;
        rr = rr << 1 | bit; /* rr < D < 2^122 before the shift */
        if (rr >= D) {
            rr -= D;
            if (i >= 128) qh |= (u128)1 << (i - 128);
            else ql |= (u128)1 << i;
        }
    }
    *q_hi = qh, *q_lo = ql, *rem = rr;
}

void gram__square_divmod(const uint64_t w[2], const uint64_t D[2], uint64_t q[4], uint64_t rem[2])
{
    u128 qh, ql, rr;
    square_divmod((u128)w[1] << 64 | w[0], (u128)D[1] << 64 | D[0], &qh, &ql, &rr);
    q[0] = (uint64_t)ql, q[1] = (uint64_t)(ql >> 64), q[2] = (uint64_t)qh, q[3] = (uint64_t)(qh >> 64);
    rem[0] = (uint64_t)rr, rem[1] = (uint64_t)(rr >> 64);
}

/* floor(√(num/den)): the largest k with k²·den ≤ num. */
static uint64_t floor_sqrt_ratio(uint64_t num, uint64_t den)
{
    uint64_t k = (uint64_t)sqrtl((long double)num / (long double)den);
    while (k > 0 && (u128)k * k * den > num) k--;
    while ((u128)(k + 1) * (k + 1) * den <= num) k++;
    return k;
}

/* Algorithm 3: propose Y from the discrete Laplace with scale t = ⌊σ⌋ + 1 and accept it with
 * probability e^(-(|Y| - σ²/t)²/(2σ²)), which leaves P(Y = y) ∝ e^(-y²/(2σ²)). With σ² = n/d the
 * exponent is (|Y|·t·d − n)² / (2·n·d·t²), a ratio of integers. Requires num ≤ 2^60 and
 * den ≤ 2^40 (see the file's comment); 0 for parameters outside. */
int64_t gram__discrete_gaussian(gram__csprng *r, uint64_t num, uint64_t den)
{
    if (num == 0 || den == 0 || num > GAUSS_NUM_MAX || den > GAUSS_DEN_MAX) return 0;
    uint64_t t = floor_sqrt_ratio(num, den) + 1;
    u128 D = (u128)2 * num * ((u128)den * t * t);
    u128 dt = (u128)den * t;
    for (;;) {
        int64_t y = gram__discrete_laplace(r, t, 1);
        u128 ay = y < 0 ? (u128)(-(i128)y) : (u128)y;
        u128 p = ay * dt;
        u128 w = p >= num ? p - num : num - p;
        int ok;
        if (w >> 64 == 0) ok = bern_exp128(r, w * w, D);
        else {
            u128 qh, ql, rem;
            square_divmod(w, D, &qh, &ql, &rem);
            ok = bern_exp_split(r, qh, ql, rem, D);
        }
        if (ok) return y;
    }
}

/* ---- calibration -------------------------------------------------------------------------- */

/* a·ε ≥ c·2^k, exactly, for ε > 0 finite: with ε = M·2^E (M < 2^53 an integer) it is
 * a·M ≥ c·2^(k−E), compared in 128 bits (a·M < 2^117). */
static int ge_scaled(uint64_t a, double eps, uint64_t c, int k)
{
    int e;
    double f = frexp(eps, &e);
    uint64_t M = (uint64_t)ldexp(f, 53);
    int E = e - 53;
    u128 P = (u128)a * M;
    int sh = k - E;
    if (sh >= 0) {
        if (c == 0) return 1;
        if (sh >= 128 || (u128)c > (~(u128)0 >> sh)) return 0;
        return P >= (u128)c << sh;
    }
    int ns = -sh;
    if (P == 0) return c == 0;
    if (ns >= 128 || P > (~(u128)0 >> ns)) return 1;
    return (P << ns) >= (u128)c;
}

/* The smallest num with num/2^k ≥ sens/ε, k chosen as large as keeps num ≤ 2^62 (so b's rounding
 * costs at most a relative 2^-21 at b ≤ 2^40). 0 if b = sens/ε exceeds LAPLACE_B_MAX. */
static int laplace_param(uint64_t sens, double eps, uint64_t *num, uint64_t *den)
{
    long double b = (long double)sens / (long double)eps;
    if (!(b <= LAPLACE_B_MAX)) return 0;
    int k = 62;
    while (k > 0 && ldexpl(b, k) > (long double)LAPLACE_NUM_MAX / 2) k--;
    long double guess = ceill(ldexpl(b, k));
    uint64_t n = guess < 1 ? 1 : (uint64_t)guess;
    while (!ge_scaled(n, eps, sens, k)) n++;
    while (n > 1 && ge_scaled(n - 1, eps, sens, k)) n--;
    *num = n;
    *den = (uint64_t)1 << k;
    return 1;
}

/* ρ-zCDP ⇒ (ε, δ)-DP with δ = inf_{α>1} e^((α−1)(αρ−ε)) / (α−1) · (1 − 1/α)^α (Canonne, Kamath &
 * Steinke 2020, Corollary 13; tighter than Bun & Steinke 2016's ε = ρ + 2√(ρ log(1/δ))). Every
 * α > 1 gives a valid bound, so the minimiser only needs to be near-optimal: it is found by
 * bisection on the derivative of the exponent, (2α−1)ρ − ε + log(1 − 1/α), which increases in α.
 * Evaluated in long double and returned as is (callers keep a relative margin). */
long double gram__zcdp_delta(long double rho, long double eps)
{
    if (!(rho > 0)) return 0;
    long double lo = 1, hi = (eps + 1) / (2 * rho) + 2;
    for (int i = 0; i < 100; i++) {
        long double a = (lo + hi) / 2;
        long double der = (2 * a - 1) * rho - eps + log1pl(-1 / a);
        if (der < 0) lo = a;
        else hi = a;
    }
    long double a = (lo + hi) / 2;
    if (!(a > 1)) a = nextafterl(1, 2);
    long double ld = (a - 1) * (a * rho - eps) + a * log1pl(-1 / a) - logl(a - 1);
    long double d = expl(ld);
    return d < 1 ? d : 1;
}

/* The discrete Gaussian's zCDP parameter for a statistic whose ℓ2 sensitivity is sens2 (integer
 * shifts): ρ = sens2²/(2σ²). For one coordinate and an integer shift μ the two output laws share
 * their normaliser, and their Rényi divergence of order α is
 *   (1/(α−1))·log[e^(α(α−1)μ²/(2σ²)) · θ((1−α)μ)/θ(0)],  θ(c) = Σ_x e^(-(x−c)²/(2σ²)),
 * where θ(c) ≤ θ(0) for every real c (Poisson summation writes θ as a cosine series with positive
 * coefficients): at most αμ²/(2σ²), CKS 2020's Theorem 4 argument. Independent coordinates add
 * their divergences, so the vector costs α‖μ‖²/(2σ²) ≤ α·sens2²/(2σ²): CKS's multivariate
 * statement, with no correction term. (The correction τ = 10·Σ_k e^(-2π²σ²·k/(k+1)) known from
 * this literature is for a *sum* of independent discrete Gaussians, which is not a discrete
 * Gaussian — Kairouz, Liu & Steinke, "The Distributed Discrete Gaussian Mechanism", ICML 2021 —
 * not for one draw per coordinate as here.) */
static long double gauss_rho(long double sens2, long double sigma2) { return sens2 * sens2 / (2 * sigma2); }

/* Margin for floating-point evaluation of the conversion: the computed δ must be below the asked
 * one by this relative amount (the long-double evaluation errs by far less). */
#define DELTA_MARGIN 1e-9L

long double gram__gauss_delta(long double sens2, long double sigma2, long double eps)
{
    return gram__zcdp_delta(gauss_rho(sens2, sigma2), eps);
}

/* The smallest σ² meeting (ε, δ) for ℓ2 sensitivity sens2, as num/2^k rounded up, with
 * num ≤ 2^60 and k ≤ 40; 0 if σ² is beyond that. δ(ρ) increases with ρ, so the largest valid ρ
 * is found by bisection and then σ² = sens2²/(2ρ); the rational is then checked, not assumed. */
static int gauss_param_search(double sens2, double eps, double delta, uint64_t *num, uint64_t *den)
{
    long double s2 = sens2 > 1 ? sens2 : 1;
    long double target = (long double)delta * (1 - DELTA_MARGIN);
    long double lo = 0, hi = eps + 1; /* δ(hi) > target: δ ≥ a constant there */
    for (int i = 0; i < 64 && gram__zcdp_delta(hi, eps) <= target; i++) hi *= 2;
    for (int i = 0; i < 100; i++) {
        long double mid = (lo + hi) / 2;
        if (gram__zcdp_delta(mid, eps) <= target) lo = mid;
        else hi = mid;
    }
    if (!(lo > 0)) return 0;
    long double sigma2 = s2 * s2 / (2 * lo);
    if (!(sigma2 <= (long double)GAUSS_NUM_MAX)) return 0;
    int k = 40;
    while (k > 0 && ldexpl(sigma2, k) > (long double)GAUSS_NUM_MAX) k--;
    long double g = ceill(ldexpl(sigma2, k));
    uint64_t n = g < 1 ? 1 : (uint64_t)g;
    /* σ² = n/2^k is at least the bisection's value; confirm the guarantee at exactly this σ²,
     * stepping up by a part in 10^9 while it does not hold (rounding of the long-double search). */
    for (int tries = 0; tries < 64; tries++) {
        long double s = ldexpl((long double)n, -k);
        if (gram__gauss_delta(s2, s, eps) <= target) break;
        uint64_t step = n / 1000000000u;
        n += step ? step : 1;
        if (n > GAUSS_NUM_MAX) return 0;
    }
    if (!(gram__gauss_delta(s2, ldexpl((long double)n, -k), eps) <= target)) return 0;
    *num = n;
    *den = (uint64_t)1 << k;
    return 1;
}

/* The search costs about a millisecond; a caller releasing many statistics with the same
 * parameters (one per class, an audit's thousands) pays it once per thread. A memo of a pure
 * function of its arguments: no data, no noise. */
static int gauss_param(double sens2, double eps, double delta, uint64_t *num, uint64_t *den)
{
    static _Thread_local struct { double sens2, eps, delta; uint64_t num, den; int ok, valid; } memo;
    if (!(memo.valid && memo.sens2 == sens2 && memo.eps == eps && memo.delta == delta)) {
        memo.ok = gauss_param_search(sens2, eps, delta, &memo.num, &memo.den);
        memo.sens2 = sens2, memo.eps = eps, memo.delta = delta, memo.valid = 1;
    }
    *num = memo.num, *den = memo.den;
    return memo.ok;
}

/* ---- release ------------------------------------------------------------------------------ */

/* v / 2^s rounded half away from zero, in integers. */
static int64_t round_shift(int64_t v, int s)
{
    if (s == 0) return v;
    i128 h = (i128)1 << (s - 1);
    i128 x = v;
    return (int64_t)(x >= 0 ? (x + h) >> s : -((-x + h) >> s));
}

/* Coarsening. Rounding each of the m values to the nearest multiple of 2^s moves it by at most
 * half a coarse unit, so two neighbouring statistics v, v' (‖v − v'‖₁ ≤ S₁, ‖v − v'‖₂ ≤ S₂ in
 * fine units) give rounded r, r' with |r_i − r'_i| ≤ |v_i − v'_i|/2^s + 1 (two half units):
 *   ℓ1: ‖r − r'‖₁ ≤ S₁/2^s + m ≤ ⌈S₁/2^s⌉ + m;
 *   ℓ2: ‖r − r'‖₂ ≤ S₂/2^s + ‖(e_i − e'_i)‖₂ ≤ S₂/2^s + √m (each |e_i − e'_i| ≤ 1, triangle
 *       inequality).
 * s = 0 rounds nothing and adds nothing. */
static uint64_t coarse_l1(uint64_t S, int s, int64_t m)
{
    if (s == 0) return S;
    uint64_t q = (S >> s) + ((S & (((uint64_t)1 << s) - 1)) != 0);
    return q + (uint64_t)m;
}

static double coarse_l2(double S2, int s, int64_t m)
{
    if (s == 0) return S2;
    double a = ldexp(S2, -s); /* exact */
    double b = nextafter(sqrt((double)m), INFINITY);
    return nextafter(a + b, INFINITY);
}

/* The largest s keeping the rounding's share of the sensitivity (m in ℓ1, √m in ℓ2) ≤ 0.1% of
 * the total. */
static int choose_shift(const gram__statistic *st, int gaussian)
{
    int best = 0;
    for (int s = 1; s <= 62; s++) {
        int ok;
        if (gaussian) {
            double extra = sqrt((double)st->m);
            ok = extra <= 1e-3 * coarse_l2(st->sens_l2, s, st->m);
        } else {
            double extra = (double)st->m;
            ok = extra <= 1e-3 * (double)coarse_l1(st->sens_l1, s, st->m);
        }
        if (ok) best = s;
        else break;
    }
    return best;
}

gram_status gram__release(gram_context *ctx, const gram__statistic *st, double epsilon, double delta,
                          gram__csprng *r, double *out, gram__release_record *rec)
{
    if (!st || !r || !rec) return gram__fail(ctx, GRAM_EINVAL, "private release: NULL argument");
    if (st->m < 0) return gram__fail(ctx, GRAM_EINVAL, "private release: %lld values", (long long)st->m);
    if (st->m > 0 && (!st->v || !out))
        return gram__fail(ctx, GRAM_EINVAL, "private release: NULL values or output");
    if (!(epsilon > 0) || !isfinite(epsilon))
        return gram__fail(ctx, GRAM_EINVAL, "epsilon must be > 0 and finite, got %g", epsilon);
    if (!(delta >= 0 && delta < 1))
        return gram__fail(ctx, GRAM_EINVAL, "delta must be in [0, 1), got %g", delta);
    if (!(st->unit > 0) || !isfinite(st->unit))
        return gram__fail(ctx, GRAM_EINVAL, "private release: unit must be > 0 and finite, got %g", st->unit);
    if (!(st->sens_l2 >= 0) || !isfinite(st->sens_l2))
        return gram__fail(ctx, GRAM_EINVAL, "private release: l2 sensitivity must be >= 0 and finite, got %g",
                          st->sens_l2);
    int gaussian = delta > 0;
    /* A statistic that no row can move (sensitivity 0) still gets the noise of sensitivity 1:
     * conservative, and it keeps every parameter away from zero. */
    gram__statistic eff = *st;
    if (eff.sens_l1 == 0) eff.sens_l1 = 1;
    if (eff.sens_l2 < 1) eff.sens_l2 = 1;

    int s = eff.allow_coarsen ? choose_shift(&eff, gaussian) : 0;
    uint64_t num = 0, den = 0;
    for (;; s++) {
        int ok = gaussian ? gauss_param(coarse_l2(eff.sens_l2, s, eff.m), epsilon, delta, &num, &den)
                          : laplace_param(coarse_l1(eff.sens_l1, s, eff.m), epsilon, &num, &den);
        if (ok) break;
        if (!eff.allow_coarsen || s >= 62)
            return gram__fail(ctx, GRAM_EOVERFLOW,
                              "private release: the noise needed (sensitivity %llu l1 / %g l2 units at "
                              "epsilon %g, delta %g) is beyond the exact samplers' range (Laplace scale "
                              "2^40 or Gaussian variance 2^60 units)",
                              (unsigned long long)eff.sens_l1, eff.sens_l2, epsilon, delta);
    }

    double step = ldexp(st->unit, s);
    if (!isfinite(step))
        return gram__fail(ctx, GRAM_EOVERFLOW, "private release: unit %g on a grid of 2^%d is not a finite double",
                          st->unit, s);
    int64_t *z = NULL;
    if (st->m > 0) {
        size_t bytes;
        if (!gram__bytes(st->m, sizeof *z, &bytes))
            return gram__fail(ctx, GRAM_EOVERFLOW, "private release: %lld values", (long long)st->m);
        z = gram__alloc(bytes);
        if (!z) return gram__fail(ctx, GRAM_ENOMEM, "private release: no memory for %lld values", (long long)st->m);
    }
    /* The range check comes before any noise is drawn, so a refusal depends on the statistic
     * alone. */
    for (int64_t i = 0; i < st->m; i++) {
        z[i] = round_shift(st->v[i], s);
        if (z[i] > VALUE_MAX || z[i] < -VALUE_MAX) {
            /* The message names the position, never the private value. */
            memset(z, 0, (size_t)(i + 1) * sizeof *z);
            gram__free(z);
            return gram__fail(ctx, GRAM_EOVERFLOW,
                              "private release: value %lld of the statistic is beyond the +-2^61 units "
                              "the release can noise without overflow",
                              (long long)i);
        }
    }
    for (int64_t i = 0; i < st->m; i++) {
        int64_t e = gaussian ? gram__discrete_gaussian(r, num, den) : gram__discrete_laplace(r, num, den);
        int64_t sum;
        if (e == INT64_MAX || e == -INT64_MAX || __builtin_add_overflow(z[i], e, &sum)) {
            memset(z, 0, (size_t)st->m * sizeof *z);
            gram__free(z);
            return gram__fail(ctx, GRAM_EOVERFLOW, "private release: a noised value overflows int64");
        }
        z[i] = sum;
    }
    for (int64_t i = 0; i < st->m; i++) out[i] = (double)z[i] * step;
    gram__free(z);

    memset(rec, 0, sizeof *rec);
    rec->kind = gaussian ? GRAM__NOISE_GAUSSIAN : GRAM__NOISE_LAPLACE;
    rec->epsilon = epsilon;
    rec->delta = delta;
    rec->shift = s;
    rec->sens_l1 = coarse_l1(eff.sens_l1, s, eff.m);
    rec->sens_l2 = coarse_l2(eff.sens_l2, s, eff.m);
    rec->num = num;
    rec->den = den;
    double p = (double)((long double)num / (long double)den);
    rec->scale = step * (gaussian ? sqrt(p) : p);
    return GRAM_OK;
}
