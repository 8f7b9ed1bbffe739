/* Three faults the spec fuzzer found (fuzz/pending/spec, issue 12), each against values written
 * here in long double:
 *   - a scale or constant below DBL_MIN, which the parser accepts, refused by
 *     gram_kernel_set_hyper with the kernel's own θ;
 *   - the padding of the last panel (a copy of the last point, weight 0) against a kernel value
 *     that overflowed to ±inf: inf·0 made the sum NaN where it is ±inf;
 *   - a power p < 1 of a kernel value that underflows: k^p = exp(p·log k) is a normal number
 *     (gaussian(0.05) at distance 2: k = e^-800 = 0 in double, k^0.5 = e^-400), but the direct
 *     paths computed pow(0, p) = 0. Checked in the pair path (value and gradient), the engine's
 *     Gram blocks, sums and log-sums on every microkernel table, gram_kernel_matrix_grad and the
 *     GP's weighted gradient blocks. */
#include "check.h"
#include "gram.h"
#include "kernel/kernel.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef long double ld;
static gram_context *ctx;
static const char *const ARCHS[] = {"ref", "avx2", "avx512"};

static gram_kernel *P(const char *spec) { return check_kernel(ctx, spec); }

/* ---- set_hyper with a subnormal scale or constant ------------------------------------------- */

static void test_set_hyper_subnormal(void)
{
    /* exp(log v) is within ~1e-13·v of v, below half the subnormal spacing 2^-1074 for these
     * values, so θ gives back the very same values and spec */
    const char *specs[] = {"rbf + constant(1e-320)", "1e-320*rbf", "rbf + white(noise=3e-315)", "constant(5e-324)",
                           "rational_quadratic(alpha=1e-310)"};
    double y[2] = {0.3, -0.1}, x[2] = {0.5, 0.2};
    for (int c = 0; c < 5; c++) {
        gram_kernel *k = P(specs[c]), *k2 = NULL;
        if (!k) continue;
        int64_t np = gram_kernel_n_hyper(k);
        double th[4] = {0}, th2[4] = {0};
        CHECK(np <= 4, "%s: %lld hyperparameters", specs[c], (long long)np);
        CHECK_STATUS(gram_kernel_get_hyper(k, th), GRAM_OK);
        int sub = 0;
        for (int64_t h = 0; h < np; h++) sub |= th[h] < log(DBL_MIN);
        CHECK(sub, "%s has a subnormal value", specs[c]);
        gram_status st = gram_kernel_set_hyper(ctx, k, th, &k2);
        CHECK(st == GRAM_OK && k2, "%s: set_hyper of its own theta: %d %s", specs[c], (int)st, gram_context_message(ctx));
        if (k2) {
            char a[256], b[256];
            gram_kernel_spec(k, a, sizeof a);
            gram_kernel_spec(k2, b, sizeof b);
            CHECK(strcmp(a, b) == 0, "%s: spec %s came back as %s", specs[c], a, b);
            CHECK_STATUS(gram_kernel_get_hyper(k2, th2), GRAM_OK);
            for (int64_t h = 0; h < np; h++) CHECK(th2[h] == th[h], "%s: theta[%lld] %.17g -> %.17g", specs[c], (long long)h, th[h], th2[h]);
            double v = NAN, v2 = NAN;
            CHECK_STATUS(gram_kernel_eval(ctx, k, 2, y, x, 1, &v, NULL), GRAM_OK);
            CHECK_STATUS(gram_kernel_eval(ctx, k2, 2, y, x, 1, &v2, NULL), GRAM_OK);
            CHECK(v == v2, "%s: value %.17g -> %.17g", specs[c], v, v2);
        }
        gram_kernel_destroy(k2);
        gram_kernel_destroy(k);
    }
    /* lengthscales and periods are divided by: a subnormal one is still refused, naming it */
    const char *divided[] = {"rbf", "periodic"};
    for (int c = 0; c < 2; c++) {
        gram_kernel *k = P(divided[c]), *k2 = NULL;
        if (!k) continue;
        double th[2];
        CHECK_STATUS(gram_kernel_get_hyper(k, th), GRAM_OK);
        th[c] = log(1e-320); /* rbf: the lengthscale; periodic: the period (θ1) */
        CHECK_STATUS(gram_kernel_set_hyper(ctx, k, th, &k2), GRAM_EINVAL);
        CHECK(k2 == NULL && strstr(gram_context_message(ctx), "reciprocal") &&
                  strstr(gram_context_message(ctx), c ? "period" : "lengthscale"),
              "%s: %s", divided[c], gram_context_message(ctx));
        gram_kernel_destroy(k);
    }
}

