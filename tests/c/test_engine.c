/* The engine against an independent long-double naive loop: every family, sums, log-sums, Gram
 * blocks and diagonals; shapes at tile edges; strides and memory orders; both dtypes; every
 * microkernel architecture this CPU runs; thread counts; properties without an oracle; bad input. */
#include "check.h"
#include "arccos_ref.h"
#include "gram.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef long double ld;

/* ---- the reference: kernels re-derived in long double -------------------------------------- */

typedef struct ref_leaf {
    const char *name; /* gram spec family name */
    int kind;         /* 0 radial (t = Σ((y-x)/ℓ)²), 1 L1, 2 dot, 3 const */
    ld p1, p2, p3;    /* family parameters */
    int nonneg, pd;
} ref_leaf;

static const ref_leaf LEAVES[] = {
    {"gaussian", 0, 0, 0, 0, 1, 1},      {"laplacian", 0, 0, 0, 0, 1, 1},
    {"matern12", 0, 0, 0, 0, 1, 1},      {"matern32", 0, 0, 0, 0, 1, 1},
    {"matern52", 0, 0, 0, 0, 1, 1},      {"rational_quadratic", 0, 1.7L, 0, 0, 1, 1},
    {"cauchy", 0, 0, 0, 0, 1, 1},        {"periodic", 0, 1.3L, 0, 0, 1, 1},
    {"tophat", 0, 0, 0, 0, 1, 0},        {"epanechnikov", 0, 0, 0, 0, 1, 0},
    {"exponential", 0, 0, 0, 0, 1, 1},   {"triangular", 0, 0, 0, 0, 1, 0},
    {"cosine_window", 0, 0, 0, 0, 1, 0}, {"neg_l2", 0, 0, 0, 0, 0, 0},
    {"laplacian_l1", 1, 0, 0, 0, 1, 1},  {"neg_l1", 1, 0, 0, 0, 0, 0},
    {"linear", 2, 0.6L, 0, 0, 0, 0},     {"polynomial", 2, 2, 0.3L, 0.8L, 1, 0},
    {"cosine", 2, 0, 0, 0, 0, 0},        {"softmax", 2, 0, 0, 0, 1, 1},
    {"arccos", 2, 0, 0, 0, 1, 1},        {"arccos", 2, 1, 0, 0, 1, 1},
    {"arccos", 2, 2, 0, 0, 1, 1},
};
#define N_LEAVES (int)(sizeof LEAVES / sizeof LEAVES[0])
#define N_LEAVES0 19 /* the leaves before softmax: the loops below give them (and the composites)
                      * the random draws they had before the later families were added */

/* Evaluate a leaf on one pair, ls: D lengthscales. For periodic ls[0] is the lengthscale and p1 the
 * period (unscaled distance). */
static ld ref_leaf_eval(const ref_leaf *L, int D, const ld *ls, const ld *y, const ld *x)
{
    const ld PI = 3.141592653589793238462643383279502884L;
    ld t = 0, s = 0, yy = 0, xx = 0;
    for (int d = 0; d < D; d++) {
        if (!strcmp(L->name, "periodic")) { ld u = y[d] - x[d]; t += u * u; continue; }
        ld a = y[d] / ls[d], b = x[d] / ls[d];
        t += L->kind == 1 ? fabsl(a - b) : (a - b) * (a - b);
        s += a * b, yy += a * a, xx += b * b;
    }
    ld r = sqrtl(t);
    const char *n = L->name;
    if (!strcmp(n, "gaussian")) return expl(-t / 2);
    if (!strcmp(n, "laplacian") || !strcmp(n, "matern12") || !strcmp(n, "exponential")) return expl(-r);
    if (!strcmp(n, "matern32")) return (1 + sqrtl(3.0L) * r) * expl(-sqrtl(3.0L) * r);
    if (!strcmp(n, "matern52")) return (1 + sqrtl(5.0L) * r + 5 * t / 3) * expl(-sqrtl(5.0L) * r);
    if (!strcmp(n, "rational_quadratic")) return powl(1 + t / (2 * L->p1), -L->p1);
    if (!strcmp(n, "cauchy")) return 1 / (1 + t);
    if (!strcmp(n, "periodic")) { ld q = sinl(PI * r / L->p1); return expl(-2 * q * q / (ls[0] * ls[0])); }
    if (!strcmp(n, "tophat")) return t < 1 ? 1 : 0;
    if (!strcmp(n, "epanechnikov")) return t < 1 ? 1 - t : 0;
    if (!strcmp(n, "triangular")) return r < 1 ? 1 - r : 0;
    if (!strcmp(n, "cosine_window")) return r < 1 ? cosl(PI * r / 2) : 0;
    if (!strcmp(n, "neg_l2")) return -r;
    if (!strcmp(n, "laplacian_l1")) return expl(-t);
    if (!strcmp(n, "neg_l1")) return -t;
    if (!strcmp(n, "linear")) return L->p1 * L->p1 + s;
    if (!strcmp(n, "polynomial")) return powl(L->p2 * s + L->p3, L->p1);
    if (!strcmp(n, "cosine")) return (xx == 0 || yy == 0) ? 0 : s / sqrtl(xx * yy);
    if (!strcmp(n, "softmax")) return expl(s);
    if (!strcmp(n, "arccos")) return arccos_ref_value((int)L->p1, s, xx, yy);
    return NAN;
}

/* A test kernel: one leaf, or one of a few composites. */
typedef struct tkernel tkernel;
static ld arccos_angle_bound(const tkernel *k, int D, const ld *y, const ld *x, ld eps);

