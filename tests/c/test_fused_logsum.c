/* The fused log-sum microkernel (ukr.h: fused_logsum_f64/f32) of every table this CPU runs that
 * has one, against a long-double loop over the same packed inputs and against the reference
 * table's three passes (stat → apply in log space → logsum): gaussian and the laplacian family,
 * float64 and float32, mr = 1..8, n = 16, 32, 256, D from 0 to 64, log-weights that are all 0, all
 * equal, of widely varying size, partly or wholly -inf (zero weights, padding, a first panel of
 * zero weights), rising along the chunk (so rows move their reference in the middle of a chunk),
 * one-hot; queries so far away that every term underflows; the cases it must decline;
 * repeatability. Then the public gram_kernel_logsum: against log(gram_kernel_sum), against long
 * double where every term underflows, with zero weights, and bit-identical across thread counts.
 * Arrays have their exact sizes so the sanitizer build catches reads outside them. */
#include "fused_common.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static check_rng rng = {20261123u};

/* The documented bounds (ukr_logsum.inc): |error of log S·e^MX| ≤ BASE + statistic's own error
 * + u·Σ_j p_j (|z_j| + |c_j|), p_j the share of term j in the sum, z_j = its log relative to the
 * reference, c_j = its log-weight relative to the reference (0 for a uniform chunk). BASE: exp's
 * 2 ulp, and in float32 the float run of ≤ 4 terms, the weight factor and the product. */
#define BASE_F32 6.0e-7L
#define BASE_F64 2.0e-14L

typedef long double ld;

static const int64_t NS[] = {16, 32, 256};
static const int64_t DS[] = {0, 1, 2, 3, 5, 17, 64};

enum wmode {
    W_UNIT,       /* every weight 1: lw = 0 (W = NULL in the driver) */
    W_EQUAL,      /* every weight 1e-3: a uniform chunk with lw ≠ 0 */
    W_VARIED,     /* lw uniform in [-40, 40] */
    W_HUGE,       /* lw uniform in [-700, 0]: weights from e^-700 to 1 */
    W_ZEROS,      /* random weights, a third of them zero, and the last 3 zero (padding) */
    W_FIRST_ZERO, /* the whole first panel zero, then random */
    W_RISING,     /* lw = 0.6·j: every panel tops the one before by ~10 (> LS_T for float32) */
    W_ONEHOT,     /* a single non-zero weight, in the last panel */
    W_ALLZERO,    /* every weight zero: MX = -inf, S = 0 */
    W_NMODES
};
static const char *WNAMES[] = {"unit", "equal", "varied", "huge", "zeros", "first-zero", "rising", "one-hot", "all-zero"};

static ld logf_ld(gram_family f, ld t) { return f == GRAM_GAUSSIAN ? -0.5L * t : -sqrtl(t); }

static double worst[2][2]; /* [f32][vs long double, vs three passes]: error / allowed */
static double worst_abs[2][2]; /* [f32][vs long double, vs three passes]: largest |error|, moderate arguments */
static char worst_where[2][200], worst_ratio_where[2][200];
static long n_events_cases;  /* cases in W_RISING that ran (they exercise ls_cold) */

/* One call: mr rows × n points in D dimensions; the query rows sit at distance ~far from the data
 * (0: mixed in). */
