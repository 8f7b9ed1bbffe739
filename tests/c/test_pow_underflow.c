/* Faults the spec fuzzer found (fuzz/pending/spec, issue 12), each against values written here
 * in long double:
 *   - a scale or constant below DBL_MIN, which the parser accepts, refused by
 *     gram_kernel_set_hyper with the kernel's own θ;
 *   - the padding of the last panel (a copy of the last point, weight 0) against a kernel value
 *     that overflowed to ±inf: inf·0 made the sum NaN where it is ±inf. */
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

static gram_kernel *P(const char *spec)
{
    gram_kernel *k = NULL;
    gram_status s = gram_kernel_parse(ctx, spec, &k);
    CHECK(s == GRAM_OK && k, "parse(\"%s\") failed: %d %s", spec, (int)s, gram_context_message(ctx));
    return s == GRAM_OK ? k : NULL;
}

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

int main(void)
{
    if (gram_context_create(&ctx)) return 1;
    test_set_hyper_subnormal();
    test_inf_padding();
    gram_context_destroy(ctx);
    return check_done();
}