struct tkernel {
    int leaf;       /* index into LEAVES, or -1 for a composite */
    int composite;  /* 0..2 */
    int ard;
    ld ls[64];
    char spec[2048];
    int nonneg, pd;
};

/* The error an arc-cosine value may carry from its angle (gram.h): cos θ off by δ (a few D ulps of
 * Σ|u_d v_d| over |x||y|) moves θ by ≤ √(2δ), and by ≤ δ/sin θ away from 0 and π; then
 * |J_0'| = 1, |J_1'| = φ sin θ, |J_2'| = 4 sin θ J_1 ≤ 4π sin θ. */
static ld arccos_angle_bound(const tkernel *k, int D, const ld *y, const ld *x, ld eps)
{
    const ld PI = 3.141592653589793238462643383279502884L;
    ld s = 0, xx = 0, yy = 0, a = 0;
    for (int d = 0; d < D; d++) {
        ld u = y[d] / k->ls[d], v = x[d] / k->ls[d];
        s += u * v, xx += v * v, yy += u * u, a += fabsl(u * v);
    }
    if (xx <= 0 || yy <= 0) return 0;
    int n = (int)LEAVES[k->leaf].p1;
    ld c = s / sqrtl(xx * yy), dc = 4 * (D + 2) * eps * (a / sqrtl(xx * yy) + 1), sn2 = 1 - (fabsl(c) + dc) * (fabsl(c) + dc);
    ld dth = sqrtl(2 * dc);
    if (sn2 > 0 && dc / sqrtl(sn2) < dth) dth = dc / sqrtl(sn2);
    ld sn = sqrtl(fmaxl(0, 1 - c * c)) + dth, m = n == 0 ? 1 : n == 1 ? sqrtl(xx * yy) : xx * yy;
    return m / PI * dth * (n == 0 ? 1 : n == 1 ? PI * sn : 4 * PI * sn);
}

static void fmt_ls(char *buf, size_t n, const tkernel *k, int D)
{
    if (!k->ard) { snprintf(buf, n, "%.21Lg", k->ls[0]); return; }
    size_t o = snprintf(buf, n, "[");
    for (int d = 0; d < D; d++) o += snprintf(buf + o, n - o, "%s%.21Lg", d ? "," : "", k->ls[d]);
    snprintf(buf + o, n - o, "]");
}

static void make_leaf(tkernel *k, int leaf, int D, int ard, check_rng *rng)
{
    memset(k, 0, sizeof *k);
    const ref_leaf *L = &LEAVES[leaf];
    k->leaf = leaf;
    k->ard = ard && D > 1 && strcmp(L->name, "periodic") != 0;
    ld base = sqrtl((ld)(D > 0 ? D : 1));
    for (int d = 0; d < 64; d++) k->ls[d] = k->ard || d == 0 ? base * (0.6L + 0.8L * check_uniform(rng)) : 0;
    if (!k->ard) for (int d = 1; d < 64; d++) k->ls[d] = k->ls[0];
    /* Compact kernels need a wider window to see several points. */
    if (L->kind == 0 && (!strcmp(L->name, "tophat") || !strcmp(L->name, "epanechnikov") ||
                         !strcmp(L->name, "triangular") || !strcmp(L->name, "cosine_window")))
        for (int d = 0; d < 64; d++) k->ls[d] *= 2.5L;
    char ls[1400];
    fmt_ls(ls, sizeof ls, k, D);
    const char *n = L->name;
    if (!strcmp(n, "rational_quadratic")) snprintf(k->spec, sizeof k->spec, "%s(lengthscale=%s, alpha=%.21Lg)", n, ls, L->p1);
    else if (!strcmp(n, "periodic")) snprintf(k->spec, sizeof k->spec, "periodic(lengthscale=%s, period=%.21Lg)", ls, L->p1);
    else if (!strcmp(n, "linear")) snprintf(k->spec, sizeof k->spec, "linear(lengthscale=%s, sigma0=%.21Lg)", ls, L->p1);
    else if (!strcmp(n, "polynomial"))
        snprintf(k->spec, sizeof k->spec, "polynomial(lengthscale=%s, degree=%d, gamma=%.21Lg, coef0=%.21Lg)", ls, (int)L->p1, L->p2, L->p3);
    else if (!strcmp(n, "arccos")) snprintf(k->spec, sizeof k->spec, "arccos(lengthscale=%s, degree=%d)", ls, (int)L->p1);
    else snprintf(k->spec, sizeof k->spec, "%s(lengthscale=%s)", n, ls);
    k->nonneg = L->nonneg;
    k->pd = L->pd;
}

/* Composites: 0: 1.5*gaussian(a) + matern32(b); 1: gaussian(a)*periodic(l=1.1,p=2) + white(0.3);
 * 2: (rq(a, alpha=2) + 0.5) * laplacian_l1(b) */
static void make_composite(tkernel *k, int which, int D, check_rng *rng)
{
    memset(k, 0, sizeof *k);
    k->leaf = -1;
    k->composite = which;
    ld base = sqrtl((ld)(D > 0 ? D : 1));
    k->ls[0] = base * (0.6L + 0.8L * check_uniform(rng));
    k->ls[1] = base * (0.6L + 0.8L * check_uniform(rng));
    if (which == 2) k->ls[1] *= base;
    if (which == 0) snprintf(k->spec, sizeof k->spec, "1.5*gaussian(%.21Lg) + matern32(%.21Lg)", k->ls[0], k->ls[1]);
    if (which == 1) snprintf(k->spec, sizeof k->spec, "gaussian(%.21Lg) * periodic(lengthscale=1.1, period=2) + white(0.3)", k->ls[0]);
    if (which == 2) snprintf(k->spec, sizeof k->spec, "(rq(lengthscale=%.21Lg, alpha=2) + 0.5) * laplacian_l1(%.21Lg)", k->ls[0], k->ls[1]);
    k->nonneg = 1;
    k->pd = 1;
}

