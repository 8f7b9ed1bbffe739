/* model_file: the fitted-model container described in model_file.h. Writing builds the whole file
 * in memory and hands it to gram__write_text (temporary name + rename, or written through to a
 * device or FIFO); reading checks the header before it reads the rest, then parses the whole file
 * in memory, checking every size against the bytes present before believing it. */
#define _POSIX_C_SOURCE 200809L

#include "model_file.h"

#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h> /* qsort */
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MF_HOST_LE 1
#else
#define MF_HOST_LE 0
#endif

static const unsigned char MAGIC[8] = {'G', 'R', 'A', 'M', 'M', 'O', 'D', 'L'};

#define HEADER_SIZE 64u /* version 1's header; see the table in model_file.h */
#define OFF_VERSION 8
#define OFF_HEADER_SIZE 12
#define OFF_KIND 16
#define OFF_WRITER 32
#define OFF_COUNT 48
#define OFF_PAYLOAD 56
#define CRC_SIZE 4u
/* The smallest entry: a 1-byte name and an int64. Bounds the entry count a payload can hold
 * before the entry array is allocated. */
#define MIN_ENTRY_SIZE (4u + 1u + 4u + 8u)

/* ---- CRC-32 --------------------------------------------------------------------------------- */

/* Slicing by 8 (eight 256-entry tables, one 8-byte step per iteration): several times faster
 * than the byte-at-a-time loop, which matters when a model holds an n×n factor. The tables are
 * made once, on first use. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_make(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xffu];
}

uint32_t gram__crc32(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_make);
    const unsigned char *p = data;
    uint32_t c = ~crc;
    if (!p) return crc;
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = crc_table[7][lo & 0xffu] ^ crc_table[6][(lo >> 8) & 0xffu] ^ crc_table[5][(lo >> 16) & 0xffu] ^
            crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xffu] ^ crc_table[2][(hi >> 8) & 0xffu] ^
            crc_table[1][(hi >> 16) & 0xffu] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n-- > 0) c = crc_table[0][(c ^ *p++) & 0xffu] ^ (c >> 8);
    return ~c;
}

/* ---- little-endian fields ------------------------------------------------------------------- */

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_f64s(unsigned char *p, const double *x, size_t count)
{
    if (count == 0) return;
#if MF_HOST_LE
    memcpy(p, x, count * sizeof(double));
#else
    for (size_t i = 0; i < count; i++) {
        uint64_t u;
        memcpy(&u, &x[i], sizeof u);
        put_u64(p + 8 * i, u);
    }
#endif
}

static void get_f64s(double *x, const unsigned char *p, size_t count)
{
    if (count == 0) return;
#if MF_HOST_LE
    memcpy(x, p, count * sizeof(double));
#else
    for (size_t i = 0; i < count; i++) {
        uint64_t u = get_u64(p + 8 * i);
        memcpy(&x[i], &u, sizeof u);
    }
#endif
}

static bool add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a > UINT64_MAX - b) return false;
    *out = a + b;
    return true;
}

/* ---- text rules ----------------------------------------------------------------------------- */

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF) without NUL;
 * names also refuse the ASCII control characters, so they are safe in one-line messages. */
static bool utf8_ok(const unsigned char *s, size_t n, bool name)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c == 0 || (name && (c < 0x20 || c == 0x7f))) return false;
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
        else return false;
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

static bool kind_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n >= GRAM__MODEL_KIND_SIZE) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e) return false;
    return true;
}

/* A NUL-padded header field: printable ASCII without spaces, then only NULs. */
static bool text_field(const unsigned char *f, char out[GRAM__MODEL_KIND_SIZE], bool allow_empty)
{
    size_t len = 0;
    while (len < GRAM__MODEL_KIND_SIZE && f[len] != 0) len++;
    if (len == GRAM__MODEL_KIND_SIZE || (len == 0 && !allow_empty)) return false;
    for (size_t i = len; i < GRAM__MODEL_KIND_SIZE; i++)
        if (f[i] != 0) return false;
    for (size_t i = 0; i < len; i++)
        if (f[i] < 0x21 || f[i] > 0x7e) return false;
    memset(out, 0, GRAM__MODEL_KIND_SIZE);
    memcpy(out, f, len);
    return true;
}

static const char *label(const gram__model_file *m)
{
    return m && m->kind[0] ? m->kind : "model";
}

/* ---- building ------------------------------------------------------------------------------- */

void gram__model_file_init(gram__model_file *m, const char *kind)
{
    if (!m) return;
    memset(m, 0, sizeof *m);
    if (kind && strlen(kind) < GRAM__MODEL_KIND_SIZE) memcpy(m->kind, kind, strlen(kind));
}

