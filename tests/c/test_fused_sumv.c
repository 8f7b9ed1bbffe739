/* The fused partial sum with V > 1 weight columns (ukr.h: fused_sum_f64/f32 with V ≠ 1; the SIMD
 * tables' fused_sumv in ukr_sumv.inc) of every table this CPU runs that has one, against a
 * long-double loop over the same packed inputs and against the reference table's three passes
 * (stat → apply → sum): every fused family, float64 and float32, mr = 1..8, n = 16, 32, 256,
 * D = 0..17 and 64, V = 2, 3, 4, 5, 7, 8, 15, 16, 17, 33 and past one column slice (64, 65, 130),
 * non-negative weights (a relative bound) and weights of both signs (the absolute bound
 * eps·Σ|k·w|); repeatability; P written whatever it held; the cases it must decline; float32 with
 * weights float32 cannot hold; and end to end, gram_kernel_sum with V = 16 against long double and
 * bit-identical for 1 and 2 threads. Arrays have their exact sizes so the sanitizer build catches
 * reads and writes outside them. */
#include "fused_common.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static check_rng rng = {20261123u};

/* Bounds, relative to Σ_j |k_ij·w_jv| (plus the statistic's own rounding, the same in every
 * path): ukr_sumv.inc gives 3e-14 for float64 (asserted with margin: 1e-13, well inside gram.h's
 * 1e-12) and 2.4e-7 for the float32 kernel values times float64 weights (plus the extra roundings
 * of the matérn polynomials; gram.h's 1e-6 is asserted). */
#define RTOL_F64 1e-13L
#define RTOL_F32 1e-6L

static const int64_t NS[] = {16, 32, 256};
static const int64_t VS[] = {2, 3, 4, 5, 7, 8, 15, 16, 17, 33, 64, 65, 130};
#define NVS ((int)(sizeof VS / sizeof VS[0]))

/* Random packed inputs for one tile (fused_common.h): coordinates N(0, scale/(2D)), so the mean
 * statistic is scale. */
static fused_tile make_tile(int f32, int64_t mr, int64_t n, int64_t D, double scale)
{
    return fused_tile_make(&rng, f32, mr, n, D, sqrt(0.5 * scale / (double)(D > 0 ? D : 1)), 0.0);
}

/* ------------------------------------------------------------------------------------------ */
/* sums                                                                                        */
/* ------------------------------------------------------------------------------------------ */

static double worst[2][2][2]; /* [f32][signed weights][vs ld, vs three passes]: / Σ|k·w| */
static long n_cases;