static ld ref_eval(const tkernel *k, int D, const ld *y, const ld *x, int same)
{
    if (k->leaf >= 0) return ref_leaf_eval(&LEAVES[k->leaf], D, k->ls, y, x);
    ld la[64], lb[64];
    for (int d = 0; d < 64; d++) la[d] = k->ls[0], lb[d] = k->ls[1];
    ref_leaf g = {"gaussian", 0, 0, 0, 0, 1, 1}, m = {"matern32", 0, 0, 0, 0, 1, 1};
    ref_leaf per = {"periodic", 0, 2.0L, 0, 0, 1, 1}, rq = {"rational_quadratic", 0, 2.0L, 0, 0, 1, 1};
    ref_leaf l1 = {"laplacian_l1", 1, 0, 0, 0, 1, 1};
    ld pl[64];
    for (int d = 0; d < 64; d++) pl[d] = 1.1L;
    switch (k->composite) {
    case 0: return 1.5L * ref_leaf_eval(&g, D, la, y, x) + ref_leaf_eval(&m, D, lb, y, x);
    case 1: return ref_leaf_eval(&g, D, la, y, x) * ref_leaf_eval(&per, D, pl, y, x) + (same ? 0.3L : 0);
    default: return (ref_leaf_eval(&rq, D, la, y, x) + 0.5L) * ref_leaf_eval(&l1, D, lb, y, x);
    }
}

/* ---- arrays in any layout ------------------------------------------------------------------ */

typedef struct tarray {
    gram_array a;
    void *mem;
} tarray;

/* layout: 0 C order, 1 Fortran order, 2 padded rows, 3 reversed rows (negative stride). */
static tarray make_array(int64_t rows, int64_t cols, gram_dtype dt, int layout)
{
    tarray t;
    size_t es = dt == GRAM_FLOAT64 ? 8 : 4;
    int64_t pad = layout == 2 ? 3 : 0;
    int64_t cap = (rows * (cols + pad)) + 1;
    t.mem = calloc((size_t)cap, es);
    t.a.dtype = dt;
    t.a.rows = rows;
    t.a.cols = cols;
    t.a.data = t.mem;
    switch (layout) {
    case 1: t.a.row_stride = 1; t.a.col_stride = rows; break;
    case 2: t.a.row_stride = cols + pad; t.a.col_stride = 1; break;
    case 3:
        t.a.row_stride = -cols;
        t.a.col_stride = 1;
        t.a.data = (char *)t.mem + (size_t)((rows > 0 ? rows - 1 : 0) * cols) * es;
        break;
    default: t.a.row_stride = cols; t.a.col_stride = 1;
    }
    return t;
}

static void set(tarray *t, int64_t i, int64_t j, double v)
{
    int64_t off = i * t->a.row_stride + j * t->a.col_stride;
    if (t->a.dtype == GRAM_FLOAT64) ((double *)t->a.data)[off] = v;
    else ((float *)t->a.data)[off] = (float)v;
}

static ld get(const tarray *t, int64_t i, int64_t j)
{
    int64_t off = i * t->a.row_stride + j * t->a.col_stride;
    return t->a.dtype == GRAM_FLOAT64 ? (ld)((double *)t->a.data)[off] : (ld)((float *)t->a.data)[off];
}

static void row(const tarray *t, int64_t i, ld *out)
{
    for (int64_t d = 0; d < t->a.cols; d++) out[d] = get(t, i, d);
}

/* ---- one full comparison ---------------------------------------------------------------------- */

static const char *ARCHS[] = {"ref", "avx2", "avx512"};
static int arch_ok[3];

