/* The microkernel tables (ref, and avx2 / avx512 where the CPU has them) against long double:
 * gram's vector exp over its whole range, and every entry of the ukr.h contract (stat, apply for
 * every family in value and log space, sum, logsum) on random shapes, computed independently
 * here with long double loops over the same packed layout. Arrays are allocated at their exact
 * sizes so the sanitizer build catches any read outside them. */
#include "check.h"
#include "arccos_ref.h"
#include "matern_ref.h"

#include "base/base.h"
#include "engine/kernels/ukr.h"
#include "gram.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI_L 3.141592653589793238462643383279502884L

static check_rng rng = {20240611u};

/* Documented bounds (src/engine/kernels/simd/vmath.inc). */
#define EXP_F64_ULPS 1.0
#define EXP_F32_ULPS 1.0

/* ------------------------------------------------------------------------------------------ */
/* ulp errors                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* |got - want| in units of the last place of want in the output format (the subnormal spacing
 * below the normal range). A want that rounds past the largest finite value must give +inf. */
static double ulp_err(long double got, long double want, int mant, int emin, long double ovf)
{
    if (isnan(want)) return isnan(got) ? 0.0 : INFINITY;
    if (isnan(got)) return INFINITY;
    long double aw = fabsl(want);
    if (aw >= ovf) return (isinf(got) && (got > 0) == (want > 0)) ? 0.0 : INFINITY;
    if (isinf(got)) return INFINITY;
    int e;
    frexpl(aw, &e); /* aw = m·2^e, m in [0.5, 1) */
    if (e - 1 < emin) e = emin + 1;
    long double ulp = ldexpl(1.0L, e - mant);
    return (double)(fabsl(got - want) / ulp);
}
static double ulp_err_d(double got, long double want)
{
    return ulp_err(got, want, 53, -1022, ldexpl(1.0L, 1024) - ldexpl(1.0L, 970));
}
static double ulp_err_f(float got, long double want)
{
    return ulp_err(got, want, 24, -126, ldexpl(1.0L, 128) - ldexpl(1.0L, 103));
}

/* ------------------------------------------------------------------------------------------ */
/* exp                                                                                         */
/* ------------------------------------------------------------------------------------------ */

#define SWEEP 1000000

static void test_exp_f64(const gram__ukr *u)
{
    int64_t n = SWEEP + 200000 + 64;
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    int64_t k = 0;
    for (int64_t i = 0; i < SWEEP; i++) /* the whole range, jittered */
        x[k++] = -760.0 + 1480.0 * ((double)i + check_uniform(&rng)) / SWEEP;
    for (int64_t i = 0; i < 100000; i++) /* subnormal results and the underflow edge */
        x[k++] = -745.2 + 37.0 * check_uniform(&rng);
    for (int64_t i = 0; i < 50000; i++) /* the overflow edge */
        x[k++] = 709.0 + 1.0 * check_uniform(&rng);
    for (int64_t i = 0; i < 50000; i++) /* tiny arguments, both signs */
        x[k++] = (check_uniform(&rng) < 0.5 ? -1 : 1) * ldexp(1.0, -(int)check_int(&rng, 1, 1070)) *
                 (1 + check_uniform(&rng));
    while (k < n) x[k++] = check_normal(&rng);
    u->exp_f64(n, x, y);
    double worst = 0, worst_sub = 0, worst_x = 0;
    for (int64_t i = 0; i < n; i++) {
        long double want = expl((long double)x[i]);
        double e = ulp_err_d(y[i], want);
        if (want < ldexpl(1.0L, -1022)) {
            if (e > worst_sub) worst_sub = e;
        } else if (e > worst) {
            worst = e;
            worst_x = x[i];
        }
    }
    printf("  %-6s exp_f64: max %.3f ulp (normal results, at x = %.17g), %.3f ulp (subnormal/zero)\n",
           u->name, worst, worst_x, worst_sub);
    CHECK(worst <= EXP_F64_ULPS, "%s exp_f64: %.3f ulp > %.1f", u->name, worst, EXP_F64_ULPS);
    CHECK(worst_sub <= EXP_F64_ULPS, "%s exp_f64 subnormal: %.3f ulp", u->name, worst_sub);

    /* Special values, exactly. */
    const double sx[] = {0.0, -0.0, -INFINITY, INFINITY, -1e308, 1e308, -1000.0, 1000.0,
                         -745.14, -745.13, 709.78, 709.79, -708.39, 1.0, -1.0, 0x1p-1074};
    const double sw[] = {1.0, 1.0, 0.0, INFINITY, 0.0, INFINITY, 0.0, INFINITY,
                         0.0, 0x1p-1074, -1, INFINITY, -1, -1, -1, 1.0};
    int ns = (int)(sizeof sx / sizeof sx[0]);
    double sy[16], nanx = NAN, nany = 0;
    u->exp_f64(ns, sx, sy);
    for (int i = 0; i < ns; i++) {
        if (sw[i] >= 0)
            CHECK(sy[i] == sw[i], "%s exp_f64(%.17g) = %.17g, want %.17g", u->name, sx[i], sy[i], sw[i]);
        else
            CHECK(isfinite(sy[i]) && ulp_err_d(sy[i], expl((long double)sx[i])) <= EXP_F64_ULPS,
                  "%s exp_f64(%.17g) = %.17g", u->name, sx[i], sy[i]);
    }
    u->exp_f64(1, &nanx, &nany);
    CHECK(isnan(nany), "%s exp_f64(NaN) = %g", u->name, nany);
    /* Monotone across the underflow edge (no output above its neighbour's to the right). */
    int mono = 1;
    for (int64_t i = 1; i < SWEEP; i++) mono &= y[i] >= y[i - 1];
    CHECK(mono, "%s exp_f64 not monotone on the sweep", u->name);
    /* Every length 0..17 (the tails) gives the same values as the long call. */
    for (int64_t m = 0; m <= 17; m++) {
        double yt[17];
        u->exp_f64(m, x + 5, yt);
        for (int64_t i = 0; i < m; i++) CHECK(yt[i] == y[5 + i], "%s exp_f64 tail n=%lld", u->name, (long long)m);
    }
    free(x);
    free(y);
}

