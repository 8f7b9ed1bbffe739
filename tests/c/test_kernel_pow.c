/* Powers of kernels (scikit-learn's Exponentiation, k ** p): the spec syntax and its printer,
 * the constructor's refusals, signs, values, log-space sums (p·log|k| where k may be negative) and
 * gradients p·k^(p-1)·∂k, each against formulas written here in long double. */
#include "check.h"
#include "gram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef long double ld;
static gram_context *ctx;

static gram_kernel *P(const char *spec) { return check_kernel(ctx, spec); }

static char *spec_of(const gram_kernel *k) { return check_spec_of(k); }

static void expect_spec(const char *spec, const char *want)
{
    gram_kernel *k = P(spec);
    if (!k) return;
    char *s = spec_of(k);
    CHECK(!strcmp(s, want), "spec of \"%s\" is \"%s\", want \"%s\"", spec, s, want);
    gram_kernel *k2 = P(s);
    if (k2) {
        char *s2 = spec_of(k2);
        CHECK(!strcmp(s, s2), "round trip: \"%s\" -> \"%s\"", s, s2);
        free(s2);
    }
    gram_kernel_destroy(k2);
    free(s);
    gram_kernel_destroy(k);
}

static void expect_error(const char *spec, const char *needle)
{
    gram_kernel *k = NULL;
    gram_status s = gram_kernel_parse(ctx, spec, &k);
    const char *m = gram_context_message(ctx);
    CHECK(s == GRAM_EPARSE && k == NULL, "parse(\"%s\") returned %d, want GRAM_EPARSE (%s)", spec, (int)s, m);
    CHECK(strstr(m, "position") && strstr(m, needle), "parse(\"%s\"): message \"%s\" lacks \"%s\"", spec, m, needle);
    gram_kernel_destroy(k);
}

static void test_syntax(void)
{
    expect_spec("rbf^2", "gaussian(lengthscale=1)^2");
    expect_spec("rbf ^ 2 ^ 3", "gaussian(lengthscale=1)^2^3");
    expect_spec("linear(sigma0=2)^2", "linear(lengthscale=1, sigma0=2)^2");
    expect_spec("2*linear^2", "linear(lengthscale=1, sigma0=0)^2*2");
    expect_spec("rbf^1.5*3", "gaussian(lengthscale=1)^1.5*3");
    expect_spec("(2*rbf)^2", "(gaussian(lengthscale=1)*2)^2");
    expect_spec("(rbf + white(0.5))^0.5", "(gaussian(lengthscale=1) + white(noise=0.5))^0.5");
    expect_spec("rq * cauchy^2", "rational_quadratic(lengthscale=1, alpha=1)*(cauchy(lengthscale=1)^2)");
    expect_spec("(rbf*laplacian)^3", "(gaussian(lengthscale=1)*laplacian(lengthscale=1))^3");
    expect_spec("2^3*rbf", "gaussian(lengthscale=1)*8");
    expect_spec("rbf + 2^-1", "gaussian(lengthscale=1) + constant(value=0.5)");

    expect_error("linear^0.5", "not an integer");
    expect_error("(rbf + -1*linear)^1.5", "can be negative");
    expect_error("rbf^0", "must be > 0");
    expect_error("rbf^-2", "must be > 0");
    expect_error("rbf^inf", "finite");
    expect_error("rbf^", "expected a number");
    expect_error("rbf^rbf", "expected a number");
    expect_error("(0-8)^0.5", "expected");
    expect_error("(-8)^0.5", "not a finite real number");
    expect_error("1e300^2*rbf", "not a finite real number");

    /* an exponent is not a hyperparameter */
    gram_kernel *k = P("rq(lengthscale=2, alpha=0.5)^2.5");
    if (k) {
        CHECK(gram_kernel_n_hyper(k) == 2, "rq^2.5 has rq's two hyperparameters");
        CHECK(!strcmp(gram_kernel_hyper_name(k, 1), "leaf1.alpha"), "name %s", gram_kernel_hyper_name(k, 1));
        gram_kernel_destroy(k);
    }
}