static void compare_case(gram_context *ctx, const tkernel *tk, int64_t M, int64_t N, int64_t D, int64_t V,
                         gram_dtype dt, int layout, int sym, check_rng *rng, int arch)
{
    gram_kernel *k = NULL;
    gram_status s = gram_kernel_parse(ctx, tk->spec, &k);
    CHECK(s == GRAM_OK, "parse '%s': %s", tk->spec, gram_context_message(ctx));
    if (s) return;
    if (sym) M = N;
    tarray X = make_array(N, D, dt, layout), Y = sym ? X : make_array(M, D, dt, (layout + 1) % 4);
    tarray W = make_array(N, V, GRAM_FLOAT64, layout % 2);
    tarray out = make_array(M, V, GRAM_FLOAT64, 0), lout = make_array(M, V, GRAM_FLOAT64, 1);
    tarray G = make_array(M, N, dt == GRAM_FLOAT64 ? GRAM_FLOAT64 : GRAM_FLOAT32, layout % 2);
    for (int64_t i = 0; i < N; i++)
        for (int64_t d = 0; d < D; d++) set(&X, i, d, check_normal(rng));
    if (!sym)
        for (int64_t i = 0; i < M; i++)
            for (int64_t d = 0; d < D; d++) set(&Y, i, d, check_normal(rng) * 1.1);
    for (int64_t j = 0; j < N; j++)
        for (int64_t v = 0; v < V; v++) set(&W, j, v, 0.25 + check_uniform(rng));

    CHECK(gram_context_set_arch(ctx, ARCHS[arch]) == GRAM_OK, "set arch");
    s = gram_kernel_sum(ctx, k, &Y.a, &X.a, &W.a, &out.a);
    CHECK(s == GRAM_OK, "sum %s: %s", tk->spec, gram_context_message(ctx));
    int do_log = tk->nonneg;
    if (do_log) {
        s = gram_kernel_logsum(ctx, k, &Y.a, &X.a, &W.a, &lout.a);
        CHECK(s == GRAM_OK, "logsum %s: %s", tk->spec, gram_context_message(ctx));
    }
    s = gram_kernel_matrix(ctx, k, sym ? NULL : &Y.a, &X.a, &G.a);
    CHECK(s == GRAM_OK, "matrix %s: %s", tk->spec, gram_context_message(ctx));

    /* f64: every kernel value within a few ulps; f32: statistics in float, 1e-6 relative. */
    ld rtol = dt == GRAM_FLOAT64 ? 1e-12L : 1e-6L;
    ld kabs = dt == GRAM_FLOAT64 ? 1e-14L : 2e-7L;
    /* arccos takes θ from the statistics' cos θ, whose relative error δ (the dtype's, times a few
     * D) moves θ by up to √(2δ) where the points are (anti)parallel: gram.h's bound, per pair */
    const int arc = tk->leaf >= 0 && !strcmp(LEAVES[tk->leaf].name, "arccos");
    ld y[64], x[64];
    long bad = 0;
    for (int64_t i = 0; i < M && bad < 3; i++) {
        row(&Y, i, y);
        ld acc[16] = {0}, mag[16] = {0}, lmax[16], lsum[16] = {0}, angle[16] = {0};
        ld kv[4096];
        for (int v = 0; v < V; v++) lmax[v] = -INFINITY;
        for (int64_t j = 0; j < N; j++) {
            row(&X, j, x);
            ld kij = ref_eval(tk, (int)D, y, x, sym && i == j);
            kv[j] = kij;
            ld g = get(&G, i, j);
            ld scale = fabsl(kij) > 1 ? fabsl(kij) : 1;
            ld ab = arc ? arccos_angle_bound(tk, (int)D, y, x, dt == GRAM_FLOAT64 ? DBL_EPSILON : FLT_EPSILON) : 0;
            if (!(fabsl(g - kij) <= rtol * scale * 4 + kabs + ab)) {
                bad++;
                CHECK(0, "%s %s M=%lld N=%lld D=%lld layout=%d: K[%lld,%lld] = %.17Lg, want %.17Lg", ARCHS[arch], tk->spec,
                      (long long)M, (long long)N, (long long)D, layout, (long long)i, (long long)j, g, kij);
                break;
            }
            for (int v = 0; v < V; v++) {
                ld w = get(&W, j, v);
                acc[v] += kij * w;
                mag[v] += fabsl(kij * w);
                angle[v] += ab * w;
                if (kij > 0) { ld a = logl(kij) + logl(w); if (a > lmax[v]) lmax[v] = a; }
            }
        }
        if (bad) break;
        char what[2200];
        snprintf(what, sizeof what, "%s %s D=%lld sum", ARCHS[arch], tk->spec, (long long)D);
        for (int v = 0; v < V; v++) {
            CHECK_CLOSE(get(&out, i, v), acc[v], 0, rtol * mag[v] + angle[v] + 1e-300L, what);
            if (do_log && arc) { /* the angle's bound is absolute: compare the sum itself */
                CHECK_CLOSE(expl(get(&lout, i, v)), acc[v], 0, rtol * mag[v] + angle[v] + 1e-300L, "arccos logsum");
            } else if (do_log) {
                for (int64_t j = 0; j < N; j++)
                    if (kv[j] > 0) lsum[v] += expl(logl(kv[j]) + logl(get(&W, j, v)) - lmax[v]);
                ld want = lmax[v] == -INFINITY ? -INFINITY : lmax[v] + logl(lsum[v]);
                ld got = get(&lout, i, v);
                if (want == -INFINITY) CHECK(got == -INFINITY, "logsum: got %Lg, want -inf", got);
                else CHECK_CLOSE(expl(got - want), 1.0L, 0, rtol * 2, "logsum (ratio)");
            }
        }
    }
    /* Diagonal. */
    tarray dg = make_array(N, 1, GRAM_FLOAT64, 0);
    s = gram_kernel_diag(ctx, k, &X.a, &dg.a);
    CHECK(s == GRAM_OK, "diag: %s", gram_context_message(ctx));
    for (int64_t j = 0; j < N; j++) {
        row(&X, j, x);
        ld want = ref_eval(tk, (int)D, x, x, 1);
        CHECK_CLOSE(get(&dg, j, 0), want, rtol * 4, kabs, "diag");
    }
    gram_kernel_destroy(k);
    free(X.mem);
    if (!sym) free(Y.mem);
    free(W.mem), free(out.mem), free(lout.mem), free(G.mem), free(dg.mem);
}

