/* sampling: placeholder (issue 15, part sampling). */
#include "approx.h"

gram_status gram__approx_sampling(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                  const gram_array *W, const gram_approx_options *opt, gram_array *out,
                                  gram_array *err, gram_approx_info *info)
{
    (void)k; (void)Y; (void)X; (void)W; (void)opt; (void)out; (void)err; (void)info;
    return gram__fail(ctx, GRAM_EUNSUPPORTED, "approx: the sampling method is not built yet");
}
