/* The optional fused microkernel (ukr.h: fused_sum_f64/f32) of every table this CPU runs that has
 * one, against the table's own three passes (stat → apply → sum) and a long-double loop over the
 * same packed inputs: every fused family, float64 and float32, mr = 1..8, n = 16, 32, 256, D from
 * 0 to 64; the cases it must decline (V ≠ 1, other structures and families, float32 weights
 * float32 cannot hold); repeatability; and its exp (vmath.inc: expneg_fast) swept through the
 * kernel itself with one-hot weights, so each output is one kernel value. Arrays have their exact
 * sizes so the sanitizer build catches reads outside them. */
#include "fused_common.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static check_rng rng = {20261122u};

/* Documented bounds: vmath.inc (expneg_fast) and gram.h (end-to-end sums). */
#define EXPNEG_ULPS 2.0
#define SUM_RTOL_F64 1e-12L
#define SUM_RTOL_F32 1e-6L

static const int64_t NS[] = {16, 32, 256};
static const int64_t DS[] = {0, 1, 2, 3, 5, 17, 64};

/* ------------------------------------------------------------------------------------------ */
/* sums                                                                                        */
/* ------------------------------------------------------------------------------------------ */

static double worst[2][2]; /* [f32][vs ld, vs three passes]: relative to Σ|f·w| */

static void test_one(const gram__ukr *u, const gram__ukr *three, gram_family fam, int f32, int64_t mr,
                     int64_t n, int64_t D, double scale)
{
    double one = 1.0;
    gram__leaf L = make_leaf(fam, &one);
    size_t es = f32 ? sizeof(float) : sizeof(double);
    /* coordinates N(0, scale/(2D)): E t = scale (1 or 5: gram.h's bound is for t up to 10); a
     * few zero weights as the driver's padding has */
    fused_tile T = fused_tile_make(&rng, f32, mr, n, D, sqrt(0.5 * scale / (double)(D > 0 ? D : 1)), 0.0);
    void *Tt = aligned_alloc(64, (size_t)(GRAM_MR * n) * es);
    long double *kl = xmalloc((size_t)n * sizeof *kl), *sl = xmalloc((size_t)n * sizeof *sl);
    double *W = xmalloc((size_t)n * sizeof *W), P[GRAM_MR], P3[GRAM_MR], P2[GRAM_MR];
    for (int64_t j = 0; j < n; j++) W[j] = j >= n - 3 ? 0.0 : 0.05 + check_uniform(&rng);
    int ok = fused_call_sum(u, &L, &T, W, 1, P);
    CHECK(ok == 1, "%s fused_%s %s: declined", u->name, f32 ? "f32" : "f64", gram__family_name(fam));
    if (ok != 1) goto done;
    /* the same inputs again: the same bits */
    fused_call_sum(u, &L, &T, W, 1, P2);
    CHECK(memcmp(P, P2, (size_t)mr * sizeof *P) == 0, "%s fused: not repeatable", u->name);
    /* the three passes of the reference table */
    fused_three_passes(three, &L, &T, Tt, W, 1, P3);
    const long double rtol = f32 ? SUM_RTOL_F32 : SUM_RTOL_F64;
    for (int64_t i = 0; i < mr; i++) {
        /* the slack: the statistic's own rounding, the same in every path (ref_row) */
        long double want, cond, slack;
        ref_row(fam, f32, T.yl + i * D, T.xl, n, D, kl, sl);
        ref_col(kl, sl, n, W, 1, 0, &want, &cond, &slack);
        long double e_ld = fabsl(P[i] - want), e_3 = fabsl((long double)P[i] - P3[i]);
        if (cond > 0 && fam != GRAM_EPANECHNIKOV) { /* 1 - t: the statistic's error dominates */
            if ((double)(e_ld / cond) > worst[f32][0]) worst[f32][0] = (double)(e_ld / cond);
            if ((double)(e_3 / cond) > worst[f32][1]) worst[f32][1] = (double)(e_3 / cond);
        }
        CHECK(e_ld <= rtol * cond + slack, "%s fused_%s %s mr=%lld n=%lld D=%lld row %lld: got %.17g, want %.17Lg",
              u->name, f32 ? "f32" : "f64", gram__family_name(fam), (long long)mr, (long long)n,
              (long long)D, (long long)i, P[i], want);
        CHECK(e_3 <= 2 * (rtol * cond + slack), "%s fused_%s %s mr=%lld n=%lld D=%lld row %lld: got %.17g, three passes %.17g",
              u->name, f32 ? "f32" : "f64", gram__family_name(fam), (long long)mr, (long long)n,
              (long long)D, (long long)i, P[i], P3[i]);
    }
done:
    fused_tile_free(&T);
    free(Tt), free(kl), free(sl), free(W);
}

