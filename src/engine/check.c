/* Argument checks shared by every engine entry point. */
#include "engine.h"

#include <math.h>

static const char *dtype_name(gram_dtype t) { return t == GRAM_FLOAT64 ? "float64" : "float32"; }

static int64_t iabs64(int64_t v) { return v < 0 ? -v : v; }

gram_status gram__check_array(gram_context *ctx, const gram_array *a, const char *name)
{
    if (!a) return gram__fail(ctx, GRAM_EINVAL, "%s must not be NULL", name);
    if (a->dtype != GRAM_FLOAT64 && a->dtype != GRAM_FLOAT32)
        return gram__fail(ctx, GRAM_EINVAL, "%s: unknown dtype %d", name, (int)a->dtype);
    if (a->rows < 0 || a->cols < 0)
        return gram__fail(ctx, GRAM_ESHAPE, "%s: negative shape %lld×%lld", name, (long long)a->rows,
                          (long long)a->cols);
    if (a->rows == 0 || a->cols == 0) return GRAM_OK;
    if (!a->data) return gram__fail(ctx, GRAM_EINVAL, "%s: data is NULL for a %lld×%lld array", name,
                                    (long long)a->rows, (long long)a->cols);
    /* The largest offset must fit: (rows-1)|rs| + (cols-1)|cs| elements, in bytes. */
    int64_t o1, o2, o;
    size_t bytes;
    if (a->row_stride == INT64_MIN || a->col_stride == INT64_MIN ||
        !gram__mul_i64(a->rows - 1, iabs64(a->row_stride), &o1) ||
        !gram__mul_i64(a->cols - 1, iabs64(a->col_stride), &o2) || !gram__add_i64(o1, o2, &o) ||
        !gram__bytes(o + 1, a->dtype == GRAM_FLOAT64 ? 8 : 4, &bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: extent of %lld×%lld %s array with strides (%lld, %lld) overflows",
                          name, (long long)a->rows, (long long)a->cols, dtype_name(a->dtype),
                          (long long)a->row_stride, (long long)a->col_stride);
    int64_t elems;
    if (!gram__mul_i64(a->rows, a->cols, &elems))
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: %lld×%lld elements overflow int64", name,
                          (long long)a->rows, (long long)a->cols);
    return GRAM_OK;
}

/* A zero-stride axis (a broadcast view, e.g. NumPy's broadcast_to) repeats one row or column:
 * scanning it once gives the same answer, and the first bad element is then in row/column 0, as
 * the full scan would report it. A (1e12, 3) broadcast view would otherwise take minutes. */
static int64_t distinct(int64_t n, int64_t stride) { return stride == 0 && n > 1 ? 1 : n; }

gram_status gram__check_finite(gram_context *ctx, const gram_array *a, const char *name)
{
    const int64_t rows = distinct(a->rows, a->row_stride), cols = distinct(a->cols, a->col_stride);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            double v = gram__get(a, i, j);
            if (!isfinite(v))
                return gram__fail(ctx, GRAM_ENONFINITE, "%s: row %lld, column %lld is %s", name,
                                  (long long)i, (long long)j, isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        }
    return GRAM_OK;
}

gram_status gram__check_nonnegative(gram_context *ctx, const gram_array *a, const char *name)
{
    const int64_t rows = distinct(a->rows, a->row_stride), cols = distinct(a->cols, a->col_stride);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            double v = gram__get(a, i, j);
            if (v < 0)
                return gram__fail(ctx, GRAM_EDOMAIN, "%s: row %lld, column %lld is negative (%.17g); log-space sums need weights >= 0",
                                  name, (long long)i, (long long)j, v);
        }
    return GRAM_OK;
}

/* Byte range [lo, hi) an array view touches. */
static void extent(const gram_array *a, uintptr_t *lo, uintptr_t *hi)
{
    size_t es = a->dtype == GRAM_FLOAT64 ? 8 : 4;
    int64_t mn = 0, mx = 0;
    int64_t r = (a->rows - 1) * a->row_stride, c = (a->cols - 1) * a->col_stride;
    if (r < 0) mn += r; else mx += r;
    if (c < 0) mn += c; else mx += c;
    *lo = (uintptr_t)a->data + (uintptr_t)(mn * (int64_t)es);
    *hi = (uintptr_t)a->data + (uintptr_t)((mx + 1) * (int64_t)es);
}

gram_status gram__check_no_overlap(gram_context *ctx, const gram_array *out, const gram_array *in,
                                   const char *out_name, const char *in_name)
{
    if (!in || !out || in->rows == 0 || in->cols == 0 || out->rows == 0 || out->cols == 0) return GRAM_OK;
    uintptr_t a0, a1, b0, b1;
    extent(out, &a0, &a1);
    extent(in, &b0, &b1);
    if (a0 < b1 && b0 < a1)
        return gram__fail(ctx, GRAM_EINVAL, "%s overlaps %s in memory", out_name, in_name);
    return GRAM_OK;
}

int gram__same_view(const gram_array *a, const gram_array *b)
{
    return a->data == b->data && a->dtype == b->dtype && a->rows == b->rows && a->cols == b->cols &&
           (a->rows <= 1 || a->row_stride == b->row_stride) && (a->cols <= 1 || a->col_stride == b->col_stride);
}
