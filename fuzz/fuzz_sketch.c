/* libFuzzer target: private sketch files (gram_private_from_bytes, src/private/serial.c), then the
 * loaded sketch in use.
 *
 * As fuzz_model.c and fuzz_map.c, each input is parsed as given and twice repaired (the CRC
 * recomputed; the header's payload size set to the bytes present and the CRC recomputed), so that
 * mutations reach the sketch's checks and the families' prepare rather than stopping at the
 * checksum. The corpus keeps the raw inputs.
 *
 * Invariants, for every variant:
 *   - gram_private_from_bytes returns GRAM_OK, or GRAM_EFORMAT / GRAM_ENOMEM / GRAM_EOVERFLOW with a
 *     message and a NULL sketch: never GRAM_EINTERNAL, never a crash;
 *   - a loaded sketch's info is within the ranges the loader promises (ε > 0, 0 ≤ δ < 1, d ≥ 1, the
 *     noise that δ implies, a positive scale) and its clip count is -1;
 *   - it answers sums and means at fixed points (d ≤ 4096) with GRAM_OK and finite values, or a
 *     clean error with a message; a query of the wrong dimension is GRAM_ESHAPE;
 *   - saved again it loads again, saves to the same bytes and answers the same queries bit for
 *     bit. */
#include "fuzz_container.h"

#include <gram.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { POINTS = 3, MAX_QUERY_DIM = 4096 };

static gram_status answers(gram_context *ctx, const gram_private_sketch *s, int64_t d, int mean, double *out)
{
    double *y = malloc((size_t)(POINTS * d) * sizeof *y);
    FUZZ_ASSERT(y != NULL);
    for (int64_t i = 0; i < POINTS * d; i++) y[i] = 0.6 * sin(1.3 * (double)i + 0.2);
    gram_array Y = gram_array_f64(y, POINTS, d), O = gram_array_f64(out, POINTS, 1);
    gram_status st = mean ? gram_private_query_mean(ctx, s, &Y, &O) : gram_private_query(ctx, s, &Y, &O);
    if (st == GRAM_EINTERNAL) fprintf(stderr, "GRAM_EINTERNAL: %s\n", gram_context_message(ctx));
    FUZZ_ASSERT(st != GRAM_EINTERNAL);
    if (st != GRAM_OK) FUZZ_ASSERT(gram_context_message(ctx)[0] != '\0');
    else
        for (int i = 0; i < POINTS; i++) {
            if (!isfinite(out[i])) fprintf(stderr, "query %d of a loaded sketch is %g\n", i, out[i]);
            FUZZ_ASSERT(isfinite(out[i]));
        }
    free(y);
    return st;
}

static void use_sketch(gram_private_sketch *s)
{
    gram_context *ctx = NULL;
    FUZZ_ASSERT(gram_context_create(&ctx) == GRAM_OK);
    FUZZ_ASSERT(gram_context_set_threads(ctx, 1) == GRAM_OK);
    gram_private_info in;
    FUZZ_ASSERT(gram_private_sketch_info(s, &in) == GRAM_OK);
    FUZZ_ASSERT(in.epsilon > 0 && isfinite(in.epsilon) && in.delta >= 0 && in.delta < 1 && in.dim >= 1);
    FUZZ_ASSERT(in.noise_scale > 0 && isfinite(in.noise_scale) && in.radius > 0 && isfinite(in.n));
    FUZZ_ASSERT(!strcmp(in.noise, in.delta > 0 ? "discrete_gaussian" : "discrete_laplace"));
    FUZZ_ASSERT(in.sensitivity != NULL && gram_private_sketch_n_clipped(s) == -1);

    double q[POINTS], m[POINTS], q2[POINTS];
    const int64_t d = in.dim;
    gram_status sq = GRAM_EINVAL;
    if (d <= MAX_QUERY_DIM) {
        sq = answers(ctx, s, d, 0, q);
        answers(ctx, s, d, 1, m);
        /* the wrong dimension is a shape error, whatever the sketch */
        double y[POINTS * 2] = {0};
        double o[POINTS];
        gram_array Y = gram_array_f64(y, POINTS, d == 2 ? 1 : 2), O = gram_array_f64(o, POINTS, 1);
        FUZZ_ASSERT(gram_private_query(ctx, s, &Y, &O) == GRAM_ESHAPE);
    }

    void *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    FUZZ_ASSERT(gram_private_to_bytes(ctx, s, &b1, &n1) == GRAM_OK);
    gram_private_sketch *t = NULL;
    gram_status st = gram_private_from_bytes(ctx, b1, n1, &t);
    if (st != GRAM_OK) fprintf(stderr, "a loaded sketch saved does not load: %s\n", gram_context_message(ctx));
    FUZZ_ASSERT(st == GRAM_OK);
    FUZZ_ASSERT(gram_private_to_bytes(ctx, t, &b2, &n2) == GRAM_OK);
    FUZZ_ASSERT(n1 == n2 && memcmp(b1, b2, n1) == 0);
    if (d <= MAX_QUERY_DIM) {
        FUZZ_ASSERT(answers(ctx, t, d, 0, q2) == sq);
        if (sq == GRAM_OK) FUZZ_ASSERT(memcmp(q, q2, sizeof q) == 0);
    }
    gram_private_sketch_destroy(t);
    gram_free(b1);
    gram_free(b2);
    gram_context_destroy(ctx);
}

static void check(const uint8_t *buf, size_t size)
{
    gram_context *ctx = NULL;
    FUZZ_ASSERT(gram_context_create(&ctx) == GRAM_OK);
    gram_private_sketch *s = (gram_private_sketch *)(uintptr_t)1;
    gram_status st = gram_private_from_bytes(ctx, buf, size, &s);
    if (st == GRAM_EINTERNAL) fprintf(stderr, "GRAM_EINTERNAL: %s\n", gram_context_message(ctx));
    FUZZ_ASSERT(st == GRAM_OK || st == GRAM_EFORMAT || st == GRAM_ENOMEM || st == GRAM_EOVERFLOW);
    if (st == GRAM_OK) {
        use_sketch(s);
        gram_private_sketch_destroy(s);
    } else {
        FUZZ_ASSERT(s == NULL);
        FUZZ_ASSERT(gram_context_message(ctx)[0] != '\0');
    }
    gram_context_destroy(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_container_variants(data, size, check);
    return 0;
}