static void test_one(const gram__ukr *u, gram_family fam, int f32, int64_t mr, int64_t n, int64_t D,
                     enum wmode wm, double far)
{
    double one = 1.0;
    gram__leaf L = make_leaf(fam, &one);
    size_t es = f32 ? sizeof(float) : sizeof(double);
    /* coordinates N(0, 1/D)·1.5: t of order 4.5 (log f of order -2); far moves the queries out
     * along every axis so that t ≈ far² */
    double sd = 1.5 / sqrt((double)(D > 0 ? D : 1)), off = far / sqrt((double)(D > 0 ? D : 1));
    fused_tile Tl = fused_tile_make(&rng, f32, mr, n, D, sd, off);
    const void *y = Tl.y, *xp = Tl.xp;
    const ld *yl = Tl.yl, *xl = Tl.xl;
    void *T = aligned_alloc(64, (size_t)(GRAM_MR * n) * es);
    double *LW = xmalloc((size_t)n * sizeof *LW), MX[GRAM_MR], S[GRAM_MR], MX2[GRAM_MR], S2[GRAM_MR];
    double MX3[GRAM_MR], S3[GRAM_MR];
    for (int64_t j = 0; j < n; j++) {
        double lw;
        switch (wm) {
        case W_UNIT: lw = 0.0; break;
        case W_EQUAL: lw = log(1e-3); break;
        case W_VARIED: lw = -40.0 + 80.0 * check_uniform(&rng); break;
        case W_HUGE: lw = -700.0 * check_uniform(&rng); break;
        case W_ZEROS: lw = j >= n - 3 || check_uniform(&rng) < 0.33 ? -INFINITY : log(0.05 + check_uniform(&rng)); break;
        case W_FIRST_ZERO: lw = j < GRAM_PANEL ? -INFINITY : log(0.05 + check_uniform(&rng)); break;
        case W_RISING: lw = 0.6 * (double)j + 0.1 * check_uniform(&rng); break;
        case W_ONEHOT: lw = j == n - 5 ? log(0.3) : -INFINITY; break;
        default: lw = -INFINITY; break;
        }
        LW[j] = lw;
    }
    const char *what = f32 ? "f32" : "f64";
    int ok = f32 ? u->fused_logsum_f32(&L, mr, n, D, y, xp, LW, 1, MX, S)
                 : u->fused_logsum_f64(&L, mr, n, D, y, xp, LW, 1, MX, S);
    CHECK(ok == 1, "%s fused_logsum_%s %s: declined", u->name, what, gram__family_name(fam));
    if (ok != 1) goto done;
    if (wm == W_RISING) n_events_cases++;
    /* the same inputs again: the same bits */
    if (f32) u->fused_logsum_f32(&L, mr, n, D, y, xp, LW, 1, MX2, S2);
    else u->fused_logsum_f64(&L, mr, n, D, y, xp, LW, 1, MX2, S2);
    CHECK(memcmp(MX, MX2, (size_t)mr * sizeof *MX) == 0 && memcmp(S, S2, (size_t)mr * sizeof *S) == 0,
          "%s fused_logsum_%s: not repeatable", u->name, what);
    /* the table's own three passes: the same statistic bit for bit (stat's order), so the
     * difference is the fused kernel's own error and the three passes' (float64) roundings */
    if (f32) {
        u->stat_f32(GRAM_STRUCT_SQDIST, mr, n, D, y, xp, T, n);
        u->apply_f32(&L, 1, mr, n, T, n, NULL, NULL);
        u->logsum_f32(mr, n, T, n, LW, 1, MX3, S3);
    } else {
        u->stat_f64(GRAM_STRUCT_SQDIST, mr, n, D, y, xp, T, n);
        u->apply_f64(&L, 1, mr, n, T, n, NULL, NULL);
        u->logsum_f64(mr, n, T, n, LW, 1, MX3, S3);
    }
    const ld uu = f32 ? ldexpl(1.0L, -24) : ldexpl(1.0L, -53);
    const ld base = f32 ? BASE_F32 : BASE_F64;
    const ld dl = (D + 2) * uu; /* the statistic's relative rounding, as in test_fused.c */
    const int uniform = wm == W_UNIT || wm == W_EQUAL;
    for (int64_t i = 0; i < mr; i++) {
        ld a[GRAM_KC], t[GRAM_KC], amax = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            ld tt = 0;
            for (int64_t d = 0; d < D; d++) {
                ld e = yl[i * D + d] - xl[j * D + d];
                tt += e * e;
            }
            t[j] = tt;
            a[j] = logf_ld(fam, tt) + (ld)LW[j];
            if (a[j] > amax) amax = a[j];
        }
        char where[160];
        snprintf(where, sizeof where, "%s fused_logsum_%s %s w=%s far=%g mr=%lld n=%lld D=%lld row %lld", u->name,
                 what, gram__family_name(fam), WNAMES[wm], far, (long long)mr, (long long)n, (long long)D,
                 (long long)i);
        if (amax == -INFINITY) {
            CHECK(MX[i] == -INFINITY && S[i] == 0.0, "%s: MX = %g, S = %g, want -inf, 0", where, MX[i], S[i]);
            continue;
        }
        CHECK(isfinite(MX[i]) && S[i] > 0 && isfinite(S[i]), "%s: MX = %g, S = %g, want finite, S > 0", where,
              MX[i], S[i]);
        if (!(isfinite(MX[i]) && S[i] > 0 && isfinite(S[i]))) continue;
        ld sum = 0;
        for (int64_t j = 0; j < n; j++) sum += expl(a[j] - amax);
        const ld want = amax + logl(sum), got = (ld)MX[i] + logl((ld)S[i]);
        const ld got3 = (ld)MX3[i] + logl((ld)S3[i]);
        /* the allowed error: shares p_j of the terms, each with its statistic's error moved through
         * log f, and the kernel's own u·(|z| + |c|) (z, c relative to the returned MX) */
        ld slack_stat = 0, slack_zc = 0, slack_3 = 0;
        for (int64_t j = 0; j < n; j++) {
            if (a[j] == -INFINITY) continue;
            ld p = expl(a[j] - want);
            slack_stat += p * fabsl(logf_ld(fam, t[j] * (1 + dl)) - logf_ld(fam, t[j]));
            slack_zc += p * uu * (fabsl(a[j] - (ld)MX[i]) + (uniform ? 0 : fabsl((ld)LW[j] - (ld)MX[i])));
            /* the three passes round T + lw and T + lw - MX in float64, and both paths round √t */
            slack_3 += p * ldexpl(1.0L, -53) * (fabsl(a[j]) + fabsl(a[j] - (ld)MX3[i]) + 4);
            if (fam != GRAM_GAUSSIAN) slack_3 += p * uu * 2 * sqrtl(t[j]);
        }
        const ld allow = base + slack_stat + slack_zc, allow3 = base + slack_zc + slack_3;
        const ld e_ld = fabsl(got - want), e_3 = fabsl(got - got3);
        if ((double)(e_ld / allow) > worst[f32][0]) worst[f32][0] = (double)(e_ld / allow);
        if ((double)(e_3 / allow3) > worst[f32][1]) {
            worst[f32][1] = (double)(e_3 / allow3);
            snprintf(worst_ratio_where[f32], sizeof worst_ratio_where[f32], "%s: %.3Lg of %.3Lg", where, e_3, allow3);
        }
        if (far == 0 && (double)e_ld > worst_abs[f32][0]) worst_abs[f32][0] = (double)e_ld;
        if (far == 0 && (double)e_3 > worst_abs[f32][1]) {
            worst_abs[f32][1] = (double)e_3;
            snprintf(worst_where[f32], sizeof worst_where[f32], "%s (allowed %.3Lg)", where, allow3);
        }
        CHECK(e_ld <= allow, "%s: got %.17Lg, want %.17Lg (error %.3Lg, allowed %.3Lg)", where, got, want, e_ld, allow);
        CHECK(e_3 <= allow3, "%s: got %.17Lg, three passes %.17Lg (difference %.3Lg, allowed %.3Lg)", where, got, got3,
              e_3, allow3);
        /* nothing overflows in the driver's merge: S stays moderate */
        CHECK(S[i] < 1e300 && S[i] > 1e-300, "%s: S = %g", where, S[i]);
    }
