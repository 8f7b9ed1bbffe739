/* libFuzzer target: the .npy parser, in memory and through a file and a pipe. */
#include "fuzz_fd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gram_context ctx;
    memset(&ctx, 0, sizeof ctx);
    gram__matrix m;
    gram_status st = gram__npy_parse(&ctx, "fuzz.npy", data, size, &m);
    fuzz_check_result(st, &m, &ctx, "fuzz.npy");
    FUZZ_ASSERT(st == GRAM_OK || st == GRAM_EFORMAT || st == GRAM_EOVERFLOW || st == GRAM_ENOMEM);
    FUZZ_ASSERT(st == GRAM_OK || ctx.message[0] != '\0');
    /* gram__read_matrix takes anything without the magic string for CSV. */
    if (size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0) {
        fuzz_via_fd(data, size, NULL, st, &m, 0);
        fuzz_via_fd(data, size, NULL, st, &m, 1);
    }
    gram__matrix_free(&m);
    return 0;
}
