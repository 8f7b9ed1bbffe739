/* Hyperparameter bounds as scikit-learn has them: a value may start outside its bounds (they
 * only constrain learning, and the optimiser starts from the value's projection onto them), the
 * default bounds are (1e-5, 1e5) whatever the value, and ARD lengthscales take one pair of bounds
 * per dimension (scikit-learn's (n_features, 2) array). The expected log-bounds are logs of the
 * numbers written in the spec, computed here. */
#include "check.h"
#include "gram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static gram_context *ctx;

static gram_kernel *P(const char *spec) { return check_kernel(ctx, spec); }

static char *spec_of(const gram_kernel *k) { return check_spec_of(k); }

/* The bounds of spec's hyperparameters equal want_lo / want_hi (logs of values), exactly. */
static void expect_bounds(const char *spec, int n, const double *lo_v, const double *hi_v)
{
    gram_kernel *k = P(spec);
    if (!k) return;
    CHECK(gram_kernel_n_hyper(k) == n, "%s: %lld hyperparameters, want %d", spec,
          (long long)gram_kernel_n_hyper(k), n);
    if (gram_kernel_n_hyper(k) == n) {
        double lo[8], hi[8];
        CHECK_STATUS(gram_kernel_get_bounds(k, lo, hi), GRAM_OK);
        for (int i = 0; i < n; i++) {
            double wl = log(lo_v[i]), wh = log(hi_v[i]);
            CHECK(lo[i] == wl && hi[i] == wh, "%s: bounds[%d] = [%.17g, %.17g], want [%.17g, %.17g]", spec,
                  i, lo[i], hi[i], wl, wh);
        }
    }
    gram_kernel_destroy(k);
}

/* spec parses; its canonical text is want (NULL: itself), and that text parses back to itself */
static void expect_spec(const char *spec, const char *want)
{
    gram_kernel *k = P(spec);
    if (!k) return;
    char *s = spec_of(k);
    if (!want) want = spec;
    CHECK(!strcmp(s, want), "spec of \"%s\" is \"%s\", want \"%s\"", spec, s, want);
    gram_kernel *k2 = P(s);
    if (k2) {
        char *s2 = spec_of(k2);
        CHECK(!strcmp(s, s2), "round trip: \"%s\" -> \"%s\"", s, s2);
        double lo[8], hi[8], lo2[8], hi2[8];
        int64_t n = gram_kernel_n_hyper(k);
        if (n <= 8) {
            gram_kernel_get_bounds(k, lo, hi);
            gram_kernel_get_bounds(k2, lo2, hi2);
            CHECK(!memcmp(lo, lo2, sizeof(double) * (size_t)n) && !memcmp(hi, hi2, sizeof(double) * (size_t)n),
                  "round trip of \"%s\" changes the bounds", spec);
        }
        free(s2);
        gram_kernel_destroy(k2);
    }
    free(s);
    gram_kernel_destroy(k);
}

static void expect_error(const char *spec, const char *needle)
{
    gram_kernel *k = NULL;
    gram_status s = gram_kernel_parse(ctx, spec, &k);
    const char *m = gram_context_message(ctx);
    CHECK(s == GRAM_EPARSE && k == NULL, "parse(\"%s\") returned %d, want GRAM_EPARSE (%s)", spec, (int)s, m);
    CHECK(strstr(m, "position") && strstr(m, needle), "parse(\"%s\"): message \"%s\" lacks \"%s\"", spec, m,
          needle);
    gram_kernel_destroy(k);
}

