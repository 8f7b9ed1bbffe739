/* Map files (src/features/serial.c): a saved and loaded map transforms bit for bit as the original,
 * for every method, in float64 and float32; the loader takes the stored tables, not a redraw (a
 * platform with another libm gets the saver's map); every damaged, truncated or lying file is
 * refused with GRAM_EFORMAT and a message, or loads into a map whose transform works — never a
 * crash (run this under ASan too); sizes that would allocate beyond the file are refused first. */
#define _POSIX_C_SOURCE 200809L

#include "check.h"
#include "features/features.h"
#include "io/model_file.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gram_context *ctx;

static const char *msg(void) { return gram_context_message(ctx); }
static int has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

typedef struct spec_case {
    const char *kernel;
    gram_features_method method;
    int64_t D, R;
} spec_case;

/* One small map of every method (and a few kernels each), as the loader must handle them. */
static const spec_case CASES[] = {
    {"rbf(1.3)", GRAM_FEATURES_RFF, 3, 16},
    {"2.0*matern32(lengthscale=[1, 2, 3])", GRAM_FEATURES_RFF_PHASE, 3, 9},
    {"laplacian_l1(0.8)", GRAM_FEATURES_RFF, 2, 6},
    {"laplacian(0.7)", GRAM_FEATURES_ORF, 5, 12},
    {"rational_quadratic(lengthscale=1.1, alpha=0.7)", GRAM_FEATURES_ORF, 2, 10},
    {"rbf(0.9)", GRAM_FEATURES_SORF, 5, 20},
    {"0.5*rbf(2.0)", GRAM_FEATURES_POSITIVE, 4, 7},
    {"rbf(lengthscale=[1, 2, 3, 4])", GRAM_FEATURES_POSITIVE_ORF, 4, 9},
    {"rbf(1.5)", GRAM_FEATURES_HYPERBOLIC, 3, 8},
    {"rbf(1.5)", GRAM_FEATURES_HYPERBOLIC_ORF, 3, 14},
    {"polynomial(degree=3, gamma=0.5, coef0=1)", GRAM_FEATURES_TENSORSKETCH, 4, 16},
    {"1.5*linear(sigma0=0.7)", GRAM_FEATURES_TENSORSKETCH, 2, 1},
    {"arccos(degree=1)", GRAM_FEATURES_ARCCOS, 3, 10},
    {"arccos(degree=0)", GRAM_FEATURES_ARCCOS, 3, 6},
    {"arccos(degree=2)", GRAM_FEATURES_ARCCOS, 2, 5},
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))

static double *points(int64_t n, int64_t D, uint64_t seed)
{
    check_rng r = {seed};
    double *x = malloc((size_t)(n * D) * sizeof *x);
    for (int64_t i = 0; i < n * D; i++) x[i] = 0.6 * check_normal(&r);
    return x;
}

/* A map of case c, or NULL (with the reason printed) where this build does not make it yet. */
static gram_features *make(const spec_case *c, uint64_t seed)
{
    gram_kernel *k = NULL;
    gram_features *f = NULL;
    if (gram_kernel_parse(ctx, c->kernel, &k) == GRAM_OK) gram_features_create(ctx, k, c->D, c->method, c->R, seed, &f);
    if (!f) printf("  (skipped %s for %s: %s)\n", c->kernel, "this method", msg());
    gram_kernel_destroy(k);
    return f;
}

static gram_features *make_nystrom(int64_t N, int64_t D, int64_t R, gram_landmarks how, const char *spec)
{
    gram_kernel *k = NULL;
    gram_features *f = NULL;
    double *x = points(N, D, 99);
    gram_array X = gram_array_f64(x, N, D);
    if (gram_kernel_parse(ctx, spec, &k) == GRAM_OK) gram_features_nystrom(ctx, k, &X, R, how, 5, &f);
    if (!f) printf("  (skipped Nystrom %s: %s)\n", spec, msg());
    gram_kernel_destroy(k);
    free(x);
    return f;
}

