#include "base.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

gram_status gram_context_create(gram_context **out)
{
    if (!out) return GRAM_EINVAL;
    gram_context *c = calloc(1, sizeof *c);
    *out = c;
    if (!c) return GRAM_ENOMEM;
    c->threads = 0;
    c->arch = GRAM_ARCH_AUTO;
    return GRAM_OK;
}

void gram_context_destroy(gram_context *ctx) { free(ctx); }

const char *gram_context_message(const gram_context *ctx) { return ctx ? ctx->message : ""; }

gram_status gram_context_set_threads(gram_context *ctx, int threads)
{
    if (!ctx) return GRAM_EINVAL;
    gram__clear(ctx);
    if (threads < 0 || threads > 4096)
        return gram__fail(ctx, GRAM_EINVAL, "threads must be in [0, 4096], got %d", threads);
    ctx->threads = threads;
    return GRAM_OK;
}

int gram_context_threads(const gram_context *ctx) { return ctx ? ctx->threads : 0; }

int gram__threads(const gram_context *ctx)
{
    int n = ctx && ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
    return n < 1 ? 1 : n;
}

gram_status gram_context_set_progress(gram_context *ctx, gram_progress_fn fn, void *user)
{
    if (!ctx) return GRAM_EINVAL;
    gram__clear(ctx);
    ctx->progress = fn;
    ctx->progress_user = user;
    return GRAM_OK;
}

static gram_status parse_arch(gram_context *ctx, const char *name, gram_arch *out, const char *what)
{
    if (!strcmp(name, "auto") || !strcmp(name, "")) *out = GRAM_ARCH_AUTO;
    else if (!strcmp(name, "ref")) *out = GRAM_ARCH_REF;
    else if (!strcmp(name, "avx2")) *out = GRAM_ARCH_AVX2;
    else if (!strcmp(name, "avx512")) *out = GRAM_ARCH_AVX512;
    else
        return gram__fail(ctx, GRAM_EINVAL, "%s: unknown architecture '%s' (expected auto, ref, avx2 or avx512)",
                          what, name);
    if (*out == GRAM_ARCH_AVX2 && !gram__cpu_has_avx2())
        return gram__fail(ctx, GRAM_EUNSUPPORTED, "%s: this CPU lacks AVX2/FMA", what);
    if (*out == GRAM_ARCH_AVX512 && !gram__cpu_has_avx512())
        return gram__fail(ctx, GRAM_EUNSUPPORTED, "%s: this CPU lacks AVX-512F/DQ", what);
    return GRAM_OK;
}

gram_status gram_context_set_arch(gram_context *ctx, const char *arch)
{
    if (!ctx || !arch) return gram__fail(ctx, GRAM_EINVAL, "arch must not be NULL");
    gram__clear(ctx);
    gram_arch a = GRAM_ARCH_AUTO;
    gram_status s = parse_arch(ctx, arch, &a, "arch");
    if (s) return s;
    ctx->arch = a;
    return GRAM_OK;
}

const char *gram__arch_name(gram_arch a)
{
    switch (a) {
    case GRAM_ARCH_REF: return "ref";
    case GRAM_ARCH_AVX2: return "avx2";
    case GRAM_ARCH_AVX512: return "avx512";
    default: return "auto";
    }
}

gram_status gram__resolve_arch(gram_context *ctx, gram_arch *out)
{
    gram_arch a = ctx ? ctx->arch : GRAM_ARCH_AUTO;
    if (a == GRAM_ARCH_AUTO) {
        const char *env = getenv("GRAM_ARCH");
        if (env && *env) {
            gram_status s = parse_arch(ctx, env, &a, "GRAM_ARCH");
            if (s) return s;
        }
    }
    if (a == GRAM_ARCH_AUTO)
        a = gram__cpu_has_avx512() ? GRAM_ARCH_AVX512 : gram__cpu_has_avx2() ? GRAM_ARCH_AVX2 : GRAM_ARCH_REF;
    *out = a;
    return GRAM_OK;
}

const char *gram_context_arch(const gram_context *ctx)
{
    gram_arch a = GRAM_ARCH_AUTO;
    if (gram__resolve_arch((gram_context *)ctx, &a)) return "ref";
    return gram__arch_name(a);
}