static void test_families(gram_context *ctx)
{
    check_rng rng = {42};
    static const int64_t sizes[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 255, 256, 257, 300};
    const int ns = sizeof sizes / sizeof sizes[0];
    static const int64_t dims[] = {0, 1, 2, 3, 5, 17};
    check_rng rng_new = {4242};
    for (int arch = 0; arch < 3; arch++) {
        if (!arch_ok[arch]) continue;
        for (int fi = 0; fi < N_LEAVES + 3; fi++)
            for (int rep = 0; rep < 6; rep++) {
                /* fi: the first leaves, the composites, then the later leaves on their own stream */
                int f = fi < N_LEAVES0 ? fi : fi < N_LEAVES0 + 3 ? N_LEAVES + fi - N_LEAVES0 : fi - 3;
                check_rng *rngp = fi < N_LEAVES0 + 3 ? &rng : &rng_new;
#define rng (*rngp)
                int64_t D = dims[check_int(&rng, 0, 5)];
                int64_t M = sizes[check_int(&rng, 0, ns - 1)], N = sizes[check_int(&rng, 0, ns - 1)];
                int64_t V = rep % 3 == 2 ? 3 : 1;
                gram_dtype dt = rep % 2 ? GRAM_FLOAT32 : GRAM_FLOAT64;
                int layout = (int)check_int(&rng, 0, 3), sym = rep == 4;
                tkernel tk;
                if (f < N_LEAVES) make_leaf(&tk, f, (int)D, rep % 2 == 0, &rng);
                else make_composite(&tk, f - N_LEAVES, (int)D, &rng);
                if (D == 0 && tk.leaf >= 0 && LEAVES[tk.leaf].kind == 2) D = 1; /* cosine of nothing */
                compare_case(ctx, &tk, M, N, D, V, dt, layout, sym, &rng, arch);
#undef rng
            }
    }
}

/* ---- bit-identity across thread counts ------------------------------------------------------ */

static void test_threads(gram_context *ctx)
{
    check_rng rng = {7};
    gram_kernel *k;
    CHECK_STATUS(gram_kernel_parse(ctx, "gaussian(0.8) + 0.5*matern52(1.5)", &k), GRAM_OK);
    const int64_t shapes[][3] = {{5, 3000, 3}, {200, 1000, 4}, {9, 257, 2}, {1, 5000, 1}};
    for (int sh = 0; sh < 4; sh++)
        for (int dt = 0; dt < 2; dt++)
            for (int arch = 0; arch < 3; arch++) {
                if (!arch_ok[arch]) continue;
                gram_context_set_arch(ctx, ARCHS[arch]);
                int64_t M = shapes[sh][0], N = shapes[sh][1], D = shapes[sh][2], V = 2;
                tarray X = make_array(N, D, dt ? GRAM_FLOAT32 : GRAM_FLOAT64, 0);
                tarray Y = make_array(M, D, dt ? GRAM_FLOAT32 : GRAM_FLOAT64, 0);
                tarray W = make_array(N, V, GRAM_FLOAT64, 0);
                for (int64_t i = 0; i < N; i++) {
                    for (int64_t d = 0; d < D; d++) set(&X, i, d, check_normal(&rng));
                    for (int64_t v = 0; v < V; v++) set(&W, i, v, check_uniform(&rng));
                }
                for (int64_t i = 0; i < M; i++)
                    for (int64_t d = 0; d < D; d++) set(&Y, i, d, check_normal(&rng));
                double *ref_sum = NULL, *ref_log = NULL;
                for (int th = 1; th <= 3; th++) {
                    gram_context_set_threads(ctx, th);
                    tarray o = make_array(M, V, GRAM_FLOAT64, 0), lo = make_array(M, V, GRAM_FLOAT64, 0);
                    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y.a, &X.a, &W.a, &o.a), GRAM_OK);
                    CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y.a, &X.a, &W.a, &lo.a), GRAM_OK);
                    if (th == 1) { ref_sum = o.mem; ref_log = lo.mem; continue; }
                    CHECK(!memcmp(ref_sum, o.mem, sizeof(double) * (size_t)(M * V)),
                          "sum differs between 1 and %d threads (M=%lld N=%lld %s)", th, (long long)M, (long long)N, ARCHS[arch]);
                    CHECK(!memcmp(ref_log, lo.mem, sizeof(double) * (size_t)(M * V)),
                          "logsum differs between 1 and %d threads (M=%lld N=%lld)", th, (long long)M, (long long)N);
                    free(o.mem), free(lo.mem);
                }
                free(ref_sum), free(ref_log), free(X.mem), free(Y.mem), free(W.mem);
            }
    gram_context_set_threads(ctx, 0);
    gram_kernel_destroy(k);
}

/* ---- properties without an oracle ------------------------------------------------------------ */

static int cholesky_ok(ld *A, int n)
{
    for (int j = 0; j < n; j++) {
        ld s = A[j * n + j];
        for (int k = 0; k < j; k++) s -= A[j * n + k] * A[j * n + k];
        if (!(s > 0)) return 0;
        ld l = sqrtl(s);
        A[j * n + j] = l;
        for (int i = j + 1; i < n; i++) {
            ld t = A[i * n + j];
            for (int k = 0; k < j; k++) t -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = t / l;
        }
    }
    return 1;
}