/* ---- the padding of the last panel against an overflowed value ------------------------------ */

static void test_inf_padding(void)
{
    /* 1e308·gaussian·10 is +inf where the gaussian exceeds 0.1 (the last point, for row 0), finite
     * elsewhere; neg_l2(1e-300) is -inf at every distance that overflows (the last point, for row
     * 0). N = 3, 5: the last panel is partly padding. */
    const char *specs[] = {"1e308*gaussian*10", "neg_l2(1e-300)"};
    for (int c = 0; c < 2; c++) {
        gram_kernel *k = P(specs[c]);
        if (!k) continue;
        for (int n = 3; n <= 5; n += 2) {
            double X[5] = {5.0, 9.0, 0.0, 7.0, 0.0}, Y[2], s[2];
            if (c == 0) Y[0] = X[n - 1], Y[1] = 20.0; /* row 1: every value finite (gaussian tiny) */
            else Y[0] = 1.0, Y[1] = X[0];             /* neg_l2: row 1 overflows too: -inf */
            if (c == 1) X[n - 1] = 3.0;               /* the last point far from both rows */
            gram_array xa = gram_array_f64(X, n, 1), ya = gram_array_f64(Y, 2, 1), sa = gram_array_f64(s, 2, 1);
            for (int a = 0; a < 3; a++) {
                if (gram_context_set_arch(ctx, ARCHS[a]) != GRAM_OK) continue;
                s[0] = s[1] = 0.0;
                CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, NULL, &sa), GRAM_OK);
                double want0 = c == 0 ? INFINITY : -INFINITY;
                CHECK(s[0] == want0, "%s [%s] N=%d: sum %g, want %g", specs[c], ARCHS[a], n, s[0], want0);
                if (c == 0) {
                    ld want = 0;
                    for (int j = 0; j < n; j++) want += 1e309L * expl(-((ld)Y[1] - X[j]) * ((ld)Y[1] - X[j]) / 2);
                    CHECK_CLOSE(s[1], want, 1e-13, 0, "finite row beside an infinite one");
                } else {
                    CHECK(s[1] == -INFINITY, "%s [%s] N=%d: row 1 sum %g", specs[c], ARCHS[a], n, s[1]);
                }
                /* a V = 2 sum with weights 1 and 2: the same rows, twice the second */
                double W[10], s2[4];
                for (int j = 0; j < n; j++) W[2 * j] = 1.0, W[2 * j + 1] = 2.0;
                gram_array wa = gram_array_f64(W, n, 2), s2a = gram_array_f64(s2, 2, 2);
                CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, &wa, &s2a), GRAM_OK);
                CHECK(s2[0] == want0 && s2[1] == want0, "%s [%s] N=%d V=2: %g %g", specs[c], ARCHS[a], n, s2[0], s2[1]);
            }
            gram_context_set_arch(ctx, "auto");
        }
        gram_kernel_destroy(k);
    }
}

/* ---- powers below 1 ------------------------------------------------------------------------ */

enum { D = 2, N = 203, M = 11 }; /* N: a partial last panel and chunk */

/* The cases: (operand)^p with the operand's log and its θ-derivatives in closed form. */
typedef struct pcase {
    const char *spec;
    double p;
    int nh;          /* hyperparameters: lengthscales (and a scale) in the kernel's order */
} pcase;