/* transform of n points in dtype dt into a malloc'd buffer; status in *st. */
static void *features_of(const gram_features *f, const double *x, int64_t n, gram_dtype dt, gram_status *st)
{
    const int64_t D = gram_features_dim(f), R = gram_features_n_components(f);
    const size_t es = dt == GRAM_FLOAT32 ? sizeof(float) : sizeof(double);
    void *out = calloc((size_t)(n * R), es);
    float *x32 = malloc((size_t)(n * D) * sizeof(float));
    for (int64_t i = 0; i < n * D; i++) x32[i] = (float)x[i];
    gram_array X = dt == GRAM_FLOAT32 ? gram_array_f32(x32, n, D) : gram_array_f64(x, n, D);
    gram_array O = dt == GRAM_FLOAT32 ? gram_array_f32(out, n, R) : gram_array_f64(out, n, R);
    *st = gram_features_transform(ctx, f, &X, &O);
    free(x32);
    return out;
}

static char *spec_of(const gram_features *f) { return check_spec_of(gram_features_kernel(f)); }

/* The loaded map g is f: same arguments, same bytes when saved, same features bit for bit. */
static void check_same(const gram_features *f, const gram_features *g, const char *what)
{
    CHECK(g != NULL, "%s: not loaded: %s", what, msg());
    if (!g) return;
    const int64_t D = gram_features_dim(f), R = gram_features_n_components(f);
    CHECK(gram_features_dim(g) == D && gram_features_n_components(g) == R, "%s: shape", what);
    CHECK(gram_features_method_of(g) == gram_features_method_of(f), "%s: method", what);
    CHECK(gram_features_seed(g) == gram_features_seed(f), "%s: seed", what);
    char *a = spec_of(f), *b = spec_of(g);
    CHECK(!strcmp(a, b), "%s: kernel %s vs %s", what, a, b);
    free(a);
    free(b);
    void *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    CHECK_STATUS(gram_features_to_bytes(ctx, f, &b1, &n1), GRAM_OK);
    CHECK_STATUS(gram_features_to_bytes(ctx, g, &b2, &n2), GRAM_OK);
    CHECK(n1 == n2 && b1 && b2 && !memcmp(b1, b2, n1), "%s: saved again, other bytes", what);
    gram_free(b1);
    gram_free(b2);
    const int64_t n = 37;
    double *x = points(n, D, 7);
    for (int t = 0; t < 2; t++) {
        const gram_dtype dt = t ? GRAM_FLOAT32 : GRAM_FLOAT64;
        gram_status s1, s2;
        void *o1 = features_of(f, x, n, dt, &s1), *o2 = features_of(g, x, n, dt, &s2);
        CHECK(s1 == GRAM_OK && s2 == GRAM_OK, "%s: transform %d, %d: %s", what, (int)s1, (int)s2, msg());
        const size_t bytes = (size_t)(n * R) * (t ? sizeof(float) : sizeof(double));
        CHECK(!memcmp(o1, o2, bytes), "%s: %s features differ after loading", what, t ? "float32" : "float64");
        free(o1);
        free(o2);
    }
    free(x);
}

static void round_trip(gram_features *f, const char *what)
{
    void *buf = NULL;
    size_t size = 0;
    CHECK_STATUS(gram_features_to_bytes(ctx, f, &buf, &size), GRAM_OK);
    gram_features *g = NULL;
    CHECK_STATUS(gram_features_from_bytes(ctx, buf, size, &g), GRAM_OK);
    check_same(f, g, what);
    gram_features_destroy(g);
    gram_free(buf);

    const char *path = check_tpath("map.gram");
    CHECK_STATUS(gram_features_save(ctx, f, path), GRAM_OK);
    g = NULL;
    CHECK_STATUS(gram_features_load(ctx, path, &g), GRAM_OK);
    check_same(f, g, what);
    gram_features_destroy(g);
    unlink(path);
}

static int n_made;

