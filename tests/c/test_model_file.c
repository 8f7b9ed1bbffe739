/* model_file: the fitted-model container. The CRC is checked against published answers and a
 * bit-at-a-time reference; a file is also built here byte by byte from the layout in
 * model_file.h (not with the writer under test) and the writer must produce exactly those bytes.
 * Round trips must be bit-exact for every entry type; every damaged, truncated, lying or hostile
 * file must give GRAM_EFORMAT with the file's name, never a crash or a large allocation (run this
 * under ASan); saves go through a temporary name and never leave a partial file. */
#define _POSIX_C_SOURCE 200809L

#include "check.h"
#include "io/model_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static gram_context *ctx;

static const char *msg(void) { return gram_context_message(ctx); }
static int has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }
static int starts(const char *s, const char *prefix) { return s && strncmp(s, prefix, strlen(prefix)) == 0; }


/* The file's bytes (malloc'd); NULL if it cannot be read. */
static unsigned char *get_file(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    size_t cap = 4096, len = 0;
    unsigned char *b = malloc(cap);
    for (;;) {
        if (len == cap) b = realloc(b, cap *= 2);
        ssize_t r = read(fd, b + len, cap - len);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    *n = len;
    return b;
}

/* Entries of dir other than . and .., or only those whose names contain `containing`. */
static int count_files(const char *dir, const char *containing)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!containing || strstr(e->d_name, containing)) n++;
    }
    if (d) closedir(d);
    return n;
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---- the specification, independently ------------------------------------------------------ */

/* CRC-32 one bit at a time, straight from the definition (reflected 0xEDB88320, init and final
 * XOR 0xFFFFFFFF). */
