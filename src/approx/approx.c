/* approx: placeholder front end (issue 15, part front end). */
#include "approx.h"

#include <string.h>

void gram_approx_options_init(gram_approx_options *o)
{
    memset(o, 0, sizeof *o);
    o->delta = 1e-3;
}
gram_status gram_kernel_sum_approx(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                                   const gram_array *W, const gram_approx_options *opt, gram_array *out,
                                   gram_array *err, gram_approx_info *info)
{
    (void)k; (void)Y; (void)X; (void)W; (void)opt; (void)out; (void)err; (void)info;
    return gram__fail(ctx, GRAM_EUNSUPPORTED, "approx: not built yet");
}
