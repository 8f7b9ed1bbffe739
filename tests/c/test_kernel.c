/* The kernel algebra layer: constructors, the spec parser and printer, hyperparameters, values
 * and analytic gradients, and density normalisers.
 *
 * Every numerical oracle here is written in this file from the definitions in gram.h, in long
 * double: the kernel formulas, finite differences in θ, numerical radial quadrature. Nothing in
 * the library is used to check itself. */
#include "check.h"
#include "gram.h"
#include "kernel/kernel.h"
#include "arccos_ref.h"
#include "matern_ref.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef long double ld;
#define PI_L 3.141592653589793238462643383279502884L

static gram_context *ctx;

/* ---- helpers ---------------------------------------------------------------------------------- */

static gram_kernel *P(const char *spec) { return check_kernel(ctx, spec); }

static char *spec_of(const gram_kernel *k)
{
    size_t n = gram_kernel_spec(k, NULL, 0);
    char *b = malloc(n + 1);
    size_t m = gram_kernel_spec(k, b, n + 1);
    CHECK(m == n, "gram_kernel_spec: lengths %zu and %zu differ", m, n);
    return b;
}

static int contains(const char *m, const char *want) { return !want || strstr(m, want) != NULL; }

/* status, and a message on ctx that contains want (when want is not NULL) */
#define EXPECT_ERR(expr, status, want)                                                             \
    do {                                                                                           \
        int st_ = (int)(expr);                                                                     \
        const char *m_ = gram_context_message(ctx);                                                \
        CHECK(st_ == (int)(status), "%s returned %d, want %d (message: %s)", #expr, st_,          \
              (int)(status), m_);                                                                  \
        CHECK(m_[0] != 0, "%s: no message", #expr);                                               \
        CHECK(contains(m_, (want)), "%s: message \"%s\" lacks \"%s\"", #expr, m_,                  \
              (want) ? (const char *)(want) : "");                                                \
    } while (0)

static void rand_point(check_rng *r, int64_t D, double sigma, double *p)
{
    for (int64_t d = 0; d < D; d++) p[d] = sigma * check_normal(r);
}

/* ---- the reference kernels, from gram.h's definitions ------------------------------------------ */

typedef struct ref {
    gram_family f;
    int nls;
    double ls[16];
    double alpha, period, sigma0, gamma, coef0, value, noise, nu;
    int degree;
} ref;

static ref ref_default(gram_family f)
{
    ref R;
    memset(&R, 0, sizeof R);
    R.f = f;
    R.alpha = R.period = R.gamma = R.coef0 = R.value = R.noise = 1.0;
    R.nu = 1.5;
    R.degree = 3;
    return R;
}

static ld ref_ls(const ref *R, int64_t d) { return R->nls > 1 ? R->ls[d] : R->nls == 1 ? R->ls[0] : 1.0L; }

static ld ref_value(const ref *R, int64_t D, const double *y, const double *x, int same)
{
    ld r2 = 0, l1 = 0, rho2 = 0, s = 0, xx = 0, yy = 0;
    for (int64_t d = 0; d < D; d++) {
        ld l = ref_ls(R, d), dy = (ld)y[d] - (ld)x[d];
        r2 += (dy / l) * (dy / l);
        l1 += fabsl(dy) / l;
        rho2 += dy * dy;
        s += ((ld)y[d] / l) * ((ld)x[d] / l);
        xx += ((ld)x[d] / l) * ((ld)x[d] / l);
        yy += ((ld)y[d] / l) * ((ld)y[d] / l);
    }
    ld r = sqrtl(r2), a;
    switch (R->f) {
    case GRAM_GAUSSIAN: return expl(-r2 / 2);
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_EXPONENTIAL: return expl(-r);
    case GRAM_MATERN32: a = sqrtl(3.0L) * r; return (1 + a) * expl(-a);
    case GRAM_MATERN52: return (1 + sqrtl(5.0L) * r + 5 * r2 / 3) * expl(-sqrtl(5.0L) * r);
    case GRAM_RATIONAL_QUADRATIC: return powl(1 + r2 / (2 * (ld)R->alpha), -(ld)R->alpha);
    case GRAM_CAUCHY: return 1 / (1 + r2);
    case GRAM_PERIODIC: {
        ld sn = sinl(PI_L * sqrtl(rho2) / R->period), l = ref_ls(R, 0);
        return expl(-2 * sn * sn / (l * l));
    }
    case GRAM_TOPHAT: return r < 1 ? 1 : 0;
    case GRAM_EPANECHNIKOV: return r < 1 ? 1 - r2 : 0;
    case GRAM_TRIANGULAR: return r < 1 ? 1 - r : 0;
    case GRAM_COSINE_WINDOW: return r < 1 ? cosl(PI_L * r / 2) : 0;
    case GRAM_NEG_L2: return -r;
    case GRAM_LAPLACIAN_L1: return expl(-l1);
    case GRAM_NEG_L1: return -l1;
    case GRAM_LINEAR: return (ld)R->sigma0 * R->sigma0 + s;
    case GRAM_POLYNOMIAL: return powl((ld)R->gamma * s + R->coef0, R->degree);
    case GRAM_COSINE: return xx > 0 && yy > 0 ? s / sqrtl(xx * yy) : 0;
    case GRAM_SIGMOID: return tanhl((ld)R->gamma * s + R->coef0);
    case GRAM_SOFTMAX: return expl(s);
    case GRAM_ARCCOS: return arccos_ref_value(R->degree, s, xx, yy);
    case GRAM_CONSTANT: return R->value;
    case GRAM_WHITE: return same ? R->noise : 0;
    case GRAM_MATERN: return r > 0 ? expl(matern_ref_log_value(R->nu, sqrtl(2 * (ld)R->nu) * r)) : 1;
    default: return NAN;
    }
}

/* The family's params in gram.h's order, as gram_kernel_create takes them. */
static int ref_params(const ref *R, double *p)
{
    switch (R->f) {
    case GRAM_RATIONAL_QUADRATIC: p[0] = R->alpha; return 1;
    case GRAM_PERIODIC: p[0] = R->period; return 1;
    case GRAM_LINEAR: p[0] = R->sigma0; return 1;
    case GRAM_POLYNOMIAL: p[0] = R->degree; p[1] = R->gamma; p[2] = R->coef0; return 3;
    case GRAM_CONSTANT: p[0] = R->value; return 1;
    case GRAM_WHITE: p[0] = R->noise; return 1;
    case GRAM_MATERN: p[0] = R->nu; return 1;
    case GRAM_SIGMOID: p[0] = R->gamma; p[1] = R->coef0; return 2;
    case GRAM_ARCCOS: p[0] = R->degree; return 1;
    default: return 0;
    }
}

static const char *NAME[GRAM_FAMILY_COUNT] = {
    "gaussian",     "laplacian",   "matern12",   "matern32",      "matern52",     "rational_quadratic",
    "cauchy",       "periodic",    "tophat",     "epanechnikov",  "exponential",  "triangular",
    "cosine_window", "neg_l2",     "laplacian_l1", "neg_l1",      "linear",       "polynomial",
    "cosine",       "constant",    "white",        "matern",       "sigmoid",      "softmax",
    "arccos"};

/* The same kernel as a spec, written by the test (C locale, %.17g). */
static void ref_spec(const ref *R, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "%s(", NAME[R->f]);
    int any = 0;
    if (R->nls == 1) n += (size_t)snprintf(buf + n, size - n, "%.17g", R->ls[0]), any = 1;
    if (R->nls > 1) {
        n += (size_t)snprintf(buf + n, size - n, "lengthscale=[");
        for (int d = 0; d < R->nls; d++)
            n += (size_t)snprintf(buf + n, size - n, "%s%.17g", d ? "," : "", R->ls[d]);
        n += (size_t)snprintf(buf + n, size - n, "]");
        any = 1;
    }
#define KEY(name, fmt, v) (n += (size_t)snprintf(buf + n, size - n, "%s" name "=" fmt, any ? ", " : "", v), any = 1)
    switch (R->f) {
    case GRAM_RATIONAL_QUADRATIC: KEY("alpha", "%.17g", R->alpha); break;
    case GRAM_PERIODIC: KEY("period", "%.17g", R->period); break;
    case GRAM_LINEAR: KEY("sigma0", "%.17g", R->sigma0); break;
    case GRAM_POLYNOMIAL:
        KEY("coef0", "%.17g", R->coef0); /* out of order on purpose: keys may come in any order */
        KEY("degree", "%d", R->degree);
        KEY("gamma", "%.17g", R->gamma);
        break;
    case GRAM_CONSTANT: KEY("value", "%.17g", R->value); break;
    case GRAM_WHITE: KEY("noise", "%.17g", R->noise); break;
    case GRAM_MATERN: KEY("nu", "%.17g", R->nu); break;
    case GRAM_SIGMOID:
        KEY("coef0", "%.17g", R->coef0);
        KEY("gamma", "%.17g", R->gamma);
        break;
    case GRAM_ARCCOS: KEY("degree", "%d", R->degree); break;
    default: break;
    }
#undef KEY
    snprintf(buf + n, size - n, ")");
}

/* The rounding error a dot product of the scaled points may carry (it cancels where s ≈ 0): a
 * few ulps of Σ|u_d v_d|, propagated through the family. 0 for the other families. */
static ld dot_error(const ref *R, int64_t D, const double *y, const double *x)
{
    ld a = 0;
    for (int64_t d = 0; d < D; d++) a += fabsl((ld)y[d] * x[d]) / (ref_ls(R, d) * ref_ls(R, d));
    ld e = 4 * (ld)(D + 2) * DBL_EPSILON * a;
    switch (R->f) {
    case GRAM_LINEAR: return e;
    case GRAM_POLYNOMIAL: {
        ld b = (ld)R->gamma * a + R->coef0;
        return R->degree * powl(b, R->degree - 1) * R->gamma * e;
    }
    case GRAM_SIGMOID: return R->gamma * e; /* tanh' ≤ 1 */
    case GRAM_SOFTMAX: return expl(a) * e;  /* exp(s ± e) */
    case GRAM_ARCCOS: {
        /* cos θ off by dc moves θ by ≤ √(2 dc) (acos is ½-Hölder), and by ≤ dc/sin θ away from
         * 0 and π; J_0' = -1, |J_1'| = φ sin θ, |J_2'| = 4 sin θ J_1 ≤ 4π sin θ */
        ld xx = 0, yy = 0, s = 0;
        for (int64_t d = 0; d < D; d++) {
            ld l2 = ref_ls(R, d) * ref_ls(R, d);
            xx += (ld)x[d] * x[d] / l2, yy += (ld)y[d] * y[d] / l2, s += (ld)x[d] * y[d] / l2;
        }
        if (xx <= 0 || yy <= 0) return 0;
        ld c = s / sqrtl(xx * yy), dc = e / sqrtl(xx * yy) + 8 * DBL_EPSILON, sn2 = 1 - (fabsl(c) + dc) * (fabsl(c) + dc);
        ld dth = sqrtl(2 * dc);
        if (sn2 > 0 && dc / sqrtl(sn2) < dth) dth = dc / sqrtl(sn2);
        ld sn = sqrtl(fmaxl(0, 1 - c * c)) + dth, m = R->degree == 0 ? 1 : R->degree == 1 ? sqrtl(xx * yy) : xx * yy;
        return m / PI_L * dth * (R->degree == 0 ? 1 : R->degree == 1 ? PI_L * sn : 4 * PI_L * sn);
    }
    case GRAM_COSINE: {
        ld xx = 0, yy = 0;
        for (int64_t d = 0; d < D; d++) {
            xx += (ld)x[d] * x[d] / (ref_ls(R, d) * ref_ls(R, d));
            yy += (ld)y[d] * y[d] / (ref_ls(R, d) * ref_ls(R, d));
        }
        return xx > 0 && yy > 0 ? e / sqrtl(xx * yy) : 0;
    }
    default: return 0;
    }
}