static void test_exp_f32(const gram__ukr *u)
{
    int64_t n = SWEEP + 200000 + 64;
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    int64_t k = 0;
    for (int64_t i = 0; i < SWEEP; i++)
        x[k++] = (float)(-110.0 + 205.0 * ((double)i + check_uniform(&rng)) / SWEEP);
    for (int64_t i = 0; i < 100000; i++) x[k++] = (float)(-104.0 + 17.0 * check_uniform(&rng));
    for (int64_t i = 0; i < 50000; i++) x[k++] = (float)(88.0 + 1.0 * check_uniform(&rng));
    for (int64_t i = 0; i < 50000; i++)
        x[k++] = (float)((check_uniform(&rng) < 0.5 ? -1 : 1) *
                         ldexp(1.0, -(int)check_int(&rng, 1, 148)) * (1 + check_uniform(&rng)));
    while (k < n) x[k++] = (float)check_normal(&rng);
    u->exp_f32(n, x, y);
    double worst = 0, worst_sub = 0, worst_x = 0;
    for (int64_t i = 0; i < n; i++) {
        long double want = expl((long double)x[i]);
        double e = ulp_err_f(y[i], want);
        if (want < ldexpl(1.0L, -126)) {
            if (e > worst_sub) worst_sub = e;
        } else if (e > worst) {
            worst = e;
            worst_x = x[i];
        }
    }
    printf("  %-6s exp_f32: max %.3f ulp (normal results, at x = %.9g), %.3f ulp (subnormal/zero)\n",
           u->name, worst, worst_x, worst_sub);
    CHECK(worst <= EXP_F32_ULPS, "%s exp_f32: %.3f ulp > %.1f", u->name, worst, EXP_F32_ULPS);
    CHECK(worst_sub <= EXP_F32_ULPS, "%s exp_f32 subnormal: %.3f ulp", u->name, worst_sub);

    const float sx[] = {0.0f, -0.0f, -INFINITY, INFINITY, -1e38f, 1e38f, -200.0f, 200.0f,
                        -103.98f, -103.2f, 88.72f, 88.73f, -87.4f, 1.0f, -1.0f, 0x1p-149f};
    const float sw[] = {1.0f, 1.0f, 0.0f, INFINITY, 0.0f, INFINITY, 0.0f, INFINITY,
                        0.0f, -1, -1, INFINITY, -1, -1, -1, 1.0f};
    int ns = (int)(sizeof sx / sizeof sx[0]);
    float sy[16], nanx = NAN, nany = 0;
    u->exp_f32(ns, sx, sy);
    for (int i = 0; i < ns; i++) {
        if (sw[i] >= 0)
            CHECK(sy[i] == sw[i], "%s exp_f32(%.9g) = %.9g, want %.9g", u->name, sx[i], sy[i], sw[i]);
        else
            CHECK(isfinite(sy[i]) && ulp_err_f(sy[i], expl((long double)sx[i])) <= EXP_F32_ULPS,
                  "%s exp_f32(%.9g) = %.9g", u->name, sx[i], sy[i]);
    }
    u->exp_f32(1, &nanx, &nany);
    CHECK(isnan(nany), "%s exp_f32(NaN) = %g", u->name, nany);
    int mono = 1;
    for (int64_t i = 1; i < SWEEP; i++) mono &= y[i] >= y[i - 1];
    CHECK(mono, "%s exp_f32 not monotone on the sweep", u->name);
    for (int64_t m = 0; m <= 17; m++) {
        float yt[17];
        u->exp_f32(m, x + 5, yt);
        for (int64_t i = 0; i < m; i++) CHECK(yt[i] == y[5 + i], "%s exp_f32 tail n=%lld", u->name, (long long)m);
    }
    free(x);
    free(y);
}

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static const int64_t NS[] = {16, 32, 256};
static const int64_t DS[] = {0, 1, 2, 3, 5, 17, 64};
static const int64_t VS[] = {1, 2, 3, 16};

static void *xmalloc(size_t bytes) { return malloc(bytes ? bytes : 1); }
/* A tile: rows × ldt elements, 64-byte aligned, exactly that size. */
static void *tile_alloc(int64_t rows, int64_t ldt, size_t elem)
{
    size_t bytes = (size_t)(rows * ldt) * elem;
    return aligned_alloc(64, bytes ? bytes : 64);
}

/* Pack points (n × D, row-major) into panels as ukr.h lays them out. */
static void pack_f64(int64_t n, int64_t D, const double *X, double *xp)
{
    for (int64_t j = 0; j < n; j++)
        for (int64_t d = 0; d < D; d++)
            xp[(j / GRAM_PANEL) * D * GRAM_PANEL + d * GRAM_PANEL + j % GRAM_PANEL] = X[j * D + d];
}
static void pack_f32(int64_t n, int64_t D, const float *X, float *xp)
{
    for (int64_t j = 0; j < n; j++)
        for (int64_t d = 0; d < D; d++)
            xp[(j / GRAM_PANEL) * D * GRAM_PANEL + d * GRAM_PANEL + j % GRAM_PANEL] = X[j * D + d];
}

/* ------------------------------------------------------------------------------------------ */
/* stat                                                                                        */
/* ------------------------------------------------------------------------------------------ */

static const char *SNAME[] = {"sqdist", "l1", "dot"};

/* The statistic and its condition (Σ |terms|) in long double from the unpacked points. */
static void stat_ld(gram_structure s, int64_t D, const long double *y, const long double *x,
                    long double *val, long double *cond)
{
    long double a = 0, c = 0;
    for (int64_t d = 0; d < D; d++) {
        long double t = s == GRAM_STRUCT_SQDIST ? (y[d] - x[d]) * (y[d] - x[d])
                        : s == GRAM_STRUCT_L1   ? fabsl(y[d] - x[d])
                                                : y[d] * x[d];
        a += t;
        c += fabsl(t);
    }
    *val = a;
    *cond = c;
}

static double worst_stat_f32;

