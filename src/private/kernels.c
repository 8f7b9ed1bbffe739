/* kernels: placeholder (issue 14). */
#include "private.h"

static gram_status stub_fit(gram_context *ctx, gram_private_sketch *s, const double *X, int64_t n, gram__csprng *r)
{ (void)s; (void)X; (void)n; (void)r; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: kernels not built yet"); }
static gram_status stub_stat(gram_context *ctx, const gram_private_sketch *s, const double *X, int64_t n, gram__statistic *st)
{ (void)s; (void)X; (void)n; (void)st; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: kernels not built yet"); }
static gram_status stub_prep(gram_context *ctx, gram_private_sketch *s)
{ (void)s; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: kernels not built yet"); }
static gram_status stub_query(gram_context *ctx, const gram_private_sketch *s, const double *Y, int64_t m, double *out)
{ (void)s; (void)Y; (void)m; (void)out; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: kernels not built yet"); }
const gram__private_family gram__private_kernels = {stub_fit, stub_stat, stub_prep, stub_query};
