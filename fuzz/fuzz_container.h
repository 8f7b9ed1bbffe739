/* The model-file container's layout as the fuzz targets of its kinds see it (fuzz_model: GP and
 * KRR models; fuzz_map: feature maps), and the variants of an input they all run: as given, with
 * its CRC repaired, and with its payload size set to the bytes present and the CRC recomputed, so
 * that mutations reach the readers' checks rather than stopping at the checksum. */
#ifndef GRAM_FUZZ_CONTAINER_H
#define GRAM_FUZZ_CONTAINER_H

#include "fuzz_common.h"

#include "io/model_file.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { FUZZ_HEADER = 64, FUZZ_OFF_HEADER_SIZE = 12, FUZZ_OFF_PAYLOAD = 56, FUZZ_CRC = 4 };

static inline uint32_t fuzz_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void fuzz_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void fuzz_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* fn(data) and, for a container, fn of its repaired variants where they differ from it. */
static inline void fuzz_container_variants(const uint8_t *data, size_t size, void (*fn)(const uint8_t *, size_t))
{
    fn(data, size);
    if (size < FUZZ_HEADER + FUZZ_CRC || memcmp(data, "GRAMMODL", 8) != 0) return;
    uint8_t *fixed = malloc(size);
    FUZZ_ASSERT(fixed != NULL);
    memcpy(fixed, data, size);
    uint32_t crc = gram__crc32(0, fixed, size - FUZZ_CRC);
    if (fuzz_get_u32(fixed + size - FUZZ_CRC) != crc) {
        fuzz_put_u32(fixed + size - FUZZ_CRC, crc);
        fn(fixed, size);
    }
    uint32_t header = fuzz_get_u32(fixed + FUZZ_OFF_HEADER_SIZE);
    if (header >= FUZZ_HEADER && header <= size - FUZZ_CRC) {
        memcpy(fixed, data, size);
        fuzz_put_u64(fixed + FUZZ_OFF_PAYLOAD, (uint64_t)(size - FUZZ_CRC - header));
        fuzz_put_u32(fixed + size - FUZZ_CRC, gram__crc32(0, fixed, size - FUZZ_CRC));
        if (memcmp(fixed, data, size) != 0) fn(fixed, size);
    }
    free(fixed);
}

#endif