static void test_stat_one(const gram__ukr *u, int f32, gram_structure s, int64_t mr, int64_t n, int64_t D)
{
    int64_t ldt = n + 16 * check_int(&rng, 0, 1);
    long double *Xl = xmalloc((size_t)(n * D) * sizeof *Xl), *Yl = xmalloc((size_t)(mr * D) * sizeof *Yl);
    double scale = check_uniform(&rng) < 0.5 ? 1.0 : 0.05;
    for (int64_t i = 0; i < n * D; i++) Xl[i] = check_normal(&rng) * scale;
    for (int64_t i = 0; i < mr * D; i++) Yl[i] = check_normal(&rng) * scale;
    /* padding points repeat the last real one, as the driver packs them */
    int64_t nreal = n - check_int(&rng, 0, 15);
    for (int64_t j = nreal; j < n; j++)
        for (int64_t d = 0; d < D; d++) Xl[j * D + d] = Xl[(nreal - 1) * D + d];
    const long double sentinel = 12345.0L;
    double worst = 0;
    int bad_sentinel = 0;
    if (!f32) {
        double *X = xmalloc((size_t)(n * D) * sizeof *X), *y = xmalloc((size_t)(mr * D) * sizeof *y);
        double *xp = xmalloc((size_t)(n * D) * sizeof *xp), *T = tile_alloc(mr, ldt, sizeof *T);
        for (int64_t i = 0; i < n * D; i++) Xl[i] = X[i] = (double)Xl[i];
        for (int64_t i = 0; i < mr * D; i++) Yl[i] = y[i] = (double)Yl[i];
        pack_f64(n, D, X, xp);
        for (int64_t i = 0; i < mr * ldt; i++) T[i] = (double)sentinel;
        u->stat_f64(s, mr, n, D, y, xp, T, ldt);
        for (int64_t i = 0; i < mr; i++) {
            for (int64_t j = 0; j < n; j++) {
                long double want, cond;
                stat_ld(s, D, Yl + i * D, Xl + j * D, &want, &cond);
                long double err = fabsl(T[i * ldt + j] - want);
                long double tol = (D + 2) * ldexpl(1.0L, -53) * cond;
                CHECK(err <= tol, "%s stat_f64 %s mr=%lld n=%lld D=%lld (%lld,%lld): got %.17g want %.17Lg",
                      u->name, SNAME[s], (long long)mr, (long long)n, (long long)D, (long long)i,
                      (long long)j, T[i * ldt + j], want);
                if (cond > 0 && (double)(err / cond) > worst) worst = (double)(err / cond);
            }
            for (int64_t j = n; j < ldt; j++) bad_sentinel |= T[i * ldt + j] != (double)sentinel;
        }
        free(X), free(y), free(xp), free(T);
    } else {
        float *X = xmalloc((size_t)(n * D) * sizeof *X), *y = xmalloc((size_t)(mr * D) * sizeof *y);
        float *xp = xmalloc((size_t)(n * D) * sizeof *xp), *T = tile_alloc(mr, ldt, sizeof *T);
        for (int64_t i = 0; i < n * D; i++) Xl[i] = X[i] = (float)Xl[i];
        for (int64_t i = 0; i < mr * D; i++) Yl[i] = y[i] = (float)Yl[i];
        pack_f32(n, D, X, xp);
        for (int64_t i = 0; i < mr * ldt; i++) T[i] = (float)sentinel;
        u->stat_f32(s, mr, n, D, y, xp, T, ldt);
        for (int64_t i = 0; i < mr; i++) {
            for (int64_t j = 0; j < n; j++) {
                long double want, cond;
                stat_ld(s, D, Yl + i * D, Xl + j * D, &want, &cond);
                long double err = fabsl(T[i * ldt + j] - want);
                /* float lanes: the standard bound for D rounded terms and their sum */
                long double tol = (D + 2) * ldexpl(1.0L, -24) * cond;
                CHECK(err <= tol, "%s stat_f32 %s mr=%lld n=%lld D=%lld (%lld,%lld): got %.9g want %.9Lg",
                      u->name, SNAME[s], (long long)mr, (long long)n, (long long)D, (long long)i,
                      (long long)j, T[i * ldt + j], want);
                if (cond > 0 && (double)(err / cond) > worst) worst = (double)(err / cond);
            }
            for (int64_t j = n; j < ldt; j++) bad_sentinel |= T[i * ldt + j] != (float)sentinel;
        }
        free(X), free(y), free(xp), free(T);
        if (worst > worst_stat_f32) worst_stat_f32 = worst;
    }
    CHECK(!bad_sentinel, "%s stat wrote past n", u->name);
    free(Xl);
    free(Yl);
}

static void test_stat(const gram__ukr *u)
{
    worst_stat_f32 = 0;
    for (int f32 = 0; f32 <= 1; f32++)
        for (int s = 0; s < 3; s++)
            for (size_t a = 0; a < sizeof NS / sizeof NS[0]; a++)
                for (size_t b = 0; b < sizeof DS / sizeof DS[0]; b++)
                    test_stat_one(u, f32, (gram_structure)s, check_int(&rng, 1, GRAM_MR), NS[a], DS[b]);
    /* every mr, and a large D (several L1 chunks of the panel) */
    for (int64_t mr = 1; mr <= GRAM_MR; mr++)
        for (int f32 = 0; f32 <= 1; f32++) test_stat_one(u, f32, GRAM_STRUCT_SQDIST, mr, 32, 784);
    test_stat_one(u, 0, GRAM_STRUCT_DOT, 7, 48, 784);
    test_stat_one(u, 1, GRAM_STRUCT_L1, 5, 48, 600);
    printf("  %-6s stat: float32 max error / Σ|terms| = %.3g\n", u->name, worst_stat_f32);
}

/* ------------------------------------------------------------------------------------------ */
/* apply                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static gram__leaf make_leaf(gram_family f, double *one, double *ls, int degree)
{
    gram__leaf L;
    memset(&L, 0, sizeof L);
    L.family = f;
    L.structure = gram__family_structure(f);
    L.n_scale = 1;
    L.inv_scale = one;
    L.lengthscale = ls;
    L.alpha = 1.5;
    L.period = 1.0;
    L.sigma0 = 0.5;
    L.gamma = 0.8;
    L.coef0 = 1.0;
    L.degree = degree;
    L.value = 1.0;
    L.noise = 1.0;
    L.nu = 1.3; /* the general Matérn: a ν with no closed form */
    L.hyper0 = 0;
    if (f == GRAM_MATERN) gram__matern_prepare(&L);
    return L;
}

static long double logvalue_ld(const gram__leaf *L, long double t, long double xx, long double yy);

/* The families re-derived in long double from gram.h's definitions. */
static long double value_ld(const gram__leaf *L, long double t, long double xx, long double yy)
{
    long double r, a;
    switch (L->family) {
    case GRAM_GAUSSIAN: return expl(-t / 2);
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_EXPONENTIAL: return expl(-sqrtl(t));
    case GRAM_MATERN32: a = sqrtl(3 * t); return (1 + a) * expl(-a);
    case GRAM_MATERN52: a = sqrtl(5 * t); return (1 + a + a * a / 3) * expl(-a);
    case GRAM_RATIONAL_QUADRATIC: return powl(1 + t / (2 * (long double)L->alpha), -(long double)L->alpha);
    case GRAM_CAUCHY: return 1 / (1 + t);
    case GRAM_PERIODIC: {
        long double s = sinl(PI_L * sqrtl(t)), l = L->lengthscale[0];
        return expl(-2 * s * s / (l * l));
    }
    case GRAM_TOPHAT: return t < 1 ? 1 : 0;
    case GRAM_EPANECHNIKOV: return t < 1 ? 1 - t : 0;
    case GRAM_TRIANGULAR: r = sqrtl(t); return r < 1 ? 1 - r : 0;
    case GRAM_COSINE_WINDOW: r = sqrtl(t); return r < 1 ? cosl(PI_L / 2 * r) : 0;
    case GRAM_NEG_L2: return -sqrtl(t);
    case GRAM_LAPLACIAN_L1: return expl(-t);
    case GRAM_NEG_L1: return -t;
    case GRAM_LINEAR: return (long double)L->sigma0 * L->sigma0 + t;
    case GRAM_POLYNOMIAL: return powl((long double)L->gamma * t + L->coef0, L->degree);
    case GRAM_COSINE: return xx <= 0 || yy <= 0 ? 0 : t / sqrtl(xx * yy);
    case GRAM_MATERN: return t > 0 ? expl(logvalue_ld(L, t, xx, yy)) : 1;
    case GRAM_SIGMOID: return tanhl((long double)L->gamma * t + L->coef0);
    case GRAM_SOFTMAX: return expl(t);
    case GRAM_ARCCOS: return arccos_ref_value(L->degree, t, xx, yy);
    default: return NAN;
    }
}

