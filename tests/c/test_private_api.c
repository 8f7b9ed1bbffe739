/* The public API of the private sketches (src/private/private.c, serial.c): every bad argument is
 * refused with its own message and no sketch; rows outside the domain are clipped and counted; a
 * sketch file round trips bit for bit (the same queries after load), refuses every damaged, newer
 * or lying file with GRAM_EFORMAT (never a crash: run under ASan too), and holds no row of the
 * data; queries check their shapes; the accountant composes as gram.h says. The families'
 * numerics and the noise are tested in test_private_{kernels,distances,noise}.c. */
#define _POSIX_C_SOURCE 200809L

#include "check.h"
#include "io/model_file.h"
#include "private/private.h"

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static gram_context *ctx;

static const char *msg(void) { return gram_context_message(ctx); }
static int has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

static const char *const SIM[] = {"gaussian", "exponential", "cauchy", "l1", "l2", "lpp"};

/* Points in the ball of radius 1 (d ≤ 8): uniform in [-0.3, 0.3)^d. */
static double *points(int64_t n, int64_t d, uint64_t seed)
{
    check_rng r = {seed};
    double *x = malloc((size_t)(n * d) * sizeof *x);
    for (int64_t i = 0; i < n * d; i++) x[i] = 0.6 * check_uniform(&r) - 0.3;
    return x;
}

/* Small, fast options for similarity f (noise from a test seed, so runs are reproducible). */
static gram_private_options small_opts(gram_private_similarity f)
{
    gram_private_options o;
    gram_private_options_init(&o);
    o.radius = 1;
    o.bandwidth = f <= GRAM_PRIVATE_CAUCHY ? 0.7 : 0;
    o.p = f == GRAM_PRIVATE_LPP ? 1.5 : 1;
    o.n_components = f <= GRAM_PRIVATE_CAUCHY ? 16 : f == GRAM_PRIVATE_L2 ? 6 : 0;
    o.n_terms = f == GRAM_PRIVATE_CAUCHY ? 4 : 0;
    o.levels = f >= GRAM_PRIVATE_L1 ? 4 : 0;
    o.seed = 11;
    o.has_seed = 1;
    o.noise_seed = 1234;
    o.has_noise_seed = 1;
    return o;
}

static gram_private_sketch *fit(gram_private_similarity f, const double *x, int64_t n, int64_t d,
                                const gram_private_options *o, double eps, double delta)
{
    gram_private_sketch *s = NULL;
    gram_array X = gram_array_f64(x, n, d);
    gram_status st = gram_private_fit(ctx, &X, f, eps, delta, o, &s);
    CHECK(st == GRAM_OK && s, "fit %s: status %d: %s", SIM[f], (int)st, msg());
    return st ? NULL : s;
}

static double *query(const gram_private_sketch *s, const double *y, int64_t m, int64_t d, int mean)
{
    double *out = calloc((size_t)m, sizeof *out);
    gram_array Y = gram_array_f64(y, m, d), O = gram_array_f64(out, m, 1);
    gram_status st = mean ? gram_private_query_mean(ctx, s, &Y, &O) : gram_private_query(ctx, s, &Y, &O);
    CHECK(st == GRAM_OK, "query: status %d: %s", (int)st, msg());
    return out;
}

/* ---- validation ---------------------------------------------------------------------------- */

typedef struct bad_case {
    const char *what;
    gram_private_similarity f;
    double eps, delta;
    void (*edit)(gram_private_options *o);
    gram_status want;
    const char *want_msg;
} bad_case;

static void e_none(gram_private_options *o) { (void)o; }
static void e_radius0(gram_private_options *o) { o->radius = 0; }
static void e_radius_neg(gram_private_options *o) { o->radius = -2; }
static void e_radius_inf(gram_private_options *o) { o->radius = INFINITY; }
static void e_radius_nan(gram_private_options *o) { o->radius = NAN; }
static void e_bw0(gram_private_options *o) { o->bandwidth = 0; }
static void e_bw_neg(gram_private_options *o) { o->bandwidth = -1; }
static void e_bw_nan(gram_private_options *o) { o->bandwidth = NAN; }
static void e_p0(gram_private_options *o) { o->p = 0; }
static void e_p_big(gram_private_options *o) { o->p = 2.5; }
static void e_p_nan(gram_private_options *o) { o->p = NAN; }
static void e_R_odd(gram_private_options *o) { o->n_components = 15; }
static void e_R_neg(gram_private_options *o) { o->n_components = -4; }
static void e_R_huge(gram_private_options *o) { o->n_components = (int64_t)1 << 40; }
static void e_k_neg(gram_private_options *o) { o->reduced_dim = -1; }
static void e_levels_neg(gram_private_options *o) { o->levels = -1; }
static void e_levels_big(gram_private_options *o) { o->levels = 31; }
static void e_terms_big(gram_private_options *o) { o->n_terms = 65; }
static void e_baseline(gram_private_options *o) { o->mechanism = GRAM_PRIVATE_BASELINE; }
static void e_mech(gram_private_options *o) { o->mechanism = (gram_private_mechanism)2; }
static void e_domain(gram_private_options *o) { o->domain = (gram_private_domain)7; }
static void e_neigh(gram_private_options *o) { o->neighbours = (gram_private_neighbours)3; }