static int is_compact(gram_family f)
{
    return f == GRAM_TOPHAT || f == GRAM_EPANECHNIKOV || f == GRAM_TRIANGULAR || f == GRAM_COSINE_WINDOW;
}

static double urange(check_rng *r, double lo, double hi) { return lo + (hi - lo) * check_uniform(r); }

/* ---- values of every family -------------------------------------------------------------------- */

static void test_family_values(void)
{
    check_rng rng = {12345};
    const int64_t Ds[] = {1, 2, 3, 7};
    double y[16], x[16], v, p[3];
    char spec[1024];
    for (int f = 0; f < GRAM_FAMILY_COUNT; f++) {
        for (int di = 0; di < 4; di++) {
            int64_t D = Ds[di];
            for (int mode = 0; mode < 3; mode++) { /* no lengthscale, scalar, ARD */
                int cst = f == GRAM_CONSTANT || f == GRAM_WHITE;
                if (cst && mode > 0) continue;
                if (mode == 2 && (D == 1 || f == GRAM_PERIODIC)) continue;
                for (int rep = 0; rep < 3; rep++) {
                    ref R = ref_default((gram_family)f);
                    R.nls = mode == 0 ? 0 : mode == 1 ? 1 : (int)D;
                    for (int d = 0; d < R.nls; d++) R.ls[d] = urange(&rng, 0.5, 2.0);
                    R.alpha = urange(&rng, 0.3, 3.0);
                    R.period = urange(&rng, 0.5, 2.0);
                    R.sigma0 = rep == 0 ? 0.0 : urange(&rng, 0.1, 1.0);
                    R.degree = 1 + rep + (int)(D % 2);
                    R.gamma = urange(&rng, 0.2, 1.5);
                    R.coef0 = rep == 1 ? 0.0 : urange(&rng, 0.1, 2.0);
                    if (f == GRAM_SIGMOID && rep == 2) R.coef0 = -R.coef0; /* sigmoid takes any coef0 */
                    if (f == GRAM_ARCCOS) R.degree = (rep + (int)D) % 3;
                    R.value = urange(&rng, 0.5, 2.0);
                    R.noise = urange(&rng, 0.1, 1.0);
                    R.nu = rep == 0 ? urange(&rng, 0.05, 0.5) : rep == 1 ? urange(&rng, 0.5, 3.0) : urange(&rng, 3, 60);
                    int np = ref_params(&R, p);
                    gram_kernel *k = NULL, *kp = NULL;
                    CHECK_STATUS(gram_kernel_create(ctx, (gram_family)f, R.nls, R.ls, np, p, &k), GRAM_OK);
                    ref_spec(&R, spec, sizeof spec);
                    CHECK_STATUS(gram_kernel_parse(ctx, spec, &kp), GRAM_OK);
                    if (!k || !kp) {
                        CHECK(0, "%s: could not build (%s)", spec, gram_context_message(ctx));
                        gram_kernel_destroy(k);
                        gram_kernel_destroy(kp);
                        continue;
                    }
                    CHECK(gram_kernel_dim(k) == (mode == 2 ? D : 0), "%s: dim %lld", spec,
                          (long long)gram_kernel_dim(k));
                    for (int t = 0; t < 12; t++) {
                        /* compact kernels: about half the pairs inside the support; periodic:
                         * moderate ρ/p, as sin(πρ/p) amplifies the rounding of ρ/p */
                        double sigma = is_compact((gram_family)f) ? 0.6 / sqrt((double)D)
                                       : f == GRAM_PERIODIC      ? 0.3
                                                                 : 1.0;
                        rand_point(&rng, D, sigma, y);
                        if (t == 0) memcpy(x, y, sizeof(double) * (size_t)D);
                        else rand_point(&rng, D, sigma, x);
                        int same = t % 2;
                        ld want = ref_value(&R, D, y, x, same);
                        CHECK_STATUS(gram_kernel_eval(ctx, k, D, y, x, same, &v, NULL), GRAM_OK);
                        char what[1200];
                        snprintf(what, sizeof what, "%s D=%lld pair %d", spec, (long long)D, t);
                        CHECK_CLOSE(v, want, 1e-13, 1e-14 + dot_error(&R, D, y, x), what);
                        double vp;
                        CHECK_STATUS(gram_kernel_eval(ctx, kp, D, y, x, same, &vp, NULL), GRAM_OK);
                        CHECK(vp == v, "%s: parsed kernel gives %.17g, created one %.17g", what, vp, v);
                    }
                    gram_kernel_destroy(k);
                    gram_kernel_destroy(kp);
                }
            }
        }
    }

    /* A few exact values straight from the definitions. */
    gram_kernel *k = P("gaussian(2)");
    double a[2] = {0, 0}, b[2] = {2, 0};
    if (k) {
        gram_kernel_eval(ctx, k, 2, a, b, 0, &v, NULL);
        CHECK_CLOSE(v, expl(-0.5L), 1e-15, 0, "gaussian(2) at distance 2");
        gram_kernel_eval(ctx, k, 0, NULL, NULL, 0, &v, NULL);
        CHECK(v == 1.0, "D = 0: every distance is 0, got %g", v);
    }
    gram_kernel_destroy(k);
    k = P("white(0.5)");
    if (k) {
        gram_kernel_eval(ctx, k, 2, a, a, 1, &v, NULL);
        CHECK(v == 0.5, "white on the diagonal: %g", v);
        gram_kernel_eval(ctx, k, 2, a, a, 0, &v, NULL);
        CHECK(v == 0.0, "white off the diagonal: %g", v);
    }
    gram_kernel_destroy(k);
    k = P("cosine");
    if (k) {
        gram_kernel_eval(ctx, k, 2, a, b, 0, &v, NULL);
        CHECK(v == 0.0, "cosine with a zero vector: %g", v);
    }
    gram_kernel_destroy(k);

    /* Overflowed distances give 0 (or -inf), never NaN. */
    const char *big[] = {"gaussian", "matern32", "matern52", "laplacian", "rq", "cauchy", "periodic",
                         "matern(nu=0.7)", "matern(nu=7.3)"};
    double h1[1] = {1e200}, h2[1] = {-1e200};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        k = P(big[i]);
        if (!k) continue;
        double g[4];
        gram_kernel_eval(ctx, k, 1, h1, h2, 0, &v, g);
        CHECK(!isnan(v), "%s at an overflowing distance is NaN", big[i]);
        for (int64_t j = 0; j < gram_kernel_n_hyper(k); j++)
            CHECK(!isnan(g[j]), "%s: gradient %lld at an overflowing distance is NaN", big[i], (long long)j);
        gram_kernel_destroy(k);
    }
}

/* ---- composites by value ------------------------------------------------------------------------ */

static void test_composite_values(void)
{
    check_rng rng = {777};
    double y[3], x[3], v;
    gram_kernel *k = P("2.0*matern52(lengthscale=[1,2,3]) + white(0.1)");
    gram_kernel *k2 = P("rbf(lengthscale=10) * periodic(lengthscale=1, period=1)");
    gram_kernel *k3 = P("(gaussian(0.5) + 1) * (laplacian_l1(lengthscale=[1,2,3]) * -3) + 0.25");
    ref m = ref_default(GRAM_MATERN52);
    m.nls = 3;
    m.ls[0] = 1, m.ls[1] = 2, m.ls[2] = 3;
    ref g = ref_default(GRAM_GAUSSIAN), p = ref_default(GRAM_PERIODIC), g5 = g, l1 = ref_default(GRAM_LAPLACIAN_L1);
    g.nls = 1, g.ls[0] = 10;
    p.nls = 1, p.ls[0] = 1;
    g5.nls = 1, g5.ls[0] = 0.5;
    l1.nls = 3, l1.ls[0] = 1, l1.ls[1] = 2, l1.ls[2] = 3;
    for (int t = 0; t < 20 && k && k2 && k3; t++) {
        rand_point(&rng, 3, 1.0, y);
        rand_point(&rng, 3, 1.0, x);
        int same = t % 3 == 0;
        gram_kernel_eval(ctx, k, 3, y, x, same, &v, NULL);
        CHECK_CLOSE(v, 2 * ref_value(&m, 3, y, x, 0) + (same ? 0.1L : 0), 1e-13, 0, "2*matern52 + white");
        gram_kernel_eval(ctx, k2, 3, y, x, same, &v, NULL);
        CHECK_CLOSE(v, ref_value(&g, 3, y, x, 0) * ref_value(&p, 3, y, x, 0), 1e-13, 0, "rbf*periodic");
        gram_kernel_eval(ctx, k3, 3, y, x, same, &v, NULL);
        CHECK_CLOSE(v, (ref_value(&g5, 3, y, x, 0) + 1) * (ref_value(&l1, 3, y, x, 0) * -3) + 0.25L,
                    1e-13, 1e-15, "(gaussian+1)*(laplacian_l1*-3)+0.25");
    }
    gram_kernel_destroy(k);
    gram_kernel_destroy(k2);
    gram_kernel_destroy(k3);
}

/* ---- parser and printer ------------------------------------------------------------------------- */

static int same_program(const gram_kernel *a, const gram_kernel *b)
{
    if (a->n_ops != b->n_ops || a->n_leaves != b->n_leaves || a->n_hyper != b->n_hyper ||
        a->dim != b->dim)
        return 0;
    for (int i = 0; i < a->n_ops; i++) {
        const gram__op *p = &a->ops[i], *q = &b->ops[i];
        if (p->kind != q->kind || p->leaf != q->leaf || p->hyper != q->hyper) return 0;
        if (p->kind == GRAM_OP_SCALE && memcmp(&p->c, &q->c, sizeof p->c)) return 0;
    }
    for (int i = 0; i < a->n_leaves; i++) {
        const gram__leaf *p = &a->leaves[i], *q = &b->leaves[i];
        if (p->family != q->family || p->n_scale != q->n_scale || p->alpha != q->alpha ||
            p->period != q->period || p->sigma0 != q->sigma0 || p->gamma != q->gamma ||
            p->coef0 != q->coef0 || p->value != q->value || p->noise != q->noise ||
            p->degree != q->degree || p->hyper0 != q->hyper0)
            return 0;
        for (int64_t d = 0; d < p->n_scale; d++)
            if (p->lengthscale[d] != q->lengthscale[d] || p->inv_scale[d] != q->inv_scale[d]) return 0;
    }
    return 1;
}