static long double logvalue_ld(const gram__leaf *L, long double t, long double xx, long double yy)
{
    long double a;
    switch (L->family) {
    case GRAM_GAUSSIAN: return -t / 2;
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_EXPONENTIAL: return -sqrtl(t);
    case GRAM_MATERN32: a = sqrtl(3 * t); return log1pl(a) - a;
    case GRAM_MATERN52: a = sqrtl(5 * t); return log1pl(a + a * a / 3) - a;
    case GRAM_RATIONAL_QUADRATIC: return -(long double)L->alpha * log1pl(t / (2 * (long double)L->alpha));
    case GRAM_CAUCHY: return -log1pl(t);
    case GRAM_PERIODIC: {
        long double s = sinl(PI_L * sqrtl(t)), l = L->lengthscale[0];
        return -2 * s * s / (l * l);
    }
    case GRAM_LAPLACIAN_L1: return -t;
    case GRAM_SOFTMAX: return t;
    case GRAM_EPANECHNIKOV: return t < 1 ? log1pl(-t) : -INFINITY;
    case GRAM_TRIANGULAR: return sqrtl(t) < 1 ? log1pl(-sqrtl(t)) : -INFINITY;
    case GRAM_MATERN: /* matern_ref.h: K_ν by quadrature of its integral representation */
        return t > 0 ? matern_ref_log_value(L->nu, sqrtl(2 * (long double)L->nu * t)) : 0;
    default: return logl(value_ld(L, t, xx, yy));
    }
}

/* Accept got if it is within tol (relative; log space: absolute, scaled by max(1, |want|)) of
 * the family at some statistic within ±4 units of roundoff of t: the statistic itself is a
 * rounded quantity, and this is the conditioning every implementation, family.c's included,
 * inherits (1 - √t near t = 1, σ0² + s near s = -σ0², ...). */
static int apply_ok(const gram__leaf *L, int lg, long double t, long double xx, long double yy, double got,
                    double tol, long double u, long double *want_out, int *well_conditioned)
{
    long double w[3];
    const long double dt[3] = {0, -4 * u, 4 * u};
    int n_nan = 0, n_ninf = 0;
    long double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < 3; k++) {
        long double tk = t * (1 + dt[k]);
        w[k] = lg ? logvalue_ld(L, tk, xx, yy) : value_ld(L, tk, xx, yy);
        if (isnan(w[k])) n_nan++;
        else if (isinf(w[k]) && w[k] < 0) n_ninf++;
        else {
            if (w[k] < lo) lo = w[k];
            if (w[k] > hi) hi = w[k];
        }
    }
    *want_out = w[0];
    *well_conditioned = n_nan == 0 && n_ninf == 0 &&
                        hi - lo <= 16 * u * (lg ? fmaxl(1, fabsl(w[0])) : fabsl(w[0]));
    if (n_nan == 3) return isnan(got);
    if (isnan(got)) return 0;
    if (n_ninf == 3) return isinf(got) && got < 0;
    if (isinf(got) && got < 0) return n_ninf > 0;
    if (n_nan + n_ninf == 3) return 0;
    long double slack_lo = lg ? tol * fmaxl(1, fabsl(lo)) : tol * fabsl(lo);
    long double slack_hi = lg ? tol * fmaxl(1, fabsl(hi)) : tol * fabsl(hi);
    return got >= lo - slack_lo && got <= hi + slack_hi;
}

static void fill_stat(const gram__leaf *L, long double *t, int64_t count)
{
    for (int64_t k = 0; k < count; k++) {
        double v;
        if (L->structure == GRAM_STRUCT_DOT) v = 6 * check_uniform(&rng) - 3;
        else v = 10 * check_uniform(&rng);
        if (L->structure != GRAM_STRUCT_DOT) {
            switch (check_int(&rng, 0, 40)) { /* edges of the compact families, and 0 */
            case 0: v = 0.0; break;
            case 1: v = 1.0; break;
            case 2: v = nextafter(1.0, 0.0); break;
            case 3: v = 0.999; break;
            case 4: v = 1e-12; break;
            default: break;
            }
        }
        t[k] = v;
    }
}

static double apply_worst[2][2]; /* [f32][log] relative (log: absolute) error seen */

