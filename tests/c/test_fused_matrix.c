/* Gram blocks through the fused microkernel (ukr.h: fused_matrix_f64/f32) and the driver's path
 * that uses it (gram_kernel_matrix; gram__kernel_matrix_lower for the regression layer).
 *
 * Part 1, the kernel of every table this CPU runs that has one: every fused family, float64 and
 * float32 values, float64 and float32 destinations, rows 1..33 (whole and partial units), column
 * ranges j0..n at and across panel edges, D from 0 to 64, the block alone, its transpose alone and
 * both, destinations at every alignment, with and without non-temporal stores. Each value against
 * a long-double evaluation on the same inputs; the transpose and the non-temporal stores bit for
 * bit against the block; nothing written outside the requested elements (guard words); the
 * leaves it must decline.
 *
 * Part 2, the public call against an independent long-double loop over the caller's arrays: K(X,X)
 * and K(Y,X) at sizes on the tile and task edges (1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 256,
 * 257, 300), D 0..17 and 64, both input dtypes, float64 / float32 / column-major / padded /
 * offset (unaligned) / strided destinations, lengthscales that scale exactly (powers of two, one
 * or per dimension); K(X,X) exactly symmetric and equal bit for bit to K(Y,X) with Y a copy of X
 * (the mirrored values are the computed ones); 1, 2 and 3 threads bit-identical; lower_only; the
 * non-temporal path (outputs of 32 MiB and more); cancellation; leaves that take the tile path. */
#include "fused_common.h"

#include "engine/engine.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef long double ld;

static check_rng rng = {20261123u};

/* Documented bounds: each value within EXPNEG_ULPS (vmath.inc) plus the roundings around the exp
 * (the scaling of t, the Matérn factor, the product): VAL_ULPS units of the working precision,
 * plus the statistic's own error moved through f, plus, below the smallest normal number, an
 * absolute error under it. */
#define VAL_ULPS 4.0L

/* Whether got is within the bound of f(t), t computed from inputs in precision u (2^-53 or 2^-24)
 * over D coordinates, the result then stored in precision uo. */
static int within(gram_family f, ld t, int64_t D, ld u, ld uo, double got, double *worst)
{
    ld want = f_ld(f, t);
    ld dl = (ld)(D + 6) * u; /* the statistic (D + 2 roundings) and the scaling of t or √t */
    ld slack = fabsl(f_ld(f, t * (1 + dl)) - f_ld(f, t * (1 - dl))) / 2;
    /* below the smallest normal number of the working or the stored precision: absolute */
    ld tiny = u > 1e-10L || uo > 0 ? ldexpl(1.0L, -126) : ldexpl(1.0L, -1022);
    /* the Matérn factor multiplies an exp that flushed to 0 there: (1 + a + a²/3) times that */
    if (f == GRAM_MATERN32 || f == GRAM_MATERN52) {
        ld a = sqrtl((f == GRAM_MATERN32 ? 3 : 5) * t);
        tiny *= 1 + a + (f == GRAM_MATERN52 ? a * a / 3 : 0);
    }
    ld err = fabsl((ld)got - want);
    ld bound = (VAL_ULPS * u + uo) * fabsl(want) + slack + tiny;
    if (want > 0 && worst) {
        ld r = (err - slack - uo * want) / (u * want); /* beyond the statistic and the storing */
        if ((double)r > *worst && want > tiny) *worst = (double)r;
    }
    return err <= bound;
}

/* ------------------------------------------------------------------------------------------ */
/* Part 1: the kernel                                                                          */
/* ------------------------------------------------------------------------------------------ */

#define GUARD 0x5au /* guard byte */

static double kworst[2];

static int guard_ok(const unsigned char *b, size_t from, size_t to)
{
    for (size_t k = from; k < to; k++)
        if (b[k] != GUARD) return 0;
    return 1;
}

/* Whether everything of a buffer of total bytes outside its block is still GUARD: the block has
 * nl lines of len elements (of oes bytes) at stride ld, from element off on. */
static int outside_ok(const unsigned char *b, int64_t off, int64_t nl, int64_t len, int64_t ld, size_t oes,
                      size_t total)
{
    int g = guard_ok(b, 0, (size_t)off * oes) &&
            guard_ok(b, (size_t)(off + (nl - 1) * ld + len) * oes, total);
    for (int64_t i = 0; g && i + 1 < nl; i++)
        g = guard_ok(b, (size_t)(off + i * ld + len) * oes, (size_t)(off + (i + 1) * ld) * oes);
    return g;
}

/* One call: rows mr, columns [j0, n), D coordinates of spread sd; destination element type od
 * (1 float64), T and / or U (which: 1 T, 2 U, 3 both), misaligned by off elements. */