static void round_trip(const char *spec)
{
    gram_kernel *k = P(spec);
    if (!k) return;
    char *s1 = spec_of(k);
    gram_kernel *k2 = P(s1);
    if (k2) {
        char *s2 = spec_of(k2);
        CHECK(!strcmp(s1, s2), "round trip of \"%s\": \"%s\" then \"%s\"", spec, s1, s2);
        CHECK(same_program(k, k2), "round trip of \"%s\" via \"%s\" changed the program", spec, s1);
        check_rng rng = {99};
        double y[3], x[3], v1 = 0, v2 = 1;
        int64_t D = gram_kernel_dim(k) ? gram_kernel_dim(k) : 3;
        for (int t = 0; t < 5 && D <= 3; t++) {
            rand_point(&rng, D, 0.5, y);
            rand_point(&rng, D, 0.5, x);
            gram_kernel_eval(ctx, k, D, y, x, t == 0, &v1, NULL);
            gram_kernel_eval(ctx, k2, D, y, x, t == 0, &v2, NULL);
            CHECK(v1 == v2, "round trip of \"%s\": values %.17g and %.17g", spec, v1, v2);
        }
        free(s2);
    }
    free(s1);
    gram_kernel_destroy(k);
    gram_kernel_destroy(k2);
}

static void expect_spec(const char *in, const char *want)
{
    gram_kernel *k = P(in);
    if (!k) return;
    char *s = spec_of(k);
    CHECK(!strcmp(s, want), "spec of \"%s\" is \"%s\", want \"%s\"", in, s, want);
    free(s);
    gram_kernel_destroy(k);
}

static void expect_parse_error(const char *spec, gram_status want, const char *needle)
{
    gram_kernel *k = (gram_kernel *)&k; /* must be reset to NULL */
    gram_status s = gram_kernel_parse(ctx, spec, &k);
    const char *m = gram_context_message(ctx);
    CHECK(s == want, "parse(\"%.60s\") returned %d, want %d (%s)", spec, (int)s, (int)want, m);
    CHECK(k == NULL, "parse(\"%.60s\") failed but left *out set", spec);
    CHECK(strstr(m, "position") != NULL, "parse(\"%.60s\"): message \"%s\" gives no position", spec, m);
    if (needle) CHECK(strstr(m, needle) != NULL, "parse(\"%.60s\"): message \"%s\" lacks \"%s\"", spec, m, needle);
    if (s == GRAM_OK) gram_kernel_destroy(k);
}

static const char *VALID[] = {
    "gaussian", "rbf", "gaussian()", "gaussian(0.5)", "rbf(lengthscale=2)",
    " gaussian ( lengthscale = [ 1 , 2 ] ) ", "\tlaplacian(1e-1)\n", "matern12(3)",
    "matern32(lengthscale=[0.5,1.5,2.5])", "matern52(2.5E+0)", "rational_quadratic(1, alpha=2)",
    "rq(alpha=0.5)", "cauchy(.5)", "periodic(lengthscale=1, period=2)", "exp_sine_squared(period=3)",
    "periodic(2)", "periodic(lengthscale=[2])", "tophat(1)", "epanechnikov(2.)", "exponential(0.3)",
    "triangular", "cosine_window(1.5)", "neg_l2", "laplacian_l1(lengthscale=[1,2])", "neg_l1(2)",
    "linear(sigma0=0.5)", "linear", "linear([1,2,3], sigma0=0)", "polynomial(degree=2, gamma=0.5, coef0=0)",
    "poly(2, degree=4)", "poly(coef0=2.5, gamma=3, degree=1)", "cosine", "cosine([1,2])", "constant(2)",
    "constant(value=3)", "white(0.1)", "white(noise=0)", "white()", "2*gaussian", "gaussian*2",
    "2.0*matern52(lengthscale=[1,2,3]) + white(0.1)",
    "rbf(lengthscale=10) * periodic(lengthscale=1, period=1)", "1 + gaussian", "gaussian + 1", "3",
    "2*3*gaussian", "(gaussian + laplacian)*2", "gaussian*(laplacian*cauchy)", "gaussian*(laplacian*2)",
    "((gaussian))", "-1*linear", "gaussian*-0.5", "0*linear", "-0*linear", "1e-3*rbf + 1e+3*rq",
    "gaussian * laplacian + cauchy * matern32 + 0.5", "+2*gaussian", "2*(3*gaussian)", "(2)*gaussian",
    "gaussian + (laplacian + cauchy)", "(gaussian + laplacian) * (cauchy + 1) * 0.5",
    "gaussian*2*3", "(1 + 2) * gaussian", "2 + 3", "0.1*gaussian(0.1) + 0.3*white(0.7)",
    "4.9406564584124654e-324*gaussian", "1.7976931348623157e308*gaussian(1e308)",
    "gaussian(lengthscale=[1,2,3]) + laplacian(lengthscale=2) * matern32(lengthscale=[3,2,1])",
};