static void test_properties(gram_context *ctx, const int D)
{
    check_rng rng = {99};
    gram_context_set_arch(ctx, "auto");
    const int n = 60, V = 2;
    tarray X = make_array(n, D, GRAM_FLOAT64, 0), Y = make_array(17, D, GRAM_FLOAT64, 0);
    for (int i = 0; i < n; i++)
        for (int d = 0; d < D; d++) set(&X, i, d, check_normal(&rng));
    for (int i = 0; i < 17; i++)
        for (int d = 0; d < D; d++) set(&Y, i, d, check_normal(&rng));
    for (int fi = 0; fi < N_LEAVES + 3; fi++) {
        int f = fi < N_LEAVES0 ? fi : fi < N_LEAVES0 + 3 ? N_LEAVES + fi - N_LEAVES0 : fi - 3; /* as test_families */
        tkernel tk;
        if (f < N_LEAVES) make_leaf(&tk, f, D, 1, &rng);
        else make_composite(&tk, f - N_LEAVES, D, &rng);
        gram_kernel *k;
        if (gram_kernel_parse(ctx, tk.spec, &k)) { CHECK(0, "parse %s", tk.spec); continue; }
        /* Symmetry of K(X, X). */
        tarray G = make_array(n, n, GRAM_FLOAT64, 0);
        CHECK_STATUS(gram_kernel_matrix(ctx, k, NULL, &X.a, &G.a), GRAM_OK);
        int sym = 1;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) sym &= get(&G, i, j) == get(&G, j, i);
        CHECK(sym, "K(X,X) not symmetric for %s", tk.spec);
        /* Cholesky of K + εI for positive-definite families. The periodic kernel of the Euclidean
         * distance is positive definite in one dimension only. */
        if (tk.pd && (D == 1 || !strstr(tk.spec, "periodic"))) {
            ld *A = malloc(sizeof(ld) * n * n);
            /* arccos(degree=0)'s values may be ~1e-8 off near (anti)parallel pairs (gram.h) */
            ld eps = strstr(tk.spec, "arccos") && strstr(tk.spec, "degree=0") ? 1e-6L : 1e-8L;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) A[i * n + j] = get(&G, i, j) + (i == j ? eps : 0);
            CHECK(cholesky_ok(A, n), "Cholesky of K+εI failed for %s", tk.spec);
            free(A);
        }
        /* Linearity in W: sum(W1 + 2 W2) = sum(W1) + 2 sum(W2). */
        tarray W1 = make_array(n, V, GRAM_FLOAT64, 0), W2 = make_array(n, V, GRAM_FLOAT64, 0), W3 = make_array(n, V, GRAM_FLOAT64, 0);
        for (int j = 0; j < n; j++)
            for (int v = 0; v < V; v++) {
                double a = check_normal(&rng), b = check_normal(&rng);
                set(&W1, j, v, a), set(&W2, j, v, b), set(&W3, j, v, a + 2 * b);
            }
        tarray o1 = make_array(17, V, GRAM_FLOAT64, 0), o2 = make_array(17, V, GRAM_FLOAT64, 0), o3 = make_array(17, V, GRAM_FLOAT64, 0);
        CHECK_STATUS(gram_kernel_sum(ctx, k, &Y.a, &X.a, &W1.a, &o1.a), GRAM_OK);
        CHECK_STATUS(gram_kernel_sum(ctx, k, &Y.a, &X.a, &W2.a, &o2.a), GRAM_OK);
        CHECK_STATUS(gram_kernel_sum(ctx, k, &Y.a, &X.a, &W3.a, &o3.a), GRAM_OK);
        for (int i = 0; i < 17; i++)
            for (int v = 0; v < V; v++) {
                ld scale = 0;
                for (int j = 0; j < n; j++) scale += fabsl(get(&W3, j, v)) * 10;
                CHECK_CLOSE(get(&o3, i, v), get(&o1, i, v) + 2 * get(&o2, i, v), 0, 1e-13L * scale + 1e-300L, "linearity in W");
            }
        free(W1.mem), free(W2.mem), free(W3.mem), free(o1.mem), free(o2.mem), free(o3.mem), free(G.mem);
        gram_kernel_destroy(k);
    }
    free(X.mem), free(Y.mem);
}

/* ---- log space where every term underflows --------------------------------------------------- */

static void test_underflow(gram_context *ctx)
{
    check_rng rng = {5};
    const int D = 100, N = 40, M = 5;
    const double h = 1e-3;
    char spec[64];
    snprintf(spec, sizeof spec, "gaussian(%.17g)", h);
    gram_kernel *k;
    CHECK_STATUS(gram_kernel_parse(ctx, spec, &k), GRAM_OK);
    for (int arch = 0; arch < 3; arch++) {
        if (!arch_ok[arch]) continue;
        gram_context_set_arch(ctx, ARCHS[arch]);
        for (int dt = 0; dt < 2; dt++) {
            tarray X = make_array(N, D, dt ? GRAM_FLOAT32 : GRAM_FLOAT64, 0), Y = make_array(M, D, dt ? GRAM_FLOAT32 : GRAM_FLOAT64, 0);
            for (int i = 0; i < N; i++)
                for (int d = 0; d < D; d++) set(&X, i, d, check_normal(&rng));
            /* Query i sits at distance δ_i from point i: its log-sum is -δ²/(2h²) + log(1 + ...), and
             * the other points are so far that they contribute nothing: the closed form is -δ²/(2h²). */
            for (int i = 0; i < M; i++)
                for (int d = 0; d < D; d++) set(&Y, i, d, get(&X, i, d) + (d == 0 ? 0.05 * (i + 1) : 0));
            tarray o = make_array(M, 1, GRAM_FLOAT64, 0), lo = make_array(M, 1, GRAM_FLOAT64, 0);
            CHECK_STATUS(gram_kernel_sum(ctx, k, &Y.a, &X.a, NULL, &o.a), GRAM_OK);
            CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y.a, &X.a, NULL, &lo.a), GRAM_OK);
            for (int i = 0; i < M; i++) {
                ld delta = get(&Y, i, 0) - get(&X, i, 0);
                ld want = -(delta * delta) / (2.0L * h * h);
                CHECK(get(&o, i, 0) == 0.0, "direct sum should underflow to 0, got %g", (double)get(&o, i, 0));
                CHECK(isfinite((double)get(&lo, i, 0)), "log-sum must be finite, got %g", (double)get(&lo, i, 0));
                CHECK_CLOSE(get(&lo, i, 0), want, dt ? 1e-5L : 1e-11L, 0, "log-sum of underflowing terms vs closed form");
            }
            free(X.mem), free(Y.mem), free(o.mem), free(lo.mem);
        }
    }
    gram_kernel_destroy(k);
}

