/* io: .npy and CSV readers and writers. The .npy inputs are built here byte by byte from the
 * format's specification (not with the writer under test); round trips must be bit-exact; every
 * malformed case must give its status and a message naming the file; the locale must not matter;
 * writes go through a temporary name and never leave a partial or clobbered file. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE 1 /* mknod, makedev, setitimer, usleep */

#include "check.h"
#include "io/io.h"
#include "io/model_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static gram_context *ctx;

static const char *msg(void) { return gram_context_message(ctx); }
static int has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }


/* The file's bytes (malloc'd, NUL-terminated); NULL if it cannot be read. */
static char *get_file(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    size_t cap = 4096, len = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        if (len == cap) b = realloc(b, (cap *= 2) + 1);
        ssize_t r = read(fd, b + len, cap - len);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    b[len] = '\0';
    if (n) *n = len;
    return b;
}

static int count_temp_files(void)
{
    DIR *d = opendir(check_tmpdir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---- .npy bytes by the specification ------------------------------------------------------- */

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
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

/* Prelude and header for a dict text; padded to 64 bytes and ended by '\n' unless raw. */
static bytes npy_head(int major, const char *dict, int raw)
{
    bytes s = {0};
    size_t lensize = major == 1 ? 2 : 4, dl = strlen(dict);
    size_t hlen = raw ? dl : ((6 + 2 + lensize + dl + 1 + 63) / 64 * 64 - (6 + 2 + lensize));
    unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    for (size_t i = 0; i < lensize; i++) pre[8 + i] = (unsigned char)(hlen >> (8 * i));
    b_put(&s, pre, 8 + lensize);
    b_put(&s, dict, dl);
    for (size_t i = dl; i + 1 < hlen; i++) b_put(&s, " ", 1);
    if (!raw) b_put(&s, "\n", 1);
    return s;
}

static void put_uint(bytes *s, uint64_t v, int size, int big)
{
    unsigned char b[8];
    for (int i = 0; i < size; i++) b[big ? size - 1 - i : i] = (unsigned char)(v >> (8 * i));
    b_put(s, b, (size_t)size);
}

typedef struct dtype_case {
    const char *descr;
    char kind; /* f, i, u */
    int size, big;
} dtype_case;

static const dtype_case DTYPES[] = {
    {"<f8", 'f', 8, 0}, {">f8", 'f', 8, 1}, {"<f4", 'f', 4, 0}, {">f4", 'f', 4, 1}, {"<i1", 'i', 1, 0},
    {"|i1", 'i', 1, 0}, {"<i2", 'i', 2, 0}, {">i2", 'i', 2, 1}, {"<i4", 'i', 4, 0}, {">i4", 'i', 4, 1},
    {"<i8", 'i', 8, 0}, {">i8", 'i', 8, 1}, {"|u1", 'u', 1, 0}, {"<u1", 'u', 1, 0}, {"<u2", 'u', 2, 0},
    {">u2", 'u', 2, 1}, {"<u4", 'u', 4, 0}, {">u4", 'u', 4, 1}, {"<u8", 'u', 8, 0}, {">u8", 'u', 8, 1},
};
#define N_DTYPES (int)(sizeof DTYPES / sizeof DTYPES[0])

/* Element k of a test array of this dtype: its raw bits (two's complement / IEEE) and the double
 * the reader must produce. The first values are the type's extremes. */
static uint64_t dt_value(const dtype_case *t, int64_t k, check_rng *r, double *want)
{
    if (t->kind == 'f') {
        static const double special[] = {0.1, -0.0, 1e-300, -1.5, 4.9406564584124654e-324, 1e300};
        double v = k < 6 ? special[k] : check_normal(r) * pow(10.0, (double)check_int(r, -30, 30));
        if (t->size == 8) {
            uint64_t u;
            memcpy(&u, &v, 8);
            *want = v;
            return u;
        }
        float f = (float)v;
        if (k == 4) f = 1.40129846e-45f; /* the float32 denormal minimum */
        uint32_t u;
        memcpy(&u, &f, 4);
        *want = f;
        return u;
    }
    int bits = 8 * t->size;
    if (t->kind == 'u') {
        uint64_t max = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
        uint64_t v = k == 0 ? max : k == 1 ? 0 : k == 2 ? 1 : check_u64(r) & max;
        *want = (double)v;
        return v;
    }
    int64_t min = bits == 64 ? INT64_MIN : -((int64_t)1 << (bits - 1));
    int64_t max = bits == 64 ? INT64_MAX : ((int64_t)1 << (bits - 1)) - 1;
    int64_t v = k == 0 ? min : k == 1 ? max : k == 2 ? -1 : k == 3 ? 0 : (int64_t)(check_u64(r) >> (65 - bits)) - (k & 1 ? max / 2 : 0);
    if (v < min) v = min;
    if (v > max) v = max;
    *want = (double)v;
    uint64_t mask = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
    return (uint64_t)v & mask;
}

/* A whole .npy file for dtype t and shape (rows, cols) (ndim 1 or 2) in the given order; want
 * receives the row-major values expected. */
static bytes npy_build(const dtype_case *t, int major, int ndim, int64_t rows, int64_t cols, int fortran,
                       double *want, uint64_t seed)
{
    char dict[256];
    char shape[64];
    if (ndim == 1) snprintf(shape, sizeof shape, "(%lld,)", (long long)rows);
    else snprintf(shape, sizeof shape, "(%lld, %lld)", (long long)rows, (long long)cols);
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", t->descr,
             fortran ? "True" : "False", shape);
    bytes s = npy_head(major, dict, 0);
    check_rng r = {seed};
    /* Values are generated in row-major order, then written in the file's order. */
    uint64_t *raw = malloc((size_t)(rows * cols) * sizeof *raw);
    for (int64_t k = 0; k < rows * cols; k++) raw[k] = dt_value(t, k, &r, &want[k]);
    if (fortran)
        for (int64_t j = 0; j < cols; j++)
            for (int64_t i = 0; i < rows; i++) put_uint(&s, raw[i * cols + j], t->size, t->big);
    else
        for (int64_t k = 0; k < rows * cols; k++) put_uint(&s, raw[k], t->size, t->big);
    free(raw);
    return s;
}

static int matrix_equals(const gram__matrix *m, int64_t rows, int64_t cols, const double *want)
{
    if (m->rows != rows || m->cols != cols || !m->data) return 0;
    for (int64_t k = 0; k < rows * cols; k++)
        if (!same_bits(m->data[k], want[k]) && !(isnan(m->data[k]) && isnan(want[k]))) return 0;
    return 1;
}

/* Reads b from standard input through a pipe filled by a child process. */
static gram_status read_via_pipe(const void *b, size_t n, const gram__read_opts *o, gram__matrix *m)
{
    int pfd[2];
    if (pipe(pfd) != 0) return GRAM_EINTERNAL;
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        const char *p = b;
        while (n > 0) {
            ssize_t w = write(pfd[1], p, n);
            if (w <= 0) _exit(1);
            p += w, n -= (size_t)w;
        }
        _exit(0);
    }
    close(pfd[1]);
    int saved = dup(0);
    dup2(pfd[0], 0);
    close(pfd[0]);
    gram_status st = gram__read_matrix(ctx, "-", o, m);
    dup2(saved, 0);
    close(saved);
    waitpid(pid, NULL, 0);
    return st;
}

/* ---- numbers ------------------------------------------------------------------------------- */

static void test_numbers(void)
{
    char b[64];
    struct {
        double v;
        const char *s;
    } F[] = {{0.1, "0.10000000000000001"}, {1.0, "1"}, {-0.0, "-0"}, {0.0, "0"}, {2.5, "2.5"},
             {1e300, "1.0000000000000001e+300"}, {-1e-300, "-1e-300"}, {1.0 / 3, "0.33333333333333331"}, {INFINITY, "inf"},
             {-INFINITY, "-inf"}, {NAN, "nan"}, {-NAN, "nan"}, {123456789012345678.0, "1.2345678901234568e+17"}};
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++) {
        int n = gram__format_double(b, sizeof b, F[i].v);
        CHECK(strcmp(b, F[i].s) == 0 && n == (int)strlen(F[i].s), "format %.17g: got '%s', want '%s'", F[i].v, b,
              F[i].s);
    }
    CHECK(gram__format_double(b, 4, 0.1) == 19 && strcmp(b, "0.1") == 0, "format truncates like snprintf: '%s'", b);

    struct {
        const char *s;
        double v;
    } P[] = {{"0.1", 0.1}, {"1e5", 1e5}, {"+1", 1}, {"-1", -1}, {".5", .5}, {"5.", 5}, {"-0", -0.0},
             {"1E-300", 1e-300}, {"4.9406564584124654e-324", 4.9406564584124654e-324},
             {"1.7976931348623157e308", DBL_MAX}, {"2.2250738585072014e-308", DBL_MIN},
             {"0.30000000000000004", 0.30000000000000004}, {"inf", INFINITY}, {"-inf", -INFINITY},
             {"Infinity", INFINITY}, {"1e999", INFINITY}, {"1e-999", 0.0}};
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        double v = 42;
        int ok = gram__parse_double(P[i].s, strlen(P[i].s), &v);
        CHECK(ok && same_bits(v, P[i].v), "parse '%s': ok=%d got %.17g want %.17g", P[i].s, ok, v, P[i].v);
    }
    double v;
    CHECK(gram__parse_double("nan", 3, &v) && isnan(v), "parse nan");
    CHECK(gram__parse_double("NaN", 3, &v) && isnan(v), "parse NaN");
    const char *bad[] = {"", " 1", "1 ", "1x", "abc", "1,5", "--1", ".", "e5", "1e", "\n1", "0.5.", "1\t"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!gram__parse_double(bad[i], strlen(bad[i]), &v), "parse '%s' must fail", bad[i]);
    CHECK(gram__parse_double("12", 1, &v) && v == 1, "parse honours the length");
    CHECK(!gram__parse_double("1\0002", 3, &v), "embedded NUL refused");
    /* A long but valid number (beyond the 64-byte stack copy). */
    char longnum[200];
    memset(longnum, '0', sizeof longnum);
    longnum[0] = '0', longnum[1] = '.', longnum[150] = '1';
    CHECK(gram__parse_double(longnum, 151, &v) && v == 1e-149, "long number: %.17g", v);

    /* Round trip of many doubles, including subnormals and extremes: bit-exact. */
    check_rng r = {7};
    int bad_rt = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t u = check_u64(&r);
        double x;
        memcpy(&x, &u, 8);
        if (isnan(x)) continue;
        int n = gram__format_double(b, sizeof b, x);
        double y;
        if (!gram__parse_double(b, (size_t)n, &y) || !same_bits(x, y)) bad_rt++;
    }
    CHECK(bad_rt == 0, "%d doubles failed to round-trip through %%.17g", bad_rt);
}

