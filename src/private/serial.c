/* serial: placeholder for sketch files (issue 14, part api). */
#include "private.h"

gram_status gram_private_save(gram_context *ctx, const gram_private_sketch *s, const char *path)
{ (void)s; (void)path; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: not built yet"); }
gram_status gram_private_load(gram_context *ctx, const char *path, gram_private_sketch **out)
{ (void)path; if (out) *out = NULL; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: not built yet"); }
gram_status gram_private_to_bytes(gram_context *ctx, const gram_private_sketch *s, void **buf, size_t *size)
{ (void)s; (void)buf; (void)size; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: not built yet"); }
gram_status gram_private_from_bytes(gram_context *ctx, const void *buf, size_t size, gram_private_sketch **out)
{ (void)buf; (void)size; if (out) *out = NULL; return gram__fail(ctx, GRAM_EUNSUPPORTED, "private: not built yet"); }