static void test_parser(void)
{
    for (size_t i = 0; i < sizeof VALID / sizeof *VALID; i++) round_trip(VALID[i]);

    /* Canonical text: every parameter spelled out, scales after their operand, minimal parens. */
    expect_spec("rbf(0.5)", "gaussian(lengthscale=0.5)");
    expect_spec("gaussian", "gaussian(lengthscale=1)");
    expect_spec("2*gaussian", "gaussian(lengthscale=1)*2");
    expect_spec("2*3*gaussian", "gaussian(lengthscale=1)*6");
    expect_spec("gaussian*2*3", "gaussian(lengthscale=1)*2*3");
    expect_spec("1 + gaussian", "constant(value=1) + gaussian(lengthscale=1)");
    expect_spec("gaussian + 1", "gaussian(lengthscale=1) + constant(value=1)");
    expect_spec("3", "constant(value=3)");
    expect_spec("2 + 3", "constant(value=2) + constant(value=3)");
    expect_spec("(gaussian + laplacian)*2", "(gaussian(lengthscale=1) + laplacian(lengthscale=1))*2");
    expect_spec("gaussian*(laplacian*2)", "gaussian(lengthscale=1)*(laplacian(lengthscale=1)*2)");
    expect_spec("gaussian*(laplacian*cauchy)",
                "gaussian(lengthscale=1)*(laplacian(lengthscale=1)*cauchy(lengthscale=1))");
    expect_spec("gaussian*laplacian*cauchy",
                "gaussian(lengthscale=1)*laplacian(lengthscale=1)*cauchy(lengthscale=1)");
    expect_spec("gaussian + (laplacian + cauchy)",
                "gaussian(lengthscale=1) + (laplacian(lengthscale=1) + cauchy(lengthscale=1))");
    expect_spec("(gaussian + laplacian) * cauchy",
                "(gaussian(lengthscale=1) + laplacian(lengthscale=1))*cauchy(lengthscale=1)");
    expect_spec("gaussian * laplacian + cauchy",
                "gaussian(lengthscale=1)*laplacian(lengthscale=1) + cauchy(lengthscale=1)");
    expect_spec("exp_sine_squared", "periodic(lengthscale=1, period=1)");
    expect_spec("rq", "rational_quadratic(lengthscale=1, alpha=1)");
    expect_spec("poly(2, degree=4)", "polynomial(lengthscale=2, degree=4, gamma=1, coef0=1)");
    expect_spec("linear", "linear(lengthscale=1, sigma0=0)");
    expect_spec("white", "white(noise=1)");
    expect_spec("constant", "constant(value=1)");
    expect_spec("matern32(lengthscale=[0.5,1.5])", "matern32(lengthscale=[0.5, 1.5])");
    expect_spec("gaussian*-2", "gaussian(lengthscale=1)*-2");
    expect_spec("white(0.1)", "white(noise=0.10000000000000001)");

    /* Numbers: the parser's digits must give exactly what strtod gives in the C locale. */
    const char *nums[] = {"0.1", "1.7976931348623157e308", "2.2250738585072014e-308",
                          "4.9406564584124654e-324", "123456789012345678901234567890", "0.000001234",
                          "1e-5", ".5", "5.", "00012.50", "-3.25", "+7", "1E3", "2.5e+02",
                          "0.30000000000000004", "9007199254740993", "1e-400", "-0",
                          "0.0000000000000000000000000000000000000001",
                          "2.4703282292062327e-324", "2.4703282292062328e-324"};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        char spec[128];
        snprintf(spec, sizeof spec, "%s*gaussian", nums[i]);
        gram_kernel *k = P(spec);
        if (!k) continue;
        double want = strtod(nums[i], NULL);
        CHECK(memcmp(&k->ops[1].c, &want, sizeof want) == 0, "number %s read as %.17g, want %.17g",
              nums[i], k->ops[1].c, want);
        gram_kernel_destroy(k);
    }
    check_rng rng = {2024};
    for (int t = 0; t < 2000; t++) {
        uint64_t bits = check_u64(&rng);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v)) continue;
        char spec[128];
        snprintf(spec, sizeof spec, "gaussian*%.17g", v);
        gram_kernel *k = P(spec);
        if (!k) continue;
        CHECK(memcmp(&k->ops[1].c, &v, sizeof v) == 0, "%s read back as %.17g", spec, k->ops[1].c);
        char *s = spec_of(k);
        CHECK(!strcmp(s + strlen("gaussian(lengthscale=1)*"), spec + strlen("gaussian*")),
              "%.17g printed as %s", v, s);
        free(s);
        gram_kernel_destroy(k);
    }

    /* Parameters land where they should. */
    gram_kernel *k = P("poly(2, degree=4)");
    if (k) {
        const gram__leaf *L = &k->leaves[0];
        CHECK(L->family == GRAM_POLYNOMIAL && L->degree == 4 && L->gamma == 1.0 && L->coef0 == 1.0 &&
                  L->lengthscale[0] == 2.0 && L->inv_scale[0] == 0.5,
              "poly(2, degree=4) parsed wrong");
        gram_kernel_destroy(k);
    }
    k = P("periodic(lengthscale=0.5, period=4)");
    if (k) {
        const gram__leaf *L = &k->leaves[0];
        CHECK(L->n_scale == 1 && L->lengthscale[0] == 0.5 && L->period == 4.0 && L->inv_scale[0] == 0.25,
              "periodic parsed wrong");
        gram_kernel_destroy(k);
    }

    /* Malformed specs. */
    const char *bad[] = {
        "", "   ", "gaussian(", "gaussian(0.5", "gaussian)", "(gaussian", "gaussian(,)",
        "gaussian(lengthscale=)", "gaussian(lengthscale=[1,2)", "gaussian(lengthscale=[])",
        "gaussian(lengthscale=[1,,2])", "foo", "foo(1)", "gaussian(alpha=1)", "gaussian + ", "*gaussian",
        "gaussian gaussian", "gaussian(nan)", "gaussian(inf)", "gaussian(-inf)", "gaussian(NaN)",
        "gaussian(Infinity)", "nan*gaussian", "inf + gaussian", "-inf*gaussian", "gaussian(1e999)",
        "1e999*gaussian", "gaussian(0.5) extra", "gaussian(lengthscale=1, lengthscale=2)", "2*",
        "1.2.3*gaussian", "gaussian(bogus=1)", "gaussian(1,2)", "gaussian(-)", "e5*gaussian",
        "gaussian(1e)", "gaussian(.)", "gaussian(1,)", "gaussian(lengthscale 1)", "rq(alpha=[1,2])",
        "2gaussian", "gaussian()()", "()", "(", ")", "gaussian + + laplacian", "gaussian - laplacian",
        "Gaussian", "gaussian(0x10)", "gaussian(1 2)", "white(lengthscale=1)", "constant(alpha=2)",
        "periodic(sigma0=1)", "linear(degree=2)", "gaussian(lengthscale=[1 2])", "gaussian[1]",
        "gaussian(lengthscale==1)", "1e+*gaussian", "gaussian(\x01)", "gaussian(\xc3\xa9)",
        "1e308*1e308*gaussian", "gaussian(1)*(laplacian", "-gaussian",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) expect_parse_error(bad[i], GRAM_EPARSE, NULL);
    expect_parse_error("", GRAM_EPARSE, "position 1:");
    expect_parse_error("gaussian(0.5", GRAM_EPARSE, "position 13: expected ',' or ')'");
    expect_parse_error("gaussian(0.5) foo", GRAM_EPARSE, "position 15:");
    expect_parse_error("(gaussian", GRAM_EPARSE, "expected ')' to close the '(' at position 1");
    expect_parse_error("foo(1)", GRAM_EPARSE, "unknown kernel 'foo'");
    expect_parse_error("foo(1)", GRAM_EPARSE, "cosine_window");
    expect_parse_error("gaussian(alpha=2)", GRAM_EPARSE, "position 10: 'alpha' is not a parameter of gaussian");
    expect_parse_error("rq(beta=2)", GRAM_EPARSE, "unknown parameter 'beta'");
    expect_parse_error("gaussian(nan)", GRAM_EPARSE, "finite");
    expect_parse_error("gaussian)", GRAM_EPARSE, "unmatched ')'");
    expect_parse_error("gaussian(1,2)", GRAM_EPARSE, "positional");

    /* Parameters outside their domain: EINVAL, with the position and the parameter's name. */
    struct { const char *spec, *name; gram_status st; } badp[] = {
        {"gaussian(-1)", "lengthscale", GRAM_EINVAL},
        {"gaussian(0)", "lengthscale", GRAM_EINVAL},
        {"gaussian(1e-320)", "lengthscale", GRAM_EINVAL},
        {"gaussian(1e-999)", "lengthscale", GRAM_EINVAL},
        {"gaussian(lengthscale=[1,-2])", "lengthscale[1]", GRAM_EINVAL},
        {"rq(alpha=0)", "alpha", GRAM_EINVAL},
        {"rq(alpha=-1)", "alpha", GRAM_EINVAL},
        {"periodic(period=0)", "period", GRAM_EINVAL},
        {"periodic(lengthscale=[1,2])", "lengthscale", GRAM_EINVAL},
        {"poly(degree=2.5)", "degree", GRAM_EINVAL},
        {"poly(degree=0)", "degree", GRAM_EINVAL},
        {"poly(degree=1e10)", "degree", GRAM_EINVAL},
        {"poly(gamma=0)", "gamma", GRAM_EINVAL},
        {"poly(coef0=-1)", "coef0", GRAM_EINVAL},
        {"linear(sigma0=-1)", "sigma0", GRAM_EINVAL},
        {"linear(sigma0=1e200)", "sigma0", GRAM_EINVAL},
        {"constant(0)", "value", GRAM_EINVAL},
        {"white(-0.1)", "noise", GRAM_EINVAL},
        {"-1 + gaussian", "value", GRAM_EINVAL},
        {"gaussian + 0", "value", GRAM_EINVAL},
        {"-2", "value", GRAM_EINVAL},
        {"gaussian(lengthscale=[1,2]) + laplacian(lengthscale=[1,2,3])", "ARD", GRAM_ESHAPE},
        {"gaussian(lengthscale=[1,2]) * (cosine + linear([1,2,3]))", "ARD", GRAM_ESHAPE},
    };
    for (size_t i = 0; i < sizeof badp / sizeof *badp; i++)
        expect_parse_error(badp[i].spec, badp[i].st, badp[i].name);

    /* Nesting is bounded; long flat chains are fine (and cost no recursion). */
    for (int depth = 199; depth <= 201; depth++) {
        size_t n = (size_t)depth * 2 + 16;
        char *s = malloc(n);
        size_t m = 0;
        for (int i = 0; i < depth; i++) s[m++] = '(';
        memcpy(s + m, "gaussian", 8), m += 8;
        for (int i = 0; i < depth; i++) s[m++] = ')';
        s[m] = 0;
        if (depth <= 200) {
            gram_kernel *kk = P(s);
            gram_kernel_destroy(kk);
        } else {
            expect_parse_error(s, GRAM_EPARSE, "nested");
        }
        free(s);
    }
    {
        const int terms = 100000;
        char *s = malloc((size_t)terms * 12 + 1);
        size_t m = 0;
        for (int i = 0; i < terms; i++) m += (size_t)sprintf(s + m, i ? "+cauchy" : "cauchy");
        gram_kernel *kk = P(s);
        if (kk) {
            CHECK(gram_kernel_n_hyper(kk) == terms, "long chain: %lld hyperparameters",
                  (long long)gram_kernel_n_hyper(kk));
            char *sp = spec_of(kk);
            CHECK(strlen(sp) == (size_t)terms * strlen("cauchy(lengthscale=1)") + (size_t)(terms - 1) * 3,
                  "long chain: canonical spec has length %zu", strlen(sp));
            free(sp);
            double y[1] = {0}, x[1] = {1}, v;
            gram_kernel_eval(ctx, kk, 1, y, x, 0, &v, NULL);
            CHECK_CLOSE(v, terms * 0.5L, 1e-12, 0, "long chain value");
            CHECK(!strcmp(gram_kernel_hyper_name(kk, terms - 1), "leaf100000.lengthscale"),
                  "long chain: last name %s", gram_kernel_hyper_name(kk, terms - 1));
        }
        gram_kernel_destroy(kk);
        free(s);
    }
    {
        const size_t nv = 1000001;
        char *s = malloc(nv * 2 + 64);
        size_t m = (size_t)sprintf(s, "gaussian(lengthscale=[");
        for (size_t i = 0; i < nv; i++) s[m++] = '1', s[m++] = i + 1 < nv ? ',' : ']';
        s[m++] = ')';
        s[m] = 0;
        expect_parse_error(s, GRAM_EPARSE, "more than 1000000");
        free(s);
        s = malloc(2100);
        m = 0;
        for (int i = 0; i < 2000; i++) s[m++] = '7';
        strcpy(s + m, "*gaussian");
        expect_parse_error(s, GRAM_EPARSE, "digits");
        free(s);
    }

    /* NULL arguments. */
    k = (gram_kernel *)&k;
    EXPECT_ERR(gram_kernel_parse(ctx, NULL, &k), GRAM_EINVAL, "spec");
    CHECK(k == NULL, "parse(NULL) left *out set");
    EXPECT_ERR(gram_kernel_parse(ctx, "gaussian", NULL), GRAM_EINVAL, "out");
    CHECK_STATUS(gram_kernel_parse(NULL, "foo(", &k), GRAM_EPARSE);
    CHECK_STATUS(gram_kernel_parse(NULL, "gaussian(-1)", &k), GRAM_EINVAL);

    /* snprintf semantics of gram_kernel_spec. */
    k = P("gaussian(0.5)");
    if (k) {
        char small[8];
        size_t n = gram_kernel_spec(k, small, sizeof small);
        CHECK(n == strlen("gaussian(lengthscale=0.5)"), "spec length %zu", n);
        CHECK(!strcmp(small, "gaussia"), "truncated spec \"%s\"", small);
        CHECK(gram_kernel_spec(k, NULL, 0) == n, "spec(NULL, 0)");
        small[0] = 'x';
        CHECK(gram_kernel_spec(k, small, 1) == n && small[0] == 0, "spec into 1 byte");
    }
    gram_kernel_destroy(k);
    char b[4] = "abc";
    CHECK(gram_kernel_spec(NULL, b, sizeof b) == 0 && b[0] == 0, "spec(NULL kernel)");
}

/* Under a locale whose radix character is ',' numbers must still read and print with '.'. */
static void test_locale(void)
{
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "de_DE", "fr_FR.UTF-8", "fr_FR.utf8"};
    const char *got = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !got; i++)
        got = setlocale(LC_ALL, names[i]);
    if (!got) return; /* no such locale here: nothing to check */
    gram_kernel *k = P("gaussian(0.25) * 1.5 + white(noise=2.5e-1)");
    if (k) {
        CHECK(k->leaves[0].lengthscale[0] == 0.25 && k->ops[1].c == 1.5 && k->leaves[1].noise == 0.25,
              "numbers misread under locale %s", got);
        char *s = spec_of(k);
        CHECK(!strcmp(s, "gaussian(lengthscale=0.25)*1.5 + white(noise=0.25)"),
              "spec under locale %s: %s", got, s);
        free(s);
        gram_kernel_destroy(k);
    }
    check_rng rng = {31};
    for (int t = 0; t < 200; t++) {
        double v = urange(&rng, -1e3, 1e3) * pow(10.0, (double)check_int(&rng, -30, 30));
        gram_kernel *a, *c;
        gram_kernel *g = P("gaussian");
        if (!g) break;
        gram_kernel_scale(ctx, v, g, &a);
        char *s = a ? spec_of(a) : NULL;
        c = s ? P(s) : NULL;
        CHECK(c && c->ops[1].c == v, "under %s, %.17g printed as %s did not read back", got, v, s ? s : "?");
        free(s);
        gram_kernel_destroy(a);
        gram_kernel_destroy(c);
        gram_kernel_destroy(g);
    }
    setlocale(LC_ALL, "C");
}

/* ---- hyperparameters ----------------------------------------------------------------------------- */

static void expect_names(const char *spec, int n, const char *const *names, const double *values)
{
    gram_kernel *k = P(spec);
    if (!k) return;
    CHECK(gram_kernel_n_hyper(k) == n, "%s: %lld hyperparameters, want %d", spec,
          (long long)gram_kernel_n_hyper(k), n);
    double theta[16];
    CHECK_STATUS(gram_kernel_get_hyper(k, theta), GRAM_OK);
    for (int i = 0; i < n && i < gram_kernel_n_hyper(k); i++) {
        const char *got = gram_kernel_hyper_name(k, i);
        CHECK(got && !strcmp(got, names[i]), "%s: hyperparameter %d is %s, want %s", spec, i,
              got ? got : "NULL", names[i]);
        CHECK_CLOSE(theta[i], logl(values[i]), 1e-15, 1e-16, names[i]);
    }
    CHECK(gram_kernel_hyper_name(k, n) == NULL, "%s: name past the end", spec);
    CHECK(gram_kernel_hyper_name(k, -1) == NULL, "%s: name at -1", spec);
    gram_kernel_destroy(k);
}