static uint32_t crc_ref(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

typedef struct bytes {
    unsigned char *b;
    size_t n, cap;
} bytes;

static void b_put(bytes *s, const void *p, size_t n)
{
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2 + 64;
        s->b = realloc(s->b, s->cap);
    }
    if (n) memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void b_uint(bytes *s, uint64_t v, int size)
{
    unsigned char b[8];
    for (int i = 0; i < size; i++) b[i] = (unsigned char)(v >> (8 * i));
    b_put(s, b, (size_t)size);
}

static void set_uint(unsigned char *p, uint64_t v, int size)
{
    for (int i = 0; i < size; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t read_uint(const unsigned char *p, int size)
{
    uint64_t v = 0;
    for (int i = 0; i < size; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* A header with the given fields; count and payload are patched by b_finish. */
static bytes b_header(uint32_t version, const char *kind, const char *writer)
{
    bytes s = {0};
    unsigned char h[64] = {0};
    memcpy(h, "GRAMMODL", 8);
    set_uint(h + 8, version, 4);
    set_uint(h + 12, 64, 4);
    memcpy(h + 16, kind, strlen(kind));
    memcpy(h + 32, writer, strlen(writer));
    b_put(&s, h, sizeof h);
    return s;
}

static void b_name(bytes *s, const char *name, uint32_t type)
{
    b_uint(s, strlen(name), 4);
    b_put(s, name, strlen(name));
    b_uint(s, type, 4);
}

/* Sets the count and payload size (header size taken from the file) and appends the CRC. */
static void b_finish(bytes *s, uint64_t count)
{
    uint32_t hs = (uint32_t)read_uint(s->b + 12, 4);
    set_uint(s->b + 48, count, 8);
    set_uint(s->b + 56, s->n - hs, 8);
    b_uint(s, crc_ref(s->b, s->n), 4);
}

/* Recomputes the trailing CRC of a file in place, so a test reaches the checks behind it. */
static void fix_crc(unsigned char *b, size_t n) { set_uint(b + n - 4, crc_ref(b, n - 4), 4); }

/* ---- helpers ------------------------------------------------------------------------------- */

static int entries_equal(const gram__entry *a, const gram__entry *b)
{
    if (strcmp(a->name, b->name) != 0 || a->type != b->type) return 0;
    switch (a->type) {
    case GRAM__ENTRY_I64: return a->i64 == b->i64;
    case GRAM__ENTRY_STR: return strcmp(a->str, b->str) == 0;
    case GRAM__ENTRY_F64:
        if (a->rows != b->rows || a->cols != b->cols) return 0;
        if (a->rows * a->cols == 0) return a->f64 == NULL && b->f64 == NULL;
        return memcmp(a->f64, b->f64, (size_t)(a->rows * a->cols) * sizeof(double)) == 0;
    }
    return 0;
}

static int models_equal(const gram__model_file *a, const gram__model_file *b)
{
    if (strcmp(a->kind, b->kind) != 0 || a->n != b->n) return 0;
    for (int64_t i = 0; i < a->n; i++)
        if (!entries_equal(&a->entries[i], &b->entries[i])) return 0;
    return 1;
}

static int is_empty(const gram__model_file *m) { return m->n == 0 && m->entries == NULL && m->kind[0] == '\0'; }

/* A model with every entry type and the awkward values: extremes, empty shapes, non-finite. */
static void build_sample(gram__model_file *m, const char *kind)
{
    gram__model_file_init(m, kind);
    double special[8] = {0.0, -0.0, INFINITY, -INFINITY, NAN, DBL_TRUE_MIN, DBL_MAX, -1.5};
    uint64_t nan_payload = 0x7ff80000deadbeefULL;
    memcpy(&special[4], &nan_payload, 8);
    double big[3 * 4];
    for (int i = 0; i < 12; i++) big[i] = (i - 5) * 0.1;
    CHECK_STATUS(gram__model_add_i64(ctx, m, "n", 1234567), GRAM_OK);
    CHECK_STATUS(gram__model_add_i64(ctx, m, "min", INT64_MIN), GRAM_OK);
    CHECK_STATUS(gram__model_add_i64(ctx, m, "max", INT64_MAX), GRAM_OK);
    CHECK_STATUS(gram__model_add_i64(ctx, m, "neg", -1), GRAM_OK);
    CHECK_STATUS(gram__model_add_str(ctx, m, "kernel", "gaussian(lengthscale=0.5)"), GRAM_OK);
    CHECK_STATUS(gram__model_add_str(ctx, m, "empty", ""), GRAM_OK);
    CHECK_STATUS(gram__model_add_str(ctx, m, "unicode", "σ² = 1.5 – ok ✓ \xf0\x9f\x99\x82\n\ttab"), GRAM_OK);
    CHECK_STATUS(gram__model_add_f64(ctx, m, "special", special, 2, 4), GRAM_OK);
    CHECK_STATUS(gram__model_add_f64(ctx, m, "X", big, 3, 4), GRAM_OK);
    CHECK_STATUS(gram__model_add_f64(ctx, m, "empty00", NULL, 0, 0), GRAM_OK);
    CHECK_STATUS(gram__model_add_f64(ctx, m, "empty05", NULL, 0, 5), GRAM_OK);
    CHECK_STATUS(gram__model_add_f64(ctx, m, "empty50", big, 5, 0), GRAM_OK);
    CHECK_STATUS(gram__model_add_f64(ctx, m, "scalar", big + 7, 1, 1), GRAM_OK);
    CHECK_STATUS(gram__model_add_i64(ctx, m, "α-名前", 7), GRAM_OK);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_crc(void)
{
    CHECK(gram__crc32(0, "123456789", 9) == 0xCBF43926u, "crc of 123456789: %08x", gram__crc32(0, "123456789", 9));
    CHECK(gram__crc32(0, "", 0) == 0, "crc of nothing");
    CHECK(gram__crc32(0, NULL, 0) == 0, "crc of NULL");
    CHECK(gram__crc32(0, "a", 1) == 0xE8B7BE43u, "crc of a");
    const char *fox = "The quick brown fox jumps over the lazy dog";
    CHECK(gram__crc32(0, fox, strlen(fox)) == 0x414FA339u, "crc of the fox");
    unsigned char zeros[32] = {0};
    CHECK(gram__crc32(0, zeros, 32) == 0x190A55ADu, "crc of 32 zero bytes");
    CHECK(crc_ref((const unsigned char *)"123456789", 9) == 0xCBF43926u, "reference crc");

    /* Every length and alignment around the 8-byte steps, and every split point continues. */
    unsigned char buf[600];
    check_rng r = {42};
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)check_u64(&r);
    int bad = 0;
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= 300; n++)
            if (gram__crc32(0, buf + off, n) != crc_ref(buf + off, n)) bad++;
    CHECK(bad == 0, "crc differs from the reference in %d cases", bad);
    bad = 0;
    uint32_t whole = crc_ref(buf, sizeof buf);
    for (size_t k = 0; k <= sizeof buf; k++)
        if (gram__crc32(gram__crc32(0, buf, k), buf + k, sizeof buf - k) != whole) bad++;
    CHECK(bad == 0, "incremental crc differs in %d splits", bad);
}

/* The writer's bytes equal a file built here from the layout alone, and that file parses. */
static void test_layout(void)
{
    bytes s = b_header(1, "gp", gram_version());
    b_name(&s, "n", 1);
    b_uint(&s, (uint64_t)-42, 8);
    b_name(&s, "spec", 2);
    b_uint(&s, 3, 8);
    b_put(&s, "abc", 3);
    b_name(&s, "m", 3);
    b_uint(&s, 2, 8);
    b_uint(&s, 1, 8);
    double v[2] = {1.0, -2.5};
    for (int i = 0; i < 2; i++) {
        uint64_t u;
        memcpy(&u, &v[i], 8);
        b_uint(&s, u, 8);
    }
    b_finish(&s, 3);

    gram__model_file m;
    gram__model_file_init(&m, "gp");
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "n", -42), GRAM_OK);
    CHECK_STATUS(gram__model_add_str(ctx, &m, "spec", "abc"), GRAM_OK);
    CHECK_STATUS(gram__model_add_f64(ctx, &m, "m", v, 2, 1), GRAM_OK);
    unsigned char *buf = NULL;
    size_t size = 0;
    CHECK_STATUS(gram__model_to_bytes(ctx, &m, &buf, &size), GRAM_OK);
    CHECK(size == s.n && buf && memcmp(buf, s.b, size) == 0, "writer bytes differ from the specification (%zu vs %zu)",
          size, s.n);
    CHECK(size == 64 + (4 + 1 + 4 + 8) + (4 + 4 + 4 + 8 + 3) + (4 + 1 + 4 + 16 + 16) + 4, "file size %zu", size);
    gram__free(buf);

    gram__model_file back;
    CHECK_STATUS(gram__model_from_bytes(ctx, "spec.gram", s.b, s.n, "gp", &back), GRAM_OK);
    CHECK(models_equal(&m, &back), "hand-built file parses to the model");
    CHECK(strcmp(back.writer, gram_version()) == 0, "writer '%s'", back.writer);
    gram__model_file_free(&back);

    /* A longer header (a compatible extension) is skipped; the checksum still covers it. */
    bytes x = b_header(1, "gp", "9.9.9");
    set_uint(x.b + 12, 72, 4);
    b_put(&x, "RESERVED", 8);
    b_name(&x, "n", 1);
    b_uint(&x, 5, 8);
    b_finish(&x, 1);
    CHECK_STATUS(gram__model_from_bytes(ctx, "ext.gram", x.b, x.n, "gp", &back), GRAM_OK);
    int64_t nv = 0;
    CHECK_STATUS(gram__model_get_i64(ctx, &back, "ext", "n", &nv), GRAM_OK);
    CHECK(nv == 5 && strcmp(back.writer, "9.9.9") == 0, "extended header: n %lld writer %s", (long long)nv, back.writer);
    gram__model_file_free(&back);

    /* No entries at all. */
    bytes z = b_header(1, "krr", "0.1.0");
    b_finish(&z, 0);
    CHECK_STATUS(gram__model_from_bytes(ctx, "none.gram", z.b, z.n, NULL, &back), GRAM_OK);
    CHECK(back.n == 0 && strcmp(back.kind, "krr") == 0, "empty model");
    gram__model_file_free(&back);

    gram__model_file_free(&m);
    free(s.b);
    free(x.b);
    free(z.b);
}

static void test_round_trip(void)
{
    gram__model_file m, back;
    build_sample(&m, "gp");
    unsigned char *buf = NULL;
    size_t size = 0;
    CHECK_STATUS(gram__model_to_bytes(ctx, &m, &buf, &size), GRAM_OK);
    CHECK_STATUS(gram__model_from_bytes(ctx, "mem", buf, size, "gp", &back), GRAM_OK);
    CHECK(models_equal(&m, &back), "bytes round trip");
    CHECK(strcmp(back.writer, gram_version()) == 0, "writer recorded");

    /* The lookups on what came back. */
    int64_t v = 0;
    const char *str = NULL;
    const double *d = NULL;
    int64_t rows = -1, cols = -1;
    CHECK_STATUS(gram__model_get_i64(ctx, &back, "mem", "min", &v), GRAM_OK);
    CHECK(v == INT64_MIN, "min");
    CHECK_STATUS(gram__model_get_str(ctx, &back, "mem", "unicode", &str), GRAM_OK);
    CHECK(str && strcmp(str, "σ² = 1.5 – ok ✓ \xf0\x9f\x99\x82\n\ttab") == 0, "unicode string");
    CHECK_STATUS(gram__model_get_str(ctx, &back, "mem", "empty", &str), GRAM_OK);
    CHECK(str && str[0] == '\0', "empty string");
    CHECK_STATUS(gram__model_get_f64(ctx, &back, "mem", "special", &d, &rows, &cols), GRAM_OK);
    CHECK(rows == 2 && cols == 4 && d && isnan(d[4]) && same_bits(d[1], -0.0) && d[2] == INFINITY &&
              d[3] == -INFINITY && d[5] == DBL_TRUE_MIN && d[6] == DBL_MAX,
          "special values");
    uint64_t bits;
    memcpy(&bits, &d[4], 8);
    CHECK(bits == 0x7ff80000deadbeefULL, "NaN payload kept: %llx", (unsigned long long)bits);
    CHECK_STATUS(gram__model_get_f64(ctx, &back, "mem", "empty05", &d, &rows, &cols), GRAM_OK);
    CHECK(d == NULL && rows == 0 && cols == 5, "0x5");
    CHECK_STATUS(gram__model_get_f64(ctx, &back, "mem", "empty50", &d, &rows, &cols), GRAM_OK);
    CHECK(d == NULL && rows == 5 && cols == 0, "5x0");
    CHECK_STATUS(gram__model_get_f64(ctx, &back, "mem", "empty00", &d, &rows, &cols), GRAM_OK);
    CHECK(d == NULL && rows == 0 && cols == 0, "0x0");
    CHECK(gram__model_find(&back, "α-名前") != NULL && gram__model_find(&back, "nope") == NULL, "find");
    gram__model_file_free(&back);

    /* Through a file, twice to the same path (the second replaces the first). */
    const char *p = check_tpath("rt.gram");
    CHECK_STATUS(gram__model_save(ctx, p, &m), GRAM_OK);
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "extra", 99), GRAM_OK);
    CHECK_STATUS(gram__model_save(ctx, p, &m), GRAM_OK);
    CHECK_STATUS(gram__model_load(ctx, p, "gp", &back), GRAM_OK);
    CHECK(models_equal(&m, &back), "file round trip");
    gram__model_file_free(&back);
    CHECK_STATUS(gram__model_load(ctx, p, NULL, &back), GRAM_OK); /* any kind */
    CHECK(strcmp(back.kind, "gp") == 0, "kind");
    gram__model_file_free(&back);
    size_t fsize = 0;
    unsigned char *fb = get_file(p, &fsize);
    CHECK(fb && fsize == size + (4 + 5 + 4 + 8), "file size %zu", fsize);
    free(fb);
    CHECK(count_files(check_tmpdir, ".tmp.") == 0, "no temporary files left");
    gram__free(buf);

    /* Standard input. */
    int saved = dup(0), fd = open(p, O_RDONLY);
    if (saved >= 0 && fd >= 0 && dup2(fd, 0) == 0) {
        CHECK_STATUS(gram__model_load(ctx, "-", "gp", &back), GRAM_OK);
        CHECK(models_equal(&m, &back), "stdin round trip");
        gram__model_file_free(&back);
        dup2(saved, 0);
    }
    if (fd >= 0) close(fd);
    if (saved >= 0) close(saved);
    gram__model_file_free(&m);

    /* A long string and many entries (the loader's duplicate check must not be quadratic, and
     * the entry array must grow correctly). */
    gram__model_file big;
    gram__model_file_init(&big, "krr");
    size_t L = 1u << 20;
    char *longs = malloc(L + 1);
    for (size_t i = 0; i < L; i++) longs[i] = (char)('a' + i % 26);
    longs[L] = '\0';
    CHECK_STATUS(gram__model_add_str(ctx, &big, "long", longs), GRAM_OK);
    int ok = 1;
    for (int i = 0; i < 5000 && ok; i++) {
        char name[32];
        snprintf(name, sizeof name, "e%d", i);
        double x[3] = {i, -i, i * 0.5};
        ok = (i % 3 == 0 ? gram__model_add_i64(ctx, &big, name, i)
              : i % 3 == 1 ? gram__model_add_f64(ctx, &big, name, x, 1, 3)
                           : gram__model_add_str(ctx, &big, name, name)) == GRAM_OK;
    }
    CHECK(ok && big.n == 5001, "many entries added");
    const char *bp = check_tpath("big.gram");
    CHECK_STATUS(gram__model_save(ctx, bp, &big), GRAM_OK);
    CHECK_STATUS(gram__model_load(ctx, bp, "krr", &back), GRAM_OK);
    CHECK(models_equal(&big, &back), "many entries round trip");
    CHECK_STATUS(gram__model_get_str(ctx, &back, bp, "long", &str), GRAM_OK);
    CHECK(str && strlen(str) == L, "long string length");
    gram__model_file_free(&back);
    gram__model_file_free(&big);
    free(longs);
    unlink(bp);

    /* A bigger matrix crosses the CRC's 8-byte steps many times. */
    gram__model_file mat;
    gram__model_file_init(&mat, "gp");
    int64_t R = 300, C = 77;
    double *X = malloc((size_t)(R * C) * sizeof *X);
    check_rng r = {7};
    for (int64_t i = 0; i < R * C; i++) X[i] = check_normal(&r);
    CHECK_STATUS(gram__model_add_f64(ctx, &mat, "L", X, R, C), GRAM_OK);
    CHECK_STATUS(gram__model_to_bytes(ctx, &mat, &buf, &size), GRAM_OK);
    CHECK_STATUS(gram__model_from_bytes(ctx, "mat", buf, size, "gp", &back), GRAM_OK);
    CHECK(models_equal(&mat, &back), "matrix round trip");
    gram__free(buf);
    gram__model_file_free(&back);
    gram__model_file_free(&mat);
    free(X);
}