void gram__model_file_free(gram__model_file *m)
{
    if (!m) return;
    for (int64_t i = 0; m->entries && i < m->n; i++) {
        gram__free(m->entries[i].name);
        gram__free(m->entries[i].str);
        gram__free(m->entries[i].f64);
    }
    gram__free(m->entries);
    m->entries = NULL;
    m->n = m->cap = 0;
}

const gram__entry *gram__model_find(const gram__model_file *m, const char *name)
{
    if (!m || !name || !m->entries) return NULL;
    for (int64_t i = 0; i < m->n; i++)
        if (m->entries[i].name && strcmp(m->entries[i].name, name) == 0) return &m->entries[i];
    return NULL;
}

static gram_status check_new_name(gram_context *ctx, const gram__model_file *m, const char *name)
{
    if (!name) return gram__fail(ctx, GRAM_EINVAL, "%s: entry name must not be NULL", label(m));
    size_t len = strlen(name);
    if (len == 0 || len > GRAM__MODEL_MAX_NAME)
        return gram__fail(ctx, GRAM_EINVAL, "%s: entry names must be 1 to %d bytes, got %zu", label(m),
                          GRAM__MODEL_MAX_NAME, len);
    if (!utf8_ok((const unsigned char *)name, len, true)) {
        char ex[48];
        gram__io_excerpt(ex, name, len);
        return gram__fail(ctx, GRAM_EINVAL, "%s: entry name '%s' is not UTF-8 without control characters", label(m),
                          ex);
    }
    if (gram__model_find(m, name))
        return gram__fail(ctx, GRAM_EINVAL, "%s: entry '%s' already exists", label(m), name);
    return GRAM_OK;
}

/* Appends e (its payload already owned by the model-to-be) under a copy of name; on failure
 * frees e's payload, so the callers never have to. */
static gram_status append(gram_context *ctx, gram__model_file *m, const char *name, gram__entry e)
{
    gram_status st = GRAM_OK;
    if (m->n == m->cap) {
        int64_t ncap = 8;
        size_t bytes;
        if (m->cap >= 8 && !gram__mul_i64(m->cap, 2, &ncap)) ncap = -1;
        if (ncap < 0 || !gram__bytes(ncap, sizeof(gram__entry), &bytes)) {
            st = gram__fail(ctx, GRAM_EOVERFLOW, "%s: too many entries", label(m));
            goto fail;
        }
        gram__entry *ne = gram__alloc(bytes);
        if (!ne) {
            st = gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for the entries", label(m), bytes);
            goto fail;
        }
        if (m->n > 0) memcpy(ne, m->entries, (size_t)m->n * sizeof(gram__entry));
        gram__free(m->entries);
        m->entries = ne;
        m->cap = ncap;
    }
    size_t len = strlen(name);
    e.name = gram__alloc(len + 1);
    if (!e.name) {
        st = gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate the name of entry '%s'", label(m), name);
        goto fail;
    }
    memcpy(e.name, name, len + 1);
    m->entries[m->n++] = e;
    return GRAM_OK;
fail:
    gram__free(e.str);
    gram__free(e.f64);
    return st;
}

gram_status gram__model_add_i64(gram_context *ctx, gram__model_file *m, const char *name, int64_t v)
{
    if (!m) return gram__fail(ctx, GRAM_EINVAL, "model: m must not be NULL");
    gram_status st = check_new_name(ctx, m, name);
    if (st != GRAM_OK) return st;
    gram__entry e = {0};
    e.type = GRAM__ENTRY_I64;
    e.i64 = v;
    return append(ctx, m, name, e);
}

gram_status gram__model_add_str(gram_context *ctx, gram__model_file *m, const char *name, const char *s)
{
    if (!m) return gram__fail(ctx, GRAM_EINVAL, "model: m must not be NULL");
    gram_status st = check_new_name(ctx, m, name);
    if (st != GRAM_OK) return st;
    if (!s) return gram__fail(ctx, GRAM_EINVAL, "%s: the string for entry '%s' must not be NULL", label(m), name);
    size_t len = strlen(s);
    if (!utf8_ok((const unsigned char *)s, len, false))
        return gram__fail(ctx, GRAM_EINVAL, "%s: the string for entry '%s' is not UTF-8", label(m), name);
    gram__entry e = {0};
    e.type = GRAM__ENTRY_STR;
    e.str = gram__alloc(len + 1);
    if (!e.str)
        return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for entry '%s'", label(m), len + 1, name);
    memcpy(e.str, s, len + 1);
    return append(ctx, m, name, e);
}