static const bad_case BAD[] = {
    {"epsilon 0", GRAM_PRIVATE_L1, 0, 0, e_none, GRAM_EINVAL, "epsilon must be > 0 and finite, got 0"},
    {"epsilon < 0", GRAM_PRIVATE_GAUSSIAN, -1, 0, e_none, GRAM_EINVAL, "epsilon must be > 0 and finite, got -1"},
    {"epsilon NaN", GRAM_PRIVATE_L1, NAN, 0, e_none, GRAM_EINVAL, "epsilon must be > 0 and finite, got nan"},
    {"epsilon Inf", GRAM_PRIVATE_L1, INFINITY, 0, e_none, GRAM_EINVAL, "epsilon must be > 0 and finite, got inf"},
    {"delta < 0", GRAM_PRIVATE_L1, 1, -0.1, e_none, GRAM_EINVAL, "delta must be in [0, 1), got -0.1"},
    {"delta 1", GRAM_PRIVATE_GAUSSIAN, 1, 1, e_none, GRAM_EINVAL, "delta must be in [0, 1), got 1"},
    {"delta NaN", GRAM_PRIVATE_L1, 1, NAN, e_none, GRAM_EINVAL, "delta must be in [0, 1), got nan"},
    {"radius missing", GRAM_PRIVATE_L1, 1, 0, e_radius0, GRAM_EINVAL, "radius (the domain bound) is required and must be > 0 and finite, got 0"},
    {"radius < 0", GRAM_PRIVATE_L2, 1, 0, e_radius_neg, GRAM_EINVAL, "radius (the domain bound) is required and must be > 0 and finite, got -2"},
    {"radius Inf", GRAM_PRIVATE_GAUSSIAN, 1, 0, e_radius_inf, GRAM_EINVAL, "got inf"},
    {"radius NaN", GRAM_PRIVATE_GAUSSIAN, 1, 0, e_radius_nan, GRAM_EINVAL, "got nan"},
    {"bandwidth 0", GRAM_PRIVATE_GAUSSIAN, 1, 0, e_bw0, GRAM_EINVAL, "bandwidth must be > 0 and finite for the gaussian kernel, got 0"},
    {"bandwidth < 0", GRAM_PRIVATE_EXPONENTIAL, 1, 0, e_bw_neg, GRAM_EINVAL, "bandwidth must be > 0 and finite for the exponential kernel, got -1"},
    {"bandwidth NaN", GRAM_PRIVATE_CAUCHY, 1, 0, e_bw_nan, GRAM_EINVAL, "for the cauchy kernel, got nan"},
    {"p 0", GRAM_PRIVATE_LPP, 1, 0, e_p0, GRAM_EINVAL, "p must be in (0, 2] for lpp, got 0"},
    {"p 2.5", GRAM_PRIVATE_LPP, 1, 0, e_p_big, GRAM_EINVAL, "p must be in (0, 2] for lpp, got 2.5"},
    {"p NaN", GRAM_PRIVATE_LPP, 1, 0, e_p_nan, GRAM_EINVAL, "got nan"},
    {"R odd", GRAM_PRIVATE_GAUSSIAN, 1, 0, e_R_odd, GRAM_EINVAL, "n_components must be an even number of random features in 2..16777216 for the gaussian kernel (cos/sin pairs), got 15"},
    {"R < 0", GRAM_PRIVATE_EXPONENTIAL, 1, 0, e_R_neg, GRAM_EINVAL, "n_components must be >= 0 (0: the default), got -4"},
    {"R absurd", GRAM_PRIVATE_CAUCHY, 1, 0, e_R_huge, GRAM_EINVAL, "got 1099511627776"},
    {"l2 k absurd", GRAM_PRIVATE_L2, 1, 0, e_R_huge, GRAM_EINVAL, "n_components (the l1 projections of l2) must be in 1..16777216"},
    {"reduced_dim < 0", GRAM_PRIVATE_GAUSSIAN, 1, 0, e_k_neg, GRAM_EINVAL, "reduced_dim must be >= 0 (0: the default), got -1"},
    {"levels < 0", GRAM_PRIVATE_L1, 1, 0, e_levels_neg, GRAM_EINVAL, "levels must be in 0..30 (0: chosen from n and epsilon), got -1"},
    {"levels 31", GRAM_PRIVATE_L1, 1, 0, e_levels_big, GRAM_EINVAL, "got 31"},
    {"n_terms 65", GRAM_PRIVATE_CAUCHY, 1, 0, e_terms_big, GRAM_EINVAL, "n_terms must be in 0..64 (0: 8), got 65"},
    {"baseline cauchy", GRAM_PRIVATE_CAUCHY, 1, 0, e_baseline, GRAM_EINVAL, "mechanism 'baseline' does not exist for cauchy (baselines: gaussian, exponential and l1)"},
    {"baseline l2", GRAM_PRIVATE_L2, 1, 0, e_baseline, GRAM_EINVAL, "does not exist for l2"},
    {"baseline lpp", GRAM_PRIVATE_LPP, 1, 0, e_baseline, GRAM_EINVAL, "does not exist for lpp"},
    {"mechanism 2", GRAM_PRIVATE_L1, 1, 0, e_mech, GRAM_EINVAL, "unknown mechanism 2"},
    {"domain 7", GRAM_PRIVATE_L1, 1, 0, e_domain, GRAM_EINVAL, "unknown domain 7"},
    {"neighbours 3", GRAM_PRIVATE_L1, 1, 0, e_neigh, GRAM_EINVAL, "unknown neighbours 3"},
    {"similarity 6", (gram_private_similarity)6, 1, 0, e_none, GRAM_EINVAL, "unknown similarity 6"},
    {"similarity -1", (gram_private_similarity)-1, 1, 0, e_none, GRAM_EINVAL, "unknown similarity -1"},
};

static void expect_fit_refused(const char *what, const gram_array *X, gram_private_similarity f, double eps,
                               double delta, const gram_private_options *o, gram_status want, const char *want_msg)
{
    gram_private_sketch *s = (gram_private_sketch *)(uintptr_t)1;
    gram_status st = gram_private_fit(ctx, X, f, eps, delta, o, &s);
    CHECK(st == want && s == NULL, "%s: status %d (want %d), sketch %p: %s", what, (int)st, (int)want, (void *)s, msg());
    CHECK(has(msg(), want_msg), "%s: message '%s' lacks '%s'", what, msg(), want_msg);
    if (st == GRAM_OK) gram_private_sketch_destroy(s);
}

static void test_validation(void)
{
    gram_private_options o;
    gram_private_options_init(&o);
    CHECK(o.mechanism == GRAM_PRIVATE_PAPER && o.domain == GRAM_PRIVATE_BALL && o.radius == 0 && o.bandwidth == 0 &&
              o.p == 1 && o.neighbours == GRAM_PRIVATE_REPLACE && o.n_components == 0 && o.reduced_dim == 0 &&
              o.levels == 0 && o.n_terms == 0 && !o.has_seed && !o.has_noise_seed,
          "gram_private_options_init's defaults are not gram.h's");
    double *x = points(5, 3, 1);
    gram_array X = gram_array_f64(x, 5, 3);
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        const bad_case *c = &BAD[i];
        gram_private_options oo = small_opts((int)c->f >= 0 && (int)c->f < 6 ? c->f : GRAM_PRIVATE_L1);
        c->edit(&oo);
        expect_fit_refused(c->what, &X, c->f, c->eps, c->delta, &oo, c->want, c->want_msg);
    }
    /* X: empty, non-finite (the first bad entry named), NULL arguments */
    gram_private_options ok = small_opts(GRAM_PRIVATE_L1);
    gram_array E0 = gram_array_f64(x, 0, 3), E1 = gram_array_f64(x, 5, 0);
    expect_fit_refused("0 rows", &E0, GRAM_PRIVATE_L1, 1, 0, &ok, GRAM_ESHAPE, "X is empty (0 x 3)");
    expect_fit_refused("0 columns", &E1, GRAM_PRIVATE_L1, 1, 0, &ok, GRAM_ESHAPE, "X is empty (5 x 0)");
    x[1 * 3 + 2] = NAN;
    expect_fit_refused("NaN", &X, GRAM_PRIVATE_L1, 1, 0, &ok, GRAM_ENONFINITE, "X: row 1, column 2 is NaN");
    x[1 * 3 + 2] = 0;
    float xf[6] = {0, 0, 0, 0, -INFINITY, 0};
    gram_array XF = gram_array_f32(xf, 2, 3);
    gram_private_options og = small_opts(GRAM_PRIVATE_GAUSSIAN);
    expect_fit_refused("-Inf float32", &XF, GRAM_PRIVATE_GAUSSIAN, 1, 0, &og, GRAM_ENONFINITE,
                       "X: row 1, column 1 is -Inf");
    expect_fit_refused("NULL opt", &X, GRAM_PRIVATE_L1, 1, 0, NULL, GRAM_EINVAL, "opt is NULL");
    expect_fit_refused("NULL X", NULL, GRAM_PRIVATE_L1, 1, 0, &ok, GRAM_EINVAL, "X must not be NULL");
    CHECK_STATUS(gram_private_fit(ctx, &X, GRAM_PRIVATE_L1, 1, 0, &ok, NULL), GRAM_EINVAL);
    /* A bad parameter is reported before non-finite data: the options first, as documented. */
    x[0] = NAN;
    gram_private_options o0 = small_opts(GRAM_PRIVATE_L1);
    o0.radius = 0;
    expect_fit_refused("radius before NaN", &X, GRAM_PRIVATE_L1, 1, 0, &o0, GRAM_EINVAL, "radius");
    free(x);
}