static void test_build_errors(void)
{
    gram__model_file m;
    gram__model_file_init(&m, "gp");
    double x[2] = {1, 2};
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "a", 1), GRAM_OK);
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "a", 2), GRAM_EINVAL);
    CHECK(has(msg(), "gp: entry 'a' already exists"), "duplicate: %s", msg());
    CHECK_STATUS(gram__model_add_f64(ctx, &m, "a", x, 1, 2), GRAM_EINVAL);
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "", 1), GRAM_EINVAL);
    CHECK_STATUS(gram__model_add_i64(ctx, &m, NULL, 1), GRAM_EINVAL);
    char longname[300];
    memset(longname, 'n', sizeof longname);
    longname[256] = '\0';
    CHECK_STATUS(gram__model_add_i64(ctx, &m, longname, 1), GRAM_EINVAL);
    longname[255] = '\0';
    CHECK_STATUS(gram__model_add_i64(ctx, &m, longname, 1), GRAM_OK); /* 255 bytes is the limit */
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "bad\nname", 1), GRAM_EINVAL);
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "bad\xff", 1), GRAM_EINVAL);
    CHECK_STATUS(gram__model_add_str(ctx, &m, "s", "\xc0\x80"), GRAM_EINVAL); /* overlong NUL */
    CHECK_STATUS(gram__model_add_str(ctx, &m, "s", "\xed\xa0\x80"), GRAM_EINVAL); /* surrogate */
    CHECK_STATUS(gram__model_add_str(ctx, &m, "s", "\xe2\x82"), GRAM_EINVAL);     /* cut short */
    CHECK_STATUS(gram__model_add_str(ctx, &m, "s", NULL), GRAM_EINVAL);
    CHECK_STATUS(gram__model_add_f64(ctx, &m, "f", x, -1, 2), GRAM_EINVAL);
    CHECK_STATUS(gram__model_add_f64(ctx, &m, "f", NULL, 1, 2), GRAM_EINVAL);
    CHECK_STATUS(gram__model_add_f64(ctx, &m, "f", x, INT64_MAX, 2), GRAM_EOVERFLOW);
    CHECK_STATUS(gram__model_add_f64(ctx, &m, "f", x, (int64_t)1 << 61, 1), GRAM_EOVERFLOW);
    CHECK_STATUS(gram__model_add_i64(ctx, NULL, "z", 1), GRAM_EINVAL);
    CHECK(m.n == 2, "failed adds leave the model as it was (%lld entries)", (long long)m.n);

    /* A rejected save leaves an existing file alone. */
    const char *p = check_tpath("keep.gram");
    CHECK_STATUS(gram__model_save(ctx, p, &m), GRAM_OK);
    gram__model_file bad;
    gram__model_file_init(&bad, "a-kind-that-is-too-long");
    CHECK(bad.kind[0] == '\0', "too long a kind is dropped");
    CHECK_STATUS(gram__model_save(ctx, p, &bad), GRAM_EINVAL);
    CHECK(has(msg(), "kind"), "bad kind: %s", msg());
    gram__model_file_init(&bad, NULL);
    unsigned char *buf = NULL;
    size_t size = 1;
    CHECK_STATUS(gram__model_to_bytes(ctx, &bad, &buf, &size), GRAM_EINVAL);
    CHECK(buf == NULL && size == 0, "no buffer on failure");
    gram__model_file_init(&bad, "has space");
    CHECK_STATUS(gram__model_to_bytes(ctx, &bad, &buf, &size), GRAM_EINVAL);
    gram__model_file back;
    CHECK_STATUS(gram__model_load(ctx, p, "gp", &back), GRAM_OK);
    CHECK(models_equal(&m, &back), "existing file kept");
    gram__model_file_free(&back);

    /* An entry list edited by hand into a duplicate is refused rather than written. */
    char *saved = m.entries[1].name;
    m.entries[1].name = m.entries[0].name;
    CHECK_STATUS(gram__model_to_bytes(ctx, &m, &buf, &size), GRAM_EINVAL);
    CHECK(has(msg(), "appears twice"), "hand-made duplicate: %s", msg());
    m.entries[1].name = saved;
    gram__model_file_free(&m);
    gram__model_file_free(&m); /* twice is harmless */
}

