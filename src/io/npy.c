/* npy: the NumPy .npy format, versions 1.0, 2.0 and 3.0
 * (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
 *
 * A file is: the magic "\x93NUMPY", major and minor version bytes, the header length (2 bytes
 * little-endian in 1.0, 4 bytes in 2.0 and 3.0), and the header: a Python dict literal with
 * exactly the keys 'descr', 'fortran_order' and 'shape', padded with spaces and ended by '\n'
 * (latin-1 in 1.0/2.0, UTF-8 in 3.0; the keys and values we accept are ASCII either way). The data
 * follow. The header is untrusted: every size is checked against the bytes actually present
 * before anything is allocated, and pickles (object arrays) are refused outright. */
#define _POSIX_C_SOURCE 200809L

#include "io_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NPY_HOST_LE 1
#else
#define NPY_HOST_LE 0
#endif

/* numpy itself refuses headers over 10 000 bytes unless told otherwise; only huge structured
 * dtypes (which we refuse anyway) come near. The cap keeps a lying length from costing memory. */
#define NPY_MAX_HEADER ((size_t)1 << 20)

/* numpy's longdouble ('<f16' on x86-64 Linux) is whatever the C compiler's long double is on the
 * machine that wrote it; numpy reads such a file as its own long double, and so does gram: the
 * x87 80-bit format (64-bit significand, padded to 16 bytes) or IEEE binary128, whichever this
 * host has. Elsewhere (long double == double) 'f16' is refused. */
#if LDBL_MANT_DIG == 64 || LDBL_MANT_DIG == 113
#define NPY_HAVE_F16 (sizeof(long double) == 16)
#else
#define NPY_HAVE_F16 0
#endif

typedef enum npy_kind {
    NPY_F8, NPY_F4, NPY_F2, NPY_F16, NPY_B1, NPY_I1, NPY_I2, NPY_I4, NPY_I8, NPY_U1, NPY_U2, NPY_U4, NPY_U8
} npy_kind;

typedef struct npy_info {
    int major, minor;
    size_t prelude;     /* magic + version + length field: 10 or 12 bytes */
    size_t header_len;  /* the dict, padding included */
    int64_t data_offset;
    npy_kind kind;
    int itemsize;
    bool big;           /* big-endian data */
    bool fortran;
    int ndim;
    int64_t shape[2];
    int64_t rows, cols, count, data_bytes;
    char descr[48];     /* as written in the header, for messages */
} npy_info;

static const char *npy_name(const char *name) { return name ? name : "<memory>"; }

static void shape_text(char *buf, size_t size, const npy_info *h)
{
    if (h->ndim == 1) snprintf(buf, size, "(%lld,)", (long long)h->shape[0]);
    else snprintf(buf, size, "(%lld, %lld)", (long long)h->shape[0], (long long)h->shape[1]);
}

/* ---- the prelude ----------------------------------------------------------------------------- */

/* p holds at least 8 bytes; for version 1.0 10 bytes and otherwise 12 must be present to finish
 * (npy_prelude_size tells how many). */
static size_t npy_prelude_size(const unsigned char *p) { return p[6] == 1 ? 10 : 12; }

static gram_status npy_prelude(gram_context *ctx, const char *name, const unsigned char *p, size_t n, npy_info *h)
{
    if (n < 6 || memcmp(p, "\x93NUMPY", 6) != 0)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: not a .npy file (no \\x93NUMPY magic string)", name);
    if (n < 8) return gram__fail(ctx, GRAM_EFORMAT, "%s: .npy file truncated inside its prelude", name);
    h->major = p[6];
    h->minor = p[7];
    if (h->major < 1 || h->major > 3 || h->minor != 0)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: unsupported .npy format version %d.%d (gram reads 1.0, 2.0 and 3.0)",
                          name, h->major, h->minor);
    h->prelude = npy_prelude_size(p);
    if (n < h->prelude) return gram__fail(ctx, GRAM_EFORMAT, "%s: .npy file truncated inside its prelude", name);
    size_t len = (size_t)p[8] | (size_t)p[9] << 8;
    if (h->major >= 2) len |= (size_t)p[10] << 16 | (size_t)p[11] << 24;
    if (len > NPY_MAX_HEADER)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: .npy header length %zu is implausible (the limit is %zu bytes)", name,
                          len, NPY_MAX_HEADER);
    h->header_len = len;
    h->data_offset = (int64_t)(h->prelude + len);
    return GRAM_OK;
}

