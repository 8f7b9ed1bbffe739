/* Helpers shared by the fused-microkernel tests (test_fused*.c): the families the fused kernels
 * take, a leaf of one family at unit scale, the long-double kernel values and the long-double
 * reference sums, random packed inputs for one tile, the three passes of a table, and the
 * microkernel tables this CPU runs. Everything is static (functions static inline), so each test
 * gets its own copy and a helper it does not use costs nothing. The random helpers take the
 * test's own generator, so each test draws the same numbers as before. */
#ifndef GRAM_TESTS_FUSED_COMMON_H
#define GRAM_TESTS_FUSED_COMMON_H

#include "check.h"

#include "base/base.h"
#include "engine/kernels/ukr.h"
#include "gram.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every family a fused kernel takes (the laplacian family under all three of its names). */
static const gram_family FUSED_FAMS[] = {GRAM_GAUSSIAN,  GRAM_LAPLACIAN, GRAM_MATERN12, GRAM_EXPONENTIAL,
                                         GRAM_MATERN32,  GRAM_MATERN52,  GRAM_CAUCHY,   GRAM_EPANECHNIKOV};
#define NFUSED_FAMS ((int)(sizeof FUSED_FAMS / sizeof FUSED_FAMS[0]))

/* The names gram_context_set_arch takes for the tables fused_tables returns, by its arch[k]. */
static const char *const FUSED_ARCHS[] = {"ref", "avx2", "avx512"};

/* malloc that gives a pointer for 0 bytes too (D = 0 makes empty arrays). */
static inline void *xmalloc(size_t bytes) { return malloc(bytes ? bytes : 1); }

/* A leaf of family f with unit lengthscale and scale (one points at 1.0), alpha 1.5 and degree 1
 * for the families that read them. */
static inline gram__leaf make_leaf(gram_family f, double *one)
{
    gram__leaf L;
    memset(&L, 0, sizeof L);
    L.family = f;
    L.structure = gram__family_structure(f);
    L.n_scale = 1;
    L.inv_scale = one;
    L.lengthscale = one;
    L.alpha = 1.5;
    L.degree = 1;
    return L;
}

/* The kernel value of a fused family at squared distance t, in long double. */
static inline long double f_ld(gram_family f, long double t)
{
    switch (f) {
    case GRAM_GAUSSIAN: return expl(-0.5L * t);
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_EXPONENTIAL: return expl(-sqrtl(t));
    case GRAM_MATERN32: {
        long double a = sqrtl(3.0L * t);
        return (1 + a) * expl(-a);
    }
    case GRAM_MATERN52: {
        long double a = sqrtl(5.0L * t);
        return (1 + a + a * a / 3) * expl(-a);
    }
    case GRAM_CAUCHY: return 1 / (1 + t);
    case GRAM_EPANECHNIKOV: return t < 1 ? 1 - t : 0;
    default: return NAN;
    }
}

/* Long-double references. ref_row: kl[j] = f(t_j) for the query yi (D coordinates) against the n
 * points xl (row-major), and sl[j] = half the change of f when t_j moves by (D + 2) units of the
 * working precision (the statistic's own rounding, the same in every path). ref_col: want =
 * Σ_j kl[j]·w_j, cond = Σ_j |kl[j]·w_j|, slack = Σ_j sl[j]·|w_j|, w_j = W[j·V + v]. */
static inline void ref_row(gram_family fam, int f32, const long double *yi, const long double *xl, int64_t n,
                           int64_t D, long double *kl, long double *sl)
{
    const long double dl = (D + 2) * (f32 ? ldexpl(1.0L, -24) : ldexpl(1.0L, -53));
    for (int64_t j = 0; j < n; j++) {
        long double t = 0;
        for (int64_t d = 0; d < D; d++) {
            long double e = yi[d] - xl[j * D + d];
            t += e * e;
        }
        kl[j] = f_ld(fam, t);
        sl[j] = fabsl(f_ld(fam, t * (1 + dl)) - f_ld(fam, t * (1 - dl))) / 2;
    }
}

static inline void ref_col(const long double *kl, const long double *sl, int64_t n, const double *W,
                           int64_t V, int64_t v, long double *want, long double *cond, long double *slack)
{
    *want = *cond = *slack = 0;
    for (int64_t j = 0; j < n; j++) {
        long double w = W[j * V + v], kw = kl[j] * w;
        *want += kw;
        *cond += fabsl(kw);
        *slack += sl[j] * fabsl(w);
    }
}