/* ---- .npy reading ---------------------------------------------------------------------------- */

static void test_npy_dtypes(void)
{
    double want[64];
    int fails = 0;
    for (int t = 0; t < N_DTYPES; t++)
        for (int major = 1; major <= 3; major++)
            for (int fortran = 0; fortran <= 1; fortran++)
                for (int shape = 0; shape < 3; shape++) {
                    int ndim = shape == 1 ? 1 : 2;
                    int64_t rows = shape == 0 ? 3 : shape == 1 ? 7 : 1, cols = shape == 0 ? 4 : 1;
                    bytes s = npy_build(&DTYPES[t], major, ndim, rows, cols, fortran, want,
                                        (uint64_t)(t * 100 + major * 10 + fortran));
                    gram__matrix m;
                    gram_status st = gram__npy_parse(ctx, "mem.npy", s.b, s.n, &m);
                    int ok = st == GRAM_OK && matrix_equals(&m, rows, cols, want) && !m.names;
                    gram__matrix_free(&m);
                    const char *p = check_tpath("dtype.npy");
                    check_put_file(p, s.b, s.n);
                    st = gram__read_matrix(ctx, p, NULL, &m);
                    ok = ok && st == GRAM_OK && matrix_equals(&m, rows, cols, want);
                    gram__matrix_free(&m);
                    if (!ok && fails++ < 10)
                        CHECK(0, "dtype %s v%d.0 %s shape %d: status %d (%s)", DTYPES[t].descr, major,
                              fortran ? "F" : "C", shape, st, msg());
                    else
                        check_passed++;
                    free(s.b);
                }
}

/* Values element by element for a Fortran-order file, and its 1-D variant. */
static void test_npy_fortran_explicit(void)
{
    /* shape (2, 3), column-major bytes: a[0,0] a[1,0] a[0,1] a[1,1] a[0,2] a[1,2] */
    bytes s = npy_head(1, "{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3), }", 0);
    const int16_t colmajor[6] = {11, 21, 12, 22, 13, 23};
    for (int k = 0; k < 6; k++) put_uint(&s, (uint16_t)colmajor[k], 2, 0);
    gram__matrix m;
    CHECK_STATUS(gram__npy_parse(ctx, "f.npy", s.b, s.n, &m), GRAM_OK);
    const double rowmajor[6] = {11, 12, 13, 21, 22, 23};
    CHECK(m.rows == 2 && m.cols == 3, "fortran shape %lld x %lld", (long long)m.rows, (long long)m.cols);
    for (int k = 0; k < 6 && m.data; k++) CHECK(m.data[k] == rowmajor[k], "fortran [%d] = %g, want %g", k, m.data[k], rowmajor[k]);
    gram__matrix_free(&m);
    free(s.b);

    s = npy_head(1, "{'descr': '>f8', 'fortran_order': True, 'shape': (3,), }", 0);
    const double v[3] = {1.5, -2.25, 1e-300};
    for (int k = 0; k < 3; k++) {
        uint64_t u;
        memcpy(&u, &v[k], 8);
        put_uint(&s, u, 8, 1);
    }
    CHECK_STATUS(gram__npy_parse(ctx, "f1.npy", s.b, s.n, &m), GRAM_OK);
    CHECK(matrix_equals(&m, 3, 1, v), "1-D fortran big-endian");
    gram__matrix_free(&m);
    free(s.b);
}

/* Inputs bigger than one 1 MiB read chunk, through files and pipes: chunk edges, the direct read
 * into the final array, the scatter of Fortran order, and a stream's growth and transpose. */
static void test_npy_large(void)
{
    struct {
        int dt, fortran;
        int64_t rows, cols;
    } C[] = {{2, 1, 700, 501}, {6, 0, 1000, 601}, {0, 0, 1001, 200}, {1, 1, 300, 701}, {0, 1, 513, 300}, {18, 0, 90000, 3}};
    for (size_t c = 0; c < sizeof C / sizeof C[0]; c++) {
        const dtype_case *t = &DTYPES[C[c].dt];
        int64_t count = C[c].rows * C[c].cols;
        double *want = malloc((size_t)count * sizeof *want);
        bytes s = npy_build(t, 1, 2, C[c].rows, C[c].cols, C[c].fortran, want, 99 + c);
        const char *p = check_tpath("large.npy");
        check_put_file(p, s.b, s.n);
        gram__matrix m;
        CHECK_STATUS(gram__read_matrix(ctx, p, NULL, &m), GRAM_OK);
        CHECK(matrix_equals(&m, C[c].rows, C[c].cols, want), "large %s %s from a file", t->descr, C[c].fortran ? "F" : "C");
        gram__matrix_free(&m);
        CHECK_STATUS(read_via_pipe(s.b, s.n, NULL, &m), GRAM_OK);
        CHECK(matrix_equals(&m, C[c].rows, C[c].cols, want), "large %s %s from a pipe: %s", t->descr,
              C[c].fortran ? "F" : "C", msg());
        gram__matrix_free(&m);
        free(want);
        free(s.b);
    }
}

static void test_npy_header_variants(void)
{
    const char *ok[] = {
        "{'shape': (2, 2), 'fortran_order': False, 'descr': '<f8'}",
        "{ 'descr' :  '<f8' ,\t'fortran_order' : False ,  'shape' : ( 2 , 2 , ) , }",
        "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2, 2)}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 2L), }",
        "{u'descr': u'<f8', u'fortran_order': False, u'shape': (2, 2)}",
        "{'descr': '<f8',\n 'fortran_order': False,\n 'shape': (2, 2)}",
    };
    const double v[4] = {1, 2, 3, 4};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        for (int raw = 0; raw <= 1; raw++) {
            bytes s = npy_head(1 + (int)i % 3, ok[i], raw);
            for (int k = 0; k < 4; k++) {
                uint64_t u;
                memcpy(&u, &v[k], 8);
                put_uint(&s, u, 8, 0);
            }
            gram__matrix m;
            gram_status st = gram__npy_parse(ctx, "h.npy", s.b, s.n, &m);
            CHECK(st == GRAM_OK && matrix_equals(&m, 2, 2, v), "header variant %zu (raw %d): %d %s", i, raw, st, msg());
            gram__matrix_free(&m);
            free(s.b);
        }
}

typedef struct bad_npy {
    const char *what;
    int major;          /* 0: bytes given verbatim in dict */
    const char *dict;
    size_t data_bytes;  /* zero bytes of data appended */
    gram_status want;
    const char *needle1, *needle2;
} bad_npy;