/* ---- the accountant ------------------------------------------------------------------------ */

/* A sketch holding only what the accountant reads (hand-made: the accountant needs no family). */
static gram_private_sketch *fake(double eps, double delta, gram_private_neighbours nb, int test_noise)
{
    gram_private_sketch *s = calloc(1, sizeof *s);
    s->epsilon = eps;
    s->delta = delta;
    s->neighbours = nb;
    s->test_noise = test_noise;
    return s;
}

static void expect_total(gram_privacy_accountant *a, double eps, double delta, const char *what)
{
    double e = -1, d = -1;
    CHECK_STATUS(gram_privacy_accountant_total(a, &e, &d), GRAM_OK);
    CHECK_CLOSE(e, eps, 1e-15, 0, what);
    CHECK_CLOSE(d, delta, 1e-15, 0, what);
    CHECK(e >= eps * (1 - 1e-16) && d >= delta * (1 - 1e-16), "%s: total below the sum", what);
}

static void test_accountant(void)
{
    gram_privacy_accountant *a = NULL;
    CHECK_STATUS(gram_privacy_accountant_create(ctx, &a), GRAM_OK);
    expect_total(a, 0, 0, "empty");
    gram_private_sketch *r1 = fake(0.5, 1e-6, GRAM_PRIVATE_REPLACE, 0), *r2 = fake(0.25, 0, GRAM_PRIVATE_REPLACE, 0);
    gram_private_sketch *w = fake(1.0, 1e-7, GRAM_PRIVATE_ADD_REMOVE, 0);
    /* sequential composition: replace-one sketches add */
    CHECK_STATUS(gram_privacy_accountant_add(ctx, a, r1, -1, 0), GRAM_OK);
    CHECK_STATUS(gram_privacy_accountant_add(ctx, a, r2, -1, 0), GRAM_OK);
    CHECK_STATUS(gram_privacy_accountant_add(ctx, a, r1, -1, 0), GRAM_OK); /* the same release twice costs twice */
    expect_total(a, 1.25, 2e-6, "three replace-one sketches");
    /* a whole-data add/remove sketch costs 2ε, 2δ under replace-one */
    CHECK_STATUS(gram_privacy_accountant_add(ctx, a, w, -1, 0), GRAM_OK);
    expect_total(a, 3.25, 2.2e-6, "plus an add/remove sketch");
    CHECK(gram_privacy_accountant_count(a) == 4, "count %lld", (long long)gram_privacy_accountant_count(a));
    gram_privacy_accountant_destroy(a);

    /* a partition: one sketch per class, add/remove; the two most expensive parts */
    CHECK_STATUS(gram_privacy_accountant_create(ctx, &a), GRAM_OK);
    gram_private_sketch *p[4] = {fake(0.5, 1e-6, GRAM_PRIVATE_ADD_REMOVE, 0), fake(0.5, 1e-6, GRAM_PRIVATE_ADD_REMOVE, 0),
                                 fake(0.5, 1e-6, GRAM_PRIVATE_ADD_REMOVE, 0), fake(0.3, 4e-6, GRAM_PRIVATE_ADD_REMOVE, 1)};
    for (int i = 0; i < 3; i++) CHECK_STATUS(gram_privacy_accountant_add(ctx, a, p[i], 0, i), GRAM_OK);
    expect_total(a, 1.0, 2e-6, "three parts of 0.5");
    /* a second sketch on part 1 makes that part cost 0.8 (and its δ 5e-6) */
    CHECK_STATUS(gram_privacy_accountant_add(ctx, a, p[3], 0, 1), GRAM_OK);
    expect_total(a, 1.3, 6e-6, "part 1 costs 0.8");
    /* a second partition (another disjoint split of the same rows) adds its own pair */
    CHECK_STATUS(gram_privacy_accountant_add(ctx, a, p[0], 7, 0), GRAM_OK);
    expect_total(a, 1.8, 7e-6, "plus a one-part partition");
    CHECK_STATUS(gram_privacy_accountant_add(ctx, a, r2, -1, 0), GRAM_OK);
    expect_total(a, 2.05, 7e-6, "plus a whole-data sketch");
    CHECK(gram_privacy_accountant_count(a) == 6, "count %lld", (long long)gram_privacy_accountant_count(a));
    CHECK(gram_privacy_accountant_count_test_noise(a) == 1, "test-noise count %lld",
          (long long)gram_privacy_accountant_count_test_noise(a));

    /* refusals: a replace-one sketch in a partition, bad ids, NULLs; nothing is added */
    CHECK_STATUS(gram_privacy_accountant_add(ctx, a, r1, 0, 3), GRAM_EINVAL);
    CHECK(has(msg(), "must use add/remove neighbours"), "message: %s", msg());
    CHECK_STATUS(gram_privacy_accountant_add(ctx, a, w, -2, 0), GRAM_EINVAL);
    CHECK(has(msg(), "partition must be -1"), "message: %s", msg());
    CHECK_STATUS(gram_privacy_accountant_add(ctx, a, w, 0, -1), GRAM_EINVAL);
    CHECK(has(msg(), "part must be >= 0, got -1"), "message: %s", msg());
    CHECK_STATUS(gram_privacy_accountant_add(ctx, a, NULL, -1, 0), GRAM_EINVAL);
    CHECK_STATUS(gram_privacy_accountant_add(ctx, NULL, w, -1, 0), GRAM_EINVAL);
    CHECK(gram_privacy_accountant_count(a) == 6, "a refused add was counted");
    expect_total(a, 2.05, 7e-6, "after refusals");
    double e, d;
    CHECK_STATUS(gram_privacy_accountant_total(NULL, &e, &d), GRAM_EINVAL);
    CHECK_STATUS(gram_privacy_accountant_total(a, NULL, &d), GRAM_EINVAL);
    CHECK_STATUS(gram_privacy_accountant_create(ctx, NULL), GRAM_EINVAL);
    CHECK(gram_privacy_accountant_count(NULL) == 0 && gram_privacy_accountant_count_test_noise(NULL) == 0,
          "NULL counts");
    gram_privacy_accountant_destroy(a);
    gram_privacy_accountant_destroy(NULL);
    free(r1), free(r2), free(w);
    for (int i = 0; i < 4; i++) free(p[i]);
}

/* ---- files without a family: the container's and the layout's versions, the kind ------------ */

static void expect_bytes_refused(const unsigned char *b, size_t n, const char *what, const char *want_msg)
{
    gram_private_sketch *s = (gram_private_sketch *)(uintptr_t)1;
    gram_status st = gram_private_from_bytes(ctx, b, n, &s);
    CHECK(st == GRAM_EFORMAT && s == NULL, "%s: status %d (want GRAM_EFORMAT): %s", what, (int)st, msg());
    CHECK(!want_msg || has(msg(), want_msg), "%s: message '%s' lacks '%s'", what, msg(), want_msg);
    if (st == GRAM_OK) gram_private_sketch_destroy(s);
}