static void test_hyper(void)
{
    const char *n1[] = {"leaf1.lengthscale[0]", "leaf1.lengthscale[1]", "leaf1.lengthscale[2]", "scale1",
                        "leaf2.noise"};
    const double v1[] = {1, 2, 3, 2, 0.1};
    expect_names("2.0*matern52(lengthscale=[1,2,3]) + white(0.1)", 5, n1, v1);
    const char *n2[] = {"leaf1.lengthscale", "leaf2.lengthscale", "leaf2.gamma"};
    const double v2[] = {1, 1.5, 0.5};
    expect_names("-1*linear(sigma0=0) + poly(1.5, degree=2, gamma=0.5, coef0=0) * white(0)", 3, n2, v2);
    const char *n3[] = {"leaf1.lengthscale", "leaf1.period"};
    const double v3[] = {2, 3};
    expect_names("periodic(lengthscale=2, period=3)", 2, n3, v3);
    const char *n4[] = {"leaf1.lengthscale", "leaf1.alpha", "leaf2.value", "leaf3.lengthscale",
                        "leaf3.sigma0", "leaf4.lengthscale", "leaf4.gamma", "leaf4.coef0"};
    const double v4[] = {2, 3, 0.5, 1, 0.25, 4, 1.5, 2};
    expect_names("rq(2, alpha=3) + 0.5 + linear(sigma0=0.25) * poly(4, gamma=1.5, coef0=2)", 8, n4, v4);
    const char *n5[] = {"leaf1.lengthscale", "scale1", "scale2"};
    const double v5[] = {1, 3, 2};
    expect_names("gaussian*3*2", 3, n5, v5);
    const char *n6[] = {"leaf1.lengthscale", "scale2", "leaf2.lengthscale"};
    const double v6[] = {1, 2, 0.5};
    expect_names("gaussian*-3*2 + cauchy(0.5)*0", 3, n6, v6);
    const char *n7[] = {"leaf1.value"};
    const double v7[] = {1.5};
    expect_names("1.5", 1, n7, v7);

    /* The typed constructor with no lengthscale still has one, 1, as a hyperparameter. */
    gram_kernel *k = NULL;
    CHECK_STATUS(gram_kernel_create(ctx, GRAM_LAPLACIAN, 0, NULL, 0, NULL, &k), GRAM_OK);
    if (k) {
        double th = 7;
        CHECK(gram_kernel_n_hyper(k) == 1 && gram_kernel_get_hyper(k, &th) == GRAM_OK && th == 0.0 &&
                  !strcmp(gram_kernel_hyper_name(k, 0), "leaf1.lengthscale"),
              "laplacian with default lengthscale");
    }
    gram_kernel_destroy(k);

    /* get/set round trip, and set gives the kernel those values describe. */
    k = P("2.0*matern52(lengthscale=[1,2,3]) + white(0.1)");
    if (k) {
        double th[5], th2[5], th3[5];
        gram_kernel_get_hyper(k, th);
        for (int i = 0; i < 5; i++) th2[i] = th[i] + 0.1 * (i + 1);
        gram_kernel *k2 = NULL;
        CHECK_STATUS(gram_kernel_set_hyper(ctx, k, th2, &k2), GRAM_OK);
        if (k2) {
            gram_kernel_get_hyper(k2, th3);
            for (int i = 0; i < 5; i++) CHECK_CLOSE(th3[i], th2[i], 1e-15, 1e-15, "set then get");
            char want[512];
            snprintf(want, sizeof want, "%.17g*matern52(lengthscale=[%.17g,%.17g,%.17g]) + white(%.17g)",
                     exp(th2[3]), exp(th2[0]), exp(th2[1]), exp(th2[2]), exp(th2[4]));
            gram_kernel *k3 = P(want);
            double y[3] = {0.1, 0.2, -0.3}, x[3] = {1, -1, 0.5}, a, b;
            if (k3) {
                gram_kernel_eval(ctx, k2, 3, y, x, 1, &a, NULL);
                gram_kernel_eval(ctx, k3, 3, y, x, 1, &b, NULL);
                CHECK_CLOSE(a, b, 1e-15, 0, "set_hyper value");
            }
            gram_kernel_destroy(k3);
            for (int i = 0; i < 5; i++)
                CHECK(!strcmp(gram_kernel_hyper_name(k, i), gram_kernel_hyper_name(k2, i)), "names kept");
        }
        gram_kernel_destroy(k2);
        double bad[5];
        memcpy(bad, th, sizeof bad);
        bad[2] = NAN;
        k2 = (gram_kernel *)&k2;
        EXPECT_ERR(gram_kernel_set_hyper(ctx, k, bad, &k2), GRAM_EINVAL, "theta[2]");
        CHECK(k2 == NULL, "set_hyper failed but left *out set");
        bad[2] = 1000;
        EXPECT_ERR(gram_kernel_set_hyper(ctx, k, bad, &k2), GRAM_EINVAL, "leaf1.lengthscale[2]");
        bad[2] = -1000;
        EXPECT_ERR(gram_kernel_set_hyper(ctx, k, bad, &k2), GRAM_EINVAL, "out of range");
        EXPECT_ERR(gram_kernel_set_hyper(ctx, k, NULL, &k2), GRAM_EINVAL, "theta");
        EXPECT_ERR(gram_kernel_set_hyper(ctx, NULL, th, &k2), GRAM_EINVAL, NULL);
        EXPECT_ERR(gram_kernel_set_hyper(ctx, k, th, NULL), GRAM_EINVAL, NULL);
        CHECK_STATUS(gram_kernel_get_hyper(k, NULL), GRAM_EINVAL);
        CHECK_STATUS(gram_kernel_get_hyper(NULL, th), GRAM_EINVAL);
    }
    gram_kernel_destroy(k);
    CHECK(gram_kernel_n_hyper(NULL) == 0 && gram_kernel_hyper_name(NULL, 0) == NULL, "NULL kernel hyper");
    k = P("white(0)");
    if (k) {
        gram_kernel *k2 = NULL;
        CHECK(gram_kernel_n_hyper(k) == 0, "white(0) has no hyperparameters");
        CHECK_STATUS(gram_kernel_get_hyper(k, NULL), GRAM_OK);
        CHECK_STATUS(gram_kernel_set_hyper(ctx, k, NULL, &k2), GRAM_OK);
        gram_kernel_destroy(k2);
    }
    gram_kernel_destroy(k);
}

/* ---- gradients against central differences in θ ---------------------------------------------------- */

/* Distance of the leaf's scaled r from 1, where the compact kernels are not differentiable. */
static double compact_margin(const gram_kernel *k, int64_t D, const double *y, const double *x)
{
    double m = INFINITY;
    for (int i = 0; i < k->n_leaves; i++) {
        const gram__leaf *L = &k->leaves[i];
        if (!is_compact(L->family)) continue;
        double r2 = 0;
        for (int64_t d = 0; d < D; d++) {
            double z = (y[d] - x[d]) / L->lengthscale[L->n_scale > 1 ? d : 0];
            r2 += z * z;
        }
        m = fmin(m, fabs(sqrt(r2) - 1.0));
    }
    return m;
}

static void fd_check(const char *spec, int64_t D, int same, int pairs, uint64_t seed)
{
    gram_kernel *k = P(spec);
    if (!k) return;
    int64_t n = gram_kernel_n_hyper(k);
    double *th = malloc(sizeof(double) * (size_t)(n + 1)), *tp = malloc(sizeof(double) * (size_t)(n + 1));
    double *g = malloc(sizeof(double) * (size_t)(n + 1));
    double y[8], x[8];
    check_rng rng = {seed};
    gram_kernel_get_hyper(k, th);
    for (int t = 0; t < pairs; t++) {
        do {
            rand_point(&rng, D, 0.6, y);
            rand_point(&rng, D, 0.6, x);
        } while (compact_margin(k, D, y, x) < 1e-3);
        if (same == 2 && t == 0) memcpy(x, y, sizeof(double) * (size_t)D);
        int sm = same == 1 || (same == 2 && t == 0);
        double v, v0;
        CHECK_STATUS(gram_kernel_eval(ctx, k, D, y, x, sm, &v, g), GRAM_OK);
        gram_kernel_eval(ctx, k, D, y, x, sm, &v0, NULL);
        CHECK(v == v0, "%s: value with gradient %.17g, without %.17g", spec, v, v0);
        for (int64_t p = 0; p < n; p++) {
            double h = 1e-5 * fmax(1.0, fabs(th[p])), fp, fm;
            gram_kernel *kp = NULL, *km = NULL;
            memcpy(tp, th, sizeof(double) * (size_t)n);
            tp[p] = th[p] + h;
            gram_kernel_set_hyper(ctx, k, tp, &kp);
            tp[p] = th[p] - h;
            gram_kernel_set_hyper(ctx, k, tp, &km);
            if (!kp || !km) {
                CHECK(0, "%s: set_hyper failed: %s", spec, gram_context_message(ctx));
            } else {
                gram_kernel_eval(ctx, kp, D, y, x, sm, &fp, NULL);
                gram_kernel_eval(ctx, km, D, y, x, sm, &fm, NULL);
                ld fd = ((ld)fp - (ld)fm) / (2 * (ld)h);
                char what[256];
                snprintf(what, sizeof what, "%s: d/d %s (D=%lld, pair %d)", spec,
                         gram_kernel_hyper_name(k, p), (long long)D, t);
                CHECK_CLOSE(g[p], fd, 1e-6, 1e-8 * (1 + fabs(v)), what);
                CHECK(isfinite(g[p]), "%s is not finite", what);
            }
            gram_kernel_destroy(kp);
            gram_kernel_destroy(km);
        }
    }
    free(th);
    free(tp);
    free(g);
    gram_kernel_destroy(k);
}

