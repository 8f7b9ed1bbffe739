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

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* placeholder until the end-to-end tests below land */
static void (*volatile keep_)(void) = NULL;
static void keep(void) { (void)fit; (void)query; }

int main(void)
{
    keep_ = keep;
    CHECK_STATUS(gram_context_create(&ctx), GRAM_OK);
    test_validation();
    test_accountant();
    test_versions();
    gram_context_destroy(ctx);
    return check_done();
}