static void test_round_trip(void)
{
    for (int c = 0; c < N_CASES; c++) {
        /* a seed above 2^63 is stored as its two's complement and must come back */
        gram_features *f = make(&CASES[c], c % 2 ? 0xfedcba9876543210ull : (uint64_t)c);
        if (!f) continue;
        n_made++;
        char what[160];
        snprintf(what, sizeof what, "%s, method %d", CASES[c].kernel, (int)CASES[c].method);
        round_trip(f, what);
        gram_features_destroy(f);
    }
    static const char *const ny_specs[] = {"rbf(0.8)", "0.5*matern52(1.2) + 0.1*polynomial(degree=2)"};
    for (int h = 0; h < 3; h++)
        for (int s = 0; s < 2; s++) {
            gram_features *f = make_nystrom(40, 3, 12, (gram_landmarks)h, ny_specs[s]);
            if (!f) continue;
            n_made++;
            char what[160];
            snprintf(what, sizeof what, "Nystrom %d %s", h, ny_specs[s]);
            round_trip(f, what);
            gram_features_destroy(f);
        }
    printf("  %d maps saved and loaded\n", n_made);
    CHECK(n_made >= 12, "every method of the foundation is covered (%d maps)", n_made);
}

/* ---- files edited through the container (valid checksums, lying contents) ------------------- */

static unsigned char *bytes_of(const gram_features *f, size_t *size)
{
    void *buf = NULL;
    CHECK_STATUS(gram_features_to_bytes(ctx, f, &buf, size), GRAM_OK);
    return buf;
}

typedef void (*edit_fn)(gram__model_file *m, void *arg);

/* The file buf with its entries edited by fn, CRC recomputed: a file only the contents betray. */
static unsigned char *edited(const unsigned char *buf, size_t size, edit_fn fn, void *arg, size_t *out_size)
{
    gram__model_file m;
    CHECK_STATUS(gram__model_from_bytes(ctx, "edit", buf, size, "features", &m), GRAM_OK);
    fn(&m, arg);
    unsigned char *out = NULL;
    CHECK_STATUS(gram__model_to_bytes(ctx, &m, &out, out_size), GRAM_OK);
    gram__model_file_free(&m);
    return out;
}

static gram__entry *entry(gram__model_file *m, const char *name)
{
    for (int64_t i = 0; i < m->n; i++)
        if (!strcmp(m->entries[i].name, name)) return &m->entries[i];
    CHECK(0, "entry %s missing", name);
    return NULL;
}

typedef struct edit {
    const char *name;
    int64_t index;     /* f64: which value; i64: -1 */
    double value;
    int64_t i64;
    int64_t rows, cols; /* > 0: the matrix's declared shape (values beyond are dropped) */
    const char *str;
} edit;

static void apply_edit(gram__model_file *m, void *arg)
{
    const edit *e = arg;
    gram__entry *x = entry(m, e->name);
    if (!x) return;
    if (e->str) {
        free(x->str);
        x->str = strdup(e->str);
    } else if (x->type == GRAM__ENTRY_I64) {
        x->i64 = e->i64;
    } else if (e->rows > 0) {
        x->rows = e->rows;
        x->cols = e->cols;
    } else {
        x->f64[e->index] = e->value;
    }
}

/* Loads buf as edited by e: the status, with the message checked to contain want_msg. */
static void expect_refused(const unsigned char *buf, size_t size, edit e, const char *want_msg)
{
    size_t n = 0;
    unsigned char *b = edited(buf, size, apply_edit, &e, &n);
    gram_features *g = (gram_features *)(uintptr_t)1;
    gram_status s = gram_features_from_bytes(ctx, b, n, &g);
    CHECK(s == GRAM_EFORMAT && g == NULL, "edit of %s: status %d (want GRAM_EFORMAT): %s", e.name, (int)s, msg());
    CHECK(has(msg(), want_msg), "edit of %s: message '%s' lacks '%s'", e.name, msg(), want_msg);
    if (s == GRAM_OK) gram_features_destroy(g);
    gram__free(b);
}