static void test_gradients(void)
{
    const char *iso[] = {
        "gaussian(0.8)", "laplacian(1.2)", "matern12(0.9)", "matern32(1.1)", "matern52(0.7)",
        "rq(0.8, alpha=1.5)", "rq(1.3, alpha=0.01)", "rq(0.5, alpha=300)", "cauchy(1.3)",
        "periodic(lengthscale=0.8, period=1.7)", "periodic(lengthscale=2.5, period=0.7)", "tophat(1.5)",
        "epanechnikov(1.4)", "exponential(0.6)", "triangular(1.6)", "cosine_window(1.5)", "neg_l2(1.3)",
        "laplacian_l1(0.9)", "neg_l1(1.2)", "linear(1.1, sigma0=0.4)", "linear(0.7)",
        "poly(0.9, degree=3, gamma=0.7, coef0=0.5)", "poly(1.2, degree=1)", "poly(0.8, degree=2, coef0=0)",
        "cosine(1.0)", "constant(1.7)", "white(0.3)", "matern(0.8, nu=0.3)", "matern(1.3, nu=4.1)",
        "sigmoid(0.9, gamma=0.7, coef0=0.5)", "sigmoid(1.2, gamma=0.3, coef0=-0.4)", "sigmoid(gamma=2, coef0=0)",
    };
    for (size_t i = 0; i < sizeof iso / sizeof *iso; i++) {
        fd_check(iso[i], 1, 0, 6, 100 + i);
        fd_check(iso[i], 3, 2, 6, 200 + i);
    }
    const char *ard[] = {
        "gaussian(lengthscale=[0.5,1,2])", "laplacian(lengthscale=[0.7,1.3,0.9])",
        "matern32(lengthscale=[1.5,0.8,1.1])", "matern52(lengthscale=[0.6,1.2,2])",
        "rq(lengthscale=[0.9,1.4,0.6], alpha=0.6)", "cauchy(lengthscale=[1,2,0.5])",
        "epanechnikov(lengthscale=[1.5,2,1.8])", "triangular(lengthscale=[1.5,2,1.8])",
        "cosine_window(lengthscale=[1.5,2,1.8])", "neg_l2(lengthscale=[0.5,1,2])",
        "laplacian_l1(lengthscale=[0.5,1,2])", "neg_l1(lengthscale=[0.5,1,2])",
        "linear(lengthscale=[0.5,1,2], sigma0=0.3)", "poly(lengthscale=[0.5,1,2], degree=3, gamma=0.5, coef0=0.2)",
        "cosine(lengthscale=[0.5,1,2])", "matern(lengthscale=[0.5,1,2], nu=1.8)",
        "sigmoid(lengthscale=[0.5,1,2], gamma=0.4, coef0=0.3)",
    };
    for (size_t i = 0; i < sizeof ard / sizeof *ard; i++) fd_check(ard[i], 3, 2, 6, 300 + i);
    const char *comp[] = {
        "gaussian(0.7) + laplacian(1.3)",
        "matern32(0.8) * rq(1.2, alpha=0.7)",
        "2.5*cauchy(0.9)",
        "2.0*matern52(lengthscale=[1,2,3]) + white(0.1)",
        "rbf(lengthscale=10) * periodic(lengthscale=1, period=1)",
        "(linear(sigma0=0.5) + poly(degree=2, gamma=0.5, coef0=1)) * 0.7 * cosine(lengthscale=[1,2,3])",
        "laplacian_l1(lengthscale=[0.5,1,2]) * neg_l1(lengthscale=[1,1.5,1]) + constant(0.3)",
        "-1.5*gaussian(0.5)*exponential(2) + 1",
        "gaussian(lengthscale=[1,2,3]) * (matern12(lengthscale=[0.5,0.6,0.7]) * 2)",
        "(gaussian + 0.5) * (laplacian + 2) * (cauchy*3)",
        "0.5*(white(0.2) + matern32(2)*3) * (1.5 + rq(alpha=2)) + white(0.05)*2",
        "gaussian*0*laplacian + 2*cauchy",
    };
    for (size_t i = 0; i < sizeof comp / sizeof *comp; i++) {
        fd_check(comp[i], 3, 0, 5, 400 + i);
        fd_check(comp[i], 3, 1, 5, 500 + i);
        fd_check(comp[i], 3, 2, 5, 600 + i);
    }

    /* At r = 0 every lengthscale derivative is exactly 0 (no 0/0 from the 1/r forms). */
    const char *at0[] = {"laplacian(0.5)", "matern12", "exponential", "triangular", "cosine_window",
                         "neg_l2", "matern32", "matern52", "gaussian", "laplacian(lengthscale=[1,2])",
                         "matern(nu=0.2)", "matern(lengthscale=[1,2], nu=5.2)"};
    for (size_t i = 0; i < sizeof at0 / sizeof *at0; i++) {
        gram_kernel *k = P(at0[i]);
        if (!k) continue;
        double y[2] = {0.3, -0.2}, v, g[2] = {NAN, NAN};
        gram_kernel_eval(ctx, k, 2, y, y, 0, &v, g);
        for (int64_t j = 0; j < gram_kernel_n_hyper(k); j++)
            CHECK(g[j] == 0.0, "%s: gradient %lld at r = 0 is %g", at0[i], (long long)j, g[j]);
        gram_kernel_destroy(k);
    }
}

/* ---- normalisers against radial quadrature ------------------------------------------------------------ */

static ld profile(gram_family f, ld r, ld alpha)
{
    switch (f) { /* in long double, from the definitions */
    case GRAM_GAUSSIAN: return expl(-r * r / 2);
    case GRAM_LAPLACIAN:
    case GRAM_MATERN12:
    case GRAM_EXPONENTIAL: return expl(-r);
    case GRAM_MATERN32: return (1 + sqrtl(3.0L) * r) * expl(-sqrtl(3.0L) * r);
    case GRAM_MATERN52: return (1 + sqrtl(5.0L) * r + 5 * r * r / 3) * expl(-sqrtl(5.0L) * r);
    case GRAM_RATIONAL_QUADRATIC: return powl(1 + r * r / (2 * alpha), -alpha);
    case GRAM_CAUCHY: return 1 / (1 + r * r);
    case GRAM_TOPHAT: return r < 1 ? 1 : 0;
    case GRAM_EPANECHNIKOV: return r < 1 ? 1 - r * r : 0;
    case GRAM_TRIANGULAR: return r < 1 ? 1 - r : 0;
    case GRAM_COSINE_WINDOW: return r < 1 ? cosl(PI_L * r / 2) : 0;
    default: return NAN;
    }
}

/* log of S_{D-1} ∫_0^∞ r^{D-1} f(r) dr by composite Simpson: compact profiles in s = 1 - r on
 * [0, min(1, 80/D)] (the integrand lives near r = 1 for large D), the others in r = u/(1-u). */
static ld quad_log_norm(gram_family f, int64_t D, ld alpha)
{
    ld logS = logl(2.0L) + (ld)D / 2 * logl(PI_L) - lgammal((ld)D / 2);
    int compact = is_compact(f);
    long N = D >= 100 ? 400000 : 100000;
    ld a = 0, b = compact ? fminl(1.0L, 80.0L / (ld)D) : 1.0L, h = (b - a) / N, sum = 0;
    for (long i = 0; i <= N; i++) {
        ld u = a + h * i, val;
        if (compact) {
            ld r = 1 - u;
            val = powl(r, (ld)(D - 1)) * profile(f, r, alpha);
            if (i == 0) val = 0; /* r = 1: every compact profile is 0 (or the tophat's edge) */
            if (f == GRAM_TOPHAT && i == 0) val = 1;
        } else {
            /* u = 1: the integrand is r^{D-1} f(r) (1+r)², whose limit is 0 except for the
             * cauchy kernel in D = 1, where it is 1 */
            if (i == N) val = f == GRAM_CAUCHY ? 1 : 0;
            else {
                ld r = u / (1 - u);
                val = powl(r, (ld)(D - 1)) * profile(f, r, alpha) / ((1 - u) * (1 - u));
                if (D == 1 && i == 0) val = profile(f, 0, alpha);
            }
        }
        sum += val * (i == 0 || i == N ? 1 : i % 2 ? 4 : 2);
    }
    return logS + logl(sum * h / 3);
}