static const pcase CASES[] = {
    {"gaussian(0.05)^0.5", 0.5, 1},
    {"gaussian(0.05)^0.001", 1e-3, 1},
    {"exponential(0.001)^0.001", 1e-3, 1},
    {"exponential(0.002)^0.5", 0.5, 1},
    {"matern52(0.002)^0.5", 0.5, 1},
    {"matern52(0.001)^0.001", 1e-3, 1},
    {"(gaussian(0.05) + exponential(0.004))^0.5", 0.5, 2},
    {"(gaussian(0.05) + exponential(0.004))^0.001", 1e-3, 2},
    {"(3*gaussian(0.05))^0.5", 0.5, 2},
};
enum { NCASES = sizeof CASES / sizeof CASES[0] };

/* log k of one leaf at distance r, and ∂log k/∂log ℓ (in *dl) */
static ld leaf_log(int fam, ld r, ld l, ld *dl)
{
    ld z = r / l;
    if (fam == 0) { /* gaussian */
        *dl = z * z;
        return -z * z / 2;
    }
    if (fam == 1) { /* exponential */
        *dl = z;
        return -z;
    }
    ld a = sqrtl(5.0L) * z; /* matern52: log(1 + a + a²/3) - a; ∂/∂log ℓ = a²(1 + a)/(3(1 + a + a²/3)) */
    *dl = a * a * (1 + a) / (3 * (1 + a + a * a / 3));
    return logl(1 + a + a * a / 3) - a;
}

/* The case's k^p at (y, x), its log in *lg, and ∂(k^p)/∂θ in g[0 .. nh). */
static ld case_eval(int c, const double *y, const double *x, ld *lg, ld *g);

/* The tolerance of a derivative: the scaled distances carry a few ulps, so each leaf's log a few
 * ulps of its size, and a term's weight in a sum as much (the largest leaf log, |log k_l|). */
static ld g_scale;

static ld case_eval(int c, const double *y, const double *x, ld *lg, ld *g)
{
    ld r2 = 0;
    for (int d = 0; d < D; d++) r2 += ((ld)y[d] - x[d]) * ((ld)y[d] - x[d]);
    ld r = sqrtl(r2), p = CASES[c].p, lk, d0, d1 = 0;
    switch (c) {
    case 0:
    case 1: lk = leaf_log(0, r, 0.05L, &d0); break;
    case 2: lk = leaf_log(1, r, 0.001L, &d0); break;
    case 3: lk = leaf_log(1, r, 0.002L, &d0); break;
    case 4: lk = leaf_log(2, r, 0.002L, &d0); break;
    case 5: lk = leaf_log(2, r, 0.001L, &d0); break;
    case 6:
    case 7: {
        ld l1 = leaf_log(0, r, 0.05L, &d0), l2 = leaf_log(1, r, 0.004L, &d1);
        ld m = l1 > l2 ? l1 : l2, s = expl(l1 - m) + expl(l2 - m);
        lk = m + logl(s);
        d0 *= expl(l1 - lk); /* ∂log(k1 + k2)/∂θ1 = (k1/(k1 + k2)) ∂log k1/∂θ1 */
        d1 *= expl(l2 - lk);
        break;
    }
    default: /* 3·gaussian: ∂/∂log c = 1 */
        lk = logl(3.0L) + leaf_log(0, r, 0.05L, &d0);
        d1 = 1;
        break;
    }
    *lg = p * lk;
    g_scale = fabsl(lk);
    if (c == 6 || c == 7) {
        ld t;
        g_scale = fabsl(leaf_log(0, r, 0.05L, &t)) + fabsl(leaf_log(1, r, 0.004L, &t));
    }
    ld v = expl(p * lk);
    g[0] = p * v * d0;
    if (CASES[c].nh > 1) g[1] = p * v * d1;
    return v;
}

/* Points in [0, 3]²: pairs at distances from 0 to 4, so each operand underflows for some pairs
 * (gaussian(0.05) past r ≈ 1.93, exponential(0.001) past 0.745, ...) and not for others; the last
 * query sits on a data point. */
static void points(double *X, double *Y)
{
    check_rng rng = {20261207};
    for (int i = 0; i < N * D; i++) X[i] = 3.0 * check_uniform(&rng);
    for (int i = 0; i < M * D; i++) Y[i] = 3.0 * check_uniform(&rng);
    Y[(M - 1) * D] = X[7 * D];
    Y[(M - 1) * D + 1] = X[7 * D + 1];
}