static void test_stored_tables_used(void)
{
    /* The loader must take Ω from the file, not redraw it from the seed. */
    gram_features *f = make(&CASES[0], 3);
    size_t size = 0;
    unsigned char *buf = bytes_of(f, &size);
    edit e = {.name = "omega", .index = 4, .value = 0.4375};
    size_t n = 0;
    unsigned char *b = edited(buf, size, apply_edit, &e, &n);
    gram_features *g = NULL;
    CHECK_STATUS(gram_features_from_bytes(ctx, b, n, &g), GRAM_OK);
    const int64_t F = gram_features_n_frequencies(f), D = gram_features_dim(f);
    double *w = malloc((size_t)(F * D) * sizeof *w), *w0 = malloc((size_t)(F * D) * sizeof *w0);
    gram_array W = gram_array_f64(w, F, D), W0 = gram_array_f64(w0, F, D);
    CHECK_STATUS(gram_features_frequencies(g, &W, NULL), GRAM_OK);
    CHECK_STATUS(gram_features_frequencies(f, &W0, NULL), GRAM_OK);
    CHECK(w[4] == 0.4375, "the stored frequency is used (got %.17g)", w[4]);
    int others = 1;
    for (int64_t i = 0; i < F * D; i++) others &= i == 4 || w[i] == w0[i];
    CHECK(others, "the other frequencies are the stored ones");
    /* and the float32 table follows it: features of a point along that coordinate differ */
    double x[3] = {0.0, 1.0, 0.0}; /* omega[4] is row 1, coordinate 1 */
    gram_status s1, s2;
    float *p1 = features_of(f, x, 1, GRAM_FLOAT32, &s1), *p2 = features_of(g, x, 1, GRAM_FLOAT32, &s2);
    CHECK(s1 == GRAM_OK && s2 == GRAM_OK && p1[1] != p2[1] && p1[0] == p2[0], "float32 table rebuilt from omega");
    free(p1);
    free(p2);
    free(w);
    free(w0);
    gram_features_destroy(g);
    gram__free(b);
    gram_free(buf);
    gram_features_destroy(f);
}

static gram_features *make_case(gram_features_method m)
{
    for (int c = 0; c < N_CASES; c++)
        if (CASES[c].method == m) return make(&CASES[c], 11);
    return NULL;
}

