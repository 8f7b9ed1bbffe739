/* Published reference values from other projects' test suites, reproduced by gram's KDE.
 *
 * scipy/stats/tests/test_kdeoth.py (SciPy):
 *   test_kde_integer_input               gaussian_kde(arange(5)) at arange(5), Scott's rule
 *                                        (regression test for SciPy issue #1181);
 *   test_gaussian_kde_covariance_caching gaussian_kde([-7,-5,1,4,5]) at linspace(-10,10,5),
 *                                        Scott's rule ("values from scipy 0.10").
 * Both are asserted there to 6 decimals; the values are printed with 8. */
#include "check.h"
#include "gram.h"

#include <math.h>

static void check_case(const char *name, const double *x, int n, const double *q, const double *want, int m)
{
    gram_context *ctx;
    gram_context_create(&ctx);
    gram_kde_options opt;
    gram_kde_options_init(&opt);
    opt.geometry = GRAM_KDE_COVARIANCE;
    opt.rule = GRAM_BW_SCOTT;
    gram_array X = gram_array_f64(x, n, 1), Q = gram_array_f64(q, m, 1);
    gram_kde *kde = NULL;
    gram_status s = gram_kde_fit(ctx, &opt, &X, NULL, &kde);
    CHECK(s == GRAM_OK, "%s: fit: %s", name, gram_context_message(ctx));
    if (!s) {
        double got[16];
        gram_array O = gram_array_f64(got, m, 1);
        CHECK_STATUS(gram_kde_pdf(ctx, kde, &Q, &O), GRAM_OK);
        for (int i = 0; i < m; i++) CHECK_CLOSE(got[i], want[i], 0, 6e-9, name);
        /* Scott's factor n^(-1/5) for D = 1. */
        CHECK_CLOSE(gram_kde_factor(kde), pow(n, -0.2), 1e-15, 0, "Scott factor");
    }
    gram_kde_destroy(kde);
    gram_context_destroy(ctx);
}

int main(void)
{
    const double x1[] = {0, 1, 2, 3, 4};
    const double y1[] = {0.13480721, 0.18222869, 0.19514935, 0.18222869, 0.13480721};
    check_case("scipy test_kde_integer_input", x1, 5, x1, y1, 5);

    const double x2[] = {-7, -5, 1, 4, 5};
    const double q2[] = {-10, -5, 0, 5, 10};
    const double y2[] = {0.02463386, 0.04689208, 0.05395444, 0.05337754, 0.01664475};
    check_case("scipy test_gaussian_kde_covariance_caching", x2, 5, q2, y2, 5);
    return check_done();
}
