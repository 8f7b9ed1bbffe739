/* diagnose: placeholder (issue 15, part diagnostics). */
#include "approx.h"

gram_status gram_kernel_sum_participation(gram_context *ctx, const gram_kernel *k, const gram_array *Y,
                                          const gram_array *X, const double *w, gram_array *out)
{
    (void)k; (void)Y; (void)X; (void)w; (void)out;
    return gram__fail(ctx, GRAM_EUNSUPPORTED, "approx: participation not built yet");
}
gram_status gram_kde_regime_of(double N, double D, double h, double *h_clt, double *h_g, gram_kde_regime *regime)
{
    (void)N; (void)D; (void)h; (void)h_clt; (void)h_g; (void)regime;
    return GRAM_EUNSUPPORTED;
}