static void test_lies(void)
{
    size_t size = 0;
    gram_features *f = make_case(GRAM_FEATURES_RFF_PHASE);
    unsigned char *buf = bytes_of(f, &size);
    expect_refused(buf, size, (edit){.name = "omega", .index = 2, .value = NAN}, "non-finite");
    expect_refused(buf, size, (edit){.name = "omega", .index = 0, .value = INFINITY}, "non-finite");
    expect_refused(buf, size, (edit){.name = "phase", .index = 1, .value = -0.5}, "phase 1");
    expect_refused(buf, size, (edit){.name = "phase", .index = 1, .value = 7.0}, "outside [0, 2 pi]");
    expect_refused(buf, size, (edit){.name = "method", .str = "fourier"}, "unknown feature method 'fourier'");
    expect_refused(buf, size, (edit){.name = "method", .str = "sorf"}, "signs");
    expect_refused(buf, size, (edit){.name = "method", .str = "rff"}, "omega"); /* R = 9 is odd: F = 4 */
    expect_refused(buf, size, (edit){.name = "kernel", .str = "rbf(("}, "does not parse");
    expect_refused(buf, size, (edit){.name = "kernel", .str = "rbf(lengthscale=[1, 2])"}, "ARD");
    expect_refused(buf, size, (edit){.name = "kernel", .str = "polynomial(degree=2)"}, "methods that do");
    expect_refused(buf, size, (edit){.name = "D", .i64 = 0}, "1 <= D");
    expect_refused(buf, size, (edit){.name = "R", .i64 = -4}, "R");
    /* absurd sizes with small tables: refused by the tables' shapes, before create allocates */
    expect_refused(buf, size, (edit){.name = "D", .i64 = (int64_t)1 << 30}, "ARD");
    expect_refused(buf, size, (edit){.name = "R", .i64 = INT32_MAX}, "entry 'omega' is 9 x 3");
    expect_refused(buf, size, (edit){.name = "R", .i64 = (int64_t)1 << 40}, "2^31 - 1");
    expect_refused(buf, size, (edit){.name = "omega", .rows = 3, .cols = 3}, "entry 'omega' is 3 x 3");
    gram_free(buf);
    gram_features_destroy(f);

    f = make_case(GRAM_FEATURES_RFF); /* rbf(1.3), D = 3, R = 16 */
    buf = bytes_of(f, &size);
    expect_refused(buf, size, (edit){.name = "D", .i64 = (int64_t)1 << 30}, "entry 'omega' is 8 x 3, expected 8 x 1073741824");
    expect_refused(buf, size, (edit){.name = "R", .i64 = 2000000000}, "expected 1000000000 x 3");
    gram_free(buf);
    gram_features_destroy(f);

    /* the orthogonal methods load through their i.i.d. twin: their own coverage still holds */
    f = make_case(GRAM_FEATURES_ORF);
    buf = bytes_of(f, &size);
    expect_refused(buf, size, (edit){.name = "kernel", .str = "laplacian_l1(1)"}, "ORF features do not cover the laplacian_l1");
    expect_refused(buf, size, (edit){.name = "kernel", .str = "polynomial(degree=2)"}, "ORF features do not cover");
    expect_refused(buf, size, (edit){.name = "R", .i64 = 13}, "must be even, got 13");
    gram_free(buf);
    gram_features_destroy(f);

    f = make_case(GRAM_FEATURES_SORF);
    buf = bytes_of(f, &size);
    expect_refused(buf, size, (edit){.name = "signs", .index = 5, .value = 0}, "+1 or -1");
    expect_refused(buf, size, (edit){.name = "signs", .index = 7, .value = 2}, "+1 or -1");
    expect_refused(buf, size, (edit){.name = "signs", .index = 7, .value = -0.5}, "+1 or -1");
    expect_refused(buf, size, (edit){.name = "D", .i64 = (int64_t)1 << 29}, "entry 'signs'");
    expect_refused(buf, size, (edit){.name = "kernel", .str = "laplacian(1)"}, "SORF features do not cover");
    gram_free(buf);
    gram_features_destroy(f);

    f = make_case(GRAM_FEATURES_TENSORSKETCH);
    buf = bytes_of(f, &size);
    expect_refused(buf, size, (edit){.name = "hash", .index = 3, .value = 16}, "hash");
    expect_refused(buf, size, (edit){.name = "hash", .index = 3, .value = -1}, "hash");
    expect_refused(buf, size, (edit){.name = "hash", .index = 3, .value = 2.5}, "hash");
    expect_refused(buf, size, (edit){.name = "signs", .index = 0, .value = 0}, "+1 or -1");
    expect_refused(buf, size, (edit){.name = "twiddle", .index = 3, .value = 0.5}, "twiddle 3");
    expect_refused(buf, size, (edit){.name = "kernel", .str = "polynomial(degree=2, gamma=0.5, coef0=1)"},
                   "count sketches stored for a kernel of degree 2");
    expect_refused(buf, size, (edit){.name = "R", .i64 = (int64_t)1 << 30}, "entry 'twiddle' is 8 x 2");
    expect_refused(buf, size, (edit){.name = "D", .i64 = (int64_t)1 << 30}, "entry 'hash'");
    expect_refused(buf, size, (edit){.name = "R", .i64 = 12}, "entry 'twiddle'");
    gram_free(buf);
    gram_features_destroy(f);

    f = make_case(GRAM_FEATURES_ARCCOS);
    if (f) {
        buf = bytes_of(f, &size);
        expect_refused(buf, size, (edit){.name = "arccos_n", .i64 = 2}, "arccos_n");
        gram_free(buf);
        gram_features_destroy(f);
    }

    f = make_nystrom(30, 2, 8, GRAM_LANDMARKS_UNIFORM, "rbf(1)");
    if (f) {
        buf = bytes_of(f, &size);
        expect_refused(buf, size, (edit){.name = "landmark_idx", .index = 2, .value = -1}, "landmark_idx");
        expect_refused(buf, size, (edit){.name = "landmark_idx", .index = 2, .value = 1.5}, "landmark_idx");
        expect_refused(buf, size, (edit){.name = "landmarks", .index = 2, .value = NAN}, "non-finite");
        expect_refused(buf, size, (edit){.name = "proj", .index = 9, .value = INFINITY}, "non-finite");
        expect_refused(buf, size, (edit){.name = "rank", .i64 = 9}, "rank 9");
        expect_refused(buf, size, (edit){.name = "eig_tol", .index = 0, .value = -1}, "tolerance");
        expect_refused(buf, size, (edit){.name = "landmarks_how", .str = "random"}, "'random'");
        expect_refused(buf, size, (edit){.name = "R", .i64 = (int64_t)1 << 30}, "entry 'landmark_idx'");
        expect_refused(buf, size, (edit){.name = "kernel", .str = "rbf(lengthscale=[1, 2, 3])"}, "ARD");
        gram_free(buf);
        gram_features_destroy(f);
    }
}