static void kernel_case(const gram__ukr *u, gram_family fam, int f32, int od, int64_t mr, int64_t j0, int64_t n,
                        int64_t D, double sd, int which, int64_t off)
{
    double one = 1.0;
    gram__leaf L = make_leaf(fam, &one);
    const int64_t npad = (n + GRAM_PANEL - 1) / GRAM_PANEL * GRAM_PANEL, w = n - j0;
    const size_t oes = od ? 8 : 4;
    fused_tile X = fused_tile_make(&rng, f32, mr, npad, D, sd, 0.0);
    const void *y = X.y, *xp = X.xp;
    const ld *yl = X.yl, *xl = X.xl;
    /* destinations: T mr × w (stride ldt ≥ w), U w × mr (stride ldu ≥ mr), each with guards */
    const int64_t ldt = w + (mr % 3), ldu = mr + (w % 5);
    const size_t tn = (size_t)(off + (mr - 1) * ldt + w + 8), un = (size_t)(off + (w - 1) * ldu + mr + 8);
    unsigned char *Tb[2], *Ub[2];
    for (int s = 0; s < 2; s++) {
        Tb[s] = aligned_alloc(64, (tn * oes + 63) / 64 * 64);
        Ub[s] = aligned_alloc(64, (un * oes + 63) / 64 * 64);
        memset(Tb[s], GUARD, tn * oes);
        memset(Ub[s], GUARD, un * oes);
    }
    const char *name = gram__family_name(fam);
    for (int s = 0; s < 2; s++) { /* s = 1: non-temporal stores allowed */
        void *T = which & 1 ? Tb[s] + off * oes : NULL, *U = which & 2 ? Ub[s] + off * oes : NULL;
        int flags = (od ? GRAM__MX_F64 : 0) | (s ? GRAM__MX_STREAM : 0);
        int ok = f32 ? u->fused_matrix_f32(&L, mr, j0, n, D, y, xp, T, ldt, U, ldu, flags)
                     : u->fused_matrix_f64(&L, mr, j0, n, D, y, xp, T, ldt, U, ldu, flags);
        CHECK(ok == 1, "%s fused_matrix_%s %s: declined", u->name, f32 ? "f32" : "f64", name);
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_sfence();
#endif
    /* values, the transpose, the streamed copy, the guards */
    long bad = 0, badt = 0;
    const ld uw = f32 ? ldexpl(1.0L, -24) : ldexpl(1.0L, -53), uo = od ? 0 : ldexpl(1.0L, -24);
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = j0; j < n; j++) {
            ld t = 0;
            for (int64_t d = 0; d < D; d++) {
                ld e = yl[i * D + d] - xl[j * D + d];
                t += e * e;
            }
            size_t ti = (size_t)(off + i * ldt + (j - j0)), ui = (size_t)(off + (j - j0) * ldu + i);
            double v = 0;
            if (which & 1) v = od ? ((double *)Tb[0])[ti] : ((float *)Tb[0])[ti];
            else v = od ? ((double *)Ub[0])[ui] : ((float *)Ub[0])[ui];
            if (!within(fam, t, D, uw, uo, v, &kworst[f32]) && bad++ < 3)
                CHECK(0, "%s fused_matrix_%s %s od=%d mr=%lld j0=%lld n=%lld D=%lld (%lld,%lld): got %.17g, want %.17Lg",
                      u->name, f32 ? "f32" : "f64", name, od, (long long)mr, (long long)j0, (long long)n,
                      (long long)D, (long long)i, (long long)j, v, f_ld(fam, t));
            if (which == 3 && memcmp(Tb[0] + ti * oes, Ub[0] + ui * oes, oes) != 0) badt++;
        }
    CHECK(bad == 0, "%s fused_matrix %s: %ld values outside the bound", u->name, name, bad);
    CHECK(badt == 0, "%s fused_matrix %s mr=%lld j0=%lld n=%lld: %ld transposed values differ", u->name, name,
          (long long)mr, (long long)j0, (long long)n, badt);
    if (which & 1) {
        CHECK(memcmp(Tb[0], Tb[1], tn * oes) == 0, "%s fused_matrix %s: streamed block differs", u->name, name);
        CHECK(outside_ok(Tb[0], off, mr, w, ldt, oes, tn * oes),
              "%s fused_matrix %s mr=%lld j0=%lld n=%lld off=%lld: wrote outside the block", u->name, name,
              (long long)mr, (long long)j0, (long long)n, (long long)off);
    } else
        CHECK(guard_ok(Tb[0], 0, tn * oes), "%s fused_matrix %s: wrote T without one", u->name, name);
    if (which & 2) {
        CHECK(memcmp(Ub[0], Ub[1], un * oes) == 0, "%s fused_matrix %s: streamed transpose differs", u->name, name);
        CHECK(outside_ok(Ub[0], off, w, mr, ldu, oes, un * oes),
              "%s fused_matrix %s mr=%lld j0=%lld n=%lld off=%lld: wrote outside the transpose", u->name, name,
              (long long)mr, (long long)j0, (long long)n, (long long)off);
    } else
        CHECK(guard_ok(Ub[0], 0, un * oes), "%s fused_matrix %s: wrote U without one", u->name, name);
    for (int s = 0; s < 2; s++) free(Tb[s]), free(Ub[s]);
    fused_tile_free(&X);
}

