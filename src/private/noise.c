/* noise: placeholder until the exact samplers land (issue 14, part noise). */
#include "private.h"

int gram__bernoulli_exp(gram__csprng *r, uint64_t num, uint64_t den) { (void)r; (void)num; (void)den; return 0; }
int64_t gram__discrete_laplace(gram__csprng *r, uint64_t num, uint64_t den) { (void)r; (void)num; (void)den; return 0; }
int64_t gram__discrete_gaussian(gram__csprng *r, uint64_t num, uint64_t den) { (void)r; (void)num; (void)den; return 0; }
gram_status gram__release(gram_context *ctx, const gram__statistic *st, double epsilon, double delta,
                          gram__csprng *r, double *out, gram__release_record *rec)
{
    (void)st; (void)epsilon; (void)delta; (void)r; (void)out; (void)rec;
    return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: release not built yet");
}