/* ---- the header dict ------------------------------------------------------------------------ */

typedef struct hcur {
    const char *p, *begin, *end;
    gram_context *ctx;
    const char *name;
} hcur;

static gram_status hfail(hcur *c, const char *what)
{
    return gram__fail(c->ctx, GRAM_EFORMAT, "%s: malformed .npy header at byte %zu: %s", c->name,
                      (size_t)(c->p - c->begin), what);
}

static void hws(hcur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static bool heat(hcur *c, char ch)
{
    hws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static bool hpeek(hcur *c, char ch)
{
    hws(c);
    return c->p < c->end && *c->p == ch;
}

/* A Python string literal ('...' or "...", optionally u-prefixed); the raw text between the quotes
 * (escapes left as written: none of the values we accept contains one). */
static bool hstring(hcur *c, const char **s, size_t *len)
{
    hws(c);
    if (c->p + 1 < c->end && (*c->p == 'u' || *c->p == 'U') && (c->p[1] == '\'' || c->p[1] == '"')) c->p++;
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return false;
    char q = *c->p++;
    const char *start = c->p;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\n') return false;
        if (*c->p == '\\' && ++c->p >= c->end) return false;
        c->p++;
    }
    if (c->p >= c->end) return false;
    *s = start;
    *len = (size_t)(c->p - start);
    c->p++;
    return true;
}

static bool hword(hcur *c, const char *w)
{
    hws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return false;
    const char *after = c->p + n;
    if (after < c->end) {
        char a = *after;
        if ((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z') || (a >= '0' && a <= '9') || a == '_') return false;
    }
    c->p = after;
    return true;
}

static bool streq(const char *s, size_t len, const char *lit) { return strlen(lit) == len && memcmp(s, lit, len) == 0; }

static gram_status parse_descr(hcur *c, const char *s, size_t len, npy_info *h)
{
    char shown[48];
    gram__io_excerpt(shown, s, len);
    memcpy(h->descr, shown, sizeof h->descr);
    if (len >= 1 && (s[0] == 'O' || (len >= 2 && (s[0] == '|' || s[0] == '<' || s[0] == '>' || s[0] == '=') && s[1] == 'O')))
        return gram__fail(c->ctx, GRAM_EFORMAT,
                          "%s: dtype '%s' is an object array: its data are Python pickles, which gram never loads "
                          "(save a numeric array)",
                          c->name, shown);
    if ((len == 3 || len == 4) && (s[0] == '<' || s[0] == '>' || s[0] == '|')) {
        char order = s[0], kind = s[1];
        int size = len == 3 ? s[2] - '0' : (s[2] == '1' && s[3] == '6' ? 16 : -1);
        /* '|' means "byte order does not apply": right for 1-byte types only. */
        if (size > 0 && !(size != 1 && order == '|')) {
            h->big = order == '>';
            h->itemsize = size;
            if (kind == 'f' && size == 8) { h->kind = NPY_F8; return GRAM_OK; }
            if (kind == 'f' && size == 4) { h->kind = NPY_F4; return GRAM_OK; }
            if (kind == 'f' && size == 2) { h->kind = NPY_F2; return GRAM_OK; }
            if (kind == 'f' && size == 16 && NPY_HAVE_F16) { h->kind = NPY_F16; return GRAM_OK; }
            if (kind == 'b' && size == 1) { h->kind = NPY_B1; return GRAM_OK; }
            if (kind == 'i' || kind == 'u') {
                bool u = kind == 'u';
                switch (size) {
                case 1: h->kind = u ? NPY_U1 : NPY_I1; return GRAM_OK;
                case 2: h->kind = u ? NPY_U2 : NPY_I2; return GRAM_OK;
                case 4: h->kind = u ? NPY_U4 : NPY_I4; return GRAM_OK;
                case 8: h->kind = u ? NPY_U8 : NPY_I8; return GRAM_OK;
                default: break;
                }
            }
        }
        if (kind == 'c')
            return gram__fail(c->ctx, GRAM_EFORMAT,
                              "%s: dtype '%s' is complex; gram reads real numbers only (save the real part, or the "
                              "real and imaginary parts as columns)",
                              c->name, shown);
    }
    return gram__fail(c->ctx, GRAM_EFORMAT,
                      "%s: unsupported dtype '%s' (gram reads bool, 8- to 64-bit integers, float16, float32, float64%s, "
                      "either byte order)",
                      c->name, shown, NPY_HAVE_F16 ? " and longdouble ('f16')" : "");
}

static gram_status parse_shape(hcur *c, npy_info *h)
{
    if (!heat(c, '(')) return hfail(c, "'shape' must be a tuple");
    int ndim = 0;
    bool trailing_comma = false;
    if (!heat(c, ')')) {
        for (;;) {
            hws(c);
            if (c->p < c->end && *c->p == '-') return hfail(c, "negative dimension in 'shape'");
            if (c->p >= c->end || *c->p < '0' || *c->p > '9') return hfail(c, "'shape' entries must be integers");
            int64_t v = 0;
            while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
                int d = *c->p - '0';
                if (v > (INT64_MAX - d) / 10)
                    return gram__fail(c->ctx, GRAM_EOVERFLOW, "%s: .npy shape has a dimension over 2^63", c->name);
                v = v * 10 + d;
                c->p++;
            }
            if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) c->p++; /* Python 2 longs: (3L, 4L) */
            if (ndim < 2) h->shape[ndim] = v;
            if (ndim < 1000) ndim++;
            if (heat(c, ',')) {
                if (heat(c, ')')) { trailing_comma = true; break; }
                continue;
            }
            if (heat(c, ')')) break;
            return hfail(c, "expected ',' or ')' in 'shape'");
        }
        /* (3) is the integer 3 in Python, not a tuple; numpy always writes (3,). */
        if (ndim == 1 && !trailing_comma) return hfail(c, "'shape' (N) is not a tuple; a 1-D shape is written (N,)");
    }
    h->ndim = ndim;
    return GRAM_OK;
}

static gram_status npy_header(gram_context *ctx, const char *name, const char *text, size_t n, npy_info *h)
{
    hcur cur = {text, text, text + n, ctx, name}, *c = &cur;
    bool have_descr = false, have_order = false, have_shape = false;
    gram_status st;
    if (!heat(c, '{')) return hfail(c, "the header is not a Python dict literal");
    if (!heat(c, '}')) {
        for (;;) {
            const char *key;
            size_t klen;
            if (!hstring(c, &key, &klen)) return hfail(c, "expected a quoted key");
            if (!heat(c, ':')) return hfail(c, "expected ':' after a key");
            if (streq(key, klen, "descr")) {
                if (have_descr) return hfail(c, "duplicate key 'descr'");
                have_descr = true;
                if (hpeek(c, '['))
                    return gram__fail(ctx, GRAM_EFORMAT,
                                      "%s: structured dtypes (record arrays) are not supported; save a plain numeric "
                                      "array",
                                      name);
                const char *s;
                size_t len;
                if (!hstring(c, &s, &len)) return hfail(c, "'descr' must be a string");
                if ((st = parse_descr(c, s, len, h))) return st;
            } else if (streq(key, klen, "fortran_order")) {
                if (have_order) return hfail(c, "duplicate key 'fortran_order'");
                have_order = true;
                if (hword(c, "True")) h->fortran = true;
                else if (hword(c, "False")) h->fortran = false;
                else return hfail(c, "'fortran_order' must be True or False");
            } else if (streq(key, klen, "shape")) {
                if (have_shape) return hfail(c, "duplicate key 'shape'");
                have_shape = true;
                if ((st = parse_shape(c, h))) return st;
            } else {
                char shown[48];
                gram__io_excerpt(shown, key, klen);
                return gram__fail(ctx, GRAM_EFORMAT, "%s: malformed .npy header: unexpected key '%s'", name, shown);
            }
            if (heat(c, ',')) {
                if (heat(c, '}')) break;
                continue;
            }
            if (heat(c, '}')) break;
            return hfail(c, "expected ',' or '}'");
        }
    }
    hws(c);
    if (c->p != c->end) return hfail(c, "unexpected text after the dict");
    if (!have_descr) return hfail(c, "the header lacks 'descr'");
    if (!have_order) return hfail(c, "the header lacks 'fortran_order'");
    if (!have_shape) return hfail(c, "the header lacks 'shape'");

    if (h->ndim == 0)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: 0-d arrays (scalars) are not supported; save a 1-D or 2-D array",
                          name);
    if (h->ndim > 2)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: %d-dimensional arrays are not supported (gram reads 1-D and 2-D arrays)",
                          name, h->ndim);
    h->rows = h->shape[0];
    h->cols = h->ndim == 2 ? h->shape[1] : 1;
    char shape[64];
    shape_text(shape, sizeof shape, h);
    size_t dst_bytes;
    if (!gram__mul_i64(h->rows, h->cols, &h->count) || !gram__mul_i64(h->count, h->itemsize, &h->data_bytes) ||
        !gram__bytes(h->count, sizeof(double), &dst_bytes) ||
        !gram__add_i64(h->data_offset, h->data_bytes, &(int64_t){0}))
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: shape %s is too large (its size overflows)", name, shape);
    if (h->count == 0) return gram__fail(ctx, GRAM_EFORMAT, "%s: the array is empty (shape %s)", name, shape);
    return GRAM_OK;
}