static void test_apply_one(const gram__ukr *u, const gram__leaf *L, int lg, int f32, int64_t mr, int64_t n)
{
    int64_t ldt = n + 16 * check_int(&rng, 0, 1);
    long double *t = xmalloc((size_t)(mr * n) * sizeof *t), *xx = xmalloc((size_t)n * sizeof *xx),
                *yy = xmalloc((size_t)mr * sizeof *yy);
    fill_stat(L, t, mr * n);
    for (int64_t j = 0; j < n; j++) xx[j] = j % 17 == 3 ? 0 : 5 * check_uniform(&rng);
    for (int64_t i = 0; i < mr; i++) yy[i] = i == 2 ? 0 : 5 * check_uniform(&rng);
    double tol = f32 ? 1e-6 : 1e-12;
    long double ur = f32 ? ldexpl(1, -24) : ldexpl(1, -53);
    int bad = 0, bad_sentinel = 0;
    if (!f32) {
        double *T = tile_alloc(mr, ldt, sizeof *T), *X = xmalloc((size_t)n * sizeof *X),
               *Y = xmalloc((size_t)mr * sizeof *Y);
        for (int64_t j = 0; j < n; j++) X[j] = (double)xx[j];
        for (int64_t i = 0; i < mr; i++) Y[i] = (double)yy[i];
        for (int64_t i = 0; i < mr; i++)
            for (int64_t j = 0; j < ldt; j++) T[i * ldt + j] = j < n ? (double)t[i * n + j] : -7.0;
        u->apply_f64(L, lg, mr, n, T, ldt, Y, X);
        for (int64_t i = 0; i < mr; i++) {
            for (int64_t j = 0; j < n; j++) {
                long double want;
                int wc;
                double got = T[i * ldt + j];
                if (!apply_ok(L, lg, (double)t[i * n + j], X[j], Y[i], got, tol, ur, &want, &wc) && bad++ < 3)
                    CHECK(0, "%s apply_f64 %s%s t=%.17Lg: got %.17g want %.17Lg", u->name,
                          lg ? "log " : "", gram__family_name(L->family), t[i * n + j], got, want);
                if (wc && want != 0) {
                    double e = (double)(fabsl(got - want) / (lg ? fmaxl(1, fabsl(want)) : fabsl(want)));
                    if (e > apply_worst[0][lg]) apply_worst[0][lg] = e;
                }
            }
            for (int64_t j = n; j < ldt; j++) bad_sentinel |= T[i * ldt + j] != -7.0;
        }
        free(T), free(X), free(Y);
    } else {
        float *T = tile_alloc(mr, ldt, sizeof *T), *X = xmalloc((size_t)n * sizeof *X),
              *Y = xmalloc((size_t)mr * sizeof *Y);
        for (int64_t j = 0; j < n; j++) X[j] = (float)xx[j];
        for (int64_t i = 0; i < mr; i++) Y[i] = (float)yy[i];
        for (int64_t i = 0; i < mr; i++)
            for (int64_t j = 0; j < ldt; j++) T[i * ldt + j] = j < n ? (float)t[i * n + j] : -7.0f;
        u->apply_f32(L, lg, mr, n, T, ldt, Y, X);
        for (int64_t i = 0; i < mr; i++) {
            for (int64_t j = 0; j < n; j++) {
                long double want;
                int wc;
                float got = T[i * ldt + j];
                if (!apply_ok(L, lg, (float)t[i * n + j], X[j], Y[i], got, tol, ur, &want, &wc) && bad++ < 3)
                    CHECK(0, "%s apply_f32 %s%s t=%.9g: got %.9g want %.9Lg", u->name, lg ? "log " : "",
                          gram__family_name(L->family), (float)t[i * n + j], got, want);
                if (wc && want != 0) {
                    double e = (double)(fabsl(got - want) / (lg ? fmaxl(1, fabsl(want)) : fabsl(want)));
                    if (e > apply_worst[1][lg]) apply_worst[1][lg] = e;
                }
            }
            for (int64_t j = n; j < ldt; j++) bad_sentinel |= T[i * ldt + j] != -7.0f;
        }
        free(T), free(X), free(Y);
    }
    CHECK(bad == 0, "%s apply %s%s f32=%d: %d values off", u->name, lg ? "log " : "",
          gram__family_name(L->family), f32, bad);
    CHECK(!bad_sentinel, "%s apply wrote past n", u->name);
    free(t), free(xx), free(yy);
}

/* t < 0 (which the difference form never produces) reads as 0 in the SIMD tables. */
static void test_apply_clamp(const gram__ukr *u, const gram__leaf *L)
{
    double T[16] __attribute__((aligned(64))), Z[16] __attribute__((aligned(64)));
    for (int j = 0; j < 16; j++) T[j] = j % 2 ? -1e-300 : -0.0, Z[j] = 0.0;
    u->apply_f64(L, 0, 1, 16, T, 16, NULL, NULL);
    u->apply_f64(L, 0, 1, 16, Z, 16, NULL, NULL);
    for (int j = 0; j < 16; j++)
        CHECK(T[j] == Z[j], "%s apply %s clamp: f(%g) = %g, f(0) = %g", u->name,
              gram__family_name(L->family), j % 2 ? -1e-300 : -0.0, T[j], Z[j]);
}

static void test_apply(const gram__ukr *u)
{
    double one = 1.0, ls = 0.7;
    memset(apply_worst, 0, sizeof apply_worst);
    for (int f = 0; f < GRAM_FAMILY_COUNT; f++) {
        if (gram__family_structure((gram_family)f) == GRAM_STRUCT_CONST) continue;
        const int degrees[] = {3, 1, 2, 5}, arccos_degrees[] = {0, 1, 2};
        int nd = f == GRAM_POLYNOMIAL ? 4 : f == GRAM_ARCCOS ? 3 : 1;
        for (int di = 0; di < nd; di++) {
            gram__leaf L = make_leaf((gram_family)f, &one, &ls, f == GRAM_ARCCOS ? arccos_degrees[di] : degrees[di]);
            for (int lg = 0; lg <= 1; lg++)
                for (int f32 = 0; f32 <= 1; f32++)
                    for (size_t a = 0; a < sizeof NS / sizeof NS[0]; a++)
                        test_apply_one(u, &L, lg, f32, check_int(&rng, 1, GRAM_MR), NS[a]);
            if (strcmp(u->name, "ref") != 0 && L.structure != GRAM_STRUCT_DOT) test_apply_clamp(u, &L);
        }
    }
    printf("  %-6s apply (well-conditioned points): max rel err f64 %.3g, f64 log (abs) %.3g, f32 %.3g, f32 log (abs) %.3g\n",
           u->name, apply_worst[0][0], apply_worst[0][1], apply_worst[1][0], apply_worst[1][1]);
}

/* The vector log and log1p through the families that are exactly them: log(s) (linear with
 * σ0 = 0, log space), -log1p(t) (cauchy, log space) and log1p(-t) (epanechnikov, log space),
 * over the whole exponent range, in ulps. */
