/* approx: the grid method (placeholder until its part lands; docs/approx.md). */
#include "approx.h"

#include <math.h>

int gram__approx_grid_supports(const gram_kernel *k, int64_t D, const char **why)
{
    (void)k, (void)D;
    if (why) *why = "method grid is not built yet";
    return 0;
}

double gram__approx_grid_cost(const gram_kernel *k, const gram_array *Y, const gram_array *X,
                            const gram_approx_options *opt)
{
    (void)k, (void)Y, (void)X, (void)opt;
    return INFINITY;
}

gram_status gram__approx_grid(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                          const gram_array *W, const gram_approx_options *opt, gram_array *out, gram_array *err,
                          gram_approx_info *info)
{
    (void)k, (void)Y, (void)X, (void)W, (void)opt, (void)out, (void)err, (void)info;
    return gram__fail(ctx, GRAM_EUNSUPPORTED, "method grid is not built yet");
}