/* A file that is not a map, and the NULL arguments. */
static void test_other_files(void)
{
    gram__model_file m;
    gram__model_file_init(&m, "krr");
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "D", 2), GRAM_OK);
    unsigned char *b = NULL;
    size_t n = 0;
    CHECK_STATUS(gram__model_to_bytes(ctx, &m, &b, &n), GRAM_OK);
    gram__model_file_free(&m);
    gram_features *g = NULL;
    CHECK_STATUS(gram_features_from_bytes(ctx, b, n, &g), GRAM_EFORMAT);
    CHECK(has(msg(), "krr") && has(msg(), "features"), "a model of another kind: %s", msg());
    gram__free(b);

    CHECK_STATUS(gram_features_load(ctx, check_tpath("missing.map"), &g), GRAM_EIO);
    CHECK(g == NULL && has(msg(), "missing.map"), "a missing file is named: %s", msg());
    CHECK_STATUS(gram_features_from_bytes(ctx, NULL, 3, &g), GRAM_EINVAL);
    CHECK_STATUS(gram_features_load(ctx, NULL, &g), GRAM_EINVAL);
    CHECK_STATUS(gram_features_save(ctx, NULL, "x"), GRAM_EINVAL);
    void *buf;
    size_t size;
    CHECK_STATUS(gram_features_to_bytes(ctx, NULL, &buf, &size), GRAM_EINVAL);
    static const char junk[] = "GRAMMODL but nothing more";
    CHECK_STATUS(gram_features_from_bytes(ctx, junk, sizeof junk, &g), GRAM_EFORMAT);
    CHECK(has(msg(), "map bytes"), "bytes are named in messages: %s", msg());
}

/* ---- damage: every single byte, every truncation --------------------------------------------- */

static uint32_t get_u32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A loaded damaged map must work: transform gives GRAM_OK with finite features, or a clean error. */
static int harmless(gram_features *g)
{
    const int64_t D = gram_features_dim(g), R = gram_features_n_components(g);
    if (D < 1 || R < 1 || D > 64 || R > 4096) return 0; /* a small file cannot hold more */
    double *x = points(5, D, 17);
    int ok = 1;
    for (int t = 0; t < 2; t++) {
        gram_status s;
        void *o = features_of(g, x, 5, t ? GRAM_FLOAT32 : GRAM_FLOAT64, &s);
        if (s == GRAM_OK)
            for (int64_t i = 0; i < 5 * R; i++) ok &= t ? isfinite(((float *)o)[i]) : isfinite(((double *)o)[i]);
        else ok &= s == GRAM_EDOMAIN && msg()[0] != '\0';
        free(o);
    }
    free(x);
    return ok;
}