static void test_log_ulps(const gram__ukr *u)
{
    double one = 1.0, ls = 1.0;
    const gram_family fams[3] = {GRAM_LINEAR, GRAM_CAUCHY, GRAM_EPANECHNIKOV};
    const char *what[3] = {"log", "log1p", "log1p(-t)"};
    for (int f32 = 0; f32 <= 1; f32++)
        for (int w = 0; w < 3; w++) {
            gram__leaf L = make_leaf(fams[w], &one, &ls, 1);
            L.sigma0 = 0.0;
            const int64_t n = 4096;
            long double *t = xmalloc((size_t)n * sizeof *t);
            for (int64_t j = 0; j < n; j++) {
                double v = w == 2 ? check_uniform(&rng)
                           : f32 ? ldexp(1 + check_uniform(&rng), (int)check_int(&rng, -149, 127))
                                 : ldexp(1 + check_uniform(&rng), (int)check_int(&rng, -1074, 1022));
                if (w == 2 && j % 3 == 0) v = ldexp(v, -(int)check_int(&rng, 1, f32 ? 140 : 1000));
                t[j] = f32 ? (long double)(float)v : (long double)v;
            }
            t[0] = 0; /* log(0) = -inf, log1p(0) = 0 */
            double worst = 0;
            int bad = 0;
            if (f32) {
                float *T = tile_alloc(1, n, sizeof *T), *X = xmalloc((size_t)n * sizeof *X), Y = 1.0f;
                for (int64_t j = 0; j < n; j++) T[j] = (float)t[j], X[j] = 1.0f;
                u->apply_f32(&L, 1, 1, n, T, n, &Y, X);
                free(X);
                for (int64_t j = 0; j < n; j++) {
                    long double want = w == 0 ? logl(t[j]) : w == 1 ? -log1pl(t[j]) : log1pl(-t[j]);
                    double e = isinf(want) ? (T[j] == want ? 0 : INFINITY) : ulp_err_f(T[j], want);
                    if (e > worst) worst = e;
                    bad += e > 2.0;
                }
                free(T);
            } else {
                double *T = tile_alloc(1, n, sizeof *T), *X = xmalloc((size_t)n * sizeof *X), Y = 1.0;
                for (int64_t j = 0; j < n; j++) T[j] = (double)t[j], X[j] = 1.0;
                u->apply_f64(&L, 1, 1, n, T, n, &Y, X);
                free(X);
                for (int64_t j = 0; j < n; j++) {
                    long double want = w == 0 ? logl(t[j]) : w == 1 ? -log1pl(t[j]) : log1pl(-t[j]);
                    double e = isinf(want) ? (T[j] == want ? 0 : INFINITY) : ulp_err_d(T[j], want);
                    if (e > worst) worst = e;
                    bad += e > 2.0;
                }
                free(T);
            }
            printf("  %-6s %-9s %s: max %.3f ulp\n", u->name, what[w], f32 ? "f32" : "f64", worst);
            CHECK(bad == 0, "%s %s %s: %d values more than 2 ulp off (max %.3g)", u->name, what[w],
                  f32 ? "f32" : "f64", bad, worst);
            free(t);
        }
}

/* ------------------------------------------------------------------------------------------ */
/* sum                                                                                         */
/* ------------------------------------------------------------------------------------------ */

static void test_sum_one(const gram__ukr *u, int f32, int64_t mr, int64_t n, int64_t V)
{
    int64_t ldt = n + 16 * check_int(&rng, 0, 1);
    double *W = xmalloc((size_t)(n * V) * sizeof *W), *P = xmalloc((size_t)(mr * V) * sizeof *P);
    long double *Tl = xmalloc((size_t)(mr * n) * sizeof *Tl);
    int positive = check_uniform(&rng) < 0.5;
    for (int64_t k = 0; k < n * V; k++) W[k] = positive ? check_uniform(&rng) : check_normal(&rng);
    double *Td = NULL;
    float *Tf = NULL;
    if (f32) Tf = tile_alloc(mr, ldt, sizeof *Tf);
    else Td = tile_alloc(mr, ldt, sizeof *Td);
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < ldt; j++) {
            double v = check_uniform(&rng);
            if (f32) Tf[i * ldt + j] = (float)v, v = (float)v;
            else Td[i * ldt + j] = v;
            if (j < n) Tl[i * n + j] = v;
        }
    if (f32) u->sum_f32(mr, n, Tf, ldt, W, V, P);
    else u->sum_f64(mr, n, Td, ldt, W, V, P);
    int bad = 0;
    for (int64_t i = 0; i < mr; i++)
        for (int64_t v = 0; v < V; v++) {
            long double want = 0, cond = 0;
            for (int64_t j = 0; j < n; j++) {
                want += Tl[i * n + j] * W[j * V + v];
                cond += fabsl(Tl[i * n + j] * W[j * V + v]);
            }
            /* float64 accumulation in both dtypes: sums of positive terms to 1e-12 relative */
            if (!(fabsl(P[i * V + v] - want) <= 1e-12L * cond) && bad++ < 3)
                CHECK(0, "%s sum_%s mr=%lld n=%lld V=%lld (%lld,%lld): got %.17g want %.17Lg", u->name,
                      f32 ? "f32" : "f64", (long long)mr, (long long)n, (long long)V, (long long)i,
                      (long long)v, P[i * V + v], want);
        }
    CHECK(bad == 0, "%s sum: %d values off", u->name, bad);
    free(W), free(P), free(Tl), free(Td), free(Tf);
}

static void test_sum(const gram__ukr *u)
{
    for (int f32 = 0; f32 <= 1; f32++)
        for (size_t a = 0; a < sizeof NS / sizeof NS[0]; a++)
            for (size_t b = 0; b < sizeof VS / sizeof VS[0]; b++)
                for (int rep = 0; rep < 3; rep++)
                    test_sum_one(u, f32, check_int(&rng, 1, GRAM_MR), NS[a], VS[b]);
    for (int64_t mr = 1; mr <= GRAM_MR; mr++)
        for (int64_t V = 1; V <= 9; V++) test_sum_one(u, (int)(mr % 2), mr, 48, V);
}

/* ------------------------------------------------------------------------------------------ */
/* logsum                                                                                      */
/* ------------------------------------------------------------------------------------------ */

enum { LS_PLAIN, LS_ALL_NINF, LS_HUGE_NEG, LS_MIXED, LS_KINDS };
static const char *LSNAME[] = {"plain", "all -inf", "hugely negative", "mixed -inf"};