static void test_versions(void)
{
    gram__model_file m;
    gram__model_file_init(&m, "private");
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "private_format", 2), GRAM_OK);
    unsigned char *b = NULL;
    size_t n = 0;
    CHECK_STATUS(gram__model_to_bytes(ctx, &m, &b, &n), GRAM_OK);
    expect_bytes_refused(b, n, "layout 2", "private sketch layout 2 is newer than this gram supports (1); upgrade gram");
    gram__free(b);
    gram__model_file_free(&m);

    gram__model_file_init(&m, "private");
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "private_format", 0), GRAM_OK);
    CHECK_STATUS(gram__model_to_bytes(ctx, &m, &b, &n), GRAM_OK);
    expect_bytes_refused(b, n, "layout 0", "private sketch layout 0 is not valid");
    /* the container's own format version (bytes 8..11) newer: refused before anything else */
    b[8] = 9;
    expect_bytes_refused(b, n, "container version 9", "upgrade gram");
    gram__free(b);
    gram__model_file_free(&m);

    gram__model_file_init(&m, "features");
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "private_format", 1), GRAM_OK);
    CHECK_STATUS(gram__model_to_bytes(ctx, &m, &b, &n), GRAM_OK);
    expect_bytes_refused(b, n, "kind features", "features");
    gram__free(b);
    gram__model_file_free(&m);

    gram__model_file_init(&m, "private");
    CHECK_STATUS(gram__model_add_i64(ctx, &m, "private_format", 1), GRAM_OK);
    CHECK_STATUS(gram__model_to_bytes(ctx, &m, &b, &n), GRAM_OK);
    expect_bytes_refused(b, n, "no entries", "entry 'similarity' is missing");
    gram__free(b);
    gram__model_file_free(&m);

    gram_private_sketch *s = (gram_private_sketch *)(uintptr_t)1;
    CHECK_STATUS(gram_private_from_bytes(ctx, NULL, 10, &s), GRAM_EINVAL);
    CHECK(s == NULL, "from_bytes(NULL) left a sketch");
    CHECK_STATUS(gram_private_load(ctx, check_tpath("missing.sketch"), &s), GRAM_EIO);
    CHECK(s == NULL, "load of a missing file left a sketch");
}

/* ---- end to end: round trips, damaged and lying files, no data in the file ------------------ */

enum { N = 40, D = 3, M = 5 };

static int entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static unsigned char *bytes_of(const gram_private_sketch *s, size_t *n)
{
    void *b = NULL;
    CHECK_STATUS(gram_private_to_bytes(ctx, s, &b, n), GRAM_OK);
    return b;
}

static int same_bits(const double *a, const double *b, int64_t n)
{
    return memcmp(a, b, (size_t)n * sizeof(double)) == 0;
}

static void test_round_trip(void)
{
    double *x = points(N, D, 2), *y = points(M, D, 3);
    for (int f = 0; f < 6; f++) {
        for (int nb = 0; nb < 2; nb++) {
            gram_private_options o = small_opts(f);
            o.neighbours = nb;
            const double delta = f % 2 ? 1e-6 : 0; /* both noises, over the similarities */
            gram_private_sketch *s = fit(f, x, N, D, &o, 2.0, delta);
            if (!s) continue;
            double *q1 = query(s, y, M, D, 0), *m1 = query(s, y, M, D, 1);
            gram_private_info in;
            CHECK_STATUS(gram_private_sketch_info(s, &in), GRAM_OK);
            CHECK(in.test_noise == 1 && (int)in.similarity == f && in.epsilon == 2.0 && in.delta == delta && in.dim == D &&
                      in.radius == 1 && in.seed == 11 && (int)in.neighbours == nb,
                  "%s: info does not describe the fit", SIM[f]);
            CHECK(!strcmp(in.noise, delta > 0 ? "discrete_gaussian" : "discrete_laplace"), "%s: noise %s", SIM[f],
                  in.noise);
            CHECK(in.noise_scale > 0 && in.sensitivity && in.sensitivity[0], "%s: no scale or sensitivity", SIM[f]);
            CHECK(gram_private_sketch_n_clipped(s) == 0, "%s: %lld rows clipped of points inside the ball", SIM[f],
                  (long long)gram_private_sketch_n_clipped(s));
            /* replace-one: n is public and exact; add/remove: n released with noise, and the mean
             * divides by max(n̂, 1) */
            if (nb == GRAM_PRIVATE_REPLACE) CHECK(in.n == N, "%s: n %g under replace-one", SIM[f], in.n);
            else CHECK(has(in.sensitivity, "n released separately"), "%s: sensitivity text: %s", SIM[f], in.sensitivity);
            const double nn = in.n >= 1 ? in.n : 1;
            for (int i = 0; i < M; i++) CHECK(m1[i] == q1[i] / nn, "%s: mean %d is not sum / n", SIM[f], i);

            /* bytes and files: the same queries bit for bit, the same bytes again */
            size_t n1 = 0, n2 = 0;
            unsigned char *b1 = bytes_of(s, &n1);
            gram_private_sketch *t = NULL;
            CHECK_STATUS(gram_private_from_bytes(ctx, b1, n1, &t), GRAM_OK);
            if (t) {
                double *q2 = query(t, y, M, D, 0), *m2 = query(t, y, M, D, 1);
                CHECK(same_bits(q1, q2, M) && same_bits(m1, m2, M), "%s: queries differ after from_bytes", SIM[f]);
                unsigned char *b2 = bytes_of(t, &n2);
                CHECK(n1 == n2 && !memcmp(b1, b2, n1), "%s: saved again, the bytes differ", SIM[f]);
                CHECK(gram_private_sketch_n_clipped(t) == -1, "%s: n_clipped after load", SIM[f]);
                gram_private_info it;
                gram_private_sketch_info(t, &it);
                CHECK(it.n == in.n && it.noise_scale == in.noise_scale && it.levels == in.levels &&
                          it.n_components == in.n_components && it.reduced_dim == in.reduced_dim &&
                          it.approx_error == in.approx_error && !strcmp(it.sensitivity, in.sensitivity) &&
                          it.test_noise == 1,
                      "%s: info differs after load", SIM[f]);
                gram__free(b2);
                free(q2), free(m2);
                gram_private_sketch_destroy(t);
            }
            const char *path = check_tpath("a.sketch");
            CHECK_STATUS(gram_private_save(ctx, s, path), GRAM_OK);
            t = NULL;
            CHECK_STATUS(gram_private_load(ctx, path, &t), GRAM_OK);
            if (t) {
                double *q3 = query(t, y, M, D, 0);
                CHECK(same_bits(q1, q3, M), "%s: queries differ after save and load", SIM[f]);
                free(q3);
                gram_private_sketch_destroy(t);
            }
            /* a save that fails leaves nothing behind: into a missing directory, and onto a
             * directory's name (the temporary file beside it must be removed again) */
            CHECK_STATUS(gram_private_save(ctx, s, check_tpath("no/such/dir/b.sketch")), GRAM_EIO);
            if (f == 0 && nb == 0) {
                const int before = entries_in(check_tmpdir);
                mkdir(check_tpath("adir"), 0700);
                CHECK(gram_private_save(ctx, s, check_tpath("adir")) != GRAM_OK, "saving onto a directory succeeded");
                CHECK(entries_in(check_tmpdir) == before + 1, "a failed save left a file behind (%d entries, want %d)",
                      entries_in(check_tmpdir), before + 1);
                rmdir(check_tpath("adir"));
            }

            /* every byte flipped: refused, never a crash (the CRC covers every byte; the magic and
             * the version are checked before it). Both sizes of sketch are small (16 features, or
             * trees of depth 4), so this is a few thousand parses. */
            if (nb == GRAM_PRIVATE_REPLACE) {
                long refused = 0;
                for (size_t i = 0; i < n1; i++) {
                    b1[i] ^= 0x5a;
                    gram_private_sketch *u = (gram_private_sketch *)(uintptr_t)1;
                    gram_status st = gram_private_from_bytes(ctx, b1, n1, &u);
                    refused += st == GRAM_EFORMAT && u == NULL && msg()[0];
                    if (st == GRAM_OK) gram_private_sketch_destroy(u);
                    b1[i] ^= 0x5a;
                }
                CHECK(refused == (long)n1, "%s: %ld of %zu flipped bytes refused", SIM[f], refused, n1);
                /* truncated at every length */
                long trunc = 0;
                for (size_t len = 0; len < n1; len++) {
                    gram_private_sketch *u = NULL;
                    trunc += gram_private_from_bytes(ctx, b1, len, &u) == GRAM_EFORMAT && !u;
                    gram_private_sketch_destroy(u);
                }
                CHECK(trunc == (long)n1, "%s: %ld of %zu truncations refused", SIM[f], trunc, n1);
            }
            gram__free(b1);
            free(q1), free(m1);
            gram_private_sketch_destroy(s);
        }
    }
    free(x), free(y);
}