/* wkind 0: non-negative weights (the last 3 points 0, as the driver's padding); 1: normal. */
static void test_one(const gram__ukr *u, gram_family fam, int f32, int64_t mr, int64_t n, int64_t D,
                     int64_t V, int wkind, double scale)
{
    double one = 1.0;
    gram__leaf L = make_leaf(fam, &one);
    fused_tile T = make_tile(f32, mr, n, D, scale);
    size_t es = f32 ? sizeof(float) : sizeof(double);
    double *W = xmalloc((size_t)(n * V) * sizeof *W);
    double *P = xmalloc((size_t)(mr * V) * sizeof *P), *P2 = xmalloc((size_t)(mr * V) * sizeof *P2);
    double *P3 = xmalloc((size_t)(mr * V) * sizeof *P3);
    void *Tt = aligned_alloc(64, (size_t)(GRAM_MR * n) * es);
    long double *kl = xmalloc((size_t)n * sizeof *kl), *sl = xmalloc((size_t)n * sizeof *sl);
    for (int64_t j = 0; j < n; j++)
        for (int64_t v = 0; v < V; v++)
            W[j * V + v] = wkind ? check_normal(&rng) : j >= n - 3 ? 0.0 : 0.05 + check_uniform(&rng);
    for (int64_t k = 0; k < mr * V; k++) P[k] = P2[k] = NAN; /* written, not accumulated */
    n_cases++;
    int ok = fused_call_sum(u, &L, &T, W, V, P);
    CHECK(ok == 1, "%s fused_%s %s V=%lld: declined", u->name, f32 ? "f32" : "f64", gram__family_name(fam),
          (long long)V);
    if (ok != 1) goto done;
    fused_call_sum(u, &L, &T, W, V, P2);
    CHECK(memcmp(P, P2, (size_t)(mr * V) * sizeof *P) == 0, "%s fused V=%lld: not repeatable", u->name,
          (long long)V);
    /* the three passes of the reference table */
    fused_three_passes(&gram__ukr_ref, &L, &T, Tt, W, V, P3);
    const long double rtol = f32 ? RTOL_F32 : RTOL_F64;
    for (int64_t i = 0; i < mr; i++) {
        ref_row(fam, f32, T.yl + i * D, T.xl, n, D, kl, sl);
        for (int64_t v = 0; v < V; v++) {
            long double want, cond, slack;
            ref_col(kl, sl, n, W, V, v, &want, &cond, &slack);
            double got = P[i * V + v];
            long double e_ld = fabsl(got - want), e_3 = fabsl((long double)got - P3[i * V + v]);
            if (cond > 0 && fam != GRAM_EPANECHNIKOV) { /* 1 - t: the statistic's error dominates */
                double r0 = (double)(e_ld / cond), r1 = (double)(e_3 / cond);
                if (r0 > worst[f32][wkind][0]) worst[f32][wkind][0] = r0;
                if (r1 > worst[f32][wkind][1]) worst[f32][wkind][1] = r1;
            }
            CHECK(e_ld <= rtol * cond + slack,
                  "%s fused_%s %s mr=%lld n=%lld D=%lld V=%lld w%d P[%lld][%lld]: got %.17g, want %.17Lg (cond %.3Lg)",
                  u->name, f32 ? "f32" : "f64", gram__family_name(fam), (long long)mr, (long long)n,
                  (long long)D, (long long)V, wkind, (long long)i, (long long)v, got, want, cond);
            CHECK(e_3 <= 2 * (rtol * cond + slack),
                  "%s fused_%s %s mr=%lld n=%lld D=%lld V=%lld P[%lld][%lld]: got %.17g, three passes %.17g",
                  u->name, f32 ? "f32" : "f64", gram__family_name(fam), (long long)mr, (long long)n,
                  (long long)D, (long long)V, (long long)i, (long long)v, got, P3[i * V + v]);
        }
    }
done:
    fused_tile_free(&T);
    free(W), free(P), free(P2), free(P3), free(Tt), free(kl), free(sl);
}

static void test_sums(const gram__ukr *u)
{
    /* every family × dtype × mr × n × D, the V and weight kind cycling through the lists */
    int64_t c = 0;
    for (int f32 = 0; f32 <= 1; f32++)
        for (int fi = 0; fi < NFUSED_FAMS; fi++)
            for (int64_t mr = 1; mr <= GRAM_MR; mr++)
                for (size_t ni = 0; ni < sizeof NS / sizeof NS[0]; ni++)
                    for (int64_t D = 0; D <= 18; D++, c++) {
                        int64_t d = D == 18 ? 64 : D;
                        test_one(u, FUSED_FAMS[fi], f32, mr, NS[ni], d, VS[c % NVS], (int)(c / NVS % 2),
                                 c % 3 == 0 ? 5.0 : 1.0);
                    }
    /* every V × mr × weight kind at the shape (D = 3, a whole chunk) */
    for (int f32 = 0; f32 <= 1; f32++)
        for (int vi = 0; vi < NVS; vi++)
            for (int64_t mr = 1; mr <= GRAM_MR; mr++)
                for (int wk = 0; wk <= 1; wk++) test_one(u, GRAM_GAUSSIAN, f32, mr, 256, 3, VS[vi], wk, 1.0);
    printf("  %ld cases; worst |fused - long double| / sum|k w| (all but epanechnikov): "
           "f64 %.3g (signed w %.3g), f32 %.3g (signed w %.3g)\n"
           "  vs three passes: f64 %.3g (%.3g), f32 %.3g (%.3g)\n",
           n_cases, worst[0][0][0], worst[0][1][0], worst[1][0][0], worst[1][1][0], worst[0][0][1],
           worst[0][1][1], worst[1][0][1], worst[1][1][1]);
}