static void test_logsum_one(const gram__ukr *u, int f32, int kind, int64_t mr, int64_t n, int64_t V)
{
    int64_t ldt = n + 16 * check_int(&rng, 0, 1);
    double *LW = xmalloc((size_t)(n * V) * sizeof *LW);
    double *MX = xmalloc((size_t)(mr * V) * sizeof *MX), *S = xmalloc((size_t)(mr * V) * sizeof *S);
    double *Tv = xmalloc((size_t)(mr * n) * sizeof *Tv); /* the tile values, as doubles */
    int64_t npad = check_int(&rng, 0, 15);
    for (int64_t j = 0; j < n; j++)
        for (int64_t v = 0; v < V; v++)
            LW[j * V + v] = j >= n - npad ? -INFINITY : log(check_uniform(&rng) + 1e-3);
    for (int64_t i = 0; i < mr * n; i++) {
        double t;
        switch (kind) {
        case LS_ALL_NINF: t = -INFINITY; break;
        case LS_HUGE_NEG: t = -1e4 - 50 * check_uniform(&rng); break;
        case LS_MIXED: t = (i / n) % 2 == 0 || check_uniform(&rng) < 0.3 ? -INFINITY : -30 * check_uniform(&rng); break;
        default: t = -40 * check_uniform(&rng); break;
        }
        Tv[i] = f32 ? (double)(float)t : t;
    }
    double *Td = NULL;
    float *Tf = NULL;
    if (f32) {
        Tf = tile_alloc(mr, ldt, sizeof *Tf);
        for (int64_t i = 0; i < mr; i++)
            for (int64_t j = 0; j < ldt; j++) Tf[i * ldt + j] = j < n ? (float)Tv[i * n + j] : 3.0f;
        u->logsum_f32(mr, n, Tf, ldt, LW, V, MX, S);
    } else {
        Td = tile_alloc(mr, ldt, sizeof *Td);
        for (int64_t i = 0; i < mr; i++)
            for (int64_t j = 0; j < ldt; j++) Td[i * ldt + j] = j < n ? Tv[i * n + j] : 3.0;
        u->logsum_f64(mr, n, Td, ldt, LW, V, MX, S);
    }
    int bad = 0;
    for (int64_t i = 0; i < mr; i++)
        for (int64_t v = 0; v < V; v++) {
            double mx = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
                double z = Tv[i * n + j] + LW[j * V + v];
                if (z > mx) mx = z;
            }
            double gm = MX[i * V + v], gs = S[i * V + v];
            int ok;
            long double want_lse = -INFINITY, got_lse = -INFINITY;
            if (mx == -INFINITY) {
                ok = gm == -INFINITY && gs == 0.0;
            } else {
                long double s = 0;
                for (int64_t j = 0; j < n; j++) s += expl((long double)(Tv[i * n + j] + LW[j * V + v]) - mx);
                want_lse = mx + logl(s);
                got_lse = gm + logl(gs);
                ok = gm == mx && fabsl(gs - s) <= 1e-12L * s &&
                     fabsl(got_lse - want_lse) <= 1e-12L * fmaxl(1, fabsl(want_lse));
            }
            if (!ok && bad++ < 3)
                CHECK(0, "%s logsum_%s %s mr=%lld n=%lld V=%lld (%lld,%lld): MX %.17g S %.17g, want MX %.17g, log-sum %.17Lg got %.17Lg",
                      u->name, f32 ? "f32" : "f64", LSNAME[kind], (long long)mr, (long long)n,
                      (long long)V, (long long)i, (long long)v, gm, gs, mx, want_lse, got_lse);
        }
    CHECK(bad == 0, "%s logsum: %d values off", u->name, bad);
    free(LW), free(MX), free(S), free(Tv), free(Td), free(Tf);
}

static void test_logsum(const gram__ukr *u)
{
    for (int f32 = 0; f32 <= 1; f32++)
        for (int kind = 0; kind < LS_KINDS; kind++)
            for (size_t a = 0; a < sizeof NS / sizeof NS[0]; a++)
                for (size_t b = 0; b < sizeof VS / sizeof VS[0]; b++)
                    test_logsum_one(u, f32, kind, check_int(&rng, 1, GRAM_MR), NS[a], VS[b]);
    for (int64_t mr = 1; mr <= GRAM_MR; mr++)
        for (int64_t V = 1; V <= 9; V++) test_logsum_one(u, (int)(mr % 2), (int)(V % LS_KINDS), mr, 32, V);
}

/* n = 0 (a chunk with no points): statistics and values touch nothing, sums are 0, log-sums have
 * MX = -inf and S = 0. */
static void test_empty(const gram__ukr *u)
{
    double T[16] __attribute__((aligned(64))), W[1] = {0}, P[3], MX[3], S[3], y[2] = {0, 0};
    float Tf[16] __attribute__((aligned(64))), yf[2] = {0, 0};
    double one = 1.0, ls = 1.0;
    gram__leaf L = make_leaf(GRAM_GAUSSIAN, &one, &ls, 1);
    for (int j = 0; j < 16; j++) T[j] = 5.0, Tf[j] = 5.0f;
    u->stat_f64(GRAM_STRUCT_SQDIST, 1, 0, 2, y, W, T, 16);
    u->stat_f32(GRAM_STRUCT_SQDIST, 1, 0, 2, yf, (const float *)W, Tf, 16);
    u->apply_f64(&L, 0, 1, 0, T, 16, NULL, NULL);
    u->apply_f32(&L, 1, 1, 0, Tf, 16, NULL, NULL);
    CHECK(T[0] == 5.0 && Tf[0] == 5.0f, "%s n=0 wrote the tile", u->name);
    for (int64_t V = 1; V <= 3; V += 2) {
        u->sum_f64(1, 0, T, 16, W, V, P);
        CHECK(P[0] == 0.0 && P[V - 1] == 0.0, "%s sum_f64 n=0 V=%lld", u->name, (long long)V);
        u->sum_f32(1, 0, Tf, 16, W, V, P);
        CHECK(P[0] == 0.0 && P[V - 1] == 0.0, "%s sum_f32 n=0 V=%lld", u->name, (long long)V);
        u->logsum_f64(1, 0, T, 16, W, V, MX, S);
        CHECK(MX[0] == -INFINITY && S[0] == 0.0 && MX[V - 1] == -INFINITY && S[V - 1] == 0.0,
              "%s logsum_f64 n=0 V=%lld", u->name, (long long)V);
        u->logsum_f32(1, 0, Tf, 16, W, V, MX, S);
        CHECK(MX[0] == -INFINITY && S[0] == 0.0 && MX[V - 1] == -INFINITY && S[V - 1] == 0.0,
              "%s logsum_f32 n=0 V=%lld", u->name, (long long)V);
    }
}

/* ------------------------------------------------------------------------------------------ */

/* sin²(π√t) through the periodic family in log space with ℓ = √2 (so T ← -sin²(π√t)): vmath.inc's
 * exact reduction and sinpi polynomial (the SIMD tables), over r = √t from 0 to 1e6 (dense on [0, 2], near every
 * kind of integer and half-integer, random large; 1e3 in float32, where t = r² keeps r to 1e-4).
 * The allowed error is 8 ulps of 2s²/ℓ² (sinpi ≤ 2 ulp, squared, times -2/ℓ², itself rounded) plus what r's own rounding moves s² by (2π·|s|·ulp(r), to
 * first order: the conditioning every implementation has). */
