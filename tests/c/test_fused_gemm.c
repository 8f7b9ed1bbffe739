/* The GEMM-form fused sum (ukr.h: fused_sum_gemm_f64/f32, src/engine/kernels/simd/ukr_bigd.inc)
 * of every table this CPU runs that has one: against a long-double loop over the same packed
 * inputs with the bound the kernel documents (t within 2(D + 3)·u·t where the guard accepts the
 * GEMM form), against the difference-form fused_sum of the same table, bit for bit where the guard
 * sends every block to the difference form (data far from the origin), the declines, and
 * end-to-end through gram_kernel_sum (long double, thread-count bit-identity). Arrays have their
 * exact sizes so the sanitizer build catches reads outside them. */
#include "fused_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static check_rng rng = {20261123u};

static const gram_family FAMS[] = {GRAM_GAUSSIAN, GRAM_LAPLACIAN, GRAM_MATERN32,
                                   GRAM_MATERN52, GRAM_CAUCHY,    GRAM_EPANECHNIKOV};
#define NFAMS ((int)(sizeof FAMS / sizeof FAMS[0]))

/* One tile: mr rows, n points, dimension D; coordinates offset + N(0, sd²) (sd from the mean
 * argument `scale`); `near` of the points are copies of row 0 moved by a tiny step (pairs whose
 * t is far below |y|² + |x|²: the guard's business). mode 0: check against long double and
 * fused_sum; mode 1: expect the bits of fused_sum (every block recomputed in the difference form). */
typedef struct tile {
    int64_t mr, n, D;
    int f32;
    void *y, *xp, *yy, *xx;
    long double *yl, *xl;
    double *W;
} tile;

static void tile_make(tile *T, int f32, int64_t mr, int64_t n, int64_t D, double scale, double offset, int near)
{
    size_t es = f32 ? sizeof(float) : sizeof(double);
    T->mr = mr, T->n = n, T->D = D, T->f32 = f32;
    T->y = xmalloc((size_t)(mr * D) * es);
    T->xp = xmalloc((size_t)(n * D) * es);
    T->yy = xmalloc((size_t)mr * es);
    T->xx = xmalloc((size_t)n * es);
    T->yl = xmalloc((size_t)(mr * D) * sizeof(long double));
    T->xl = xmalloc((size_t)(n * D) * sizeof(long double));
    T->W = xmalloc((size_t)n * sizeof(double));
    double sd = sqrt(0.5 * scale / (double)D);
    for (int64_t i = 0; i < mr; i++) {
        double nrm = 0;
        for (int64_t d = 0; d < D; d++) {
            double v = offset + sd * check_normal(&rng);
            if (f32) v = (float)v, ((float *)T->y)[i * D + d] = (float)v;
            else ((double *)T->y)[i * D + d] = v;
            T->yl[i * D + d] = v;
            nrm += v * v;
        }
        if (f32) ((float *)T->yy)[i] = (float)nrm;
        else ((double *)T->yy)[i] = nrm;
    }
    for (int64_t j = 0; j < n; j++) {
        double nrm = 0;
        for (int64_t d = 0; d < D; d++) {
            double v = j < near ? (double)T->yl[d] + 1e-3 * sd * check_normal(&rng) : offset + sd * check_normal(&rng);
            if (f32) v = (float)v;
            int64_t off = (j / GRAM_PANEL) * D * GRAM_PANEL + d * GRAM_PANEL + j % GRAM_PANEL;
            if (f32) ((float *)T->xp)[off] = (float)v;
            else ((double *)T->xp)[off] = v;
            T->xl[j * D + d] = v;
            nrm += v * v;
        }
        if (f32) ((float *)T->xx)[j] = (float)nrm;
        else ((double *)T->xx)[j] = nrm;
        T->W[j] = j >= n - 3 ? 0.0 : 0.05 + check_uniform(&rng);
    }
}

static void tile_free(tile *T)
{
    free(T->y), free(T->xp), free(T->yy), free(T->xx), free(T->yl), free(T->xl), free(T->W);
}

static int run_gemm(const gram__ukr *u, const gram__leaf *L, const tile *T, int64_t V, double *P)
{
    return T->f32 ? u->fused_sum_gemm_f32(L, T->mr, T->n, T->D, T->y, T->xp, T->yy, T->xx, T->W, V, P)
                  : u->fused_sum_gemm_f64(L, T->mr, T->n, T->D, T->y, T->xp, T->yy, T->xx, T->W, V, P);
}

static int run_direct(const gram__ukr *u, const gram__leaf *L, const tile *T, double *P)
{
    return T->f32 ? u->fused_sum_f32(L, T->mr, T->n, T->D, T->y, T->xp, T->W, 1, P)
                  : u->fused_sum_f64(L, T->mr, T->n, T->D, T->y, T->xp, T->W, 1, P);
}

static double worst[2];