/* The kernel's exp, swept through the kernel: gaussian, D = 1, y = 0, so each value is
 * exp(-t/2) of t = round(x²), a t the test knows exactly. ≤ 2 ulp where the exact value is at
 * least the smallest normal number, an absolute error below it under. mr = 8 (whole units) and
 * mr = 3 (partial units) take the two code paths of a table. */
static void test_kernel_exp(const gram__ukr *u, int f32)
{
    enum { n = 256 };
    double one = 1.0;
    gram__leaf g = make_leaf(GRAM_GAUSSIAN, &one);
    const double lo = f32 ? -110.0 : -760.0;
    const ld tiny = f32 ? ldexpl(1.0L, -126) : ldexpl(1.0L, -1022);
    double worst_ulp = 0, worst_abs = 0, worst_v = 0;
    double xd[n], yd[8] = {0}, out[8 * n];
    float xf[n], yf[8] = {0}, outf[8 * n];
    ld want[n];
    for (int it = 0; it < 1000; it++) {
        for (int j = 0; j < n; j++) {
            double a = it % 4 == 0 ? -4.0 * check_uniform(&rng) : lo * check_uniform(&rng);
            double c = sqrt(-2.0 * a);
            if (f32) {
                xf[j] = (float)c;
                want[j] = expl(-0.5L * (ld)(xf[j] * xf[j]));
            } else {
                xd[j] = c;
                want[j] = expl(-0.5L * (ld)(xd[j] * xd[j]));
            }
        }
        for (int mr = 3; mr <= 8; mr += 5) {
            int ok = f32 ? u->fused_matrix_f32(&g, mr, 0, n, 1, yf, xf, outf, n, NULL, 0, 0 /* float32 */)
                         : u->fused_matrix_f64(&g, mr, 0, n, 1, yd, xd, out, n, NULL, 0, GRAM__MX_F64);
            CHECK(ok == 1, "%s fused_matrix: declined the exp sweep", u->name);
            for (int i = 0; i < mr; i++)
                for (int j = 0; j < n; j++) {
                    double got = f32 ? (double)outf[i * n + j] : out[i * n + j];
                    if (want[j] >= tiny) {
                        int e;
                        frexpl(want[j], &e);
                        double err = (double)(fabsl(got - want[j]) / ldexpl(1.0L, e - (f32 ? 24 : 53)));
                        if (err > worst_ulp) worst_ulp = err, worst_v = (double)want[j];
                    } else {
                        double err = (double)(fabsl(got - want[j]) / tiny);
                        if (err > worst_abs) worst_abs = err;
                    }
                }
        }
    }
    CHECK(worst_ulp <= 2.0, "%s fused_matrix exp %s: %.3g ulp at %.17g", u->name, f32 ? "f32" : "f64", worst_ulp, worst_v);
    CHECK(worst_abs < 1.0, "%s fused_matrix exp %s below the normal range: %.3g × min normal", u->name,
          f32 ? "f32" : "f64", worst_abs);
    printf("  exp through fused_matrix, %s: worst %.3f ulp (normal results), %.3f × min normal below\n",
           f32 ? "f32" : "f64", worst_ulp, worst_abs);
}