static gram_status size_mismatch(gram_context *ctx, const char *name, const npy_info *h, int64_t actual)
{
    char shape[64];
    shape_text(shape, sizeof shape, h);
    return gram__fail(ctx, GRAM_EFORMAT,
                      "%s: the .npy header promises %lld bytes of data (shape %s, dtype '%s') but the file holds "
                      "%lld bytes after the header",
                      name, (long long)h->data_bytes, shape, h->descr, (long long)actual);
}

/* ---- conversion ----------------------------------------------------------------------------- */

static inline uint64_t load_bits(const unsigned char *p, int size, bool big)
{
    uint64_t v = 0;
    if (big)
        for (int i = 0; i < size; i++) v = v << 8 | p[i];
    else
        for (int i = size; i-- > 0;) v = v << 8 | p[i];
    return v;
}

static inline double bits_f8(uint64_t v)
{
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

static inline double bits_f4(uint64_t v)
{
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE binary16 → double, exactly (every half is a double). */
static inline double bits_f2(uint64_t v)
{
    unsigned sign = (unsigned)(v >> 15) & 1u, e = (unsigned)(v >> 10) & 0x1fu, m = (unsigned)v & 0x3ffu;
    uint64_t d;
    if (e == 0x1f) d = (uint64_t)0x7ff << 52 | (uint64_t)m << 42;       /* inf, NaN (payload kept) */
    else if (e != 0) d = (uint64_t)(e - 15 + 1023) << 52 | (uint64_t)m << 42;
    else if (m == 0) d = 0;
    else {                                                              /* subnormal: normalise */
        int shift = 0;
        while (!(m & 0x400u)) m <<= 1, shift++;
        d = (uint64_t)(1023 - 14 - shift) << 52 | (uint64_t)(m & 0x3ffu) << 42;
    }
    d |= (uint64_t)sign << 63;
    return bits_f8(d);
}

/* A 16-byte long double at p in the file's byte order → double (rounded to nearest). */
static inline double load_f16(const unsigned char *p, bool big)
{
    unsigned char b[16];
    if (big == (bool)NPY_HOST_LE)
        for (int i = 0; i < 16; i++) b[i] = p[15 - i];
    else
        memcpy(b, p, 16);
    long double x = 0;
    memcpy(&x, b, sizeof x < 16 ? sizeof x : 16);
    /* Out of double's range the conversion is undefined in C: round as IEEE would. DBL_MAX plus
     * half an ulp is the first value that rounds to infinity. */
    const long double edge = (long double)DBL_MAX + 0x1p970L;
    if (x >= edge) return (double)INFINITY;
    if (x <= -edge) return -(double)INFINITY;
    return (double)x;
}

/* Sign extension without implementation-defined conversions. */
static inline double sext(uint64_t v, int bits)
{
    uint64_t m = (uint64_t)1 << (bits - 1);
    return (double)((int64_t)(v & (m - 1)) - (int64_t)(v & m));
}

static inline double i8_value(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? -(double)(int64_t)(~v) - 1.0 : (double)(int64_t)v;
}

/* Separate loops per type and byte order, so each inner loop has constant sizes. */
#define CONVERT(SIZE, EXPR)                                                                          \
    do {                                                                                             \
        if (h->big)                                                                                  \
            for (size_t k = 0; k < n; k++) { uint64_t v = load_bits(src + k * SIZE, SIZE, true); dst[k] = (EXPR); } \
        else                                                                                         \
            for (size_t k = 0; k < n; k++) { uint64_t v = load_bits(src + k * SIZE, SIZE, false); dst[k] = (EXPR); } \
    } while (0)

static void npy_convert(const npy_info *h, const unsigned char *src, size_t n, double *dst)
{
    switch (h->kind) {
    case NPY_F8: CONVERT(8, bits_f8(v)); break;
    case NPY_F4: CONVERT(4, bits_f4(v)); break;
    case NPY_F2: CONVERT(2, bits_f2(v)); break;
    case NPY_B1: CONVERT(1, v != 0 ? 1.0 : 0.0); break;
    case NPY_F16:
        for (size_t k = 0; k < n; k++) dst[k] = load_f16(src + 16 * k, h->big);
        break;
    case NPY_I1: CONVERT(1, sext(v, 8)); break;
    case NPY_I2: CONVERT(2, sext(v, 16)); break;
    case NPY_I4: CONVERT(4, sext(v, 32)); break;
    case NPY_I8: CONVERT(8, i8_value(v)); break;
    case NPY_U1: CONVERT(1, (double)v); break;
    case NPY_U2: CONVERT(2, (double)v); break;
    case NPY_U4: CONVERT(4, (double)v); break;
    case NPY_U8: CONVERT(8, (double)v); break;
    }
}

/* Places converted values: in file order (C order, or a stream whose transpose waits for the
 * end), or scattered from Fortran order straight into row-major. */
typedef struct npy_sink {
    const npy_info *h;
    double *dst;
    bool scatter;
    int64_t i, j;   /* scatter: where the next value goes (row i of column j) */
    int64_t done;   /* values placed */
} npy_sink;

static void sink_put(npy_sink *s, const unsigned char *src, size_t n)
{
    const npy_info *h = s->h;
    if (!s->scatter) {
        npy_convert(h, src, n, s->dst + s->done);
        s->done += (int64_t)n;
        return;
    }
    double tmp[512];
    while (n > 0) {
        size_t m = n < 512 ? n : 512;
        npy_convert(h, src, m, tmp);
        for (size_t k = 0; k < m; k++) {
            s->dst[s->i * h->cols + s->j] = tmp[k];
            if (++s->i == h->rows) {
                s->i = 0;
                s->j++;
            }
        }
        src += m * (size_t)h->itemsize;
        n -= m;
        s->done += (int64_t)m;
    }
}

/* Column-major (rows × cols) → row-major, in cache-sized blocks. */
static void transpose_into(double *dst, const double *src, int64_t rows, int64_t cols)
{
    const int64_t B = 32;
    for (int64_t j0 = 0; j0 < cols; j0 += B)
        for (int64_t i0 = 0; i0 < rows; i0 += B) {
            int64_t j1 = j0 + B < cols ? j0 + B : cols, i1 = i0 + B < rows ? i0 + B : rows;
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = j0; j < j1; j++) dst[i * cols + j] = src[j * rows + i];
        }
}

static gram_status alloc_values(gram_context *ctx, const char *name, int64_t count, double **out)
{
    size_t bytes = (size_t)count * sizeof(double); /* checked in npy_header */
    *out = gram__alloc(bytes);
    if (!*out) return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for the array", name, bytes);
    return GRAM_OK;
}

/* ---- from memory ---------------------------------------------------------------------------- */

gram_status gram__npy_parse(gram_context *ctx, const char *name, const unsigned char *buf, size_t n,
                            gram__matrix *out)
{
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "npy: out must not be NULL");
    memset(out, 0, sizeof *out);
    name = npy_name(name);
    if (!buf && n > 0) return gram__fail(ctx, GRAM_EINVAL, "%s: buffer must not be NULL", name);
    npy_info h;
    memset(&h, 0, sizeof h);
    gram_status st = npy_prelude(ctx, name, buf, n, &h);
    if (st) return st;
    if ((uint64_t)h.data_offset > (uint64_t)n)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: the .npy header (%zu bytes) runs past the end of the input (%zu bytes)",
                          name, h.header_len, n);
    if ((st = npy_header(ctx, name, (const char *)buf + h.prelude, h.header_len, &h))) return st;
    int64_t avail = (int64_t)(n - (size_t)h.data_offset);
    if (avail != h.data_bytes) return size_mismatch(ctx, name, &h, avail);
    double *dst;
    if ((st = alloc_values(ctx, name, h.count, &dst))) return st;
    npy_sink s = {&h, dst, h.fortran && h.ndim == 2, 0, 0, 0};
    sink_put(&s, buf + h.data_offset, (size_t)h.count);
    out->data = dst;
    out->rows = h.rows;
    out->cols = h.cols;
    return GRAM_OK;
}