static void test_constructor_and_signs(void)
{
    gram_kernel *lin = P("linear(sigma0=1)"), *rbf = P("rbf"), *k = NULL;
    if (!lin || !rbf) return;
    CHECK_STATUS(gram_kernel_pow(ctx, rbf, 0.0, &k), GRAM_EINVAL);
    CHECK(k == NULL, "no kernel on failure");
    CHECK_STATUS(gram_kernel_pow(ctx, rbf, NAN, &k), GRAM_EINVAL);
    CHECK_STATUS(gram_kernel_pow(ctx, rbf, -1.0, &k), GRAM_EINVAL);
    CHECK_STATUS(gram_kernel_pow(ctx, NULL, 2.0, &k), GRAM_EINVAL);
    CHECK_STATUS(gram_kernel_pow(ctx, lin, 2.5, &k), GRAM_EDOMAIN);
    CHECK(strstr(gram_context_message(ctx), "not an integer") != NULL, "%s", gram_context_message(ctx));
    struct {
        const gram_kernel *a;
        double p;
        int nonneg;
    } cases[] = {{lin, 2.0, 1}, {lin, 3.0, 0}, {lin, 4.0, 1}, {lin, 1.0, 0}, {rbf, 0.5, 1}, {rbf, 3.0, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        CHECK_STATUS(gram_kernel_pow(ctx, cases[i].a, cases[i].p, &k), GRAM_OK);
        if (!k) continue;
        CHECK(gram_kernel_is_nonnegative(k) == cases[i].nonneg, "case %zu: nonneg %d", i, gram_kernel_is_nonnegative(k));
        gram_kernel_destroy(k);
        k = NULL;
    }
    struct {
        const char *spec;
        int nonneg;
    } specs[] = {{"(linear + rbf)^4", 1}, {"(linear + rbf)^3", 0}, {"linear^2*-1", 0}, {"linear^2 + cosine^2", 1},
                 {"0*linear^3 + rbf", 1}, {"(linear*linear)^2", 1}};
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        k = P(specs[i].spec);
        if (!k) continue;
        CHECK(gram_kernel_is_nonnegative(k) == specs[i].nonneg, "%s: nonneg %d", specs[i].spec,
              gram_kernel_is_nonnegative(k));
        gram_kernel_destroy(k);
    }
    gram_kernel_destroy(lin);
    gram_kernel_destroy(rbf);
}

/* ---- values, sums and gradients ------------------------------------------------------------- */

enum { D = 3 };

/* rq(ℓ, α)^p and its gradient in (log ℓ, log α): p·k^(p-1)·∂k. */
static ld rq_pow(ld l, ld a, ld p, const double *y, const double *x, ld *g)
{
    ld t = 0;
    for (int d = 0; d < D; d++) t += ((ld)y[d] - x[d]) * ((ld)y[d] - x[d]) / (l * l);
    ld w = t / (2 * a), k = powl(1 + w, -a), s = p * powl(k, p - 1);
    g[0] = s * k / (1 + w) * t;                 /* ∂k/∂log ℓ = k/(1+w) · t */
    g[1] = s * a * k * (w / (1 + w) - log1pl(w)); /* α ∂k/∂α */
    return powl(k, p);
}

/* (σ0² + x·y)^p (scikit-learn's DotProduct ** p) and its gradient in (log ℓ, log σ0); *cond: the
 * size of the rounding error of a double computation (the dot product cancels where σ0² + s ≈ 0). */
static ld dot_pow(ld l, ld s0, int p, const double *y, const double *x, ld *g, ld *cond)
{
    ld s = 0, sa = 0;
    for (int d = 0; d < D; d++) s += (ld)y[d] * x[d] / (l * l), sa += fabsl((ld)y[d] * x[d]) / (l * l);
    ld k = s0 * s0 + s, c = p * powl(k, p - 1);
    *cond = p * powl(s0 * s0 + sa, p);
    g[0] = c * -2 * s;
    g[1] = c * 2 * s0 * s0;
    return powl(k, p);
}