/* The tolerance of a value whose log is lg: the scaled distances carry a few ulps, so the value
 * a few ulps times |log|. */
static double vtol(ld lg, double base) { return base * (1.0 + (double)fabsl(lg)); }

static void test_pow_pairs(void)
{
    static double X[N * D], Y[M * D];
    points(X, Y);
    int underflowed = 0;
    for (int c = 0; c < NCASES; c++) {
        gram_kernel *k = P(CASES[c].spec);
        if (!k) continue;
        CHECK(gram_kernel_n_hyper(k) == CASES[c].nh, "%s: %lld hyperparameters", CASES[c].spec,
              (long long)gram_kernel_n_hyper(k));
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j += 3) {
                ld lg, g[2], want = case_eval(c, Y + i * D, X + j * D, &lg, g);
                double v = -1.0, gr[2] = {NAN, NAN};
                CHECK_STATUS(gram_kernel_eval(ctx, k, D, Y + i * D, X + j * D, 0, &v, gr), GRAM_OK);
                CHECK_CLOSE(v, want, vtol(lg, 1e-14), 1e-300, CASES[c].spec);
                for (int h = 0; h < CASES[c].nh; h++)
                    CHECK_CLOSE(gr[h], g[h], vtol(g_scale, 2e-15), 1e-300, "pair gradient");
                underflowed += want > 0 && lg / CASES[c].p < -745.2L;
            }
        gram_kernel_destroy(k);
    }
    CHECK(underflowed > 100, "the cases reach operands that underflow (%d pairs)", underflowed);
}

static void test_pow_engine(void)
{
    static double X[N * D], Y[M * D], K[M * N], Gr[M * N * 2], s[M], ls[M], Kf[M * N];
    static float Xf[N * D], Yf[M * D];
    points(X, Y);
    for (int i = 0; i < N * D; i++) Xf[i] = (float)X[i];
    for (int i = 0; i < M * D; i++) Yf[i] = (float)Y[i];
    gram_array xa = gram_array_f64(X, N, D), ya = gram_array_f64(Y, M, D), ka = gram_array_f64(K, M, N);
    gram_array xf = gram_array_f32(Xf, N, D), yf = gram_array_f32(Yf, M, D), kf = gram_array_f64(Kf, M, N);
    gram_array sa = gram_array_f64(s, M, 1), la = gram_array_f64(ls, M, 1);
    for (int c = 0; c < NCASES; c++) {
        gram_kernel *k = P(CASES[c].spec);
        if (!k) continue;
        const int nh = CASES[c].nh;
        for (int a = 0; a < 3; a++) {
            if (gram_context_set_arch(ctx, ARCHS[a]) != GRAM_OK) continue;
            CHECK_STATUS(gram_kernel_matrix(ctx, k, &ya, &xa, &ka), GRAM_OK);
            CHECK_STATUS(gram_kernel_matrix(ctx, k, &yf, &xf, &kf), GRAM_OK);
            CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, NULL, &sa), GRAM_OK);
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &ya, &xa, NULL, &la), GRAM_OK);
            memset(Gr, 0, sizeof Gr);
            CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, &ya, &xa, &ka, Gr), GRAM_OK);
            for (int i = 0; i < M; i++) {
                ld sum = 0, lmax = -INFINITY, lsum = 0;
                for (int j = 0; j < N; j++) {
                    ld lg, g[2], want = case_eval(c, Y + i * D, X + j * D, &lg, g);
                    sum += want;
                    if (lg > lmax) lsum = lsum * expl(lmax - lg) + 1, lmax = lg;
                    else lsum += expl(lg - lmax);
                    char what[160];
                    snprintf(what, sizeof what, "%s [%s] K[%d,%d]", CASES[c].spec, ARCHS[a], i, j);
                    CHECK_CLOSE(K[i * N + j], want, vtol(lg, 1e-14), 1e-300, what);
                    for (int h = 0; h < nh; h++)
                        CHECK_CLOSE(Gr[(i * N + j) * nh + h], g[h], vtol(g_scale, 2e-15), 1e-300, "matrix_grad");
                    /* float32 inputs: the values of their rounded points, to float32's accuracy (a
                     * scaled difference carries u·(|y - c| + |x - c|)/ℓ, up to 1e-4 here) */
                    double yr[D], xr[D];
                    for (int d = 0; d < D; d++) yr[d] = Yf[i * D + d], xr[d] = Xf[j * D + d];
                    ld lgf, gf[2], wantf = case_eval(c, yr, xr, &lgf, gf);
                    if (wantf > 1e-30L) CHECK_CLOSE(Kf[i * N + j], wantf, vtol(lgf, 1e-4), 0, "float32 block");
                }
                char what[160];
                snprintf(what, sizeof what, "%s [%s] sum row %d", CASES[c].spec, ARCHS[a], i);
                CHECK_CLOSE(s[i], sum, 1e-12, 0, what);
                CHECK(sum > 1e-300L, "%s: row %d's sum is a normal number", CASES[c].spec, i);
                /* the log-sum, which had p·log k exactly already, unchanged */
                CHECK_CLOSE(ls[i], lmax + logl(lsum), 0, 1e-12 * (1.0 + (double)fabsl(lmax)), "log-sum");
            }
        }
        gram_context_set_arch(ctx, "auto");

        /* The GP's path: Σ_j w_j ∂k(x_i, x_j)/∂θ over blocks of pairs (gram__kernel_grad_block). */
        gram__grad_ws ws;
        CHECK_STATUS(gram__grad_ws_init(&ws, k, 64, NULL), GRAM_OK);
        double w[64], acc[2];
        for (int j = 0; j < 64; j++) w[j] = 0.5 + 0.01 * j;
        for (int i = 0; i < M; i++) {
            acc[0] = acc[1] = 0.0;
            gram__kernel_grad_block(k, &ws, D, Y + i * D, X + 64 * D, D, 64, -1, w, acc);
            ld want[2] = {0, 0};
            for (int j = 0; j < 64; j++) {
                ld lg, g[2];
                case_eval(c, Y + i * D, X + (64 + j) * D, &lg, g);
                for (int h = 0; h < nh; h++) want[h] += w[j] * g[h];
            }
            for (int h = 0; h < nh; h++) CHECK_CLOSE(acc[h], want[h], 1e-11, 1e-300, "grad_block");
        }
        gram__grad_ws_free(&ws);
        gram_kernel_destroy(k);
    }
}