/* ---- from a descriptor ---------------------------------------------------------------------- */

gram_status gram__npy_read_fd(gram_context *ctx, const char *name, int fd, const unsigned char *head,
                              size_t head_len, int64_t total, int64_t max_bytes, gram__matrix *out)
{
    memset(out, 0, sizeof *out);
    name = npy_name(name);
    npy_info h;
    memset(&h, 0, sizeof h);
    unsigned char pre[12];
    size_t have = head_len < sizeof pre ? head_len : sizeof pre, got = 0;
    memcpy(pre, head, have);
    int64_t tot = total > 0 ? total : 0; /* for the progress callback */
    gram_status st = GRAM_OK;
    if (have < 8) {
        st = gram__io_read(ctx, name, fd, pre + have, 8 - have, (int64_t)have, tot, &got);
        have += got;
    }
    if (!st && have >= 8 && have < npy_prelude_size(pre)) {
        st = gram__io_read(ctx, name, fd, pre + have, npy_prelude_size(pre) - have, (int64_t)have, tot, &got);
        have += got;
    }
    if (st) return st;
    if ((st = npy_prelude(ctx, name, pre, have, &h))) return st;
    if (total >= 0 && h.data_offset > total)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: the .npy header (%zu bytes) runs past the end of the file (%lld bytes)",
                          name, h.header_len, (long long)total);
    if (max_bytes > 0 && h.data_offset > max_bytes)
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: input is larger than the limit of %lld bytes", name,
                          (long long)max_bytes);

    char *text = NULL;
    if (h.header_len > 0) {
        text = gram__alloc(h.header_len);
        if (!text) return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate the .npy header", name);
        st = gram__io_read(ctx, name, fd, text, h.header_len, (int64_t)h.prelude, tot, &got);
        if (!st && got < h.header_len) st = gram__fail(ctx, GRAM_EFORMAT, "%s: the input ends inside the .npy header", name);
        if (st) {
            gram__free(text);
            return st;
        }
    }
    st = npy_header(ctx, name, text ? text : "", h.header_len, &h);
    gram__free(text);
    if (st) return st;

    int64_t need = h.data_offset + h.data_bytes; /* overflow checked in npy_header */
    if (max_bytes > 0 && need > max_bytes)
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: input is larger than the limit of %lld bytes (%lld bytes)", name,
                          (long long)max_bytes, (long long)need);
    /* Narrow types grow 2 to 8 times on the way to float64: the limit holds for what is kept. */
    if (max_bytes > 0 && h.count > max_bytes / (int64_t)sizeof(double)) {
        char shape[64];
        shape_text(shape, sizeof shape, &h);
        return gram__fail(ctx, GRAM_EOVERFLOW,
                          "%s: the array (shape %s) needs %lld bytes as float64, more than the limit of %lld bytes", name,
                          shape, (long long)h.count * (long long)sizeof(double), (long long)max_bytes);
    }
    if (total >= 0 && total != need) return size_mismatch(ctx, name, &h, total - h.data_offset);

    /* A file's size was checked above, so its array is allocated whole and Fortran order is
     * scattered into place. A stream's size is unknown until it ends, so its array grows as the
     * bytes arrive (a lying header costs no more memory than the bytes sent) and a Fortran-order
     * stream is transposed at the end. */
    bool known = total >= 0;
    bool fortran = h.fortran && h.ndim == 2;
    int64_t cap = known ? h.count : (h.count < (int64_t)(GRAM__IO_CHUNK / 8) ? h.count : (int64_t)(GRAM__IO_CHUNK / 8));
    double *dst = NULL;
    unsigned char *bounce = NULL;
    if ((st = alloc_values(ctx, name, cap, &dst))) return st;
    bool direct = NPY_HOST_LE && h.kind == NPY_F8 && !h.big && !(fortran && known);
    if (!direct) {
        bounce = gram__alloc(GRAM__IO_CHUNK);
        if (!bounce) {
            gram__free(dst);
            return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate a read buffer", name);
        }
    }
    npy_sink s = {&h, dst, fortran && known, 0, 0, 0};
    const size_t per_chunk = GRAM__IO_CHUNK / (size_t)h.itemsize;
    while (s.done < h.count) {
        if (s.done == cap) {
            int64_t ncap = cap > h.count / 2 ? h.count : cap * 2;
            double *nd;
            if ((st = alloc_values(ctx, name, ncap, &nd))) goto fail;
            memcpy(nd, s.dst, (size_t)s.done * sizeof(double));
            gram__free(s.dst);
            s.dst = dst = nd;
            cap = ncap;
        }
        size_t want = (size_t)(cap - s.done);
        int64_t at = h.data_offset + s.done * h.itemsize;
        if (direct) {
            st = gram__io_read(ctx, name, fd, s.dst + s.done, want * sizeof(double), at, tot, &got);
            s.done += (int64_t)(got / sizeof(double));
            if (!st && got < want * sizeof(double)) goto short_read;
        } else {
            if (want > per_chunk) want = per_chunk;
            st = gram__io_read(ctx, name, fd, bounce, want * (size_t)h.itemsize, at, tot, &got);
            sink_put(&s, bounce, got / (size_t)h.itemsize);
            if (!st && got < want * (size_t)h.itemsize) goto short_read;
        }
        if (st) goto fail;
    }
    {
        unsigned char extra;
        if ((st = gram__io_read(ctx, name, fd, &extra, 1, need, tot, &got))) goto fail;
        if (got > 0) {
            char shape[64];
            shape_text(shape, sizeof shape, &h);
            st = gram__fail(ctx, GRAM_EFORMAT,
                            "%s: the .npy header promises %lld bytes of data (shape %s, dtype '%s') but the input "
                            "continues past them",
                            name, (long long)h.data_bytes, shape, h.descr);
            goto fail;
        }
    }
    if (fortran && !known) {
        double *t;
        if ((st = alloc_values(ctx, name, h.count, &t))) goto fail;
        transpose_into(t, dst, h.rows, h.cols);
        gram__free(dst);
        dst = t;
    }
    gram__free(bounce);
    out->data = dst;
    out->rows = h.rows;
    out->cols = h.cols;
    return GRAM_OK;

