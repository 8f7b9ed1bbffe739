/* libFuzzer target: feature map files (gram_features_from_bytes, src/features/serial.c), then the
 * loaded map in use.
 *
 * As fuzz_model.c, each input is parsed as given and twice repaired (the CRC recomputed; the
 * header's payload size set to the bytes present and the CRC recomputed), so that mutations reach
 * the map's checks rather than stopping at the checksum. The corpus keeps the raw inputs.
 *
 * Invariants, for every variant:
 *   - gram_features_from_bytes returns GRAM_OK, or GRAM_EFORMAT / GRAM_ENOMEM / GRAM_EOVERFLOW with a
 *     message and a NULL map: never GRAM_EINTERNAL, never a crash;
 *   - a loaded map transforms fixed points in float64 and float32 with GRAM_OK and finite features,
 *     or a clean error with a message (GRAM_EDOMAIN where an exponential or a projection overflows,
 *     a Nyström map's K(x, L)·projᵀ included, or its landmarks overflow float32): never a NaN or
 *     an inf with GRAM_OK, never GRAM_EINTERNAL;
 *   - its accessors agree with what it transforms (D columns in, R out);
 *   - saved again it loads again, and that map saves to the same bytes and gives the same
 *     features bit for bit. */
#include "fuzz_container.h"

#include <gram.h>

#include "io/model_file.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { POINTS = 5 };

/* φ of POINTS fixed points in dtype dt (out: POINTS×R values of that dtype); the status. */
static gram_status features(gram_context *ctx, const gram_features *f, gram_dtype dt, void *out)
{
    const int64_t D = gram_features_dim(f), R = gram_features_n_components(f);
    double *x = malloc((size_t)(POINTS * D) * sizeof *x);
    float *x32 = malloc((size_t)(POINTS * D) * sizeof *x32);
    FUZZ_ASSERT(x && x32);
    for (int64_t i = 0; i < POINTS * D; i++) x32[i] = (float)(x[i] = 0.75 * sin(1.7 * (double)i + 0.3) * (double)(i % 3));
    gram_array X = dt == GRAM_FLOAT32 ? gram_array_f32(x32, POINTS, D) : gram_array_f64(x, POINTS, D);
    gram_array O = dt == GRAM_FLOAT32 ? gram_array_f32(out, POINTS, R) : gram_array_f64(out, POINTS, R);
    gram_status st = gram_features_transform(ctx, f, &X, &O);
    if (st == GRAM_EINTERNAL) fprintf(stderr, "GRAM_EINTERNAL: %s\n", gram_context_message(ctx));
    FUZZ_ASSERT(st != GRAM_EINTERNAL);
    if (st != GRAM_OK) FUZZ_ASSERT(gram_context_message(ctx)[0] != '\0');
    else
        for (int64_t i = 0; i < POINTS * R; i++) {
            const int fin = dt == GRAM_FLOAT32 ? isfinite(((float *)out)[i]) : isfinite(((double *)out)[i]);
            FUZZ_ASSERT(fin);
        }
    free(x);
    free(x32);
    return st;
}

static void use_map(gram_features *f)
{
    gram_context *ctx = NULL;
    FUZZ_ASSERT(gram_context_create(&ctx) == GRAM_OK);
    FUZZ_ASSERT(gram_context_set_threads(ctx, 1) == GRAM_OK);
    const int64_t D = gram_features_dim(f), R = gram_features_n_components(f);
    FUZZ_ASSERT(D >= 1 && R >= 1 && gram_features_kernel(f) != NULL);
    /* a map the loader accepts is backed by its tables, so a small input cannot declare a large
     * transform, except TensorSketch's R (backed by R/2 twiddles) and D (by its hashes) */
    double *o1 = calloc((size_t)(POINTS * R), sizeof(double)), *o2 = calloc((size_t)(POINTS * R), sizeof(double));
    FUZZ_ASSERT(o1 && o2);
    gram_status s64 = features(ctx, f, GRAM_FLOAT64, o1);
    gram_status s32 = features(ctx, f, GRAM_FLOAT32, o2);
    (void)s32;

    void *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    FUZZ_ASSERT(gram_features_to_bytes(ctx, f, &b1, &n1) == GRAM_OK);
    gram_features *g = NULL;
    gram_status st = gram_features_from_bytes(ctx, b1, n1, &g);
    if (st != GRAM_OK) fprintf(stderr, "a loaded map saved does not load: %s\n", gram_context_message(ctx));
    FUZZ_ASSERT(st == GRAM_OK);
    FUZZ_ASSERT(gram_features_to_bytes(ctx, g, &b2, &n2) == GRAM_OK);
    FUZZ_ASSERT(n1 == n2 && memcmp(b1, b2, n1) == 0);
    FUZZ_ASSERT(features(ctx, g, GRAM_FLOAT64, o2) == s64);
    if (s64 == GRAM_OK) FUZZ_ASSERT(memcmp(o1, o2, (size_t)(POINTS * R) * sizeof(double)) == 0);
    gram_features_destroy(g);
    gram_free(b1);
    gram_free(b2);
    free(o1);
    free(o2);
    gram_context_destroy(ctx);
}

static void check(const uint8_t *buf, size_t size)
{
    gram_context *ctx = NULL;
    FUZZ_ASSERT(gram_context_create(&ctx) == GRAM_OK);
    gram_features *f = (gram_features *)(uintptr_t)1;
    gram_status st = gram_features_from_bytes(ctx, buf, size, &f);
    if (st == GRAM_EINTERNAL) fprintf(stderr, "GRAM_EINTERNAL: %s\n", gram_context_message(ctx));
    FUZZ_ASSERT(st == GRAM_OK || st == GRAM_EFORMAT || st == GRAM_ENOMEM || st == GRAM_EOVERFLOW);
    if (st == GRAM_OK) {
        use_map(f);
        gram_features_destroy(f);
    } else {
        FUZZ_ASSERT(f == NULL);
        FUZZ_ASSERT(gram_context_message(ctx)[0] != '\0');
    }
    gram_context_destroy(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_container_variants(data, size, check);
    return 0;
}