static void test_kernel(const gram__ukr *u)
{
    static const int64_t MRS[] = {1, 2, 4, 7, 8, 9, 15, 16, 17, 33};
    static const int64_t JN[][2] = {{0, 16}, {0, 5}, {3, 16}, {0, 256}, {5, 200}, {13, 14}, {6, 33}, {0, 64}};
    static const int64_t DS[] = {0, 1, 2, 3, 5, 17, 64};
    long cases = 0;
    for (int fi = 0; fi < NFUSED_FAMS; fi++)
        for (int f32 = 0; f32 <= 1; f32++)
            for (int od = 0; od <= 1; od++)
                for (size_t mi = 0; mi < sizeof MRS / sizeof MRS[0]; mi++)
                    for (size_t ji = 0; ji < sizeof JN / sizeof JN[0]; ji++) {
                        int64_t D = DS[(mi + ji + (size_t)fi) % (sizeof DS / sizeof DS[0])];
                        /* spread: t of order 1, or large (values in and below the subnormal range) */
                        double sd = (mi + ji) % 4 == 3 ? 25.0 / sqrt((double)(D > 0 ? D : 1)) : 0.8 / sqrt((double)(D > 0 ? D : 1));
                        int which = 1 + (int)((mi + ji + (size_t)od) % 3);
                        int64_t off = (int64_t)((mi * 3 + ji) % 8);
                        kernel_case(u, FUSED_FAMS[fi], f32, od, MRS[mi], JN[ji][0], JN[ji][1], D, sd, which,
                                    off);
                        cases++;
                    }
    printf("  %ld kernel cases; worst (|err| - statistic slack - storing) / (u·|want|): f64 %.3g, f32 %.3g\n", cases,
           kworst[0], kworst[1]);

    /* what it must decline: other structures and families, and nothing written */
    double one = 1.0, yd[8], xd[16 * 2], T[64];
    float yf[8], xf[16 * 2];
    for (int k = 0; k < 8; k++) yd[k] = yf[k] = (float)check_normal(&rng);
    for (int k = 0; k < 32; k++) xd[k] = xf[k] = (float)check_normal(&rng);
    const gram_family other[] = {GRAM_LAPLACIAN_L1, GRAM_RATIONAL_QUADRATIC, GRAM_LINEAR, GRAM_TOPHAT,
                                 GRAM_PERIODIC, GRAM_NEG_L2, GRAM_WHITE};
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
        gram__leaf L = make_leaf(other[k], &one);
        for (int e = 0; e < 64; e++) T[e] = -7.0;
        CHECK(u->fused_matrix_f64(&L, 2, 0, 16, 2, yd, xd, T, 16, NULL, 0, GRAM__MX_F64) == 0, "%s: fused_matrix took %s",
              u->name, gram__family_name(other[k]));
        CHECK(u->fused_matrix_f32(&L, 2, 0, 16, 2, yf, xf, T, 16, NULL, 0, 1) == 0, "%s: fused_matrix took %s",
              u->name, gram__family_name(other[k]));
        int untouched = 1;
        for (int e = 0; e < 64; e++) untouched &= T[e] == -7.0;
        CHECK(untouched, "%s: fused_matrix declined %s but wrote", u->name, gram__family_name(other[k]));
    }
    for (int fi = 0; fi < NFUSED_FAMS; fi++) { /* mr = 0 asks whether the leaf is handled */
        gram__leaf L = make_leaf(FUSED_FAMS[fi], &one);
        CHECK(u->fused_matrix_f64(&L, 0, 0, 16, 2, yd, xd, NULL, 0, NULL, 0, 1) == 1, "%s: probe", u->name);
        CHECK(u->fused_matrix_f32(&L, 0, 0, 16, 2, yf, xf, NULL, 0, NULL, 0, 1) == 1, "%s: probe", u->name);
    }
    /* k(x, x) = 1 exactly for every family */
    for (int fi = 0; fi < NFUSED_FAMS; fi++) {
        gram__leaf L = make_leaf(FUSED_FAMS[fi], &one);
        double xs[16 * 2], ys[2], out[16];
        for (int j = 0; j < 16; j++) xs[j] = xd[j], xs[16 + j] = xd[16 + j];
        ys[0] = xd[5], ys[1] = xd[16 + 5];
        u->fused_matrix_f64(&L, 1, 0, 16, 2, ys, xs, out, 16, NULL, 0, 1);
        CHECK(out[5] == 1.0, "%s %s: k(x, x) = %.17g", u->name, gram__family_name(FUSED_FAMS[fi]), out[5]);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Part 2: gram_kernel_matrix                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* An output view with guard words around it. layout: 0 C order, 1 Fortran, 2 rows padded by 5,
 * 3 rows padded by 8, 4 column stride 2 (tile path), 5 C order float32. off: elements from a
 * 64-byte boundary. */
typedef struct oview {
    gram_array a;
    unsigned char *mem;
    size_t bytes, lo; /* allocation; first byte of the view's extent */
} oview;

static oview make_out(int64_t M, int64_t N, int layout, int64_t off)
{
    oview v;
    gram_dtype dt = layout == 5 ? GRAM_FLOAT32 : GRAM_FLOAT64;
    size_t es = dt == GRAM_FLOAT64 ? 8 : 4;
    int64_t rs = N, cs = 1;
    switch (layout) {
    case 1: rs = 1, cs = M; break;
    case 2: rs = N + 5; break;
    case 3: rs = N + 8; break;
    case 4: rs = 2 * N + 1, cs = 2; break;
    default: break;
    }
    int64_t extent = (M - 1) * rs + (N - 1) * cs + 1;
    v.lo = (size_t)off * es;
    v.bytes = (v.lo + (size_t)extent * es + 64 + 63) / 64 * 64;
    v.mem = aligned_alloc(64, v.bytes);
    memset(v.mem, GUARD, v.bytes);
    v.a.data = v.mem + v.lo;
    v.a.dtype = dt;
    v.a.rows = M;
    v.a.cols = N;
    v.a.row_stride = rs;
    v.a.col_stride = cs;
    return v;
}

static double oget(const oview *v, int64_t i, int64_t j)
{
    int64_t o = i * v->a.row_stride + j * v->a.col_stride;
    return v->a.dtype == GRAM_FLOAT64 ? ((double *)v->a.data)[o] : (double)((float *)v->a.data)[o];
}

/* Every byte outside the view's elements still a guard byte. */
static int oguards(const oview *v)
{
    size_t es = v->a.dtype == GRAM_FLOAT64 ? 8 : 4;
    unsigned char *mark = calloc(v->bytes, 1);
    for (int64_t i = 0; i < v->a.rows; i++)
        for (int64_t j = 0; j < v->a.cols; j++)
            memset(mark + v->lo + (size_t)(i * v->a.row_stride + j * v->a.col_stride) * es, 1, es);
    int ok = 1;
    for (size_t b = 0; b < v->bytes && ok; b++) ok = mark[b] || v->mem[b] == GUARD;
    free(mark);
    return ok;
}

/* Bitwise equality of two views' elements. */
static int same_bits(const oview *a, const oview *b, int lower_only)
{
    for (int64_t i = 0; i < a->a.rows; i++)
        for (int64_t j = 0; j < (lower_only ? i + 1 : a->a.cols); j++) {
            double x = oget(a, i, j), y = oget(b, i, j);
            if (memcmp(&x, &y, sizeof x) != 0) return 0;
        }
    return 1;
}

static double aworst[2];

/* One public call and its checks. sym: K(X, X); else K(Y, X). ls: 0 one lengthscale 2^k, 1 per
 * dimension (powers of two: the engine's scaling is then exact). */
static void api_case(gram_context *ctx, gram_family fam, int64_t M, int64_t N, int64_t D, int f32, int sym,
                     int layout, int64_t off, int ard, double sd)
{
    if (sym) M = N;
    const size_t es = f32 ? 4 : 8;
    void *x = malloc((size_t)(N * D) * es + 1), *y = malloc((size_t)(M * D) * es + 1);
    double ls[64];
    char spec[1600];
    int o = snprintf(spec, sizeof spec, "%s(lengthscale=", gram__family_name(fam));
    if (ard && D > 1) {
        o += snprintf(spec + o, sizeof spec - (size_t)o, "[");
        for (int64_t d = 0; d < D; d++) {
            ls[d] = ldexp(1.0, (int)(d % 3) - 1);
            o += snprintf(spec + o, sizeof spec - (size_t)o, "%s%g", d ? "," : "", ls[d]);
        }
        snprintf(spec + o, sizeof spec - (size_t)o, "])");
    } else {
        for (int64_t d = 0; d < 64; d++) ls[d] = D > 8 ? 4.0 : 1.0;
        snprintf(spec + o, sizeof spec - (size_t)o, "%g)", ls[0]);
    }
    for (int64_t k = 0; k < N * D; k++) {
        double v = sd * check_normal(&rng);
        if (f32) ((float *)x)[k] = (float)v;
        else ((double *)x)[k] = v;
    }
    for (int64_t k = 0; k < M * D; k++) {
        double v = sd * check_normal(&rng);
        if (f32) ((float *)y)[k] = (float)v;
        else ((double *)y)[k] = v;
    }
    gram_kernel *k = NULL;
    CHECK_STATUS(gram_kernel_parse(ctx, spec, &k), GRAM_OK);
    gram_array X = f32 ? gram_array_f32(x, N, D) : gram_array_f64(x, N, D);
    gram_array Y = f32 ? gram_array_f32(y, M, D) : gram_array_f64(y, M, D);
    oview G[3];
    for (int t = 0; t < 3; t++) {
        G[t] = make_out(M, N, layout, off);
        gram_context_set_threads(ctx, t + 1);
        gram_status s = gram_kernel_matrix(ctx, k, sym ? NULL : &Y, &X, &G[t].a);
        CHECK(s == GRAM_OK, "matrix %s: %s", spec, gram_context_message(ctx));
    }
    gram_context_set_threads(ctx, 0);
    const char *what = sym ? "K(X,X)" : "K(Y,X)";
    CHECK(same_bits(&G[0], &G[1], 0) && same_bits(&G[0], &G[2], 0), "%s %s %lldx%lld D=%lld layout %d: threads differ",
          what, spec, (long long)M, (long long)N, (long long)D, layout);
    CHECK(oguards(&G[0]), "%s %s %lldx%lld layout %d off %lld: wrote outside out", what, spec, (long long)M,
          (long long)N, layout, (long long)off);
    /* against long double */
    const ld uw = f32 ? ldexpl(1.0L, -24) : ldexpl(1.0L, -53), uo = G[0].a.dtype == GRAM_FLOAT32 ? ldexpl(1.0L, -24) : 0;
    long bad = 0;
    const void *yy = sym ? x : y;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            ld t = 0;
            for (int64_t d = 0; d < D; d++) {
                ld a = f32 ? ((const float *)yy)[i * D + d] : ((const double *)yy)[i * D + d];
                ld b = f32 ? ((const float *)x)[j * D + d] : ((const double *)x)[j * D + d];
                ld e = (a - b) / (ard && D > 1 ? ls[d] : ls[0]);
                t += e * e;
            }
            double v = oget(&G[0], i, j);
            if (!within(fam, t, D, uw, uo, v, &aworst[f32]) && bad++ < 3)
                CHECK(0, "%s %s %lldx%lld D=%lld f32=%d layout %d off %lld (%lld,%lld): got %.17g, want %.17Lg", what,
                      spec, (long long)M, (long long)N, (long long)D, f32, layout, (long long)off, (long long)i,
                      (long long)j, v, f_ld(fam, t));
        }
    CHECK(bad == 0, "%s %s %lldx%lld D=%lld layout %d: %ld values outside the bound", what, spec, (long long)M,
          (long long)N, (long long)D, layout, bad);
    if (sym) {
        long asym = 0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < i; j++) {
                double a = oget(&G[0], i, j), b = oget(&G[0], j, i);
                asym += memcmp(&a, &b, sizeof a) != 0;
            }
        CHECK(asym == 0, "K(X,X) %s N=%lld layout %d: %ld pairs not exactly symmetric", spec, (long long)N, layout, asym);
        /* the same values as the unmirrored computation: K(Y, X) with Y a copy of X */
        void *xc = malloc((size_t)(N * D) * es + 1);
        memcpy(xc, x, (size_t)(N * D) * es);
        gram_array Xc = f32 ? gram_array_f32(xc, N, D) : gram_array_f64(xc, N, D);
        oview Gc = make_out(M, N, layout, (off + 3) % 8);
        CHECK_STATUS(gram_kernel_matrix(ctx, k, &Xc, &X, &Gc.a), GRAM_OK);
        CHECK(same_bits(&G[0], &Gc, 0), "K(X,X) %s N=%lld D=%lld layout %d: differs from K(copy of X, X)", spec,
              (long long)N, (long long)D, layout);
        free(Gc.mem);
        free(xc);
        /* lower_only: the lower triangle, bit for bit */
        oview Gl = make_out(M, N, layout, off);
        CHECK_STATUS(gram__kernel_matrix_lower(ctx, k, &X, &Gl.a), GRAM_OK);
        CHECK(same_bits(&G[0], &Gl, 1), "lower %s N=%lld layout %d: differs from the full matrix", spec, (long long)N,
              layout);
        CHECK(oguards(&Gl), "lower %s N=%lld layout %d: wrote outside out", spec, (long long)N, layout);
        free(Gl.mem);
    }
    for (int t = 0; t < 3; t++) free(G[t].mem);
    gram_kernel_destroy(k);
    free(x), free(y);
}