gram_status gram__model_add_f64(gram_context *ctx, gram__model_file *m, const char *name, const double *data,
                                int64_t rows, int64_t cols)
{
    if (!m) return gram__fail(ctx, GRAM_EINVAL, "model: m must not be NULL");
    gram_status st = check_new_name(ctx, m, name);
    if (st != GRAM_OK) return st;
    if (rows < 0 || cols < 0)
        return gram__fail(ctx, GRAM_EINVAL, "%s: entry '%s': rows and cols must be >= 0, got %lld x %lld", label(m),
                          name, (long long)rows, (long long)cols);
    int64_t count;
    size_t bytes;
    if (!gram__mul_i64(rows, cols, &count) || !gram__bytes(count, sizeof(double), &bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: entry '%s': %lld x %lld doubles overflow the address space",
                          label(m), name, (long long)rows, (long long)cols);
    if (count > 0 && !data)
        return gram__fail(ctx, GRAM_EINVAL, "%s: entry '%s': data must not be NULL", label(m), name);
    gram__entry e = {0};
    e.type = GRAM__ENTRY_F64;
    e.rows = rows;
    e.cols = cols;
    if (count > 0) {
        e.f64 = gram__alloc(bytes);
        if (!e.f64)
            return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for entry '%s'", label(m), bytes, name);
        memcpy(e.f64, data, bytes);
    }
    return append(ctx, m, name, e);
}

/* ---- lookups -------------------------------------------------------------------------------- */

static gram_status lookup(gram_context *ctx, const gram__model_file *m, const char *where, const char *name,
                          gram__entry_type type, const gram__entry **out)
{
    if (!where) where = label(m);
    if (!m || !name) return gram__fail(ctx, GRAM_EINVAL, "%s: model and entry name must not be NULL", where);
    const gram__entry *e = gram__model_find(m, name);
    if (!e) return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' is missing", where, name);
    if (e->type != type) {
        const char *what = type == GRAM__ENTRY_I64 ? "an integer" : type == GRAM__ENTRY_STR ? "a string" : "a matrix";
        return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' is not %s", where, name, what);
    }
    *out = e;
    return GRAM_OK;
}

gram_status gram__model_get_i64(gram_context *ctx, const gram__model_file *m, const char *where, const char *name,
                                int64_t *v)
{
    const gram__entry *e = NULL;
    if (!v) return gram__fail(ctx, GRAM_EINVAL, "%s: v must not be NULL", where ? where : label(m));
    gram_status st = lookup(ctx, m, where, name, GRAM__ENTRY_I64, &e);
    if (st == GRAM_OK) *v = e->i64;
    return st;
}

gram_status gram__model_get_str(gram_context *ctx, const gram__model_file *m, const char *where, const char *name,
                                const char **s)
{
    const gram__entry *e = NULL;
    if (!s) return gram__fail(ctx, GRAM_EINVAL, "%s: s must not be NULL", where ? where : label(m));
    gram_status st = lookup(ctx, m, where, name, GRAM__ENTRY_STR, &e);
    if (st == GRAM_OK) *s = e->str;
    return st;
}

gram_status gram__model_get_f64(gram_context *ctx, const gram__model_file *m, const char *where, const char *name,
                                const double **data, int64_t *rows, int64_t *cols)
{
    const gram__entry *e = NULL;
    if (!data || !rows || !cols)
        return gram__fail(ctx, GRAM_EINVAL, "%s: data, rows and cols must not be NULL", where ? where : label(m));
    gram_status st = lookup(ctx, m, where, name, GRAM__ENTRY_F64, &e);
    if (st == GRAM_OK) {
        *data = e->f64;
        *rows = e->rows;
        *cols = e->cols;
    }
    return st;
}

/* ---- duplicates ----------------------------------------------------------------------------- */

static int cmp_entry_name(const void *a, const void *b)
{
    const gram__entry *x = *(const gram__entry *const *)a, *y = *(const gram__entry *const *)b;
    return strcmp(x->name, y->name);
}

/* The first duplicated name among n entries (sorting, so a file with millions of entries costs
 * n log n, not n²), or NULL. */
static gram_status find_duplicate(gram_context *ctx, const char *where, const gram__entry *entries, int64_t n,
                                  const char **dup)
{
    *dup = NULL;
    if (n < 2) return GRAM_OK;
    size_t bytes;
    if (!gram__bytes(n, sizeof(gram__entry *), &bytes))
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: too many entries", where);
    const gram__entry **order = gram__alloc(bytes);
    if (!order) return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes to check the names", where, bytes);
    for (int64_t i = 0; i < n; i++) order[i] = &entries[i];
    qsort(order, (size_t)n, sizeof *order, cmp_entry_name);
    for (int64_t i = 1; i < n && !*dup; i++)
        if (strcmp(order[i - 1]->name, order[i]->name) == 0) *dup = order[i]->name;
    gram__free(order);
    return GRAM_OK;
}

/* ---- writing -------------------------------------------------------------------------------- */

gram_status gram__model_to_bytes(gram_context *ctx, const gram__model_file *m, unsigned char **buf, size_t *size)
{
    if (!buf || !size) return gram__fail(ctx, GRAM_EINVAL, "model: buf and size must not be NULL");
    *buf = NULL;
    *size = 0;
    if (!m) return gram__fail(ctx, GRAM_EINVAL, "model: m must not be NULL");
    if (memchr(m->kind, 0, sizeof m->kind) == NULL || !kind_ok(m->kind))
        return gram__fail(ctx, GRAM_EINVAL, "model: the kind must be 1 to %d printable ASCII characters",
                          GRAM__MODEL_KIND_SIZE - 1);
    if (m->n < 0 || (m->n > 0 && !m->entries))
        return gram__fail(ctx, GRAM_EINVAL, "%s: the entry list is inconsistent", m->kind);

    /* The entries are normally built by the add functions, which already enforce every rule;
     * the struct is open, though, so a file is never written that the reader would refuse. */
    uint64_t payload = 0;
    for (int64_t i = 0; i < m->n; i++) {
        const gram__entry *e = &m->entries[i];
        size_t nl = e->name ? strlen(e->name) : 0;
        if (nl == 0 || nl > GRAM__MODEL_MAX_NAME || !utf8_ok((const unsigned char *)e->name, nl, true))
            return gram__fail(ctx, GRAM_EINVAL, "%s: entry %lld has an invalid name", m->kind, (long long)i);
        uint64_t sz = 4 + nl + 4, body = 0;
        switch (e->type) {
        case GRAM__ENTRY_I64: body = 8; break;
        case GRAM__ENTRY_STR:
            if (!e->str || !utf8_ok((const unsigned char *)e->str, strlen(e->str), false))
                return gram__fail(ctx, GRAM_EINVAL, "%s: entry '%s' is not a UTF-8 string", m->kind, e->name);
            body = 8 + (uint64_t)strlen(e->str);
            break;
        case GRAM__ENTRY_F64: {
            int64_t count;
            size_t bytes;
            if (e->rows < 0 || e->cols < 0 || !gram__mul_i64(e->rows, e->cols, &count) ||
                !gram__bytes(count, sizeof(double), &bytes) || (count > 0 && !e->f64))
                return gram__fail(ctx, GRAM_EINVAL, "%s: entry '%s' has an invalid matrix (%lld x %lld)", m->kind,
                                  e->name, (long long)e->rows, (long long)e->cols);
            body = 16 + (uint64_t)bytes;
            break;
        }
        default:
            return gram__fail(ctx, GRAM_EINVAL, "%s: entry '%s' has unknown type %d", m->kind, e->name, (int)e->type);
        }
        if (!add_u64(sz, body, &sz) || !add_u64(payload, sz, &payload))
            return gram__fail(ctx, GRAM_EOVERFLOW, "%s: the model is too large to serialise", m->kind);
    }
    const char *dup = NULL;
    gram_status st = find_duplicate(ctx, m->kind, m->entries, m->n, &dup);
    if (st != GRAM_OK) return st;
    if (dup) return gram__fail(ctx, GRAM_EINVAL, "%s: entry '%s' appears twice", m->kind, dup);

    uint64_t total;
    if (!add_u64(payload, HEADER_SIZE + CRC_SIZE, &total) || total > SIZE_MAX)
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: the model is too large to serialise", m->kind);
    unsigned char *b = gram__alloc((size_t)total);
    if (!b)
        return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %llu bytes for the file", m->kind,
                          (unsigned long long)total);

    memset(b, 0, HEADER_SIZE);
    memcpy(b, MAGIC, sizeof MAGIC);
    put_u32(b + OFF_VERSION, GRAM__MODEL_FORMAT_VERSION);
    put_u32(b + OFF_HEADER_SIZE, HEADER_SIZE);
    memcpy(b + OFF_KIND, m->kind, strlen(m->kind));
    const char *ver = gram_version();
    size_t vl = strlen(ver);
    memcpy(b + OFF_WRITER, ver, vl < GRAM__MODEL_KIND_SIZE ? vl : GRAM__MODEL_KIND_SIZE - 1);
    put_u64(b + OFF_COUNT, (uint64_t)m->n);
    put_u64(b + OFF_PAYLOAD, payload);

    unsigned char *p = b + HEADER_SIZE;
    for (int64_t i = 0; i < m->n; i++) {
        const gram__entry *e = &m->entries[i];
        size_t nl = strlen(e->name);
        put_u32(p, (uint32_t)nl);
        memcpy(p + 4, e->name, nl);
        p += 4 + nl;
        put_u32(p, (uint32_t)e->type);
        p += 4;
        switch (e->type) {
        case GRAM__ENTRY_I64:
            put_u64(p, (uint64_t)e->i64);
            p += 8;
            break;
        case GRAM__ENTRY_STR: {
            size_t sl = strlen(e->str);
            put_u64(p, sl);
            if (sl > 0) memcpy(p + 8, e->str, sl);
            p += 8 + sl;
            break;
        }
        case GRAM__ENTRY_F64: {
            size_t count = (size_t)e->rows * (size_t)e->cols;
            put_u64(p, (uint64_t)e->rows);
            put_u64(p + 8, (uint64_t)e->cols);
            put_f64s(p + 16, e->f64, count);
            p += 16 + count * sizeof(double);
            break;
        }
        }
    }
    put_u32(p, gram__crc32(0, b, (size_t)(p - b)));
    *buf = b;
    *size = (size_t)total;
    return GRAM_OK;
}