static void test_one(const gram__ukr *u, gram_family fam, int f32, int64_t mr, int64_t n, int64_t D,
                     double scale, double offset, int near, int want_direct_bits)
{
    double one = 1.0;
    gram__leaf L = make_leaf(fam, &one);
    tile T;
    tile_make(&T, f32, mr, n, D, scale, offset, near);
    double P[GRAM_MR], P2[GRAM_MR], PD[GRAM_MR];
    const char *nm = gram__family_name(fam);
    int ok = run_gemm(u, &L, &T, 1, P);
    CHECK(ok == 1, "%s gemm_%s %s D=%lld: declined", u->name, f32 ? "f32" : "f64", nm, (long long)D);
    if (ok != 1) goto done;
    run_gemm(u, &L, &T, 1, P2);
    CHECK(memcmp(P, P2, (size_t)mr * sizeof *P) == 0, "%s gemm: not repeatable", u->name);
    CHECK(run_direct(u, &L, &T, PD) == 1, "%s: fused_sum declined", u->name);
    if (want_direct_bits) {
        CHECK(memcmp(P, PD, (size_t)mr * sizeof *P) == 0,
              "%s gemm_%s %s D=%lld offset %g: every block fails the guard, yet the bits differ from "
              "fused_sum (%.17g vs %.17g)", u->name, f32 ? "f32" : "f64", nm, (long long)D, offset, P[0], PD[0]);
    }
    const long double uu = f32 ? ldexpl(1.0L, -24) : ldexpl(1.0L, -53);
    const long double rtol = f32 ? 1e-6L : 1e-12L;
    for (int64_t i = 0; i < mr; i++) {
        long double want = 0, cond = 0, slack = 0;
        for (int64_t j = 0; j < n; j++) {
            long double t = 0;
            for (int64_t d = 0; d < D; d++) {
                long double e = T.yl[i * D + d] - T.xl[j * D + d];
                t += e * e;
            }
            long double v = f_ld(fam, t) * T.W[j];
            want += v;
            cond += fabsl(v);
            /* the documented bound on t: 2(D + 3)·u·t (guard accepted) or (D + 2)·u·t (difference
             * form), moved through f */
            long double dt = 2 * (D + 3) * uu * t;
            slack += fabsl(f_ld(fam, t + dt) - f_ld(fam, t > dt ? t - dt : 0)) / 2 * fabsl(T.W[j]);
        }
        long double e = fabsl(P[i] - want);
        if (cond > 0 && fam != GRAM_EPANECHNIKOV && (double)(e / cond) > worst[f32]) worst[f32] = (double)(e / cond);
        CHECK(e <= rtol * cond + slack, "%s gemm_%s %s mr=%lld n=%lld D=%lld offset %g near %d row %lld: got %.17g, want %.17Lg",
              u->name, f32 ? "f32" : "f64", nm, (long long)mr, (long long)n, (long long)D, offset, near,
              (long long)i, P[i], want);
        CHECK(fabsl((long double)P[i] - PD[i]) <= 2 * (rtol * cond + slack),
              "%s gemm_%s %s D=%lld row %lld: %.17g vs difference form %.17g", u->name, f32 ? "f32" : "f64",
              nm, (long long)D, (long long)i, P[i], PD[i]);
    }
done:
    tile_free(&T);
}

static void test_declines(const gram__ukr *u)
{
    double one = 1.0, P[GRAM_MR];
    tile T;
    tile_make(&T, 0, 4, 32, 31, 1.0, 0.0, 0);
    gram__leaf g = make_leaf(GRAM_GAUSSIAN, &one);
    CHECK(run_gemm(u, &g, &T, 1, P) == 0, "%s: gemm took D = 31", u->name);
    tile_free(&T);
    tile_make(&T, 1, 4, 32, 32, 1.0, 0.0, 0);
    CHECK(run_gemm(u, &g, &T, 2, P) == 0, "%s: gemm took V = 2", u->name);
    gram_family other[] = {GRAM_RATIONAL_QUADRATIC, GRAM_TOPHAT, GRAM_LINEAR, GRAM_LAPLACIAN_L1, GRAM_PERIODIC};
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
        gram__leaf L = make_leaf(other[k], &one);
        CHECK(run_gemm(u, &L, &T, 1, P) == 0, "%s: gemm took %s", u->name, gram__family_name(other[k]));
    }
    T.W[5] = 1e-30; /* float32 would lose it: the three passes keep float64 weights */
    CHECK(run_gemm(u, &g, &T, 1, P) == 0, "%s: gemm_f32 took weight 1e-30", u->name);
    tile_free(&T);
}

/* gram_kernel_sum at D ≥ 32 (the driver takes the GEMM form) against long double, and the same
 * bits on 1 and 2 threads. */