/* ---- lying files: well-formed containers whose entries are wrong ---------------------------- */

static gram__entry *entry(gram__model_file *m, const char *name)
{
    for (int64_t i = 0; i < m->n; i++)
        if (!strcmp(m->entries[i].name, name)) return &m->entries[i];
    CHECK(0, "entry %s missing", name);
    return NULL;
}

typedef struct edit {
    const char *name;
    int64_t i64;        /* an integer entry's new value */
    double value;       /* a real entry's (1 × 1) or values[0]'s new value, when set_value */
    int set_value;
    int64_t rows;       /* > 0: a matrix's declared rows (values beyond are dropped) */
    const char *str;
} edit;

static void expect_edit_refused(const unsigned char *buf, size_t size, edit e, const char *want_msg)
{
    gram__model_file m;
    CHECK_STATUS(gram__model_from_bytes(ctx, "edit", buf, size, "private", &m), GRAM_OK);
    gram__entry *x = entry(&m, e.name);
    if (x) {
        if (e.str) {
            free(x->str);
            x->str = strdup(e.str);
        } else if (x->type == GRAM__ENTRY_I64) {
            x->i64 = e.i64;
        } else if (e.rows > 0) {
            x->rows = e.rows;
        } else if (e.set_value) {
            x->f64[0] = e.value;
        }
    }
    unsigned char *b = NULL;
    size_t n = 0;
    CHECK_STATUS(gram__model_to_bytes(ctx, &m, &b, &n), GRAM_OK);
    gram__model_file_free(&m);
    expect_bytes_refused(b, n, e.name, want_msg);
    gram__free(b);
}

static void test_lying_files(void)
{
    double *x = points(N, D, 4);
    struct {
        gram_private_similarity f;
        edit e;
        const char *want;
    } cases[] = {
        {GRAM_PRIVATE_L1, {.name = "private_format", .i64 = 3}, "upgrade gram"},
        {GRAM_PRIVATE_L1, {.name = "similarity", .str = "hamming"}, "entry 'similarity' is 'hamming'"},
        {GRAM_PRIVATE_L1, {.name = "noise", .str = "discrete_gaussian"}, "inconsistent release record"},
        {GRAM_PRIVATE_L1, {.name = "epsilon", .value = -1, .set_value = 1}, "inconsistent privacy parameters"},
        {GRAM_PRIVATE_L1, {.name = "epsilon", .value = NAN, .set_value = 1}, "entry 'epsilon' is not finite"},
        {GRAM_PRIVATE_L1, {.name = "eps_main", .value = 5, .set_value = 1}, "inconsistent privacy parameters"},
        {GRAM_PRIVATE_L1, {.name = "eps_main", .value = 0.5, .set_value = 1}, "inconsistent privacy parameters"},
        /* δ > 0 with the whole statistic released under pure DP (δ_main 0): found by fuzz_sketch */
        {GRAM_PRIVATE_L1, {.name = "delta", .value = 1e-6, .set_value = 1}, "inconsistent privacy parameters"},
        {GRAM_PRIVATE_L1, {.name = "radius", .value = 0, .set_value = 1}, "radius must be > 0"},
        {GRAM_PRIVATE_L1, {.name = "dim", .i64 = (int64_t)1 << 40}, "dimensions out of range"},
        {GRAM_PRIVATE_L1, {.name = "dim", .i64 = 0}, "dimensions out of range"},
        {GRAM_PRIVATE_L1, {.name = "dim", .i64 = D + 1}, "released values"},
        {GRAM_PRIVATE_L1, {.name = "levels", .i64 = 31}, "dimensions out of range"},
        {GRAM_PRIVATE_L1, {.name = "levels", .i64 = 20}, "released values"},
        {GRAM_PRIVATE_L1, {.name = "values", .rows = 3}, "released values"},
        {GRAM_PRIVATE_L1, {.name = "values", .value = INFINITY, .set_value = 1}, "non-finite value"},
        {GRAM_PRIVATE_L1, {.name = "n_released", .value = 2.5, .set_value = 1}, "n 2.5 is not valid"},
        {GRAM_PRIVATE_L1, {.name = "test_noise", .i64 = 2}, "dimensions out of range"},
        {GRAM_PRIVATE_L1, {.name = "rec_shift", .i64 = 70}, "inconsistent release record"},
        {GRAM_PRIVATE_L1, {.name = "rec_den", .i64 = 0}, "inconsistent release record"},
        {GRAM_PRIVATE_L1, {.name = "rec_epsilon", .value = 0.5, .set_value = 1}, "inconsistent release record"},
        {GRAM_PRIVATE_L1, {.name = "rec_scale", .value = 0, .set_value = 1}, "inconsistent release record"},
        {GRAM_PRIVATE_L1, {.name = "n_components", .i64 = 8}, "do not fit a l1 paper sketch"},
        {GRAM_PRIVATE_L1, {.name = "mechanism", .str = "baseline"}, "released values"},
        {GRAM_PRIVATE_LPP, {.name = "p", .value = 3, .set_value = 1}, "p 3 is not valid for lpp"},
        {GRAM_PRIVATE_L2, {.name = "n_components", .i64 = (int64_t)1 << 30}, "n_components (the l1 projections"},
        {GRAM_PRIVATE_GAUSSIAN, {.name = "n_components", .i64 = (int64_t)1 << 40}, "n_components must be an even"},
        {GRAM_PRIVATE_GAUSSIAN, {.name = "n_components", .i64 = 18}, "released values"},
        {GRAM_PRIVATE_GAUSSIAN, {.name = "reduced_dim", .i64 = D + 1}, "reduced_dim must be in 1..d"},
        {GRAM_PRIVATE_GAUSSIAN, {.name = "dim", .i64 = ((int64_t)1 << 25) + 1}, "would exceed 2^26 values"},
        {GRAM_PRIVATE_GAUSSIAN, {.name = "bandwidth", .value = 0, .set_value = 1}, "bandwidth 0 is not valid"},
        {GRAM_PRIVATE_GAUSSIAN, {.name = "mechanism", .str = "baseline"}, "do not fit a gaussian baseline sketch"},
        {GRAM_PRIVATE_CAUCHY, {.name = "n_terms", .i64 = 3}, "released values"},
        {GRAM_PRIVATE_CAUCHY, {.name = "mechanism", .str = "baseline"}, "no baseline mechanism for cauchy"},
        {GRAM_PRIVATE_CAUCHY, {.name = "sensitivity", .str = ""}, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].want == NULL) continue; /* an empty sensitivity text is allowed: not a lie */
        gram_private_options o = small_opts(cases[i].f);
        if (cases[i].f == GRAM_PRIVATE_GAUSSIAN) o.reduced_dim = 2; /* a reduction, so paper != baseline */
        gram_private_sketch *s = fit(cases[i].f, x, N, D, &o, 1.0, 0);
        if (!s) continue;
        size_t n = 0;
        unsigned char *b = bytes_of(s, &n);
        expect_edit_refused(b, n, cases[i].e, cases[i].want);
        gram__free(b);
        gram_private_sketch_destroy(s);
    }
    free(x);
}