static void test_sums(const gram__ukr *u)
{
    for (int f32 = 0; f32 <= 1; f32++)
        for (int fi = 0; fi < NFUSED_FAMS; fi++)
            for (int64_t mr = 1; mr <= GRAM_MR; mr++)
                for (size_t ni = 0; ni < sizeof NS / sizeof NS[0]; ni++)
                    for (size_t di = 0; di < sizeof DS / sizeof DS[0]; di++)
                        for (double scale = 1.0; scale <= 5.0; scale += 4.0)
                            test_one(u, &gram__ukr_ref, FUSED_FAMS[fi], f32, mr, NS[ni], DS[di], scale);
    printf("  worst |fused - long double| / sum|f w| (all but epanechnikov): f64 %.3g, f32 %.3g; vs three passes: f64 %.3g, f32 %.3g\n",
           worst[0][0], worst[1][0], worst[0][1], worst[1][1]);
}

/* ------------------------------------------------------------------------------------------ */
/* what it must decline                                                                        */
/* ------------------------------------------------------------------------------------------ */

static void test_declines(const gram__ukr *u)
{
    enum { n = 32, D = 2, mr = 3, V = 2 };
    double one = 1.0, yd[mr * D], xd[n * D], W[n * V], P[mr * V];
    float yf[mr * D], xf[n * D];
    for (int k = 0; k < mr * D; k++) yd[k] = yf[k] = (float)check_normal(&rng);
    for (int k = 0; k < n * D; k++) xd[k] = xf[k] = (float)check_normal(&rng);
    for (int k = 0; k < n * V; k++) W[k] = 1.0;
    gram__leaf g = make_leaf(GRAM_GAUSSIAN, &one);
    /* V > 1 is taken (fused_sumv; tests/c/test_fused_sumv.c checks its values), also with weights
     * the V = 1 float32 kernel declines: it multiplies in float64 */
    CHECK(u->fused_sum_f64(&g, mr, n, D, yd, xd, W, 2, P) == 1, "%s: fused declined V = 2", u->name);
    CHECK(u->fused_sum_f32(&g, mr, n, D, yf, xf, W, 2, P) == 1, "%s: fused declined V = 2", u->name);
    W[1] = 1e30;
    CHECK(u->fused_sum_f32(&g, mr, n, D, yf, xf, W, 2, P) == 1, "%s: fused_f32 V = 2 declined weight 1e30", u->name);
    W[1] = 1.0;
    const gram_family other[] = {GRAM_LAPLACIAN_L1, GRAM_RATIONAL_QUADRATIC, GRAM_LINEAR, GRAM_TOPHAT};
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
        gram__leaf L = make_leaf(other[k], &one);
        CHECK(u->fused_sum_f64(&L, mr, n, D, yd, xd, W, 1, P) == 0, "%s: fused took %s", u->name,
              gram__family_name(other[k]));
        CHECK(u->fused_sum_f32(&L, mr, n, D, yf, xf, W, 1, P) == 0, "%s: fused took %s", u->name,
              gram__family_name(other[k]));
    }
    /* float32 weights must be 0 or within [2^-60, 2^60]; float64 takes any */
    const double bad[] = {1e30, -1e30, 1e-30, -1e-30, 0x1p61};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        W[17] = bad[k];
        CHECK(u->fused_sum_f32(&g, mr, n, D, yf, xf, W, 1, P) == 0, "%s: fused_f32 took weight %g", u->name, bad[k]);
        CHECK(u->fused_sum_f64(&g, mr, n, D, yd, xd, W, 1, P) == 1, "%s: fused_f64 declined weight %g", u->name, bad[k]);
    }
    for (int k = 0; k < n; k++) W[k] = 0.0;
    CHECK(u->fused_sum_f32(&g, mr, n, D, yf, xf, W, 1, P) == 1 && P[0] == 0 && P[mr - 1] == 0,
          "%s: fused_f32 with zero weights", u->name);
    W[5] = 0x1p-60, W[6] = -0x1p60;
    CHECK(u->fused_sum_f32(&g, mr, n, D, yf, xf, W, 1, P) == 1, "%s: fused_f32 declined 2^±60", u->name);
}