/* ---- empty shapes ---------------------------------------------------------------------------- */

static void test_empty(gram_context *ctx)
{
    gram_kernel *k;
    CHECK_STATUS(gram_kernel_parse(ctx, "gaussian", &k), GRAM_OK);
    gram_context_set_arch(ctx, "auto");
    double x[6] = {1, 2, 3, 4, 5, 6}, out[3] = {7, 7, 7};
    gram_array X = gram_array_f64(x, 0, 2), Y = gram_array_f64(x, 3, 2), O = gram_array_f64(out, 3, 1);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, NULL, &O), GRAM_OK);
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0, "sum over no points must be 0");
    CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y, &X, NULL, &O), GRAM_OK);
    CHECK(out[0] == -INFINITY && out[2] == -INFINITY, "log-sum over no points must be -inf");
    gram_array Y0 = gram_array_f64(x, 0, 2), O0 = gram_array_f64(out, 0, 1);
    X = gram_array_f64(x, 3, 2);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y0, &X, NULL, &O0), GRAM_OK);
    /* D = 0: every distance is 0, so the gaussian sum counts the points. */
    gram_array X0 = gram_array_f64(x, 4, 0), Yd0 = gram_array_f64(x, 3, 0);
    O = gram_array_f64(out, 3, 1);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Yd0, &X0, NULL, &O), GRAM_OK);
    CHECK(out[0] == 4 && out[2] == 4, "D=0 gaussian sum = N, got %g", out[0]);
    gram_kernel_destroy(k);
}

/* ---- bad input -------------------------------------------------------------------------------- */

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static int cancel_after;
static int64_t last_done;
static int progress_cb(void *user, int64_t done, int64_t total)
{
    (void)user;
    CHECK(done >= last_done && done <= total, "progress not monotone: %lld after %lld of %lld", (long long)done,
          (long long)last_done, (long long)total);
    last_done = done;
    return cancel_after >= 0 && done >= cancel_after;
}

static void test_bad_input(gram_context *ctx)
{
    gram_kernel *k, *neg;
    CHECK_STATUS(gram_kernel_parse(ctx, "gaussian(1.5)", &k), GRAM_OK);
    CHECK_STATUS(gram_kernel_parse(ctx, "neg_l2", &neg), GRAM_OK);
    gram_context_set_arch(ctx, "auto");
    double x[40], w[20];
    for (int i = 0; i < 40; i++) x[i] = i * 0.1;
    for (int i = 0; i < 20; i++) w[i] = 1;
    gram_array X = gram_array_f64(x, 20, 2), Y = gram_array_f64(x, 10, 2), W = gram_array_f64(w, 20, 1);
    double o2[20];
    gram_array O = gram_array_f64(o2, 10, 1);

    CHECK_STATUS(gram_kernel_sum(ctx, NULL, &Y, &X, NULL, &O), GRAM_EINVAL);
    CHECK(contains(gram_context_message(ctx), "kernel"), "message names the kernel: %s", gram_context_message(ctx));
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, NULL, NULL, &O), GRAM_EINVAL);
    CHECK(contains(gram_context_message(ctx), "X"), "message names X: %s", gram_context_message(ctx));
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, NULL, NULL), GRAM_EINVAL);
    gram_array bad = X;
    bad.data = NULL;
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &bad, NULL, &O), GRAM_EINVAL);
    bad = X;
    bad.dtype = (gram_dtype)7;
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &bad, NULL, &O), GRAM_EINVAL);
    bad = X;
    bad.rows = -1;
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &bad, NULL, &O), GRAM_ESHAPE);
    /* Mismatched sizes. */
    gram_array Y3 = gram_array_f64(x, 10, 3);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y3, &X, NULL, &O), GRAM_ESHAPE);
    CHECK(contains(gram_context_message(ctx), "columns"), "message: %s", gram_context_message(ctx));
    gram_array Wb = gram_array_f64(w, 19, 1);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &Wb, &O), GRAM_ESHAPE);
    gram_array Ob = gram_array_f64(o2, 9, 1);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, NULL, &Ob), GRAM_ESHAPE);
    CHECK_STATUS(gram_kernel_matrix(ctx, k, &Y, &X, &O), GRAM_ESHAPE);
    float xf[40] = {0};
    gram_array Xf = gram_array_f32(xf, 20, 2);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &Xf, NULL, &O), GRAM_EINVAL);
    /* ARD dimension. */
    gram_kernel *ard;
    CHECK_STATUS(gram_kernel_parse(ctx, "gaussian(lengthscale=[1,2,3])", &ard), GRAM_OK);
    CHECK_STATUS(gram_kernel_sum(ctx, ard, &Y, &X, NULL, &O), GRAM_ESHAPE);
    gram_kernel_destroy(ard);
    /* Non-finite data: the message names the array, row and column. */
    x[2 * 7 + 1] = NAN;
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, NULL, &O), GRAM_ENONFINITE);
    CHECK(contains(gram_context_message(ctx), "row 7") && contains(gram_context_message(ctx), "column 1"),
          "NaN message: %s", gram_context_message(ctx));
    x[2 * 7 + 1] = 0.7;
    gram_array Yt = gram_array_f64(x + 20, 10, 2);
    x[20 + 2 * 3] = INFINITY;
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Yt, &X, NULL, &O), GRAM_ENONFINITE);
    x[20 + 2 * 3] = 2.0;
    w[4] = NAN;
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &W, &O), GRAM_ENONFINITE);
    CHECK(contains(gram_context_message(ctx), "W"), "message: %s", gram_context_message(ctx));
    w[4] = -1;
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, &W, &O), GRAM_OK);
    CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y, &X, &W, &O), GRAM_EDOMAIN);
    w[4] = 1;
    CHECK_STATUS(gram_kernel_logsum(ctx, neg, &Y, &X, &W, &O), GRAM_EDOMAIN);
    /* Overflowing sizes. */
    gram_array huge = X;
    huge.rows = INT64_MAX / 2;
    huge.row_stride = 4;
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &huge, NULL, &O), GRAM_EOVERFLOW);
    huge = X;
    huge.col_stride = INT64_MIN;
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &huge, NULL, &O), GRAM_EOVERFLOW);
    /* Output overlapping an input. */
    gram_array Oo = gram_array_f64(x, 10, 1);
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, NULL, &Oo), GRAM_EINVAL);
    /* Architectures. */
    CHECK_STATUS(gram_context_set_arch(ctx, "sse9"), GRAM_EINVAL);
    if (!arch_ok[2]) CHECK_STATUS(gram_context_set_arch(ctx, "avx512"), GRAM_EUNSUPPORTED);
    CHECK_STATUS(gram_context_set_arch(ctx, NULL), GRAM_EINVAL);
    gram_context_set_arch(ctx, "auto");
    CHECK_STATUS(gram_context_set_threads(ctx, -2), GRAM_EINVAL);
    /* A NULL context works and gives no message. */
    CHECK_STATUS(gram_kernel_sum(NULL, k, &Y, &X, NULL, &O), GRAM_OK);
    CHECK_STATUS(gram_kernel_sum(NULL, NULL, &Y, &X, NULL, &O), GRAM_EINVAL);
    /* Diag shapes. */
    gram_array Od = gram_array_f64(o2, 19, 1);
    CHECK_STATUS(gram_kernel_diag(ctx, k, &X, &Od), GRAM_ESHAPE);

    /* Progress and cancellation on a long call. */
    enum { BN = 4000 };
    double *bx = malloc(sizeof(double) * BN * 2), *bo = malloc(sizeof(double) * BN);
    for (int i = 0; i < BN * 2; i++) bx[i] = i * 1e-3;
    gram_array BX = gram_array_f64(bx, BN, 2), BO = gram_array_f64(bo, BN, 1);
    gram_context_set_progress(ctx, progress_cb, NULL);
    cancel_after = -1, last_done = 0;
    CHECK_STATUS(gram_kernel_sum(ctx, k, &BX, &BX, NULL, &BO), GRAM_OK);
    CHECK(last_done > 0, "progress callback was never called");
    for (int th = 1; th <= 2; th++) {
        gram_context_set_threads(ctx, th);
        cancel_after = 3, last_done = 0;
        CHECK_STATUS(gram_kernel_sum(ctx, k, &BX, &BX, NULL, &BO), GRAM_ECANCELLED);
        CHECK(contains(gram_context_message(ctx), "cancel"), "cancel message: %s", gram_context_message(ctx));
    }
    gram_context_set_progress(ctx, NULL, NULL);
    gram_context_set_threads(ctx, 0);
    free(bx), free(bo);
    gram_kernel_destroy(k);
    gram_kernel_destroy(neg);
}