static void test_lookup_errors(void)
{
    gram__model_file m;
    gram__model_file_init(&m, "gp");
    double x[2] = {1, 2};
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "n", 3), GRAM_OK);
    CHECK_STATUS(gram__model_add_str(ctx, &m, "s", "x"), GRAM_OK);
    CHECK_STATUS(gram__model_add_f64(ctx, &m, "X", x, 2, 1), GRAM_OK);
    int64_t v;
    const char *s;
    const double *d;
    int64_t r, c;
    CHECK_STATUS(gram__model_get_i64(ctx, &m, "model.gram", "alpha", &v), GRAM_EFORMAT);
    CHECK(strcmp(msg(), "model.gram: entry 'alpha' is missing") == 0, "missing: %s", msg());
    CHECK_STATUS(gram__model_get_f64(ctx, &m, "model.gram", "n", &d, &r, &c), GRAM_EFORMAT);
    CHECK(strcmp(msg(), "model.gram: entry 'n' is not a matrix") == 0, "not a matrix: %s", msg());
    CHECK_STATUS(gram__model_get_i64(ctx, &m, "model.gram", "X", &v), GRAM_EFORMAT);
    CHECK(has(msg(), "entry 'X' is not an integer"), "not an integer: %s", msg());
    CHECK_STATUS(gram__model_get_str(ctx, &m, "model.gram", "X", &s), GRAM_EFORMAT);
    CHECK(has(msg(), "entry 'X' is not a string"), "not a string: %s", msg());
    CHECK_STATUS(gram__model_get_str(ctx, &m, "model.gram", "s", NULL), GRAM_EINVAL);
    CHECK_STATUS(gram__model_get_i64(ctx, NULL, "w", "n", &v), GRAM_EINVAL);
    CHECK_STATUS(gram__model_get_i64(ctx, &m, NULL, "zz", &v), GRAM_EFORMAT);
    CHECK(has(msg(), "gp: entry 'zz' is missing"), "default where: %s", msg());
    gram__model_file_free(&m);
}

/* The bytes of the sample model. */
static unsigned char *sample_bytes(size_t *size)
{
    gram__model_file m;
    build_sample(&m, "gp");
    unsigned char *buf = NULL;
    CHECK_STATUS(gram__model_to_bytes(ctx, &m, &buf, size), GRAM_OK);
    gram__model_file_free(&m);
    return buf;
}