static void test_damage(void)
{
    long detected = 0, loaded = 0, crc_caught = 0;
    static const unsigned char flips[] = {0x01, 0x10, 0x80, 0xff};
    const gram_features_method methods[] = {GRAM_FEATURES_RFF,          GRAM_FEATURES_RFF_PHASE,
                                            GRAM_FEATURES_SORF,         GRAM_FEATURES_TENSORSKETCH,
                                            GRAM_FEATURES_POSITIVE_ORF, GRAM_FEATURES_ARCCOS};
    for (size_t mi = 0; mi < sizeof methods / sizeof methods[0] + 1; mi++) {
        gram_features *f = mi < sizeof methods / sizeof methods[0] ? make_case(methods[mi])
                                                                   : make_nystrom(12, 2, 3, GRAM_LANDMARKS_KMEANSPP, "rbf(1)");
        if (!f) continue;
        size_t size = 0;
        unsigned char *buf = bytes_of(f, &size);
        unsigned char *b = malloc(size);
        for (size_t i = 0; i < size; i++)
            for (size_t k = 0; k < sizeof flips; k++) {
                for (int repair = 0; repair < 2; repair++) {
                    memcpy(b, buf, size);
                    b[i] ^= flips[k];
                    if (repair) {
                        if (i >= size - 4) continue;
                        put_u32(b + size - 4, gram__crc32(0, b, size - 4));
                    } else if (get_u32(b + size - 4) == gram__crc32(0, b, size - 4)) {
                        CHECK(0, "a one-byte change at %zu kept the CRC", i);
                    }
                    gram_features *g = (gram_features *)(uintptr_t)1;
                    gram_status s = gram_features_from_bytes(ctx, b, size, &g);
                    if (s == GRAM_OK) {
                        loaded++;
                        CHECK(repair, "a one-byte change at %zu passed the checksum", i);
                        CHECK(harmless(g), "byte %zu ^ %#x: a loaded map fails in use: %s", i, flips[k], msg());
                        gram_features_destroy(g);
                    } else {
                        detected++;
                        crc_caught += !repair;
                        CHECK(g == NULL && msg()[0] != '\0', "byte %zu: refused with a message", i);
                        CHECK(s == GRAM_EFORMAT || s == GRAM_ENOMEM, "byte %zu ^ %#x: status %d: %s", i, flips[k],
                              (int)s, msg());
                    }
                }
            }
        /* every truncation, and one byte too many */
        for (size_t len = 0; len < size; len++) {
            gram_features *g = NULL;
            CHECK_STATUS(gram_features_from_bytes(ctx, buf, len, &g), GRAM_EFORMAT);
            CHECK(g == NULL, "truncated to %zu", len);
        }
        unsigned char *longer = malloc(size + 1);
        memcpy(longer, buf, size);
        longer[size] = 0;
        gram_features *g = NULL;
        CHECK_STATUS(gram_features_from_bytes(ctx, longer, size + 1, &g), GRAM_EFORMAT);
        free(longer);
        free(b);
        gram_free(buf);
        gram_features_destroy(f);
    }
    printf("  damaged files: %ld refused (%ld by the checksum), %ld loaded with a repaired checksum and "
           "harmless\n", detected, crc_caught, loaded);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(check_tmpdir, sizeof check_tmpdir, "%s/gram_map_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(check_tmpdir)) {
        fprintf(stderr, "cannot create a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    gram_context_create(&ctx);
    gram_context_set_threads(ctx, 2);
    test_round_trip();
    test_stored_tables_used();
    test_lies();
    test_other_files();
    test_damage();
    gram_context_destroy(ctx);
    rmdir(check_tmpdir);
    return check_done();
}