/* Views far larger than memory, as NumPy's broadcast_to makes them (row stride 0): refused with
 * ENOMEM naming the working memory before any scan or allocation. The NaN scan and the centring
 * pass used to read all 3·10^11 repeated values first (minutes), and then fail block by block. */
static void test_huge_views(gram_context *ctx)
{
    const double one[3] = {0.5, -1.0, 2.0};
    double out[2];
    gram_kernel *k = NULL;
    CHECK_STATUS(gram_kernel_parse(ctx, "gaussian(lengthscale=0.5)", &k), GRAM_OK);
    double yq[6] = {0};
    gram_array X = {(void *)one, GRAM_FLOAT64, 100000000000LL, 3, 0, 1};
    gram_array Y = gram_array_f64(yq, 2, 3), O = gram_array_f64(out, 2, 1);
    for (int log = 0; log < 2; log++) {
        gram_status s = log ? gram_kernel_logsum(ctx, k, &Y, &X, NULL, &O) : gram_kernel_sum(ctx, k, &Y, &X, NULL, &O);
        CHECK(s == GRAM_ENOMEM && strstr(gram_context_message(ctx), "working memory"),
              "a (1e11, 3) broadcast view: status %d (%s), want GRAM_ENOMEM for the working memory", (int)s,
              gram_context_message(ctx));
    }
    /* a NaN in the repeated row is still found, in row 0 */
    const double bad[3] = {0.5, NAN, 2.0};
    X.data = (void *)bad;
    CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, NULL, &O), GRAM_ENONFINITE);
    CHECK(strstr(gram_context_message(ctx), "row 0, column 1"), "NaN named at row 0, column 1: %s",
          gram_context_message(ctx));
    gram_kernel_destroy(k);
}

int main(void)
{
    gram_context *ctx;
    if (gram_context_create(&ctx)) return 1;
    for (int a = 0; a < 3; a++) {
        arch_ok[a] = gram_context_set_arch(ctx, ARCHS[a]) == GRAM_OK;
        printf("arch %-6s %s\n", ARCHS[a], arch_ok[a] ? "tested" : "not available on this CPU: skipped");
    }
    CHECK(arch_ok[0], "the reference kernels must always be available");
    test_families(ctx);
    test_threads(ctx);
    test_properties(ctx, 1);
    test_properties(ctx, 3);
    test_underflow(ctx);
    test_empty(ctx);
    test_bad_input(ctx);
    test_huge_views(ctx);
    gram_context_destroy(ctx);
    return check_done();
}
