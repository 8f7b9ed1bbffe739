/* libFuzzer target: the CSV parser (detected and fuzz-chosen options), the number parser and
 * formatter (every value read must survive format → parse bit for bit), and the descriptor path. */
#include "fuzz_fd.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_number_round_trip(double v)
{
    char b[40];
    int n = gram__format_double(b, sizeof b, v);
    FUZZ_ASSERT(n > 0 && (size_t)n < sizeof b);
    double w;
    FUZZ_ASSERT(gram__parse_double(b, (size_t)n, &w));
    FUZZ_ASSERT(isnan(v) ? isnan(w) : memcmp(&v, &w, sizeof v) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char delims[5] = {0, ',', ';', '\t', ' '};
    const char *text = (const char *)data;
    for (int mode = 0; mode < 2; mode++) {
        gram__read_opts o;
        gram__read_opts_init(&o);
        if (mode == 1) {
            o.header = (int)(size % 3) - 1;
            o.delimiter = delims[(size / 3) % 5];
        }
        struct gram_context ctx;
        memset(&ctx, 0, sizeof ctx);
        gram__matrix m;
        gram_status st = gram__csv_parse(&ctx, "fuzz.csv", text, size, &o, &m);
        fuzz_check_result(st, &m, &ctx, "fuzz.csv");
        FUZZ_ASSERT(st == GRAM_OK || st == GRAM_EFORMAT || st == GRAM_ENOMEM);
        if (st == GRAM_OK)
            for (int64_t k = 0; k < m.rows * m.cols; k++) check_number_round_trip(m.data[k]);
        if (mode == 0 && !(size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0)) {
            fuzz_via_fd(data, size, &o, st, &m, 0);
            fuzz_via_fd(data, size, &o, st, &m, 1);
        }
        gram__matrix_free(&m);
    }
    double v;
    if (gram__parse_double(text, size < 80 ? size : 80, &v)) check_number_round_trip(v);
    return 0;
}