short_read: {
    char shape[64];
    shape_text(shape, sizeof shape, &h);
    int64_t actual = s.done * h.itemsize + (int64_t)(got % (size_t)h.itemsize);
    st = gram__fail(ctx, GRAM_EFORMAT,
                    "%s: the .npy header promises %lld bytes of data (shape %s, dtype '%s') but the input ends "
                    "after %lld",
                    name, (long long)h.data_bytes, shape, h.descr, (long long)actual);
}
fail:
    gram__free(bounce);
    gram__free(dst);
    return st;
}

/* ---- writing -------------------------------------------------------------------------------- */

gram_status gram__npy_write_fd(gram_context *ctx, const char *name, int fd, const double *data, int64_t rows,
                               int64_t cols)
{
    char header[256];
    int len = snprintf(header, sizeof header, "{'descr': '<f8', 'fortran_order': False, 'shape': (%lld, %lld), }",
                       (long long)rows, (long long)cols);
    /* Pad with spaces and a final '\n' so the data start on a 64-byte boundary, as numpy does. */
    size_t total = 10 + (size_t)len + 1;
    size_t padded = (total + 63) / 64 * 64;
    unsigned char pre[10 + sizeof header];
    size_t hlen = padded - 10;
    memcpy(pre, "\x93NUMPY\x01\x00", 8);
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    memcpy(pre + 10, header, (size_t)len);
    memset(pre + 10 + len, ' ', hlen - (size_t)len - 1);
    pre[padded - 1] = '\n';
    gram_status st = gram__io_write(ctx, name, fd, pre, padded);
    size_t count = (size_t)rows * (size_t)cols; /* checked by the caller */
    if (!st && count > 0) {
#if NPY_HOST_LE
        st = gram__io_write(ctx, name, fd, data, count * sizeof(double));
#else
        unsigned char buf[8 * 1024];
        for (size_t k = 0; k < count && !st;) {
            size_t m = count - k < sizeof buf / 8 ? count - k : sizeof buf / 8;
            for (size_t t = 0; t < m; t++) {
                uint64_t v;
                memcpy(&v, &data[k + t], 8);
                for (int b = 0; b < 8; b++) buf[8 * t + b] = (unsigned char)(v >> (8 * b));
            }
            st = gram__io_write(ctx, name, fd, buf, m * 8);
            k += m;
        }
#endif
    }
    return st;
}