static void test_outside(void)
{
    /* scikit-learn's test_warning_bounds: RBF(length_scale=1, length_scale_bounds=[1e-5, 1e-3]) */
    expect_bounds("rbf(lengthscale=1, lengthscale_bounds=[1e-5, 1e-3])", 1, (double[]){1e-5},
                  (double[]){1e-3});
    expect_spec("rbf(lengthscale=1, lengthscale_bounds=[1e-5, 1e-3])",
                "gaussian(lengthscale=1, lengthscale_bounds=[1.0000000000000001e-05, 0.001])");
    expect_bounds("rq(alpha=3, alpha_bounds=[0.1, 1])", 2, (double[]){1e-5, 0.1}, (double[]){1e5, 1});
    expect_bounds("white(noise=1, noise_bounds=[1e3, 1e5])", 1, (double[]){1e3}, (double[]){1e5});
    expect_bounds("rbf(lengthscale=[1, 20], lengthscale_bounds=[0.5, 10])", 2, (double[]){0.5, 0.5},
                  (double[]){10, 10});
    /* the defaults stay (1e-5, 1e5) for values outside them, and for scales */
    expect_bounds("rbf(1e-7)", 1, (double[]){1e-5}, (double[]){1e5});
    expect_bounds("1e9*rbf(1e7)", 2, (double[]){1e-5, 1e-5}, (double[]){1e5, 1e5});
    expect_bounds("constant(1e-8) + white(1e8)", 2, (double[]){1e-5, 1e-5}, (double[]){1e5, 1e5});

    /* values set outside the bounds keep them, and print and parse back */
    gram_kernel *k = P("rq(lengthscale=2, lengthscale_bounds=[0.3, 2], alpha=0.3, alpha_bounds=[0.3, 7])");
    if (k) {
        double th[2] = {log(50.0), log(1e-3)}, lo[2], hi[2];
        gram_kernel *kb = NULL;
        CHECK_STATUS(gram_kernel_set_hyper(ctx, k, th, &kb), GRAM_OK);
        if (kb) {
            gram_kernel_get_bounds(kb, lo, hi);
            CHECK(lo[0] == log(0.3) && hi[0] == log(2.0) && lo[1] == log(0.3) && hi[1] == log(7.0),
                  "set_hyper keeps the bounds");
            char *s = spec_of(kb);
            expect_spec(s, NULL);
            free(s);
        }
        gram_kernel_destroy(kb);
        gram_kernel_destroy(k);
    }
}

static void test_per_dimension(void)
{
    const char *spec = "rbf(lengthscale=[1, 2], lengthscale_bounds=[[1e-3, 10], [1e-2, 100]])";
    expect_bounds(spec, 2, (double[]){1e-3, 1e-2}, (double[]){10, 100});
    expect_spec(spec, "gaussian(lengthscale=[1, 2], lengthscale_bounds=[[0.001, 10], [0.01, 100]])");
    /* whitespace, an open side, and a pair per dimension in a composite whose other leaves have
     * their own bounds */
    const char *s2 = "2*matern52(lengthscale=[1,2,3], lengthscale_bounds=[ [0, 1], [1e-2, inf] ,[3,3]]) + "
                     "white(0.1, noise_bounds=[1e-3, 1])";
    expect_bounds(s2, 5, (double[]){0, 1e-2, 3, 1e-5, 1e-3}, (double[]){1, INFINITY, 3, 1e5, 1});
    expect_spec(s2, "matern52(lengthscale=[1, 2, 3], lengthscale_bounds=[[0, 1], [0.01, inf], [3, 3]])*2 + "
                    "white(noise=0.10000000000000001, noise_bounds=[0.001, 1])");
    /* equal pairs are one pair; one pair in a list is that pair */
    expect_spec("rbf(lengthscale=[1, 2], lengthscale_bounds=[[1, 10], [1, 10]])",
                "gaussian(lengthscale=[1, 2], lengthscale_bounds=[1, 10])");
    expect_spec("rbf(lengthscale=3, lengthscale_bounds=[[1, 10]])",
                "gaussian(lengthscale=3, lengthscale_bounds=[1, 10])");
    expect_bounds("laplacian_l1(lengthscale=[1, 2], lengthscale_bounds=[[1, 10]])", 2, (double[]){1, 1},
                  (double[]){10, 10});

    /* the per-dimension bounds survive copies, composites and new hyperparameters */
    gram_kernel *a = P(spec), *b = P("white(0.5)"), *c = NULL, *d = NULL;
    if (a && b) {
        CHECK_STATUS(gram_kernel_add(ctx, b, a, &c), GRAM_OK);
        double th[3] = {log(0.5), log(7.0), log(8.0)}, lo[3], hi[3];
        if (c) CHECK_STATUS(gram_kernel_set_hyper(ctx, c, th, &d), GRAM_OK);
        if (d) {
            gram_kernel_get_bounds(d, lo, hi);
            CHECK(lo[1] == log(1e-3) && hi[1] == log(10.0) && lo[2] == log(1e-2) && hi[2] == log(100.0),
                  "composite of a per-dimension-bounded kernel: [%g, %g] [%g, %g]", lo[1], hi[1], lo[2], hi[2]);
            char *s = spec_of(d);
            CHECK(strstr(s, "lengthscale_bounds=[[0.001, 10], [0.01, 100]]") != NULL, "printed: %s", s);
            free(s);
        }
    }
    gram_kernel_destroy(a);
    gram_kernel_destroy(b);
    gram_kernel_destroy(c);
    gram_kernel_destroy(d);
}