done:
    fused_tile_free(&Tl);
    free(T), free(LW);
}

static void test_tiles(const gram__ukr *u)
{
    const gram_family fams[] = {GRAM_GAUSSIAN, GRAM_LAPLACIAN};
    for (int f32 = 0; f32 <= 1; f32++)
        for (int fi = 0; fi < 2; fi++)
            for (int64_t mr = 1; mr <= GRAM_MR; mr++)
                for (size_t ni = 0; ni < sizeof NS / sizeof NS[0]; ni++)
                    for (size_t di = 0; di < sizeof DS / sizeof DS[0]; di++)
                        for (int wm = 0; wm < W_NMODES; wm++)
                            test_one(u, fams[fi], f32, mr, NS[ni], DS[di], (enum wmode)wm, 0.0);
    /* far queries: every term underflows in absolute terms (gaussian: log f ≈ -2000; laplacian:
     * -√t ≈ -300), and a moderate distance where log f ≈ -50 */
    const double fars[] = {7.0, 63.0, 300.0};
    for (int f32 = 0; f32 <= 1; f32++)
        for (int fi = 0; fi < 2; fi++)
            for (size_t k = 0; k < sizeof fars / sizeof fars[0]; k++)
                for (int64_t mr = 1; mr <= GRAM_MR; mr += 3)
                    for (size_t di = 1; di < sizeof DS / sizeof DS[0]; di++)
                        for (int wm = 0; wm < W_NMODES; wm++)
                            test_one(u, fams[fi], f32, mr, 256, DS[di], (enum wmode)wm, fars[k]);
    printf("  worst error / allowed: f64 %.3g (vs long double), %.3g (vs three passes); f32 %.3g, %.3g\n",
           worst[0][0], worst[0][1], worst[1][0], worst[1][1]);
    printf("    (f32 vs three passes at %s)\n", worst_ratio_where[1]);
    printf("  worst |log-sum error| at moderate arguments vs long double: f64 %.3g, f32 %.3g; vs three passes: f64 %.3g, "
           "f32 %.3g\n    (at %s)\n", worst_abs[0][0], worst_abs[1][0], worst_abs[0][1], worst_abs[1][1], worst_where[1]);
    CHECK(n_events_cases > 0, "no rising-weights case ran");
}