static void test_sinpi(const gram__ukr *u, int f32)
{
    enum { N = 4096 };
    double one = 1.0, ls = sqrt(2.0), worst = 0;
    gram__leaf L = make_leaf(GRAM_PERIODIC, &one, &ls, 1);
    double *td = tile_alloc(1, N, sizeof *td); /* ukr.h: tiles are 64-byte aligned */
    float *tf = tile_alloc(1, N, sizeof *tf);
    long double *t = xmalloc(N * sizeof *t);
    const long double ue = f32 ? ldexpl(1, -24) : ldexpl(1, -53);
    const int64_t big = f32 ? 1000 : 1000000; /* t = r² keeps r to ~1e-4 relative in float32 */
    for (int rep = 0; rep < 64; rep++) {
        for (int k = 0; k < N; k++) {
            double r;
            switch (rep % 4) {
            case 0: r = 2.0 * (rep * N + k) / (64.0 * N); break;      /* dense on [0, 2) */
            case 1: r = (double)check_int(&rng, 0, big) + (check_uniform(&rng) - 0.5) * 1e-6; break;
            case 2: r = check_int(&rng, 0, 2000) * 0.5 + (check_uniform(&rng) - 0.5) * 1e-9; break;
            default: r = big * check_uniform(&rng); break;
            }
            r = fabs(r);
            double tt = r * r;
            if (f32) tf[k] = (float)tt, t[k] = tf[k];
            else td[k] = tt, t[k] = tt;
        }
        if (f32) u->apply_f32(&L, 1, 1, N, tf, N, NULL, NULL);
        else u->apply_f64(&L, 1, 1, N, td, N, NULL, NULL);
        for (int k = 0; k < N; k++) {
            long double r = sqrtl(t[k]), sl = sinl(PI_L * (r - nearbyintl(r)));
            long double s2 = 2 * sl * sl / ((long double)ls * ls); /* ℓ² is not exactly 2 */
            long double got = -(f32 ? (long double)tf[k] : (long double)td[k]);
            int e;
            frexpl(r > 0 ? r : 1, &e);
            long double ulp_r = ldexpl(1, e - (f32 ? 24 : 53));
            long double ulp_s2 = s2 > 0 ? ldexpl(1, (frexpl(s2, &e), e) - (f32 ? 24 : 53)) : ue * 1e-30L;
            long double err = fabsl(got - s2),
                        allow = 8 * ulp_s2 + 2 * PI_L * fabsl(sl) * ulp_r + 4 * ulp_r * ulp_r + (f32 ? 1e-45L : 1e-320L);
            long double rr = nearbyintl(r * 131072) / 131072; /* r exactly (t exact): no conditioning */
            if (rep % 4 == 0 && rr * rr == t[k] && s2 > 0 && (double)(err / ulp_s2) > worst) worst = (double)(err / ulp_s2);
            CHECK(err <= allow, "%s periodic %s: sin²(π·%.17Lg) = %.17Lg, want %.17Lg", u->name, f32 ? "f32" : "f64", r,
                  got, s2);
        }
    }
    printf("  %-6s sin²(πr)·2/ℓ² %s: max %.2f ulp where t = r² is exact\n", u->name, f32 ? "f32" : "f64", worst);
    free(td), free(tf), free(t);
}

/* The periodic family's values in float32, exp(-2 sin²(π√t)/ℓ²) and its log, within 1 ulp of the
 * long double value at the float32 t itself. The exponent x = -2s²/ℓ² passes its relative error
 * to the value multiplied by |x|, so an exponent formed in float32 lanes (3.8 ulp) was 21 ulp
 * (1.2e-6 relative) off at ℓ = 0.7, t = 2.249 on the AVX-512 table: the tables compute it in
 * float64 lanes and round once. A dense sweep of t in [0, 16), large t, and the value that
 * failed, for ℓ = 0.7 and 0.25 (|x| up to 32). */
static void test_periodic_f32(const gram__ukr *u)
{
    enum { N = 8192, REPS = 10 };
    const double lss[2] = {0.7, 0.25};
    float *T = tile_alloc(1, N, sizeof *T), *t = xmalloc(N * sizeof *t);
    double worst[2] = {0, 0};
    for (int li = 0; li < 2; li++) {
        double one = 1.0, ls = lss[li];
        gram__leaf L = make_leaf(GRAM_PERIODIC, &one, &ls, 1);
        for (int rep = 0; rep < REPS; rep++) {
            for (int k = 0; k < N; k++)
                t[k] = rep < 8 ? 16.0f * (float)(rep * N + k) / (8.0f * N) : (float)(1e6 * check_uniform(&rng));
            t[0] = 2.24900055f;
            for (int lg = 0; lg <= 1; lg++) {
                memcpy(T, t, N * sizeof *T);
                u->apply_f32(&L, lg, 1, N, T, N, NULL, NULL);
                int bad = 0;
                for (int k = 0; k < N; k++) {
                    long double r = sqrtl((long double)t[k]), s = sinl(PI_L * (r - nearbyintl(r)));
                    long double x = -2 * s * s / ((long double)ls * ls), want = lg ? x : expl(x);
                    /* log space near whole r, where x is ~0: ref's libm sin(π·r) is off by up to
                     * ~π·r·2^-53 absolute there, which x squares (the SIMD tables reduce exactly) */
                    long double near0 = -2 * ldexpl(4 * (r + 1), -52) * ldexpl(4 * (r + 1), -52) / ((long double)ls * ls);
                    double e = lg && want > near0 ? (T[k] >= 2 * near0 && T[k] <= 0 ? 0 : INFINITY)
                                                  : ulp_err_f(T[k], want);
                    if (e > worst[lg]) worst[lg] = e;
                    if (!(e <= 1.0) && bad++ < 3)
                        CHECK(0, "%s periodic f32 %s ℓ=%g t=%.9g: got %.9g want %.9Lg (%.3g ulp)", u->name,
                              lg ? "log" : "value", ls, t[k], T[k], want, e);
                }
                CHECK(bad == 0, "%s periodic f32 %s ℓ=%g: %d values more than 1 ulp off", u->name,
                      lg ? "log" : "value", ls, bad);
            }
        }
    }
    printf("  %-6s periodic f32 (ℓ = 0.7, 0.25): max %.3f ulp value, %.3f ulp log\n", u->name, worst[0], worst[1]);
    free(T), free(t);
}

int main(void)
{
    const gram__ukr *tables[3];
    int nt = 0;
    tables[nt++] = &gram__ukr_ref;
#ifdef GRAM_HAVE_X86_KERNELS
    if (gram__cpu_has_avx2()) tables[nt++] = &gram__ukr_avx2;
    else printf("skipped avx2: this CPU lacks AVX2/FMA\n");
    if (gram__cpu_has_avx512()) tables[nt++] = &gram__ukr_avx512;
    else printf("skipped avx512: this CPU lacks AVX-512F/DQ\n");
#else
    printf("skipped avx2, avx512: not compiled for x86-64\n");
#endif
    for (int k = 0; k < nt; k++) {
        const gram__ukr *u = tables[k];
        printf("table %s\n", u->name);
        test_exp_f64(u);
        test_exp_f32(u);
        test_stat(u);
        test_apply(u);
        test_log_ulps(u);
        test_sum(u);
        test_logsum(u);
        test_empty(u);
        if (u != &gram__ukr_ref) { /* ref is family.c: libm's sin(π·r), tested by test_apply for t ≤ 10 */
            test_sinpi(u, 0);
            test_sinpi(u, 1);
        }
        test_periodic_f32(u);
    }
    return check_done();
}