/* Random packed inputs for one tile: y (mr × D), xp (n/16 panels of D × 16) in the working
 * precision, and the same values in long double (xl row-major n × D). Coordinates sd·N(0, 1), the
 * queries moved by yoff along every axis; the queries are drawn first, then the points in order.
 * Each array has its exact size, so the sanitizer build catches reads outside it. */
typedef struct fused_tile {
    int f32;
    int64_t mr, n, D;
    void *y, *xp;
    long double *yl, *xl;
} fused_tile;

static inline fused_tile fused_tile_make(check_rng *rng, int f32, int64_t mr, int64_t n, int64_t D, double sd,
                                         double yoff)
{
    fused_tile T = {f32, mr, n, D, NULL, NULL, NULL, NULL};
    size_t es = f32 ? sizeof(float) : sizeof(double);
    T.y = xmalloc((size_t)(mr * D) * es);
    T.xp = xmalloc((size_t)(n * D) * es);
    T.yl = xmalloc((size_t)(mr * D) * sizeof(long double));
    T.xl = xmalloc((size_t)(n * D) * sizeof(long double));
    for (int64_t k = 0; k < mr * D; k++) {
        double v = sd * check_normal(rng) + yoff;
        if (f32) ((float *)T.y)[k] = (float)v, T.yl[k] = (float)v;
        else ((double *)T.y)[k] = v, T.yl[k] = v;
    }
    for (int64_t j = 0; j < n; j++)
        for (int64_t d = 0; d < D; d++) {
            double v = sd * check_normal(rng);
            int64_t off = (j / GRAM_PANEL) * D * GRAM_PANEL + d * GRAM_PANEL + j % GRAM_PANEL;
            if (f32) ((float *)T.xp)[off] = (float)v, T.xl[j * D + d] = (float)v;
            else ((double *)T.xp)[off] = v, T.xl[j * D + d] = v;
        }
    return T;
}

static inline void fused_tile_free(fused_tile *T) { free(T->y), free(T->xp), free(T->yl), free(T->xl); }

/* Table u's fused partial sum of the tile with V weight columns W into P. */
static inline int fused_call_sum(const gram__ukr *u, const gram__leaf *L, const fused_tile *T,
                                 const double *W, int64_t V, double *P)
{
    return T->f32 ? u->fused_sum_f32(L, T->mr, T->n, T->D, T->y, T->xp, W, V, P)
                  : u->fused_sum_f64(L, T->mr, T->n, T->D, T->y, T->xp, W, V, P);
}

/* The same sum by table t's three passes (stat → apply → sum), through the tile buffer Tt (64-byte
 * aligned, room for GRAM_MR × n values of the working precision). */
static inline void fused_three_passes(const gram__ukr *t, const gram__leaf *L, const fused_tile *T, void *Tt,
                                      const double *W, int64_t V, double *P)
{
    if (T->f32) {
        t->stat_f32(GRAM_STRUCT_SQDIST, T->mr, T->n, T->D, T->y, T->xp, Tt, T->n);
        t->apply_f32(L, 0, T->mr, T->n, Tt, T->n, NULL, NULL);
        t->sum_f32(T->mr, T->n, Tt, T->n, W, V, P);
    } else {
        t->stat_f64(GRAM_STRUCT_SQDIST, T->mr, T->n, T->D, T->y, T->xp, Tt, T->n);
        t->apply_f64(L, 0, T->mr, T->n, Tt, T->n, NULL, NULL);
        t->sum_f64(T->mr, T->n, Tt, T->n, W, V, P);
    }
}

/* The microkernel tables this CPU runs, the reference table first, into tables[0 .. return); where
 * arch is not NULL, arch[k] is table k's index in FUSED_ARCHS. Prints a line for each table
 * skipped. */
static inline int fused_tables(const gram__ukr *tables[3], int arch[3])
{
    int nt = 0, a[3];
    a[nt] = 0, tables[nt++] = &gram__ukr_ref;
#ifdef GRAM_HAVE_X86_KERNELS
    if (gram__cpu_has_avx2()) a[nt] = 1, tables[nt++] = &gram__ukr_avx2;
    else printf("skipped avx2: this CPU lacks AVX2/FMA\n");
    if (gram__cpu_has_avx512()) a[nt] = 2, tables[nt++] = &gram__ukr_avx512;
    else printf("skipped avx512: this CPU lacks AVX-512F/DQ\n");
#else
    printf("skipped avx2, avx512: not compiled for x86-64\n");
#endif
    if (arch) memcpy(arch, a, sizeof(int) * (size_t)nt);
    return nt;
}

#endif