gram_status gram__model_save(gram_context *ctx, const char *path, const gram__model_file *m)
{
    if (!path) return gram__fail(ctx, GRAM_EINVAL, "model: path must not be NULL");
    unsigned char *buf = NULL;
    size_t size = 0;
    gram_status st = gram__model_to_bytes(ctx, m, &buf, &size);
    if (st != GRAM_OK) return st;
    st = gram__write_text(ctx, path, (const char *)buf, size);
    gram__free(buf);
    return st;
}

/* ---- reading -------------------------------------------------------------------------------- */

/* A cursor over the payload: take() fails rather than step past end. */
typedef struct cursor {
    const unsigned char *b;
    size_t pos, end;
} cursor;

static const unsigned char *take(cursor *c, size_t n)
{
    if (c->end - c->pos < n) return NULL;
    const unsigned char *p = c->b + c->pos;
    c->pos += n;
    return p;
}

/* Reads entry i into e (which starts zeroed). On failure e owns whatever it allocated. */
static gram_status read_entry(gram_context *ctx, const char *name, cursor *c, uint64_t i, gram__entry *e)
{
    const unsigned char *p = take(c, 4);
    if (!p)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: entry %llu: truncated before its name", name, (unsigned long long)i);
    uint32_t nl = get_u32(p);
    if (nl == 0 || nl > GRAM__MODEL_MAX_NAME)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: entry %llu: name length %u is not in 1 to %d", name,
                          (unsigned long long)i, nl, GRAM__MODEL_MAX_NAME);
    if (!(p = take(c, nl)))
        return gram__fail(ctx, GRAM_EFORMAT, "%s: entry %llu: name length %u exceeds the payload", name,
                          (unsigned long long)i, nl);
    if (!utf8_ok(p, nl, true))
        return gram__fail(ctx, GRAM_EFORMAT, "%s: entry %llu: the name is not UTF-8 without control characters", name,
                          (unsigned long long)i);
    e->name = gram__alloc((size_t)nl + 1);
    if (!e->name) return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate an entry name", name);
    memcpy(e->name, p, nl);
    e->name[nl] = '\0';
    char ex[48];
    gram__io_excerpt(ex, e->name, nl);

    if (!(p = take(c, 4))) return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s': truncated before its type", name, ex);
    uint32_t type = get_u32(p);
    switch (type) {
    case GRAM__ENTRY_I64:
        if (!(p = take(c, 8))) return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s': truncated integer", name, ex);
        e->type = GRAM__ENTRY_I64;
        e->i64 = (int64_t)get_u64(p);
        return GRAM_OK;
    case GRAM__ENTRY_STR: {
        if (!(p = take(c, 8)))
            return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s': truncated string length", name, ex);
        uint64_t len = get_u64(p);
        if (len > c->end - c->pos)
            return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s': string length %llu exceeds the payload", name, ex,
                              (unsigned long long)len);
        p = take(c, (size_t)len);
        if (!utf8_ok(p, (size_t)len, false))
            return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s': the string is not UTF-8 without NUL", name, ex);
        e->type = GRAM__ENTRY_STR;
        e->str = gram__alloc((size_t)len + 1);
        if (!e->str) return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %llu bytes for entry '%s'", name,
                                       (unsigned long long)len + 1, ex);
        if (len > 0) memcpy(e->str, p, (size_t)len);
        e->str[len] = '\0';
        return GRAM_OK;
    }
    case GRAM__ENTRY_F64: {
        if (!(p = take(c, 16)))
            return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s': truncated matrix shape", name, ex);
        uint64_t rows = get_u64(p), cols = get_u64(p + 8);
        int64_t count;
        if (rows > INT64_MAX || cols > INT64_MAX || !gram__mul_i64((int64_t)rows, (int64_t)cols, &count) ||
            (uint64_t)count > (c->end - c->pos) / sizeof(double))
            return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s': a %llu x %llu matrix exceeds the payload", name, ex,
                              (unsigned long long)rows, (unsigned long long)cols);
        size_t bytes = (size_t)count * sizeof(double);
        p = take(c, bytes);
        e->type = GRAM__ENTRY_F64;
        e->rows = (int64_t)rows;
        e->cols = (int64_t)cols;
        if (count > 0) {
            e->f64 = gram__alloc(bytes);
            if (!e->f64)
                return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for entry '%s'", name, bytes, ex);
            get_f64s(e->f64, p, (size_t)count);
        }
        return GRAM_OK;
    }
    default:
        return gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' has unknown type %u", name, ex, type);
    }
}