/* The laplacian family's other names take the same kernel; the same bits. */
static void test_aliases(const gram__ukr *u)
{
    enum { mr = 5, n = 64, D = 3 };
    double one = 1.0, yd[mr * D], xd[n * D], LW[n], MX[3][mr], S[3][mr];
    for (int k = 0; k < mr * D; k++) yd[k] = check_normal(&rng);
    for (int k = 0; k < n * D; k++) xd[k] = check_normal(&rng);
    for (int k = 0; k < n; k++) LW[k] = log(0.1 + check_uniform(&rng));
    const gram_family fams[] = {GRAM_LAPLACIAN, GRAM_MATERN12, GRAM_EXPONENTIAL};
    for (int f = 0; f < 3; f++) {
        gram__leaf L = make_leaf(fams[f], &one);
        CHECK(u->fused_logsum_f64(&L, mr, n, D, yd, xd, LW, 1, MX[f], S[f]) == 1, "%s: declined %s", u->name,
              gram__family_name(fams[f]));
    }
    CHECK(memcmp(MX[0], MX[1], sizeof MX[0]) == 0 && memcmp(MX[0], MX[2], sizeof MX[0]) == 0 &&
              memcmp(S[0], S[1], sizeof S[0]) == 0 && memcmp(S[0], S[2], sizeof S[0]) == 0,
          "%s: laplacian, matern12 and exponential differ", u->name);
}

static void test_declines(const gram__ukr *u)
{
    enum { n = 32, D = 2, mr = 3 };
    double one = 1.0, yd[mr * D], xd[n * D], LW[n * 2], MX[mr * 2], S[mr * 2];
    float yf[mr * D], xf[n * D];
    for (int k = 0; k < mr * D; k++) yd[k] = yf[k] = (float)check_normal(&rng);
    for (int k = 0; k < n * D; k++) xd[k] = xf[k] = (float)check_normal(&rng);
    for (int k = 0; k < n * 2; k++) LW[k] = 0.0;
    gram__leaf g = make_leaf(GRAM_GAUSSIAN, &one);
    CHECK(u->fused_logsum_f64(&g, mr, n, D, yd, xd, LW, 2, MX, S) == 0, "%s: fused_logsum took V = 2", u->name);
    CHECK(u->fused_logsum_f32(&g, mr, n, D, yf, xf, LW, 2, MX, S) == 0, "%s: fused_logsum took V = 2", u->name);
    const gram_family other[] = {GRAM_MATERN32, GRAM_MATERN52, GRAM_CAUCHY, GRAM_EPANECHNIKOV, GRAM_TOPHAT,
                                 GRAM_RATIONAL_QUADRATIC, GRAM_LAPLACIAN_L1, GRAM_LINEAR};
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
        gram__leaf L = make_leaf(other[k], &one);
        CHECK(u->fused_logsum_f64(&L, mr, n, D, yd, xd, LW, 1, MX, S) == 0, "%s: fused_logsum took %s", u->name,
              gram__family_name(other[k]));
        CHECK(u->fused_logsum_f32(&L, mr, n, D, yf, xf, LW, 1, MX, S) == 0, "%s: fused_logsum took %s", u->name,
              gram__family_name(other[k]));
    }
    /* the structure decides, not the family alone */
    g.structure = GRAM_STRUCT_L1;
    CHECK(u->fused_logsum_f64(&g, mr, n, D, yd, xd, LW, 1, MX, S) == 0, "%s: fused_logsum took an L1 leaf", u->name);
}