/* ------------------------------------------------------------------------------------------ */
/* its exp: one-hot weights make P one kernel value, exp(-t/2) of a t the test knows exactly     */
/* ------------------------------------------------------------------------------------------ */

static void test_expneg(const gram__ukr *u, int f32)
{
    enum { n = GRAM_PANEL };
    double one = 1.0, W[n], P[1];
    gram__leaf g = make_leaf(GRAM_GAUSSIAN, &one);
    const double lo = f32 ? -110.0 : -760.0; /* a little past the flush-to-zero point */
    const long double tiny = f32 ? ldexpl(1.0L, -126) : ldexpl(1.0L, -1022);
    double worst_ulp = 0, worst_abs_sub = 0, worst_v = 0;
    int bad = 0;
    for (int it = 0; it < 20000; it++) {
        double xd[n], yd[1] = {0.0};
        float xf[n], yf[1] = {0.0f};
        long double want[n];
        for (int j = 0; j < n; j++) {
            /* arguments a = -t/2 ≤ 0: the whole range, plus a dense piece near 0 */
            double a = it % 4 == 0 ? -4.0 * check_uniform(&rng) : lo * check_uniform(&rng);
            double c = sqrt(-2.0 * a);
            long double t;
            if (f32) {
                xf[j] = (float)c;
                float tf = xf[j] * xf[j]; /* what the kernel computes: fma(e, e, 0) = round(e²) */
                t = tf;
            } else {
                xd[j] = c;
                double td = xd[j] * xd[j];
                t = td;
            }
            want[j] = expl(-0.5L * t);
        }
        for (int j = 0; j < n; j++) {
            for (int k = 0; k < n; k++) W[k] = k == j ? 1.0 : 0.0;
            int ok = f32 ? u->fused_sum_f32(&g, 1, n, 1, yf, xf, W, 1, P) : u->fused_sum_f64(&g, 1, n, 1, yd, xd, W, 1, P);
            if (!ok) {
                bad++;
                continue;
            }
            long double w = want[j];
            double got = f32 ? (double)(float)P[0] : P[0];
            if (w >= tiny) {
                int e;
                frexpl(w, &e);
                long double ulp = ldexpl(1.0L, e - (f32 ? 24 : 53));
                double err = (double)(fabsl(got - w) / ulp);
                if (err > worst_ulp) worst_ulp = err, worst_v = (double)w;
            } else {
                double err = (double)(fabsl(got - w) / tiny);
                if (err > worst_abs_sub) worst_abs_sub = err;
            }
        }
    }
    CHECK(bad == 0, "%s fused declined %d one-hot calls", u->name, bad);
    CHECK(worst_ulp <= EXPNEG_ULPS, "%s expneg_fast %s: %.3g ulp at exp(x) ≈ %.17g", u->name,
          f32 ? "f32" : "f64", worst_ulp, worst_v);
    CHECK(worst_abs_sub < 1.0, "%s expneg_fast %s below the normal range: error %.3g × min normal", u->name,
          f32 ? "f32" : "f64", worst_abs_sub);
    printf("  expneg_fast %s: worst %.3f ulp (normal results), %.3f × min normal absolute below\n",
           f32 ? "f32" : "f64", worst_ulp, worst_abs_sub);
    /* exp(-0) = 1 exactly: a point on the query */
    {
        double xd[n];
        float xf[n];
        for (int j = 0; j < n; j++) xd[j] = 0.0, xf[j] = 0.0f, W[j] = j == 0 ? 1.0 : 0.0;
        double y0d[1] = {0.0};
        float y0f[1] = {0.0f};
        if (f32) u->fused_sum_f32(&g, 1, n, 1, y0f, xf, W, 1, P);
        else u->fused_sum_f64(&g, 1, n, 1, y0d, xd, W, 1, P);
        CHECK(P[0] == 1.0, "%s fused %s: k(x, x) = %.17g, want 1", u->name, f32 ? "f32" : "f64", P[0]);
    }
}

int main(void)
{
    const gram__ukr *tables[3];
    int nt = fused_tables(tables, NULL);
    for (int k = 0; k < nt; k++) {
        const gram__ukr *u = tables[k];
        CHECK((u->fused_sum_f64 == NULL) == (u->fused_sum_f32 == NULL), "%s: one fused entry without the other",
              u->name);
        if (!u->fused_sum_f64) {
            printf("table %s: no fused kernel\n", u->name);
            continue;
        }
        printf("table %s\n", u->name);
        test_sums(u);
        test_declines(u);
        test_expneg(u, 0);
        test_expneg(u, 1);
    }
    return check_done();
}