static void test_api(gram_context *ctx)
{
    static const int64_t NS[] = {1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 256, 257, 300};
    static const int64_t DS[] = {0, 1, 2, 3, 5, 17, 64};
    long cases = 0;
    for (size_t ni = 0; ni < sizeof NS / sizeof NS[0]; ni++)
        for (int fi = 0; fi < NFUSED_FAMS; fi++)
            for (int sym = 1; sym >= 0; sym--) {
                size_t c = ni * 7 + (size_t)fi * 3 + (size_t)sym;
                int64_t N = NS[ni], M = NS[(ni + (size_t)fi + 3) % (sizeof NS / sizeof NS[0])];
                int64_t D = DS[c % (sizeof DS / sizeof DS[0])];
                int layout = (int)(c % 6), f32 = (int)(c / 6 % 2), ard = (int)(c / 3 % 2);
                int64_t off = (int64_t)(c % 8);
                double sd = c % 5 == 4 ? 6.0 : 0.9;
                if (N > 64 && D == 64) D = 17; /* keep the long-double loop short */
                api_case(ctx, FUSED_FAMS[fi], M, N, D, f32, sym, layout, off, ard, sd);
                cases++;
            }
    /* every layout and alignment at one size that has whole and partial tasks */
    for (int layout = 0; layout < 6; layout++)
        for (int64_t off = 0; off < 8; off += 3)
            for (int sym = 0; sym <= 1; sym++)
                for (int f32 = 0; f32 <= 1; f32++) {
                    api_case(ctx, GRAM_GAUSSIAN, 131, 200, 3, f32, sym, layout, off, 0, 0.9);
                    cases++;
                }
    printf("  %lld public cases; worst (|err| - slack - storing) / (u·|want|): f64 %.3g, f32 %.3g\n", (long long)cases,
           aworst[0], aworst[1]);
}