/* ------------------------------------------------------------------------------------------ */
/* what it must decline, and what float32 with V > 1 takes                                     */
/* ------------------------------------------------------------------------------------------ */

static void test_declines(const gram__ukr *u)
{
    enum { n = 32, D = 2, mr = 3, V = 2 };
    double one = 1.0, W[n * V], P[mr * V];
    for (int k = 0; k < n * V; k++) W[k] = 1.0;
    const gram_family other[] = {GRAM_LAPLACIAN_L1, GRAM_RATIONAL_QUADRATIC, GRAM_LINEAR, GRAM_TOPHAT,
                                 GRAM_TRIANGULAR, GRAM_NEG_L2};
    for (int f32 = 0; f32 <= 1; f32++) {
        fused_tile T = make_tile(f32, mr, n, D, 1.0);
        for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
            gram__leaf L = make_leaf(other[k], &one);
            CHECK(fused_call_sum(u, &L, &T, W, V, P) == 0, "%s: fused_%s took %s with V = 2", u->name,
                  f32 ? "f32" : "f64", gram__family_name(other[k]));
        }
        fused_tile_free(&T);
    }
}

/* float32 inputs with V > 1 multiply in float64, so weights float32 cannot hold are taken and
 * summed accurately (the V = 1 float32 kernel declines them). */
static void test_wide_weights(const gram__ukr *u)
{
    enum { n = 32, D = 3, mr = 5, V = 3 };
    double one = 1.0, W[n * V], P[mr * V];
    gram__leaf g = make_leaf(GRAM_GAUSSIAN, &one);
    fused_tile T = make_tile(1, mr, n, D, 1.0);
    const double big[] = {1e300, -1e-300, 0x1p61, 1e-30, 5e-324};
    for (size_t b = 0; b < sizeof big / sizeof big[0]; b++) {
        for (int k = 0; k < n * V; k++) W[k] = big[b] * (1.0 + 0.01 * (k % 7));
        CHECK(u->fused_sum_f32(&g, mr, n, D, T.y, T.xp, W, V, P) == 1, "%s: fused_f32 V=3 declined weight %g",
              u->name, big[b]);
        for (int64_t i = 0; i < mr; i++) {
            long double kl[n], sl[n];
            ref_row(GRAM_GAUSSIAN, 1, T.yl + i * D, T.xl, n, D, kl, sl);
            for (int64_t v = 0; v < V; v++) {
                long double want, cond, slack;
                ref_col(kl, sl, n, W, V, v, &want, &cond, &slack);
                /* 5e-324 is subnormal: each product is rounded absolutely, to a multiple of it */
                long double tol = RTOL_F32 * cond + slack + (big[b] == 5e-324 ? n * 5e-324L : 0);
                CHECK(fabsl(P[i * V + v] - want) <= tol, "%s fused_f32 weight %g: got %.17g, want %.17Lg",
                      u->name, big[b], P[i * V + v], want);
            }
        }
    }
    fused_tile_free(&T);
}

/* ------------------------------------------------------------------------------------------ */
/* end to end: gram_kernel_sum with V = 16                                                     */
/* ------------------------------------------------------------------------------------------ */