/* Every single-byte change anywhere, and every truncation, is refused with EFORMAT. */
static void test_damage(void)
{
    size_t size = 0;
    unsigned char *good = sample_bytes(&size);
    unsigned char *b = malloc(size);
    gram__model_file out;
    static const unsigned char masks[] = {0x01, 0x80, 0xff, 0x10};
    int wrong_status = 0, wrong_msg = 0, not_empty = 0;
    for (size_t i = 0; i < size; i++) {
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(b, good, size);
            b[i] ^= masks[k];
            gram_status st = gram__model_from_bytes(ctx, "dmg.gram", b, size, "gp", &out);
            if (st != GRAM_EFORMAT) wrong_status++;
            if (!is_empty(&out)) not_empty++;
            const char *m = msg();
            int ok = starts(m, "dmg.gram: ");
            if (i < 8) ok = ok && has(m, "not a gram model file");
            else if (i < 12) ok = ok && has(m, "format version");
            else if ((i >= 16 && i < 56) || i >= 64) ok = ok && has(m, "corrupted: checksum mismatch");
            else ok = ok && (has(m, "checksum mismatch") || has(m, "truncated"));
            if (!ok && wrong_msg++ < 5) CHECK(0, "flip at %zu: %s", i, m);
            gram__model_file_free(&out);
        }
    }
    CHECK(wrong_status == 0, "%d single-byte changes were not EFORMAT", wrong_status);
    CHECK(wrong_msg == 0, "%d single-byte changes gave an unexpected message", wrong_msg);
    CHECK(not_empty == 0, "%d failures left entries behind", not_empty);

    wrong_status = wrong_msg = 0;
    for (size_t n = 0; n < size; n++) {
        /* A fresh allocation of exactly n bytes, so ASan sees any read past the end. */
        unsigned char *t = n ? malloc(n) : NULL;
        if (n) memcpy(t, good, n);
        gram_status st = gram__model_from_bytes(ctx, "cut.gram", t, n, "gp", &out);
        if (st != GRAM_EFORMAT) wrong_status++;
        int ok = starts(msg(), "cut.gram: ") && has(msg(), n == 0 ? "empty" : "truncated");
        if (!ok && wrong_msg++ < 5) CHECK(0, "truncated to %zu: %s", n, msg());
        gram__model_file_free(&out);
        free(t);
    }
    CHECK(wrong_status == 0, "%d truncations were not EFORMAT", wrong_status);
    CHECK(wrong_msg == 0, "%d truncations gave an unexpected message", wrong_msg);

    /* Through real files: one byte flipped in each region, and a few truncations. */
    const char *p = check_tpath("dmg.gram");
    static const size_t regions[] = {0, 8, 12, 16, 32, 48, 56, 64, 66, 70, 75, 200};
    for (size_t k = 0; k < sizeof regions / sizeof *regions; k++) {
        memcpy(b, good, size);
        b[regions[k]] ^= 0x5a;
        check_put_file(p, b, size);
        CHECK_STATUS(gram__model_load(ctx, p, "gp", &out), GRAM_EFORMAT);
        CHECK(starts(msg(), p), "message names the file: %s", msg());
        gram__model_file_free(&out);
    }
    memcpy(b, good, size);
    b[size - 1] ^= 1;
    check_put_file(p, b, size);
    CHECK_STATUS(gram__model_load(ctx, p, "gp", &out), GRAM_EFORMAT);
    CHECK(has(msg(), "corrupted: checksum mismatch"), "crc flip: %s", msg());
    static const size_t cuts[] = {0, 5, 8, 11, 40, 67, 68, 100};
    for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
        check_put_file(p, good, cuts[k]);
        CHECK_STATUS(gram__model_load(ctx, p, "gp", &out), GRAM_EFORMAT);
        CHECK(starts(msg(), p), "truncated file: %s", msg());
    }
    check_put_file(p, good, size - 1);
    CHECK_STATUS(gram__model_load(ctx, p, "gp", &out), GRAM_EFORMAT);
    CHECK(has(msg(), "truncated"), "one byte short: %s", msg());
    check_put_file(p, "hello, world\n", 13);
    CHECK_STATUS(gram__model_load(ctx, p, "gp", &out), GRAM_EFORMAT);
    CHECK(has(msg(), "not a gram model file"), "text file: %s", msg());
    unlink(p);

    /* Trailing bytes after the checksum: the checksum no longer matches. */
    unsigned char *longer = malloc(size + 3);
    memcpy(longer, good, size);
    memset(longer + size, 0, 3);
    CHECK_STATUS(gram__model_from_bytes(ctx, "long.gram", longer, size + 3, "gp", &out), GRAM_EFORMAT);
    /* ... and with the checksum recomputed, the sizes disagree. */
    fix_crc(longer, size + 3);
    CHECK_STATUS(gram__model_from_bytes(ctx, "long.gram", longer, size + 3, "gp", &out), GRAM_EFORMAT);
    CHECK(has(msg(), "header says"), "extra bytes: %s", msg());
    free(longer);
    free(b);
    free(good);
}

static void test_versions_and_kinds(void)
{
    size_t size = 0;
    unsigned char *good = sample_bytes(&size);
    unsigned char *b = malloc(size);
    gram__model_file out;

    /* A newer format: the version message wins over the checksum, recomputed or not. */
    for (int fix = 0; fix < 2; fix++) {
        memcpy(b, good, size);
        set_uint(b + 8, 2, 4);
        if (fix) fix_crc(b, size);
        CHECK_STATUS(gram__model_from_bytes(ctx, "new.gram", b, size, "gp", &out), GRAM_EFORMAT);
        CHECK(has(msg(), "new.gram: format version 2 is newer than this gram supports (1); upgrade gram"), "newer: %s",
              msg());
        CHECK(has(msg(), "written by gram "), "newer names the writer: %s", msg());
    }
    /* Even a newer file whose layout after the version is unknown, and short. */
    bytes s = b_header(7, "gp", "3.0.0");
    CHECK_STATUS(gram__model_from_bytes(ctx, "v7.gram", s.b, 20, "gp", &out), GRAM_EFORMAT);
    CHECK(has(msg(), "format version 7 is newer") && !has(msg(), "written by"), "short newer file: %s", msg());
    CHECK_STATUS(gram__model_from_bytes(ctx, "v7.gram", s.b, s.n, "gp", &out), GRAM_EFORMAT);
    CHECK(has(msg(), "written by gram 3.0.0"), "newer with writer: %s", msg());
    set_uint(s.b + 8, 0xFFFFFFFFu, 4);
    CHECK_STATUS(gram__model_from_bytes(ctx, "vmax.gram", s.b, s.n, "gp", &out), GRAM_EFORMAT);
    CHECK(has(msg(), "format version 4294967295 is newer"), "max version: %s", msg());
    set_uint(s.b + 8, 0, 4);
    CHECK_STATUS(gram__model_from_bytes(ctx, "v0.gram", s.b, s.n, "gp", &out), GRAM_EFORMAT);
    CHECK(has(msg(), "format version 0 is not valid"), "version 0: %s", msg());
    free(s.b);

    /* The same through a file. */
    memcpy(b, good, size);
    set_uint(b + 8, 2, 4);
    fix_crc(b, size);
    const char *p = check_tpath("v2.gram");
    check_put_file(p, b, size);
    CHECK_STATUS(gram__model_load(ctx, p, "gp", &out), GRAM_EFORMAT);
    CHECK(starts(msg(), p) && has(msg(), "format version 2 is newer than this gram supports (1); upgrade gram"),
          "newer file: %s", msg());
    unlink(p);

    /* The wrong kind. */
    gram__model_file m;
    gram__model_file_init(&m, "krr");
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "n", 1), GRAM_OK);
    p = check_tpath("k.gram");
    CHECK_STATUS(gram__model_save(ctx, p, &m), GRAM_OK);
    CHECK_STATUS(gram__model_load(ctx, p, "gp", &out), GRAM_EFORMAT);
    char want[600];
    snprintf(want, sizeof want, "%s: is a krr model, expected gp", p);
    CHECK(strcmp(msg(), want) == 0, "wrong kind: %s", msg());
    CHECK(is_empty(&out), "wrong kind leaves out empty");
    CHECK_STATUS(gram__model_load(ctx, p, "krr", &out), GRAM_OK);
    gram__model_file_free(&out);
    gram__model_file_free(&m);
    unlink(p);
    free(b);
    free(good);
}

