/* private: placeholder for the public API (issue 14, part api). */
#include "private.h"

#include <string.h>

void gram_private_options_init(gram_private_options *o)
{
    memset(o, 0, sizeof *o);
    o->p = 1.0;
}
gram_status gram_private_fit(gram_context *ctx, const gram_array *X, gram_private_similarity f, double epsilon,
                             double delta, const gram_private_options *opt, gram_private_sketch **out)
{
    (void)X; (void)f; (void)epsilon; (void)delta; (void)opt;
    if (out) *out = NULL;
    return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: not built yet");
}
void gram_private_sketch_destroy(gram_private_sketch *s) { (void)s; }
gram_status gram_private_query(gram_context *ctx, const gram_private_sketch *s, const gram_array *Y, gram_array *out)
{ (void)s; (void)Y; (void)out; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: not built yet"); }
gram_status gram_private_query_mean(gram_context *ctx, const gram_private_sketch *s, const gram_array *Y, gram_array *out)
{ (void)s; (void)Y; (void)out; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: not built yet"); }
gram_status gram_private_sketch_info(const gram_private_sketch *s, gram_private_info *info)
{ (void)s; (void)info; return GRAM_EUNSUPPORTED; }
int64_t gram_private_sketch_n_clipped(const gram_private_sketch *s) { (void)s; return -1; }
gram_status gram__private_statistic(gram_context *ctx, const gram_private_sketch *s, const gram_array *X, gram__statistic *st)
{ (void)s; (void)X; (void)st; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: not built yet"); }
gram_status gram_privacy_accountant_create(gram_context *ctx, gram_privacy_accountant **out)
{ if (out) *out = NULL; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: not built yet"); }
void gram_privacy_accountant_destroy(gram_privacy_accountant *a) { (void)a; }
gram_status gram_privacy_accountant_add(gram_context *ctx, gram_privacy_accountant *a, const gram_private_sketch *s,
                                        int64_t partition, int64_t part)
{ (void)a; (void)s; (void)partition; (void)part; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: not built yet"); }
gram_status gram_privacy_accountant_total(const gram_privacy_accountant *a, double *epsilon, double *delta)
{ (void)a; (void)epsilon; (void)delta; return GRAM_EUNSUPPORTED; }
int64_t gram_privacy_accountant_count(const gram_privacy_accountant *a) { (void)a; return 0; }