static void test_values(void)
{
    check_rng r = {3};
    enum { M = 9, N = 300 };
    double X[N * D], Y[M * D];
    for (int i = 0; i < N * D; i++) X[i] = check_normal(&r);
    for (int i = 0; i < M * D; i++) Y[i] = check_normal(&r);
    gram_kernel *krq = P("rq(lengthscale=1.3, alpha=0.6)^2.5"), *kdot = P("linear(lengthscale=0.8, sigma0=2)^2");
    gram_kernel *kodd = P("linear(lengthscale=0.8, sigma0=2)^3");
    if (!krq || !kdot || !kodd) return;
    double out[M * N], G[M * N * 2], lsum[M], sum[M];
    gram_array xa = gram_array_f64(X, N, D), ya = gram_array_f64(Y, M, D);
    gram_array oa = gram_array_f64(out, M, N), la = gram_array_f64(lsum, M, 1), sa = gram_array_f64(sum, M, 1);
    for (int c = 0; c < 3; c++) {
        gram_kernel *k = c == 0 ? krq : c == 1 ? kdot : kodd;
        for (int arch = 0; arch < 3; arch++) {
            const char *an = arch == 0 ? "ref" : arch == 1 ? "avx2" : "avx512";
            if (gram_context_set_arch(ctx, an) != GRAM_OK) continue;
            CHECK_STATUS(gram_kernel_matrix_grad(ctx, k, &ya, &xa, &oa, G), GRAM_OK);
            CHECK_STATUS(gram_kernel_sum(ctx, k, &ya, &xa, NULL, &sa), GRAM_OK);
            if (c < 2) CHECK_STATUS(gram_kernel_logsum(ctx, k, &ya, &xa, NULL, &la), GRAM_OK);
            else CHECK_STATUS(gram_kernel_logsum(ctx, k, &ya, &xa, NULL, &la), GRAM_EDOMAIN);
            for (int i = 0; i < M; i++) {
                ld tot = 0, mag = 0;
                for (int j = 0; j < N; j++) {
                    ld g[2], cond = 0, v = c == 0 ? rq_pow(1.3L, 0.6L, 2.5L, Y + i * D, X + j * D, g)
                                                  : dot_pow(0.8L, 2, c == 1 ? 2 : 3, Y + i * D, X + j * D, g, &cond);
                    tot += v;
                    mag += fabsl(v) + cond;
                    CHECK_CLOSE(out[i * N + j], v, 1e-13, 1e-15 * cond, "value");
                    for (int h = 0; h < 2; h++)
                        CHECK_CLOSE(G[(i * N + j) * 2 + h], g[h], 1e-12, 1e-13 * fabsl(v) + 1e-15 * cond, "gradient");
                }
                CHECK_CLOSE(sum[i], tot, 1e-12, 1e-13 * mag, "sum");
                if (c < 2) CHECK_CLOSE(lsum[i], logl(tot), 0, 1e-12, "logsum");
            }
        }
    }
    gram_context_set_arch(ctx, "auto");

    /* log-space exactness where every value underflows: rbf^3 far away, log Σ = log N - 3 r²/2 */
    gram_kernel *k3 = P("rbf(0.01)^3");
    if (k3) {
        double x0[D] = {0, 0, 0}, y0[D] = {1, 0, 0}, l;
        gram_array x1 = gram_array_f64(x0, 1, D), y1 = gram_array_f64(y0, 1, D), o1 = gram_array_f64(&l, 1, 1);
        CHECK_STATUS(gram_kernel_logsum(ctx, k3, &y1, &x1, NULL, &o1), GRAM_OK);
        CHECK_CLOSE(l, -1.5e4, 1e-15, 0, "log of rbf^3 where it underflows");
        gram_kernel_destroy(k3);
    }
    /* a linear kernel squared, in log space: 2·log|k| also where k < 0 and where k = 0 */
    gram_kernel *kl = P("linear^2");
    if (kl) {
        double xs[2 * D] = {1, 2, 3, -1, 0, 0}, ys[D] = {-2, 0.5, 0}, l2[1];
        gram_array x2 = gram_array_f64(xs, 2, D), y2 = gram_array_f64(ys, 1, D), o2 = gram_array_f64(l2, 1, 1);
        CHECK_STATUS(gram_kernel_logsum(ctx, kl, &y2, &x2, NULL, &o2), GRAM_OK);
        CHECK_CLOSE(l2[0], logl(1.0L + 4.0L), 1e-15, 0, "log((-1)^2 + 2^2)");
        double zs[D] = {0, 0, 0};
        gram_array y3 = gram_array_f64(zs, 1, D);
        CHECK_STATUS(gram_kernel_logsum(ctx, kl, &y3, &x2, NULL, &o2), GRAM_OK);
        CHECK(l2[0] == -INFINITY, "log of a sum of zeros: %g", l2[0]);
        gram_kernel_destroy(kl);
    }
    gram_kernel_destroy(krq);
    gram_kernel_destroy(kdot);
    gram_kernel_destroy(kodd);
}

/* gram_kernel_eval's one-pair gradient through a power inside a composite:
 * 2·rq^1.7 + white, against the chain rule written out. */
static void test_eval_grad(void)
{
    gram_kernel *k = P("2*rq(lengthscale=0.9, alpha=1.4)^1.7 + white(0.3)");
    if (!k) return;
    check_rng r = {9};
    for (int t = 0; t < 50; t++) {
        double y[D], x[D], v, g[4];
        for (int d = 0; d < D; d++) y[d] = check_normal(&r), x[d] = check_normal(&r);
        CHECK_STATUS(gram_kernel_eval(ctx, k, D, y, x, 0, &v, g), GRAM_OK);
        ld gr[2], kp = rq_pow(0.9L, 1.4L, 1.7L, y, x, gr);
        CHECK_CLOSE(v, 2 * kp, 1e-14, 0, "value");
        CHECK_CLOSE(g[0], 2 * gr[0], 1e-12, 1e-15, "d/dlog l");
        CHECK_CLOSE(g[1], 2 * gr[1], 1e-12, 1e-15, "d/dlog alpha");
        CHECK_CLOSE(g[2], 2 * kp, 1e-14, 0, "d/dlog scale");
        CHECK(g[3] == 0.0, "white off the diagonal");
    }
    gram_kernel_destroy(k);
}

int main(void)
{
    if (gram_context_create(&ctx)) return 1;
    test_syntax();
    test_constructor_and_signs();
    test_values();
    test_eval_grad();
    gram_context_destroy(ctx);
    return check_done();
}
