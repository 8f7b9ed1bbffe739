/* csprng: placeholder until the ChaCha20 generator lands (issue 14, part noise). */
#include "private.h"

#include <string.h>

gram_status gram__csprng_init_os(gram_context *ctx, gram__csprng *r)
{
    memset(r, 0, sizeof *r);
    return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: no secure generator yet");
}
void gram__csprng_init_seed(gram__csprng *r, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->key[0] = (uint32_t)seed;
    r->seeded = 1;
}
uint32_t gram__csprng_u32(gram__csprng *r) { return r->key[0]++; }
uint64_t gram__csprng_u64(gram__csprng *r) { return ((uint64_t)gram__csprng_u32(r) << 32) | gram__csprng_u32(r); }
uint64_t gram__csprng_below(gram__csprng *r, uint64_t n) { return gram__csprng_u64(r) % n; }
void gram__csprng_wipe(gram__csprng *r) { memset(r, 0, sizeof *r); }
void gram__chacha20_block(const uint32_t key[8], uint32_t counter, const uint32_t nonce[3], uint32_t out[16])
{
    (void)key; (void)counter; (void)nonce;
    memset(out, 0, 16 * sizeof *out);
}