static void test_npy_malformed(void)
{
    const bad_npy B[] = {
        {"truncated data", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", 40, GRAM_EFORMAT, "48", "40"},
        {"extra data", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", 56, GRAM_EFORMAT, "48", "56"},
        {"lying shape", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }", 16, GRAM_EFORMAT,
         "80000000000", "16"},
        {"lying int", 2, "{'descr': '<i4', 'fortran_order': True, 'shape': (1000000000, 3), }", 12, GRAM_EFORMAT,
         "12000000000", "12 bytes"},
        {"product overflow", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8,
         GRAM_EOVERFLOW, "too large", NULL},
        {"bytes overflow", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952, 2), }", 8,
         GRAM_EOVERFLOW, "too large", NULL},
        {"dim over int64", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8,
         GRAM_EOVERFLOW, "2^63", NULL},
        {"0-d", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 8, GRAM_EFORMAT, "0-d", NULL},
        {"3-d", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 2), }", 64, GRAM_EFORMAT, "3-dimensional", NULL},
        {"object", 1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16, GRAM_EFORMAT, "pickle", NULL},
        {"structured", 1, "{'descr': [('a', '<f8'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }", 24,
         GRAM_EFORMAT, "structured", NULL},
        {"complex", 1, "{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }", 32, GRAM_EFORMAT, "complex", "<c16"},
        {"complex64", 1, "{'descr': '>c8', 'fortran_order': False, 'shape': (2,), }", 16, GRAM_EFORMAT, "complex", ">c8"},
        {"| on f2", 1, "{'descr': '|f2', 'fortran_order': False, 'shape': (2,), }", 4, GRAM_EFORMAT, "unsupported dtype", NULL},
        {"float96", 1, "{'descr': '<f12', 'fortran_order': False, 'shape': (2,), }", 24, GRAM_EFORMAT, "unsupported dtype", NULL},
        {"2-byte bool", 1, "{'descr': '<b2', 'fortran_order': False, 'shape': (2,), }", 4, GRAM_EFORMAT, "unsupported dtype", NULL},
        {"datetime", 1, "{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (2,), }", 16, GRAM_EFORMAT, "unsupported dtype", NULL},
        {"unicode", 1, "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", 24, GRAM_EFORMAT, "unsupported dtype", NULL},
        {"no byte order", 1, "{'descr': 'f8', 'fortran_order': False, 'shape': (2,), }", 16, GRAM_EFORMAT, "unsupported dtype", NULL},
        {"| on f8", 1, "{'descr': '|f8', 'fortran_order': False, 'shape': (2,), }", 16, GRAM_EFORMAT, "unsupported dtype", NULL},
        {"missing shape", 1, "{'descr': '<f8', 'fortran_order': False, }", 16, GRAM_EFORMAT, "lacks 'shape'", NULL},
        {"missing descr", 1, "{'fortran_order': False, 'shape': (2,)}", 16, GRAM_EFORMAT, "lacks 'descr'", NULL},
        {"unknown key", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}", 16, GRAM_EFORMAT,
         "unexpected key 'x'", NULL},
        {"duplicate key", 1, "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}", 16, GRAM_EFORMAT,
         "duplicate", NULL},
        {"(3) not a tuple", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2), }", 16, GRAM_EFORMAT, "tuple", NULL},
        {"list shape", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': [2], }", 16, GRAM_EFORMAT, "tuple", NULL},
        {"negative dim", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }", 16, GRAM_EFORMAT, "negative", NULL},
        {"bad order", 1, "{'descr': '<f8', 'fortran_order': 'yes', 'shape': (2,), }", 16, GRAM_EFORMAT, "True or False", NULL},
        {"lowercase bool", 1, "{'descr': '<f8', 'fortran_order': false, 'shape': (2,), }", 16, GRAM_EFORMAT, "True or False", NULL},
        {"unterminated", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,)", 16, GRAM_EFORMAT, "header", NULL},
        {"after dict", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,)} x", 16, GRAM_EFORMAT, "after the dict", NULL},
        {"unterminated string", 1, "{'descr: '<f8', 'fortran_order': False, 'shape': (2,)}", 16, GRAM_EFORMAT, "header", NULL},
        {"not a dict", 1, "['descr', '<f8']", 16, GRAM_EFORMAT, "dict", NULL},
        {"empty array", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 3), }", 0, GRAM_EFORMAT, "empty", NULL},
        {"empty columns", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 0), }", 0, GRAM_EFORMAT, "empty", NULL},
        {"empty header", 1, "", 0, GRAM_EFORMAT, "header", NULL},
    };
    for (size_t i = 0; i < sizeof B / sizeof B[0]; i++) {
        bytes s = npy_head(B[i].major, B[i].dict, B[i].dict[0] == '\0');
        unsigned char zero[64] = {0};
        for (size_t left = B[i].data_bytes; left > 0;) {
            size_t m = left < 64 ? left : 64;
            b_put(&s, zero, m);
            left -= m;
        }
        for (int via = 0; via < 3; via++) {
            gram__matrix m = {(double *)1, 5, 5, NULL};
            gram_status st;
            const char *name = "bad_case.npy";
            if (via == 0) st = gram__npy_parse(ctx, name, s.b, s.n, &m);
            else if (via == 1) {
                name = check_tpath("bad_case.npy");
                check_put_file(name, s.b, s.n);
                st = gram__read_matrix(ctx, name, NULL, &m);
            } else {
                name = "<stdin>";
                st = read_via_pipe(s.b, s.n, NULL, &m);
            }
            /* A stream cannot know the size up front: it reports where the bytes ran out. */
            const char *n1 = B[i].needle1, *n2 = via == 2 && st == GRAM_EFORMAT && has(msg(), "input") ? NULL : B[i].needle2;
            CHECK(st == B[i].want && has(msg(), name) && has(msg(), n1) && (!n2 || has(msg(), n2)),
                  "%s via %d: status %d (want %d), message '%s'", B[i].what, via, st, B[i].want, msg());
            CHECK(m.data == NULL && m.rows == 0 && m.cols == 0, "%s: out cleared on failure", B[i].what);
        }
        free(s.b);
    }

    /* Prelude problems. */
    struct {
        const char *what;
        const char *b;
        size_t n;
        const char *needle;
    } P[] = {{"bad version", "\x93NUMPY\x04\x00\x10\x00", 10, "version 4.0"},
             {"bad minor", "\x93NUMPY\x01\x01\x10\x00", 10, "version 1.1"},
             {"short prelude", "\x93NUMPY\x01", 7, "truncated"},
             {"short length", "\x93NUMPY\x02\x00\x10\x00", 10, "truncated"},
             {"header past end", "\x93NUMPY\x01\x00\x00\x01{", 11, "runs past"},
             {"huge header", "\x93NUMPY\x02\x00\x00\x00\x00\x10{}", 14, "implausible"}};
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        gram__matrix m;
        CHECK(gram__npy_parse(ctx, "pre.npy", (const unsigned char *)P[i].b, P[i].n, &m) == GRAM_EFORMAT &&
                  has(msg(), "pre.npy") && has(msg(), P[i].needle),
              "%s: '%s'", P[i].what, msg());
        const char *p = check_tpath("pre.npy");
        check_put_file(p, P[i].b, P[i].n);
        gram_status st = gram__read_matrix(ctx, p, NULL, &m);
        CHECK(st == GRAM_EFORMAT && has(msg(), p), "%s from a file: %d '%s'", P[i].what, st, msg());
    }
    gram__matrix m;
    CHECK(gram__npy_parse(ctx, "x.npy", (const unsigned char *)"hello", 5, &m) == GRAM_EFORMAT && has(msg(), "not a .npy"),
          "bad magic: %s", msg());
    CHECK_STATUS(gram__npy_parse(ctx, "x.npy", NULL, 4, &m), GRAM_EINVAL);
    CHECK_STATUS(gram__npy_parse(ctx, "x.npy", (const unsigned char *)"", 0, NULL), GRAM_EINVAL);
}

/* ---- CSV reading ----------------------------------------------------------------------------- */

static gram_status csv(const char *text, int header, char delim, gram__matrix *m)
{
    gram__read_opts o;
    gram__read_opts_init(&o);
    o.header = header;
    o.delimiter = delim;
    return gram__csv_parse(ctx, "t.csv", text, strlen(text), &o, m);
}

static int names_are(const gram__matrix *m, const char *const *want, int n)
{
    if (!m->names || m->cols != n) return 0;
    for (int j = 0; j < n; j++)
        if (strcmp(m->names[j], want[j]) != 0) return 0;
    return 1;
}