/* Released values within the loader's ranges (finite) but so large that a sum overflows: the
 * query fails with GRAM_EOVERFLOW instead of answering inf or NaN with GRAM_OK. */
static void test_overflowing_values(void)
{
    double *x = points(N, D, 9), y[D] = {0.1, -0.2, 0.05}, out[1] = {0};
    gram_private_options o = small_opts(GRAM_PRIVATE_L1);
    gram_private_sketch *s = fit(GRAM_PRIVATE_L1, x, N, D, &o, 1.0, 0);
    if (s) {
        size_t n = 0;
        unsigned char *b = bytes_of(s, &n), *b2 = NULL;
        gram__model_file m;
        CHECK_STATUS(gram__model_from_bytes(ctx, "edit", b, n, "private", &m), GRAM_OK);
        gram__entry *v = entry(&m, "values");
        if (v)
            for (int64_t i = 0; i < v->rows; i++) v->f64[i] = 1.5e308;
        CHECK_STATUS(gram__model_to_bytes(ctx, &m, &b2, &n), GRAM_OK);
        gram__model_file_free(&m);
        gram_private_sketch *t = NULL;
        CHECK_STATUS(gram_private_from_bytes(ctx, b2, n, &t), GRAM_OK);
        if (t) {
            gram_array Y = gram_array_f64(y, 1, D), O = gram_array_f64(out, 1, 1);
            CHECK_STATUS(gram_private_query(ctx, t, &Y, &O), GRAM_EOVERFLOW);
            CHECK(has(msg(), "the answer at row 0 of Y overflows"), "message: %s", msg());
        }
        gram_private_sketch_destroy(t);
        gram__free(b);
        gram__free(b2);
        gram_private_sketch_destroy(s);
    }
    free(x);
}

/* ---- the file holds no row of the data ------------------------------------------------------ */

static size_t count_in(const unsigned char *hay, size_t n, const void *needle, size_t k)
{
    size_t c = 0;
    for (size_t i = 0; i + k <= n; i++) c += memcmp(hay + i, needle, k) == 0;
    return c;
}

/* Rows of full-precision random doubles (53 random bits each, drawn as k·2^-53, k uniform) and
 * their float32 roundings: a given 8-byte double turns up by chance at a given offset of the file
 * with probability 2^-64, and a 4-byte float with 2^-32 (the metadata are small integers, ε, the
 * radius and noised integer multiples of a power of two, none of which is such a value). With 40 x 3
 * coordinates and files of at most ~5 kB, the chance that any float32 collides by accident is
 * below 40·3·5000·2^-32 ≈ 1.4e-4 per file, and the seed is fixed: a failure is a leak. */
static void test_no_rows_in_file(void)
{
    check_rng r = {99};
    double *x = malloc(N * D * sizeof *x);
    for (int i = 0; i < N * D; i++) x[i] = (double)(check_u64(&r) >> 11) * 0x1p-53 * 0.9 - 0.45;
    for (int f = 0; f < 6; f++)
        for (int nb = 0; nb < 2; nb++) {
            gram_private_options o = small_opts(f);
            o.neighbours = nb;
            gram_private_sketch *s = fit(f, x, N, D, &o, 1.0, 0);
            if (!s) continue;
            size_t n = 0;
            unsigned char *b = bytes_of(s, &n);
            size_t hits = 0;
            for (int i = 0; i < N; i++) {
                float row32[D];
                for (int j = 0; j < D; j++) {
                    const float v = (float)x[i * D + j];
                    row32[j] = v;
                    hits += count_in(b, n, &x[i * D + j], sizeof(double)) + count_in(b, n, &v, sizeof v);
                }
                hits += count_in(b, n, &x[i * D], D * sizeof(double)) + count_in(b, n, row32, sizeof row32);
            }
            CHECK(hits == 0, "%s: %zu coordinates or rows of X found in the sketch's %zu bytes", SIM[f], hits, n);
            gram__free(b);
            gram_private_sketch_destroy(s);
        }
    free(x);
}

/* ---- clipping onto the domain --------------------------------------------------------------- */

static void expect_same_statistic(const gram_private_sketch *s, const double *a, const double *b, int64_t n,
                                  const char *what)
{
    gram__statistic sa, sb;
    gram_array A = gram_array_f64(a, n, D), B = gram_array_f64(b, n, D);
    CHECK_STATUS(gram__private_statistic(ctx, s, &A, &sa), GRAM_OK);
    CHECK_STATUS(gram__private_statistic(ctx, s, &B, &sb), GRAM_OK);
    CHECK(sa.m == sb.m && sa.m > 0 && sa.v && sb.v && !memcmp(sa.v, sb.v, (size_t)sa.m * sizeof(int64_t)),
          "%s: the statistic of the far rows is not that of their clipped images", what);
    free(sa.v);
    free(sb.v);
}