/* Files with a valid checksum whose contents lie: each must be refused before anything large is
 * allocated (ASan would report an allocation of exabytes as an error, and RLIMIT-free runs would
 * show them as a hang). */
static void test_lies(void)
{
    gram__model_file out;
#define EXPECT_LIE(buildexpr, needle)                                                              \
    do {                                                                                           \
        bytes s_ = b_header(1, "gp", "0.1.0");                                                     \
        bytes *s = &s_;                                                                            \
        uint64_t count_ = 1;                                                                       \
        buildexpr;                                                                                 \
        b_finish(s, count_);                                                                       \
        CHECK_STATUS(gram__model_from_bytes(ctx, "lie.gram", s->b, s->n, "gp", &out), GRAM_EFORMAT); \
        CHECK(starts(msg(), "lie.gram: ") && has(msg(), needle), "%s: %s", #buildexpr, msg());    \
        CHECK(is_empty(&out), "lie leaves out empty");                                             \
        free(s_.b);                                                                                \
    } while (0)

    /* Entry counts. */
    EXPECT_LIE((b_name(s, "n", 1), b_uint(s, 1, 8), count_ = (uint64_t)1 << 62), "entries cannot fit");
    EXPECT_LIE((b_name(s, "n", 1), b_uint(s, 1, 8), count_ = UINT64_MAX), "entries cannot fit");
    EXPECT_LIE((b_name(s, "n", 1), b_uint(s, 1, 8), b_name(s, "m", 1), b_uint(s, 2, 8)), "follow the last entry");
    EXPECT_LIE((b_name(s, "n", 1), b_uint(s, 1, 8), b_name(s, "m", 1), b_uint(s, 2, 8), count_ = 3), "cannot fit");
    EXPECT_LIE((b_name(s, "a", 2), b_uint(s, 10, 8), b_put(s, "0123456789", 10), b_name(s, "b", 2), b_uint(s, 10, 8),
                b_put(s, "0123456789", 10), count_ = 3),
               "truncated before its name");
    EXPECT_LIE((b_name(s, "n", 1), b_uint(s, 1, 8), b_name(s, "n", 1), b_uint(s, 2, 8), count_ = 2), "appears twice");
    /* Names. */
    EXPECT_LIE((b_uint(s, 0xFFFFFFFFu, 4), b_put(s, "abcdefghijklmnopqrstu", 21)), "name length");
    EXPECT_LIE((b_uint(s, 200, 4), b_put(s, "abcdefghijklmnopqrstu", 21)), "exceeds the payload");
    EXPECT_LIE((b_uint(s, 0, 4), b_uint(s, 1, 4), b_uint(s, 1, 8), b_uint(s, 0, 4)), "name length 0");
    EXPECT_LIE((b_name(s, "a\001", 1), b_uint(s, 1, 8)), "not UTF-8");
    EXPECT_LIE((b_name(s, "a\xff", 1), b_uint(s, 1, 8)), "not UTF-8");
    /* Types. */
    EXPECT_LIE((b_name(s, "n", 4), b_uint(s, 1, 8)), "unknown type 4");
    EXPECT_LIE((b_name(s, "n", 0), b_uint(s, 1, 8)), "unknown type 0");
    EXPECT_LIE((b_name(s, "abcdefghij", 1), b_uint(s, 1, 4)), "truncated integer");
    /* Strings. */
    EXPECT_LIE((b_name(s, "s", 2), b_uint(s, UINT64_MAX, 8), b_put(s, "abcd", 4)), "string length");
    EXPECT_LIE((b_name(s, "s", 2), b_uint(s, (uint64_t)1 << 63, 8), b_put(s, "abcd", 4)), "string length");
    EXPECT_LIE((b_name(s, "s", 2), b_uint(s, 5, 8), b_put(s, "abcd", 4)), "string length 5");
    EXPECT_LIE((b_name(s, "s", 2), b_uint(s, 3, 8), b_put(s, "a\0b", 3)), "not UTF-8");
    EXPECT_LIE((b_name(s, "s", 2), b_uint(s, 2, 8), b_put(s, "\xc3\x28", 2)), "not UTF-8");
    /* Matrices. */
    EXPECT_LIE((b_name(s, "X", 3), b_uint(s, (uint64_t)1 << 32, 8), b_uint(s, (uint64_t)1 << 32, 8)), "exceeds");
    EXPECT_LIE((b_name(s, "X", 3), b_uint(s, UINT64_MAX, 8), b_uint(s, 0, 8)), "exceeds");
    EXPECT_LIE((b_name(s, "X", 3), b_uint(s, 0, 8), b_uint(s, UINT64_MAX, 8)), "exceeds");
    EXPECT_LIE((b_name(s, "X", 3), b_uint(s, 1, 8), b_uint(s, (uint64_t)1 << 61, 8), b_uint(s, 0, 8)), "exceeds");
    EXPECT_LIE((b_name(s, "X", 3), b_uint(s, (uint64_t)1 << 62, 8), b_uint(s, 4, 8)), "exceeds");
    EXPECT_LIE((b_name(s, "X", 3), b_uint(s, 2, 8), b_uint(s, 2, 8), b_uint(s, 0, 8), b_uint(s, 0, 8),
                b_uint(s, 0, 8)),
               "exceeds");
    EXPECT_LIE((b_name(s, "X", 3), b_uint(s, 2, 8)), "truncated matrix shape");
    /* Header fields (with a valid checksum). */
    EXPECT_LIE((b_name(s, "n", 1), b_uint(s, 1, 8), memset(s->b + 16, 0, 16)), "kind field");
    EXPECT_LIE((b_name(s, "n", 1), b_uint(s, 1, 8), memset(s->b + 16, 'k', 16)), "kind field");
    EXPECT_LIE((b_name(s, "n", 1), b_uint(s, 1, 8), s->b[16] = ' '), "kind field");
    EXPECT_LIE((b_name(s, "n", 1), b_uint(s, 1, 8), s->b[20] = 'x'), "kind field"); /* text after the NUL */
    EXPECT_LIE((b_name(s, "n", 1), b_uint(s, 1, 8), s->b[33] = '\n'), "writer field");
#undef EXPECT_LIE

    /* Sizes in the header that disagree with the file, checksum valid. */
    bytes s = b_header(1, "gp", "0.1.0");
    b_name(&s, "n", 1);
    b_uint(&s, 1, 8);
    b_finish(&s, 1);
    unsigned char *b = malloc(s.n);
    static const uint64_t payloads[] = {0, 16, 18, 1000, UINT64_MAX, UINT64_MAX - 60};
    for (size_t k = 0; k < sizeof payloads / sizeof *payloads; k++) {
        memcpy(b, s.b, s.n);
        set_uint(b + 56, payloads[k], 8);
        fix_crc(b, s.n);
        CHECK_STATUS(gram__model_from_bytes(ctx, "size.gram", b, s.n, "gp", &out), GRAM_EFORMAT);
        CHECK(has(msg(), "header says"), "payload %llu: %s", (unsigned long long)payloads[k], msg());
    }
    static const uint32_t headers[] = {0, 63, 65, 1000, 0xFFFFFFFFu};
    for (size_t k = 0; k < sizeof headers / sizeof *headers; k++) {
        memcpy(b, s.b, s.n);
        set_uint(b + 12, headers[k], 4);
        fix_crc(b, s.n);
        CHECK_STATUS(gram__model_from_bytes(ctx, "hs.gram", b, s.n, "gp", &out), GRAM_EFORMAT);
        CHECK(starts(msg(), "hs.gram: "), "header size %u: %s", headers[k], msg());
    }
    free(b);
    free(s.b);
}

/* Random damage with the checksum recomputed reaches every parser path; anything may come back
 * but EFORMAT or OK, and ASan checks that no byte outside the buffer is read. */
static void test_fuzz(void)
{
    size_t size = 0;
    unsigned char *good = sample_bytes(&size);
    unsigned char *b = malloc(size);
    check_rng r = {2024};
    int bad = 0, accepted = 0;
    gram__model_file out;
    for (int it = 0; it < 20000; it++) {
        memcpy(b, good, size);
        int flips = (int)check_int(&r, 1, 4);
        for (int f = 0; f < flips; f++) {
            size_t at = (size_t)check_int(&r, 12, (int64_t)size - 5);
            uint64_t u = check_u64(&r);
            /* sometimes a whole 8-byte field with a huge value, sometimes one byte */
            if ((u & 3) == 0 && at + 8 <= size - 4) set_uint(b + at, u >> 2, 8);
            else b[at] = (unsigned char)(u >> 8);
        }
        size_t n = size;
        if (check_int(&r, 0, 3) == 0) n = (size_t)check_int(&r, 68, (int64_t)size);
        unsigned char *t = malloc(n);
        memcpy(t, b, n);
        fix_crc(t, n);
        gram_status st = gram__model_from_bytes(ctx, "fz.gram", t, n, NULL, &out);
        if (st == GRAM_OK) accepted++;
        else if (st != GRAM_EFORMAT || !is_empty(&out)) bad++;
        gram__model_file_free(&out);
        free(t);
    }
    CHECK(bad == 0, "%d fuzzed inputs gave a status other than OK / EFORMAT", bad);
    CHECK(accepted < 20000, "some fuzzed inputs were refused");
    free(b);
    free(good);
}


/* ---- the reader: header first ------------------------------------------------------------------ */

/* A pipe holding n bytes of b whose write end stays open (returned) and whose read end (*r) does not
 * block: a reader that wants more than the header allows gets EAGAIN (GRAM_EIO) instead. */
static int open_pipe(const void *b, size_t n, int *r)
{
    int p[2];
    if (pipe(p) != 0) return -1;
    if (n && write(p[1], b, n) != (ssize_t)n) return -1;
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    *r = p[0];
    return p[1];
}

static void test_reader(void)
{
    size_t size = 0;
    unsigned char *good = sample_bytes(&size), *buf = NULL;
    size_t n = 0;
    int r, w;

    /* Zeros: refused after the magic, although the stream never ends. */
    unsigned char zeros[4096] = {0};
    w = open_pipe(zeros, sizeof zeros, &r);
    CHECK(gram__model_read_fd(ctx, "z", r, 0, &buf, &n) == GRAM_OK && n == 8, "zeros: %zu bytes read", n);
    gram__model_file out;
    CHECK(gram__model_from_bytes(ctx, "z", buf, n, "gp", &out) == GRAM_EFORMAT && has(msg(), "not a gram model file"),
          "zeros: %s", msg());
    gram__free(buf);
    close(r);
    close(w);
    /* ... and through gram__model_load on standard input. */
    w = open_pipe(zeros, sizeof zeros, &r);
    int saved = dup(0);
    dup2(r, 0);
    close(r);
    gram_status st = gram__model_load(ctx, "-", "gp", &out);
    dup2(saved, 0);
    close(saved);
    close(w);
    CHECK(st == GRAM_EFORMAT && has(msg(), "<stdin>: not a gram model file"), "zeros on stdin: %d %s", st, msg());

    /* A header that declares more than the limit: refused before the payload is read. */
    unsigned char *lie = malloc(size);
    memcpy(lie, good, size);
    set_uint(lie + 56, (uint64_t)1 << 40, 8);
    w = open_pipe(lie, 64, &r);
    CHECK(gram__model_read_fd(ctx, "lie", r, (int64_t)1 << 20, &buf, &n) == GRAM_EOVERFLOW &&
              has(msg(), "lie: the header declares a file of 1099511627844 bytes, more than the limit of 1048576"),
          "declared over the limit: %s", msg());
    close(r);
    close(w);

    /* The whole file on a stream that stays open: read to the declared size and not one byte
     * more (the next read would block); then one byte more is refused. */
    w = open_pipe(good, size, &r);
    CHECK(gram__model_read_fd(ctx, "s", r, 0, &buf, &n) == GRAM_EIO, "reader asks for one byte past the end");
    close(r);
    close(w);
    w = open_pipe(good, size, &r);
    close(w); /* now it ends */
    CHECK(gram__model_read_fd(ctx, "s", r, 0, &buf, &n) == GRAM_OK && n == size && !memcmp(buf, good, size),
          "exact stream: %s", msg());
    CHECK_STATUS(gram__model_from_bytes(ctx, "s", buf, n, "gp", &out), GRAM_OK);
    gram__model_file_free(&out);
    gram__free(buf);
    close(r);
    unsigned char *more = malloc(size + 1);
    memcpy(more, good, size);
    more[size] = 0;
    w = open_pipe(more, size + 1, &r);
    close(w);
    CHECK(gram__model_read_fd(ctx, "s", r, 0, &buf, &n) == GRAM_EFORMAT && has(msg(), "continues past the"),
          "stream past its size: %s", msg());
    close(r);
    free(more);
    /* A stream cut short: the parser calls it truncated. */
    w = open_pipe(good, size - 10, &r);
    close(w);
    CHECK(gram__model_read_fd(ctx, "s", r, 0, &buf, &n) == GRAM_OK && n == size - 10, "short stream read");
    CHECK(gram__model_from_bytes(ctx, "s", buf, n, "gp", &out) == GRAM_EFORMAT && has(msg(), "truncated"),
          "short stream: %s", msg());
    gram__free(buf);
    close(r);

    /* Sparse files of 2^40 bytes (no disk used): zeros are not a model; a model header claiming
     * all of it is over the machine's memory. Neither allocates anything of that size. */
    const char *p = check_tpath("sparse.gram");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int sparse = fd >= 0 && ftruncate(fd, (off_t)1 << 40) == 0;
    if (fd >= 0) close(fd);
    if (sparse && gram__io_physical_memory() < ((int64_t)1 << 40)) {
        CHECK(gram__model_load(ctx, p, "gp", &out) == GRAM_EFORMAT && has(msg(), "not a gram model file"),
              "sparse zeros: %s", msg());
        set_uint(lie + 56, ((uint64_t)1 << 40) - 68, 8);
        fd = open(p, O_WRONLY);
        CHECK(fd >= 0 && write(fd, lie, 64) == 64, "header written");
        if (fd >= 0) close(fd);
        CHECK(gram__model_load(ctx, p, "gp", &out) == GRAM_EOVERFLOW && has(msg(), "more than the limit"),
              "sparse model: %s", msg());
    } else {
        printf("note: no sparse 2^40-byte file here (or as much memory); that case is not tested\n");
    }
    unlink(p);
    free(lie);
    free(good);
}

static void test_io_errors(void)
{
    gram__model_file m, out;
    gram__model_file_init(&m, "gp");
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "n", 1), GRAM_OK);

    /* A directory that does not exist: EIO, nothing created anywhere. */
    int before = count_files(check_tmpdir, NULL);
    const char *p = check_tpath("no-such-dir/m.gram");
    CHECK_STATUS(gram__model_save(ctx, p, &m), GRAM_EIO);
    CHECK(starts(msg(), p) && has(msg(), strerror(ENOENT)), "missing dir: %s", msg());
    struct stat sb;
    CHECK(stat(check_tpath("no-such-dir"), &sb) != 0, "directory not created");
    CHECK(count_files(check_tmpdir, NULL) == before, "nothing left behind");

    CHECK_STATUS(gram__model_load(ctx, check_tpath("absent.gram"), "gp", &out), GRAM_EIO);
    CHECK(has(msg(), strerror(ENOENT)) && has(msg(), "absent.gram"), "missing file: %s", msg());
    CHECK(is_empty(&out), "failed load leaves out empty");
    CHECK_STATUS(gram__model_load(ctx, check_tmpdir, "gp", &out), GRAM_EIO);
    CHECK(has(msg(), "is a directory"), "directory: %s", msg());
    /* Renaming onto a directory fails after the temporary file was written (next to check_tmpdir,
     * in its parent): the temporary file must go. */
    char parent[256], prefix[300];
    snprintf(parent, sizeof parent, "%s", check_tmpdir);
    char *slash = strrchr(parent, '/');
    if (slash) *slash = '\0';
    snprintf(prefix, sizeof prefix, "%s.tmp.", slash ? slash + 1 : check_tmpdir);
    CHECK_STATUS(gram__model_save(ctx, check_tmpdir, &m), GRAM_EIO);
    CHECK(count_files(slash && parent[0] ? parent : "/", prefix) == 0, "failed rename leaves no temporary file");
    CHECK_STATUS(gram__model_save(ctx, NULL, &m), GRAM_EINVAL);
    CHECK_STATUS(gram__model_load(ctx, NULL, "gp", &out), GRAM_EINVAL);
    CHECK_STATUS(gram__model_load(ctx, p, "gp", NULL), GRAM_EINVAL);
    CHECK_STATUS(gram__model_from_bytes(ctx, "x", NULL, 5, "gp", &out), GRAM_EINVAL);
    CHECK_STATUS(gram__model_from_bytes(ctx, "x", NULL, 0, "gp", &out), GRAM_EFORMAT);
    gram__model_file_free(&m);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(check_tmpdir, sizeof check_tmpdir, "%s/gram_model_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(check_tmpdir)) {
        fprintf(stderr, "cannot create a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    gram_context_create(&ctx);
    test_crc();
    test_layout();
    test_round_trip();
    test_build_errors();
    test_lookup_errors();
    test_damage();
    test_versions_and_kinds();
    test_lies();
    test_fuzz();
    test_reader();
    test_io_errors();
    gram_context_destroy(ctx);

    DIR *d = opendir(check_tmpdir);
    struct dirent *e;
    char path[600];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", check_tmpdir, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(check_tmpdir);
    return check_done();
}
