/* tree: placeholder (issue 15, part tree). */
#include "approx.h"

int gram__approx_tree_supports(const gram_kernel *k, const char **why)
{
    (void)k;
    if (why) *why = "the tree method is not built yet";
    return 0;
}
gram_status gram__approx_tree(gram_context *ctx, const gram_kernel *k, const gram_array *Y, const gram_array *X,
                              const gram_array *W, const gram_approx_options *opt, gram_array *out, gram_array *err,
                              gram_approx_info *info)
{
    (void)k; (void)Y; (void)X; (void)W; (void)opt; (void)out; (void)err; (void)info;
    return gram__fail(ctx, GRAM_EUNSUPPORTED, "approx: the tree method is not built yet");
}