static void test_end_to_end(int f32)
{
    const int64_t M = 37, N = 301, D = 64;
    size_t es = f32 ? sizeof(float) : sizeof(double);
    void *x = xmalloc((size_t)(N * D) * es), *y = xmalloc((size_t)(M * D) * es);
    double *w = xmalloc((size_t)N * sizeof *w), o1[37], o2[37];
    for (int64_t k = 0; k < N * D; k++) {
        double v = 0.3 * check_normal(&rng) + 2.0;
        if (f32) ((float *)x)[k] = (float)v;
        else ((double *)x)[k] = v;
    }
    for (int64_t k = 0; k < M * D; k++) {
        double v = 0.3 * check_normal(&rng) + 2.0;
        if (f32) ((float *)y)[k] = (float)v;
        else ((double *)y)[k] = v;
    }
    for (int64_t j = 0; j < N; j++) w[j] = check_uniform(&rng);
    gram_context *ctx = NULL;
    gram_kernel *k = NULL;
    CHECK_STATUS(gram_context_create(&ctx), GRAM_OK);
    CHECK_STATUS(gram_kernel_parse(ctx, "gaussian(lengthscale=2.5)", &k), GRAM_OK);
    gram_array X = f32 ? gram_array_f32(x, N, D) : gram_array_f64(x, N, D);
    gram_array Y = f32 ? gram_array_f32(y, M, D) : gram_array_f64(y, M, D);
    gram_array W = gram_array_f64(w, N, 1), O1 = gram_array_f64(o1, M, 1), O2 = gram_array_f64(o2, M, 1);
    CHECK_STATUS(gram_context_set_threads(ctx, 1), GRAM_OK);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &W, &O1), GRAM_OK);
    CHECK_STATUS(gram_context_set_threads(ctx, 2), GRAM_OK);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &W, &O2), GRAM_OK);
    CHECK(memcmp(o1, o2, sizeof o1) == 0, "gram_kernel_sum D=64 %s: threads 1 and 2 differ", f32 ? "f32" : "f64");
    for (int64_t i = 0; i < M; i++) {
        long double want = 0;
        for (int64_t j = 0; j < N; j++) {
            long double t = 0;
            for (int64_t d = 0; d < D; d++) {
                long double a = f32 ? (long double)((float *)y)[i * D + d] : (long double)((double *)y)[i * D + d];
                long double b = f32 ? (long double)((float *)x)[j * D + d] : (long double)((double *)x)[j * D + d];
                long double e = (a - b) / 2.5L;
                t += e * e;
            }
            want += expl(-0.5L * t) * w[j];
        }
        /* coordinates 2 ± 0.3 at lengthscale 2.5: |y|² + |x|² ≈ 86 against t ≈ 2.3, so the guard
         * sends these to the difference form; the bound is gram.h's */
        long double tol = f32 ? 1e-6L + 66 * ldexpl(1.0L, -24) * 2.3L : 1e-12L;
        CHECK(fabsl(o1[i] - want) <= tol * want, "gram_kernel_sum D=64 %s row %lld: got %.17g, want %.17Lg",
              f32 ? "f32" : "f64", (long long)i, o1[i], want);
    }
    gram_kernel_destroy(k);
    gram_context_destroy(ctx);
    free(x), free(y), free(w);
}

int main(void)
{
    const gram__ukr *tables[3];
    int nt = fused_tables(tables, NULL);
    for (int k = 0; k < nt; k++) {
        const gram__ukr *u = tables[k];
        CHECK((u->fused_sum_gemm_f64 == NULL) == (u->fused_sum_gemm_f32 == NULL), "%s: one gemm entry without the other",
              u->name);
        if (!u->fused_sum_gemm_f64) {
            printf("table %s: no GEMM-form kernel\n", u->name);
            continue;
        }
        printf("table %s\n", u->name);
        static const int64_t DS[] = {32, 33, 64, 100, 784};
        for (int f32 = 0; f32 < 2; f32++)
            for (int fi = 0; fi < NFAMS; fi++)
                for (size_t di = 0; di < sizeof DS / sizeof DS[0]; di++)
                    for (int64_t mr = 1; mr <= GRAM_MR; mr += (DS[di] > 100 ? 7 : 1)) {
                        int64_t n = (mr % 3 == 0) ? 256 : (mr % 3 == 1 ? 16 : 48);
                        double scale = FAMS[fi] == GRAM_EPANECHNIKOV ? 0.5 : (mr % 2 ? 1.0 : 5.0);
                        /* centred data (the GEMM form), some near pairs, and data far from the origin
                         * (every block recomputed in the difference form: fused_sum's bits) */
                        test_one(u, FAMS[fi], f32, mr, n, DS[di], scale, 0.0, 0, 0);
                        test_one(u, FAMS[fi], f32, mr, n, DS[di], scale, 0.0, mr % 4 == 0 ? 20 : 3, 0);
                        test_one(u, FAMS[fi], f32, mr, n, DS[di], scale, 50.0, 0, 1);
                    }
        printf("  worst |error| / sum|terms| vs long double: f64 %.2e, f32 %.2e\n", worst[0], worst[1]);
        test_declines(u);
    }
    test_end_to_end(0);
    test_end_to_end(1);
    return check_done();
}