static void test_normalizers(void)
{
    const int64_t Ds[] = {1, 2, 3, 5, 10};
    const gram_family fams[] = {GRAM_GAUSSIAN, GRAM_LAPLACIAN, GRAM_MATERN12, GRAM_EXPONENTIAL,
                                GRAM_MATERN32, GRAM_MATERN52, GRAM_RATIONAL_QUADRATIC, GRAM_CAUCHY,
                                GRAM_TOPHAT, GRAM_EPANECHNIKOV, GRAM_TRIANGULAR, GRAM_COSINE_WINDOW};
    for (size_t fi = 0; fi < sizeof fams / sizeof *fams; fi++) {
        for (int di = 0; di < 5; di++) {
            int64_t D = Ds[di];
            gram_family f = fams[fi];
            if (f == GRAM_CAUCHY && D > 1) continue;
            for (int ai = 0; ai < (f == GRAM_RATIONAL_QUADRATIC ? 2 : 1); ai++) {
                ld alpha = (ld)D / 2 + (ai ? 3.0L : 1.5L);
                double ls = 0.5 + 0.3 * di, c = 1.0 + fi;
                ref R = ref_default(f);
                R.nls = 1, R.ls[0] = ls, R.alpha = (double)alpha;
                double p[3];
                int np = ref_params(&R, p);
                gram_kernel *k1 = NULL, *k = NULL;
                gram_kernel_create(ctx, f, 1, &ls, np, p, &k1);
                if (!k1 || gram_kernel_scale(ctx, c, k1, &k) != GRAM_OK) {
                    CHECK(0, "building %s failed", NAME[f]);
                    gram_kernel_destroy(k1);
                    continue;
                }
                double got, got1;
                CHECK_STATUS(gram_kernel_log_normalizer(ctx, k, D, &got), GRAM_OK);
                CHECK_STATUS(gram_kernel_log_normalizer(ctx, k1, D, &got1), GRAM_OK);
                ld want1 = quad_log_norm(f, D, alpha) + (ld)D * logl(ls);
                char what[128];
                snprintf(what, sizeof what, "log normaliser of %s, D=%lld%s", NAME[f], (long long)D,
                         ai ? " (alpha 2)" : "");
                CHECK_CLOSE(got1, want1, 0, 1e-12, what);
                CHECK_CLOSE(got, want1 + logl((ld)c), 0, 1e-12, what);
                gram_kernel_destroy(k1);
                gram_kernel_destroy(k);
            }
        }
    }

    /* High dimension, where the cosine window's integral lives in a sliver near r = 1. */
    const int64_t bigD[] = {100, 1000};
    const gram_family cfams[] = {GRAM_COSINE_WINDOW, GRAM_EPANECHNIKOV, GRAM_TRIANGULAR, GRAM_TOPHAT};
    for (int di = 0; di < 2; di++)
        for (int fi = 0; fi < 4; fi++) {
            gram_kernel *k = NULL;
            gram_kernel_create(ctx, cfams[fi], 0, NULL, 0, NULL, &k);
            double got;
            if (!k || gram_kernel_log_normalizer(ctx, k, bigD[di], &got)) {
                CHECK(0, "normaliser of %s D=%lld failed", NAME[cfams[fi]], (long long)bigD[di]);
            } else {
                ld want = quad_log_norm(cfams[fi], bigD[di], 0);
                char what[128];
                snprintf(what, sizeof what, "log normaliser of %s, D=%lld", NAME[cfams[fi]], (long long)bigD[di]);
                CHECK_CLOSE(got, want, 0, 1e-13 * fabsl(want) + 1e-13, what);
            }
            gram_kernel_destroy(k);
        }

    /* Closed forms, recomputed here. */
    gram_kernel *k = P("gaussian(0.7)");
    double v;
    if (k && !gram_kernel_log_normalizer(ctx, k, 1, &v))
        CHECK_CLOSE(v, logl(sqrtl(2 * PI_L) * 0.7L), 1e-15, 0, "D=1 gaussian = log(sqrt(2 pi) l)");
    gram_kernel_destroy(k);
    k = P("3*gaussian(lengthscale=[0.5, 2, 4])");
    if (k && !gram_kernel_log_normalizer(ctx, k, 3, &v))
        CHECK_CLOSE(v, 1.5L * logl(2 * PI_L) + logl(0.5L * 2 * 4) + logl(3.0L), 1e-15, 0, "ARD gaussian");
    gram_kernel_destroy(k);
    k = P("laplacian_l1(lengthscale=[0.5, 2, 4])*2*0.5");
    if (k && !gram_kernel_log_normalizer(ctx, k, 3, &v))
        CHECK_CLOSE(v, logl(32.0L), 1e-15, 1e-16, "laplacian_l1 = prod 2 l_d");
    gram_kernel_destroy(k);
    k = P("gaussian");
    if (k && !gram_kernel_log_normalizer(ctx, k, 5000, &v))
        CHECK_CLOSE(v, 2500 * logl(2 * PI_L), 1e-15, 0, "gaussian D=5000");
    gram_kernel_destroy(k);

    /* Kernels that do not integrate, or are not single scaled leaves. */
    struct { const char *spec; int64_t D; gram_status st; const char *msg; } bad[] = {
        {"gaussian + laplacian", 2, GRAM_EDOMAIN, "single"},
        {"gaussian * laplacian", 2, GRAM_EDOMAIN, "single"},
        {"periodic", 1, GRAM_EDOMAIN, "periodic"},
        {"neg_l2", 1, GRAM_EDOMAIN, "neg_l2"},
        {"neg_l1", 1, GRAM_EDOMAIN, NULL},
        {"linear", 1, GRAM_EDOMAIN, NULL},
        {"poly", 1, GRAM_EDOMAIN, NULL},
        {"cosine", 1, GRAM_EDOMAIN, NULL},
        {"constant", 1, GRAM_EDOMAIN, NULL},
        {"white", 1, GRAM_EDOMAIN, NULL},
        {"cauchy", 2, GRAM_EDOMAIN, "D = 1"},
        {"rq(alpha=1)", 2, GRAM_EDOMAIN, "alpha"},
        {"-1*gaussian", 1, GRAM_EDOMAIN, "scale"},
        {"0*gaussian", 1, GRAM_EDOMAIN, "scale"},
        {"gaussian(lengthscale=[1,2])", 3, GRAM_ESHAPE, "ARD"},
        {"gaussian", 0, GRAM_ESHAPE, "D"},
        {"gaussian", -1, GRAM_ESHAPE, "D"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        k = P(bad[i].spec);
        if (!k) continue;
        v = 12345;
        EXPECT_ERR(gram_kernel_log_normalizer(ctx, k, bad[i].D, &v), bad[i].st, bad[i].msg);
        CHECK(v == 12345, "%s: failed normaliser wrote its output", bad[i].spec);
        gram_kernel_destroy(k);
    }
    k = P("gaussian");
    EXPECT_ERR(gram_kernel_log_normalizer(ctx, NULL, 1, &v), GRAM_EINVAL, NULL);
    EXPECT_ERR(gram_kernel_log_normalizer(ctx, k, 1, NULL), GRAM_EINVAL, NULL);
    gram_kernel_destroy(k);
}

/* ---- constructors, composites and bad input -------------------------------------------------------- */

static void test_constructors(void)
{
    gram_kernel *k = NULL, *a = NULL, *b = NULL;
    double one = 1.0, nan_ = NAN, neg = -1.0, ls2[2] = {1, 2}, ls3[3] = {1, 2, 3}, p3[3] = {2, 1, 1};
    double half = 2.5;

    k = (gram_kernel *)&k;
    EXPECT_ERR(gram_kernel_create(ctx, (gram_family)-1, 0, NULL, 0, NULL, &k), GRAM_EINVAL, "family");
    CHECK(k == NULL, "create failed but left *out set");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_FAMILY_COUNT, 0, NULL, 0, NULL, &k), GRAM_EINVAL, "family");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_GAUSSIAN, 0, NULL, 0, NULL, NULL), GRAM_EINVAL, "out");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_GAUSSIAN, 1, &nan_, 0, NULL, &k), GRAM_EINVAL, "lengthscale");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_GAUSSIAN, 1, &neg, 0, NULL, &k), GRAM_EINVAL, "lengthscale");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_GAUSSIAN, 2, NULL, 0, NULL, &k), GRAM_EINVAL, "lengthscales");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_GAUSSIAN, -1, &one, 0, NULL, &k), GRAM_EINVAL, "n_lengthscales");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_GAUSSIAN, 0, NULL, 1, &one, &k), GRAM_EINVAL, "at most 0");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_POLYNOMIAL, 0, NULL, 4, p3, &k), GRAM_EINVAL, "at most 3");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_POLYNOMIAL, 0, NULL, 1, NULL, &k), GRAM_EINVAL, "params");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_POLYNOMIAL, 0, NULL, -1, p3, &k), GRAM_EINVAL, NULL);
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_POLYNOMIAL, 0, NULL, 1, &half, &k), GRAM_EINVAL, "degree");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_RATIONAL_QUADRATIC, 0, NULL, 1, &nan_, &k), GRAM_EINVAL, "alpha");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_PERIODIC, 0, NULL, 1, &neg, &k), GRAM_EINVAL, "period");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_PERIODIC, 2, ls2, 0, NULL, &k), GRAM_EINVAL, "scalar");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_CONSTANT, 1, &one, 0, NULL, &k), GRAM_EINVAL, "lengthscale");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_WHITE, 0, NULL, 1, &neg, &k), GRAM_EINVAL, "noise");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_CONSTANT, 0, NULL, 1, &nan_, &k), GRAM_EINVAL, "value");
    EXPECT_ERR(gram_kernel_create(ctx, GRAM_LINEAR, 0, NULL, 1, &neg, &k), GRAM_EINVAL, "sigma0");
    CHECK_STATUS(gram_kernel_create(NULL, GRAM_LINEAR, 0, NULL, 1, &neg, &k), GRAM_EINVAL);

    /* ARD dimensions: fixed by the leaves, checked when combining. */
    gram_kernel_create(ctx, GRAM_GAUSSIAN, 2, ls2, 0, NULL, &a);
    gram_kernel_create(ctx, GRAM_MATERN32, 3, ls3, 0, NULL, &b);
    if (a && b) {
        CHECK(gram_kernel_dim(a) == 2 && gram_kernel_dim(b) == 3, "ARD dims");
        k = (gram_kernel *)&k;
        EXPECT_ERR(gram_kernel_add(ctx, a, b, &k), GRAM_ESHAPE, "ARD");
        CHECK(k == NULL, "add failed but left *out set");
        EXPECT_ERR(gram_kernel_mul(ctx, b, a, &k), GRAM_ESHAPE, "ARD");
        gram_kernel *iso = NULL, *s = NULL;
        gram_kernel_create(ctx, GRAM_LAPLACIAN, 1, &one, 0, NULL, &iso);
        CHECK_STATUS(gram_kernel_add(ctx, iso, b, &s), GRAM_OK);
        CHECK(s && gram_kernel_dim(s) == 3, "isotropic + ARD(3) has dim 3");
        double y[3] = {0, 0, 0}, x[3] = {1, 1, 1}, v, x2[2] = {1, 1};
        if (s) {
            EXPECT_ERR(gram_kernel_eval(ctx, s, 2, y, x2, 0, &v, NULL), GRAM_ESHAPE, "D = 2");
            CHECK_STATUS(gram_kernel_eval(ctx, s, 3, y, x, 0, &v, NULL), GRAM_OK);
        }
        gram_kernel_destroy(s);
        gram_kernel_destroy(iso);
    }

    /* Operands are copied: destroying them leaves the composite intact. */
    gram_kernel *sum = NULL, *prod = NULL, *sc = NULL, *cp = NULL;
    CHECK_STATUS(gram_kernel_add(ctx, a, a, &sum), GRAM_OK);
    CHECK_STATUS(gram_kernel_mul(ctx, sum, a, &prod), GRAM_OK);
    CHECK_STATUS(gram_kernel_scale(ctx, 3.0, prod, &sc), GRAM_OK);
    CHECK_STATUS(gram_kernel_copy(ctx, sc, &cp), GRAM_OK);
    gram_kernel_destroy(a);
    gram_kernel_destroy(b);
    gram_kernel_destroy(sum);
    gram_kernel_destroy(prod);
    gram_kernel_destroy(sc);
    if (cp) {
        double y[2] = {0.5, -0.5}, x[2] = {0, 1}, v;
        ld e = expl(-0.5L * (0.25L + 0.5625L));
        CHECK_STATUS(gram_kernel_eval(ctx, cp, 2, y, x, 0, &v, NULL), GRAM_OK);
        CHECK_CLOSE(v, 3 * (2 * e) * e, 1e-14, 0, "copy of 3*((a+a)*a)");
        char *s = spec_of(cp);
        CHECK(!strcmp(s, "(gaussian(lengthscale=[1, 2]) + gaussian(lengthscale=[1, 2]))*gaussian(lengthscale=[1, 2])*3"),
              "built spec %s", s);
        free(s);
        CHECK(cp->stack_depth == 2 && cp->n_hyper == 7 && !cp->has_white && cp->nonnegative, "derived fields");
        const char *n6 = gram_kernel_hyper_name(cp, 6);
        CHECK(n6 && !strcmp(n6, "scale1"), "last name %s", n6 ? n6 : "NULL");
    }
    gram_kernel_destroy(cp);

    k = P("gaussian");
    gram_kernel *o = (gram_kernel *)&o;
    EXPECT_ERR(gram_kernel_scale(ctx, NAN, k, &o), GRAM_EINVAL, "finite");
    CHECK(o == NULL, "scale failed but left *out set");
    EXPECT_ERR(gram_kernel_scale(ctx, INFINITY, k, &o), GRAM_EINVAL, "finite");
    EXPECT_ERR(gram_kernel_scale(ctx, 2.0, NULL, &o), GRAM_EINVAL, NULL);
    EXPECT_ERR(gram_kernel_scale(ctx, 2.0, k, NULL), GRAM_EINVAL, NULL);
    EXPECT_ERR(gram_kernel_add(ctx, k, NULL, &o), GRAM_EINVAL, NULL);
    EXPECT_ERR(gram_kernel_add(ctx, NULL, k, &o), GRAM_EINVAL, NULL);
    EXPECT_ERR(gram_kernel_mul(ctx, k, k, NULL), GRAM_EINVAL, NULL);
    EXPECT_ERR(gram_kernel_copy(ctx, NULL, &o), GRAM_EINVAL, NULL);
    CHECK_STATUS(gram_kernel_add(NULL, k, NULL, &o), GRAM_EINVAL);

    /* eval's argument checks */
    double y[2] = {0, 1}, x[2] = {1, NAN}, v, g[1];
    EXPECT_ERR(gram_kernel_eval(ctx, k, 2, y, x, 0, &v, g), GRAM_ENONFINITE, "x[1]");
    x[1] = 0;
    y[0] = INFINITY;
    EXPECT_ERR(gram_kernel_eval(ctx, k, 2, y, x, 0, &v, g), GRAM_ENONFINITE, "y[0]");
    y[0] = 0;
    EXPECT_ERR(gram_kernel_eval(ctx, NULL, 2, y, x, 0, &v, g), GRAM_EINVAL, "kernel");
    EXPECT_ERR(gram_kernel_eval(ctx, k, 2, NULL, x, 0, &v, g), GRAM_EINVAL, "y");
    EXPECT_ERR(gram_kernel_eval(ctx, k, 2, y, NULL, 0, &v, g), GRAM_EINVAL, "x");
    EXPECT_ERR(gram_kernel_eval(ctx, k, 2, y, x, 0, NULL, g), GRAM_EINVAL, "value");
    EXPECT_ERR(gram_kernel_eval(ctx, k, -1, y, x, 0, &v, g), GRAM_ESHAPE, "D");
    CHECK_STATUS(gram_kernel_eval(NULL, k, -1, y, x, 0, &v, g), GRAM_ESHAPE);
    CHECK_STATUS(gram_kernel_eval(ctx, k, 2, y, x, 0, &v, g), GRAM_OK);
    CHECK(gram_context_message(ctx)[0] == 0, "a successful call clears the message");
    gram_kernel_destroy(k);

    /* Signs. */
    struct { const char *spec; int nonneg; } sg[] = {
        {"gaussian", 1}, {"linear", 0}, {"-1*gaussian", 0}, {"0*linear", 1}, {"gaussian*linear", 0},
        {"poly(degree=2)", 1}, {"poly(degree=3)", 0}, {"gaussian + white", 1}, {"neg_l2 + 5", 0},
        {"cosine_window*tophat*epanechnikov*triangular", 1}, {"2*(gaussian + cosine)", 0},
        {"2*(gaussian + rq)*periodic*constant", 1}, {"-1*neg_l1", 0},
    };
    for (size_t i = 0; i < sizeof sg / sizeof *sg; i++) {
        k = P(sg[i].spec);
        if (k) CHECK(gram_kernel_is_nonnegative(k) == sg[i].nonneg, "%s: nonnegative = %d", sg[i].spec,
                     gram_kernel_is_nonnegative(k));
        gram_kernel_destroy(k);
    }
    CHECK(gram_kernel_is_nonnegative(NULL) == 0 && gram_kernel_dim(NULL) == 0, "NULL kernel queries");
    k = P("gaussian + 0.5*white(0.1)");
    if (k) CHECK(k->has_white && k->stack_depth == 2, "has_white, stack depth");
    gram_kernel_destroy(k);
    k = P("gaussian + (laplacian + (cauchy + matern32))");
    if (k) CHECK(k->stack_depth == 4, "stack depth of a right-nested sum: %d", k->stack_depth);
    gram_kernel_destroy(k);
    gram_kernel_destroy(NULL);
}