gram_status gram__model_from_bytes(gram_context *ctx, const char *name, const unsigned char *buf, size_t size,
                                   const char *expect_kind, gram__model_file *out)
{
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "model: out must not be NULL");
    gram__model_file_init(out, NULL);
    if (!name) name = "<memory>";
    if (!buf && size > 0) return gram__fail(ctx, GRAM_EINVAL, "%s: buf must not be NULL", name);

    if (size == 0) return gram__fail(ctx, GRAM_EFORMAT, "%s: not a gram model file (it is empty)", name);
    if (size < sizeof MAGIC) {
        if (memcmp(buf, MAGIC, size) == 0)
            return gram__fail(ctx, GRAM_EFORMAT, "%s: truncated: %zu bytes, shorter than the header", name, size);
        return gram__fail(ctx, GRAM_EFORMAT, "%s: not a gram model file", name);
    }
    if (memcmp(buf, MAGIC, sizeof MAGIC) != 0) return gram__fail(ctx, GRAM_EFORMAT, "%s: not a gram model file", name);
    if (size < OFF_VERSION + 4)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: truncated: %zu bytes, shorter than the header", name, size);

    /* The version before the checksum: a newer gram may checksum differently, and its files
     * deserve "upgrade" rather than "corrupted". */
    uint32_t version = get_u32(buf + OFF_VERSION);
    if (version != GRAM__MODEL_FORMAT_VERSION) {
        /* The writer field is in the prefix every version shares; unverified, so only shown
         * when it is plain text. */
        char w[GRAM__MODEL_KIND_SIZE];
        bool known = size >= OFF_WRITER + GRAM__MODEL_KIND_SIZE && text_field(buf + OFF_WRITER, w, false);
        const char *pre = known ? " (the file was written by gram " : "", *mid = known ? "; this is gram " : "";
        const char *wv = known ? w : "", *ours = known ? gram_version() : "", *post = known ? ")" : "";
        if (version == 0)
            return gram__fail(ctx, GRAM_EFORMAT, "%s: format version 0 is not valid%s%s%s%s%s", name, pre, wv, mid,
                              ours, post);
        return gram__fail(ctx, GRAM_EFORMAT,
                          "%s: format version %u is newer than this gram supports (%u); upgrade gram%s%s%s%s%s", name,
                          version, GRAM__MODEL_FORMAT_VERSION, pre, wv, mid, ours, post);
    }
    if (size < HEADER_SIZE + CRC_SIZE)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: truncated: %zu bytes, shorter than the header", name, size);

    uint32_t header_size = get_u32(buf + OFF_HEADER_SIZE);
    uint64_t count = get_u64(buf + OFF_COUNT), payload = get_u64(buf + OFF_PAYLOAD), expected;
    if (!add_u64(header_size, CRC_SIZE, &expected) || !add_u64(expected, payload, &expected)) expected = UINT64_MAX;
    uint32_t stored = get_u32(buf + size - CRC_SIZE), computed = gram__crc32(0, buf, size - CRC_SIZE);
    if (stored != computed) {
        /* Unverified, the sizes can still tell a cut-off file from a damaged one. */
        if (header_size >= HEADER_SIZE && (uint64_t)size < expected)
            return gram__fail(ctx, GRAM_EFORMAT, "%s: truncated: %zu bytes, the header says %llu", name, size,
                              (unsigned long long)expected);
        return gram__fail(ctx, GRAM_EFORMAT, "%s: corrupted: checksum mismatch (stored %08x, computed %08x)", name,
                          (unsigned)stored, (unsigned)computed);
    }
    if (header_size < HEADER_SIZE)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: header size %u is smaller than %u", name, header_size, HEADER_SIZE);
    if (expected != (uint64_t)size)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: the header says %llu bytes but the file has %zu", name,
                          (unsigned long long)expected, size);
    char kind[GRAM__MODEL_KIND_SIZE], writer[GRAM__MODEL_KIND_SIZE];
    if (!text_field(buf + OFF_KIND, kind, false))
        return gram__fail(ctx, GRAM_EFORMAT, "%s: the kind field is malformed", name);
    if (!text_field(buf + OFF_WRITER, writer, true))
        return gram__fail(ctx, GRAM_EFORMAT, "%s: the writer field is malformed", name);
    if (expect_kind && strcmp(kind, expect_kind) != 0)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: is a %s model, expected %s", name, kind, expect_kind);
    if (count > payload / MIN_ENTRY_SIZE)
        return gram__fail(ctx, GRAM_EFORMAT, "%s: %llu entries cannot fit in a payload of %llu bytes", name,
                          (unsigned long long)count, (unsigned long long)payload);

    gram_status st = GRAM_OK;
    if (count > 0) {
        out->entries = gram__calloc((size_t)count, sizeof(gram__entry));
        if (!out->entries) {
            st = gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %llu entries", name, (unsigned long long)count);
            goto fail;
        }
        out->cap = (int64_t)count;
    }
    cursor c = {buf, header_size, header_size + (size_t)payload};
    for (uint64_t i = 0; i < count; i++) {
        out->n = (int64_t)i + 1; /* so a failure frees what this entry allocated */
        st = read_entry(ctx, name, &c, i, &out->entries[i]);
        if (st != GRAM_OK) goto fail;
    }
    if (c.pos != c.end) {
        st = gram__fail(ctx, GRAM_EFORMAT, "%s: %zu bytes of payload follow the last entry", name, c.end - c.pos);
        goto fail;
    }
    const char *dup = NULL;
    st = find_duplicate(ctx, name, out->entries, out->n, &dup);
    if (st == GRAM_OK && dup) {
        char ex[48];
        gram__io_excerpt(ex, dup, strlen(dup));
        st = gram__fail(ctx, GRAM_EFORMAT, "%s: entry '%s' appears twice", name, ex);
    }
    if (st != GRAM_OK) goto fail;
    memcpy(out->kind, kind, sizeof kind);
    memcpy(out->writer, writer, sizeof writer);
    return GRAM_OK;