/* A power p < 1 under other ops, and the ops a log region holds: a zero scale of a kernel that can
 * be negative, an even power of one, a product, a nested power; checked against the pair path's
 * long-double-free identities (k^p·k^q = k^(p+q) where both are normal) and against zero. */
static void test_pow_composites(void)
{
    static double X[N * D], Y[M * D], K[M * N], K2[M * N];
    points(X, Y);
    gram_array xa = gram_array_f64(X, N, D), ya = gram_array_f64(Y, M, D);
    gram_array ka = gram_array_f64(K, M, N), k2a = gram_array_f64(K2, M, N);
    /* (gaussian + 0*linear)^0.5 = gaussian^0.5 (a zero scale of a kernel that can be negative), a
     * nested power, products and sums of powers */
    const char *specs[][2] = {
        {"(gaussian(0.05) + 0*linear)^0.5", "gaussian(0.05)^0.5"},
        {"((gaussian(0.05))^0.5)^0.5", "gaussian(0.05)^0.25"},
        {"(gaussian(0.05)*exponential(0.004))^0.5", "gaussian(0.05)^0.5*exponential(0.004)^0.5"},
        {"2*(gaussian(0.05)^0.5 + exponential(0.004)^0.5)", "2*gaussian(0.05)^0.5 + 2*exponential(0.004)^0.5"},
    };
    for (int c = 0; c < 4; c++) {
        gram_kernel *k = P(specs[c][0]), *k2 = P(specs[c][1]);
        if (!k || !k2) continue;
        for (int a = 0; a < 3; a++) {
            if (gram_context_set_arch(ctx, ARCHS[a]) != GRAM_OK) continue;
            CHECK_STATUS(gram_kernel_matrix(ctx, k, &ya, &xa, &ka), GRAM_OK);
            CHECK_STATUS(gram_kernel_matrix(ctx, k2, &ya, &xa, &k2a), GRAM_OK);
            int pos = 0;
            for (int e = 0; e < M * N; e++) {
                CHECK_CLOSE(K[e], K2[e], 1e-10, 1e-300, specs[c][0]);
                pos += K2[e] > 0 && K2[e] < 1e-100;
            }
            CHECK(pos > 0, "%s: values from underflowed operands", specs[c][0]);
        }
        gram_context_set_arch(ctx, "auto");
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j += 5) {
                double v = NAN, v2 = NAN;
                gram_kernel_eval(ctx, k, D, Y + i * D, X + j * D, 0, &v, NULL);
                gram_kernel_eval(ctx, k2, D, Y + i * D, X + j * D, 0, &v2, NULL);
                CHECK_CLOSE(v, v2, 1e-10, 1e-300, "pair path, composite");
            }
        gram_kernel_destroy(k);
        gram_kernel_destroy(k2);
    }
}