/* Outputs of 32 MiB and more go out through non-temporal stores: the same bits, the same guards. */
static void test_streaming(gram_context *ctx)
{
    const int64_t N = 2100, D = 3;
    double *x = malloc(sizeof(double) * (size_t)(N * D)), *y = malloc(sizeof(double) * (size_t)(N * D));
    for (int64_t k = 0; k < N * D; k++) x[k] = check_normal(&rng), y[k] = 1.1 * check_normal(&rng);
    gram_kernel *k = NULL;
    CHECK_STATUS(gram_kernel_parse(ctx, "matern52(lengthscale=0.5)", &k), GRAM_OK);
    gram_array X = gram_array_f64(x, N, D), Y = gram_array_f64(y, N, D);
    for (int layout = 0; layout <= 1; layout++)
        for (int sym = 0; sym <= 1; sym++) {
            oview G = make_out(N, N, layout, 2);
            CHECK_STATUS(gram_kernel_matrix(ctx, k, sym ? NULL : &Y, &X, &G.a), GRAM_OK);
            CHECK(oguards(&G), "streamed %s layout %d: wrote outside out", sym ? "K(X,X)" : "K(Y,X)", layout);
            long bad = 0, asym = 0;
            const double *yy = sym ? x : y;
            for (int64_t s = 0; s < 20000; s++) { /* a sample of entries against long double */
                int64_t i = check_int(&rng, 0, N - 1), j = check_int(&rng, 0, N - 1);
                if (s < 2 * N) i = s / 2, j = s % 2 ? N - 1 - i : i; /* every diagonal and antidiagonal */
                ld t = 0;
                for (int64_t d = 0; d < D; d++) {
                    ld e = ((ld)yy[i * D + d] - x[j * D + d]) / 0.5L;
                    t += e * e;
                }
                bad += !within(GRAM_MATERN52, t, D, ldexpl(1.0L, -53), 0, oget(&G, i, j), NULL);
                if (sym) {
                    double a = oget(&G, i, j), b = oget(&G, j, i);
                    asym += memcmp(&a, &b, sizeof a) != 0;
                }
            }
            CHECK(bad == 0 && asym == 0, "streamed %s layout %d: %ld values outside the bound, %ld asymmetric",
                  sym ? "K(X,X)" : "K(Y,X)", layout, bad, asym);
            /* against the same call on a small-tile view of the same values: 3 threads vs default */
            oview H = make_out(N, N, layout, 5);
            gram_context_set_threads(ctx, 3);
            CHECK_STATUS(gram_kernel_matrix(ctx, k, sym ? NULL : &Y, &X, &H.a), GRAM_OK);
            gram_context_set_threads(ctx, 0);
            CHECK(same_bits(&G, &H, 0), "streamed %s layout %d: threads / alignment differ", sym ? "K(X,X)" : "K(Y,X)",
                  layout);
            if (sym) {
                oview Gl = make_out(N, N, layout, 1);
                CHECK_STATUS(gram__kernel_matrix_lower(ctx, k, &X, &Gl.a), GRAM_OK);
                CHECK(same_bits(&G, &Gl, 1), "streamed lower layout %d: differs", layout);
                free(Gl.mem);
            }
            free(H.mem);
            free(G.mem);
        }
    /* float32 inputs into float32 out, 36 MB */
    {
        const int64_t n = 3000;
        float *xf = malloc(sizeof(float) * (size_t)(n * D));
        for (int64_t q = 0; q < n * D; q++) xf[q] = (float)check_normal(&rng);
        gram_array Xf = gram_array_f32(xf, n, D);
        oview G = make_out(n, n, 5, 3), H = make_out(n, n, 5, 0);
        CHECK_STATUS(gram_kernel_matrix(ctx, k, NULL, &Xf, &G.a), GRAM_OK);
        gram_context_set_threads(ctx, 1);
        CHECK_STATUS(gram_kernel_matrix(ctx, k, NULL, &Xf, &H.a), GRAM_OK);
        gram_context_set_threads(ctx, 0);
        CHECK(same_bits(&G, &H, 0) && oguards(&G), "streamed float32 K(X,X): threads / guards");
        long bad = 0;
        for (int64_t s = 0; s < 20000; s++) {
            int64_t i = check_int(&rng, 0, n - 1), j = check_int(&rng, 0, n - 1);
            ld t = 0;
            for (int64_t d = 0; d < D; d++) {
                ld e = ((ld)xf[i * D + d] - xf[j * D + d]) / 0.5L;
                t += e * e;
            }
            bad += !within(GRAM_MATERN52, t, D, ldexpl(1.0L, -24), ldexpl(1.0L, -24), oget(&G, i, j), NULL);
            bad += oget(&G, i, j) != oget(&G, j, i);
        }
        CHECK(bad == 0, "streamed float32 K(X,X): %ld values outside the bound or asymmetric", bad);
        free(G.mem), free(H.mem), free(xf);
    }
    gram_kernel_destroy(k);
    free(x), free(y);
}