fail:
    gram__model_file_free(out);
    gram__model_file_init(out, NULL);
    return st;
}

/* The bytes of a model file from fd, header first: the magic, the version and the declared size
 * are checked before the payload is read, so a file that is not a model (a 100 MB file of zeros,
 * /dev/zero) costs 8 bytes of reading, and the rest is read only up to the size the header
 * declares. A regular file is read whole when its size matches the header (memory linear in the
 * file's own size); a stream is refused when its header declares more than max_bytes (> 0), else
 * read as it arrives, its buffer growing with the bytes actually sent. What is read is then parsed
 * by gram__model_from_bytes, whose checks (the checksum above all) still apply. */
static gram_status read_model_fd(gram_context *ctx, const char *name, int fd, int64_t max_bytes, unsigned char **out,
                                 size_t *len)
{
    *out = NULL;
    *len = 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0) return gram__io_fail_errno(ctx, name, "cannot stat", errno);
    if (S_ISDIR(sb.st_mode)) return gram__fail(ctx, GRAM_EIO, "%s: is a directory", name);
    int64_t total = -1;
    if (S_ISREG(sb.st_mode)) {
        off_t pos = lseek(fd, 0, SEEK_CUR);
        if (pos >= 0 && pos <= sb.st_size) total = (int64_t)(sb.st_size - pos);
    }
    int64_t tot = total > 0 ? total : 0;

    unsigned char head[HEADER_SIZE];
    size_t got = 0, have = 0;
    gram_status st = gram__io_read(ctx, name, fd, head, sizeof MAGIC, 0, tot, &got);
    have = got;
    if (st) return st;
    /* Not a model, or too short to say more: the parser gives the message from what is here. */
    if (have < sizeof MAGIC || memcmp(head, MAGIC, sizeof MAGIC) != 0) goto parse_head;
    if ((st = gram__io_read(ctx, name, fd, head + have, HEADER_SIZE - have, (int64_t)have, tot, &got))) return st;
    have += got;
    if (have < HEADER_SIZE || get_u32(head + OFF_VERSION) != GRAM__MODEL_FORMAT_VERSION) goto parse_head;

    uint64_t declared;
    if (!add_u64(get_u32(head + OFF_HEADER_SIZE), CRC_SIZE, &declared) ||
        !add_u64(declared, get_u64(head + OFF_PAYLOAD), &declared))
        declared = UINT64_MAX;
    uint64_t want;
    if (total >= 0) {
        if ((uint64_t)total < declared)
            return gram__fail(ctx, GRAM_EFORMAT, "%s: truncated: %lld bytes, the header says %llu", name,
                              (long long)total, (unsigned long long)declared);
        /* A (sparse) file with a header claiming all of it: more than the machine has cannot be
         * loaded, and trying would only wake the OOM killer. */
        if (max_bytes > 0 && total > max_bytes)
            return gram__fail(ctx, GRAM_EOVERFLOW, "%s: %lld bytes, more than the limit of %lld bytes", name,
                              (long long)total, (long long)max_bytes);
        want = (uint64_t)total; /* more than declared: the parser names the extra bytes */
    } else {
        if (max_bytes > 0 && declared > (uint64_t)max_bytes)
            return gram__fail(ctx, GRAM_EOVERFLOW,
                              "%s: the header declares a file of %llu bytes, more than the limit of %lld bytes", name,
                              (unsigned long long)declared, (long long)max_bytes);
        want = declared;
    }
    if (want > SIZE_MAX - 1)
        return gram__fail(ctx, GRAM_EOVERFLOW, "%s: %llu bytes do not fit in memory", name, (unsigned long long)want);

    {
        /* A stream's buffer starts small and doubles, so a header that lies about the size costs
         * no more than the bytes actually sent. */
        size_t cap = total >= 0 || want <= ((size_t)1 << 20) ? (size_t)want : (size_t)1 << 20;
        if (cap < HEADER_SIZE) cap = HEADER_SIZE;
        unsigned char *buf = gram__alloc(cap);
        if (!buf) return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for the model", name, cap);
        memcpy(buf, head, have);
        size_t n = have;
        while (n < want) {
            if (n == cap) {
                size_t ncap = cap > (size_t)want / 2 ? (size_t)want : cap * 2;
                unsigned char *nb = gram__alloc(ncap);
                if (!nb) {
                    gram__free(buf);
                    return gram__fail(ctx, GRAM_ENOMEM, "%s: cannot allocate %zu bytes for the model", name, ncap);
                }
                memcpy(nb, buf, n);
                gram__free(buf);
                buf = nb;
                cap = ncap;
            }
            if ((st = gram__io_read(ctx, name, fd, buf + n, cap - n, (int64_t)n, tot, &got))) {
                gram__free(buf);
                return st;
            }
            n += got;
            if (got < cap - (n - got)) break; /* end of input: the parser reports the truncation */
        }
        if (n == want && total < 0) {
            unsigned char extra;
            if ((st = gram__io_read(ctx, name, fd, &extra, 1, (int64_t)n, tot, &got))) {
                gram__free(buf);
                return st;
            }
            if (got) {
                gram__free(buf);
                return gram__fail(ctx, GRAM_EFORMAT, "%s: the input continues past the %llu bytes its header declares",
                                  name, (unsigned long long)want);
            }
        }
        *out = buf;
        *len = n;
        return GRAM_OK;
    }