static void test_errors(void)
{
    expect_error("rbf(lengthscale=[1, 2], lengthscale_bounds=[[1, 2], [1, 2], [1, 2]])", "3 pairs");
    expect_error("rbf(lengthscale=1, lengthscale_bounds=[[1, 2], [3, 4]])", "one per lengthscale");
    expect_error("rq(alpha_bounds=[[1, 2]])", "not a list of pairs");
    expect_error("rbf(lengthscale=[1, 2], lengthscale_bounds=[[1, 2], 3])", "expected '['");
    expect_error("rbf(lengthscale=[1, 2], lengthscale_bounds=[[1, 2] [3, 4]])", "expected ',' or ']'");
    expect_error("rbf(lengthscale=[1, 2], lengthscale_bounds=[[2, 1], [3, 4]])", "lower bound 2 is above");
    expect_error("rbf(lengthscale_bounds=[-1, 1])", ">= 0");
    expect_error("rbf(lengthscale_bounds=[0, 0])", "must be > 0");
    expect_error("rbf(lengthscale_bounds=[2, 1])", "above upper bound");
    expect_error("rbf(lengthscale_bounds=[inf, inf])", "not allowed");
    expect_error("rbf(lengthscale_bounds=[1, 2], lengthscale_bounds=[1, 2])", "given twice");
    expect_error("poly(degree_bounds=fixed)", "not a hyperparameter");
}

/* The optimiser starts from the projection of a value outside its bounds: the learned
 * hyperparameters lie inside them. */
static void test_gp_start_outside(void)
{
    enum { N = 12 };
    double X[N], Y[N];
    for (int i = 0; i < N; i++) {
        X[i] = i * 0.5;
        Y[i] = sin(X[i]);
    }
    gram_kernel *k = P("rbf(lengthscale=1, lengthscale_bounds=[1e-5, 1e-3]) + white(1, noise_bounds=[1e-3, 1e-2])");
    if (!k) return;
    gram_gp_options opt;
    gram_gp_options_init(&opt);
    opt.optimize = 1;
    gram_array xa = gram_array_f64(X, N, 1), ya = gram_array_f64(Y, N, 1);
    gram_gp *gp = NULL;
    CHECK_STATUS(gram_gp_fit(ctx, k, &opt, &xa, &ya, &gp), GRAM_OK);
    if (gp) {
        double th[2], lo[2], hi[2];
        const gram_kernel *kf = gram_gp_kernel(gp);
        gram_kernel_get_hyper(kf, th);
        gram_kernel_get_bounds(kf, lo, hi);
        for (int i = 0; i < 2; i++)
            CHECK(th[i] >= lo[i] && th[i] <= hi[i], "learned theta[%d] = %g outside [%g, %g]", i, th[i], lo[i],
                  hi[i]);
    }
    gram_gp_destroy(gp);
    gram_kernel_destroy(k);
}

int main(void)
{
    if (gram_context_create(&ctx)) return 1;
    test_outside();
    test_per_dimension();
    test_errors();
    test_gp_start_outside();
    gram_context_destroy(ctx);
    return check_done();
}