static int64_t last_done;
static int cancel_cb(void *user, int64_t done, int64_t total)
{
    int64_t *calls = user;
    CHECK(done >= last_done && done <= total, "progress %lld after %lld of %lld", (long long)done,
          (long long)last_done, (long long)total);
    last_done = done;
    ++*calls;
    return done >= 3;
}

/* Cancellation, and kernels that take the tile path still right (the fused path declines them). */
static void test_misc(gram_context *ctx)
{
    const int64_t N = 700, D = 2;
    double *x = malloc(sizeof(double) * (size_t)(N * D));
    for (int64_t k = 0; k < N * D; k++) x[k] = check_normal(&rng);
    gram_array X = gram_array_f64(x, N, D);
    gram_kernel *k = NULL;
    CHECK_STATUS(gram_kernel_parse(ctx, "gaussian(1)", &k), GRAM_OK);
    oview G = make_out(N, N, 0, 0);
    int64_t calls = 0;
    gram_context_set_progress(ctx, cancel_cb, &calls);
    gram_context_set_threads(ctx, 1); /* the calling thread reports: with one, every block */
    last_done = 0;
    CHECK_STATUS(gram_kernel_matrix(ctx, k, NULL, &X, &G.a), GRAM_ECANCELLED);
    CHECK(calls == 3, "progress: %lld calls before cancelling (it asks at done = 3)", (long long)calls);
    last_done = 0;
    CHECK_STATUS(gram_kernel_matrix(ctx, k, &X, &X, &G.a), GRAM_ECANCELLED);
    gram_context_set_threads(ctx, 0);
    gram_context_set_progress(ctx, NULL, NULL);
    gram_kernel_destroy(k);
    /* tile path: the same bits for K(X,X) and K(copy, X), symmetric, guards */
    const char *specs[] = {"rq(lengthscale=1.3, alpha=2)", "1.5*gaussian(0.7) + matern32(2)", "laplacian_l1(1.5)",
                           "linear(lengthscale=1, sigma0=0.5)"};
    double *xc = malloc(sizeof(double) * (size_t)(N * D));
    memcpy(xc, x, sizeof(double) * (size_t)(N * D));
    gram_array Xc = gram_array_f64(xc, N, D);
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        CHECK_STATUS(gram_kernel_parse(ctx, specs[s], &k), GRAM_OK);
        oview A = make_out(N, N, 0, 1), B = make_out(N, N, 0, 1);
        CHECK_STATUS(gram_kernel_matrix(ctx, k, NULL, &X, &A.a), GRAM_OK);
        CHECK_STATUS(gram_kernel_matrix(ctx, k, &Xc, &X, &B.a), GRAM_OK);
        CHECK(oguards(&A) && oguards(&B), "%s: guards", specs[s]);
        long diff = 0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < N; j++) diff += fabs(oget(&A, i, j) - oget(&B, i, j)) > 1e-13 * (1 + fabs(oget(&B, i, j)));
        CHECK(diff == 0, "%s: K(X,X) and K(copy, X) differ in %ld places", specs[s], diff);
        free(A.mem), free(B.mem);
        gram_kernel_destroy(k);
    }
    free(G.mem), free(x), free(xc);
}

int main(void)
{
    const gram__ukr *tables[3];
    int nt = fused_tables(tables, NULL);
    for (int t = 0; t < nt; t++) {
        const gram__ukr *u = tables[t];
        CHECK((u->fused_matrix_f64 == NULL) == (u->fused_matrix_f32 == NULL), "%s: one fused_matrix without the other",
              u->name);
        if (!u->fused_matrix_f64) {
            printf("table %s: no fused_matrix\n", u->name);
            continue;
        }
        printf("table %s\n", u->name);
        test_kernel(u);
        test_kernel_exp(u, 0);
        test_kernel_exp(u, 1);
    }
    gram_context *ctx = NULL;
    CHECK_STATUS(gram_context_create(&ctx), GRAM_OK);
    for (int a = 0; a < 3; a++) {
        if (gram_context_set_arch(ctx, FUSED_ARCHS[a]) != GRAM_OK) {
            printf("arch %s: not available here\n", FUSED_ARCHS[a]);
            continue;
        }
        printf("gram_kernel_matrix, arch %s\n", FUSED_ARCHS[a]);
        test_api(ctx);
        if (a > 0) test_streaming(ctx);
        test_misc(ctx);
    }
    gram_context_destroy(ctx);
    return check_done();
}