static void test_csv_read(void)
{
    gram__matrix m;
    struct {
        const char *what, *text;
        int header;
        char delim;
        int64_t rows, cols;
        double v[6];
        const char *names[3];
    } G[] = {
        {"header", "x,y\n1,2\n3,4\n", -1, 0, 2, 2, {1, 2, 3, 4}, {"x", "y"}},
        {"no header", "1,2\n3,4\n", -1, 0, 2, 2, {1, 2, 3, 4}, {NULL}},
        {"forced header", "1,2\n3,4\n", 1, 0, 1, 2, {3, 4}, {"1", "2"}},
        {"no final newline", "1,2\n3,4", -1, 0, 2, 2, {1, 2, 3, 4}, {NULL}},
        {"comments and blanks", "# c\n\nx,y\n  # indented\n1,2\n\n\n3,4\n# end", -1, 0, 2, 2, {1, 2, 3, 4}, {"x", "y"}},
        {"CRLF", "a,b\r\n1,2\r\n\r\n3,4\r\n", -1, 0, 2, 2, {1, 2, 3, 4}, {"a", "b"}},
        {"lone CR", "1,2\r3,4\r", -1, 0, 2, 2, {1, 2, 3, 4}, {NULL}},
        {"semicolon", "a;b\n1.5;2\n3;-4e2\n", -1, 0, 2, 2, {1.5, 2, 3, -400}, {"a", "b"}},
        {"tab", "a\tb\n1\t2\n3\t4\n", -1, 0, 2, 2, {1, 2, 3, 4}, {"a", "b"}},
        {"blanks", "  1   2 \t 3\n4 5\t6\n", -1, 0, 2, 3, {1, 2, 3, 4, 5, 6}, {NULL}},
        {"spaces around", " 1 , 2 \n3,\t4\n", -1, 0, 2, 2, {1, 2, 3, 4}, {NULL}},
        {"explicit delimiter", "1;2,5\n3;4\n", 0, ';', 0, 0, {0}, {NULL}}, /* "2,5" is not a number */
        {"quoted header", "\"a,b\",\"c\"\"d\",e\n1,2,3\n", -1, 0, 1, 3, {1, 2, 3}, {"a,b", "c\"d", "e"}},
        {"quoted numbers", "\"1.5\", \"2\"\n3,4\n", -1, 0, 2, 2, {1.5, 2, 3, 4}, {NULL}},
        {"multi-line quoted", "\"multi\nline\",b\n1,2\n", -1, 0, 1, 2, {1, 2}, {"multi\nline", "b"}},
        {"single column", "v\n1\n2\n", -1, 0, 2, 1, {1, 2}, {"v"}},
        {"single column, spaced name", "sepal length\n1\n2\n3\n", -1, 0, 3, 1, {1, 2, 3}, {"sepal length"}},
        {"BOM", "\xEF\xBB\xBF" "a,b\n1,2\n", -1, 0, 1, 2, {1, 2}, {"a", "b"}},
        {"exact decimals", "0.1,1e-300\n-0,123456789.125\n", -1, 0, 2, 2, {0.1, 1e-300, -0.0, 123456789.125}, {NULL}},
    };
    for (size_t i = 0; i < sizeof G / sizeof G[0]; i++) {
        gram_status st = csv(G[i].text, G[i].header, G[i].delim, &m);
        if (G[i].rows == 0) {
            CHECK(st == GRAM_EFORMAT && has(msg(), "\"2,5\""), "%s: %d %s", G[i].what, st, msg());
            continue;
        }
        int ncols = (int)G[i].cols;
        CHECK(st == GRAM_OK && matrix_equals(&m, G[i].rows, G[i].cols, G[i].v), "%s: status %d (%s) %lld x %lld",
              G[i].what, st, msg(), (long long)m.rows, (long long)m.cols);
        if (G[i].names[0]) CHECK(names_are(&m, G[i].names, ncols), "%s: names", G[i].what);
        else CHECK(m.names == NULL, "%s: no names", G[i].what);
        gram__matrix_free(&m);
    }

    /* nan and inf are numbers here. */
    CHECK_STATUS(csv("nan,inf\n-inf,NaN\n", -1, 0, &m), GRAM_OK);
    CHECK(m.data && isnan(m.data[0]) && m.data[1] == INFINITY && m.data[2] == -INFINITY && isnan(m.data[3]), "nan/inf");
    gram__matrix_free(&m);

    /* Errors: status, file name, line (of the file), column. */
    struct {
        const char *what, *text;
        int header;
        const char *needle1, *needle2;
    } E[] = {
        {"ragged", "# comment\na,b\n1,2\n\n3,4\n# c\n5,6,7\n", -1, "t.csv: line 7: expected 2 fields, found 3", NULL},
        {"short row", "1,2\n3\n", -1, "t.csv: line 2: expected 2 fields, found 1", NULL},
        {"non-numeric", "x,y\n1,2\n3,abc\n", -1, "t.csv: line 3, column 2: \"abc\" is not a number", NULL},
        {"non-numeric CRLF", "x,y\r\n\r\n1,2\r\n3,4 5\r\n", -1, "line 4, column 2", "\"4 5\""},
        {"after multi-line header", "\"multi\nline\",b\n1,2\n3,x\n", -1, "line 4, column 2", NULL},
        {"empty field", "1,2,3\n4,,6\n", -1, "line 2, column 2: empty field", NULL},
        {"trailing delimiter", "1,2\n3,4,\n", -1, "line 2: expected 2 fields, found 3", NULL},
        {"header refused as data", "x,y\n1,2\n", 0, "line 1, column 1: \"x\" is not a number", NULL},
        {"empty input", "", -1, "t.csv: no data rows", NULL},
        {"blank input", "\n  \n\r\n", -1, "no data rows", NULL},
        {"only comments", "# a\n# b\n", -1, "no data rows", NULL},
        {"header only", "x,y\n", -1, "t.csv: no data rows", NULL},
        {"unterminated quote", "a,b\n1,\"2\n3,4\n", -1, "line 2: a quoted field", "never closed"},
        {"text after quote", "\"a\"x,b\n1,2\n", -1, "line 1, column 1: unexpected text after a closing quote", NULL},
        {"long garbage", "1,2\n3,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", -1,
         "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"", NULL},
        {"control bytes", "1,2\n3,\x01\x02\n", -1, "\"??\"", NULL},
    };
    for (size_t i = 0; i < sizeof E / sizeof E[0]; i++) {
        m.data = (double *)1;
        gram_status st = csv(E[i].text, E[i].header, 0, &m);
        CHECK(st == GRAM_EFORMAT && has(msg(), E[i].needle1) && (!E[i].needle2 || has(msg(), E[i].needle2)) &&
                  has(msg(), "t.csv"),
              "%s: status %d, message '%s'", E[i].what, st, msg());
        CHECK(m.data == NULL && m.names == NULL, "%s: out cleared", E[i].what);
    }

    /* Bad options. */
    CHECK_STATUS(csv("1\n", 5, 0, &m), GRAM_EINVAL);
    CHECK_STATUS(csv("1\n", -1, '"', &m), GRAM_EINVAL);
    CHECK_STATUS(gram__csv_parse(ctx, "t.csv", NULL, 3, NULL, &m), GRAM_EINVAL);
    CHECK_STATUS(gram__csv_parse(ctx, "t.csv", "1", 1, NULL, NULL), GRAM_EINVAL);
    gram__read_opts o;
    gram__read_opts_init(&o);
    CHECK(o.header == -1 && o.delimiter == 0 && o.max_bytes == 0, "read_opts_init defaults");
    o.max_bytes = 3;
    CHECK(gram__csv_parse(ctx, "t.csv", "1,2\n", 4, &o, &m) == GRAM_EOVERFLOW && has(msg(), "t.csv"), "max_bytes: %s", msg());

    /* A wide, long file through a file and a pipe (growth of the text buffer). */
    size_t cap = (size_t)1 << 23, n = 0;
    char *big = malloc(cap);
    n += (size_t)snprintf(big + n, cap - n, "c0,c1,c2,c3,c4\n");
    check_rng r = {3};
    int64_t rows = 20000;
    double *want = malloc((size_t)rows * 5 * sizeof *want);
    for (int64_t i = 0; i < rows; i++)
        for (int j = 0; j < 5; j++) {
            double v = check_normal(&r) * pow(10, (double)check_int(&r, -20, 20));
            want[i * 5 + j] = v;
            char b[40];
            gram__format_double(b, sizeof b, v);
            n += (size_t)snprintf(big + n, cap - n, "%s%s", b, j == 4 ? "\r\n" : ", ");
        }
    const char *p = check_tpath("big.csv");
    check_put_file(p, big, n);
    CHECK_STATUS(gram__read_matrix(ctx, p, NULL, &m), GRAM_OK);
    CHECK(matrix_equals(&m, rows, 5, want) && m.names && !strcmp(m.names[4], "c4"), "big csv from a file");
    gram__matrix_free(&m);
    CHECK_STATUS(read_via_pipe(big, n, NULL, &m), GRAM_OK);
    CHECK(matrix_equals(&m, rows, 5, want), "big csv from a pipe");
    gram__matrix_free(&m);
    free(want);
    free(big);
}

/* ---- files ----------------------------------------------------------------------------------- */

static void test_files(void)
{
    gram__matrix m;
    const char *missing = check_tpath("does-not-exist.csv");
    CHECK(gram__read_matrix(ctx, missing, NULL, &m) == GRAM_EIO && has(msg(), missing) &&
              has(msg(), strerror(ENOENT)),
          "missing file: %s", msg());
    CHECK(gram__read_matrix(ctx, check_tmpdir, NULL, &m) == GRAM_EIO && has(msg(), "directory"), "directory: %s", msg());
    CHECK_STATUS(gram__read_matrix(ctx, NULL, NULL, &m), GRAM_EINVAL);
    CHECK_STATUS(gram__read_matrix(ctx, missing, NULL, NULL), GRAM_EINVAL);
    CHECK_STATUS(gram__read_matrix(NULL, missing, NULL, &m), GRAM_EIO); /* no context: still a status */

    /* Limits. */
    const char *p = check_tpath("limit.csv");
    check_put_file(p, "1,2\n3,4\n", 8);
    gram__read_opts o;
    gram__read_opts_init(&o);
    o.max_bytes = 7;
    CHECK(gram__read_matrix(ctx, p, &o, &m) == GRAM_EOVERFLOW && has(msg(), p), "max_bytes file: %s", msg());
    CHECK_STATUS(read_via_pipe("1,2\n3,4\n", 8, &o, &m), GRAM_EOVERFLOW);
    /* The limit holds for the values as float64 too: 4 values need 32 bytes. */
    o.max_bytes = 31;
    CHECK(gram__read_matrix(ctx, p, &o, &m) == GRAM_EOVERFLOW && has(msg(), p) && has(msg(), "as float64"),
          "max_bytes values: %s", msg());
    o.max_bytes = 32;
    CHECK_STATUS(gram__read_matrix(ctx, p, &o, &m), GRAM_OK);
    gram__matrix_free(&m);
    o.max_bytes = -1;
    CHECK_STATUS(gram__read_matrix(ctx, p, &o, &m), GRAM_EINVAL);

    /* The format is chosen by content, not by the name. */
    const double v[2] = {5, 6};
    CHECK_STATUS(gram__write_matrix(ctx, check_tpath("content.npy"), v, 2, 1, NULL), GRAM_OK);
    rename(check_tpath("content.npy"), check_tpath("content.csv"));
    CHECK_STATUS(gram__read_matrix(ctx, check_tpath("content.csv"), NULL, &m), GRAM_OK);
    CHECK(matrix_equals(&m, 2, 1, v), "npy bytes under a .csv name");
    gram__matrix_free(&m);

    /* stdin from a regular file, positioned past a prefix. */
    size_t nn;
    char *npy = get_file(check_tpath("content.csv"), &nn);
    char *pre = malloc(nn + 5);
    memcpy(pre, "JUNK!", 5);
    memcpy(pre + 5, npy, nn);
    check_put_file(check_tpath("prefixed"), pre, nn + 5);
    int fd = open(check_tpath("prefixed"), O_RDONLY);
    lseek(fd, 5, SEEK_SET);
    int saved = dup(0);
    dup2(fd, 0);
    close(fd);
    CHECK_STATUS(gram__read_matrix(ctx, "-", NULL, &m), GRAM_OK);
    CHECK(matrix_equals(&m, 2, 1, v), "stdin from a positioned regular file");
    gram__matrix_free(&m);
    dup2(saved, 0);
    close(saved);
    free(pre);
    free(npy);

    /* A stream that ends early or runs on. */
    double want[6];
    bytes s = npy_build(&DTYPES[4], 1, 2, 2, 3, 0, want, 1);
    CHECK(read_via_pipe(s.b, s.n - 1, NULL, &m) == GRAM_EFORMAT && has(msg(), "<stdin>") && has(msg(), "ends after 5"),
          "short stream: %s", msg());
    b_put(&s, "x", 1);
    CHECK(read_via_pipe(s.b, s.n, NULL, &m) == GRAM_EFORMAT && has(msg(), "continues"), "long stream: %s", msg());
    free(s.b);

    gram__matrix_free(NULL);
    gram__matrix z = {0};
    gram__matrix_free(&z);
    gram__read_opts_init(NULL);
}

/* ---- writing --------------------------------------------------------------------------------- */

static double interesting(check_rng *r, int k)
{
    static const double special[] = {0.1, 1e-300, -0.0, 0.0, DBL_MAX, -DBL_MAX, DBL_MIN, 4.9406564584124654e-324,
                                     1e308, 123456789012345678.0, -1.0 / 3, 2.5};
    if (k < 12) return special[k];
    switch (check_int(r, 0, 3)) {
    case 0: return check_normal(r);
    case 1: return check_normal(r) * pow(10, (double)check_int(r, -300, 300));
    case 2: return (double)check_int(r, -1000000, 1000000);
    default: {
        uint64_t u = check_u64(r);
        double d;
        memcpy(&d, &u, 8);
        return isnan(d) ? 1.0 : d;
    }
    }
}

static void test_round_trips(void)
{
    const int64_t shapes[][2] = {{1, 1}, {7, 3}, {100, 17}, {1, 40}, {2000, 1}, {3000, 50}};
    check_rng r = {11};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int64_t rows = shapes[si][0], cols = shapes[si][1];
        double *a = malloc((size_t)(rows * cols) * sizeof *a);
        for (int64_t k = 0; k < rows * cols; k++) a[k] = interesting(&r, (int)k);
        for (int fmt = 0; fmt < 2; fmt++) {
            const char *p = check_tpath(fmt ? "rt.csv" : "rt.npy");
            CHECK_STATUS(gram__write_matrix(ctx, p, a, rows, cols, NULL), GRAM_OK);
            gram__matrix m;
            gram__read_opts o;
            gram__read_opts_init(&o);
            o.header = 0;
            CHECK_STATUS(gram__read_matrix(ctx, p, &o, &m), GRAM_OK);
            CHECK(matrix_equals(&m, rows, cols, a), "%s round trip %lld x %lld", fmt ? "csv" : "npy", (long long)rows,
                  (long long)cols);
            gram__matrix_free(&m);
        }
        free(a);
    }
    CHECK(count_temp_files() == 0, "no temporary files left");
}

