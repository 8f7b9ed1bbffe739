/* ISJ on rounded data: the fixed-point equation of Botev et al. (2010) gains spurious roots at tiny
 * times when the data are discrete (the binned histogram is a set of spikes). gram takes the
 * largest root, so rounding the data to whole seconds (many of Old Faithful's eruption times are) must not
 * change the bandwidth materially. Before that rule, Brent on (0, 0.1) found h ≈ 2e-4 here
 * instead of ≈ 0.13. */
#include "check.h"
#include "gram.h"

#include <math.h>

static double isj(const double *x, int n)
{
    gram_kde_options opt;
    gram_kde_options_init(&opt);
    opt.rule = GRAM_BW_ISJ;
    gram_array X = gram_array_f64(x, n, 1);
    gram_kde *kde = NULL;
    gram_context *ctx;
    gram_context_create(&ctx);
    gram_status s = gram_kde_fit(ctx, &opt, &X, NULL, &kde);
    CHECK(s == GRAM_OK, "ISJ fit: %s", gram_context_message(ctx));
    double h = s ? NAN : gram_kde_factor(kde);
    gram_kde_destroy(kde);
    gram_context_destroy(ctx);
    return h;
}

int main(void)
{
    enum { N = 272 };
    static double x[N], r[N];
    check_rng rng = {2010};
    for (int rep = 0; rep < 5; rep++) {
        /* A bimodal sample like the eruption times: 0.35·N(2, 0.25²) + 0.65·N(4.3, 0.4²). */
        for (int i = 0; i < N; i++) {
            double z = check_normal(&rng);
            x[i] = check_uniform(&rng) < 0.35 ? 2.0 + 0.25 * z : 4.3 + 0.4 * z;
            r[i] = round(x[i] * 60.0) / 60.0; /* whole seconds, as many eruption times were recorded */
        }
        double h = isj(x, N), hr = isj(r, N);
        CHECK(h > 0.05 && h < 0.5, "ISJ on the continuous sample: h = %g", h);
        CHECK_CLOSE(hr, h, 0.05, 0, "ISJ on the rounded sample vs the continuous one");
    }
    return check_done();
}