static void test_end_to_end(const char *arch)
{
    enum { M = 53, N = 1000, D = 3, V = 16 };
    gram_context *ctx = NULL;
    CHECK_STATUS(gram_context_create(&ctx), GRAM_OK);
    if (!ctx) return;
    CHECK_STATUS(gram_context_set_arch(ctx, arch), GRAM_OK);
    double ls = 0.5; /* 1/ls = 2: the scaled coordinates are exact in either dtype */
    gram_kernel *k = NULL;
    CHECK_STATUS(gram_kernel_create(ctx, GRAM_GAUSSIAN, 1, &ls, 0, NULL, &k), GRAM_OK);
    double *Yd = xmalloc(sizeof(double) * M * D), *Xd = xmalloc(sizeof(double) * N * D);
    float *Yf = xmalloc(sizeof(float) * M * D), *Xf = xmalloc(sizeof(float) * N * D);
    double *W = xmalloc(sizeof(double) * N * V);
    double *o1 = xmalloc(sizeof(double) * M * V), *o2 = xmalloc(sizeof(double) * M * V);
    long double yl[M * D], *xl = xmalloc(sizeof(long double) * N * D), kl[N], sl[N];
    /* float values, so both dtypes see the same inputs; scaled by 1/ls = 2 exactly */
    for (int k2 = 0; k2 < M * D; k2++) Yd[k2] = Yf[k2] = (float)check_normal(&rng), yl[k2] = 2.0L * Yd[k2];
    for (int k2 = 0; k2 < N * D; k2++) Xd[k2] = Xf[k2] = (float)check_normal(&rng), xl[k2] = 2.0L * Xd[k2];
    for (int wk = 0; wk <= 1; wk++) {
        for (int k2 = 0; k2 < N * V; k2++) W[k2] = wk ? check_normal(&rng) : check_uniform(&rng);
        for (int f32 = 0; f32 <= 1; f32++) {
            gram_array Y = f32 ? gram_array_f32(Yf, M, D) : gram_array_f64(Yd, M, D);
            gram_array X = f32 ? gram_array_f32(Xf, N, D) : gram_array_f64(Xd, N, D);
            gram_array Wa = gram_array_f64(W, N, V), O1 = gram_array_f64(o1, M, V), O2 = gram_array_f64(o2, M, V);
            gram_context_set_threads(ctx, 1);
            CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &Wa, &O1), GRAM_OK);
            gram_context_set_threads(ctx, 2);
            CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &Wa, &O2), GRAM_OK);
            CHECK(memcmp(o1, o2, sizeof(double) * M * V) == 0, "%s %s w%d: 1 and 2 threads differ", arch,
                  f32 ? "f32" : "f64", wk);
            long double rtol = f32 ? 1e-6L : 1e-12L;
            double worst_rel = 0;
            for (int i = 0; i < M; i++) {
                ref_row(GRAM_GAUSSIAN, f32, yl + i * D, xl, N, D, kl, sl);
                for (int v = 0; v < V; v++) {
                    long double want, cond, slack;
                    ref_col(kl, sl, N, W, V, v, &want, &cond, &slack);
                    long double e = fabsl(o1[i * V + v] - want);
                    if (e / cond > worst_rel) worst_rel = (double)(e / cond);
                    CHECK(e <= rtol * cond + slack, "%s %s w%d out[%d][%d]: got %.17g, want %.17Lg", arch,
                          f32 ? "f32" : "f64", wk, i, v, o1[i * V + v], want);
                }
            }
            printf("  end to end %s V=16 %s %s weights: worst error / sum|k w| %.3g\n", arch,
                   f32 ? "f32" : "f64", wk ? "signed" : "non-negative", worst_rel);
        }
    }
    gram_kernel_destroy(k);
    gram_context_destroy(ctx);
    free(Yd), free(Xd), free(Yf), free(Xf), free(W), free(o1), free(o2), free(xl);
}

int main(void)
{
    const gram__ukr *tables[3];
    int arch[3];
    int nt = fused_tables(tables, arch);
    for (int k = 0; k < nt; k++) {
        const gram__ukr *u = tables[k];
        printf("table %s\n", u->name);
        test_end_to_end(FUSED_ARCHS[arch[k]]);
        if (!u->fused_sum_f64) {
            printf("  no fused kernel\n");
            continue;
        }
        test_sums(u);
        test_declines(u);
        test_wide_weights(u);
    }
    return check_done();
}
