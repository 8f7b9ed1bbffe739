#include "base.h"

#include <stdlib.h>

void *gram__alloc(size_t bytes)
{
    if (bytes == 0) return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) return NULL;
    return aligned_alloc(64, rounded);
}

void *gram__calloc(size_t count, size_t size)
{
    if (count == 0 || size == 0 || count > SIZE_MAX / size) return NULL;
    void *p = gram__alloc(count * size);
    if (p) {
        unsigned char *b = p;
        for (size_t i = 0; i < count * size; i++) b[i] = 0;
    }
    return p;
}

void gram__free(void *p) { free(p); }

bool gram__mul_i64(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0) return false;
    if (a != 0 && b > INT64_MAX / a) return false;
    *out = a * b;
    return true;
}

bool gram__add_i64(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0 || a > INT64_MAX - b) return false;
    *out = a + b;
    return true;
}

bool gram__bytes(int64_t count, size_t elem, size_t *out)
{
    if (count < 0) return false;
    if ((uint64_t)count > SIZE_MAX / elem) return false;
    *out = (size_t)count * elem;
    return true;
}