static void test_write_formats(void)
{
    const double a[6] = {1, 2.5, -0.0, 0.1, NAN, -INFINITY};
    const char *names[3] = {"a", "b,c", "d\"e"};
    const char *p = check_tpath("w.csv");
    CHECK_STATUS(gram__write_matrix(ctx, p, a, 2, 3, names), GRAM_OK);
    char *t = get_file(p, NULL);
    const char *want = "a,\"b,c\",\"d\"\"e\"\n1,2.5,-0\n0.10000000000000001,nan,-inf\n";
    CHECK(t && strcmp(t, want) == 0, "csv text:\n%s", t ? t : "(null)");
    free(t);
    gram__matrix m;
    CHECK_STATUS(gram__read_matrix(ctx, p, NULL, &m), GRAM_OK);
    CHECK(names_are(&m, names, 3) && m.rows == 2 && same_bits(m.data[2], -0.0) && isnan(m.data[4]) &&
              m.data[5] == -INFINITY,
          "csv with names read back");
    gram__matrix_free(&m);

    /* Names the reader would otherwise trim or take for a comment are quoted. */
    const char *odd[3] = {"#id", " padded ", ""};
    CHECK_STATUS(gram__write_matrix(ctx, p, a, 2, 3, odd), GRAM_OK);
    t = get_file(p, NULL);
    CHECK(t && strncmp(t, "\"#id\",\" padded \",\"\"\n", 19) == 0, "odd names: %s", t);
    free(t);
    CHECK_STATUS(gram__read_matrix(ctx, p, NULL, &m), GRAM_OK);
    CHECK(names_are(&m, odd, 3), "odd names read back");
    gram__matrix_free(&m);

    /* The .npy bytes: v1.0, '<f8', C order, header padded to 64 with a final '\n'. */
    p = check_tpath("w.npy");
    CHECK_STATUS(gram__write_matrix(ctx, p, a, 2, 3, names), GRAM_OK);
    size_t n;
    unsigned char *b = (unsigned char *)get_file(p, &n);
    size_t hlen = b ? (size_t)b[8] | (size_t)b[9] << 8 : 0;
    CHECK(b && n >= 10 && memcmp(b, "\x93NUMPY\x01\x00", 8) == 0, "npy magic and version");
    CHECK((10 + hlen) % 64 == 0 && n == 10 + hlen + 48 && b[10 + hlen - 1] == '\n', "npy padding: hlen %zu, n %zu", hlen, n);
    const char *hd = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
    CHECK(b && memcmp(b + 10, hd, strlen(hd)) == 0, "npy header text");
    int bits_ok = 1;
    for (int k = 0; k < 6 && b; k++) {
        uint64_t u = 0, w;
        for (int i = 7; i >= 0; i--) u = u << 8 | b[10 + hlen + 8 * (size_t)k + (size_t)i];
        memcpy(&w, &a[k], 8);
        bits_ok &= u == w;
    }
    CHECK(bits_ok, "npy data little-endian");
    free(b);

    /* Suffix case, empty matrices, bad arguments. */
    CHECK_STATUS(gram__write_matrix(ctx, check_tpath("W.NPY"), a, 3, 2, NULL), GRAM_OK);
    b = (unsigned char *)get_file(check_tpath("W.NPY"), NULL);
    CHECK(b && b[0] == 0x93, "'.NPY' writes .npy");
    free(b);
    CHECK_STATUS(gram__write_matrix(ctx, check_tpath("empty.npy"), NULL, 0, 3, NULL), GRAM_OK);
    CHECK(gram__read_matrix(ctx, check_tpath("empty.npy"), NULL, &m) == GRAM_EFORMAT && has(msg(), "empty"), "0-row npy: %s", msg());
    CHECK_STATUS(gram__write_matrix(ctx, check_tpath("empty.csv"), NULL, 0, 2, NULL), GRAM_OK);
    CHECK(gram__read_matrix(ctx, check_tpath("empty.csv"), NULL, &m) == GRAM_EFORMAT && has(msg(), "no data rows"), "0-row csv");
    CHECK_STATUS(gram__write_matrix(ctx, NULL, a, 1, 1, NULL), GRAM_EINVAL);
    CHECK_STATUS(gram__write_matrix(ctx, check_tpath("x.csv"), a, -1, 1, NULL), GRAM_EINVAL);
    CHECK_STATUS(gram__write_matrix(ctx, check_tpath("x.csv"), NULL, 1, 1, NULL), GRAM_EINVAL);
    CHECK_STATUS(gram__write_matrix(ctx, check_tpath("x.csv"), a, INT64_MAX, 2, NULL), GRAM_EOVERFLOW);
    CHECK_STATUS(gram__write_matrix(ctx, "", a, 1, 1, NULL), GRAM_EINVAL);

    /* Text. */
    const char *svg = "<svg>\n  <text>1,5</text>\n</svg>\n";
    p = check_tpath("plot.svg");
    CHECK_STATUS(gram__write_text(ctx, p, svg, strlen(svg)), GRAM_OK);
    t = get_file(p, NULL);
    CHECK(t && !strcmp(t, svg), "text written");
    free(t);
    CHECK_STATUS(gram__write_text(ctx, p, "", 0), GRAM_OK);
    t = get_file(p, &n);
    CHECK(t && n == 0, "empty text");
    free(t);
    CHECK_STATUS(gram__write_text(ctx, p, NULL, 3), GRAM_EINVAL);

    /* Permissions follow the umask, not mkstemp's 0600. */
    mode_t old = umask(022);
    CHECK_STATUS(gram__write_text(ctx, p, "x", 1), GRAM_OK);
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0644, "mode %o", (unsigned)(sb.st_mode & 0777));
    umask(old);
}