/* ------------------------------------------------------------------------------------------ */
/* the public API                                                                              */
/* ------------------------------------------------------------------------------------------ */

static const char *ARCHS[] = {"auto", "avx2", "avx512"};

static ld ld_logsum(const gram_family fam, double h, const ld *y, const ld *X, const double *w, int64_t N, int64_t D)
{
    ld amax = -INFINITY, s = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t j = 0; j < N; j++) {
            if (w && !(w[j] > 0)) continue;
            ld t = 0;
            for (int64_t d = 0; d < D; d++) {
                ld e = (y[d] - X[j * D + d]) / h;
                t += e * e;
            }
            ld a = logf_ld(fam, t) + (w ? logl((ld)w[j]) : 0);
            if (pass == 0) amax = a > amax ? a : amax;
            else s += expl(a - amax);
        }
    return amax == -INFINITY ? -INFINITY : amax + logl(s);
}

static void test_api(int arch)
{
    gram_context *ctx = NULL;
    CHECK_STATUS(gram_context_create(&ctx), GRAM_OK);
    CHECK_STATUS(gram_context_set_arch(ctx, ARCHS[arch]), GRAM_OK);
    const char *specs[] = {"gaussian(lengthscale=0.7)", "laplacian(lengthscale=1.3)"};
    const gram_family fams[] = {GRAM_GAUSSIAN, GRAM_LAPLACIAN};
    const double hs[] = {0.7, 1.3};
    for (int f32 = 0; f32 <= 1; f32++)
        for (int s = 0; s < 2; s++) {
            gram_kernel *k = NULL;
            CHECK_STATUS(gram_kernel_parse(ctx, specs[s], &k), GRAM_OK);
            enum { N = 1000, M = 45, D = 3 };
            static double xd[N * D], yd[M * D], w[N], wz[N], o1[M], o2[M], o3[M];
            static float xf[N * D], yf[M * D];
            static ld xl[N * D], yl[M * D];
            for (int i = 0; i < N * D; i++) xd[i] = xf[i] = (float)check_normal(&rng), xl[i] = xf[i];
            for (int i = 0; i < M * D; i++) yd[i] = yf[i] = (float)(1.2 * check_normal(&rng)), yl[i] = yf[i];
            for (int i = 0; i < N; i++) w[i] = 0.1 + check_uniform(&rng), wz[i] = i % 3 == 1 ? 0.0 : w[i];
            gram_array X = f32 ? gram_array_f32(xf, N, D) : gram_array_f64(xd, N, D);
            gram_array Y = f32 ? gram_array_f32(yf, M, D) : gram_array_f64(yd, M, D);
            gram_array W = gram_array_f64(w, N, 1), WZ = gram_array_f64(wz, N, 1);
            gram_array O1 = gram_array_f64(o1, M, 1), O2 = gram_array_f64(o2, M, 1), O3 = gram_array_f64(o3, M, 1);
            const ld tol = f32 ? 3e-6L : 1e-12L;
            const char *what = f32 ? "f32" : "f64";
            /* moderate: logsum = log(sum), and both match long double */
            CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &W, &O1), GRAM_OK);
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y, &X, &W, &O2), GRAM_OK);
            for (int i = 0; i < M; i++) {
                CHECK_CLOSE(o2[i], log(o1[i]), 0, tol, "logsum vs log(sum)");
                CHECK_CLOSE(o2[i], ld_logsum(fams[s], hs[s], yl + i * D, xl, w, N, D), 0, tol, "logsum vs long double");
            }
            /* zero weights, and unit weights (W = NULL: a uniform chunk but the last) */
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y, &X, &WZ, &O2), GRAM_OK);
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y, &X, NULL, &O3), GRAM_OK);
            for (int i = 0; i < M; i++) {
                CHECK_CLOSE(o2[i], ld_logsum(fams[s], hs[s], yl + i * D, xl, wz, N, D), 0, tol, "logsum, zero weights");
                CHECK_CLOSE(o3[i], ld_logsum(fams[s], hs[s], yl + i * D, xl, NULL, N, D), 0, tol, "logsum, W = NULL");
            }
            /* threads: 1 and 2 give the same bits, both for the row split (many rows) and the
             * chunk split (M = 45: 6 row tiles < 4 per thread) */
            CHECK_STATUS(gram_context_set_threads(ctx, 1), GRAM_OK);
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y, &X, &W, &O1), GRAM_OK);
            CHECK_STATUS(gram_context_set_threads(ctx, 2), GRAM_OK);
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y, &X, &W, &O2), GRAM_OK);
            CHECK(memcmp(o1, o2, sizeof o1) == 0, "%s %s %s: logsum differs between 1 and 2 threads", ARCHS[arch],
                  specs[s], what);
            {
                gram_array Yr = f32 ? gram_array_f32(xf, N, D) : gram_array_f64(xd, N, D); /* 1000 rows */
                static double r1[N], r2[N];
                gram_array R1 = gram_array_f64(r1, N, 1), R2 = gram_array_f64(r2, N, 1);
                CHECK_STATUS(gram_context_set_threads(ctx, 1), GRAM_OK);
                CHECK_STATUS(gram_kernel_logsum(ctx, k, &Yr, &X, &WZ, &R1), GRAM_OK);
                CHECK_STATUS(gram_context_set_threads(ctx, 2), GRAM_OK);
                CHECK_STATUS(gram_kernel_logsum(ctx, k, &Yr, &X, &WZ, &R2), GRAM_OK);
                CHECK(memcmp(r1, r2, sizeof r1) == 0, "%s %s %s: logsum (row split) differs between 1 and 2 threads",
                      ARCHS[arch], specs[s], what);
            }
            /* far queries: every term underflows, the log-sum is finite and right */
            for (int i = 0; i < M * D; i++) yd[i] = yf[i] = (float)(yf[i] + 40.0), yl[i] = yf[i];
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y, &X, &W, &O2), GRAM_OK);
            CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &W, &O1), GRAM_OK);
            for (int i = 0; i < M; i++) {
                ld want = ld_logsum(fams[s], hs[s], yl + i * D, xl, w, N, D);
                CHECK(isfinite(o2[i]), "%s %s %s: far logsum %g", ARCHS[arch], specs[s], what, o2[i]);
                /* the statistic's own float32 rounding grows with t ≈ 5000 (gaussian) */
                CHECK_CLOSE(o2[i], want, f32 ? 2e-6L : 1e-12L, 0, "far logsum vs long double");
            }
            if (s == 0) CHECK(o1[0] == 0.0, "far gaussian sum should underflow to 0, got %g", o1[0]);
            /* every weight zero: -inf */
            for (int i = 0; i < N; i++) wz[i] = 0.0;
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y, &X, &WZ, &O2), GRAM_OK);
            for (int i = 0; i < M; i++) CHECK(o2[i] == -INFINITY, "all-zero weights: got %g, want -inf", o2[i]);
            gram_context_set_threads(ctx, 0);
            gram_kernel_destroy(k);
        }
    gram_context_destroy(ctx);
}

int main(void)
{
    const gram__ukr *tables[3];
    int arch[3], arch_ok[3] = {0, 0, 0};
    int nt = fused_tables(tables, arch);
    for (int k = 0; k < nt; k++) arch_ok[arch[k]] = 1;
    for (int k = 0; k < nt; k++) {
        const gram__ukr *u = tables[k];
        CHECK((u->fused_logsum_f64 == NULL) == (u->fused_logsum_f32 == NULL),
              "%s: one fused log-sum entry without the other", u->name);
        if (!u->fused_logsum_f64) {
            printf("table %s: no fused log-sum kernel\n", u->name);
            continue;
        }
        printf("table %s\n", u->name);
        memset(worst, 0, sizeof worst);
        memset(worst_abs, 0, sizeof worst_abs);
        test_tiles(u);
        test_aliases(u);
        test_declines(u);
    }
    for (int a = 0; a < 3; a++)
        if (arch_ok[a]) test_api(a);
    return check_done();
}