static void test_clipping(void)
{
    /* R = 2; rows inside, on the boundary and outside, chosen so that the clipped image is exact
     * (scaling by a power of two): the statistic of X must be that of the clipped rows. */
    const double far[6 * D] = {8, 0, 0,   0, -0x1p1000, 0,   0.5, 0.5, 0.5,   2, 0, 0,   -3, 4, 12,   1e-300, 0, 0};
    const double ball[6 * D] = {2, 0, 0,  0, -2, 0,          0.5, 0.5, 0.5,   2, 0, 0,   -3, 4, 12,   1e-300, 0, 0};
    const double box[6 * D] = {2, 0, 0,   0, -2, 0,          0.5, 0.5, 0.5,   2, 0, 0,   -2, 2, 2,    1e-300, 0, 0};
    double ball_img[6 * D];
    memcpy(ball_img, ball, sizeof ball);
    /* (-3, 4, 12) has norm 13: its image is (-3, 4, 12)·2/13, computed the way clip does (the scale
     * in long double, rounded once); compared through the count only */
    for (int f = 0; f < 6; f++) {
        gram_private_options o = small_opts(f);
        o.radius = 2;
        gram_array X = gram_array_f64(far, 6, D);
        gram_private_sketch *s = NULL;
        CHECK_STATUS(gram_private_fit(ctx, &X, f, 1.0, 0, &o, &s), GRAM_OK);
        CHECK(s && gram_private_sketch_n_clipped(s) == 3, "%s ball: %lld rows clipped, want 3 (8e0, 2^1000, 13)",
              SIM[f], (long long)gram_private_sketch_n_clipped(s));
        if (s) {
            /* rows 0, 1 clip exactly; 2, 3, 5 are inside or on the sphere; row 4 is left out */
            double a[5 * D], b[5 * D];
            int rows[5] = {0, 1, 2, 3, 5};
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < D; j++) a[i * D + j] = far[rows[i] * D + j], b[i * D + j] = ball_img[rows[i] * D + j];
            expect_same_statistic(s, a, b, 5, SIM[f]);
        }
        gram_private_sketch_destroy(s);
        o.domain = GRAM_PRIVATE_BOX;
        s = NULL;
        CHECK_STATUS(gram_private_fit(ctx, &X, f, 1.0, 0, &o, &s), GRAM_OK);
        CHECK(s && gram_private_sketch_n_clipped(s) == 3, "%s box: %lld rows clipped, want 3", SIM[f],
              (long long)gram_private_sketch_n_clipped(s));
        if (s) expect_same_statistic(s, far, box, 6, SIM[f]);
        gram_private_sketch_destroy(s);
    }
}

/* |x|₂ in long double, rescaled by a power of two (not the clip's own max-scaling). */
static long double norm_ref(const double *x, int64_t d)
{
    int e = INT32_MIN;
    for (int64_t j = 0; j < d; j++)
        if (x[j] != 0) {
            int ej;
            frexp(x[j], &ej);
            if (ej > e) e = ej;
        }
    if (e == INT32_MIN) return 0;
    long double s = 0;
    for (int64_t j = 0; j < d; j++) {
        const long double t = ldexpl((long double)x[j], -e);
        s += t * t;
    }
    return ldexpl(sqrtl(s), e);
}

/* The clip itself, on rows of every scale: rows inside are copied bit for bit; a row outside the
 * ball becomes c·x with 0 < c < 1 and R(1 - 1e-9) <= |c·x| <= R; a box row is clamped. */
static void test_clip_property(void)
{
    check_rng r = {314};
    const double radii[] = {1e-300, 1e-3, 1, 7.5, 1e300};
    const int64_t dims[] = {1, 2, 3, 17, 1000};
    long bad_inside = 0, bad_norm = 0, bad_dir = 0, bad_count = 0, bad_box = 0, rows = 0, seen_out = 0, seen_dir = 0;
    for (int ri = 0; ri < 5; ri++)
        for (int di = 0; di < 5; di++) {
            const int64_t d = dims[di], n = 40;
            const double R = radii[ri];
            double *x = malloc((size_t)(n * d) * sizeof *x), *o = malloc((size_t)(n * d) * sizeof *o);
            int64_t outside = 0, outside_box = 0;
            for (int64_t i = 0; i < n; i++) {
                /* a row of norm R·10^k, k uniform in [-3, 3], some exactly R; random directions */
                const double scale = i % 10 == 0 ? 1 : pow(10, 6 * check_uniform(&r) - 3);
                for (int64_t j = 0; j < d; j++) x[i * d + j] = check_normal(&r);
                if (i % 10 == 0) {
                    for (int64_t j = 0; j < d; j++) x[i * d + j] = 0;
                    x[i * d + (i / 10) % d] = (i / 10) % 2 ? -R : R;
                } else {
                    const long double nr = norm_ref(x + i * d, d);
                    for (int64_t j = 0; j < d; j++) x[i * d + j] = (double)(x[i * d + j] / nr * R * scale);
                }
                outside += norm_ref(x + i * d, d) > R * (1 + 16 * DBL_EPSILON);
                int ob = 0;
                for (int64_t j = 0; j < d; j++) ob |= fabs(x[i * d + j]) > R;
                outside_box += ob;
            }
            gram_array X = gram_array_f64(x, n, d);
            bad_count += gram__private_clip(&X, GRAM_PRIVATE_BALL, R, o) != outside;
            for (int64_t i = 0; i < n; i++, rows++) {
                const double *xi = x + i * d, *oi = o + i * d;
                if (norm_ref(xi, d) <= R) {
                    bad_inside += memcmp(xi, oi, (size_t)d * sizeof(double)) != 0;
                    continue;
                }
                seen_out++;
                const long double no = norm_ref(oi, d);
                bad_norm += !(no <= R && no >= R * (1 - 1e-9L));
                /* the direction: o_j / x_j the same c in (0, 1) for every coordinate that is not tiny */
                long double c = -1;
                for (int64_t j = 0; j < d; j++) {
                    if (!isnormal(oi[j]) || fabs(oi[j]) < 1e-12 * R) continue; /* too few bits for 1e-14 */
                    if (xi[j] == 0) {
                        bad_dir += oi[j] != 0;
                        continue;
                    }
                    const long double cj = (long double)oi[j] / xi[j];
                    seen_dir++;
                    if (c < 0) c = cj;
                    bad_dir += !(cj > 0 && cj < 1 && fabsl(cj - c) <= 1e-14L * c);
                }
            }
            bad_count += gram__private_clip(&X, GRAM_PRIVATE_BOX, R, o) != outside_box;
            for (int64_t i = 0; i < n * d; i++) bad_box += o[i] != (x[i] > R ? R : x[i] < -R ? -R : x[i]);
            free(x);
            free(o);
        }
    CHECK(!bad_inside && !bad_norm && !bad_dir && !bad_count && !bad_box,
          "clip over %ld rows: %ld inside rows changed, %ld clipped norms outside [R(1-1e-9), R], %ld coordinates "
          "off the row's direction, %ld wrong counts, %ld box coordinates not clamped", rows, bad_inside, bad_norm,
          bad_dir, bad_count, bad_box);
    CHECK(seen_out > rows / 3 && seen_dir > 10 * seen_out, "the clip test saw %ld rows outside and %ld coordinates",
          seen_out, seen_dir);
    /* a row a few ulps outside (X / max|x| · R in NumPy) is clipped but not counted; 17 ulps out is */
    for (int k = 0; k < 3; k++) {
        const double R = 3.0;
        double x[2] = {R, 0}, o[2];
        for (int u = 0; u < (k == 0 ? 1 : k == 1 ? 4 : 40); u++) x[0] = nextafter(x[0], INFINITY);
        gram_array X = gram_array_f64(x, 1, 2);
        const int64_t c = gram__private_clip(&X, GRAM_PRIVATE_BALL, R, o);
        CHECK(c == (k == 2) && o[0] <= R, "a row %s ulps outside the ball: counted %lld (want %d), clipped to %.17g",
              k == 0 ? "1" : k == 1 ? "4" : "40", (long long)c, k == 2, o[0]);
    }
}