static void test_write_failures(void)
{
    const double a[4] = {1, 2, 3, 4};
    /* Into a directory that does not exist: EIO, and nothing is created. */
    const char *p = check_tpath("nope/out.csv");
    CHECK(gram__write_matrix(ctx, p, a, 2, 2, NULL) == GRAM_EIO && has(msg(), p) && has(msg(), strerror(ENOENT)),
          "missing directory: %s", msg());
    struct stat sb;
    CHECK(stat(check_tpath("nope"), &sb) != 0, "nothing created");
    CHECK_STATUS(gram__write_text(ctx, check_tpath("nope/x.svg"), "x", 1), GRAM_EIO);

    /* Onto a directory: the rename fails, the temporary file is removed. */
    const char *dir = check_tpath("adir");
    mkdir(dir, 0755);
    char inner[600];
    snprintf(inner, sizeof inner, "%s/keep", dir);
    check_put_file(inner, "k", 1);
    CHECK(gram__write_matrix(ctx, dir, a, 2, 2, NULL) == GRAM_EIO && has(msg(), "adir"), "onto a directory: %s", msg());
    CHECK(count_temp_files() == 0, "temporary removed after a failed rename");

    /* A write that fails midway (file size limit) leaves the existing target untouched. */
    const char *target = check_tpath("target.csv");
    check_put_file(target, "old\n", 4);
    struct rlimit saved, small;
    getrlimit(RLIMIT_FSIZE, &saved);
    small = saved;
    small.rlim_cur = 1000;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &small) == 0) {
        double *big = calloc(10000, sizeof *big);
        for (int k = 0; k < 10000; k++) big[k] = 0.1 * k;
        CHECK(gram__write_matrix(ctx, target, big, 1000, 10, NULL) == GRAM_EIO && has(msg(), target),
              "csv past the size limit: %s", msg());
        const char *tn = check_tpath("target.npy");
        check_put_file(tn, "old\n", 4);
        CHECK(gram__write_matrix(ctx, tn, big, 1000, 10, NULL) == GRAM_EIO, "npy past the size limit: %s", msg());
        char *t = get_file(tn, NULL);
        CHECK(t && !strcmp(t, "old\n"), "npy target untouched");
        free(t);
        char *text = malloc(5000);
        memset(text, 'x', 5000);
        CHECK_STATUS(gram__write_text(ctx, tn, text, 5000), GRAM_EIO);
        free(text);
        setrlimit(RLIMIT_FSIZE, &saved);
        free(big);
        t = get_file(target, NULL);
        CHECK(t && !strcmp(t, "old\n"), "csv target untouched");
        free(t);
        CHECK(count_temp_files() == 0, "temporaries removed after failed writes");
    } else {
        printf("note: setrlimit(RLIMIT_FSIZE) unavailable; mid-write failure not tested\n");
    }
    signal(SIGXFSZ, prev);

    /* "-" writes to standard output directly: a file, then /dev/full. */
    fflush(stdout);
    int saved1 = dup(1);
    int fd = open(check_tpath("stdout.csv"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    close(fd);
    gram_status st1 = gram__write_matrix(ctx, "-", a, 2, 2, NULL);
    gram_status st2 = gram__write_text(ctx, "-", "end\n", 4);
    gram_status st3 = GRAM_OK;
    char fullmsg[GRAM_MSG_SIZE] = "";
    fd = open("/dev/full", O_WRONLY);
    if (fd >= 0) {
        dup2(fd, 1);
        close(fd);
        st3 = gram__write_matrix(ctx, "-", a, 2, 2, NULL);
        snprintf(fullmsg, sizeof fullmsg, "%s", msg());
    }
    dup2(saved1, 1);
    close(saved1);
    CHECK(st1 == GRAM_OK && st2 == GRAM_OK, "writes to stdout");
    char *t = get_file(check_tpath("stdout.csv"), NULL);
    CHECK(t && !strcmp(t, "1,2\n3,4\nend\n"), "stdout content: %s", t);
    free(t);
    CHECK(st3 == GRAM_EIO && has(fullmsg, "<stdout>"), "/dev/full: %d %s", st3, fullmsg);
    CHECK(access(check_tpath("-"), F_OK) != 0, "no file named '-'");
}


/* ---- dtypes beyond float and integer --------------------------------------------------------- */

/* float16 (by its IEEE bit patterns), bool, and numpy's longdouble as this host stores it. */
static void test_npy_more_dtypes(void)
{
    /* binary16 patterns and their exact values */
    static const struct { uint16_t bits; double v; } H[] = {
        {0x3c00, 1.0},  {0xc100, -2.5}, {0x7bff, 65504.0}, {0x0001, 0x1p-24}, {0x03ff, 0x3ffp-24},
        {0x0400, 0x1p-14}, {0x8000, -0.0}, {0x3555, 0x555p-12}, {0x7c00, INFINITY}, {0xfc00, -INFINITY},
    };
    const int nh = (int)(sizeof H / sizeof H[0]);
    for (int big = 0; big <= 1; big++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%cf2', 'fortran_order': False, 'shape': (%d,), }", big ? '>' : '<', nh);
        bytes s = npy_head(1, dict, 0);
        double want[16];
        for (int k = 0; k < nh; k++) {
            put_uint(&s, H[k].bits, 2, big);
            want[k] = H[k].v;
        }
        gram__matrix m;
        CHECK(gram__npy_parse(ctx, "h.npy", s.b, s.n, &m) == GRAM_OK && matrix_equals(&m, nh, 1, want),
              "float16 %s: %s", big ? "big" : "little", msg());
        gram__matrix_free(&m);
        CHECK(read_via_pipe(s.b, s.n, NULL, &m) == GRAM_OK && matrix_equals(&m, nh, 1, want), "float16 stream: %s", msg());
        gram__matrix_free(&m);
        free(s.b);
    }
    /* NaN stays NaN (payload's top bits kept) */
    {
        bytes s = npy_head(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", 0);
        put_uint(&s, 0x7e00, 2, 0);
        gram__matrix m;
        CHECK(gram__npy_parse(ctx, "n.npy", s.b, s.n, &m) == GRAM_OK && m.data && isnan(m.data[0]), "float16 NaN");
        gram__matrix_free(&m);
        free(s.b);
    }

    /* bool: 0 → 0, anything else → 1 (numpy reads a nonzero byte as True) */
    {
        bytes s = npy_head(2, "{'descr': '|b1', 'fortran_order': True, 'shape': (2, 3), }", 0);
        const unsigned char colmajor[6] = {0, 1, 1, 0, 7, 0};
        b_put(&s, colmajor, 6);
        const double rowmajor[6] = {0, 1, 1, 1, 0, 0};
        gram__matrix m;
        CHECK(gram__npy_parse(ctx, "b.npy", s.b, s.n, &m) == GRAM_OK && matrix_equals(&m, 2, 3, rowmajor),
              "bool: %s", msg());
        gram__matrix_free(&m);
        free(s.b);
    }

#if LDBL_MANT_DIG == 64 || LDBL_MANT_DIG == 113
    if (sizeof(long double) == 16) {
        /* Values with bits below double's ulp round to nearest; beyond double's range: ±inf. */
        const long double L[] = {0.1L, -1.0L / 3, 1.0L + 0x1p-60L, 0x1p-1074L, LDBL_MIN, 1e4000L, -1e4000L,
                                 (long double)DBL_MAX, 0x1.fffffffffffff7fep1023L};
        const int nl = (int)(sizeof L / sizeof L[0]);
        double want[16];
        for (int k = 0; k < nl; k++) {
            if (L[k] >= 0x1.fffffffffffff8p1023L) want[k] = INFINITY;
            else if (L[k] <= -0x1.fffffffffffff8p1023L) want[k] = -INFINITY;
            else want[k] = (double)L[k];
        }
        want[6] = -INFINITY;
        CHECK(want[0] == 0.1 && want[2] == 1.0 && want[4] == 0.0 && want[5] == INFINITY && want[8] == DBL_MAX,
              "long double references");
        for (int big = 0; big <= 1; big++) {
            char dict[128];
            snprintf(dict, sizeof dict, "{'descr': '%cf16', 'fortran_order': False, 'shape': (%d,), }",
                     big ? '>' : '<', nl);
            bytes s = npy_head(3, dict, 0);
            for (int k = 0; k < nl; k++) {
                unsigned char b[16] = {0}, r[16];
                memcpy(b, &L[k], sizeof L[k] < 16 ? sizeof L[k] : 16);
                for (int i = 0; i < 16; i++) r[i] = b[15 - i];
                b_put(&s, big ? r : b, 16);
            }
            gram__matrix m;
            CHECK(gram__npy_parse(ctx, "l.npy", s.b, s.n, &m) == GRAM_OK && matrix_equals(&m, nl, 1, want),
                  "longdouble %s: %s", big ? "big" : "little", msg());
            gram__matrix_free(&m);
            free(s.b);
        }
    } else
#endif
    {
        printf("note: long double is not 16 bytes here; 'f16' is refused and not tested\n");
    }
}

/* ---- inputs refused before they are read whole ----------------------------------------------- */

/* Standard input becomes a pipe holding n copies of byte c whose write end stays open and whose
 * read end does not block: a reader that waits for the end of the input gets EAGAIN (GRAM_EIO)
 * instead of an answer. Returns the write end; restore with stdin_restore. */
static int stdin_open_pipe(int c, size_t n, int *saved)
{
    int p[2];
    if (pipe(p) != 0) return -1;
    unsigned char *b = malloc(n);
    memset(b, c, n);
    ssize_t w = write(p[1], b, n);
    (void)w;
    free(b);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    *saved = dup(0);
    dup2(p[0], 0);
    close(p[0]);
    return p[1];
}

static void stdin_restore(int saved, int writer)
{
    dup2(saved, 0);
    close(saved);
    close(writer);
}

static void test_early_refusal(void)
{
    gram__matrix m;
    int saved, w = stdin_open_pipe(0, 4096, &saved);
    gram_status st = gram__read_matrix(ctx, "-", NULL, &m);
    stdin_restore(saved, w);
    CHECK(st == GRAM_EFORMAT && has(msg(), "<stdin>: byte 1 is NUL"), "zeros on an open pipe: %d %s", st, msg());

    /* A NUL after some text: refused at that byte, with its offset. */
    const char *text = "x,y\n1,2\n3,\0" "4\n";
    CHECK(gram__csv_parse(ctx, "t.csv", text, 13, NULL, &m) == GRAM_EFORMAT && has(msg(), "t.csv: byte 11 is NUL"),
          "NUL in memory: %s", msg());
    const char *p = check_tpath("nul.csv");
    check_put_file(p, text, 13);
    CHECK(gram__read_matrix(ctx, p, NULL, &m) == GRAM_EFORMAT && has(msg(), p) && has(msg(), "byte 11 is NUL"),
          "NUL in a file: %s", msg());

    /* /dev/zero: endless, so the old reader only stopped at the limit (or never, without one). */
    gram__read_opts o;
    gram__read_opts_init(&o);
    o.max_bytes = (int64_t)64 << 20;
    st = gram__read_matrix(ctx, "/dev/zero", &o, &m);
    CHECK(st == GRAM_EFORMAT && has(msg(), "/dev/zero: byte 1 is NUL"), "/dev/zero: %d %s", st, msg());

    /* A text stream that never ends stops once past the limit (here it has 40 000 bytes and then
     * no end: a reader waiting for the end gets EAGAIN instead). */
    o.max_bytes = 30000;
    w = stdin_open_pipe('7', 40000, &saved);
    st = gram__read_matrix(ctx, "-", &o, &m);
    stdin_restore(saved, w);
    CHECK(st == GRAM_EOVERFLOW && has(msg(), "<stdin>: input is larger than the limit of 30000 bytes"),
          "stream past the limit: %d %s", st, msg());

    /* A narrow .npy is held to the limit as float64: 1000 int8 need 8000 bytes. */
    bytes s = npy_head(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (1000,), }", 0);
    unsigned char ones[1000];
    memset(ones, 1, sizeof ones);
    b_put(&s, ones, sizeof ones);
    p = check_tpath("i1.npy");
    check_put_file(p, s.b, s.n);
    o.max_bytes = 7999;
    CHECK(gram__read_matrix(ctx, p, &o, &m) == GRAM_EOVERFLOW && has(msg(), "needs 8000 bytes as float64"),
          "npy as float64 over the limit: %s", msg());
    CHECK(read_via_pipe(s.b, s.n, &o, &m) == GRAM_EOVERFLOW, "npy stream as float64 over the limit");
    o.max_bytes = 8000;
    CHECK_STATUS(gram__read_matrix(ctx, p, &o, &m), GRAM_OK);
    gram__matrix_free(&m);
    free(s.b);

    int64_t lim = gram__io_default_limit();
    CHECK(lim >= (int64_t)64 << 20, "default limit %lld", (long long)lim);
}

/* ---- outputs: where the bytes go ------------------------------------------------------------- */

static int is_type(const char *p, mode_t type)
{
    struct stat sb;
    return lstat(p, &sb) == 0 && (sb.st_mode & S_IFMT) == type;
}

/* Reads the FIFO at path in a child process into out_path (the child's copy), so the writer under
 * test can open it. Returns the child's pid. */
static pid_t fifo_drain(const char *path, const char *out_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        int in = open(path, O_RDONLY), out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        char b[4096];
        ssize_t r;
        while (in >= 0 && out >= 0 && (r = read(in, b, sizeof b)) > 0)
            if (write(out, b, (size_t)r) != r) _exit(2);
        _exit(in >= 0 && out >= 0 ? 0 : 1);
    }
    return pid;
}

static void test_outputs(void)
{
    const double a[4] = {1, 2, 3, 4};
    const char *want = "1,2\n3,4\n";

    /* A FIFO is written through: it stays a FIFO and nothing is created beside it. */
    const char *fifo = check_tpath("out.csv");
    unlink(fifo);
    CHECK(mkfifo(fifo, 0644) == 0, "mkfifo");
    char copy[600];
    snprintf(copy, sizeof copy, "%s.copy", check_tmpdir);
    pid_t pid = fifo_drain(fifo, copy);
    CHECK_STATUS(gram__write_matrix(ctx, fifo, a, 2, 2, NULL), GRAM_OK);
    int wst = 0;
    waitpid(pid, &wst, 0);
    char *t = get_file(copy, NULL);
    CHECK(t && !strcmp(t, want), "through the FIFO: %s", t ? t : "(null)");
    free(t);
    unlink(copy);
    CHECK(is_type(fifo, S_IFIFO), "the FIFO is still a FIFO");
    CHECK(count_temp_files() == 0, "no temporary file beside the FIFO");
    unlink(fifo);

    /* A character device (a /dev/null made here when root may: mknod 1, 3) is written through. */
    const char *dev = check_tpath("null");
    if (mknod(dev, S_IFCHR | 0666, makedev(1, 3)) == 0) {
        struct stat before, after;
        stat(dev, &before);
        CHECK_STATUS(gram__write_matrix(ctx, dev, a, 2, 2, NULL), GRAM_OK);
        CHECK_STATUS(gram__write_text(ctx, dev, "svg", 3), GRAM_OK);
        CHECK(lstat(dev, &after) == 0 && S_ISCHR(after.st_mode) && after.st_ino == before.st_ino &&
                  after.st_rdev == before.st_rdev,
              "the device node is still there, the same node");
        CHECK(count_temp_files() == 0, "no temporary file beside the device");
        unlink(dev);
    } else {
        printf("note: mknod not permitted (%s); the device case runs through /dev/null only\n", strerror(errno));
    }
    /* The real /dev/null only by the new path (a stale library would replace it as root). */
    struct stat dn;
    if (stat("/dev/null", &dn) == 0 && S_ISCHR(dn.st_mode)) {
        CHECK_STATUS(gram__write_matrix(ctx, "/dev/null", a, 2, 2, NULL), GRAM_OK);
        struct stat dn2;
        CHECK(lstat("/dev/null", &dn2) == 0 && S_ISCHR(dn2.st_mode) && dn2.st_ino == dn.st_ino, "/dev/null intact");
    }

    /* A symlink to a file: the target is replaced, the link stays (relative to the link's dir). */
    const char *sub = check_tpath("sub");
    mkdir(sub, 0755);
    char link[600], target[600];
    snprintf(link, sizeof link, "%s/link.csv", sub);
    snprintf(target, sizeof target, "%s", check_tpath("target.csv"));
    check_put_file(target, "old\n", 4);
    CHECK(symlink("../target.csv", link) == 0, "symlink");
    CHECK_STATUS(gram__write_matrix(ctx, link, a, 2, 2, NULL), GRAM_OK);
    t = get_file(target, NULL);
    CHECK(t && !strcmp(t, want), "target replaced: %s", t ? t : "(null)");
    free(t);
    CHECK(is_type(link, S_IFLNK), "the link is still a link");
    /* A failed write through the link leaves link and target alone. */
    CHECK(gram__write_matrix(ctx, link, NULL, 1, 1, NULL) == GRAM_EINVAL, "bad data refused");
    t = get_file(target, NULL);
    CHECK(t && !strcmp(t, want) && is_type(link, S_IFLNK), "failed write kept both");
    free(t);
    unlink(link);

    /* A dangling chain: the last name is created, the links stay. */
    char l1[600], l2[600];
    snprintf(l1, sizeof l1, "%s/l1.npy", sub);
    snprintf(l2, sizeof l2, "%s/l2.npy", sub);
    CHECK(symlink("l2.npy", l1) == 0 && symlink("made.npy", l2) == 0, "chain");
    CHECK_STATUS(gram__write_matrix(ctx, l1, a, 2, 2, NULL), GRAM_OK);
    char made[600];
    snprintf(made, sizeof made, "%s/made.npy", sub);
    gram__matrix m;
    CHECK(gram__read_matrix(ctx, made, NULL, &m) == GRAM_OK && matrix_equals(&m, 2, 2, a) && is_type(l1, S_IFLNK) &&
              is_type(l2, S_IFLNK) && is_type(made, S_IFREG),
          "dangling chain made its target: %s", msg());
    gram__matrix_free(&m);
    unlink(l1);
    unlink(l2);
    unlink(made);

    /* A loop of links is an error, nothing created. */
    snprintf(l1, sizeof l1, "%s/a.csv", sub);
    snprintf(l2, sizeof l2, "%s/b.csv", sub);
    CHECK(symlink("b.csv", l1) == 0 && symlink("a.csv", l2) == 0, "loop");
    CHECK(gram__write_matrix(ctx, l1, a, 2, 2, NULL) == GRAM_EIO && has(msg(), "a.csv") &&
              has(msg(), strerror(ELOOP)),
          "link loop: %s", msg());
    unlink(l1);
    unlink(l2);
    rmdir(sub);

    /* /dev/stdout, /dev/fd/N, /proc/self/fd/N: the descriptor itself (appending stays appending). */
    const char *log = check_tpath("log.csv");
    check_put_file(log, "old\n", 4);
    int fd = open(log, O_WRONLY | O_APPEND);
    fflush(stdout);
    int saved1 = dup(1);
    dup2(fd, 1);
    gram_status s1 = gram__write_matrix(ctx, "/dev/stdout", a, 1, 2, NULL);
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/dev/fd/%d", fd);
    gram_status s2 = gram__write_matrix(ctx, fdpath, a + 2, 1, 2, NULL);
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    gram_status s3 = gram__write_text(ctx, fdpath, "end\n", 4);
    dup2(saved1, 1);
    close(saved1);
    close(fd);
    CHECK(s1 == GRAM_OK && s2 == GRAM_OK && s3 == GRAM_OK, "named descriptors: %d %d %d", s1, s2, s3);
    t = get_file(log, NULL);
    CHECK(t && !strcmp(t, "old\n1,2\n3,4\nend\n"), "appended through the descriptors: %s", t ? t : "(null)");
    free(t);
    CHECK(gram__write_text(ctx, "/dev/fd/999", "x", 1) == GRAM_EIO && has(msg(), "/dev/fd/999"), "closed fd: %s",
          msg());
    int ro = open(log, O_RDONLY);
    snprintf(fdpath, sizeof fdpath, "/dev/fd/%d", ro);
    CHECK(gram__write_text(ctx, fdpath, "x", 1) == GRAM_EIO && has(msg(), fdpath), "read-only fd: %s", msg());
    close(ro);

    /* Suffixes: .npy and .csv in any case, no suffix is CSV, anything else is refused. */
    CHECK(gram__output_format("a.npy") == GRAM__FMT_NPY && gram__output_format("A.NpY") == GRAM__FMT_NPY &&
              gram__output_format("a.CSV") == GRAM__FMT_CSV && gram__output_format("-") == GRAM__FMT_CSV &&
              gram__output_format("/dev/stdout") == GRAM__FMT_CSV && gram__output_format("dir.v2/out") == GRAM__FMT_CSV &&
              gram__output_format(".hidden") == GRAM__FMT_CSV && gram__output_format("out.txt") == GRAM__FMT_UNKNOWN &&
              gram__output_format("out.npz") == GRAM__FMT_UNKNOWN && gram__output_format("out.") == GRAM__FMT_UNKNOWN &&
              gram__output_format("out.csv.gz") == GRAM__FMT_UNKNOWN,
          "output formats by suffix");
    CHECK(gram__write_matrix(ctx, check_tpath("out.txt"), a, 2, 2, NULL) == GRAM_EINVAL && has(msg(), "out.txt") &&
              has(msg(), ".npy or .csv"),
          "unknown suffix: %s", msg());
    CHECK(access(check_tpath("out.txt"), F_OK) != 0, "nothing written for an unknown suffix");

    /* Two staged outputs: discarded, nothing changes; committed, both appear. */
    const char *o1 = check_tpath("s1.csv"), *o2 = check_tpath("s2.svg");
    check_put_file(o1, "old\n", 4);
    gram__output g1, g2;
    CHECK_STATUS(gram__output_stage_matrix(ctx, &g1, o1, a, 2, 2, NULL), GRAM_OK);
    CHECK_STATUS(gram__output_stage_text(ctx, &g2, o2, "<svg/>", 6), GRAM_OK);
    CHECK(count_temp_files() == 2, "two temporaries staged");
    gram__output_discard(&g1);
    gram__output_discard(&g2);
    gram__output_discard(&g2); /* twice is harmless */
    t = get_file(o1, NULL);
    CHECK(t && !strcmp(t, "old\n") && access(o2, F_OK) != 0 && count_temp_files() == 0, "discarded: nothing changed");
    free(t);
    CHECK_STATUS(gram__output_stage_matrix(ctx, &g1, o1, a, 2, 2, NULL), GRAM_OK);
    CHECK_STATUS(gram__output_stage_text(ctx, &g2, o2, "<svg/>", 6), GRAM_OK);
    CHECK_STATUS(gram__output_commit(ctx, &g1), GRAM_OK);
    CHECK_STATUS(gram__output_commit(ctx, &g2), GRAM_OK);
    CHECK_STATUS(gram__output_commit(ctx, &g2), GRAM_EINVAL); /* nothing left to commit */
    t = get_file(o1, NULL);
    char *t2 = get_file(o2, NULL);
    CHECK(t && !strcmp(t, want) && t2 && !strcmp(t2, "<svg/>") && count_temp_files() == 0, "committed both");
    free(t);
    free(t2);
    /* A failed stage leaves o safe to discard. */
    CHECK(gram__output_stage_text(ctx, &g1, check_tpath("nope/x.svg"), "x", 1) == GRAM_EIO, "stage into nothing");
    gram__output_discard(&g1);
    CHECK_STATUS(gram__output_stage_matrix(ctx, NULL, o1, a, 2, 2, NULL), GRAM_EINVAL);
}

/* ---- cancellation while blocked ---------------------------------------------------------------- */

static volatile sig_atomic_t g_alarm;
static void on_alarm(int sig)
{
    (void)sig;
    g_alarm = 1;
}
static int cancel_on_alarm(void *user, int64_t done, int64_t total)
{
    (void)user, (void)done, (void)total;
    return g_alarm != 0;
}

/* Runs case k in a child: a SIGALRM handler without SA_RESTART (as the CLI's SIGINT one) sets a
 * flag the progress callback reports; an alarm 0.2 s in must end the blocked call with
 * GRAM_ECANCELLED. Exit 0 when it did, 1 for another status; the parent kills a child still
 * blocked after 10 s (what a reader that retries EINTR forever does). */
static int cancel_case(int k)
{
    gram_context *c;
    gram_context_create(&c);
    gram_context_set_progress(c, cancel_on_alarm, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, 200000}};
    const char *fifo = check_tpath("block.fifo");
    gram__matrix m;
    gram__model_file mf;
    gram_status st = GRAM_OK;
    int p[2] = {-1, -1};
    if (k >= 2 && pipe(p) != 0) return 3;
    if (k >= 2) {
        if (k == 3) { /* a model whose payload never comes */
            static const unsigned char head[64] = {'G', 'R', 'A', 'M', 'M', 'O', 'D', 'L', 1, 0, 0, 0, 64};
            if (write(p[1], head, sizeof head) != (ssize_t)sizeof head) return 3;
        } else if (write(p[1], "x,y\n1,2\n", 8) != 8) {
            return 3;
        }
        dup2(p[0], 0);
    }
    setitimer(ITIMER_REAL, &it, NULL);
    switch (k) {
    case 0: st = gram__read_matrix(c, fifo, NULL, &m); break;              /* open: no writer */
    case 1: st = gram__write_text(c, fifo, "abc", 3); break;               /* open: no reader */
    case 2: st = gram__read_matrix(c, "-", NULL, &m); break;               /* read: a silent pipe */
    case 3: st = gram__model_load(c, "-", "gp", &mf); break;               /* the same, a model */
    default: break;
    }
    gram_context_destroy(c);
    return st == GRAM_ECANCELLED ? 0 : 1;
}