/* softmax and arccos where values leave the double range, on every table and both dtypes: softmax's
 * exp(s) > DBL_MAX is +inf in a sum while its log-sum is logsumexp(s) exactly (log-values are s, not
 * log(exp(s))), and underflowed values keep finite log-sums; arccos of degree 2 with |x|²|y|² below
 * the smallest double has a finite log-sum (the norms' powers as logs); a zero vector gives 1/2
 * (n = 0) or 0. Inputs exactly representable in float32, so both dtypes have the same answer. */
static void test_dot_extremes(void)
{
    const char *archs[] = {"ref", "avx2", "avx512"};
    for (int a = 0; a < 3; a++) {
        if (gram_context_set_arch(ctx, archs[a]) != GRAM_OK) continue;
        for (int f32 = 0; f32 <= 1; f32++) {
            /* softmax: y = 30, x = 40 and 40.0625 (s = 1200, 1201.875), and their negatives */
            const double yv[1] = {30}, xv[2] = {40, 40.0625}, xn[2] = {-40, -40.0625};
            const float yf[1] = {30}, xf[2] = {40, 40.0625f}, xnf[2] = {-40, -40.0625f};
            double out[1], lout[1];
            gram_kernel *k = P("softmax");
            if (!k) return;
            for (int neg = 0; neg <= 1; neg++) {
                gram_array Y = f32 ? gram_array_f32(yf, 1, 1) : gram_array_f64(yv, 1, 1);
                gram_array X = f32 ? gram_array_f32(neg ? xnf : xf, 2, 1) : gram_array_f64(neg ? xn : xv, 2, 1);
                gram_array O = gram_array_f64(out, 1, 1), LO = gram_array_f64(lout, 1, 1);
                CHECK_STATUS(gram_kernel_sum(ctx, k, &Y, &X, NULL, &O), GRAM_OK);
                CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y, &X, NULL, &LO), GRAM_OK);
                const ld s1 = neg ? -1200 : 1200, s2 = neg ? -1201.875L : 1201.875L, m = s1 > s2 ? s1 : s2;
                const ld want = m + log1pl(expl(-fabsl(s1 - s2)));
                CHECK(neg ? out[0] == 0.0 : isinf(out[0]) && out[0] > 0, "%s f32=%d softmax sum at s = %s1200: %g", archs[a],
                      f32, neg ? "-" : "", out[0]);
                CHECK_CLOSE(lout[0], want, 1e-15L, 0, neg ? "softmax logsum, every value underflowed" : "softmax logsum, every value overflowed");
            }
            gram_kernel_destroy(k);
            /* arccos(degree=2) with norms ~1e-100: |x|²|y|² = 5e-400 underflows, its log does not */
            const double ya[2] = {1e-100, 0}, xa[2] = {2e-100, 1e-100};
            k = P("arccos(degree=2)");
            if (!k) return;
            if (!f32) {
                gram_array Y = gram_array_f64(ya, 1, 2), X = gram_array_f64(xa, 1, 2), LO = gram_array_f64(lout, 1, 1);
                CHECK_STATUS(gram_kernel_logsum(ctx, k, &Y, &X, NULL, &LO), GRAM_OK);
                const ld c = 2 / sqrtl(5), th = acosl(c);
                const ld J = 3 * sinl(th) * c + (PI_L - th) * (1 + 2 * c * c);
                const ld want = logl(1e-200L) + logl(5e-200L) + logl(J / PI_L);
                CHECK_CLOSE(lout[0], want, 1e-13L, 0, "arccos(degree=2) log-sum where the value underflows");
            }
            gram_kernel_destroy(k);
            /* a zero vector */
            for (int n = 0; n <= 2; n++) {
                char spec[32];
                snprintf(spec, sizeof spec, "arccos(degree=%d)", n);
                k = P(spec);
                if (!k) continue;
                const double z[2] = {0, 0}, xq[4] = {1, 2, 0, 0};
                const float zf[2] = {0, 0}, xqf[4] = {1, 2, 0, 0};
                double o2[2];
                gram_array Y = f32 ? gram_array_f32(zf, 1, 2) : gram_array_f64(z, 1, 2);
                gram_array X = f32 ? gram_array_f32(xqf, 2, 2) : gram_array_f64(xq, 2, 2), O = gram_array_f64(o2, 1, 2);
                CHECK_STATUS(gram_kernel_matrix(ctx, k, &Y, &X, &O), GRAM_OK);
                CHECK(o2[0] == (n == 0 ? 0.5 : 0.0) && o2[1] == o2[0], "%s %s f32=%d at a zero vector: %g, %g", archs[a],
                      spec, f32, o2[0], o2[1]);
                gram_kernel_destroy(k);
            }
        }
    }
    /* (anti)parallel points get θ = 0 or π exactly on every table (gram.h: cos θ within 8ε of ±1
     * is ±1): arccos(degree=0) is exactly 1 on the diagonal of K(X, X) and exactly 0 or 1 at D = 1
     * (before, the tables' s and |x|² rounded apart and θ came out ~1e-8, k_0 1 - 3e-9) */
    enum { NP = 40, DD = 7 };
    double Xp[NP * DD], X1[NP], K[NP * NP];
    check_rng rng = {2718};
    for (int i = 0; i < NP * DD; i++) Xp[i] = check_normal(&rng) * (i % 3 ? 1.0 : 7.0);
    for (int i = 0; i < NP; i++) X1[i] = check_normal(&rng);
    gram_kernel *k0 = P("arccos(lengthscale=[1, 2, 0.5, 1, 3, 1, 0.7], degree=0)"), *k01 = P("arccos(degree=0)");
    for (int a = 0; a < 3 && k0 && k01; a++) {
        if (gram_context_set_arch(ctx, archs[a]) != GRAM_OK) continue;
        gram_array Xa = gram_array_f64(Xp, NP, DD), Ka = gram_array_f64(K, NP, NP), X1a = gram_array_f64(X1, NP, 1);
        CHECK_STATUS(gram_kernel_matrix(ctx, k0, NULL, &Xa, &Ka), GRAM_OK);
        int off = 0;
        for (int i = 0; i < NP; i++) off += K[i * NP + i] != 1.0;
        CHECK(off == 0, "%s arccos(degree=0): %d of %d diagonal entries are not 1", archs[a], off, NP);
        CHECK_STATUS(gram_kernel_matrix(ctx, k01, NULL, &X1a, &Ka), GRAM_OK);
        off = 0;
        for (int i = 0; i < NP; i++)
            for (int j = 0; j < NP; j++) off += K[i * NP + j] != (X1[i] * X1[j] > 0 ? 1.0 : 0.0);
        CHECK(off == 0, "%s arccos(degree=0) at D = 1: %d of %d entries are not exactly 0 or 1", archs[a], off, NP * NP);
    }
    gram_kernel_destroy(k0);
    gram_kernel_destroy(k01);
    gram_context_set_arch(ctx, "auto");
    /* one pair: exp(s) overflows to +inf, its gradient is not NaN */
    gram_kernel *k = P("softmax(lengthscale=[1, 2])");
    if (k) {
        const double y[2] = {30, 4}, x[2] = {40, 4};
        double v, g[2];
        CHECK_STATUS(gram_kernel_eval(ctx, k, 2, y, x, 0, &v, g), GRAM_OK);
        CHECK(isinf(v) && !isnan(g[0]) && !isnan(g[1]), "softmax at s = 1204: %g, gradient %g %g", v, g[0], g[1]);
        gram_kernel_destroy(k);
    }
}

int main(void)
{
    if (gram_context_create(&ctx) != GRAM_OK) {
        fprintf(stderr, "no context\n");
        return 1;
    }
    test_family_values();
    test_composite_values();
    test_parser();
    test_locale();
    test_hyper();
    test_gradients();
    test_normalizers();
    test_constructors();
    test_dot_extremes();
    gram_context_destroy(ctx);
    return check_done();
}