/* ---- queries: shapes, dtypes, non-finite points ---------------------------------------------- */

static void test_queries(void)
{
    double *x = points(N, D, 5), *y = points(M, D, 6);
    for (int f = 0; f < 6; f++) {
        gram_private_options o = small_opts(f);
        gram_private_sketch *s = fit(f, x, N, D, &o, 1.0, 0);
        if (!s) continue;
        double *q = query(s, y, M, D, 0);
        /* float32 points holding the same values give the same answers bit for bit; a row view
         * (1 × M) of out and a strided one too */
        float y32[M * D];
        double y64[M * D], out[2 * M];
        for (int i = 0; i < M * D; i++) y64[i] = (double)(y32[i] = (float)y[i]);
        double *q64 = query(s, y64, M, D, 0);
        gram_array Y32 = gram_array_f32(y32, M, D), O = {out, GRAM_FLOAT64, 1, M, 2 * M, 2};
        CHECK_STATUS(gram_private_query(ctx, s, &Y32, &O), GRAM_OK);
        for (int i = 0; i < M; i++) CHECK(out[2 * i] == q64[i], "%s: float32 query %d differs", SIM[f], i);
        /* the same sketch, the same answers: queries are deterministic post-processing */
        double *q2 = query(s, y, M, D, 0);
        CHECK(same_bits(q, q2, M), "%s: a repeated query differs", SIM[f]);
        /* errors */
        gram_array Yw = gram_array_f64(y, M, D - 1), Ob = gram_array_f64(out, M, 1);
        CHECK_STATUS(gram_private_query(ctx, s, &Yw, &Ob), GRAM_ESHAPE);
        CHECK(has(msg(), "Y has 2 columns but the sketch was fitted on d = 3"), "message: %s", msg());
        gram_array Y = gram_array_f64(y, M, D), Os = gram_array_f64(out, M - 1, 1);
        CHECK_STATUS(gram_private_query_mean(ctx, s, &Y, &Os), GRAM_ESHAPE);
        CHECK(has(msg(), "expected 5 values"), "message: %s", msg());
        gram_array O32 = gram_array_f32((float *)out, M, 1);
        CHECK_STATUS(gram_private_query(ctx, s, &Y, &O32), GRAM_EINVAL);
        CHECK(has(msg(), "out must be float64"), "message: %s", msg());
        double ybad[M * D];
        memcpy(ybad, y, sizeof ybad);
        ybad[3 * D + 1] = INFINITY;
        gram_array Yb = gram_array_f64(ybad, M, D);
        CHECK_STATUS(gram_private_query(ctx, s, &Yb, &Ob), GRAM_ENONFINITE);
        CHECK(has(msg(), "Y: row 3, column 1 is +Inf"), "message: %s", msg());
        gram_array Yo = gram_array_f64(out, 1, D), Oo = gram_array_f64(out + 1, 1, 1);
        CHECK_STATUS(gram_private_query(ctx, s, &Yo, &Oo), GRAM_EINVAL);
        CHECK(has(msg(), "overlaps"), "message: %s", msg());
        CHECK_STATUS(gram_private_query(ctx, NULL, &Y, &Ob), GRAM_EINVAL);
        CHECK_STATUS(gram_private_query(ctx, s, NULL, &Ob), GRAM_EINVAL);
        CHECK_STATUS(gram_private_query(ctx, s, &Y, NULL), GRAM_EINVAL);
        gram_array Y0 = gram_array_f64(y, 0, D), O0 = gram_array_f64(out, 0, 1);
        CHECK_STATUS(gram_private_query(ctx, s, &Y0, &O0), GRAM_OK);
        free(q), free(q2), free(q64);
        gram_private_sketch_destroy(s);
    }
    free(x), free(y);
}

/* ---- the noise seed: reproducible with it, and only with it ----------------------------------- */

static void test_noise_seed(void)
{
    double *x = points(N, D, 7), *y = points(M, D, 8);
    for (int f = 0; f < 6; f += 3) {
        gram_private_options o = small_opts(f);
        gram_private_sketch *a = fit(f, x, N, D, &o, 1.0, 0), *b = fit(f, x, N, D, &o, 1.0, 0);
        o.noise_seed++;
        gram_private_sketch *c = fit(f, x, N, D, &o, 1.0, 0);
        o.has_noise_seed = 0;
        gram_private_sketch *d1 = fit(f, x, N, D, &o, 1.0, 0), *d2 = fit(f, x, N, D, &o, 1.0, 0);
        if (a && b && c && d1 && d2) {
            double *qa = query(a, y, M, D, 0), *qb = query(b, y, M, D, 0), *qc = query(c, y, M, D, 0);
            double *q1 = query(d1, y, M, D, 0), *q2 = query(d2, y, M, D, 0);
            CHECK(same_bits(qa, qb, M), "%s: the same noise seed gave different sketches", SIM[f]);
            CHECK(!same_bits(qa, qc, M), "%s: another noise seed gave the same sketch", SIM[f]);
            CHECK(!same_bits(q1, q2, M), "%s: two fits with noise from the system agree", SIM[f]);
            gram_private_info in;
            gram_private_sketch_info(d1, &in);
            CHECK(in.test_noise == 0 && in.seed == 11, "%s: a system-noise sketch is marked test_noise", SIM[f]);
            /* the public seed is drawn from the system when not given */
            o.has_seed = 0;
            gram_private_sketch *e1 = fit(f, x, N, D, &o, 1.0, 0), *e2 = fit(f, x, N, D, &o, 1.0, 0);
            gram_private_info i1, i2;
            if (e1 && e2) {
                gram_private_sketch_info(e1, &i1);
                gram_private_sketch_info(e2, &i2);
                CHECK(i1.seed != i2.seed, "%s: two drawn public seeds agree (%llu)", SIM[f], (unsigned long long)i1.seed);
            }
            gram_private_sketch_destroy(e1);
            gram_private_sketch_destroy(e2);
            free(qa), free(qb), free(qc), free(q1), free(q2);
        }
        gram_private_sketch_destroy(a);
        gram_private_sketch_destroy(b);
        gram_private_sketch_destroy(c);
        gram_private_sketch_destroy(d1);
        gram_private_sketch_destroy(d2);
    }
    free(x), free(y);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(check_tmpdir, sizeof check_tmpdir, "%s/gram_sketch_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(check_tmpdir)) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 1;
    }
    CHECK_STATUS(gram_context_create(&ctx), GRAM_OK);
    test_validation();
    test_accountant();
    test_versions();
    test_round_trip();
    test_lying_files();
    test_overflowing_values();
    test_no_rows_in_file();
    test_clipping();
    test_clip_property();
    test_queries();
    test_noise_seed();
    gram_context_destroy(ctx);
    unlink(check_tpath("a.sketch"));
    CHECK(rmdir(check_tmpdir) == 0, "the scratch directory %s holds files the test did not make", check_tmpdir);
    return check_done();
}