parse_head: {
    unsigned char *buf = gram__alloc(have ? have : 1);
    if (!buf) return gram__fail(ctx, GRAM_ENOMEM, "%s: out of memory", name);
    memcpy(buf, head, have);
    *out = buf;
    *len = have;
    return GRAM_OK;
}
}

gram_status gram__model_read_fd(gram_context *ctx, const char *name, int fd, int64_t max_bytes, unsigned char **buf,
                                size_t *size)
{
    if (!buf || !size) return gram__fail(ctx, GRAM_EINVAL, "model: buf and size must not be NULL");
    return read_model_fd(ctx, name ? name : "<fd>", fd, max_bytes, buf, size);
}

gram_status gram__model_load(gram_context *ctx, const char *path, const char *expect_kind, gram__model_file *out)
{
    if (!out) return gram__fail(ctx, GRAM_EINVAL, "model: out must not be NULL");
    gram__model_file_init(out, NULL);
    if (!path) return gram__fail(ctx, GRAM_EINVAL, "model: path must not be NULL");
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    int fd = 0;
    gram_status st;
    if (!is_stdin && (st = gram__io_open(ctx, name, path, O_RDONLY, &fd))) return st;
    unsigned char *buf = NULL;
    size_t size = 0;
    st = read_model_fd(ctx, name, fd, gram__io_physical_memory(), &buf, &size);
    if (!is_stdin) close(fd);
    if (st != GRAM_OK) return st;
    st = gram__model_from_bytes(ctx, name, buf, size, expect_kind, out);
    gram__free(buf);
    return st;
}