static void test_cancellation(void)
{
    const char *fifo = check_tpath("block.fifo");
    unlink(fifo);
    CHECK(mkfifo(fifo, 0644) == 0, "mkfifo");
    static const char *what[] = {"open of a FIFO without a writer", "open of a FIFO without a reader",
                                 "read of a silent pipe", "read of a model's missing payload"};
    for (int k = 0; k < 4; k++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) _exit(cancel_case(k));
        int st = 0, done = 0;
        for (int i = 0; i < 1000 && !done; i++) {
            done = waitpid(pid, &st, WNOHANG) == pid;
            if (!done) usleep(10000);
        }
        if (!done) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        CHECK(done && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: %s", what[k],
              !done ? "still blocked after 10 s" : "ended without GRAM_ECANCELLED");
    }
    unlink(fifo);
}

/* ---- locale ---------------------------------------------------------------------------------- */

static void test_locale(void)
{
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE", "fr_FR"};
    const char *got = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !got; i++) {
        if (setlocale(LC_ALL, names[i]) && !strcmp(localeconv()->decimal_point, ",")) got = names[i];
    }
    if (!got) {
        printf("note: no comma-decimal locale installed (de_DE/fr_FR); locale checks run under C.UTF-8 only\n");
        if (!setlocale(LC_ALL, "C.UTF-8")) setlocale(LC_ALL, "C");
    } else {
        char b[16];
        snprintf(b, sizeof b, "%.1f", 0.5);
        CHECK(!strcmp(b, "0,5"), "the locale %s is active (%s)", got, b);
    }
    char b[64];
    gram__format_double(b, sizeof b, 0.5);
    CHECK(!strcmp(b, "0.5"), "format under %s: %s", got ? got : "C.UTF-8", b);
    gram__format_double(b, sizeof b, -1234567.125);
    CHECK(!strcmp(b, "-1234567.125"), "format under the locale: %s", b);
    double v;
    CHECK(gram__parse_double("0.1", 3, &v) && same_bits(v, 0.1), "parse 0.1 under the locale");
    CHECK(!gram__parse_double("0,5", 3, &v), "'0,5' is not a number under any locale");
    gram__matrix m;
    CHECK_STATUS(csv("a,b\n0.5,1.25\n", -1, 0, &m), GRAM_OK);
    CHECK(m.cols == 2 && m.data && m.data[0] == 0.5 && m.data[1] == 1.25, "csv under the locale");
    gram__matrix_free(&m);
    const double a[3] = {0.1, 1e-300, -2.5};
    const char *p = check_tpath("locale.csv");
    CHECK_STATUS(gram__write_matrix(ctx, p, a, 1, 3, NULL), GRAM_OK);
    char *t = get_file(p, NULL);
    CHECK(t && !strcmp(t, "0.10000000000000001,1e-300,-2.5\n"), "csv written under the locale: %s", t);
    free(t);
    CHECK_STATUS(gram__read_matrix(ctx, p, NULL, &m), GRAM_OK);
    CHECK(matrix_equals(&m, 1, 3, a), "csv round trip under the locale");
    gram__matrix_free(&m);
    if (got) CHECK(!strcmp(localeconv()->decimal_point, ","), "the caller's locale is left as it was");
    setlocale(LC_ALL, "C");
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(check_tmpdir, sizeof check_tmpdir, "%s/gram_io_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(check_tmpdir)) {
        fprintf(stderr, "cannot create a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    gram_context_create(&ctx);
    test_numbers();
    test_npy_dtypes();
    test_npy_fortran_explicit();
    test_npy_large();
    test_npy_header_variants();
    test_npy_malformed();
    test_csv_read();
    test_files();
    test_round_trips();
    test_write_formats();
    test_write_failures();
    test_npy_more_dtypes();
    test_early_refusal();
    test_outputs();
    test_cancellation();
    test_locale();
    gram_context_destroy(ctx);

    /* Clean up the directory (only our files are in it). */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s/adir/keep", check_tmpdir);
    unlink(cmd);
    snprintf(cmd, sizeof cmd, "%s/adir", check_tmpdir);
    rmdir(cmd);
    DIR *d = opendir(check_tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(cmd, sizeof cmd, "%s/%s", check_tmpdir, e->d_name);
        unlink(cmd);
    }
    if (d) closedir(d);
    rmdir(check_tmpdir);
    return check_done();
}
