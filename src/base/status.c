#include "base.h"

#include <stdio.h>
#include <string.h>

const char *gram_strerror(gram_status status)
{
    switch (status) {
    case GRAM_OK: return "success";
    case GRAM_EINVAL: return "invalid argument";
    case GRAM_ESHAPE: return "array shapes do not agree";
    case GRAM_ENONFINITE: return "non-finite value (NaN or Inf) in input";
    case GRAM_ENOMEM: return "out of memory";
    case GRAM_EOVERFLOW: return "size overflow";
    case GRAM_EPARSE: return "kernel spec parse error";
    case GRAM_EDOMAIN: return "operation not defined for this kernel or these values";
    case GRAM_EUNSUPPORTED: return "not supported on this build or machine";
    case GRAM_ECANCELLED: return "cancelled by the progress callback";
    case GRAM_EIO: return "input/output error";
    case GRAM_EFORMAT: return "malformed file";
    case GRAM_ENOTPD: return "matrix is not positive definite";
    case GRAM_EINTERNAL: return "internal error";
    }
    return "unknown status";
}

gram_status gram__fail(gram_context *ctx, gram_status status, const char *fmt, ...)
{
    if (ctx) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->message, sizeof ctx->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

void gram__clear(gram_context *ctx)
{
    if (ctx) ctx->message[0] = '\0';
}

#define GRAM_STR2(x) #x
#define GRAM_STR(x) GRAM_STR2(x)

const char *gram_version(void)
{
    return GRAM_STR(GRAM_VERSION_MAJOR) "." GRAM_STR(GRAM_VERSION_MINOR) "." GRAM_STR(GRAM_VERSION_PATCH);
}

int gram_version_number(void)
{
    return GRAM_VERSION_MAJOR * 10000 + GRAM_VERSION_MINOR * 100 + GRAM_VERSION_PATCH;
}