/* A power of a base that can be negative inside a log region: (linear^2 · gaussian)^0.5 =
 * |σ0² + y·x| · gaussian^0.5, with its three derivatives (linear's lengthscale and σ0, gaussian's
 * lengthscale), in long double. */
static void test_pow_signed_base(void)
{
    static double X[N * D], Y[M * D], K[M * N], Gr[M * N * 3];
    points(X, Y);
    gram_kernel *k = P("(linear(sigma0=0.5)^2 * gaussian(0.05))^0.5");
    if (!k) return;
    CHECK(gram_kernel_n_hyper(k) == 3, "3 hyperparameters, got %lld", (long long)gram_kernel_n_hyper(k));
    gram_array xa = gram_array_f64(X, N, D), ya = gram_array_f64(Y, M, D), ka = gram_array_f64(K, M, N);
    for (int a = 0; a < 4; a++) {
        if (a < 3 && gram_context_set_arch(ctx, ARCHS[a]) != GRAM_OK) continue;
        if (a < 3) CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, &ya, &xa, &ka, Gr), GRAM_OK);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                const double *y = Y + i * D, *x = X + j * D;
                ld sxy = 0, r2 = 0;
                for (int d = 0; d < D; d++) sxy += (ld)y[d] * x[d], r2 += ((ld)y[d] - x[d]) * ((ld)y[d] - x[d]);
                ld lin = 0.25L + sxy, z2 = r2 / (0.05L * 0.05L), gh = expl(-z2 / 4), sg = lin < 0 ? -1 : 1;
                ld want = fabsl(lin) * gh, g[3] = {sg * -2 * sxy * gh, sg * 2 * 0.25L * gh, fabsl(lin) * 0.5L * gh * z2};
                double v = K[i * N + j], gr[3] = {Gr[(i * N + j) * 3], Gr[(i * N + j) * 3 + 1], Gr[(i * N + j) * 3 + 2]};
                if (a == 3) { /* the pair path */
                    if (j % 7) continue;
                    CHECK_STATUS(gram_kernel_eval(ctx, k, D, y, x, 0, &v, gr), GRAM_OK);
                }
                ld tol = 1e-13 * (1 + z2);
                CHECK_CLOSE(v, want, tol + 1e-14 / (1e-3 + fabsl(lin)), 1e-300, "(linear^2 * gaussian)^0.5");
                for (int h = 0; h < 3; h++)
                    CHECK_CLOSE(gr[h], g[h], tol + 1e-14 / (1e-3 + fabsl(lin)), 1e-300, "(linear^2 * gaussian)^0.5 gradient");
            }
    }
    gram_context_set_arch(ctx, "auto");
    gram_kernel_destroy(k);
}

int main(void)
{
    if (gram_context_create(&ctx)) return 1;
    test_set_hyper_subnormal();
    test_inf_padding();
    test_pow_pairs();
    test_pow_engine();
    test_pow_composites();
    test_pow_signed_base();
    gram_context_destroy(ctx);
    return check_done();
}
